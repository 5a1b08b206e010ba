"""Before the load: the servers' environment and command, migrating, set-up requests."""

from __future__ import annotations

import contextlib
import http.cookies
import importlib.util
import json
import os
import pathlib
import random
import re
import secrets
import subprocess
import sys
import typing as t
import urllib.parse

from .. import metrics
from .options import LoadTestError
from .options import Options
from .scenario import Scenario
from .scenario import render
from .servers import HTTPAnswer
from .servers import http_request

__all__ = [
    "capture",
    "extra_env",
    "framework_argv",
    "run_command",
    "run_setup",
    "serve_args",
    "server_env",
    "uses_orm",
]

Output = t.Callable[[str], None]
"""Prints one line."""

# Servers -------------------------------------------------------------------------


def run_command(
    argv: list[str], run_dir: pathlib.Path, env: dict[str, str], log_name: str
) -> None:
    """Run a command in the run directory, its output appended to ``log_name``.

    :raises LoadTestError: it failed (with the last line of its output).
    """
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


def framework_argv(app_spec: str, argv: list[str]) -> list[str]:
    """Make ``["framework", ...]`` this Python's ``framework --app APP ...``."""
    if argv and argv[0] == "framework":
        return [sys.executable, "-m", "framework", "--app", app_spec, *argv[1:]]
    return argv


def uses_orm() -> bool:
    """Whether the loaded app has installed apps and the ORM (then: migrate)."""
    from ..conf import settings

    if not getattr(settings, "INSTALLED_APPS", None):
        return False
    return importlib.util.find_spec("framework.orm") is not None and (
        importlib.util.find_spec("sqlalchemy") is not None
    )


def server_env(options: Options, scenario: Scenario | None) -> dict[str, str]:
    """Return the servers' environment.

    This process's, without ``GUNICORN_CMD_ARGS`` and the counters' variables,
    with the current directory first on ``PYTHONPATH`` (the app is found), no
    bytecode written (nothing lands in the user's project), then the scenario's
    ``[server] env`` and ``--env``.
    """
    env = dict(os.environ)
    env.pop("GUNICORN_CMD_ARGS", None)
    env.pop(metrics.SWITCH_VARIABLE, None)
    env.pop(metrics.DIRECTORY_VARIABLE, None)
    paths = [os.getcwd(), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra_env(options, scenario))
    return env


def extra_env(options: Options, scenario: Scenario | None) -> dict[str, str]:
    """Return what the scenario and ``--env`` add to the servers' environment.

    Unless this environment, the scenario or ``--env`` sets
    ``FRAMEWORK_SECRET_KEY``, the run gets a random key of its own, shared by
    its servers: ``framework serve`` refuses to start without a key, and a
    load test's sessions need no key that outlives it.
    """
    env = {**(scenario.server_env if scenario else {}), **options.env}
    # NOTE: this process's environment gets the result too (run.py), so the
    # run's own key found there is still this run's, to be passed on.
    configured = os.environ.get(SECRET_KEY_VARIABLE) or _RUN_SECRET_KEY
    if SECRET_KEY_VARIABLE not in env and configured == _RUN_SECRET_KEY:
        env[SECRET_KEY_VARIABLE] = _RUN_SECRET_KEY
    return env


SECRET_KEY_VARIABLE = "FRAMEWORK_SECRET_KEY"
"""The environment variable of the servers' ``SECRET_KEY``."""

_RUN_SECRET_KEY: t.Final = secrets.token_urlsafe(50)


def serve_args(options: Options, workers: int) -> list[str]:
    """Return the ``framework serve`` options of every local instance."""
    worker_class = options.worker_class or "sync"
    args = ["--workers", str(workers), "--worker-class", worker_class]
    if worker_class == "gthread":
        args += ["--threads", str(options.threads or 4)]
    if options.config_file:
        args += ["--config", os.path.abspath(options.config_file)]
    return args


# Set-up requests -------------------------------------------------------------------


def capture(source: str, answer: HTTPAnswer) -> str | None:
    """Return the value ``json:a.b``, ``header:Name`` or ``cookie:name`` of an answer.

    :returns: the value as text, or ``None`` when the answer has no such value.
    """
    kind, _, key = source.partition(":")
    if kind == "header":
        return answer.header(key)
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


_NON_ASCII = re.compile(r"[^\x00-\x7f]+")


def run_setup(
    scenario: Scenario, url: str, prefix: str, timeout: float, echo: Output
) -> tuple[dict[str, str], int]:
    """Run the set-up requests in order; return the captured values and the count."""
    constants: dict[str, str] = {}
    for number, request in enumerate(scenario.setup, 1):
        values = {"unique": f"{prefix}-setup-{number}", **constants}
        for name, items in scenario.values.items():
            values.setdefault(name, random.choice(items))
        # The generators send a path's UTF-8 as it is (wrk) or percent-encode
        # it (Locust); http.client takes ASCII only.
        path = _NON_ASCII.sub(
            lambda match: urllib.parse.quote(match.group()),
            render(request.path, values),
        )
        headers = {name: render(value, values) for name, value in request.headers}
        body = render(request.body, values).encode() if request.body else None
        try:
            answer = http_request(
                url, request.method, path, headers=headers, body=body, timeout=timeout
            )
        except ValueError as exc:  # a header http.client cannot send
            raise LoadTestError(
                f"set-up request {number} ({request.method} {path}) cannot be"
                f" sent: {exc}"
            ) from None
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
            value = capture(source, answer)
            if value is None:
                raise LoadTestError(
                    f"set-up request {number} ({request.method} {path}): nothing to"
                    f" capture as {name} from {source!r}."
                )
            constants[name] = value
        echo(f"set-up {number}: {request.method} {path} -> {answer.status}")
    return constants, len(scenario.setup)
