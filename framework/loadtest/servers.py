"""The servers under load: local gunicorn instances, or running deployments.

A :class:`LocalInstance` is ``framework serve`` on a free 127.0.0.1 port, with
its own counters directory (``FRAMEWORK_METRICS_DIR``); its books are read
from the counter files once it has stopped. A :class:`RemoteInstance` is a
running deployment named with ``--url``; its books are read over HTTP from
its ``/metrics`` (:func:`framework.metrics.view`), before and after the load,
so instances on other hosts are accounted exactly like local ones.
"""

from __future__ import annotations

import dataclasses
import http.client
import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import time
import typing as t
import urllib.parse

from .. import metrics

__all__ = [
    "Books",
    "HTTPAnswer",
    "LocalInstance",
    "RemoteInstance",
    "free_port",
    "http_request",
]


@dataclasses.dataclass
class Books:
    """What a server counted during the run."""

    request_started: int
    """``request_started`` signals."""
    request_finished: int
    """``request_finished`` signals."""
    got_request_exception: int
    """``got_request_exception`` signals."""
    server: metrics.Snapshot
    """The durations (the histogram) and the counts in one snapshot."""
    workers: int
    """Processes that counted (recycled ones included); 0 when unknown."""


@dataclasses.dataclass
class HTTPAnswer:
    """One answer to :func:`http_request`."""

    status: int
    """The status code."""
    headers: list[tuple[str, str]]
    """The response headers, in order."""
    body: bytes
    """The body."""

    def header(self, name: str) -> str | None:
        """Return the first header ``name`` (any case), or ``None``."""
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_request(
    base_url: str,
    method: str,
    path: str,
    *,
    headers: t.Mapping[str, str] | None = None,
    body: bytes | None = None,
    timeout: float = 10.0,
) -> HTTPAnswer:
    """Send one request on a new connection and read the whole answer.

    :raises OSError: the server cannot be reached or does not answer.
    """
    parts = urllib.parse.urlsplit(base_url)
    connection_class = (
        http.client.HTTPSConnection
        if parts.scheme == "https"
        else http.client.HTTPConnection
    )
    connection = connection_class(parts.netloc, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=dict(headers or {}))
        response = connection.getresponse()
        return HTTPAnswer(response.status, response.getheaders(), response.read())
    except http.client.HTTPException as exc:
        raise OSError(f"bad HTTP answer: {exc!r}") from exc
    finally:
        connection.close()


class LocalInstance:
    """``framework serve`` on a free 127.0.0.1 port, its output in files.

    :param index: its number in the run.
    :param app_spec: the ``--app`` of the servers.
    :param serve_args: options of ``framework serve`` (workers, class...).
    :param env: the environment (its counters directory is added).
    :param workers: the workers it starts (it is ready when all count).
    """

    def __init__(
        self,
        index: int,
        app_spec: str,
        serve_args: list[str],
        env: dict[str, str],
        run_dir: pathlib.Path,
        workers: int = 1,
    ) -> None:
        self.index = index
        self.workers = workers
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        """The base URL."""
        self.metrics_dir = run_dir / f"metrics-{index}"
        self.log_path = run_dir / f"server-{index}.log"
        """gunicorn's output."""
        self.access_log = run_dir / f"access-{index}.log"
        self.exit_code: int | None = None
        metrics.check_directory(self.metrics_dir)
        self.command = [
            sys.executable,
            "-m",
            "framework",
            "--app",
            app_spec,
            "serve",
            "--no-migrate",
            "--bind",
            f"127.0.0.1:{self.port}",
            "--access-logfile",
            str(self.access_log),
            "--graceful-timeout",
            "20",
            *serve_args,
        ]
        self.env = {**env, metrics.DIRECTORY_VARIABLE: str(self.metrics_dir)}
        self.env.pop(metrics.SWITCH_VARIABLE, None)
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                self.command,
                cwd=run_dir,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def wait_ready(self, timeout: float = 60.0) -> str | None:
        """Wait until every worker counts; return why it cannot, or ``None``.

        The master listens before its workers boot (the kernel queues the
        connections), so a listening port says nothing about the app: a
        server is ready once each worker has opened its counters file, which
        it does in ``post_worker_init``, after importing the app.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return self.exited()
            if self.booted() >= self.workers:
                return None
            time.sleep(0.05)
        return f"the workers did not start within {timeout:.0f} s"

    def booted(self) -> int:
        """Return how many live workers have opened their counters."""
        return sum(
            1
            for worker in metrics.read(self.metrics_dir)
            if worker != metrics.RETIRED and _alive(int(worker))
        )

    def exited(self) -> str | None:
        """Describe the server's exit (with its last error), or ``None`` if it runs."""
        code = self.process.poll()
        if code is None:
            return None
        last = self.last_error()
        return f"the server exited with status {code}" + (f": {last}" if last else "")

    def stop(self, timeout: float = 40.0) -> int:
        """Stop it gracefully (SIGTERM) and return its exit status."""
        if self.exit_code is not None:
            return self.exit_code
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.exit_code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
            self.exit_code = -signal.SIGKILL
        return self.exit_code

    def books(self) -> Books:
        """Sum every worker's counters (read from the files; stop it first)."""
        found = metrics.read(self.metrics_dir)
        summed = metrics.total(found.values())
        return Books(
            request_started=summed.request_started,
            request_finished=summed.request_finished,
            got_request_exception=summed.got_request_exception,
            server=summed,
            workers=summed.processes,
        )

    def last_error(self) -> str:
        """Return the line of its output that says best why it stopped.

        The last line of the last traceback (``Type: message``) if there is
        one, else the last line of the output.
        """
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        errors = [line for line in lines if _ERROR_LINE.match(line)]
        return (errors or lines or [""])[-1]


def _window_max(
    before: metrics.Snapshot, after: metrics.Snapshot, buckets: tuple[int, ...]
) -> int:
    """Return the longest request between two reads of a deployment's counters.

    The counters keep the longest request of the server's whole life: when
    it grew in between, it is the run's; otherwise the run's longest is at
    most the upper bound of its highest histogram bucket.
    """
    if after.max_ns > before.max_ns:
        return after.max_ns
    top = max((index for index, count in enumerate(buckets) if count), default=-1)
    if top < 0:
        return 0
    if top >= len(metrics.BUCKET_BOUNDS):
        return after.max_ns
    return min(after.max_ns, round(metrics.BUCKET_BOUNDS[top] * 1e9))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover (another user's process)
        return True
    return True


_ERROR_LINE = re.compile(r"[A-Za-z_][\w.]*(Error|Exception|Configured|Exit)\b.*?: \S")


class RemoteInstance:
    """A running deployment, its books read over HTTP from its ``/metrics``.

    :param url: its base URL, ``http://HOST:PORT``.
    :param metrics_path: where it serves :func:`framework.metrics.view`.
    :param headers: headers of the ``/metrics`` requests.
    """

    exit_code = 0

    def __init__(
        self,
        index: int,
        url: str,
        metrics_path: str,
        headers: t.Mapping[str, str],
        timeout: float,
    ) -> None:
        self.index = index
        self.url = url.rstrip("/")
        self.metrics_path = metrics_path
        self.headers = dict(headers)
        self.timeout = timeout
        self.polls = 0
        self.before: metrics.Snapshot | None = None
        self.log_path: pathlib.Path | None = None

    def read_metrics(self) -> metrics.Snapshot:
        """GET the counters (every histogram bucket).

        :raises ValueError: unreachable, not 200, not framework.metrics, or
            the counters of one worker only (no shared directory).
        """
        path = (
            self.metrics_path
            + ("&" if "?" in self.metrics_path else "?")
            + "buckets=all"
        )
        where = f"{self.url}{self.metrics_path}"
        try:
            answer = http_request(
                self.url, "GET", path, headers=self.headers, timeout=self.timeout
            )
        except OSError as exc:
            raise ValueError(f"cannot reach {where}: {exc}") from None
        self.polls += 1
        if answer.status != 200:
            raise ValueError(
                f"{where} answered {answer.status}: mount framework.metrics.view"
                " there (app.add_route('/metrics', metrics.view)), or give its"
                " path and headers in the scenario's [metrics] table."
            )
        try:
            snapshot, shared = metrics.parse(answer.body.decode("utf-8", "replace"))
        except ValueError as exc:  # another exporter's text, or malformed
            raise ValueError(
                f"{where} is not framework.metrics' Prometheus text ({exc})."
            ) from None
        if not shared:
            raise ValueError(
                f"{where} counts only the worker that answers"
                " (framework_metrics_shared 0): serve it with framework serve, or"
                f" give its workers a shared {metrics.DIRECTORY_VARIABLE}."
            )
        return snapshot

    def start(self) -> None:
        """Read the counters before the load."""
        self.polls = 0
        self.before = self.read_metrics()

    def books(self, settle: float = 10.0) -> Books:
        """Read the counters after the load: what happened in between.

        Each read of ``/metrics`` is itself a request: the one read before
        the load finishes during it, and each later read starts before it
        counts. So after ``k`` reads, ``started`` and ``finished`` each hold
        ``k - 1`` of them beyond the load; they are taken off. Reads repeat
        (up to ``settle`` seconds) until every started request has finished:
        ``request_finished`` comes when the server closes the response, just
        after the client has it.
        """
        assert self.before is not None
        deadline = time.monotonic() + settle
        while True:
            after = self.read_metrics()
            own = self.polls - 1
            started = after.request_started - self.before.request_started - own
            finished = after.request_finished - self.before.request_finished - own
            if started == finished or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        before = self.before
        buckets = tuple(
            max(0, a - b) for a, b in zip(after.buckets, before.buckets, strict=True)
        )
        server = metrics.Snapshot(
            request_started=started,
            request_finished=finished,
            got_request_exception=after.got_request_exception
            - before.got_request_exception,
            duration_ns=max(0, after.duration_ns - before.duration_ns),
            max_ns=_window_max(before, after, buckets),
            buckets=buckets,
            processes=after.processes,
        )
        return Books(
            request_started=started,
            request_finished=finished,
            got_request_exception=server.got_request_exception,
            server=server,
            workers=after.processes,
        )

    def stop(self) -> int:
        """Nothing to stop: the deployment is not ours."""
        return 0
