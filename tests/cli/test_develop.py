from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from support import get as support_get
from support import wait_for_log

from framework.cli import CommandError
from framework.cli import call_command
from framework.cli import main

from .conftest import ROOT
from .conftest import framework_env


def test_routes_table_and_json(runner, configure):
    configure()
    result = runner.invoke(main, ["--app", "tests.apps.webapp:app", "routes"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["Endpoint", "Methods", "Rule"]
    assert lines[2].split() == ["index", "GET", "/"]
    assert lines[3].split() == ["about_page", "GET", "/about"]
    assert lines[4].split() == ["item", "GET,", "POST", "/items/<int:item_id>"]
    result = runner.invoke(
        main,
        ["--app", "tests.apps.webapp:app", "routes", "--json", "--sort", "endpoint"],
    )
    rows = json.loads(result.output)
    assert [row["endpoint"] for row in rows] == ["about_page", "index", "item"]
    assert rows[2] == {
        "rule": "/items/<int:item_id>",
        "methods": ["GET", "POST"],
        "endpoint": "item",
        "view": "tests.apps.webapp.item",
    }


def test_routes_needs_a_framework_app(configure):
    configure()
    with pytest.raises(CommandError, match="has no url_map"):
        call_command("routes", app="tests.apps.wsgiapp:app")


def test_shell_runs_code_with_the_project_loaded(runner, configure):
    configure(INSTALLED_APPS=["tests.apps.library"])
    names = "('Author', 'Book', 'orm', 'app', 'settings')"
    code = f"print(sorted(n for n in {names} if n in globals()))"
    result = runner.invoke(main, ["shell", "-c", code])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "['Author', 'Book', 'app', 'orm', 'settings']"
    result = runner.invoke(main, ["shell"], input="print(settings.INSTALLED_APPS)\n")
    assert result.output.strip() == "['tests.apps.library']"


RUNNING = r"Running on http://127\.0\.0\.1:(\d+)"
"""What ``framework run`` logs once it listens; the group is the port."""


def test_run_refuses_the_debugger_without_debug(runner, configure):
    configure(DEBUG=False)
    result = runner.invoke(
        main, ["--app", "tests.apps.webapp:app", "run", "--debugger"]
    )
    assert result.exit_code == 1
    assert "Refusing to start the interactive debugger" in result.stderr


@pytest.mark.server
@pytest.mark.parametrize("debug", ["0", "1"])
def test_run_serves_on_loopback_in_a_subprocess(tmp_path, debug):
    """`run` serves on 127.0.0.1; with DEBUG on, a failing view opens the debugger."""
    log = tmp_path / "run.log"
    env = framework_env(FRAMEWORK_APP="tests.apps.debugapp:app", FRAMEWORK_DEBUG=debug)
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "framework", "run", "--port", "0", "--no-reload"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        port = wait_for_log(RUNNING, proc, log).group(1)
        url = f"http://127.0.0.1:{port}"
        with urllib.request.urlopen(f"{url}/", timeout=10) as response:
            assert response.read() == b"fine"
        with pytest.raises(urllib.error.HTTPError, match="500") as info:
            urllib.request.urlopen(f"{url}/boom", timeout=10)
        body = info.value.read().decode()
        info.value.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    if debug == "1":
        assert "Werkzeug Debugger" in body
        assert "RuntimeError: kaboom from a view" in body
    else:
        assert "Werkzeug Debugger" not in body
        assert "kaboom" not in body


@pytest.mark.server
def test_run_reloads_changed_code(tmp_path):
    # In a package, as a project's views are: the reloader must see changes
    # below the top of the directories it watches too.
    (tmp_path / "reloadpkg").mkdir()
    (tmp_path / "reloadpkg" / "__init__.py").write_text("")
    module = tmp_path / "reloadpkg" / "views.py"
    source = (
        "from framework import App\n\n"
        "app = App(__name__)\n\n\n"
        "@app.route('/')\n"
        "def index(request):\n"
        "    return 'version 1'\n"
    )
    module.write_text(source)
    log = tmp_path / "run.log"
    env = framework_env(
        FRAMEWORK_APP="reloadpkg.views:app",
        FRAMEWORK_DEBUG="0",
        FRAMEWORK_INSTALLED_APPS="[]",
    )
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "framework", "run", "--port", "0"],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # the reloader's child goes with it
        )

    def get(url):
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.read()

    try:
        deadline = time.monotonic() + 20
        url = f"http://127.0.0.1:{wait_for_log(RUNNING, proc, log).group(1)}/"
        while "Restarting with" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        body = b""
        while body != b"version 1" and time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                body = get(url)
            time.sleep(0.05)
        assert body == b"version 1"
        module.write_text(source.replace("version 1", "version 2"))
        deadline = time.monotonic() + 20
        while body != b"version 2" and time.monotonic() < deadline:
            time.sleep(0.2)
            with contextlib.suppress(OSError):
                body = get(url)
        assert body == b"version 2", log.read_text()
        assert log.read_text().count("Restarting with") >= 2
        # A syntax error saved while editing: the server stays up, says what
        # is wrong, and serves the code again once it is fixed.
        module.write_text(source.replace("version 1", "version 3") + "\ndef (:\n")
        deadline = time.monotonic() + 20
        status = 200
        while status != 500 and time.monotonic() < deadline:
            time.sleep(0.2)
            with contextlib.suppress(OSError):
                status, body = support_get(url)
        assert status == 500, log.read_text()
        assert body.startswith(b"The app failed to load: SyntaxError: ")
        assert "Error: The app failed to load: SyntaxError" in log.read_text()
        assert proc.poll() is None
        module.write_text(source.replace("version 1", "version 3"))
        deadline = time.monotonic() + 20
        while body != b"version 3" and time.monotonic() < deadline:
            time.sleep(0.2)
            with contextlib.suppress(OSError):
                body = get(url)
        assert body == b"version 3", log.read_text()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)


@pytest.mark.server
def test_run_debug_turns_on_debug_the_debugger_and_the_reloader(tmp_path):
    log = tmp_path / "run.log"
    env = framework_env(FRAMEWORK_APP="tests.apps.debugapp:app", FRAMEWORK_DEBUG="0")
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "framework", "run", "--debug", "--port", "0"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # the reloader's child goes with it
        )
    try:
        port = wait_for_log(RUNNING, proc, log).group(1)
        wait_for_log(r"Debugger is active", proc, log)
        assert "Restarting with" in log.read_text()
        body = ""
        deadline = time.monotonic() + 20
        while "Werkzeug Debugger" not in body and time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/boom", timeout=10)
            except urllib.error.HTTPError as exc:
                with exc:
                    body = exc.read().decode()
            except OSError:
                time.sleep(0.1)
        assert "Werkzeug Debugger" in body
        assert "RuntimeError: kaboom from a view" in body
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
