"""Every subcommand's failures: exit code 1 or 2, one line, no traceback."""

from __future__ import annotations

import pytest

from framework.cli import COMMANDS
from framework.cli import main

from .test_migrate import APPS

MINE = sorted(set(COMMANDS) - {"serve", "loadtest"})

BROKEN_MIGRATION = (
    "from framework.orm import migrations\n\n"
    "class Migration(migrations.Migration):\n"
    "    operations = [migrations.DropTable('no_such_table')]\n"
)


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["migrate", "--database", "nope"], 1, "Unknown database alias 'nope'"),
        (["showmigrations", "--database", "nope"], 1, "Unknown database alias"),
        (["flush", "--noinput", "--database", "nope"], 1, "Unknown database alias"),
        (["loaddata", "x", "--database", "nope"], 1, "Unknown database alias"),
        (["dumpdata", "--database", "nope"], 1, "Unknown database alias"),
        (["flush"], 1, "No answer, nothing was flushed; pass --noinput"),
        (["loaddata", "nothing_here"], 1, "No fixture named 'nothing_here'"),
        (
            ["dumpdata", "hooks", "-o", "/nonexistent/dir/x.json"],
            1,
            "Cannot write /nonex",
        ),
        (["run", "--debugger"], 1, "Refusing to start the interactive debugger"),
        (["shell", "-c", "raise ValueError('boom')"], 1, "ValueError: boom"),
        (["shell", "-c", "print(1"], 1, "SyntaxError: '(' was never closed"),
        (["routes"], 1, "has no url_map: not a framework.App"),
        (["--app", "tests.apps.nope:app", "signals"], 1, "no such module"),
        (["--settings", "tests.apps.nope", "migrate"], 1, "ImproperlyConfigured"),
        (["loaddata"], 2, "Missing argument 'FIXTURE...'"),
        (["dumpdata", "library.Nope"], 2, "No model 'library.Nope'"),
        (["dumpdata", "nope"], 2, "No installed app with label 'nope'"),
        (["makemigrations", "nope"], 2, "No installed app with label 'nope'"),
        (["makemigrations", "--empty"], 2, "--empty needs the label"),
        (["signals", "nope"], 2, "Unknown signal(s): nope"),
        (["routes", "--sort", "nope"], 2, "Invalid value for '--sort'"),
        (["run", "--port", "99999"], 2, "99999 is not in the range"),
        (["migrate", "--fake", "--nope"], 2, "No such option '--nope'"),
        (["nope"], 2, "No such command 'nope'"),
    ],
)
def test_failures_exit_with_one_line(runner, configure, tmp_path, argv, code, message):
    configure(
        INSTALLED_APPS=APPS,
        DATABASES={"default": f"sqlite:///{tmp_path}/db"},
        DEBUG=False,
    )
    result = runner.invoke(main, argv, input="")
    assert result.exit_code == code, result.output
    lines = result.stderr.splitlines()
    assert lines, result.output
    # Usage errors come after Click's usage lines; a failure is just one line.
    assert lines[-1].startswith("Error: ")
    assert message in lines[-1]
    if code == 1:
        assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)


@pytest.mark.parametrize("name", MINE)
def test_every_command_takes_verbosity_0_to_3(runner, name):
    result = runner.invoke(main, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert "-v, --verbosity INTEGER RANGE" in result.output
    result = runner.invoke(main, [name, "-v", "4"])
    assert result.exit_code == 2
    assert "'-v' / '--verbosity': 4 is not in the range 0<=x<=3" in result.stderr


def test_database_errors_are_one_line(runner, configure, make_app, tmp_path):
    make_app(
        "brokenmig",
        {
            "models.py": (
                "from framework import orm\n\n"
                "class Thing(orm.Model):\n    name = orm.CharField(max_length=5)\n"
            ),
            "migrations/__init__.py": "",
            "migrations/0001_initial.py": BROKEN_MIGRATION,
        },
    )
    configure(
        INSTALLED_APPS=["brokenmig"],
        DATABASES={"default": f"sqlite:///{tmp_path}/db"},
    )
    result = runner.invoke(main, ["migrate", "--noinput"])
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: Migration brokenmig.0001_initial failed at operation 1 (Drop table"
        " no_such_table): OperationalError: no such table: no_such_table. It was"
        " rolled back; the migrations before it stay applied.\n"
    )
    # With -v 3 or --traceback the traceback of the cause comes first.
    for argv in (["migrate", "-v", "3"], ["--traceback", "migrate"]):
        result = runner.invoke(main, [*argv, "--noinput"])
        assert result.exit_code == 1
        lines = result.stderr.splitlines()
        assert lines[0] == "Traceback (most recent call last):"
        assert "sqlite3.OperationalError: no such table: no_such_table" in lines
        assert lines[-1].startswith("Error: Migration brokenmig.0001_initial failed")
    # A server that does not answer: the driver's message, on one line.
    configure(
        INSTALLED_APPS=APPS,
        DATABASES={"default": "postgresql://postgres@127.0.0.1:1/nothing"},
    )
    result = runner.invoke(main, ["showmigrations"])
    assert result.exit_code == 1
    [line] = result.stderr.splitlines()
    assert line.startswith("Error: OperationalError: connection failed: ")
    assert "port 1 failed" in line
    assert "sqlalche.me" not in line
