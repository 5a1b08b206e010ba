"""Applying migrations, each in its own transaction."""

from __future__ import annotations

import collections.abc as cabc
import contextlib
import typing as t

import sqlalchemy as sa
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext

from .loader import Migration
from .loader import MigrationError
from .loader import MigrationLoader
from .operations import RunContext
from .recorder import MigrationRecorder

__all__ = ["MigrationExecutor"]

_LOCK_KEY = 0x66776D67  # "fwmg": the advisory lock key of migrate


class MigrationExecutor:
    """Applies a loader's migrations to one database.

    :param engine: the database's SQLAlchemy engine.
    :param loader: the migrations.
    :param using: the database alias (given to data migrations).
    """

    def __init__(
        self, engine: sa.Engine, loader: MigrationLoader, using: str = "default"
    ) -> None:
        self.engine = engine
        self.loader = loader
        self.using = using
        self._locked = False

    def applied(self) -> set[tuple[str, str]]:
        """Return the applied migrations as ``(app_label, name)`` pairs."""
        with self.engine.connect() as connection:
            return MigrationRecorder(connection).applied()

    def plan(self) -> list[Migration]:
        """Return the migrations still to apply, in order."""
        return self.loader.plan(self.applied())

    @contextlib.contextmanager
    def lock(self) -> t.Iterator[None]:
        """Hold the database's migration lock inside the block (re-entrant).

        Several processes may run ``migrate`` at once (servers starting
        together against one database); they take turns: on PostgreSQL with
        a session advisory lock, on a SQLite file with ``flock`` on the
        database file (SQLite's own locks are POSIX record locks, which
        ``flock`` does not touch). :meth:`apply` also checks again, inside
        the migration's transaction, whether it was applied meanwhile.
        """
        if self._locked:
            yield
            return
        vendor = self.engine.dialect.name
        with contextlib.ExitStack() as stack:
            if vendor == "postgresql":
                stack.enter_context(self._pg_lock())
            elif vendor == "sqlite":
                stack.enter_context(self._file_lock())
            self._locked = True
            try:
                yield
            finally:
                self._locked = False

    @contextlib.contextmanager
    def _pg_lock(self) -> t.Iterator[None]:
        with self.engine.connect() as connection:
            connection.exec_driver_sql(f"SELECT pg_advisory_lock({_LOCK_KEY})")
            connection.commit()
            try:
                yield
            finally:
                connection.exec_driver_sql(f"SELECT pg_advisory_unlock({_LOCK_KEY})")
                connection.commit()

    @contextlib.contextmanager
    def _file_lock(self) -> t.Iterator[None]:
        path = self.engine.url.database
        query = self.engine.url.query
        if not path or path == ":memory:" or query.get("mode") == "memory":
            yield
            return
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not on POSIX
            yield
            return
        with open(path, "ab") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def migrate(
        self,
        plan: cabc.Sequence[Migration] | None = None,
        progress: cabc.Callable[[Migration], t.Any] | None = None,
        fake: bool = False,
    ) -> list[Migration]:
        """Apply ``plan`` (default: everything pending), one transaction each.

        Migrations another process applied meanwhile are skipped.

        :param progress: called with each migration once it is applied.
        :param fake: only record the migrations as applied, run nothing (for
            a database whose schema is already there).
        :returns: the migrations this call applied.
        :raises MigrationError: a migration failed; it was rolled back and
            is named in the message; the ones before it stay applied.
        """
        with self.lock():
            self.ensure_table()
            if plan is None:
                plan = self.plan()
            done = []
            for migration in plan:
                if not self.apply(migration, fake=fake):
                    continue
                done.append(migration)
                if progress is not None:
                    progress(migration)
            return done

    def ensure_table(self) -> None:
        """Create the recording table if it does not exist yet."""
        try:
            with self.engine.begin() as connection:
                MigrationRecorder(connection).ensure_table()
        except sa.exc.DatabaseError:
            # Another process created it between the check and the CREATE.
            with self.engine.connect() as connection:
                if not MigrationRecorder(connection).exists():
                    raise

    def apply(self, migration: Migration, fake: bool = False) -> bool:
        """Apply one migration and record it, in one transaction.

        With ``fake``, only record it.

        :returns: False when it was already applied (by another process).
        :raises MigrationError: an operation failed (the transaction is
            rolled back).
        """
        state = self.loader.project_state(upto=migration)
        with self.engine.connect() as connection, _foreign_keys_off(connection):
            sqlite = connection.dialect.name == "sqlite"
            # NOTE: the ORM runs its drivers in autocommit mode (and Python's
            # sqlite3 would not open a transaction before DDL anyway), so the
            # migration's transaction is opened and closed explicitly.
            connection.exec_driver_sql("BEGIN IMMEDIATE" if sqlite else "BEGIN")
            try:
                recorder = MigrationRecorder(connection)
                if migration.key in recorder.applied():
                    connection.exec_driver_sql("ROLLBACK")
                    connection.commit()
                    return False
                op = Operations(MigrationContext.configure(connection=connection))
                operations = [] if fake else migration.operations
                for number, operation in enumerate(operations, 1):
                    context = RunContext(connection, op, state, self.using)
                    try:
                        operation.database_forwards(context)
                    except Exception as exc:
                        raise MigrationError(
                            f"Migration {migration} failed at operation {number}"
                            f" ({operation.describe()}): {_error_text(exc)}. It"
                            " was rolled back; the migrations before it stay"
                            " applied."
                        ) from exc
                    operation.state_forwards(state)
                _check_foreign_keys(connection, migration)
                recorder.record(*migration.key)
            except BaseException:
                connection.exec_driver_sql("ROLLBACK")
                connection.commit()
                raise
            connection.exec_driver_sql("COMMIT")
            connection.commit()
            return True


def _error_text(exc: BaseException) -> str:
    # One line: a database error by its driver's message, without the SQL.
    orig = getattr(exc, "orig", None)
    if isinstance(orig, BaseException):
        exc = orig
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"


@contextlib.contextmanager
def _foreign_keys_off(connection: sa.Connection) -> t.Iterator[None]:
    # SQLite rebuilds tables for many ALTERs (batch mode): with foreign keys
    # enforced, dropping the old copy of a referenced table would cascade or
    # fail. The pragma only works outside a transaction.
    if connection.dialect.name != "sqlite":
        yield
        return
    enabled = connection.exec_driver_sql("PRAGMA foreign_keys").scalar()
    connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
    connection.commit()
    try:
        yield
    finally:
        connection.exec_driver_sql(f"PRAGMA foreign_keys={'ON' if enabled else 'OFF'}")
        connection.commit()


def _check_foreign_keys(connection: sa.Connection, migration: Migration) -> None:
    if connection.dialect.name != "sqlite":
        return
    problems = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if problems:
        table, rowid, parent, _ = problems[0]
        raise MigrationError(
            f"Migration {migration} leaves broken foreign keys: row {rowid} of"
            f" {table} refers to a missing row of {parent}"
            f" ({len(problems)} problem(s)). It was rolled back."
        )
