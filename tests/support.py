"""What many test modules need: free ports, real servers, PostgreSQL databases.

Import it as ``import support`` / ``from support import Server`` (``tests/`` is
on ``sys.path`` through the root ``conftest.py``). One copy of each helper, one
retry budget for each wait:

- :func:`free_port`, :func:`wait_for_port`, :func:`wait_for_log`;
- :class:`Server`: a real server process on 127.0.0.1 (``framework serve``,
  ``gunicorn`` or any command) whose output goes to a file, never to a pipe;
- :func:`postgres_up`, :func:`require_postgres`, :func:`create_pg_database`,
  :func:`drop_pg_database`: test databases of their own on the PostgreSQL server
  at 127.0.0.1:5432 (the server itself is never touched).
"""

from __future__ import annotations

import contextlib
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
import urllib.error
import urllib.request

import pytest

TESTS = pathlib.Path(__file__).resolve().parent
ROOT = TESTS.parent

PG_HOST = "127.0.0.1"
PG_PORT = 5432
PG_ADMIN = f"host={PG_HOST} port={PG_PORT} user=postgres dbname=test connect_timeout=3"
"""Where test databases are created from (trust auth, the ``test`` database)."""

TEST_SECRET_KEY = "tests-only-5e3c1f0b8a9d4e7f9b2a6c1d0e8f7a3b"
"""The ``SECRET_KEY`` of servers started by the tests (:func:`subprocess_env`)."""

START_TIMEOUT = 30.0
"""Seconds a server gets to listen (a loaded 2-core machine can be slow)."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _read(path: pathlib.Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


def wait_for_port(
    port: int,
    process: subprocess.Popen[t.Any],
    log_path: pathlib.Path,
    timeout: float = START_TIMEOUT,
) -> None:
    """Wait until ``port`` on 127.0.0.1 accepts connections.

    :raises AssertionError: the process exited first, or the time ran out
        (with the process's output).
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited early:\n{_read(log_path)}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"server did not start in {timeout}s:\n{_read(log_path)}")


def wait_for_log(
    pattern: str,
    process: subprocess.Popen[t.Any],
    log_path: pathlib.Path,
    timeout: float = START_TIMEOUT,
) -> re.Match[str]:
    """Wait until the process's output file matches the regex ``pattern``.

    :returns: the match.
    :raises AssertionError: the process exited first, or the time ran out.
    """
    compiled = re.compile(pattern)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = compiled.search(_read(log_path))
        if found:
            return found
        if process.poll() is not None:
            break
        time.sleep(0.05)
    raise AssertionError(f"{pattern!r} never appeared:\n{_read(log_path)}")


def get(url: str, timeout: float = 10.0) -> tuple[int, bytes]:
    """GET ``url``; return the status and body (error statuses too)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read()


def subprocess_env(
    env: t.Mapping[str, str] | None = None,
    pythonpath: t.Iterable[str | os.PathLike[str]] = (),
    *,
    clean: bool = False,
) -> dict[str, str]:
    """The environment of a child process.

    :param env: variables to set on top of this process's environment.
    :param pythonpath: directories put first on ``PYTHONPATH`` (the checkout
        root always follows them).
    :param clean: drop every inherited ``FRAMEWORK_*`` variable first.

    ``FRAMEWORK_SECRET_KEY`` is :data:`TEST_SECRET_KEY` unless given.
    """
    full = {
        key: value
        for key, value in os.environ.items()
        if not (clean and key.startswith("FRAMEWORK_"))
    }
    full.update(env or {})
    # Servers refuse an empty SECRET_KEY outside DEBUG (framework.security).
    full.setdefault("FRAMEWORK_SECRET_KEY", TEST_SECRET_KEY)
    paths = [str(path) for path in pythonpath] + [str(ROOT)]
    if full.get("PYTHONPATH"):
        paths.append(full["PYTHONPATH"])
    full["PYTHONPATH"] = os.pathsep.join(paths)
    return full


class Server:
    """A real server process listening on 127.0.0.1, its output in a file.

    Use :meth:`serve` (``framework serve``), :meth:`gunicorn` or the
    constructor with any command. :meth:`stop` sends SIGTERM and waits.

    :param command: the argv; it must listen on ``port``.
    :param port: the port it listens on (``None``: read from the output with
        ``port_pattern``, for commands bound to port 0).
    :param port_pattern: a regex whose first group is the port.
    """

    def __init__(
        self,
        command: list[str],
        *,
        cwd: str | os.PathLike[str],
        log_path: pathlib.Path,
        env: dict[str, str],
        port: int | None = None,
        port_pattern: str = r"Listening at: http://127\.0\.0\.1:(\d+)",
    ) -> None:
        self.command = command
        self.log_path = log_path
        self._port = port
        self._port_pattern = port_pattern
        self.log_file = open(log_path, "wb")
        self.process = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

    @classmethod
    def serve(
        cls,
        tmp_path: pathlib.Path,
        app: str,
        args: t.Sequence[str] = (),
        env: t.Mapping[str, str] | None = None,
        pythonpath: t.Iterable[str | os.PathLike[str]] = (),
        cwd: str | os.PathLike[str] | None = None,
    ) -> Server:
        """Start ``framework --app APP serve`` on a free port.

        The graceful timeout is 5 s: a worker that gets SIGTERM while still
        booting (before gunicorn installs its handlers) only stops when it
        runs out.
        """
        port = free_port()
        command = [
            sys.executable,
            "-m",
            "framework",
            "--app",
            app,
            "serve",
            "--bind",
            f"127.0.0.1:{port}",
            "--graceful-timeout",
            "5",
            *args,
        ]
        return cls(
            command,
            cwd=cwd or tmp_path,
            log_path=tmp_path / f"server-{port}.log",
            env=subprocess_env(env, pythonpath),
            port=port,
        )

    @classmethod
    def gunicorn(
        cls,
        tmp_path: pathlib.Path,
        app: str,
        args: t.Sequence[str] = (),
        env: t.Mapping[str, str] | None = None,
        pythonpath: t.Iterable[str | os.PathLike[str]] = (),
        cwd: str | os.PathLike[str] | None = None,
        clean: bool = False,
    ) -> Server:
        """Start plain ``gunicorn ... APP`` on a free port."""
        port = free_port()
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            "--bind",
            f"127.0.0.1:{port}",
            "--graceful-timeout",
            "5",
            *args,
            app,
        ]
        return cls(
            command,
            cwd=cwd or tmp_path,
            log_path=tmp_path / f"gunicorn-{port}.log",
            env=subprocess_env(env, pythonpath, clean=clean),
            port=port,
        )

    @property
    def port(self) -> int:
        """The port it listens on (read from its output when bound to port 0)."""
        if self._port is None:
            found = wait_for_log(self._port_pattern, self.process, self.log_path)
            self._port = int(found.group(1))
        return self._port

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def output(self) -> str:
        """Everything the process wrote so far."""
        return _read(self.log_path)

    def wait_ready(self, timeout: float = START_TIMEOUT) -> Server:
        """Wait until it accepts connections; return it."""
        wait_for_port(self.port, self.process, self.log_path, timeout)
        return self

    def get(self, path: str, timeout: float = 10.0) -> tuple[int, bytes]:
        """GET ``path``; return the status and body."""
        return get(self.url + path, timeout)

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: t.Mapping[str, str] | None = None,
        timeout: float = 10.0,
    ) -> tuple[int, dict[str, str], bytes]:
        """Send one request on a new connection; return status, headers, body."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=dict(headers or {}))
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()

    def stop(self, timeout: float = 20.0) -> int:
        """Send SIGTERM, wait for the exit and return its status (kill on timeout)."""
        try:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
                raise
        finally:
            self.log_file.close()

    def kill(self) -> None:
        """Kill it if it still runs (a fixture's last resort)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)
        if not self.log_file.closed:
            self.log_file.close()


# PostgreSQL ----------------------------------------------------------------


def postgres_up() -> bool:
    """Whether the PostgreSQL server answers on 127.0.0.1:5432."""
    with socket.socket() as sock:
        sock.settimeout(1)
        try:
            sock.connect((PG_HOST, PG_PORT))
        except OSError:
            return False
    return True


def require_postgres() -> None:
    """Skip the test when PostgreSQL does not answer (fail where it is mandatory)."""
    if postgres_up():
        return
    message = f"PostgreSQL on {PG_HOST}:{PG_PORT} does not answer"
    if os.environ.get("FRAMEWORK_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"{message}, and FRAMEWORK_REQUIRE_POSTGRES=1 makes it required")
    pytest.skip(message)


def pg_url(name: str) -> str:
    """The ``DATABASES`` URL of the test database ``name``."""
    return f"postgresql://postgres@{PG_HOST}:{PG_PORT}/{name}"


def create_pg_database(prefix: str) -> tuple[str, str]:
    """Create a fresh database ``<prefix>_<pid>_<n>``; return its name and URL.

    ``CREATE DATABASE`` copies ``template1`` and fails while another session
    copies it too: that is retried for up to 10 s.

    :raises pytest.skip.Exception: PostgreSQL does not answer (see
        :func:`require_postgres`).
    """
    require_postgres()
    import psycopg

    from framework.testing.databases import recreate_database

    name = f"{prefix}_{os.getpid()}_{next(_counter)}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        recreate_database(admin, name)
    return name, pg_url(name)


def drop_pg_database(name: str) -> None:
    """Drop the test database ``name``, ending its sessions (never the server's)."""
    import psycopg

    with contextlib.suppress(psycopg.OperationalError):
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _numbers() -> t.Iterator[int]:
    number = 0
    while True:
        number += 1
        yield number


_counter = _numbers()


# The installed package -------------------------------------------------------


class InstalledFramework:
    """The project's wheel installed in a fresh virtualenv, away from the checkout.

    Built once per test session by the ``installed_framework`` fixture
    (``tests/conftest.py``): promises about what ``pip install`` gives are
    tested here, never on the source checkout.

    :param venv: the virtualenv's directory.
    :param wheel: the built wheel.
    """

    def __init__(self, venv: pathlib.Path, wheel: pathlib.Path) -> None:
        self.venv = venv
        self.wheel = wheel
        self.bin = venv / "bin"
        self.python = self.bin / "python"
        """The virtualenv's interpreter."""
        self.framework = self.bin / "framework"
        """The installed ``framework`` script."""

    def env(self, extra: t.Mapping[str, str] | None = None) -> dict[str, str]:
        """An environment for commands run in the virtualenv, checkout-free.

        No ``PYTHONPATH`` and no inherited ``FRAMEWORK_*`` variables, the
        virtualenv's ``bin`` first on ``PATH``.
        """
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith("FRAMEWORK_")
            and key not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")
        }
        env["PATH"] = os.pathsep.join([str(self.bin), env.get("PATH", "")])
        env["VIRTUAL_ENV"] = str(self.venv)
        env.update(extra or {})
        return env

    def run(
        self,
        *argv: str | os.PathLike[str],
        cwd: str | os.PathLike[str],
        env: t.Mapping[str, str] | None = None,
        timeout: float = 120.0,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` (``argv[0]`` looked up in the virtualenv first) to its end."""
        command = [str(arg) for arg in argv]
        local = self.bin / command[0]
        if local.exists():
            command[0] = str(local)
        return subprocess.run(
            command,
            cwd=cwd,
            env=self.env(env),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def pip_install(self, *requirements: str) -> None:
        """Install more distributions into the virtualenv."""
        subprocess.run(
            [str(self.python), "-m", "pip", "install", "--quiet", *requirements],
            check=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=600,
        )


INSTALL_EXTRAS = "orm,postgres"
"""Extras of the installed wheel: the ORM and PostgreSQL driver."""

INSTALL_PACKAGES = ("pytest>=8.0", "webtest>=3.0")
"""Installed beside the wheel: what a user's test suite needs."""


def install_framework(
    directory: pathlib.Path,
    source: pathlib.Path = ROOT,
    *,
    build_env: t.Mapping[str, str] | None = None,
    extras: str = INSTALL_EXTRAS,
    packages: t.Sequence[str] = INSTALL_PACKAGES,
) -> InstalledFramework:
    """Build the wheel of ``source`` and install it in a new virtualenv.

    Takes about 10 s (pip's cache serves the dependencies).

    :param source: the project to build: the checkout, or a copy of it.
    :param build_env: the environment of the build (``None``: this one).
    :param extras: the wheel's extras to install too (empty: none).
    :param packages: more distributions to install beside it.
    """
    dist = directory / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps"]
        + ["--wheel-dir", str(dist), str(source)],
        check=True,
        env=build_env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = dist.glob("framework-*.whl")
    venv = directory / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", str(venv)],
        check=True,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=300,
    )
    installed = InstalledFramework(venv, wheel)
    installed.pip_install(f"{wheel}[{extras}]" if extras else str(wheel), *packages)
    return installed


# Prometheus ------------------------------------------------------------------


def prometheus_samples(text: str) -> dict[str, float]:
    """Parse the Prometheus text exposition format (0.0.4) strictly.

    Every sample must belong to a family declared with ``# HELP`` and
    ``# TYPE`` (histogram and summary samples by their ``_bucket``, ``_sum`` and
    ``_count`` suffixes); counters end in ``_total``.

    :returns: values keyed by the sample's name and labels, as written.
    """
    sample = re.compile(
        r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="[^"\\\n]*",?)*\})?'
        r" (-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?)$"
    )
    declared: dict[str, str] = {}
    helped = set()
    values = {}
    assert text.endswith("\n")
    for line in text.splitlines():
        if line.startswith("# HELP "):
            helped.add(line.split()[2])
        elif line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            assert kind in {"counter", "gauge", "summary", "histogram", "untyped"}
            assert name not in declared, f"TYPE {name} twice"
            declared[name] = kind
        else:
            match = sample.match(line)
            assert match, f"not a sample line: {line!r}"
            name = match.group(1)
            family = re.sub(r"_(sum|count|bucket)$", "", name)
            family = family if family in declared else name
            assert family in declared and family in helped, f"{name} undeclared"
            if declared[family] == "counter":
                assert name.endswith("_total")
            if name.endswith("_bucket"):
                assert declared[family] == "histogram"
            values[name + (match.group(2) or "")] = float(match.group(3))
    return values
