"""Serving a project made by ``framework new``: warnings, LOGGING, reload, WAL files.

- ``framework run`` and ``serve --no-migrate`` warn about unapplied migrations;
- the project's LOGGING shows its receivers' INFO lines under ``run`` and
  ``serve``;
- a clean shutdown leaves no SQLite ``-wal``/``-shm`` file behind;
- ``serve --reload`` serves changed code (or says at startup that it cannot).
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import time

import pytest
from support import Server
from support import get
from support import subprocess_env
from support import wait_for_log

from framework.cli.project import create_project

RUNNING = r"Running on http://127\.0\.0\.1:(\d+)"
UNAPPLIED = (
    "Warning: 1 unapplied migration(s) on database 'default' (mysite.0001_initial):"
    " pages using the tables of mysite will fail until you run 'framework migrate'."
)


@pytest.fixture
def project(tmp_path):
    directory = tmp_path / "mysite"
    create_project("mysite", directory)
    return directory


def sqlite_leftovers(project):
    return sorted(path.name for path in project.glob("mysite.db-*"))


def post_note(url, title):
    import urllib.request

    request = urllib.request.Request(
        f"{url}/api/notes",
        data=json.dumps({"title": title}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, json.loads(response.read())


def start_run(project, log_path):
    log = log_path.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "framework", "run", "--port", "0", "--no-reload"],
        cwd=project,
        env=subprocess_env(clean=True),
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    log.close()
    port = wait_for_log(RUNNING, process, log_path).group(1)
    return process, f"http://127.0.0.1:{port}"


def stop_with_ctrl_c(process):
    process.send_signal(signal.SIGINT)
    try:
        return process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)
        raise


@pytest.mark.server
def test_run_warns_about_migrations_logs_and_leaves_no_wal(project, tmp_path):
    first_log = tmp_path / "run-1.log"
    process, url = start_run(project, first_log)
    try:
        assert UNAPPLIED in first_log.read_text()
    finally:
        stop_with_ctrl_c(process)
    migrate = subprocess.run(
        [sys.executable, "-m", "framework", "migrate"],
        cwd=project,
        env=subprocess_env(clean=True),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert migrate.returncode == 0, migrate.stderr
    second_log = tmp_path / "run-2.log"
    process, url = start_run(project, second_log)
    try:
        assert post_note(url, "Hello")[0] == 201
        status, page = get(f"{url}/")
        assert status == 200 and b"Hello" in page
        wait_for_log(r"mysite\.receivers: note 1 created: 'Hello'", process, second_log)
        assert sqlite_leftovers(project) == ["mysite.db-shm", "mysite.db-wal"]
    finally:
        assert stop_with_ctrl_c(process) == 0
    assert "unapplied" not in second_log.read_text()
    assert sqlite_leftovers(project) == []


@pytest.mark.server
def test_serve_no_migrate_warns_and_serve_leaves_no_wal(project, tmp_path):
    server = Server.serve(
        tmp_path, "wsgi.py", ["--no-migrate", "--workers", "1"], cwd=project
    )
    try:
        server.wait_ready()
        assert UNAPPLIED in server.output
    finally:
        assert server.stop() == 0
    assert not (project / "mysite.db").exists()  # checking created nothing
    server = Server.serve(tmp_path, "wsgi.py", ["--workers", "2"], cwd=project)
    try:
        server.wait_ready()
        status, created = post_note(server.url, "Served")
        assert status == 201 and created["title"] == "Served"
        assert server.get("/")[0] == 200
        assert sqlite_leftovers(project)
    finally:
        assert server.stop() == 0
    assert "Applied mysite.0001_initial" in server.output
    assert "unapplied" not in server.output
    assert "mysite.receivers: note 1 created: 'Served'" in server.output
    assert sqlite_leftovers(project) == []


@pytest.mark.server
def test_serve_reload_serves_changed_code(project, tmp_path):
    views = project / "mysite" / "views.py"
    server = Server.serve(
        tmp_path, "wsgi.py", ["--reload", "--workers", "1"], cwd=project
    )
    try:
        server.wait_ready()
        assert server.get("/healthz") == (200, b"ok")
        changed = views.read_text().replace('return "ok"', 'return "v2"')
        deadline = time.monotonic() + 60
        body = b""
        write_at = 0.0
        while body != b"v2" and time.monotonic() < deadline:
            if time.monotonic() >= write_at:
                # Written again until a reload shows: gunicorn's reloader
                # takes a first look at the files once the worker has
                # imported them, and a change before that look goes unseen
                # (as does one within a coarse file system's mtime step).
                views.write_text(changed)
                write_at = time.monotonic() + 2
            time.sleep(0.2)
            with contextlib.suppress(OSError):
                body = server.get("/healthz")[1]
        assert body == b"v2", server.output
        assert "Worker reloading: " in server.output
    finally:
        assert server.stop() == 0
    assert "Applied mysite.0001_initial" in server.output


@pytest.mark.server
def test_serve_reload_with_preload_says_it_cannot_reload(project, tmp_path):
    server = Server.serve(
        tmp_path, "wsgi.py", ["--reload", "--preload", "--workers", "1"], cwd=project
    )
    try:
        server.wait_ready()
    finally:
        server.stop()
    assert "Warning: --reload cannot reload code the master imported" in (server.output)
