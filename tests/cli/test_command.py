from __future__ import annotations

import io
import json
import os
import pathlib
import subprocess
import sys

import click
import pytest
from support import TEST_SECRET_KEY

from framework import cli
from framework.cli import CommandError
from framework.cli import CommandUsageError
from framework.cli import call_command
from framework.cli import load_app
from framework.cli import main

from .conftest import framework_env
from .conftest import run_framework


def test_help_lists_available_commands_only(runner, monkeypatch):
    # An unknown name makes the CLI look for the (default) app's commands: a
    # key of the test's own keeps app_example from writing its key file.
    monkeypatch.setenv("FRAMEWORK_SECRET_KEY", TEST_SECRET_KEY)
    monkeypatch.setitem(cli.COMMANDS, "ghost", "framework.cli.no_such_module:ghost")
    result = runner.invoke(main, ["--help"])
    assert result.exit_code == 0, result.output
    for name in ("signals", "routes"):
        assert name in result.output
    assert "ghost" not in result.output
    result = runner.invoke(main, ["ghost"])
    assert result.exit_code == 2
    assert "No such command 'ghost'" in result.output


def test_usage_errors_exit_2(runner):
    result = runner.invoke(main, ["-v", "7", "signals"])
    assert result.exit_code == 2
    assert "0<=x<=3" in result.output
    result = runner.invoke(main, ["signals", "--no-such-option"])
    assert result.exit_code == 2


def test_failure_is_one_line_without_traceback(runner, configure):
    configure()
    result = runner.invoke(
        main, ["--app", "tests.apps.wsgiapp:broken_factory()", "routes"]
    )
    assert result.exit_code == 1
    assert result.stderr.strip() == "Error: RuntimeError: the factory exploded"
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)


@pytest.mark.parametrize("flags", [["--traceback"], ["-v", "3"]])
def test_traceback_on_request(runner, configure, flags):
    configure()
    args = [*flags, "--app", "tests.apps.wsgiapp:broken_factory()", "routes"]
    result = runner.invoke(main, args)
    assert result.exit_code == 1
    assert isinstance(result.exception, RuntimeError)
    assert str(result.exception) == "the factory exploded"


def test_subcommand_verbosity_3_shows_traceback(runner, configure):
    configure()
    args = ["--app", "tests.apps.wsgiapp:broken_factory()", "routes", "-v", "3"]
    result = runner.invoke(main, args)
    assert isinstance(result.exception, RuntimeError)


def test_load_app():
    from tests.apps import wsgiapp

    assert load_app("tests.apps.wsgiapp:app") is wsgiapp.app
    assert load_app("tests.apps.wsgiapp") is wsgiapp.app
    with pytest.raises(CommandError, match="no attribute 'nope'"):
        load_app("tests.apps.wsgiapp:nope")
    with pytest.raises(CommandError, match="no such module"):
        load_app("tests.apps.no_such_module:app")
    with pytest.raises(CommandError, match="not a WSGI application"):
        load_app("tests.apps.wsgiapp:not_callable")
    with pytest.raises(CommandError, match="Invalid app"):
        load_app(":app")


def test_load_app_defaults_to_environment(monkeypatch):
    from tests.apps import wsgiapp

    monkeypatch.setenv("FRAMEWORK_APP", "tests.apps.wsgiapp:app")
    assert load_app() is wsgiapp.app


def test_call_command_returns_result_and_writes_to_stdout(configure, capsys):
    configure(INSTALLED_APPS=["tests.apps.hooks"])
    result = call_command("signals", "post_migrate", as_json=True)
    assert [item["name"] for item in result] == ["post_migrate"]
    assert json.loads(capsys.readouterr().out) == result


def test_call_command_errors(configure):
    configure()
    with pytest.raises(CommandError, match="Unknown command 'nope'"):
        call_command("nope")
    with pytest.raises(CommandError, match="Unknown option.*colour"):
        call_command("signals", colour=True)
    with pytest.raises(CommandUsageError, match="Unknown signal") as info:
        call_command("signals", "no_such_signal")
    assert info.value.exit_code == 2
    with pytest.raises(
        CommandError, match="RuntimeError: the factory exploded"
    ) as info:
        call_command("routes", app="tests.apps.wsgiapp:broken_factory()")
    assert isinstance(info.value.__cause__, RuntimeError)
    assert info.value.exit_code == 1


def test_settings_option_sets_environment(runner, monkeypatch):
    monkeypatch.setenv("FRAMEWORK_APP", "tests.apps.wsgiapp:app")
    monkeypatch.setenv("FRAMEWORK_SETTINGS_MODULE", "tests.apps.no_such_settings")
    from framework.conf import settings

    try:
        result = runner.invoke(
            main, ["--settings", "tests.apps.hooks_settings", "signals"]
        )
        assert result.exit_code == 0, result.output
        assert os.environ["FRAMEWORK_SETTINGS_MODULE"] == "tests.apps.hooks_settings"
        assert settings.INSTALLED_APPS == ["tests.apps.hooks"]
    finally:
        settings.reset()


def test_python_dash_m_framework_subprocess():
    env = framework_env(
        FRAMEWORK_APP="tests.apps.wsgiapp:app",
        FRAMEWORK_INSTALLED_APPS='["tests.apps.hooks"]',
    )
    result = run_framework("signals", "--json", "--connected", env=env)
    assert result.returncode == 0, result.stderr
    data = {item["name"]: item for item in json.loads(result.stdout)}
    [receiver] = [
        r for r in data["post_migrate"]["receivers"] if r["name"].startswith("tests.")
    ]
    assert receiver == {
        "name": "tests.apps.hooks.management.record_post_migrate",
        "location": "tests/apps/hooks/management.py:8",
        "sender": None,
        "weak": True,
        "dispatch_uid": "hooks.record_post_migrate",
        "priority": 5,
        "async": False,
        "on_commit": False,
    }
    assert data["post_migrate"]["deprecated_aliases"] == ["post_syncdb"]


def test_subprocess_failure_exit_code_and_message():
    env = framework_env(FRAMEWORK_APP="tests.apps.wsgiapp:broken_factory()")
    result = run_framework("routes", env=env)
    assert result.returncode == 1
    assert result.stderr == "Error: RuntimeError: the factory exploded\n"


@click.command()
def misuse():
    raise CommandUsageError("Pass --right instead.")


def test_click_usage_error_class_is_not_swallowed(runner, monkeypatch):
    assert issubclass(CommandUsageError, click.ClickException)
    # Raised inside a command, it keeps its exit code 2 and its message.
    monkeypatch.setitem(cli.COMMANDS, "misuse", f"{__name__}:misuse")
    result = runner.invoke(main, ["misuse"])
    assert result.exit_code == 2
    assert result.stderr == "Error: Pass --right instead.\n"


def test_call_command_arguments_by_name_and_global_options(configure):
    configure(INSTALLED_APPS=["tests.apps.hooks"])
    out = io.StringIO()
    result = call_command("signals", names=["post_migrate"], connected=True, stdout=out)
    assert [item["name"] for item in result] == ["post_migrate"]
    assert out.getvalue().startswith("post_migrate(")
    with pytest.raises(CommandError, match="RuntimeError: the factory") as info:
        call_command(
            "routes", app="tests.apps.wsgiapp:broken_factory()", traceback=True
        )
    assert isinstance(info.value.__cause__, RuntimeError)


def test_broken_command_entries_are_not_hidden(monkeypatch):
    monkeypatch.setitem(cli.COMMANDS, "weird", "tests.apps.wsgiapp:not_callable")
    with pytest.raises(TypeError, match="is not a click command"):
        call_command("weird")
    monkeypatch.setitem(cli.COMMANDS, "inner", "tests.apps.broken_import:command")
    with pytest.raises(ModuleNotFoundError, match="does_not_exist_anywhere"):
        call_command("inner")
    with pytest.raises(ModuleNotFoundError, match="does_not_exist_anywhere"):
        load_app("tests.apps.broken_import:app")


def test_project_loading_skips_a_missing_default_app(configure):
    configure(INSTALLED_APPS=["tests.apps.hooks"])
    from tests.apps import wsgiapp

    context = cli.CommandContext()
    context.app_spec, context.app_explicit = "tests.apps.no_such_module:app", False
    assert context.load_project() is None
    context = cli.CommandContext()
    context.app_spec, context.app_explicit = "tests.apps.wsgiapp:app", False
    assert context.load_project() is wsgiapp.app
    context = cli.CommandContext()
    context.app_spec, context.app_explicit = "tests.apps.no_such_module:app", False
    with pytest.raises(CommandError, match="no such module"):
        context.load_project(require_app=True)


def test_help_does_not_import_the_orm(tmp_path):
    out = tmp_path / "out.txt"
    code = (
        "import sys\n"
        "from framework.cli import main\n"
        "try:\n"
        "    main(['--help'], prog_name='framework')\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted(m for m in ('sqlalchemy', 'alembic', 'framework.orm')"
        " if m in sys.modules))\n"
    )
    with out.open("w") as stdout:
        subprocess.check_call([sys.executable, "-c", code], cwd=tmp_path, stdout=stdout)
    assert "  migrate " in out.read_text()
    assert out.read_text().splitlines()[-1] == "[]"


def test_console_script_finds_the_project_in_the_working_directory(tmp_path):
    script = pathlib.Path(sys.executable).with_name("framework")
    assert script.is_file()
    (tmp_path / "myproject.py").write_text(
        "from framework import App\n\n"
        "app = App(__name__)\n\n\n"
        "@app.route('/hello')\n"
        "def hello(request):\n"
        "    return 'hi'\n"
    )
    out = tmp_path / "out.txt"
    env = framework_env(FRAMEWORK_INSTALLED_APPS="[]")
    env.pop("PYTHONPATH", None)
    with out.open("w") as stdout:
        code = subprocess.call(
            [str(script), "--app", "myproject:app", "routes", "--json"],
            cwd=tmp_path,
            env=env,
            stdout=stdout,
            stderr=subprocess.STDOUT,
            timeout=60,
        )
    assert code == 0, out.read_text()
    assert [row["rule"] for row in json.loads(out.read_text())] == ["/hello"]


def test_default_app_is_app_example():
    # A key of the test's own: app_example would otherwise make its key file
    # beside its database, in the checkout.
    env = framework_env(FRAMEWORK_SECRET_KEY=TEST_SECRET_KEY)
    result = run_framework("routes", "--json", env=env)
    assert result.returncode == 0, result.stderr
    rows = {row["rule"]: row for row in json.loads(result.stdout)}
    assert rows["/api/bookmarks"]["methods"] == ["GET", "POST"]
    assert rows["/api/bookmarks"]["view"].startswith("app_example.")
