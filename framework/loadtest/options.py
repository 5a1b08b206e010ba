"""The options of a load test, and checking them before anything starts."""

from __future__ import annotations

import collections.abc as cabc
import dataclasses
import importlib
import os
import sys
import typing as t
import urllib.parse

from . import locust as locust_generator
from . import wrk as wrk_generator
from ._plan import split

__all__ = [
    "DEFAULT_REQUESTS",
    "LoadTestError",
    "Options",
    "UsageError",
    "absolute_app_spec",
    "check_options",
    "choose_generator",
    "load_check",
]

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


# Checking the options --------------------------------------------------------------


def _check_url(url: str) -> str:
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError for a bad port)
    except ValueError as exc:
        raise UsageError(f"--url {url!r} is not a URL ({exc}).") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"--url {url!r} is not an http:// or https:// URL.")
    if "@" in parts.netloc:
        # The counters are read with the scenario's [metrics] headers; a
        # user:password here would only be taken for part of the host name.
        raise UsageError(
            f"--url {url!r}: give the server's root without user:password@;"
            " put credentials in the scenario's [metrics] headers."
        )
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise UsageError(
            f"--url {url!r}: give the server's root, {parts.scheme}://"
            f"{parts.netloc}; paths come from the scenario."
        )
    return f"{parts.scheme}://{parts.netloc}"


def check_options(options: Options) -> None:  # noqa: C901
    """Refuse options that contradict each other or cannot work.

    Normalizes ``options.urls`` to ``scheme://host:port``.

    :raises UsageError: with what is wrong and how to fix it.
    """
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
        for position, url in enumerate(options.urls):
            if url in options.urls[:position]:
                # Each instance's books are its own /metrics: the same server
                # twice would count the load of both in each.
                raise UsageError(
                    f"--url {url} is given twice: give each instance once."
                )
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


def choose_generator(options: Options) -> str:
    """Return ``"wrk"`` or ``"locust"``: the one asked for, else what is installed.

    :raises UsageError: the generator is not installed.
    """
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


def load_check(spec: str) -> cabc.Callable[[dict[str, t.Any]], t.Any]:
    """Import the ``--check`` function, ``module:function`` (cwd on the path).

    :raises UsageError: it cannot be imported, or is not callable.
    """
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


def absolute_app_spec(spec: str) -> str:
    """Make a file-path ``--app`` absolute: the servers run in the run directory."""
    target, sep, attribute = spec.rpartition(":")
    if not sep:
        target, attribute = spec, ""
    if target.endswith(".py") or os.sep in target:
        target = os.path.abspath(target)
        return f"{target}:{attribute}" if sep else target
    return spec
