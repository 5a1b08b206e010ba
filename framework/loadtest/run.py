"""One load test, from the options to the results: :func:`run`.

The steps: check every option, the scenario, the app and the ``--check``
function before anything starts (a :class:`UsageError` otherwise); start the
servers (migrate once, run the scenario's prepare commands, start
``--instances`` gunicorn masters) or read the ``--url`` deployments' counters;
run the set-up requests; run the generator, with a progress line; stop the
servers; compare the books; call ``--check``; write ``results.json``,
``report.html`` and the logs.
"""

from __future__ import annotations

import collections.abc as cabc
import contextlib
import dataclasses
import datetime
import http.cookies
import importlib
import importlib.util
import json
import math
import os
import pathlib
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import typing as t
import urllib.parse

from .. import metrics
from . import locust as locust_generator
from . import wrk as wrk_generator
from ._plan import Plan
from ._plan import compile_plan
from ._plan import split
from .report import render_html
from .report import summary_lines
from .results import Check
from .results import Samples
from .results import checks
from .results import percentiles
from .scenario import Scenario
from .scenario import ScenarioError
from .scenario import default_scenario
from .scenario import load_scenario
from .scenario import render
from .servers import Books
from .servers import LocalInstance
from .servers import RemoteInstance
from .servers import free_port
from .servers import http_request

__all__ = ["LoadTestError", "Options", "UsageError", "run"]

DEFAULT_REQUESTS = 1000
"""Requests of a run bounded by neither ``--requests`` nor ``--duration``."""


class UsageError(ValueError):
    """The load test was asked for wrongly (exit status 2); nothing has started."""


class LoadTestError(RuntimeError):
    """The load test could not be run to its end (exit status 1)."""


@dataclasses.dataclass
class Options:
    """Everything ``framework loadtest`` takes (``None``: not given)."""

    app_spec: str
    """The ``--app`` of the servers (and of the default scenario)."""
    scenario: str | None = None
    """A scenario file (TOML)."""
    locustfile: str | None = None
    """A user's own locustfile instead of a scenario."""
    requests: int | None = None
    """Requests in all (one bound)."""
    duration: float | None = None
    """Seconds of load (the other bound)."""
    connections: int = 4
    """Concurrent connections, over every instance."""
    workers: int | None = None
    """gunicorn workers per instance."""
    worker_class: str | None = None
    """``sync`` (default) or ``gthread``."""
    threads: int | None = None
    """Threads per gthread worker (default 4)."""
    generator: str | None = None
    """``wrk`` or ``locust`` (default: wrk, else locust)."""
    locust_workers: int = 0
    """Local Locust worker processes (distributed mode)."""
    locust_remote_workers: int = 0
    """Locust workers the master waits for, from other hosts."""
    locust_master_port: int | None = None
    """The Locust master's port (default: a free one)."""
    urls: list[str] = dataclasses.field(default_factory=list)
    """Running deployments to load instead of starting servers."""
    instances: int = 1
    """Local gunicorn masters to start."""
    config_file: str | None = None
    """A gunicorn configuration file for the servers."""
    out: str | None = None
    """Where results, report and logs go."""
    check: str | None = None
    """``module:function`` called with the results."""
    env: dict[str, str] = dataclasses.field(default_factory=dict)
    """More environment for the servers (after the scenario's)."""
    timeout: float = 10.0
    """Seconds a request may take."""


Output = cabc.Callable[[str], None]


class _Progress:
    """Prints the progress line: rewritten in place on a terminal."""

    def __init__(self, echo: Output, live: bool) -> None:
        self.echo = echo
        self.live = live
        self.last = time.monotonic()
        self.interval = 1.0 if live else 2.0
        self.shown = False

    def show(self, line: str, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < self.interval:
            return
        self.last = now
        if self.live:
            sys.stdout.write("\r" + line.ljust(78))
            sys.stdout.flush()
            self.shown = True
        else:
            self.echo(line)

    def end(self) -> None:
        if self.live and self.shown:
            sys.stdout.write("\n")
            sys.stdout.flush()


# Checking the options --------------------------------------------------------------


def _check_url(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"--url {url!r} is not an http:// or https:// URL.")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise UsageError(
            f"--url {url!r}: give the server's root, {parts.scheme}://"
            f"{parts.netloc}; paths come from the scenario."
        )
    return f"{parts.scheme}://{parts.netloc}"


def _check_options(options: Options) -> None:  # noqa: C901
    if options.requests is not None and options.duration is not None:
        raise UsageError("give --requests or --duration, not both.")
    if options.scenario and options.locustfile:
        raise UsageError("give --scenario or --locustfile, not both.")
    if options.locustfile and options.generator == "wrk":
        raise UsageError("--locustfile runs with --generator locust.")
    if options.generator == "wrk" and (
        options.locust_workers or options.locust_remote_workers
    ):
        raise UsageError("--locust-workers needs --generator locust.")
    if options.urls:
        given = [
            name
            for name, value in (
                ("--workers", options.workers),
                ("--worker-class", options.worker_class),
                ("--threads", options.threads),
                ("--config", options.config_file),
                ("--env", options.env or None),
            )
            if value is not None
        ]
        if options.instances != 1:
            given.insert(0, "--instances")
        if given:
            raise UsageError(
                f"{', '.join(given)} configure the servers loadtest starts; with"
                " --url the servers are already running."
            )
        options.urls = [_check_url(url) for url in options.urls]
    elif options.locust_remote_workers:
        raise UsageError(
            "--locust-remote-workers needs --url: workers on other hosts cannot"
            " reach servers on this host's 127.0.0.1."
        )
    instances = len(options.urls) or options.instances
    if options.locustfile and instances > 1:
        raise UsageError(
            "--locustfile loads one instance (its --host); use a scenario for"
            " several, or put them behind one URL."
        )
    if options.connections < instances:
        raise UsageError(
            f"--connections {options.connections} is fewer than the"
            f" {instances} instances: each needs one at least."
        )
    if options.requests is not None and options.requests < options.connections:
        raise UsageError(
            f"--requests {options.requests} is fewer than --connections"
            f" {options.connections}: each connection makes one at least."
        )
    if options.worker_class not in (None, "sync", "gthread"):
        raise UsageError("--worker-class is sync or gthread.")
    if options.threads is not None and options.worker_class != "gthread":
        raise UsageError("--threads needs --worker-class gthread.")
    per_instance = max(split(options.connections, instances))
    if not options.urls and (options.worker_class or "sync") == "sync":
        workers = options.workers or per_instance + 1
        if workers <= per_instance:
            raise UsageError(
                f"sync workers ({workers}) must outnumber the connections per"
                f" instance ({per_instance}): a sync worker serves one connection"
                " at a time, and a connection whose client is done stays open"
                " until the generator exits. Use --workers"
                f" {per_instance + 1} or more, or --worker-class gthread."
            )
    if options.config_file and not os.path.isfile(options.config_file):
        raise UsageError(f"--config {options.config_file!r}: no such file.")
    if options.locustfile and not os.path.isfile(options.locustfile):
        raise UsageError(f"--locustfile {options.locustfile!r}: no such file.")
    if options.check is not None and (
        ":" not in options.check or not all(options.check.split(":", 1))
    ):
        raise UsageError(
            f"--check {options.check!r}: give module:function, for example"
            " myapp.loadcheck:check."
        )
    for name in options.env:
        if not name or "=" in name:
            raise UsageError(f"--env {name!r}: give NAME=VALUE.")


def _choose_generator(options: Options) -> str:
    generator = options.generator
    if generator is None:
        if (
            options.locustfile
            or options.locust_workers
            or options.locust_remote_workers
        ):
            generator = "locust"
        elif wrk_generator.find_wrk():
            generator = "wrk"
        elif locust_generator.has_locust():
            generator = "locust"
        else:
            raise UsageError(
                "no load generator: install wrk (apt-get install wrk) or Locust"
                " (pip install 'framework[loadtest]')."
            )
    if generator == "wrk" and not wrk_generator.find_wrk():
        raise UsageError(
            "wrk is not installed (apt-get install wrk); or use --generator locust."
        )
    if generator == "locust" and not locust_generator.has_locust():
        raise UsageError("Locust is not installed: pip install 'framework[loadtest]'.")
    return generator


def _load_check(spec: str) -> cabc.Callable[[dict[str, t.Any]], t.Any]:
    module_name, _, attribute = spec.partition(":")
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise UsageError(
            f"--check {spec!r}: cannot import {module_name!r}"
            f" ({type(exc).__name__}: {exc})."
        ) from None
    function = getattr(module, attribute, None)
    if not callable(function):
        raise UsageError(
            f"--check {spec!r}: {module_name} has no function {attribute!r}."
        )
    return t.cast("cabc.Callable[[dict[str, t.Any]], t.Any]", function)


def _absolute_app_spec(spec: str) -> str:
    """Make a file-path ``--app`` absolute: the servers run in the run directory."""
    target, sep, attribute = spec.rpartition(":")
    if not sep:
        target, attribute = spec, ""
    if target.endswith(".py") or os.sep in target:
        target = os.path.abspath(target)
        return f"{target}:{attribute}" if sep else target
    return spec


# Servers -------------------------------------------------------------------------


def _run_command(
    argv: list[str], run_dir: pathlib.Path, env: dict[str, str], log_name: str
) -> None:
    with open(run_dir / log_name, "ab") as log:
        log.write(f"$ {' '.join(argv)}\n".encode())
        log.flush()
        try:
            result = subprocess.run(
                argv,
                cwd=run_dir,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                timeout=600,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise LoadTestError(f"{' '.join(argv)} failed: {exc}") from None
    if result.returncode != 0:
        text = (run_dir / log_name).read_text(errors="replace").strip().splitlines()
        raise LoadTestError(
            f"{' '.join(argv)} failed (exit status {result.returncode}):"
            f" {text[-1] if text else ''} (see {run_dir / log_name})"
        )


def _framework_argv(app_spec: str, argv: list[str]) -> list[str]:
    if argv and argv[0] == "framework":
        return [sys.executable, "-m", "framework", "--app", app_spec, *argv[1:]]
    return argv


def _uses_orm() -> bool:
    from ..conf import settings

    if not getattr(settings, "INSTALLED_APPS", None):
        return False
    return importlib.util.find_spec("framework.orm") is not None and (
        importlib.util.find_spec("sqlalchemy") is not None
    )


def _server_env(options: Options, scenario: Scenario | None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("GUNICORN_CMD_ARGS", None)
    env.pop(metrics.SWITCH_VARIABLE, None)
    env.pop(metrics.DIRECTORY_VARIABLE, None)
    paths = [os.getcwd(), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(_extra_env(options, scenario))
    return env


def _extra_env(options: Options, scenario: Scenario | None) -> dict[str, str]:
    return {**(scenario.server_env if scenario else {}), **options.env}


def _serve_args(options: Options, workers: int) -> list[str]:
    worker_class = options.worker_class or "sync"
    args = ["--workers", str(workers), "--worker-class", worker_class]
    if worker_class == "gthread":
        args += ["--threads", str(options.threads or 4)]
    if options.config_file:
        args += ["--config", os.path.abspath(options.config_file)]
    return args


# Set-up requests -------------------------------------------------------------------


def _capture(source: str, answer: t.Any) -> str | None:
    kind, _, key = source.partition(":")
    if kind == "header":
        return t.cast("str | None", answer.header(key))
    if kind == "cookie":
        for name, value in answer.headers:
            if name.lower() == "set-cookie":
                cookie: http.cookies.SimpleCookie = http.cookies.SimpleCookie()
                with contextlib.suppress(http.cookies.CookieError):
                    cookie.load(value)
                if key in cookie:
                    return cookie[key].value
        return None
    try:
        found: t.Any = json.loads(answer.body)
    except ValueError:
        return None
    for step in key.split("."):
        if isinstance(found, dict) and step in found:
            found = found[step]
        elif isinstance(found, list) and step.isdigit() and int(step) < len(found):
            found = found[int(step)]
        else:
            return None
    if isinstance(found, str | int | float) and not isinstance(found, bool):
        return str(found)
    return None


def _run_setup(
    scenario: Scenario, url: str, prefix: str, timeout: float, echo: Output
) -> tuple[dict[str, str], int]:
    """Run the set-up requests in order; return the captured values and the count."""
    import random

    constants: dict[str, str] = {}
    for number, request in enumerate(scenario.setup, 1):
        values = {"unique": f"{prefix}-setup-{number}", **constants}
        for name, items in scenario.values.items():
            values.setdefault(name, random.choice(items))
        path = render(request.path, values)
        headers = {name: render(value, values) for name, value in request.headers}
        body = render(request.body, values).encode() if request.body else None
        try:
            answer = http_request(
                url, request.method, path, headers=headers, body=body, timeout=timeout
            )
        except OSError as exc:
            raise LoadTestError(
                f"set-up request {number} ({request.method} {path}) got no answer:"
                f" {exc}"
            ) from None
        if request.expect is not None and answer.status not in request.expect:
            wanted = ", ".join(map(str, sorted(request.expect)))
            raise LoadTestError(
                f"set-up request {number} ({request.method} {path}) answered"
                f" {answer.status}, expected {wanted}:"
                f" {answer.body[:200].decode('utf-8', 'replace')!r}"
            )
        for name, source in request.capture.items():
            value = _capture(source, answer)
            if value is None:
                raise LoadTestError(
                    f"set-up request {number} ({request.method} {path}): nothing to"
                    f" capture as {name} from {source!r}."
                )
            constants[name] = value
        echo(f"set-up {number}: {request.method} {path} -> {answer.status}")
    return constants, len(scenario.setup)


# The run -----------------------------------------------------------------------------

_OWN_FILES = (
    "samples",
    "metrics-*",
    "server-*.log",
    "access-*.log",
    "wrk-*.lua",
    "wrk-*.out",
    "locust*.log",
    "locustfile.py",
    "migrate.log",
    "prepare.log",
    "results.json",
    "report.html",
)


def _clean(run_dir: pathlib.Path) -> None:
    """Remove what an earlier run left in ``--out`` (its own files only)."""
    for pattern in _OWN_FILES:
        for path in run_dir.glob(pattern):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


class _Generator(t.Protocol):
    def start(self) -> None: ...
    def finished(self) -> bool: ...
    def stop(self) -> None: ...
    def problem(self) -> str | None: ...


def _start_generators(
    generator: str,
    options: Options,
    plan: Plan | None,
    urls: list[str],
    samples_dir: pathlib.Path,
    run_dir: pathlib.Path,
    echo: Output,
) -> tuple[list[_Generator], list[wrk_generator.WrkRun]]:
    connections = split(options.connections, len(urls))
    deadline = time.time() + options.duration if options.duration else 0.0
    if generator == "wrk":
        assert plan is not None
        wrk = wrk_generator.find_wrk()
        assert wrk is not None
        budgets = (
            split(options.requests or DEFAULT_REQUESTS, options.connections)
            if options.duration is None
            else [0] * options.connections
        )
        runs = []
        taken = 0
        for index, url in enumerate(urls):
            mine = budgets[taken : taken + connections[index]]
            taken += connections[index]
            runs.append(
                wrk_generator.WrkRun(
                    wrk,
                    plan,
                    instance=index,
                    url=url,
                    connections=connections[index],
                    budgets=mine,
                    deadline=deadline,
                    samples_dir=samples_dir,
                    run_dir=run_dir,
                    timeout=options.timeout,
                )
            )
        for run in runs:
            run.start()
        return list(runs), runs
    budget = 0
    target = 0
    if options.duration is None:
        requests = options.requests or DEFAULT_REQUESTS
        if plan is None:
            target = requests
        else:
            budget = requests // options.connections
            if budget * options.connections != requests:
                echo(
                    f"note: Locust users make {budget} requests each:"
                    f" {budget * options.connections} in all."
                )
    files = [run_dir / "locustfile.py"]
    files[0].write_text(
        locust_generator.locustfile(
            plan,
            instances=list(zip(urls, connections, strict=True)),
            budget=budget,
            duration=options.duration or 0.0,
            target_requests=target,
            timeout=options.timeout,
        )
    )
    if options.locustfile:
        files.append(pathlib.Path(options.locustfile).resolve())
    master_host = "127.0.0.1"
    port = options.locust_master_port or free_port()
    locust_run = locust_generator.LocustRun(
        files=files,
        users=options.connections,
        workers=options.locust_workers,
        remote_workers=options.locust_remote_workers,
        master_host=master_host,
        master_port=port,
        host=urls[0] if options.locustfile else None,
        samples_dir=samples_dir,
        run_dir=run_dir,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        stop_timeout=math.ceil(options.timeout) + 5,
    )
    locust_run.start()
    if options.locust_remote_workers:
        echo(
            f"waiting for {options.locust_remote_workers} Locust worker(s) from other"
            " hosts; on each run: "
            + locust_run.command_for_other_hosts(socket.getfqdn())
        )
    return [locust_run], []


def run(
    options: Options,
    *,
    echo: Output = print,
    live: bool = False,
    load_app: cabc.Callable[[str], t.Any] | None = None,
) -> dict[str, t.Any]:
    """Run one load test and return its results (also written to ``--out``).

    :param echo: prints one line.
    :param live: the output is a terminal (the progress line is rewritten).
    :param load_app: imports the app named by ``options.app_spec`` (the CLI's
        ``load_app``); needed for the default scenario and to check the app
        before servers start.
    :raises UsageError: bad options, scenario, app, ``--check`` or ``--url``;
        nothing was started.
    :raises LoadTestError: the servers or the set-up could not run.
    """
    _check_options(options)
    generator = _choose_generator(options)
    saved_env = dict(os.environ)
    saved_bytecode = sys.dont_write_bytecode
    try:
        return _run(options, generator, echo, live, load_app)
    finally:
        sys.dont_write_bytecode = saved_bytecode
        os.environ.clear()
        os.environ.update(saved_env)


def _run(  # noqa: C901
    options: Options,
    generator: str,
    echo: Output,
    live: bool,
    load_app: cabc.Callable[[str], t.Any] | None,
) -> dict[str, t.Any]:
    scenario: Scenario | None = None
    if options.scenario:
        try:
            scenario = load_scenario(options.scenario)
        except ScenarioError as exc:
            raise UsageError(str(exc)) from None
    # The scenario's and --env's environment applies to this process too: to
    # importing the app, and to the --check function.
    os.environ.update(_extra_env(options, scenario))
    sys.dont_write_bytecode = True  # nothing written into the user's project
    app_spec = _absolute_app_spec(options.app_spec)
    app = None
    needs_app = not options.urls or not (scenario or options.locustfile)
    if load_app is not None and needs_app:
        try:
            app = load_app(options.app_spec)
        except Exception as exc:
            message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
            raise UsageError(
                f"cannot load the app {options.app_spec!r}: {message}"
            ) from None
    if scenario is None and not options.locustfile:
        try:
            scenario = default_scenario(app)
        except ScenarioError as exc:
            raise UsageError(str(exc)) from None
    check = _load_check(options.check) if options.check else None
    instances = len(options.urls) or options.instances
    connections = split(options.connections, instances)
    workers = options.workers or (
        max(connections) + 1 if (options.worker_class or "sync") == "sync" else 2
    )

    servers: list[LocalInstance | RemoteInstance] = []
    if options.urls:
        # Read first: an unreachable deployment is a usage error, and nothing
        # has been written or printed yet.
        metrics_path = scenario.metrics_path if scenario else "/metrics"
        headers = scenario.metrics_headers if scenario else {}
        for index, url in enumerate(options.urls):
            remote = RemoteInstance(index, url, metrics_path, headers, options.timeout)
            try:
                remote.start()
            except ValueError as exc:
                raise UsageError(f"--url {url}: {exc}") from None
            servers.append(remote)

    if options.out:
        run_dir = pathlib.Path(options.out).resolve()
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"--out {options.out!r}: {exc.strerror}.") from None
        _clean(run_dir)
    else:
        run_dir = pathlib.Path(tempfile.mkdtemp(prefix="framework-loadtest-"))
    samples_dir = run_dir / "samples"
    samples_dir.mkdir()
    prefix = "lt" + secrets.token_hex(3)
    env = _server_env(options, scenario)

    where = (
        ", ".join(options.urls)
        if options.urls
        else f"{instances} x framework serve ({options.worker_class or 'sync'},"
        f" {workers} workers"
        + (
            f" x {options.threads or 4} threads"
            if options.worker_class == "gthread"
            else ""
        )
        + ")"
    )
    bound = (
        f"{options.duration:g} s"
        if options.duration is not None
        else f"{options.requests or DEFAULT_REQUESTS:,} requests"
    )
    source = (
        options.locustfile
        if options.locustfile
        else scenario.source
        if scenario
        else ""
    )
    echo(
        f"loadtest {options.app_spec}: {where}; {generator}"
        + (f" ({options.locust_workers} workers)" if options.locust_workers else "")
        + f", {options.connections} connections, {bound}; {source}"
    )

    started = time.time()
    try:
        if not options.urls:
            if app is not None and _uses_orm():
                _run_command(
                    _framework_argv(app_spec, ["framework", "migrate", "--noinput"]),
                    run_dir,
                    env,
                    "migrate.log",
                )
            for command in scenario.prepare if scenario else []:
                _run_command(
                    _framework_argv(app_spec, command), run_dir, env, "prepare.log"
                )
            for index in range(instances):
                servers.append(
                    LocalInstance(
                        index, app_spec, _serve_args(options, workers), env, run_dir
                    )
                )
            for server in servers:
                assert isinstance(server, LocalInstance)
                problem = server.wait_ready()
                if problem:
                    raise LoadTestError(
                        f"{server.url}: {problem}: {server.tail(3)}"
                        f" (see {server.log_path})"
                    )
        urls = [server.url for server in servers]
        setup_counts = [0] * instances
        constants: dict[str, str] = {}
        if scenario is not None and scenario.setup:
            constants, setup_counts[0] = _run_setup(
                scenario, urls[0], prefix, options.timeout, echo
            )
        plan = (
            compile_plan(scenario, constants, prefix)
            if scenario is not None and not options.locustfile
            else None
        )
        samples = Samples(
            samples_dir, instances, None if options.locustfile else scenario
        )
        generators, wrk_runs = _start_generators(
            generator, options, plan, urls, samples_dir, run_dir, echo
        )
        outcome = _drive(generators, samples, options, echo, live)
        wrk_errors = sum(sum(run.socket_errors().values()) for run in wrk_runs)
        exit_codes = [server.stop() for server in servers]
        books: list[Books] = []
        for server in servers:
            try:
                books.append(server.books())
            except ValueError as exc:
                raise LoadTestError(f"{server.url}: {exc}") from None
    except BaseException:
        for server in servers:
            server.stop()
        if not options.out and run_dir.exists():
            echo(f"the run's files are in {run_dir}")
        raise

    found = checks(
        urls=urls,
        books=books,
        samples=samples,
        setup_requests=setup_counts,
        wrk_socket_errors=wrk_errors,
        exit_codes=None if options.urls else exit_codes,
    )
    found.insert(
        0,
        Check(
            "the generator ran to its end",
            outcome is None,
            outcome or f"{generator} made {samples.count:,} requests",
        ),
    )
    results = _results(
        options,
        generator=generator,
        scenario=scenario,
        urls=urls,
        books=books,
        samples=samples,
        setup_counts=setup_counts,
        exit_codes=exit_codes,
        workers=workers,
        run_dir=run_dir,
        started=started,
        env=_extra_env(options, scenario),
        found=found,
        plan_prefix=prefix,
    )
    if check is not None:
        found += _call_check(options.check or "", check, results)
        results["checks"] = [item.as_dict() for item in found]
    results["balanced"] = all(item.passed for item in found)
    summed = metrics.total(book.server for book in books)
    files = sorted(
        path.name
        for path in run_dir.iterdir()
        if path.is_file() and path.suffix in (".log", ".out", ".lua", ".py")
    )
    results["files"] = files
    (run_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (run_dir / "report.html").write_text(render_html(results, samples, summed))
    for line in summary_lines(results):
        echo(line)
    verdict = "BALANCED" if results["balanced"] else "NOT BALANCED"
    if options.out:
        echo(f"{verdict}; results in {run_dir}/results.json and report.html")
    elif results["balanced"]:
        shutil.rmtree(run_dir, ignore_errors=True)
        echo(f"{verdict} (give --out DIR to keep results.json and report.html)")
    else:
        echo(f"{verdict}; the run's files are kept in {run_dir}")
    return results


def _drive(
    generators: list[_Generator],
    samples: Samples,
    options: Options,
    echo: Output,
    live: bool,
) -> str | None:
    """Wait for the generators, printing progress; return a problem, or ``None``."""
    progress = _Progress(echo, live)
    started = time.monotonic()
    last_new = started
    shown = 0
    stall = max(30.0, 3 * options.timeout)
    limit = (options.duration or 0) + 120 if options.duration else math.inf
    problem = None
    try:
        while True:
            new = samples.poll()
            now = time.monotonic()
            if new:
                last_new = now
            if all(generator.finished() for generator in generators):
                break
            if now - last_new > stall:
                problem = f"no answer came for {stall:.0f} s: the generator was stopped"
                break
            if now - started > limit:
                problem = "the run overran its --duration by 2 minutes and was stopped"
                break
            window = samples.since(shown)
            if window and now - progress.last >= progress.interval:
                shown = samples.count
                elapsed = now - started
                errors = samples.socket_errors + sum(
                    sum(counter.values()) for counter in samples.unexpected.values()
                )
                ordered = sorted(window)
                p99 = ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]
                progress.show(
                    f"  {elapsed:6.1f} s  {samples.count:>9,} requests"
                    f"  {samples.count / max(elapsed, 1e-3):>8,.0f} req/s"
                    f"  p99 {p99:7.1f} ms  errors {errors:,}"
                )
            time.sleep(0.1)
    finally:
        for generator in generators:
            generator.stop()
        samples.poll()
        progress.end()
    for generator in generators:
        problem = problem or generator.problem()
    return problem


def _call_check(
    spec: str,
    check: cabc.Callable[[dict[str, t.Any]], t.Any],
    results: dict[str, t.Any],
) -> list[Check]:
    try:
        failed = check(results)
    except Exception as exc:
        return [
            Check(
                f"--check {spec}",
                False,
                f"raised {type(exc).__name__}: {' '.join(str(exc).split())}",
            )
        ]
    if failed is None:
        failed = []
    if not isinstance(failed, list | tuple):
        return [
            Check(
                f"--check {spec}",
                False,
                f"returned {type(failed).__name__}, not a list of failed checks",
            )
        ]
    if not failed:
        return [Check(f"--check {spec}", True, "no failed check")]
    return [Check(f"--check {spec}", False, str(item)) for item in failed]


def _results(
    options: Options,
    *,
    generator: str,
    scenario: Scenario | None,
    urls: list[str],
    books: list[Books],
    samples: Samples,
    setup_counts: list[int],
    exit_codes: list[int],
    workers: int,
    run_dir: pathlib.Path,
    started: float,
    env: dict[str, str],
    found: list[Check],
    plan_prefix: str,
) -> dict[str, t.Any]:
    summed = metrics.total(book.server for book in books)
    first = samples.first_start or started
    last = max(samples.times) if samples.count else first
    elapsed = max(last - first, 1e-9)
    server_ms = {
        key: round(summed.percentile(fraction) * 1000, 3)
        for key, fraction in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99))
    }
    server_ms["max"] = round(summed.max_seconds * 1000, 3)
    instances = []
    for index, url in enumerate(urls):
        book = books[index]
        instances.append(
            {
                "url": url,
                "completed": samples.completed[index] + setup_counts[index],
                "setup_requests": setup_counts[index],
                "request_started": book.request_started,
                "request_finished": book.request_finished,
                "got_request_exception": book.got_request_exception,
                "expected_exceptions": samples.expected_exceptions[index],
                "workers": book.workers,
                "exit_code": None if options.urls else exit_codes[index],
                "server_ms": {
                    key: round(book.server.percentile(fraction) * 1000, 3)
                    for key, fraction in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99))
                },
                "log": None if options.urls else f"server-{index}.log",
            }
        )
    return {
        "balanced": all(item.passed for item in found),
        "completed": samples.count + sum(setup_counts),
        "throughput_rps": round(samples.count / elapsed, 1) if samples.count else 0.0,
        "duration_seconds": round(elapsed, 3),
        "latency_ms": percentiles(samples.latencies),
        "server_ms": server_ms,
        "server_requests": sum(summed.buckets),
        "checks": [item.as_dict() for item in found],
        "signals": [
            {
                "instance": url,
                "request_started": book.request_started,
                "request_finished": book.request_finished,
                "got_request_exception": book.got_request_exception,
            }
            for url, book in zip(urls, books, strict=True)
        ],
        "instances": instances,
        "requests": {
            name: {
                "count": sum(samples.statuses[name].values()),
                "statuses": {
                    str(status): count
                    for status, count in sorted(samples.statuses[name].items())
                },
                "latency_ms": percentiles(samples.by_name[name]),
            }
            for name in sorted(samples.statuses)
        },
        "errors": {
            "socket": samples.socket_errors,
            "unexpected_status": {
                name: {str(status): count for status, count in sorted(counter.items())}
                for name, counter in sorted(samples.unexpected.items())
            },
        },
        "acknowledged": {
            name: list(values) for name, values in sorted(samples.acknowledged.items())
        },
        "config": {
            "app": options.app_spec,
            "scenario": scenario.source if scenario and not scenario.default else None,
            "locustfile": options.locustfile,
            "generator": generator,
            "requests": (options.requests or DEFAULT_REQUESTS)
            if options.duration is None
            else None,
            "duration": options.duration,
            "connections": options.connections,
            "instances": len(urls),
            "urls": options.urls,
            "workers": None if options.urls else workers,
            "worker_class": None if options.urls else options.worker_class or "sync",
            "threads": (options.threads or 4)
            if options.worker_class == "gthread"
            else None,
            "gunicorn_config": os.path.abspath(options.config_file)
            if options.config_file
            else None,
            "locust_workers": options.locust_workers,
            "check": options.check,
        },
        "unique_prefix": plan_prefix,
        "server": {"cwd": str(run_dir), "env": env},
        "run_dir": str(run_dir),
        "started_at": datetime.datetime.fromtimestamp(started, datetime.UTC).isoformat(
            timespec="seconds"
        ),
    }
