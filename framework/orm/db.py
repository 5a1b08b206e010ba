"""Database connections: settings, pooling, the per-thread wrapper, request hooks.

``connections[alias]`` is this thread's :class:`DatabaseWrapper` for a
database of the ``DATABASES`` setting. The wrapper checks a DB-API connection
out of the alias's SQLAlchemy pool when first used and keeps it until it is
closed (or, between requests, handed back; see ``CONN_MAX_AGE``).

Everything runs with the driver in autocommit mode; transactions are opened
explicitly by :func:`framework.orm.transaction.atomic` (``BEGIN IMMEDIATE`` on
SQLite, so concurrent writers queue on the busy timeout instead of failing with
"database is locked").
"""

from __future__ import annotations

import atexit
import collections.abc as cabc
import contextlib
import logging
import os
import select
import threading
import time
import typing as t
import weakref

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy import pool as sa_pool

from framework import signals
from framework.conf import ImproperlyConfigured
from framework.conf import settings

from .exceptions import IntegrityError

__all__ = [
    "DEFAULT_DB_ALIAS",
    "ConnectionHandler",
    "DatabaseWrapper",
    "close_old_connections",
    "compile_sql",
    "connections",
    "parse_database",
    "release_sqlite_files",
    "sqlite_path",
]

logger = logging.getLogger("framework.orm")

DEFAULT_DB_ALIAS: t.Final = "default"
"""The alias used when none is given."""

_OPTION_DEFAULTS: dict[str, t.Any] = {
    "URL": None,
    "CONN_MAX_AGE": 0,
    "CONN_HEALTH_CHECKS": False,
    "TIMEOUT": 5.0,
    "TRANSACTION_MODE": "IMMEDIATE",
    "POOL_SIZE": 5,
    "MAX_OVERFLOW": 10,
    "JOURNAL_MODE": "WAL",
    "SYNCHRONOUS": "NORMAL",
    "OPTIONS": {},
}


def parse_database(alias: str, value: t.Any) -> dict[str, t.Any]:
    """Normalise one ``DATABASES`` entry into a dict of every option.

    :param alias: the alias, for error messages.
    :param value: a URL string or a dict with ``"URL"`` and options.
    :raises ImproperlyConfigured: the entry cannot be used.
    """
    if isinstance(value, str):
        value = {"URL": value}
    if not isinstance(value, cabc.Mapping):
        raise ImproperlyConfigured(
            f"DATABASES[{alias!r}] must be a URL string or a dict with 'URL';"
            f" got {type(value).__name__}."
        )
    unknown = sorted(set(value) - set(_OPTION_DEFAULTS))
    if unknown:
        raise ImproperlyConfigured(
            f"DATABASES[{alias!r}] has unknown option(s) {', '.join(unknown)};"
            f" valid: {', '.join(sorted(_OPTION_DEFAULTS))}."
        )
    config = {**_OPTION_DEFAULTS, **value}
    url = config["URL"]
    if not isinstance(url, str) or "://" not in url:
        raise ImproperlyConfigured(
            f"DATABASES[{alias!r}] needs a URL such as 'sqlite:///db.sqlite3' or"
            f" 'postgresql://user@host/name'; got {url!r}."
        )
    scheme, rest = url.split("://", 1)
    base = scheme.split("+", 1)[0]
    if base == "sqlite":
        config["vendor"] = "sqlite"
        config["sa_url"] = f"sqlite+pysqlite://{rest}"
    elif base in ("postgresql", "postgres"):
        config["vendor"] = "postgresql"
        config["sa_url"] = f"postgresql+psycopg://{rest}"
    else:
        raise ImproperlyConfigured(
            f"DATABASES[{alias!r}] uses the unsupported scheme {scheme!r};"
            " use sqlite:/// or postgresql://."
        )
    max_age = config["CONN_MAX_AGE"]
    if max_age is not None and (not isinstance(max_age, int | float) or max_age < 0):
        raise ImproperlyConfigured(
            f"DATABASES[{alias!r}]['CONN_MAX_AGE'] must be None or a number >= 0;"
            f" got {max_age!r}."
        )
    mode = str(config["TRANSACTION_MODE"]).upper()
    if mode not in ("DEFERRED", "IMMEDIATE", "EXCLUSIVE"):
        raise ImproperlyConfigured(
            f"DATABASES[{alias!r}]['TRANSACTION_MODE'] must be DEFERRED, IMMEDIATE"
            f" or EXCLUSIVE; got {mode!r}."
        )
    config["TRANSACTION_MODE"] = mode
    # The pragmas are spliced into SQL: only known words get there.
    for name, allowed in _PRAGMA_CHOICES.items():
        word = str(config[name]).upper()
        if word not in allowed:
            raise ImproperlyConfigured(
                f"DATABASES[{alias!r}][{name!r}] must be one of"
                f" {', '.join(allowed)}; got {config[name]!r}."
            )
        config[name] = word
    for name, low in (("TIMEOUT", 0), ("POOL_SIZE", 0), ("MAX_OVERFLOW", -1)):
        value = config[name]
        kinds = (int, float) if name == "TIMEOUT" else (int,)
        if isinstance(value, bool) or not isinstance(value, kinds) or value < low:
            raise ImproperlyConfigured(
                f"DATABASES[{alias!r}][{name!r}] must be a"
                f" {'number' if name == 'TIMEOUT' else 'whole number'} >= {low};"
                f" got {value!r}."
            )
    if not isinstance(config["OPTIONS"], cabc.Mapping):
        raise ImproperlyConfigured(
            f"DATABASES[{alias!r}]['OPTIONS'] must be a dict of driver arguments;"
            f" got {config['OPTIONS']!r}."
        )
    return config


_PRAGMA_CHOICES: t.Final = {
    "JOURNAL_MODE": ("DELETE", "TRUNCATE", "PERSIST", "MEMORY", "WAL", "OFF"),
    "SYNCHRONOUS": ("OFF", "NORMAL", "FULL", "EXTRA", "0", "1", "2", "3"),
}


def compile_sql(stmt: t.Any, dialect: t.Any) -> tuple[str, tuple[str, ...]]:
    """Compile a SQLAlchemy statement to SQL text and its bind names in order.

    :returns: ``(sql, names)``; parameters go to the driver as a sequence in
        the order of ``names``.
    """
    compiled = _compile(stmt, dialect)
    return compiled.string, tuple(compiled.positiontup or ())


def compile_with_params(stmt: t.Any, dialect: t.Any) -> tuple[str, list[t.Any]]:
    """Compile ``stmt`` and return its SQL and the parameter list for the driver."""
    compiled = _compile(stmt, dialect)
    params = compiled.params
    return compiled.string, [params[name] for name in compiled.positiontup or ()]


def _compile(stmt: t.Any, dialect: t.Any) -> t.Any:
    return stmt.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})


# Fork safety ------------------------------------------------------------------

_all_wrappers: weakref.WeakSet[DatabaseWrapper] = weakref.WeakSet()
# Connections inherited from the parent process: kept referenced forever in the
# child so that neither garbage collection nor the pool closes or resets them
# (that would tear down the parent's session).
_orphans: list[t.Any] = []


def _after_fork_in_child() -> None:
    for wrapper in list(_all_wrappers):
        wrapper._discard()
    connections._forget_engines()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class _RecordingCursor:
    """A DB-API cursor that also appends each statement to open logs (tests)."""

    __slots__ = ("cursor", "logs")

    def __init__(self, cursor: t.Any, logs: list[list[tuple[str, t.Any]]]) -> None:
        self.cursor = cursor
        self.logs = logs

    def execute(self, sql: str, params: t.Any = ()) -> t.Any:
        for log in self.logs:
            log.append((sql, params))
        return self.cursor.execute(sql, params)

    def executemany(self, sql: str, seq: t.Any) -> t.Any:
        rows = list(seq)
        for log in self.logs:
            log.append((sql, rows))
        return self.cursor.executemany(sql, rows)

    def __getattr__(self, name: str) -> t.Any:
        return getattr(self.cursor, name)


class DatabaseWrapper:
    """One thread's handle on one database alias.

    :param alias: the alias in ``DATABASES``.
    :param config: the entry as returned by :func:`parse_database`.
    :param handler: the :class:`ConnectionHandler` owning the engines.
    """

    def __init__(
        self, alias: str, config: dict[str, t.Any], handler: ConnectionHandler
    ) -> None:
        self.alias = alias
        """The alias in ``DATABASES``."""
        self.settings_dict = config
        """The options of this database."""
        self.vendor: str = config["vendor"]
        """``"sqlite"`` or ``"postgresql"``."""
        self._handler = handler
        self.connection: t.Any = None
        """The DB-API connection, or ``None`` while not connected."""
        self._proxy: t.Any = None
        self._cursor: t.Any = None
        self.pid: int | None = None
        self.in_atomic_block = False
        """Whether an ``atomic()`` block is open on this connection."""
        self.savepoint_ids: list[str | None] = []
        self.run_on_commit: list[
            tuple[set[str | None], cabc.Callable[[], t.Any], bool]
        ] = []
        self.needs_rollback = False
        self.errors_occurred = False
        self._savepoint_seq = 0
        self.close_at: float | None = None
        self.captured: list[list[tuple[str, t.Any]]] = []
        """The logs of the :meth:`capture_queries` blocks open right now."""
        if self.vendor == "sqlite":
            import sqlite3

            self.Database: t.Any = sqlite3
        else:
            import psycopg

            self.Database = psycopg
        self._integrity_errors = (self.Database.IntegrityError,)
        self._errors = (self.Database.Error,)
        _all_wrappers.add(self)

    def __repr__(self) -> str:
        return f"<DatabaseWrapper {self.alias!r} vendor={self.vendor!r}>"

    @property
    def engine(self) -> sa.Engine:
        """The SQLAlchemy Engine (and pool) of this alias, shared by threads."""
        return self._handler.engine(self.alias)

    @property
    def dialect(self) -> t.Any:
        """The SQLAlchemy dialect, for compiling statements."""
        return self.engine.dialect

    # Connecting ---------------------------------------------------------------

    def ensure_connection(self) -> t.Any:
        """Return the DB-API connection, checking one out of the pool if needed."""
        if self.connection is not None:
            if self.pid == os.getpid():
                return self.connection
            self._discard()
        proxy = self.engine.raw_connection()
        info = proxy.info
        self._proxy = proxy
        self.connection = proxy.dbapi_connection
        self.pid = os.getpid()
        self._cursor = self.connection.cursor()
        if self.captured:
            self._cursor = _RecordingCursor(self._cursor, self.captured)
        self.errors_occurred = False
        max_age = self.settings_dict["CONN_MAX_AGE"]
        created = info.get("fw_created", time.monotonic())
        self.close_at = None if not max_age else created + max_age
        if info.pop("fw_new", False):
            signals.connection_created.send(sender=type(self), connection=self)
        return self.connection

    @contextlib.contextmanager
    def capture_queries(self) -> cabc.Iterator[list[tuple[str, t.Any]]]:
        """Record every statement run through this wrapper in a ``with`` block.

        Yields the list that receives ``(sql, params)`` of each statement, in
        order, transaction control (``BEGIN``, ``COMMIT``, ``SAVEPOINT``)
        included; a connection opened inside the block is recorded too.
        Blocks nest: an outer block also records what inner ones ran.
        """
        log: list[tuple[str, t.Any]] = []
        if not self.captured:
            cursor = self._cursor
            if cursor is not None:
                self._cursor = _RecordingCursor(cursor, self.captured)
        self.captured.append(log)
        try:
            yield log
        finally:
            self.captured.remove(log)
            cursor = self._cursor
            if not self.captured and isinstance(cursor, _RecordingCursor):
                self._cursor = cursor.cursor

    def cursor(self) -> t.Any:
        """Return a new DB-API cursor on the connection (connecting if needed)."""
        return self.ensure_connection().cursor()

    def execute(self, sql: str, params: cabc.Sequence[t.Any] = ()) -> t.Any:
        """Run ``sql`` with positional ``params`` on the shared cursor; return it.

        :raises IntegrityError: the database refused the write.
        """
        cursor = self._cursor
        if cursor is None:
            # NOTE: after a fork the at-fork hook has cleared _cursor, so a
            # connection inherited from the parent is never used here.
            self.ensure_connection()
            cursor = self._cursor
        try:
            cursor.execute(sql, params)
        except self._integrity_errors as exc:
            raise IntegrityError(f"{exc} (database {self.alias!r})") from exc
        except self._errors:
            self.errors_occurred = True
            raise
        return cursor

    def fetchall(self, sql: str, params: cabc.Sequence[t.Any] = ()) -> list[t.Any]:
        """Run a query and return every row."""
        return list(self.execute(sql, params).fetchall())

    def is_usable(self) -> bool:
        """Return whether the connection still answers a trivial query."""
        return self.connection is not None and _usable(self.connection, self._errors)

    def close(self) -> None:
        """Hand the connection back to the pool (rolling back an open transaction)."""
        proxy = self._detach()
        if proxy is None:
            return
        try:
            if self.errors_occurred and not _usable(
                proxy.dbapi_connection, self._errors
            ):
                proxy.invalidate()
            else:
                proxy.close()
        except self._errors:
            logger.warning("Error closing %r", self, exc_info=True)

    def close_physically(self) -> None:
        """Close the DB-API connection itself instead of pooling it."""
        proxy = self._detach()
        if proxy is not None:
            proxy.invalidate()

    def _detach(self) -> t.Any:
        """Forget the connection; return its pool proxy if this process may close it."""
        proxy = self._proxy
        if proxy is None:
            return None
        if self.pid != os.getpid():
            self._discard()
            return None
        self._reset_state()
        self.connection = self._proxy = self._cursor = None
        return proxy

    def _discard(self) -> None:
        # A connection inherited through fork(): never used, never closed here.
        if self._proxy is not None:
            _orphans.append((self._proxy, self.connection, self._cursor))
        self.connection = self._proxy = self._cursor = None
        self._reset_state()

    def _reset_state(self) -> None:
        self.in_atomic_block = False
        self.savepoint_ids = []
        self.run_on_commit = []
        self.needs_rollback = False

    def in_transaction(self) -> bool:
        """Return whether the DB-API connection has a transaction open."""
        conn = self.connection
        if conn is None:
            return False
        try:
            if self.vendor == "sqlite":
                return bool(conn.in_transaction)
            from psycopg import pq

            return bool(conn.info.transaction_status != pq.TransactionStatus.IDLE)
        except self._errors:
            self.errors_occurred = True
            return False

    def close_if_unusable_or_obsolete(self) -> None:
        """Roll back a forgotten transaction; close broken or too old connections.

        Called on ``request_started`` and ``request_finished``.
        """
        if self.connection is None:
            return
        if self.pid != os.getpid():
            self._discard()
            return
        check = self.errors_occurred or self.settings_dict["CONN_HEALTH_CHECKS"]
        if check and not self.is_usable():
            self.close_physically()
            return
        if (
            self.vendor == "postgresql"
            and not self.in_atomic_block
            and _closed_by_server(self.connection)
        ):
            # A connection kept across requests (CONN_MAX_AGE) that the
            # server ended since: replaced before the next request uses it.
            self.close_physically()
            return
        if self.in_atomic_block or self.in_transaction():
            logger.error(
                "A transaction was left open on database %r; rolling it back.",
                self.alias,
            )
            try:
                self.execute("ROLLBACK")
            except self._errors:
                self.errors_occurred = True
            self._reset_state()
        max_age = self.settings_dict["CONN_MAX_AGE"]
        if max_age == 0:
            self.close()
        elif self.close_at is not None and time.monotonic() >= self.close_at:
            self.close_physically()

    # Transactions -------------------------------------------------------------

    def begin(self) -> None:
        """Open a transaction (``BEGIN IMMEDIATE`` on SQLite by default)."""
        if self.vendor == "sqlite":
            self.execute(f"BEGIN {self.settings_dict['TRANSACTION_MODE']}")
        else:
            self.execute("BEGIN")

    def commit(self) -> None:
        """Commit the open transaction."""
        self.execute("COMMIT")

    def rollback(self) -> None:
        """Roll back the open transaction."""
        if self.in_transaction():
            self.execute("ROLLBACK")

    def savepoint(self) -> str:
        """Create a savepoint and return its name."""
        self._savepoint_seq += 1
        name = f"fw_sp_{self._savepoint_seq}"
        self.execute(f"SAVEPOINT {name}")
        return name

    def savepoint_commit(self, name: str) -> None:
        """Release the savepoint ``name``."""
        self.execute(f"RELEASE SAVEPOINT {name}")

    def savepoint_rollback(self, name: str) -> None:
        """Roll back to the savepoint ``name`` and release it."""
        self.execute(f"ROLLBACK TO SAVEPOINT {name}")
        self.execute(f"RELEASE SAVEPOINT {name}")
        self.run_on_commit = [
            entry for entry in self.run_on_commit if name not in entry[0]
        ]


def _usable(dbapi_connection: t.Any, errors: tuple[type[BaseException], ...]) -> bool:
    try:
        dbapi_connection.cursor().execute("SELECT 1")
    except errors:
        return False
    return True


def _on_sqlite_connect(config: dict[str, t.Any]) -> cabc.Callable[..., None]:
    def on_connect(dbapi_connection: t.Any, record: t.Any) -> None:
        record.info["fw_new"] = True
        record.info["fw_created"] = time.monotonic()
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        timeout_ms = int(float(config["TIMEOUT"]) * 1000)
        cursor.execute(f"PRAGMA busy_timeout = {timeout_ms}")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA case_sensitive_like = ON")
        if not _is_memory(config):
            cursor.execute(f"PRAGMA journal_mode = {config['JOURNAL_MODE']}")
            cursor.execute(f"PRAGMA synchronous = {config['SYNCHRONOUS']}")
        cursor.close()

    return on_connect


def _on_pg_connect(dbapi_connection: t.Any, record: t.Any) -> None:
    record.info["fw_new"] = True
    record.info["fw_created"] = time.monotonic()
    if not dbapi_connection.autocommit:
        dbapi_connection.rollback()
        dbapi_connection.autocommit = True


def _replace_if_closed_by_server(
    dbapi_connection: t.Any, record: t.Any, proxy: t.Any
) -> None:
    """Make the pool replace a PostgreSQL connection the server has ended.

    Runs on every checkout, so outside any transaction (once per request
    with ``CONN_MAX_AGE=0``). A server restart, a terminated backend or an
    idle timeout leaves dead connections in the pool; raising
    ``InvalidatePoolError`` makes SQLAlchemy open a new one in its place
    (one attempt more) and retire every older pooled connection too.
    """
    if _closed_by_server(dbapi_connection):
        raise sa.exc.InvalidatePoolError(
            "the database server closed this pooled connection"
        )


def _closed_by_server(dbapi_connection: t.Any) -> bool:
    # PERF: a backend that ends a session sends its FATAL message and closes
    # the socket, so an idle connection with anything to read is (almost
    # surely) dead, and a healthy idle one has nothing to read. One poll()
    # (about 1 us) tells them apart, where SQLAlchemy's pool_pre_ping costs a
    # SELECT 1 round trip (about 40 us, bench in docs/orm.md) on every
    # checkout. Something readable is confirmed with SELECT 1 (a NOTIFY makes
    # a live connection readable too).
    if dbapi_connection.closed:
        return True
    fd = dbapi_connection.fileno()
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(fd, select.POLLIN | select.POLLPRI)
        readable = bool(poller.poll(0))
    else:  # pragma: no cover - platforms without poll()
        readable = bool(select.select([fd], [], [], 0)[0])
    return readable and not _usable(dbapi_connection, (Exception,))


def _create_private_file(path: str | None) -> None:
    """Create a missing SQLite database file 0600 and missing directories 0700.

    sqlite3 would create the file with the process's umask (often 0644:
    readable by every local user); SQLite gives the ``-wal`` and ``-shm``
    files the database file's mode. An existing file or directory is left
    as it is.
    """
    if not path or path.startswith("file:") or os.path.exists(path):
        return
    directory = os.path.dirname(os.path.abspath(path))
    missing = []
    while not os.path.isdir(directory):
        missing.append(directory)
        parent = os.path.dirname(directory)
        if parent == directory:
            break
        directory = parent
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):
            os.mkdir(directory, 0o700)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _is_memory(config: dict[str, t.Any]) -> bool:
    rest = config["sa_url"].split("://", 1)[1]
    return rest in ("", "/", "/:memory:") or "mode=memory" in rest


def _create_engine(config: dict[str, t.Any]) -> sa.Engine:
    options = dict(config["OPTIONS"])
    if config["vendor"] == "sqlite":
        connect_args = {
            "check_same_thread": False,
            "timeout": float(config["TIMEOUT"]),
            "isolation_level": None,
            **options,
        }
        if _is_memory(config):
            engine = sa.create_engine(
                config["sa_url"],
                connect_args=connect_args,
                poolclass=sa_pool.StaticPool,
            )
        else:
            url = sa.engine.make_url(config["sa_url"])
            if not url.query:  # ?mode=ro, ?uri=true...: SQLite's to open
                _create_private_file(url.database)
            engine = sa.create_engine(
                config["sa_url"],
                connect_args=connect_args,
                poolclass=sa_pool.QueuePool,
                pool_size=config["POOL_SIZE"],
                max_overflow=config["MAX_OVERFLOW"],
            )
        event.listen(engine, "connect", _on_sqlite_connect(config))
    else:
        connect_args = {
            "autocommit": True,
            "options": "-c timezone=UTC",
            "connect_timeout": max(1, int(float(config["TIMEOUT"]))),
            **options,
        }
        engine = sa.create_engine(
            config["sa_url"],
            connect_args=connect_args,
            paramstyle="format",
            pool_size=config["POOL_SIZE"],
            max_overflow=config["MAX_OVERFLOW"],
        )
        event.listen(engine, "connect", _on_pg_connect)
        event.listen(engine, "checkout", _replace_if_closed_by_server)
    return engine


class ConnectionHandler:
    """``connections``: this thread's :class:`DatabaseWrapper` per alias."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._engines: dict[str, sa.Engine] = {}
        self._configs: dict[str, dict[str, t.Any]] | None = None
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return f"<ConnectionHandler aliases={list(self.databases)}>"

    @property
    def databases(self) -> dict[str, dict[str, t.Any]]:
        """The parsed ``DATABASES`` setting."""
        configs = self._configs
        if configs is None:
            with self._lock:
                raw = settings.DATABASES
                if not isinstance(raw, cabc.Mapping) or not raw:
                    raise ImproperlyConfigured(
                        "DATABASES must be a non-empty dict of alias -> URL or dict,"
                        " e.g. {'default': 'sqlite:///db.sqlite3'}."
                    )
                configs = {alias: parse_database(alias, v) for alias, v in raw.items()}
                self._configs = configs
        return configs

    def __getitem__(self, alias: str) -> DatabaseWrapper:
        try:
            return t.cast(DatabaseWrapper, self._local.wrappers[alias])
        except AttributeError:
            self._local.wrappers = {}
        except KeyError:
            pass
        try:
            config = self.databases[alias]
        except KeyError:
            raise ImproperlyConfigured(
                f"The database alias {alias!r} is not in DATABASES; known aliases:"
                f" {', '.join(self.databases)}."
            ) from None
        wrapper = DatabaseWrapper(alias, config, self)
        self._local.wrappers[alias] = wrapper
        return wrapper

    def __contains__(self, alias: object) -> bool:
        return alias in self.databases

    def __iter__(self) -> cabc.Iterator[str]:
        return iter(self.databases)

    def get_if_exists(self, alias: str) -> DatabaseWrapper | None:
        """Return this thread's wrapper for ``alias`` if it was created already."""
        wrappers = getattr(self._local, "wrappers", None)
        return None if wrappers is None else wrappers.get(alias)

    def all(self, initialized_only: bool = False) -> list[DatabaseWrapper]:
        """Return this thread's wrappers (only those already created, if asked)."""
        if initialized_only:
            # PERF: runs twice per request (close_old_connections); getattr()
            # with a default on a thread-local costs an AttributeError (about
            # 5k instructions) in a thread that has not used the database yet.
            wrappers = self._local.__dict__.get("wrappers")
            return list(wrappers.values()) if wrappers else []
        return [self[alias] for alias in self.databases]

    def engine(self, alias: str) -> sa.Engine:
        """Return the shared SQLAlchemy Engine of ``alias``."""
        engine = self._engines.get(alias)
        if engine is None:
            with self._lock:
                engine = self._engines.get(alias)
                if engine is None:
                    engine = _create_engine(self.databases[alias])
                    self._engines[alias] = engine
                    _close_at_exit()
        return engine

    def close_all(self) -> None:
        """Hand back this thread's connections to their pools."""
        for wrapper in self.all(initialized_only=True):
            wrapper.close()

    def reset(self) -> None:
        """Close every connection and engine, and re-read ``DATABASES`` on next use."""
        with self._lock:
            for wrapper in list(_all_wrappers):
                if wrapper.pid == os.getpid():
                    try:
                        wrapper.close_physically()
                    except Exception:
                        logger.warning("Error closing %r", wrapper, exc_info=True)
                else:
                    wrapper._discard()
            for engine in self._engines.values():
                engine.dispose()
            self._engines = {}
            self._configs = None
            self._local = threading.local()

    def _forget_engines(self) -> None:
        # NOTE: runs in a child right after fork(); a lock another thread held
        # at that moment would never be released here, so it is replaced.
        self._lock = threading.RLock()
        for engine in self._engines.values():
            _orphans.append(engine.pool)
            engine.dispose(close=False)
        self._local = threading.local()


connections = ConnectionHandler()
"""This thread's database wrappers: ``connections["default"]``."""


def close_old_connections(**kwargs: t.Any) -> None:
    """Roll back forgotten transactions and close broken or too old connections.

    Connected to ``request_started`` and ``request_finished`` when the ORM is
    imported.
    """
    for wrapper in connections.all(initialized_only=True):
        try:
            wrapper.close_if_unusable_or_obsolete()
        except Exception:
            logger.exception("Error cleaning up database %r", wrapper.alias)


def sqlite_path(config: cabc.Mapping[str, t.Any]) -> str | None:
    """Return the file of a SQLite database entry (``None``: in memory, not SQLite).

    :param config: an entry as returned by :func:`parse_database`.
    """
    if config["vendor"] != "sqlite" or _is_memory(dict(config)):
        return None
    database = sa.engine.make_url(config["sa_url"]).database
    return database or None


def release_sqlite_files() -> None:
    """Close this process's connections, then let SQLite remove its -wal/-shm files.

    SQLite folds the write-ahead log back into the database file and deletes
    the ``-wal`` and ``-shm`` files when the last connection to it closes
    cleanly. This closes every connection and pool of this process, then opens
    and closes each SQLite file database that still has them: if no other
    process has it open (a server's master, once its workers are gone), that
    close is the last one. It never creates a database file.
    """
    connections.reset()
    import sqlite3

    for config in connections.databases.values():
        path = sqlite_path(config)
        if path is None or not os.path.exists(path):
            continue
        if not (os.path.exists(f"{path}-wal") or os.path.exists(f"{path}-shm")):
            continue
        try:
            conn = sqlite3.connect(
                f"file:{path}?mode=rw", uri=True, timeout=float(config["TIMEOUT"])
            )
            try:
                conn.execute("SELECT count(*) FROM sqlite_master").fetchall()
            finally:
                conn.close()
        except sqlite3.Error:
            logger.warning("Could not check-point %s", path, exc_info=True)


_exit_hook_pid: int | None = None


def _close_at_exit() -> None:
    """Close this process's connections when it exits (once per process).

    A pooled SQLite connection that is never closed leaves the database's
    ``-wal`` and ``-shm`` files behind; the last one closed removes them.
    """
    global _exit_hook_pid
    pid = os.getpid()
    if _exit_hook_pid != pid:
        _exit_hook_pid = pid
        atexit.register(_close_all_at_exit, pid)


def _close_all_at_exit(pid: int) -> None:
    if os.getpid() != pid:  # inherited through fork(): the child has its own
        return
    try:
        connections.reset()
    except Exception:
        logger.warning("Error closing the database connections", exc_info=True)


def reset_connections(*, setting: str, **kwargs: t.Any) -> None:
    """Drop every connection when ``DATABASES`` changes (``override_settings``)."""
    if setting in ("DATABASES", "DATABASE_URL"):
        connections.reset()
