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
import datetime
import json
import math
import os
import pathlib
import secrets
import shutil
import socket
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
from .options import DEFAULT_REQUESTS
from .options import LoadTestError
from .options import Options
from .options import UsageError
from .options import absolute_app_spec
from .options import check_options
from .options import choose_generator
from .options import load_check
from .prepare import extra_env
from .prepare import framework_argv
from .prepare import run_command
from .prepare import run_setup
from .prepare import serve_args
from .prepare import server_env
from .prepare import uses_orm
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
from .servers import Books
from .servers import LocalInstance
from .servers import RemoteInstance
from .servers import free_port

__all__ = ["LoadTestError", "Options", "UsageError", "run"]

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


# The run -----------------------------------------------------------------------------

_MARKER = ".framework-loadtest"
"""The file that marks a directory as ``--out`` of a run (its files may go)."""


def _out_directory(out: str) -> pathlib.Path:
    """Make ``--out``, or empty an earlier run's, and return it.

    An earlier run's directory is emptied, so that the servers start with
    a fresh database there (a relative SQLite path) and no file of that run
    is taken for this one's.

    :raises UsageError: it cannot be made, or it holds files that no run
        wrote (a run replaces what is there, so such a directory is never
        used).
    """
    run_dir = pathlib.Path(out).resolve()
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        foreign = not (run_dir / _MARKER).is_file() and any(run_dir.iterdir())
    except OSError as exc:
        raise UsageError(f"--out {out!r}: {exc.strerror}.") from None
    if foreign:
        raise UsageError(
            f"--out {out!r} holds files that no load test wrote: give a new or"
            " empty directory (a run replaces what is there)."
        )
    try:
        for path in run_dir.iterdir():
            if path.name == _MARKER:
                continue
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        (run_dir / _MARKER).touch()
    except OSError as exc:
        raise UsageError(
            f"--out {out!r}: cannot empty it ({exc.strerror}: {exc.filename})."
        ) from None
    return run_dir


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
    check_options(options)
    generator = choose_generator(options)
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
    os.environ.update(extra_env(options, scenario))
    sys.dont_write_bytecode = True  # nothing written into the user's project
    app_spec = absolute_app_spec(options.app_spec)
    app = None
    needs_app = not options.urls or not (scenario or options.locustfile)
    if load_app is not None and needs_app:
        try:
            app = load_app(options.app_spec)
        except UsageError:
            raise
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
    check = load_check(options.check) if options.check else None
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
        run_dir = _out_directory(options.out)
    else:
        run_dir = pathlib.Path(tempfile.mkdtemp(prefix="framework-loadtest-"))
    samples_dir = run_dir / "samples"
    samples_dir.mkdir()
    prefix = "lt" + secrets.token_hex(3)
    env = server_env(options, scenario)

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
            if app is not None and uses_orm():
                run_command(
                    framework_argv(app_spec, ["framework", "migrate", "--noinput"]),
                    run_dir,
                    env,
                    "migrate.log",
                )
            for command in scenario.prepare if scenario else []:
                run_command(
                    framework_argv(app_spec, command), run_dir, env, "prepare.log"
                )
            for index in range(instances):
                servers.append(
                    LocalInstance(
                        index,
                        app_spec,
                        serve_args(options, workers),
                        env,
                        run_dir,
                        workers=workers,
                    )
                )
            for server in servers:
                assert isinstance(server, LocalInstance)
                problem = server.wait_ready()
                if problem:
                    raise LoadTestError(
                        f"{server.url}: {problem} (see {server.log_path})"
                    )
        urls = [server.url for server in servers]
        setup_counts = [0] * instances
        constants: dict[str, str] = {}
        if scenario is not None and scenario.setup:
            constants, setup_counts[0] = run_setup(
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
        outcome = _drive(generators, samples, options, echo, live, servers)
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
        env=_shown_env(extra_env(options, scenario)),
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
    servers: cabc.Sequence[LocalInstance | RemoteInstance] = (),
) -> str | None:
    """Wait for the generators, printing progress; return a problem, or ``None``.

    A local server that exits stops the run at once (its workers failed):
    the generator would otherwise meet closed ports until it stalls.
    """
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
            exited = [
                f"{server.url}: {server.exited()}"
                for server in servers
                if isinstance(server, LocalInstance) and server.exited() is not None
            ]
            if exited:
                problem = "; ".join(exited)
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
    for server in servers:
        # A server that exited explains the generator's failure best.
        why = server.exited() if isinstance(server, LocalInstance) else None
        if why is not None and not problem:
            problem = f"{server.url}: {why}"
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


_SECRET_WORDS: t.Final = ("SECRET", "PASSWORD", "TOKEN", "KEY")


def _shown_env(env: dict[str, str]) -> dict[str, str]:
    """Return the servers' extra environment for results.json, secrets hidden.

    A variable named as a secret is hidden whole; a URL keeps all but its
    password (``postgresql://user:<hidden>@host/db``).
    """
    return {
        name: "<hidden>"
        if any(word in name.upper() for word in _SECRET_WORDS)
        else _without_password(value)
        for name, value in env.items()
    }


def _without_password(value: str) -> str:
    try:
        parts = urllib.parse.urlsplit(value)
        password = parts.password
    except ValueError:
        return value
    if not password or "@" not in parts.netloc:
        return value
    userinfo, _, host = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return parts._replace(netloc=f"{user}:<hidden>@{host}").geturl()


def _server_ms(snapshot: metrics.Snapshot) -> dict[str, float]:
    """Return the server-side p50, p90 and p99 of ``snapshot``, in milliseconds."""
    return {
        key: round(snapshot.percentile(fraction) * 1000, 3)
        for key, fraction in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99))
    }


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
    server_ms = _server_ms(summed)
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
                "server_ms": _server_ms(book.server),
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
