"""Fork safety under a real gunicorn: a connection the master opened before
forking (``--preload``) is never used or closed by the workers, even when
they exit and are replaced (``--max-requests``)."""

import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from framework import orm

from .models import Author

ROOT = pathlib.Path(__file__).parents[2]
REQUESTS = 12

APP = """
import os

from framework import App
from framework import orm
from tests.orm.models import Author

# Runs in the gunicorn master (--preload), before any worker is forked.
_conn = orm.connections["default"]
_conn.ensure_connection()
MASTER = os.getpid()
if _conn.vendor == "postgresql":
    MASTER_BACKEND = _conn.fetchall("SELECT pg_backend_pid()")[0][0]
else:
    MASTER_BACKEND = None

app = App(__name__)


@app.route("/write")
def write(request):
    Author.objects.create(name=f"worker {os.getpid()}")
    conn = orm.connections["default"]
    backend = None
    if conn.vendor == "postgresql":
        backend = conn.fetchall("SELECT pg_backend_pid()")[0][0]
    return f"{os.getpid()} {MASTER} {MASTER_BACKEND} {backend}"
"""


def _wait_for_port(log: pathlib.Path, process: subprocess.Popen) -> int:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = re.search(r"Listening at: http://127\.0\.0\.1:(\d+)", log.read_text())
        if found:
            return int(found.group(1))
        if process.poll() is not None:
            break
        time.sleep(0.05)
    raise AssertionError(f"gunicorn did not start:\n{log.read_text()}")


@pytest.mark.server
def test_preloaded_connection_survives_worker_forks_and_exits(db, backend, tmp_path):
    (tmp_path / "fork_app.py").write_text(APP)
    env = dict(os.environ)
    env["FRAMEWORK_DATABASES"] = json.dumps({"default": backend})
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(tmp_path)])
    log = tmp_path / "gunicorn.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--preload", "-w", "2"]
            + ["--max-requests", "3", "-b", "127.0.0.1:0", "fork_app:app"],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        port = _wait_for_port(log, process)
        answers = []
        for _ in range(REQUESTS):
            with urllib.request.urlopen(
                f"http://127.0.0.1:{port}/write", timeout=10
            ) as response:
                answers.append(response.read().decode().split())
        workers = {a[0] for a in answers}
        master, master_backend = answers[0][1], answers[0][2]
        assert master not in workers
        # Workers were replaced (max-requests): exited ones did not close
        # the master's connection on their way out.
        assert len(workers) >= 3, answers
        if backend.startswith("postgresql"):
            assert master_backend not in {a[3] for a in answers}
            alive = orm.connections["default"].fetchall(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = %s",
                (int(master_backend),),
            )
            assert alive[0][0] == 1, "a worker closed the master's connection"
        assert Author.objects.count() == REQUESTS
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:  # pragma: no cover - reported below
            process.kill()
            process.wait(5)
    assert "Traceback" not in log.read_text(), log.read_text()
