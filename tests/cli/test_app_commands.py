"""An installed app's ``commands`` module adds subcommands (cli.appcommands)."""

from __future__ import annotations

import io

import pytest
from click.testing import CliRunner

from framework.cli import CommandError
from framework.cli import call_command
from framework.cli import main


def test_an_apps_commands_run_as_subcommands(configure):
    configure(INSTALLED_APPS=["tests.apps.tools"])
    result = CliRunner().invoke(main, ["greet", "ada", "--shout"])
    assert result.exit_code == 0, result.output
    assert result.output == "HELLO, ADA!\n"
    failed = CliRunner().invoke(main, ["greet", "nobody"])
    assert failed.exit_code == 1
    assert "Error: Nobody to greet." in failed.output
    out = io.StringIO()
    assert call_command("greet", "grace", stdout=out) == "Hello, grace!"
    assert out.getvalue() == "Hello, grace!\n"


def test_built_in_commands_win_and_unknown_names_stay_unknown(configure):
    configure(INSTALLED_APPS=["tests.apps.tools"])
    listing = CliRunner().invoke(main, ["--app", "tests.apps.wsgiapp:app", "--help"])
    assert "greet" in listing.output
    assert listing.output.count("  migrate ") == 1
    real = CliRunner().invoke(main, ["migrate", "--help"]).output
    assert "Create the tables" in real and "clash" not in real
    unknown = CliRunner().invoke(main, ["no-such-command"])
    assert unknown.exit_code == 2
    with pytest.raises(CommandError, match="Unknown command 'nope'"):
        call_command("nope")


def test_two_apps_with_one_command_name_is_an_error(configure):
    configure(INSTALLED_APPS=["tests.apps.tools", "tests.apps.clash"])
    result = CliRunner().invoke(main, ["greet", "x"])
    assert result.exit_code == 1
    assert "Two installed apps define the command 'greet'" in result.output


def test_help_without_a_named_app_lists_only_built_ins(configure, monkeypatch):
    configure(INSTALLED_APPS=["tests.apps.tools"])
    monkeypatch.delenv("FRAMEWORK_APP")
    listing = CliRunner().invoke(main, ["--help"])
    assert "greet" not in listing.output and "migrate" in listing.output
