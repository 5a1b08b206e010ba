"""``makemigrations``: compare the models with the history.

:func:`state_from_models` describes the tables the models want;
:func:`detect_changes` lists the operations that turn the history's state
into it; :mod:`.writer` renders them as the app's next migration module.
Renamed columns look like a removal plus an addition: write a
``RenameColumn`` by hand to keep the data.
"""

from __future__ import annotations

import collections.abc as cabc
import decimal
import typing as t

from .loader import MigrationError
from .operations import AddColumn
from .operations import AddIndex
from .operations import AlterColumn
from .operations import CreateTable
from .operations import DropTable
from .operations import Operation
from .operations import RemoveColumn
from .operations import RemoveIndex
from .state import NOT_PROVIDED
from .state import ProjectState
from .state import TableState
from .state import state_from_tables

__all__ = [
    "detect_changes",
    "state_from_models",
]

_LITERALS = (bool, int, float, str, decimal.Decimal)


def state_from_models(models: cabc.Iterable[t.Any]) -> ProjectState:
    """Describe the tables of ``models``, with literal defaults kept.

    A field's default becomes the column's ``default`` (used to fill
    existing rows when the column is added) when it is a literal value.
    """
    models = list(models)
    state = state_from_tables(model._meta.table for model in models)
    for model in models:
        table = state.tables[model._meta.db_table]
        for field in model._meta.fields:
            default = getattr(field, "default", NOT_PROVIDED)
            if isinstance(default, _LITERALS) and field.column in table.columns:
                column = table.columns[field.column]
                table.columns[field.column] = column.with_changes(default=default)
    return state


def _table_order(names: list[str], state: ProjectState) -> list[str]:
    wanted = set(names)
    order: list[str] = []

    def visit(name: str, seen: tuple[str, ...]) -> None:
        if name in order or name in seen:
            return
        for column in state.tables[name].columns.values():
            target = (column.foreign_key or "").rpartition(".")[0]
            if target in wanted and target != name:
                visit(target, (*seen, name))
        order.append(name)

    for name in names:
        visit(name, ())
    return order


def _table_changes(name: str, old: TableState, table: TableState) -> list[Operation]:
    operations: list[Operation] = []
    for index_name, index in old.indexes.items():
        if table.indexes.get(index_name) != index:
            operations.append(RemoveIndex(name, index_name))
    for col_name, column in table.columns.items():
        previous = old.columns.get(col_name)
        if previous is None:
            if not (column.nullable or column.primary_key) and (
                column.default is NOT_PROVIDED
            ):
                raise MigrationError(
                    f"Cannot add the NOT NULL column {name}.{col_name} without a"
                    " default for the existing rows: give the field a literal"
                    " default or null=True, or write the migration by hand."
                )
            operations.append(AddColumn(name, column))
        elif previous != column:
            # Keep the default only to fill NULLs when NOT NULL is added.
            if not (previous.nullable and not column.nullable):
                column = column.with_changes(default=NOT_PROVIDED)
            operations.append(AlterColumn(name, col_name, column))
    for col_name in old.columns:
        if col_name not in table.columns:
            operations.append(RemoveColumn(name, col_name))
    for index_name, index in table.indexes.items():
        if old.indexes.get(index_name) != index:
            operations.append(AddIndex(name, index))
    return operations


def detect_changes(history: ProjectState, models: ProjectState) -> list[Operation]:
    """Return the operations that turn ``history`` into ``models``.

    :raises MigrationError: a NOT NULL column without a literal default would
        be added to an existing table.
    """
    operations: list[Operation] = []
    new_tables = [name for name in models.tables if name not in history.tables]
    for name in _table_order(new_tables, models):
        table = models.tables[name]
        operations.append(
            CreateTable(
                name,
                [
                    col.with_changes(default=NOT_PROVIDED)
                    for col in table.columns.values()
                ],
                list(table.indexes.values()),
            )
        )
    for name, table in models.tables.items():
        old = history.tables.get(name)
        if old is not None:
            operations += _table_changes(name, old, table)
    dropped = [name for name in history.tables if name not in models.tables]
    for name in reversed(_table_order(dropped, history)):
        operations.append(DropTable(name))
    return operations
