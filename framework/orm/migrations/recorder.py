"""The table that records which migrations are applied."""

from __future__ import annotations

import datetime
import typing as t

import sqlalchemy as sa

__all__ = ["TABLE_NAME", "MigrationRecorder"]

TABLE_NAME = "framework_migrations"
"""The name of the recording table."""

_metadata = sa.MetaData()
_table = sa.Table(
    TABLE_NAME,
    _metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("app", sa.String(255), nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("applied", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("app", "name", name=f"{TABLE_NAME}_app_name_uniq"),
)


class MigrationRecorder:
    """Reads and writes the ``framework_migrations`` table on a connection.

    :param connection: a SQLAlchemy connection.
    """

    table: t.ClassVar[sa.Table] = _table
    """The SQLAlchemy table."""

    def __init__(self, connection: sa.Connection) -> None:
        self.connection = connection

    def exists(self) -> bool:
        """Return whether the table exists."""
        return sa.inspect(self.connection).has_table(TABLE_NAME)

    def ensure_table(self) -> None:
        """Create the table if it does not exist."""
        _metadata.create_all(self.connection, checkfirst=True)

    def applied(self) -> set[tuple[str, str]]:
        """Return the applied migrations as ``(app_label, name)`` pairs."""
        if not self.exists():
            return set()
        rows = self.connection.execute(sa.select(_table.c.app, _table.c.name))
        return {(row.app, row.name) for row in rows}

    def record(self, app_label: str, name: str) -> None:
        """Record a migration as applied."""
        self.connection.execute(
            _table.insert().values(
                app=app_label,
                name=name,
                applied=datetime.datetime.now(datetime.UTC),
            )
        )
