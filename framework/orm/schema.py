"""Creating, dropping and emptying model tables.

Used by tests, ``flush`` and the migration machinery. Everything runs on the
alias's wrapper connection inside ``atomic()``, so it joins an open
transaction.
"""

from __future__ import annotations

import collections.abc as cabc
import typing as t

import sqlalchemy as sa
from sqlalchemy.sql.ddl import sort_tables_and_constraints

from .db import DEFAULT_DB_ALIAS
from .db import connections
from .transaction import atomic

if t.TYPE_CHECKING:
    from .db import DatabaseWrapper
    from .models import Model

__all__ = [
    "create_tables",
    "drop_tables",
    "flush_tables",
    "reset_sequences",
    "table_exists",
    "table_names",
]


def table_names(using: str = DEFAULT_DB_ALIAS) -> set[str]:
    """Return the names of the tables in the database (current schema)."""
    conn = connections[using]
    if conn.vendor == "sqlite":
        rows = conn.fetchall("SELECT name FROM sqlite_master WHERE type = 'table'")
    else:
        rows = conn.fetchall(
            "SELECT table_name FROM information_schema.tables"
            " WHERE table_schema = current_schema()"
        )
    return {row[0] for row in rows}


def table_exists(name: str, using: str = DEFAULT_DB_ALIAS) -> bool:
    """Return whether the table ``name`` exists."""
    return name in table_names(using)


def _sorted(models: cabc.Iterable[type[Model]]) -> list[tuple[t.Any, list[t.Any]]]:
    by_table = {m._meta.table: m for m in models}
    for model in by_table.values():
        # Tables are built lazily: the ones foreign keys refer to must exist
        # in the MetaData for the sort (another app's model, maybe unused).
        for field in model._meta.fields:
            target = getattr(field, "related_model", None)
            if target is not None:
                target._meta.table  # noqa: B018
    return [
        (table, list(fkcs))
        for table, fkcs in sort_tables_and_constraints(list(by_table))  # type: ignore[no-untyped-call]
    ]


def _run(conn: DatabaseWrapper, ddl: t.Any) -> None:
    conn.execute(str(ddl.compile(dialect=conn.dialect)).strip())


def create_tables(
    models: cabc.Iterable[type[Model]], using: str = DEFAULT_DB_ALIAS
) -> list[type[Model]]:
    """Create the tables (and indexes) of ``models`` that do not exist yet.

    :returns: the models whose tables were really created.
    """
    models = list(models)
    by_table = {m._meta.table: m for m in models}
    conn = connections[using]
    created: list[type[Model]] = []
    with atomic(using=using):
        existing = table_names(using)
        leftover: list[t.Any] = []
        for table, fkcs in _sorted(models):
            if table is None:
                leftover = fkcs
                continue
            if table.name in existing:
                continue
            inline = set(fkcs)
            if conn.vendor == "sqlite":
                inline |= table.foreign_key_constraints
            _run(
                conn,
                sa.schema.CreateTable(
                    table, include_foreign_key_constraints=list(inline)
                ),
            )
            for index in table.indexes:
                _run(conn, sa.schema.CreateIndex(index))
            existing.add(table.name)
            created.append(by_table[table])
        if conn.vendor != "sqlite":
            new_tables = {m._meta.table for m in created}
            for fkc in leftover:
                if fkc.table in new_tables:
                    _run(conn, sa.schema.AddConstraint(fkc))
    return created


def drop_tables(
    models: cabc.Iterable[type[Model]], using: str = DEFAULT_DB_ALIAS
) -> None:
    """Drop the tables of ``models`` that exist."""
    conn = connections[using]
    preparer = conn.dialect.identifier_preparer
    cascade = "" if conn.vendor == "sqlite" else " CASCADE"
    with atomic(using=using):
        for table, _ in reversed(_sorted(list(models))):
            if table is not None:
                conn.execute(
                    f"DROP TABLE IF EXISTS {preparer.quote(table.name)}{cascade}"
                )


def flush_tables(
    models: cabc.Iterable[type[Model]], using: str = DEFAULT_DB_ALIAS
) -> None:
    """Delete every row of the tables of ``models`` and reset their sequences."""
    models = list(models)
    if not models:
        return
    conn = connections[using]
    preparer = conn.dialect.identifier_preparer
    names = [preparer.quote(m._meta.db_table) for m in models]
    with atomic(using=using):
        if conn.vendor == "sqlite":
            for name in names:
                conn.execute(f"DELETE FROM {name}")
            if "sqlite_sequence" in table_names(using):
                conn.execute(
                    "DELETE FROM sqlite_sequence WHERE name IN"
                    f" ({', '.join('?' for _ in models)})",
                    [m._meta.db_table for m in models],
                )
        else:
            conn.execute(f"TRUNCATE {', '.join(names)} RESTART IDENTITY CASCADE")


def reset_sequences(
    models: cabc.Iterable[type[Model]], using: str = DEFAULT_DB_ALIAS
) -> None:
    """Move PostgreSQL sequences past the largest key (after loading fixtures).

    SQLite needs nothing: its integer keys continue from the largest one.
    """
    conn = connections[using]
    if conn.vendor == "sqlite":
        return
    preparer = conn.dialect.identifier_preparer
    for model in models:
        pk = model._meta.pk
        if not isinstance(pk.sa_type(), sa.Integer):
            continue
        table = preparer.quote(model._meta.db_table)
        column = preparer.quote(pk.column)
        conn.execute(
            f"SELECT setval(pg_get_serial_sequence(%s, %s),"
            f" coalesce(max({column}), 1), max({column}) IS NOT NULL) FROM {table}",
            [model._meta.db_table, pk.column],
        )
