"""Fixtures of the load-test tests: a project directory and the command."""

from __future__ import annotations

import subprocess
import sys

import pytest
from notes_project import FAULT_CONFIG
from notes_project import NOTES_APP
from notes_project import NOTES_SCENARIO
from notes_project import Run
from support import subprocess_env


@pytest.fixture
def project(tmp_path):
    """A user's project directory holding notes.py and its scenario."""
    root = tmp_path / "project"
    root.mkdir()
    (root / "notes.py").write_text(NOTES_APP)
    (root / "scenario.toml").write_text(NOTES_SCENARIO)
    (root / "fault.conf.py").write_text(FAULT_CONFIG)
    return root


@pytest.fixture
def loadtest(tmp_path):
    """Run ``framework --app APP loadtest ARGS`` in ``cwd``; results in --out."""
    runs = iter(range(1000))

    def run(*args, app="notes:app", cwd, env=None, out=True, timeout=240):
        out_dir = tmp_path / f"out-{next(runs)}"
        argv = [sys.executable, "-m", "framework", "--app", app, "loadtest", *args]
        if out:
            argv += ["--out", str(out_dir)]
        result = subprocess.run(
            argv,
            cwd=cwd,
            env=subprocess_env(env, clean=True),
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        return Run(result, out_dir)

    return run
