"""Finding the app (--app, file paths, wsgi.py/app.py) and the errors without one."""

from __future__ import annotations

import json
import sys

import pytest

from framework import cli
from framework.apps import apps
from framework.cli import main
from framework.conf import settings

APP_PY = """
from framework import App

app = App(__name__)


@app.route("/{rule}")
def {rule}(request):
    return "{rule}"
"""


@pytest.fixture
def empty_dir(tmp_path, monkeypatch):
    """A working directory with no project; no app_example to fall back on."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FRAMEWORK_APP", raising=False)
    monkeypatch.delenv("FRAMEWORK_SETTINGS_MODULE", raising=False)
    monkeypatch.setattr(cli, "DEFAULT_APP", "no_app_example_here.wsgi:app")
    monkeypatch.setattr(sys, "path", list(sys.path))
    settings.reset()
    apps.reset()
    yield tmp_path
    for name in ("app", "wsgi", "src_app"):
        sys.modules.pop(name, None)
    settings.reset()
    apps.reset()


def routes(runner, *argv):
    result = runner.invoke(main, [*argv, "routes", "--json"])
    assert result.exit_code == 0, result.output
    return [row["rule"] for row in json.loads(result.stdout)]


def test_app_takes_a_file_path(runner, empty_dir):
    (empty_dir / "src").mkdir()
    (empty_dir / "src" / "src_app.py").write_text(
        "from framework import App\n\n\n"
        "def create_app():\n"
        "    app = App(__name__)\n"
        "    app.route('/made')(lambda request: 'made')\n"
        "    return app\n"
    )
    assert routes(runner, "--app", "src/src_app.py:create_app()") == ["/made"]


def test_wsgi_py_then_app_py_are_found_in_the_working_directory(runner, empty_dir):
    (empty_dir / "app.py").write_text(APP_PY.format(rule="from_app_py"))
    assert routes(runner) == ["/from_app_py"]
    (empty_dir / "wsgi.py").write_text(APP_PY.format(rule="from_wsgi_py"))
    assert routes(runner) == ["/from_wsgi_py"]
    # --app still wins.
    assert routes(runner, "--app", "app.py") == ["/from_app_py"]


@pytest.mark.parametrize("argv", [["serve"], ["routes"], ["run"]])
def test_commands_that_need_an_app_say_how_to_name_one(runner, empty_dir, argv):
    result = runner.invoke(main, argv)
    assert result.exit_code == 2, result.output
    assert "Error: No application found: no --app, no FRAMEWORK_APP" in result.stderr
    assert "--app path/to/app.py" in result.stderr
    assert "app_example" not in result.output
    assert "Traceback" not in result.output


def test_help_says_where_apps_and_docs_are(runner, empty_dir):
    result = runner.invoke(main, ["--help"])
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "default: wsgi.py, else app.py, in the current directory" in text
    assert f"Documentation: {cli.DOCS_URL}" in result.output
    assert "app_example.wsgi" not in result.output


@pytest.mark.parametrize("argv", [["migrate"], ["showmigrations"], ["makemigrations"]])
def test_database_commands_need_a_project(runner, empty_dir, argv):
    result = runner.invoke(main, argv)
    assert result.exit_code == 2, result.output
    assert "Error: No project configured: no settings module" in result.stderr
    assert "--settings mysite.settings" in result.stderr
    assert "framework new NAME" in result.stderr
    assert list(empty_dir.iterdir()) == []  # no db.sqlite3 created


def test_a_settings_module_without_installed_apps_is_explained(
    runner, empty_dir, monkeypatch
):
    (empty_dir / "bare_settings.py").write_text("DEBUG = False\n")
    monkeypatch.syspath_prepend(str(empty_dir))
    result = runner.invoke(main, ["--settings", "bare_settings", "migrate"])
    assert result.exit_code == 2, result.output
    assert "INSTALLED_APPS is empty (settings: bare_settings)" in result.stderr
    sys.modules.pop("bare_settings", None)


def test_an_app_without_settings_is_told_where_installed_apps_go(runner, empty_dir):
    (empty_dir / "app.py").write_text(APP_PY.format(rule="index"))
    result = runner.invoke(main, ["migrate"])
    assert result.exit_code == 2, result.output
    assert "INSTALLED_APPS is empty: the app app.py names no settings module" in (
        result.stderr
    )
    assert "--settings MODULE or FRAMEWORK_SETTINGS_MODULE" in result.stderr
    assert list(empty_dir.iterdir()) == [empty_dir / "app.py"]  # no database
