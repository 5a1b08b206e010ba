"""Fork safety under a real gunicorn: a connection the master opened before
forking (``--preload``) is never used or closed by the workers, even when
they exit and are replaced (``--max-requests``)."""

import json
import sys
import urllib.request

import pytest
from support import Server
from support import subprocess_env

from framework import orm

from .models import Author

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


@pytest.mark.server
def test_preloaded_connection_survives_worker_forks_and_exits(db, backend, tmp_path):
    (tmp_path / "fork_app.py").write_text(APP)
    server = Server(
        [sys.executable, "-m", "gunicorn", "--preload", "-w", "2"]
        + ["--max-requests", "3", "-b", "127.0.0.1:0", "fork_app:app"],
        cwd=tmp_path,
        log_path=tmp_path / "gunicorn.log",
        env=subprocess_env(
            {"FRAMEWORK_DATABASES": json.dumps({"default": backend})}, [tmp_path]
        ),
    )
    try:
        port = server.port
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
        server.stop(15)
    assert "Traceback" not in server.output, server.output
