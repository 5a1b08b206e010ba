"""Helpers of the serving tests: real gunicorn processes on 127.0.0.1."""

from __future__ import annotations

import os
import pathlib
import signal
import socket
import subprocess
import sys
import time
import urllib.request

HERE = pathlib.Path(__file__).parent
ROOT = HERE.parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port, process, log_path, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited early:\n{log_path.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"server did not start in {timeout}s:\n{log_path.read_text()}")


def get(url: str, timeout: float = 10.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


class Server:
    """A real ``framework serve`` process on 127.0.0.1, output in a file."""

    def __init__(
        self, tmp_path: pathlib.Path, app: str, args: list[str], env: dict[str, str]
    ):
        self.port = free_port()
        self.log_path = tmp_path / f"server-{self.port}.log"
        self.url = f"http://127.0.0.1:{self.port}"
        command = [
            sys.executable,
            "-m",
            "framework",
            "--app",
            app,
            "serve",
            "--bind",
            f"127.0.0.1:{self.port}",
            # A worker that gets SIGTERM while it is still booting (before
            # gunicorn installs its signal handlers) only stops when the
            # graceful timeout runs out: keep that short in tests.
            "--graceful-timeout",
            "5",
            *args,
        ]
        full_env = {**os.environ, **env}
        full_env["PYTHONPATH"] = os.pathsep.join(
            [str(HERE), str(ROOT), full_env.get("PYTHONPATH", "")]
        )
        self.log_file = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            command,
            cwd=tmp_path,
            env=full_env,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

    @property
    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 20.0) -> None:
        wait_for_port(self.port, self.process, self.log_path, timeout)

    def stop(self, timeout: float = 20.0) -> int:
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
