"""Every subcommand runs from Python through ``call_command``."""

from __future__ import annotations

import io
import json

import pytest

from framework import signals
from framework.cli import COMMANDS
from framework.cli import CommandError
from framework.cli import CommandUsageError
from framework.cli import call_command

from .test_migrate import APPS
from .test_migrate import recording

MINE = {
    "dumpdata",
    "flush",
    "loaddata",
    "makemigrations",
    "migrate",
    "routes",
    "run",
    "shell",
    "showmigrations",
    "signals",
}


def test_call_command_runs_every_subcommand(configure, make_app, tmp_path):
    assert set(COMMANDS) - {"serve", "loadtest", "new"} == MINE
    make_app(
        "callapp",
        {
            "models.py": (
                "from framework import orm\n\n"
                "class Thing(orm.Model):\n    name = orm.CharField(max_length=5)\n"
            )
        },
    )
    configure(
        INSTALLED_APPS=[*APPS, "callapp"],
        DATABASES={"default": f"sqlite:///{tmp_path}/db"},
        DEBUG=False,
    )

    def run(name, *args, **options):
        out = io.StringIO()
        return call_command(name, *args, stdout=out, **options), out.getvalue()

    made, out = run("makemigrations", "callapp", verbosity=0)
    assert [op.describe() for op in made["callapp"]] == ["Create table callapp_thing"]
    assert out == ""
    result, out = run("migrate", interactive=False)
    assert result.applied == ["journal.0001_initial", "callapp.0001_initial"]
    assert "Applied callapp.0001_initial\n" in out
    listing, out = run("showmigrations", verbosity=0)
    assert listing == {
        "journal": [("0001_initial", True)],
        "callapp": [("0001_initial", True)],
    }
    assert out == ""
    count, out = run("loaddata", "library_sample")
    assert (count, out) == (5, "Installed 5 object(s) from 1 fixture(s).\n")
    objects, out = run("dumpdata", "library.Author")
    assert (
        objects
        == json.loads(out)
        == [
            {
                "model": "library.Author",
                "pk": 3,
                "fields": {"name": "Frank Herbert", "born": "1920-10-08"},
            }
        ]
    )
    with recording(signals.post_migrate) as calls:
        flushed, out = run("flush", interactive=False, verbosity=2)
    assert "Flushed" in out
    assert len(flushed) >= 5
    assert [kw["app_config"].label for _, _, kw in calls] == [
        "library",
        "journal",
        "callapp",
    ]
    described, out = run("signals", "post_migrate", connected=True)
    assert [item["name"] for item in described] == ["post_migrate"]
    assert out.startswith("post_migrate(")
    rows, out = run("routes", app="tests.apps.webapp:app", as_json=True)
    assert json.loads(out) == rows
    assert [row["rule"] for row in rows] == ["/", "/about", "/items/<int:item_id>"]
    assert run("shell", command="print(sorted(settings.INSTALLED_APPS))")[1] == (
        f"{sorted([*APPS, 'callapp'])}\n"
    )
    with pytest.raises(CommandError, match="Refusing to start the interactive"):
        call_command("run", app="tests.apps.webapp:app", debugger=True)
    with pytest.raises(CommandUsageError, match="99999 is not in the range"):
        call_command("run", app="tests.apps.webapp:app", port=99999)
