import gc
import logging
import os
import sqlite3
import time

import pytest
import sqlalchemy as sa

from framework import App
from framework import orm
from framework import signals
from framework.conf import override_settings
from framework.orm.db import parse_database
from framework.testing import TestApp
from framework.testing import capture

from .conftest import orm_test_models
from .models import Author


def test_parse_database():
    config = parse_database("default", "sqlite:///x.db")
    assert config["vendor"] == "sqlite" and config["CONN_MAX_AGE"] == 0
    config = parse_database("pg", {"URL": "postgres://u@h/db", "CONN_MAX_AGE": None})
    assert config["vendor"] == "postgresql" and config["CONN_MAX_AGE"] is None
    assert config["sa_url"] == "postgresql+psycopg://u@h/db"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("mysql://h/db", "unsupported scheme 'mysql'"),
        ("db.sqlite3", "needs a URL such as"),
        ({"URL": "sqlite:///x", "CONN_MAX_AGE": -1}, "CONN_MAX_AGE"),
        ({"URL": "sqlite:///x", "POOLSIZE": 3}, "unknown option\\(s\\) POOLSIZE"),
        ({"URL": "sqlite:///x", "TRANSACTION_MODE": "eager"}, "TRANSACTION_MODE"),
        (42, "must be a URL string or a dict"),
        (
            {"URL": "sqlite:///x", "JOURNAL_MODE": "WAL; DROP TABLE t"},
            "'JOURNAL_MODE'\\] must be one of DELETE, TRUNCATE",
        ),
        ({"URL": "sqlite:///x", "SYNCHRONOUS": "fast"}, "'SYNCHRONOUS'\\] must be"),
        ({"URL": "sqlite:///x", "TIMEOUT": "5"}, "'TIMEOUT'\\] must be a number"),
        ({"URL": "sqlite:///x", "POOL_SIZE": 2.5}, "'POOL_SIZE'\\] must be a whole"),
        ({"URL": "sqlite:///x", "OPTIONS": [1]}, "'OPTIONS'\\] must be a dict"),
    ],
)
def test_bad_database_settings(value, message):
    with pytest.raises(orm.ImproperlyConfigured, match=message):
        parse_database("default", value)


def test_database_url_env_overrides_default(tmp_path, monkeypatch):
    from framework.conf import Settings

    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/env.db")
    resolved = Settings({}, "test").DATABASES
    with override_settings(DATABASES=resolved):
        wrapper = orm.connections["default"]
        assert wrapper.settings_dict["URL"].endswith("env.db")
        wrapper.cursor().execute("SELECT 1")
        assert (tmp_path / "env.db").exists()
        orm.connections.close_all()


def test_databases_forms_reach_the_connections(tmp_path, monkeypatch, backend):
    from framework.conf import Settings

    monkeypatch.chdir(tmp_path)
    databases = {
        "default": {"URL": backend, "CONN_MAX_AGE": 30, "TIMEOUT": 2.5},
        "relative": "sqlite:///relative.db",
        "absolute": {
            "URL": f"sqlite:///{tmp_path}/absolute.db",
            "JOURNAL_MODE": "delete",
            "SYNCHRONOUS": "FULL",
        },
    }
    with override_settings(DATABASES=databases):
        default = orm.connections["default"]
        assert default.vendor == ("sqlite" if "sqlite" in backend else "postgresql")
        assert default.settings_dict["CONN_MAX_AGE"] == 30
        if default.vendor == "sqlite":
            busy = default.cursor().execute("PRAGMA busy_timeout").fetchone()[0]
            assert busy == 2500
        else:
            cursor = default.cursor()
            cursor.execute("SHOW TIME ZONE")
            assert cursor.fetchone()[0] == "UTC"
        orm.connections["relative"].cursor().execute("SELECT 1")
        assert (tmp_path / "relative.db").exists()
        cursor = orm.connections["absolute"].cursor()
        assert cursor.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        assert cursor.execute("PRAGMA synchronous").fetchone()[0] == 2
        with pytest.raises(
            orm.ImproperlyConfigured, match="known aliases: default, relative, absolute"
        ):
            orm.connections["missing"]
        orm.connections.close_all()
    # DATABASE_URL replaces the default URL and keeps its options.
    monkeypatch.setenv("DATABASE_URL", backend)
    resolved = Settings(
        {"DATABASES": {"default": {"URL": "sqlite://", "CONN_MAX_AGE": 7}}}, "test"
    ).DATABASES
    with override_settings(DATABASES=resolved):
        wrapper = orm.connections["default"]
        assert wrapper.settings_dict["URL"] == backend
        assert wrapper.settings_dict["CONN_MAX_AGE"] == 7
        Author.objects.create(name="through DATABASE_URL")
        orm.connections.close_all()
    with override_settings(DATABASES={"default": backend}):
        assert Author.objects.get().name == "through DATABASE_URL"
        Author.objects.all().delete()
        orm.connections.close_all()


@pytest.fixture
def sqlite_file(tmp_path):
    url = f"sqlite:///{tmp_path}/solo.db"
    with override_settings(DATABASES={"default": url}):
        yield tmp_path / "solo.db"
        orm.connections.close_all()


def test_sqlite_pragmas(sqlite_file):
    conn = orm.connections["default"]
    cursor = conn.cursor()
    assert cursor.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert cursor.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert cursor.execute("PRAGMA busy_timeout").fetchone()[0] == 5000
    assert isinstance(conn.engine, sa.Engine)
    assert conn.vendor == "sqlite"


def test_sqlite_write_transactions_begin_immediate(sqlite_file):
    orm.create_tables([Author])
    other = sqlite3.connect(sqlite_file, timeout=0, isolation_level=None)
    try:
        with orm.atomic():
            # Nothing written yet, but the write lock is already held.
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("INSERT INTO ormtests_author (name) VALUES ('x')")
        other.execute("INSERT INTO ormtests_author (name) VALUES ('x')")
    finally:
        other.close()


def make_app(actions):
    app = App(__name__)

    @app.route("/write")
    def write(request):
        Author.objects.create(name="view")
        return "ok"

    @app.route("/leave-open")
    def leave_open(request):
        orm.connections["default"].begin()
        Author.objects.create(name="forgotten")
        return "ok"

    @app.route("/leave-open-and-fail")
    def leave_open_and_fail(request):
        orm.connections["default"].begin()
        Author.objects.create(name="forgotten")
        raise RuntimeError("view failed")

    @app.route("/atomic-and-fail")
    def atomic_and_fail(request):
        with orm.atomic():
            Author.objects.create(name="rolled back")
            raise RuntimeError("view failed")

    @app.route("/break")
    def break_it(request):
        Author.objects.count()
        actions.append(orm.connections["default"].connection)
        orm.connections["default"].connection.close()
        try:
            Author.objects.count()
        except Exception:
            return "broken"
        return "not broken"

    return app


@pytest.fixture
def client(db):
    actions = []
    app = make_app(actions)
    client = TestApp(app, extra_environ={"HTTP_HOST": "localhost"})
    client.actions = actions
    return client


def test_request_hands_connection_back(client):
    created = []

    def count(sender, connection, **kwargs):
        created.append(connection)

    orm.connections.close_all()
    orm.connections.reset()  # an empty pool: the first request connects
    with signals.connection_created.connected_to(count):
        client.get("/write")
        assert orm.connections["default"].connection is None
        client.get("/write")
    # CONN_MAX_AGE=0 hands the connection back to the pool between requests,
    # and the next request gets the same physical connection from it.
    assert Author.objects.count() == 2
    assert len(created) == 1


def test_conn_max_age_closes_old_connections(client, backend, monkeypatch):
    import types

    from framework.orm import db as db_module

    # The connections' clock, moved by hand: the requests may take any time.
    clock = [1000.0]
    fake_time = types.SimpleNamespace(monotonic=lambda: clock[0])
    monkeypatch.setattr(db_module, "time", fake_time)
    with override_settings(DATABASES={"default": {"URL": backend, "CONN_MAX_AGE": 60}}):
        created = []

        def count(sender, connection, **kwargs):
            created.append(connection)

        with signals.connection_created.connected_to(count):
            client.get("/write")
            first = orm.connections["default"].connection
            assert first is not None
            clock[0] = 1059.0  # one second before the limit
            client.get("/write")
            assert orm.connections["default"].connection is first
            clock[0] = 1061.0  # past CONN_MAX_AGE
            client.get("/write")
            assert orm.connections["default"].connection is not first
        assert len(created) == 2
        orm.connections.close_all()


def test_transaction_left_open_is_rolled_back(client, caplog):
    with caplog.at_level(logging.ERROR, logger="framework.orm"):
        client.get("/leave-open")
    assert "transaction was left open" in caplog.text
    assert not orm.connections["default"].in_transaction()
    assert Author.objects.count() == 0


@pytest.mark.parametrize("priority", [0, 2000, -2000])
def test_cleanup_runs_when_user_receiver_raises(client, caplog, priority):
    calls = []

    def broken(sender, **kwargs):
        calls.append(sender)
        raise RuntimeError("user receiver failed")

    signals.request_finished.connect(broken, priority=priority)
    try:
        with caplog.at_level(logging.ERROR):
            response = client.get("/leave-open")
    finally:
        signals.request_finished.disconnect(broken)
    assert response.status_int == 200 and response.text == "ok"
    assert len(calls) == 1
    assert "user receiver failed" in caplog.text
    assert "transaction was left open" in caplog.text
    # The ORM's receiver ran: rolled back, and (CONN_MAX_AGE=0) handed back.
    assert orm.connections["default"].connection is None
    assert Author.objects.count() == 0
    client.get("/write")
    assert list(Author.objects.values_list("name", flat=True)) == ["view"]


@pytest.mark.parametrize("path", ["/leave-open-and-fail", "/atomic-and-fail"])
def test_view_that_raises_leaves_nothing_behind(client, caplog, path):
    with caplog.at_level(logging.ERROR):
        response = client.get(path, expect_errors=True)
    assert response.status_int == 500
    assert orm.connections["default"].connection is None
    assert Author.objects.count() == 0
    client.get("/write")
    assert Author.objects.count() == 1


def test_broken_connection_is_replaced(client):
    assert client.get("/break").text == "broken"
    broken = client.actions[0]
    assert orm.connections["default"].connection is not broken
    client.get("/write")
    assert Author.objects.count() == 1


def test_close_all_and_reuse(db):
    Author.objects.create(name="a")
    orm.connections.close_all()
    assert db.connection is None
    assert Author.objects.count() == 1


def test_connection_inherited_through_fork(db, tmp_path):
    Author.objects.create(name="parent")
    parent_connection = db.connection
    out = tmp_path / "child.txt"
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the file
        try:
            wrapper = orm.connections["default"]
            Author.objects.create(name="child")
            same = wrapper.connection is parent_connection
            # What a worker does at the end of each request and at exit.
            orm.close_old_connections()
            orm.connections.close_all()
            orm.connections.reset()
            gc.collect()
            out.write_text(f"ok {same}")
        except BaseException as exc:
            out.write_text(f"error {exc!r}")
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    assert out.read_text() == "ok False"
    # The parent's connection survived the child (it was not closed there).
    assert db.connection is parent_connection
    assert db.is_usable()
    assert sorted(Author.objects.values_list("name", flat=True)) == ["child", "parent"]
    with orm.atomic():
        Author.objects.create(name="parent again")
    assert Author.objects.count() == 3


def test_flush_tables_resets_sequences(db):
    Author.objects.create(name="a")
    Author.objects.create(name="b")
    orm.flush_tables(orm_test_models())
    assert Author.objects.count() == 0
    assert Author.objects.create(name="c").pk == 1


def test_create_and_drop_tables(db):
    class Temp(orm.Model):
        name = orm.CharField(max_length=5)

        class Meta:
            app_label = "ormdynamic"

    try:
        assert orm.create_tables([Temp, Author]) == [Temp]
        assert orm.create_tables([Temp]) == []
        Temp.objects.create(name="x")
        orm.drop_tables([Temp])
        from framework.orm.schema import table_exists

        assert not table_exists("ormdynamic_temp")
    finally:
        orm.registry.unregister(Temp)


def test_memory_database_and_deferred_mode():
    url = {"URL": "sqlite://", "TRANSACTION_MODE": "deferred"}
    with override_settings(DATABASES={"default": url}):
        try:
            orm.create_tables([Author])
            with orm.atomic():
                Author.objects.create(name="m")
            assert Author.objects.count() == 1
            assert orm.connections["default"].settings_dict["TRANSACTION_MODE"] == (
                "DEFERRED"
            )
        finally:
            orm.connections.close_all()


def test_health_checks_replace_dead_connections(backend):
    url = {"URL": backend, "CONN_MAX_AGE": None, "CONN_HEALTH_CHECKS": True}
    with override_settings(DATABASES={"default": url}):
        wrapper = orm.connections["default"]
        wrapper.ensure_connection()
        first = wrapper.connection
        orm.close_old_connections()
        assert wrapper.connection is first
        first.close()
        orm.close_old_connections()
        assert wrapper.connection is None
        assert Author.objects.count() >= 0
        assert wrapper.connection is not first
        orm.connections.close_all()


def test_a_thread_sees_only_the_connections_it_made(backend):
    import threading

    seen = {}

    def other_thread():
        seen["before"] = orm.connections.all(initialized_only=True)
        orm.close_old_connections()  # nothing to clean: no error, no connection
        seen["after"] = orm.connections.all(initialized_only=True)

    with override_settings(DATABASES={"default": backend}):
        wrapper = orm.connections["default"]
        wrapper.ensure_connection()
        try:
            thread = threading.Thread(target=other_thread)
            thread.start()
            thread.join()
            assert seen == {"before": [], "after": []}
            assert orm.connections.all(initialized_only=True) == [wrapper]
        finally:
            orm.connections.close_all()


def test_request_receiver_order():
    started = [info.name for info in signals.request_started.connections()]
    finished = [info.name for info in signals.request_finished.connections()]
    assert started[0] == "framework.orm.db.close_old_connections"
    assert finished[-1] == "framework.orm.db.close_old_connections"


@pytest.mark.postgres
def test_postgres_connection_killed_by_server(pg_url):
    import psycopg
    from support import PG_ADMIN

    with override_settings(
        DATABASES={"default": {"URL": pg_url, "CONN_MAX_AGE": None}}
    ):
        wrapper = orm.connections["default"]
        pid = wrapper.cursor().execute("SELECT pg_backend_pid()").fetchone()[0]
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with pytest.raises(psycopg.OperationalError, match="(?i)terminat|closed|lost"):
            wrapper.execute("SELECT 1")
        assert wrapper.errors_occurred
        orm.close_old_connections()
        assert wrapper.connection is None
        assert wrapper.cursor().execute("SELECT pg_backend_pid()").fetchone()[0] != pid
        orm.connections.close_all()


@pytest.mark.postgres
def test_pooled_postgres_connection_the_server_ended_is_replaced(pg_url):
    """Terminated backends in the pool cost no query: checkout replaces them."""
    import psycopg
    from support import PG_ADMIN

    def backend_pid():
        return orm.connections["default"].fetchall("SELECT pg_backend_pid()")[0][0]

    with override_settings(DATABASES={"default": pg_url}):
        # Two pooled connections: the one found dead retires the other too.
        first = orm.connections["default"]
        pids = [backend_pid()]
        second = orm.connections["default"].__class__(
            "default", first.settings_dict, orm.connections
        )
        pids.append(second.fetchall("SELECT pg_backend_pid()")[0][0])
        first.close()
        second.close()
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            for pid in pids:
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
            while admin.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", (pids,)
            ).fetchone()[0]:
                time.sleep(0.01)
        with capture(signals.connection_created) as created:
            for _ in range(3):
                assert backend_pid() not in pids
                orm.connections["default"].close()
        # Each dead connection was replaced once, before any statement ran.
        assert len(created) == 2
        with capture(signals.connection_created) as created:
            for _ in range(3):
                assert backend_pid() not in pids
                orm.connections["default"].close()
        assert len(created) == 0
        orm.connections.close_all()


@pytest.mark.postgres
def test_kept_postgres_connection_the_server_ended_is_replaced_between_requests(
    pg_url,
):
    import psycopg
    from support import PG_ADMIN

    with override_settings(
        DATABASES={"default": {"URL": pg_url, "CONN_MAX_AGE": None}}
    ):
        wrapper = orm.connections["default"]
        pid = wrapper.fetchall("SELECT pg_backend_pid()")[0][0]
        orm.close_old_connections()
        assert wrapper.connection is not None  # kept across requests
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
            while admin.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,)
            ).fetchone()[0]:
                time.sleep(0.01)
        orm.close_old_connections()  # the next request starts
        assert wrapper.fetchall("SELECT pg_backend_pid()")[0][0] != pid
        orm.connections.close_all()


def test_meta_table_indexes_and_unique_constraints_reach_the_schema(db):
    class Indexed(orm.Model):
        code = orm.CharField(max_length=5, db_index=True)
        serial = orm.IntegerField(unique=True)
        a = orm.IntegerField()
        b = orm.IntegerField()

        class Meta:
            app_label = "ormdynamic"
            db_table = "ormdynamic_custom_name"
            unique_together = [("a", "b")]
            indexes = [orm.Index(fields=["b", "code"], name="idx_b_code")]

    try:
        assert orm.create_tables([Indexed]) == [Indexed]
        indexes = sa.inspect(db.engine).get_indexes("ormdynamic_custom_name")
        columns = {tuple(index["column_names"]): index["name"] for index in indexes}
        assert ("code",) in columns
        assert columns[("b", "code")] == "idx_b_code"
        Indexed.objects.create(code="x", serial=1, a=1, b=1)
        with pytest.raises(orm.IntegrityError, match="(?i)unique|duplicate"):
            with orm.atomic():
                Indexed.objects.create(code="y", serial=1, a=2, b=2)
        with pytest.raises(orm.IntegrityError, match="(?i)unique|duplicate"):
            with orm.atomic():
                Indexed.objects.create(code="z", serial=3, a=1, b=1)
        assert Indexed.objects.count() == 1
    finally:
        orm.drop_tables([Indexed])
        orm.registry.unregister(Indexed)


def test_deleted_keys_are_never_given_to_new_rows(db):
    """AUTOINCREMENT on SQLite, as Django does: an old id never names a new row."""

    class Ticket(orm.Model):
        note = orm.TextField(max_length=5, default="")

        class Meta:
            app_label = "ormdynamic"

    try:
        orm.create_tables([Ticket])
        first, second = Ticket.objects.create(), Ticket.objects.create()
        second_pk = second.pk
        second.delete()
        assert Ticket.objects.create().pk == second_pk + 1
        assert first.pk < second_pk
        orm.flush_tables([Ticket])  # flushing starts the keys over
        assert Ticket.objects.create().pk == 1
        # A TextField with max_length: checked on save, inline or not.
        with pytest.raises(orm.ValidationError, match="at most 5 allowed"):
            Ticket.objects.create(note="toolong")
        with pytest.raises(orm.ValidationError, match="at most 5 allowed"):
            Ticket.objects.bulk_create([Ticket(note="\u00e9" * 6)])
        assert Ticket.objects.create(note="\u00e9" * 5).note == "\u00e9" * 5
        assert list(Ticket.objects.filter(note="x" * 6)) == []
    finally:
        orm.drop_tables([Ticket])
        orm.registry.unregister(Ticket)


def test_text_field_max_length_must_be_positive():
    with pytest.raises(orm.FieldError, match="max_length must be a positive"):

        class Broken(orm.Model):
            note = orm.TextField(max_length=0)

            class Meta:
                app_label = "ormdynamic"


def test_sqlite_files_and_directories_are_private(tmp_path):
    """A new database is 0600 (WAL files too), new directories 0700."""
    path = tmp_path / "new" / "deeper" / "db.sqlite3"
    (tmp_path / "kept").mkdir(mode=0o755)
    kept = tmp_path / "kept" / "existing.sqlite3"
    kept.touch(mode=0o644)
    old_umask = os.umask(0o022)
    modes = {}
    try:
        for url_path in (path, kept):
            with override_settings(DATABASES={"default": f"sqlite:///{url_path}"}):
                assert orm.create_tables([Author]) == [Author]
                Author.objects.create(name="a")
                for sidecar in url_path.parent.glob(url_path.name + "-*"):
                    modes[sidecar.name] = sidecar.stat().st_mode & 0o777
                orm.connections.close_all()
    finally:
        os.umask(old_umask)
    assert path.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "new").stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "new" / "deeper").stat().st_mode & 0o777 == 0o700
    assert modes["db.sqlite3-wal"] == modes["db.sqlite3-shm"] == 0o600
    # Existing files and directories are left as they are.
    assert kept.stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "kept").stat().st_mode & 0o777 == 0o755
