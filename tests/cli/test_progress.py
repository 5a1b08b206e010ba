"""Progress bars on a real terminal (a pty), nothing of them in a pipe."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import time

from .conftest import ROOT
from .conftest import framework_env
from .conftest import run_framework
from .test_migrate import APPS


def _env(db):
    return framework_env(
        FRAMEWORK_APP="tests.apps.wsgiapp:app",
        FRAMEWORK_INSTALLED_APPS=json.dumps(APPS),
        FRAMEWORK_DATABASES=json.dumps({"default": f"sqlite:///{db}"}),
        COLUMNS="100",
    )


def on_terminal(argv, env, errors):
    """Run ``framework argv`` with its stdout on a pty; return what it wrote."""
    master, slave = pty.openpty()
    with errors.open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "framework", *argv],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=slave,
            stderr=stderr,
        )
    os.close(slave)
    chunks = []
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(master)
        code = proc.wait(timeout=60)
    assert code == 0, errors.read_text()
    return b"".join(chunks).decode()


def in_a_pipe(argv, env):
    """Run ``framework argv`` with its stdout on a pipe; return what it wrote."""
    result = run_framework(*argv, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return result.stdout


def test_progress_on_a_terminal_only(tmp_path):
    env = _env(tmp_path / "tty.sqlite3")
    errors = tmp_path / "errors.txt"
    shown = on_terminal(["migrate", "--noinput"], env, errors)
    assert "Applying migrations" in shown
    assert "100%  journal.0001_initial" in shown
    assert "Applied journal.0001_initial" not in shown
    shown = on_terminal(["loaddata", "library_sample"], env, errors)
    assert "Loading fixtures  [" in shown
    assert "Installed 5 object(s) from 1 fixture(s)." in shown

    env = _env(tmp_path / "pipe.sqlite3")
    out = in_a_pipe(["migrate", "--noinput"], env)
    assert out == (
        "Created tables of library: Author, Tag, Book, Book_tags\n"
        "Applied journal.0001_initial\n"
    )
    out = in_a_pipe(["loaddata", "library_sample"], env)
    assert out == "Installed 5 object(s) from 1 fixture(s).\n"
