"""Run every ORM test on a SQLite file and on PostgreSQL (ids ``sqlite``/``postgres``).

The backend fixture is package-scoped and parametrised, so pytest runs all the
SQLite tests, then all the PostgreSQL ones, creating the test tables once per
backend; each test then empties them. PostgreSQL tests use a database of
their own (``fw_orm_<pid>``) created on 127.0.0.1:5432 and dropped at the end;
they skip when the server does not answer, unless FRAMEWORK_REQUIRE_POSTGRES=1.
"""

from __future__ import annotations

import contextlib

import pytest
import sqlalchemy as sa
from support import create_pg_database
from support import drop_pg_database

from framework import orm
from framework.conf import override_settings

from . import aggregation_models  # noqa: F401 -- expressions and aggregates
from . import models  # noqa: F401 -- defines the shared test models
from . import relation_models  # noqa: F401 -- one-to-one, to_field, list pages


def orm_test_models() -> list[type[orm.Model]]:
    return [
        model
        for model in orm.registry.get_models()
        if model._meta.app_label.startswith("ormtests")
    ]


@pytest.fixture(scope="session")
def pg_url():
    name, url = create_pg_database("fw_orm")
    yield url
    orm.connections.reset()
    drop_pg_database(name)


@pytest.fixture(
    scope="package",
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
def backend(request, tmp_path_factory):
    """The URL of the database under test, installed as DATABASES["default"]."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('orm')}/db.sqlite3"
    else:
        url = request.getfixturevalue("pg_url")
    with override_settings(DATABASES={"default": url}):
        orm.create_tables(orm_test_models())
        yield url
        orm.drop_tables(orm_test_models())
        orm.connections.close_all()


@pytest.fixture
def db(backend):
    """The default connection wrapper, on empty test tables."""
    conn = orm.connections["default"]
    yield conn
    conn = orm.connections["default"]
    if conn.in_atomic_block or conn.in_transaction():
        conn.execute("ROLLBACK")
        conn._reset_state()
    empty_tables(conn)
    orm.connections.close_all()


def empty_tables(conn):
    """Delete every row of the test tables (faster than TRUNCATE on small ones)."""
    quote = conn.dialect.identifier_preparer.quote
    with orm.atomic():
        for model in orm_test_models():
            conn.execute(f"DELETE FROM {quote(model._meta.db_table)}")


@pytest.fixture
def vendor(db):
    return db.vendor


class _RecordingCursor:
    """A real DB-API cursor that also notes every statement it runs."""

    def __init__(self, cursor, log):
        self._cursor = cursor
        self._log = log

    def execute(self, sql, params=()):
        self._log.append((sql, params))
        return self._cursor.execute(sql, params)

    def __getattr__(self, name):
        return getattr(self._cursor, name)


@pytest.fixture
def sql_log(db):
    """``(sql, params)`` of every statement the ORM runs on ``default``.

    Every ORM statement goes through the wrapper's shared cursor; this wraps
    it until the connection is handed back (``close_all()``).
    """
    log = []
    db.ensure_connection()
    db._cursor = _RecordingCursor(db._cursor, log)
    yield log


@pytest.fixture
def compilations():
    """``with compilations() as compiled:`` lists the SQL compilations in the block.

    Every statement SQLAlchemy compiles goes through a ``SQLCompiler``; the
    ORM compiles each query shape once, so a block of shapes it has seen
    before must leave ``compiled`` empty.
    """

    @contextlib.contextmanager
    def spy():
        compiled = []
        real_init = sa.sql.compiler.SQLCompiler.__init__

        def counting_init(self, *args, **kwargs):
            compiled.append(type(self).__name__)
            real_init(self, *args, **kwargs)

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(sa.sql.compiler.SQLCompiler, "__init__", counting_init)
            yield compiled

    return spy
