"""The promise of ``pip install``: ``framework --app ... loadtest`` works for any app.

The wheel is installed in a fresh virtualenv away from the checkout (the
``installed_framework`` fixture); the app is a small one in a temporary
project directory, which nothing but ``--out`` may write into.
"""

from __future__ import annotations

import json

import pytest
from notes_project import listing
from notes_project import needs_wrk

pytestmark = [pytest.mark.server, needs_wrk]


def test_the_installed_command_balances_the_books_of_any_app(
    installed_framework, project, tmp_path
):
    files = listing(project)

    def loadtest(*args, out):
        result = installed_framework.run(
            "framework",
            "--app",
            "notes:app",
            "loadtest",
            "-n",
            "200",
            "-c",
            "2",
            "--out",
            str(tmp_path / out),
            *args,
            cwd=project,
            timeout=240,
        )
        results = json.loads((tmp_path / out / "results.json").read_text())
        return result, results

    # No scenario: every GET route without parameters, any status expected.
    result, results = loadtest(out="routes")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "BALANCED" in result.stdout
    assert set(results["requests"]) == {
        "/",
        "/api/notes",
        "/export.csv",
        "/boom",
        "/metrics",
    }
    assert results["signals"][0]["request_started"] == 200
    # No key configured: the run's servers shared a random one, not written down.
    assert results["server"]["env"]["FRAMEWORK_SECRET_KEY"] == "<hidden>"
    assert (
        results["signals"][0]["got_request_exception"]
        == (results["requests"]["/boom"]["count"])
    )

    # A scenario.
    result, results = loadtest("--scenario", "scenario.toml", out="scenario")
    assert result.returncode == 0, result.stdout + result.stderr
    assert results["balanced"] and results["completed"] == 200
    assert results["requests"]["add"]["statuses"] == {
        "201": results["requests"]["add"]["count"]
    }

    # The same app, with a worker hook that disconnects request_finished.
    result, results = loadtest("--config", "fault.conf.py", out="fault")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAIL  every request_started has its request_finished" in result.stdout
    assert "NOT BALANCED" in result.stdout
    assert results["balanced"] is False
    assert results["signals"][0]["request_finished"] == 0

    assert listing(project) == files

    # No app named, none found: how to name one (not the example app's name).
    empty = tmp_path / "empty"
    empty.mkdir()
    result = installed_framework.run("framework", "loadtest", cwd=empty, timeout=120)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith("Error: No application found:"), result.stderr
    assert "app_example" not in result.stderr
    assert result.stderr.count("\n") == 1
    assert listing(empty) == []


def test_the_installed_loadtest_extra_drives_locust(
    installed_framework, project, tmp_path
):
    # pip install 'framework[loadtest]': Locust, as a user gets it, with no wrk
    # on the PATH the command would take; here it is asked for by name.
    installed_framework.pip_install(f"{installed_framework.wheel}[loadtest]")
    files = listing(project)
    result = installed_framework.run(
        "framework",
        "--app",
        "notes:app",
        "loadtest",
        "--scenario",
        "scenario.toml",
        "--generator",
        "locust",
        "-n",
        "100",
        "-c",
        "2",
        "--out",
        str(tmp_path / "locust"),
        cwd=project,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "BALANCED" in result.stdout
    results = json.loads((tmp_path / "locust" / "results.json").read_text())
    assert results["config"]["generator"] == "locust"
    assert results["balanced"] and results["completed"] >= 100
    assert results["signals"][0]["request_started"] == results["completed"]
    assert (tmp_path / "locust" / "locust-master.log").is_file()
    assert listing(project) == files
