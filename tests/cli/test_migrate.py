from __future__ import annotations

import contextlib
import io
import json
import sqlite3
import subprocess
import sys

import pytest
import sqlalchemy as sa

from framework import dispatch
from framework import signals
from framework.apps import apps
from framework.cli import CommandError
from framework.cli import call_command
from framework.cli import main

from .conftest import ROOT
from .conftest import framework_env
from .conftest import run_framework
from .conftest import sa_url

APPS = ["tests.apps.hooks", "tests.apps.library", "tests.apps.journal"]
PRE_KEYS = {
    "app",
    "app_config",
    "verbosity",
    "interactive",
    "db",
    "using",
    "plan",
    "apps",
    "create_models",
}
POST_KEYS = PRE_KEYS - {"create_models"} | {"created_models"}


@contextlib.contextmanager
def recording(*sigs):
    """Record (signal name, sender, kwargs) of every send of ``sigs``."""
    calls = []

    def record(signal, sender, **kwargs):
        calls.append((signal.name, sender, kwargs))

    with contextlib.ExitStack() as stack:
        for sig in sigs:
            stack.enter_context(sig.connected_to(record))
        yield calls


@contextlib.contextmanager
def checked_sends():
    """Make every send check its keyword names against the signal's args."""
    was_on = dispatch.Signal.send is dispatch.Signal._checked_send
    dispatch.set_debug(True)
    try:
        yield
    finally:
        dispatch.set_debug(was_on)


def schema_states():
    """The schema with nothing, and with every table of APPS."""
    from framework.orm.migrations import MigrationLoader
    from framework.orm.migrations import ProjectState
    from framework.orm.migrations import state_from_models

    full = MigrationLoader(apps.get_app_configs()).project_state()
    full.tables.update(
        state_from_models(apps.get_app_config("library").get_models()).tables
    )
    return ProjectState(), full


def normalized(calls):
    """The calls with each plan as ``(str(migration), backwards)`` pairs."""
    return [
        (
            name,
            sender,
            kwargs
            | {
                "plan": None
                if kwargs["plan"] is None
                else [(str(m), backwards) for m, backwards in kwargs["plan"]]
            },
        )
        for name, sender, kwargs in calls
    ]


def expected_sends(verbosity, interactive, created):
    """The sends of a first migrate (``created``) or of a later one."""
    library = apps.get_app_config("library")
    journal = apps.get_app_config("journal")
    empty, full = schema_states()
    common = {"verbosity": verbosity, "interactive": interactive}
    common |= {"db": "default", "using": "default"}
    common |= {"plan": [("journal.0001_initial", False)] if created else []}
    library_models = library.get_models()
    pre = [
        (cfg, {"create_models": models})
        for cfg, models in ((library, library_models), (journal, []))
    ]
    post = [
        (cfg, {"created_models": models})
        for cfg, models in ((library, library_models if created else []), (journal, []))
    ]
    states = {"pre_migrate": empty if created else full, "post_migrate": full}
    return [
        (
            name,
            cfg.models_module,
            {"app": cfg.models_module, "app_config": cfg, "apps": states[name]}
            | common
            | extra,
        )
        for name, items in (("pre_migrate", pre), ("post_migrate", post))
        for cfg, extra in items
    ]


def test_migrate_sends_the_signals_exactly_and_is_idempotent(configure, runner, db_url):
    configure(INSTALLED_APPS=APPS, DATABASES={"default": db_url})
    with checked_sends(), recording(signals.pre_migrate, signals.post_migrate) as calls:
        result = runner.invoke(main, ["migrate", "--noinput", "-v", "2"])
        assert result.exit_code == 0, result.output
        first = list(calls)
        calls.clear()
        result2 = runner.invoke(main, ["-v", "0", "migrate", "--noinput"])
        assert result2.exit_code == 0, result2.output
    names = [m._meta.object_name for m in apps.get_app_config("library").get_models()]
    assert f"Created tables of library: {', '.join(names)}\n" in result.output
    assert "Applied journal.0001_initial" in result.output
    assert normalized(first) == expected_sends(2, False, created=True)
    assert {m._meta.object_name for m in first[0][2]["create_models"]} == {
        "Author",
        "Tag",
        "Book",
        "Book_tags",
    }
    # A second run changes nothing, prints nothing at -v 0, and still sends.
    assert result2.output == ""
    assert normalized(calls) == expected_sends(0, False, created=False)
    for name, _sender, kwargs in calls:
        assert set(kwargs) == (PRE_KEYS if name == "pre_migrate" else POST_KEYS)
    # The management module's seed receiver ran twice and stayed idempotent.
    from tests.apps.library.models import Tag

    assert [t.label for t in Tag.objects.all()] == ["general"]
    # The hooks app (no models) got no signal, its receiver saw the others.
    from tests.apps.hooks import management

    seen = [kw["app_config"].label for _, kw in management.CALLS[-2:]]
    assert seen == ["library", "journal"]


def test_deprecated_syncdb_names_get_the_same_sends(configure, db_url):
    configure(INSTALLED_APPS=APPS, DATABASES={"default": db_url})
    old_calls = []

    def old_receiver(signal, sender, **kwargs):
        old_calls.append((signal.name, sender, kwargs))

    with pytest.warns(DeprecationWarning, match="pre_syncdb signal is deprecated"):
        signals.pre_syncdb.connect(old_receiver, weak=False)
    try:
        with pytest.warns(DeprecationWarning, match="post_syncdb signal is deprecated"):
            signals.post_syncdb.connect(old_receiver, weak=False)
        try:
            with recording(signals.pre_migrate, signals.post_migrate) as calls:
                call_command("migrate", interactive=False, verbosity=0)
        finally:
            assert signals.post_syncdb.disconnect(old_receiver)
    finally:
        assert signals.pre_syncdb.disconnect(old_receiver)
    assert old_calls == calls
    assert normalized(calls) == expected_sends(0, False, created=True)


def test_flush_sends_post_migrate_and_asks_first(configure, runner, db_url):
    configure(INSTALLED_APPS=APPS, DATABASES={"default": db_url})
    call_command("migrate", interactive=False, verbosity=0)
    from tests.apps.journal.models import Entry
    from tests.apps.library.models import Author
    from tests.apps.library.models import Tag

    Author(name="Ann").save()
    Entry(headline="kept?").save()
    with recording(signals.pre_migrate, signals.post_migrate) as calls:
        result = runner.invoke(main, ["flush"], input="n\n")
        assert result.exit_code == 0, result.output
        assert "Flush cancelled." in result.output
        assert calls == []
        assert Author.objects.count() == 1
        result = runner.invoke(main, ["flush"], input="y\n")
        assert result.exit_code == 0, result.output
    assert Author.objects.count() == 0
    assert Entry.objects.count() == 0
    library = apps.get_app_config("library")
    journal = apps.get_app_config("journal")
    assert [(name, kw["app_config"]) for name, _, kw in calls] == [
        ("post_migrate", library),
        ("post_migrate", journal),
    ]
    for _, _, kwargs in calls:
        assert kwargs["created_models"] == []
        assert kwargs["interactive"] is True
        assert set(kwargs) == POST_KEYS
        # As in Django: no plan for a flush; the schema is the models'.
        assert kwargs["plan"] is None
        assert kwargs["apps"] == schema_states()[1]
    # post_migrate receivers re-seed after a flush; sequences start again.
    assert [(t.pk, t.label) for t in Tag.objects.all()] == [(1, "general")]
    author = Author(name="Bea")
    author.save()
    assert author.pk == 1
    with recording(signals.post_migrate) as calls:
        call_command("flush", interactive=False, verbosity=0)
    assert [kw["interactive"] for _, _, kw in calls] == [False, False]


def test_unknown_database_alias_fails_clearly(configure, runner, tmp_path):
    configure(INSTALLED_APPS=APPS, DATABASES={"default": f"sqlite:///{tmp_path}/x.db"})
    result = runner.invoke(main, ["migrate", "--database", "other"])
    assert result.exit_code == 1
    assert (
        result.stderr
        == "Error: Unknown database alias 'other'; DATABASES has: default.\n"
    )


def test_migrate_other_database_and_plan(configure, tmp_path):
    other = tmp_path / "other.db"
    configure(
        INSTALLED_APPS=APPS,
        DATABASES={
            "default": f"sqlite:///{tmp_path}/main.db",
            "other": f"sqlite:///{other}",
        },
    )
    out = io.StringIO()
    plan = call_command("migrate", database="other", plan=True, stdout=out)
    assert plan.applied == ["journal.0001_initial"]
    assert "Apply journal.0001_initial: Create table journal_entry" in out.getvalue()
    with recording(signals.post_migrate) as calls:
        result = call_command(
            "migrate", database="other", interactive=False, verbosity=0
        )
    assert result.applied == ["journal.0001_initial"]
    assert {kw["using"] for _, _, kw in calls} == {"other"}
    with sqlite3.connect(other) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert {"journal_entry", "library_book", "framework_migrations"} <= tables
    assert not (tmp_path / "main.db").exists() or "journal_entry" not in (
        tmp_path / "main.db"
    ).read_bytes().decode("latin-1")


class TTY(io.StringIO):
    def isatty(self):
        return True


def test_progress_only_on_a_terminal(configure, tmp_path):
    configure(INSTALLED_APPS=APPS, DATABASES={"default": f"sqlite:///{tmp_path}/db"})
    tty = TTY()
    call_command("migrate", interactive=False, stdout=tty)
    assert "Applying migrations" in tty.getvalue()
    configure(INSTALLED_APPS=APPS, DATABASES={"default": f"sqlite:///{tmp_path}/db2"})
    pipe = io.StringIO()
    call_command("migrate", interactive=False, stdout=pipe)
    assert "Applying migrations" not in pipe.getvalue()
    assert "Applied journal.0001_initial\n" in pipe.getvalue()


def test_migrate_in_a_real_subprocess(tmp_path):
    db = tmp_path / "db.sqlite3"
    env = framework_env(
        FRAMEWORK_APP="tests.apps.wsgiapp:app",
        FRAMEWORK_INSTALLED_APPS=json.dumps(APPS),
        FRAMEWORK_DATABASES=json.dumps({"default": f"sqlite:///{db}"}),
    )
    for _ in range(2):
        result = run_framework("migrate", "--noinput", env=env)
        assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == result.stderr == ""
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT app, name FROM framework_migrations").fetchall()
        tags = conn.execute("SELECT label FROM library_tag").fetchall()
    assert rows == [("journal", "0001_initial")]
    assert tags == [("general",)]


def test_migrate_error_message_names_the_migration(configure, make_app, tmp_path):
    make_app(
        "brokenapp",
        {
            "models.py": (
                "from framework import orm\n\n"
                "class Thing(orm.Model):\n    name = orm.CharField(max_length=5)\n"
            ),
            "migrations/__init__.py": "",
            "migrations/0001_initial.py": (
                "from framework.orm import migrations\n\n"
                "class Migration(migrations.Migration):\n"
                "    operations = [migrations.DropTable('missing_table')]\n"
            ),
        },
    )
    configure(
        INSTALLED_APPS=["brokenapp"], DATABASES={"default": f"sqlite:///{tmp_path}/d"}
    )
    with pytest.raises(CommandError, match=r"Migration brokenapp\.0001_initial failed"):
        call_command("migrate", interactive=False, verbosity=0)


def test_showmigrations_and_plans(configure, runner, tmp_path):
    configure(INSTALLED_APPS=APPS, DATABASES={"default": f"sqlite:///{tmp_path}/db"})
    result = runner.invoke(main, ["showmigrations"])
    assert result.output == (
        "library\n (no migrations: tables come from the models)\n"
        "journal\n [ ] 0001_initial\n"
    )
    assert runner.invoke(main, ["showmigrations", "--plan"]).output == (
        "[ ] journal.0001_initial\n"
    )
    result = runner.invoke(main, ["migrate", "--plan"])
    assert result.output == (
        "Create missing tables of library (4 model(s))\n"
        "Apply journal.0001_initial: Create table journal_entry\n"
    )
    call_command("migrate", interactive=False, verbosity=0)
    assert runner.invoke(main, ["migrate", "--plan"]).output.endswith(
        "No migrations to apply.\n"
    )
    listing = call_command("showmigrations", stdout=io.StringIO())
    assert listing == {"journal": [("0001_initial", True)]}


def test_migrate_warns_about_models_without_migration(
    configure, runner, make_app, tmp_path
):
    make_app(
        "driftapp",
        {
            "models.py": (
                "from framework import orm\n\n"
                "class Thing(orm.Model):\n    name = orm.CharField(max_length=5)\n"
            ),
            "migrations/__init__.py": "",
        },
    )
    configure(
        INSTALLED_APPS=["driftapp"], DATABASES={"default": f"sqlite:///{tmp_path}/d"}
    )
    result = runner.invoke(main, ["migrate", "--noinput"])
    assert result.exit_code == 0, result.output
    assert result.stderr == (
        "Warning: the models of driftapp have changes that no migration describes"
        " yet; run 'framework makemigrations'.\n"
    )


def test_circular_dependencies_are_refused(configure, make_app, tmp_path):
    migration = (
        "from framework.orm import migrations\n\n"
        "class Migration(migrations.Migration):\n"
        "    dependencies = [({other!r}, '0001_initial')]\n"
    )
    for name, other in (("cyca", "cycb"), ("cycb", "cyca")):
        make_app(
            name,
            {
                "migrations/__init__.py": "",
                "migrations/0001_initial.py": migration.format(other=other),
            },
        )
    configure(
        INSTALLED_APPS=["cyca", "cycb"],
        DATABASES={"default": f"sqlite:///{tmp_path}/d"},
    )
    with pytest.raises(
        CommandError, match="Circular migration dependencies: cyca.0001"
    ):
        call_command("showmigrations")


def test_concurrent_migrate_processes(db_url, tmp_path):
    """Two servers starting at once both migrate; each migration runs once."""
    env = framework_env(
        FRAMEWORK_APP="tests.apps.wsgiapp:app",
        FRAMEWORK_INSTALLED_APPS=json.dumps(APPS),
        FRAMEWORK_DATABASES=json.dumps({"default": db_url}),
    )
    logs = [tmp_path / f"migrate{n}.log" for n in range(2)]
    procs = []
    for log in logs:
        with log.open("w") as out:
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "framework", "migrate", "--noinput"],
                    cwd=ROOT,
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            )
    codes = [proc.wait(timeout=60) for proc in procs]
    assert codes == [0, 0], [log.read_text() for log in logs]
    applied = "".join(log.read_text() for log in logs).count("Applied journal.0001")
    assert applied == 1
    engine = sa.create_engine(sa_url(db_url))
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT app, name FROM framework_migrations"))
            assert [tuple(row) for row in rows] == [("journal", "0001_initial")]
            tags = conn.execute(sa.text("SELECT label FROM library_tag")).fetchall()
    finally:
        engine.dispose()
    assert [tuple(row) for row in tags] == [("general",)]


def test_fake_records_without_running(configure, runner, tmp_path):
    db = tmp_path / "db.sqlite3"
    configure(INSTALLED_APPS=APPS, DATABASES={"default": f"sqlite:///{db}"})
    result = runner.invoke(main, ["migrate", "--noinput", "--fake"])
    assert result.exit_code == 0, result.output
    assert "Faked journal.0001_initial\n" in result.output
    with sqlite3.connect(db) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        rows = conn.execute("SELECT app, name FROM framework_migrations").fetchall()
    assert rows == [("journal", "0001_initial")]
    assert "journal_entry" not in tables
    assert "library_book" in tables  # apps without migrations are still created
    assert (
        call_command("migrate", app=None, interactive=False, verbosity=0).applied == []
    )


def test_flush_before_migrate_empties_only_existing_tables(configure, tmp_path):
    configure(
        INSTALLED_APPS=["tests.apps.journal"],
        DATABASES={"default": f"sqlite:///{tmp_path}/db"},
    )
    with recording(signals.post_migrate) as calls:
        assert call_command("flush", interactive=False, verbosity=0) == []
    assert [kw["app_config"].label for _, _, kw in calls] == ["journal"]


def test_created_models_lists_only_tables_this_run_created(configure, tmp_path):
    db = tmp_path / "db.sqlite3"
    configure(INSTALLED_APPS=APPS, DATABASES={"default": f"sqlite:///{db}"})
    call_command("migrate", interactive=False, verbosity=0)
    from tests.apps.library.models import Tag

    with sqlite3.connect(db) as conn:
        conn.execute("DROP TABLE library_tag")
    with recording(signals.pre_migrate, signals.post_migrate) as calls:
        result = call_command("migrate", interactive=False, verbosity=0)
    library = apps.get_app_config("library")
    assert result.created_models == {"library": [Tag]}
    sends = [(name, kw["app_config"].label, kw) for name, _, kw in calls]
    assert [(name, label) for name, label, _ in sends] == [
        ("pre_migrate", "library"),
        ("pre_migrate", "journal"),
        ("post_migrate", "library"),
        ("post_migrate", "journal"),
    ]
    assert sends[0][2]["create_models"] == library.get_models()
    assert sends[2][2]["created_models"] == [Tag]
    assert sends[3][2]["created_models"] == []
    # The seed receiver of the management module filled the new table again.
    assert [t.label for t in Tag.objects.all()] == ["general"]


def test_pre_migrate_comes_before_anything_is_installed(configure, db_url):
    configure(INSTALLED_APPS=APPS, DATABASES={"default": db_url})
    seen = []

    def tables(signal, sender, using, **kwargs):
        engine = sa.create_engine(sa_url(db_url))
        try:
            names = set(sa.inspect(engine).get_table_names())
        finally:
            engine.dispose()
        seen.append((signal.name, kwargs["app_config"].label, names))

    with signals.pre_migrate.connected_to(tables):
        with signals.post_migrate.connected_to(tables):
            call_command("migrate", interactive=False, verbosity=0)
    assert [(name, label) for name, label, _ in seen] == [
        ("pre_migrate", "library"),
        ("pre_migrate", "journal"),
        ("post_migrate", "library"),
        ("post_migrate", "journal"),
    ]
    assert seen[0][2] == seen[1][2] == set()
    installed = {"library_book", "journal_entry", "framework_migrations"}
    assert installed <= seen[2][2] == seen[3][2]


def test_apps_without_migrations_may_refer_to_apps_with_them(
    configure, make_app, db_url
):
    """Tables refering to migrated ones come after the migrations, others before."""
    make_app(
        "phbase",
        {
            "models.py": (
                "from framework import orm\n\n\n"
                "class Owner(orm.Model):\n    name = orm.CharField(max_length=10)\n"
            ),
            "migrations/__init__.py": "",
        },
    )
    make_app(
        "phplain",
        {
            "models.py": (
                "from framework import orm\n\nfrom phbase.models import Owner\n\n\n"
                "class Kind(orm.Model):\n    name = orm.CharField(max_length=10)\n\n\n"
                "class Pet(orm.Model):\n"
                "    owner = orm.ForeignKey(Owner, on_delete=orm.CASCADE)\n"
                "    kind = orm.ForeignKey(Kind, on_delete=orm.CASCADE)\n"
            )
        },
    )
    configure(INSTALLED_APPS=["phplain", "phbase"], DATABASES={"default": db_url})
    call_command("makemigrations", "phbase", verbosity=0)
    out = io.StringIO()
    result = call_command("migrate", interactive=False, stdout=out)
    assert result.applied == ["phbase.0001_initial"]
    from phplain.models import Kind
    from phplain.models import Pet

    assert result.created_models == {"phplain": [Kind, Pet]}
    assert out.getvalue() == (
        "Created tables of phplain: Kind\n"
        "Applied phbase.0001_initial\n"
        "Created tables of phplain: Pet\n"
    )
    from phbase.models import Owner

    owner = Owner(name="ann")
    owner.save()
    kind = Kind(name="cat")
    kind.save()
    Pet(owner=owner, kind=kind).save()
    assert Pet.objects.get().owner.name == "ann"
