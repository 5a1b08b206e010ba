"""Test databases: what the pytest plugin's ``db`` and ``transactional_db`` use.

:class:`TestDatabases` creates one fresh database per alias of ``DATABASES``
for a test session, installs them with ``override_settings(DATABASES=...)``
and drops them at the end:

- a SQLite alias gets a new file in a temporary directory;
- a PostgreSQL alias gets ``test_<name>`` on the same server (dropped first if
  a previous run left it behind), created from the server's ``postgres``
  database (``template1`` when there is none).

:func:`rolled_back` runs a block inside a transaction on every alias and rolls
it back at the end. Requests made meanwhile (through WebTest, in the same
thread) see the test's data, because the ORM's ``close_old_connections``
receivers stay disconnected while the block runs.

This module imports the ORM: the plugin imports it only for a test that asks
for a database.
"""

from __future__ import annotations

import collections.abc as cabc
import contextlib
import os
import pathlib
import re
import time
import typing as t

import sqlalchemy as sa

from .. import signals
from ..conf import ImproperlyConfigured
from ..conf import override_settings
from ..conf import settings
from ..orm import connections
from ..orm import transaction
from ..orm.db import close_old_connections
from ..orm.db import parse_database

__all__ = [
    "TestDatabases",
    "name_of_test_database",
    "recreate_database",
    "rolled_back",
    "xdist_suffix",
]

_CLOSE_UID: t.Final = "framework.orm.close_old_connections"
_SAFE_NAME: t.Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def name_of_test_database(name: str, suffix: str = "") -> str:
    """Return the name of the test database of the database ``name``: ``test_<name>``.

    :param suffix: appended with an underscore (a pytest-xdist worker's id).
    """
    test_name = f"test_{name}" + (f"_{suffix}" if suffix else "")
    if not _SAFE_NAME.match(test_name) or len(test_name) > 63:
        raise ImproperlyConfigured(
            f"Cannot name a PostgreSQL test database after {name!r}: {test_name!r}"
            " is not a plain identifier of at most 63 characters."
        )
    return test_name


def recreate_database(admin: t.Any, name: str) -> None:
    """Drop the PostgreSQL database ``name`` (ending its sessions) and create it.

    ``admin`` is an autocommit psycopg connection to another database.
    ``CREATE DATABASE`` copies ``template1`` and fails while another session
    copies it too (SQLSTATE 55006, whatever the server's language): that is
    retried for up to 10 s.
    """
    import psycopg

    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    deadline = time.monotonic() + 10
    while True:
        try:
            admin.execute(f'CREATE DATABASE "{name}"')
            return
        except psycopg.errors.ObjectInUse:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.25)


class TestDatabases:
    """The session's test databases, one per alias of ``DATABASES``.

    :param directory: where SQLite test databases are created.
    :param suffix: added to PostgreSQL test database names (pytest-xdist).
    """

    __test__ = False  # NOTE: not a test class, whatever pytest thinks of the name

    def __init__(self, directory: pathlib.Path, suffix: str = "") -> None:
        self.directory = directory
        """Where SQLite test databases are created."""
        self.suffix = suffix
        """Added to PostgreSQL test database names."""
        self.databases: dict[str, t.Any] = {}
        """The ``DATABASES`` setting of the test databases, once created."""
        self._created: list[str] = []
        self._override: override_settings | None = None

    def create(self) -> dict[str, t.Any]:
        """Create the test databases and install them as ``DATABASES``.

        :returns: the new ``DATABASES`` setting.
        :raises ImproperlyConfigured: ``DATABASES`` cannot be used.
        """
        configured = settings.DATABASES
        if not isinstance(configured, cabc.Mapping) or not configured:
            raise ImproperlyConfigured(
                "DATABASES must be a non-empty dict for the test databases."
            )
        databases: dict[str, t.Any] = {}
        for alias, value in configured.items():
            config = parse_database(alias, value)
            if config["vendor"] == "sqlite":
                url = f"sqlite:///{self.directory / f'{alias}.sqlite3'}"
            else:
                url = self._create_postgres(config["URL"])
            databases[alias] = (
                {**value, "URL": url} if isinstance(value, cabc.Mapping) else url
            )
        self.databases = databases
        self._override = override_settings(DATABASES=databases)
        self._override.__enter__()
        return databases

    def _create_postgres(self, url: str) -> str:
        parsed = sa.engine.make_url(url)
        name = name_of_test_database(parsed.database or "postgres", self.suffix)
        with _admin_connection(parsed) as admin:
            recreate_database(admin, name)
        self._created.append(url)
        return parsed.set(database=name).render_as_string(hide_password=False)

    def destroy(self) -> None:
        """Restore ``DATABASES`` and drop the PostgreSQL test databases."""
        connections.reset()
        if self._override is not None:
            self._override.__exit__(None, None, None)
            self._override = None
        for url in self._created:
            parsed = sa.engine.make_url(url)
            name = name_of_test_database(parsed.database or "postgres", self.suffix)
            with _admin_connection(parsed) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self._created = []


@contextlib.contextmanager
def _admin_connection(parsed: sa.engine.URL) -> cabc.Iterator[t.Any]:
    """Connect to the server's ``postgres`` database (else ``template1``)."""
    import psycopg

    last: Exception | None = None
    for maintenance in ("postgres", "template1"):
        conninfo = parsed.set(
            drivername="postgresql", database=maintenance
        ).render_as_string(hide_password=False)
        try:
            connection = psycopg.connect(conninfo, autocommit=True, connect_timeout=10)
        except psycopg.OperationalError as exc:
            last = exc
            continue
        with connection:
            yield connection
        return
    raise ImproperlyConfigured(
        f"Cannot connect to the PostgreSQL server of {parsed.database!r} to create"
        f" its test database: {last}"
    )


@contextlib.contextmanager
def rolled_back(aliases: cabc.Iterable[str] | None = None) -> cabc.Iterator[None]:
    """Run a block in a transaction on each alias; roll everything back after it.

    The block's own ``atomic()`` blocks become savepoints, and ``on_commit``
    callbacks never run (nothing commits): test those with
    ``transactional_db``.
    """
    names = list(connections if aliases is None else aliases)
    blocks = []
    with _connections_kept():
        try:
            for alias in names:
                block = transaction.atomic(using=alias)
                block.__enter__()
                blocks.append((alias, block))
            yield
        finally:
            for alias, block in reversed(blocks):
                conn = connections[alias]
                if conn.in_atomic_block:
                    conn.needs_rollback = True
                    conn.savepoint_ids = []
                    block.__exit__(None, None, None)
                connections[alias].close()


@contextlib.contextmanager
def _connections_kept() -> cabc.Iterator[None]:
    """Keep the ORM from closing connections between requests, for a block."""
    started = signals.request_started.disconnect(dispatch_uid=_CLOSE_UID)
    finished = signals.request_finished.disconnect(dispatch_uid=_CLOSE_UID)
    try:
        yield
    finally:
        if started:
            signals.request_started.connect(
                close_old_connections,
                weak=False,
                dispatch_uid=_CLOSE_UID,
                priority=1000,
            )
        if finished:
            signals.request_finished.connect(
                close_old_connections,
                weak=False,
                dispatch_uid=_CLOSE_UID,
                priority=-1000,
            )


def xdist_suffix() -> str:
    """Return the pytest-xdist worker id (``gw0``...), or ``""`` without xdist."""
    return os.environ.get("PYTEST_XDIST_WORKER", "")
