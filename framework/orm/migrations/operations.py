"""Migration operations, applied with Alembic's operations.

Every operation does two things: :meth:`Operation.state_forwards` changes
a :class:`~framework.orm.migrations.state.ProjectState` (no database), and
:meth:`Operation.database_forwards` changes the database through an
``alembic.operations.Operations`` object bound to the migration's
connection. On SQLite, column changes go through Alembic's batch mode,
which rebuilds the table when SQLite's ``ALTER TABLE`` cannot do it.
"""

from __future__ import annotations

import collections.abc as cabc
import typing as t

import sqlalchemy as sa

from .state import NOT_PROVIDED
from .state import Column
from .state import Index
from .state import ProjectState
from .state import TableState
from .state import table_options

if t.TYPE_CHECKING:
    from alembic.operations import Operations

__all__ = [
    "AddColumn",
    "AddIndex",
    "AlterColumn",
    "CreateTable",
    "DropTable",
    "Operation",
    "RemoveColumn",
    "RemoveIndex",
    "RenameColumn",
    "RunContext",
    "RunPython",
]


class RunContext:
    """What operations (and :class:`RunPython` functions) get while applied.

    :param connection: the SQLAlchemy connection, inside the migration's
        transaction.
    :param op: Alembic's ``Operations`` bound to that connection.
    :param state: the schema before the current operation.
    :param using: the database alias.
    """

    def __init__(
        self,
        connection: sa.Connection,
        op: Operations,
        state: ProjectState,
        using: str,
    ) -> None:
        self.connection = connection
        """The SQLAlchemy connection (its transaction is the migration's)."""
        self.op = op
        """Alembic's ``Operations`` on that connection."""
        self.state = state
        """The schema as the history has built it so far."""
        self.using = using
        """The database alias."""

    @property
    def vendor(self) -> str:
        """The dialect name: ``"sqlite"`` or ``"postgresql"``."""
        return self.connection.dialect.name

    def table(self, name: str) -> sa.Table:
        """Return a SQLAlchemy Table of ``name`` as it is at this point.

        Data migrations use it with SQLAlchemy Core, so they keep working
        after the models change.
        """
        return self.state.table(name).to_sa()

    def server_default(self, column: Column) -> t.Any:
        """Return the SQL default filling existing rows for ``column``."""
        if column.default is NOT_PROVIDED or column.default is None:
            return None
        literal = sa.literal(column.default, column.type)
        compiled = literal.compile(
            dialect=self.connection.dialect, compile_kwargs={"literal_binds": True}
        )
        return sa.text(str(compiled))


class Operation:
    """One step of a migration."""

    def state_forwards(self, state: ProjectState) -> None:
        """Apply the operation to ``state``."""
        raise NotImplementedError

    def database_forwards(self, context: RunContext) -> None:
        """Apply the operation to the database."""
        raise NotImplementedError

    def deconstruct(self) -> tuple[list[t.Any], dict[str, t.Any]]:
        """Return the arguments that rebuild this operation (for the writer)."""
        raise NotImplementedError

    def describe(self) -> str:
        """Return a short human description."""
        return type(self).__name__

    def __repr__(self) -> str:
        args, kwargs = self.deconstruct()
        parts = [repr(arg) for arg in args]
        parts += [f"{key}={value!r}" for key, value in kwargs.items()]
        return f"{type(self).__name__}({', '.join(parts)})"


def _batch(
    context: RunContext, table: str, recreate: t.Literal["always", "auto"] = "auto"
) -> t.Any:
    # A table SQLite rebuilds keeps (or gains) AUTOINCREMENT on its key.
    options = table_options(context.state.table(table).columns.values())
    return context.op.batch_alter_table(table, recreate=recreate, table_kwargs=options)


class CreateTable(Operation):
    """Create a table with its columns and indexes.

    :param name: the table name.
    :param columns: the :class:`Column` list, in order.
    :param indexes: :class:`Index` objects created with the table.
    """

    def __init__(
        self,
        name: str,
        columns: cabc.Sequence[Column],
        indexes: cabc.Sequence[Index] = (),
    ) -> None:
        self.name = name
        self.columns = list(columns)
        self.indexes = list(indexes)

    def state_forwards(self, state: ProjectState) -> None:
        """Add the table to ``state``."""
        if self.name in state.tables:
            raise ValueError(f"table {self.name!r} already exists")
        state.tables[self.name] = TableState(
            self.name,
            {col.name: col for col in self.columns},
            {index.name: index for index in self.indexes},
        )

    def database_forwards(self, context: RunContext) -> None:
        """Create the table, its unique constraints and its indexes."""
        items: list[t.Any] = [col.to_sa(self.name) for col in self.columns]
        items += [
            sa.UniqueConstraint(col.name, name=col.unique_name(self.name))
            for col in self.columns
            if col.unique
        ]
        context.op.create_table(self.name, *items, **table_options(self.columns))
        for index in self.indexes:
            context.op.create_index(
                index.name, self.name, list(index.columns), unique=index.unique
            )

    def deconstruct(self) -> tuple[list[t.Any], dict[str, t.Any]]:
        """Return ``(name, columns)`` and the indexes."""
        kwargs: dict[str, t.Any] = {"indexes": self.indexes} if self.indexes else {}
        return [self.name, self.columns], kwargs

    def describe(self) -> str:
        """Describe the operation."""
        return f"Create table {self.name}"


class DropTable(Operation):
    """Drop a table.

    :param name: the table name.
    """

    def __init__(self, name: str) -> None:
        self.name = name

    def state_forwards(self, state: ProjectState) -> None:
        """Remove the table from ``state``."""
        state.table(self.name)
        del state.tables[self.name]

    def database_forwards(self, context: RunContext) -> None:
        """Drop the table."""
        context.op.drop_table(self.name)

    def deconstruct(self) -> tuple[list[t.Any], dict[str, t.Any]]:
        """Return ``(name,)``."""
        return [self.name], {}

    def describe(self) -> str:
        """Describe the operation."""
        return f"Drop table {self.name}"


class AddColumn(Operation):
    """Add a column; ``column.default`` fills the existing rows.

    :param table: the table name.
    :param column: the new :class:`Column`.
    """

    def __init__(self, table: str, column: Column) -> None:
        self.table = table
        self.column = column

    def state_forwards(self, state: ProjectState) -> None:
        """Add the column to the table's state."""
        table = state.table(self.table)
        if self.column.name in table.columns:
            raise ValueError(f"column {self.table}.{self.column.name} already exists")
        table.columns[self.column.name] = self.column

    def database_forwards(self, context: RunContext) -> None:
        """Add the column (then its unique constraint)."""
        column = self.column
        sa_column = column.to_sa(self.table, context.server_default(column))
        with _batch(context, self.table) as batch:
            batch.add_column(sa_column)
            if column.unique:
                batch.create_unique_constraint(
                    column.unique_name(self.table), [column.name]
                )

    def deconstruct(self) -> tuple[list[t.Any], dict[str, t.Any]]:
        """Return ``(table, column)``."""
        return [self.table, self.column], {}

    def describe(self) -> str:
        """Describe the operation."""
        return f"Add column {self.column.name} to {self.table}"


class RemoveColumn(Operation):
    """Remove a column (and the indexes that use it).

    :param table: the table name.
    :param name: the column name.
    """

    def __init__(self, table: str, name: str) -> None:
        self.table = table
        self.name = name

    def state_forwards(self, state: ProjectState) -> None:
        """Remove the column and its indexes from the table's state."""
        table = state.table(self.table)
        if self.name not in table.columns:
            raise KeyError(f"column {self.table}.{self.name} does not exist")
        del table.columns[self.name]
        for key in [k for k, idx in table.indexes.items() if self.name in idx.columns]:
            del table.indexes[key]

    def database_forwards(self, context: RunContext) -> None:
        """Drop the indexes using the column, then the column."""
        table = context.state.table(self.table)
        column = table.columns[self.name]
        for index in table.indexes.values():
            if self.name in index.columns:
                context.op.drop_index(index.name, table_name=self.table)
        with _batch(context, self.table) as batch:
            if column.unique and context.vendor != "sqlite":
                batch.drop_constraint(column.unique_name(self.table), type_="unique")
            batch.drop_column(self.name)

    def deconstruct(self) -> tuple[list[t.Any], dict[str, t.Any]]:
        """Return ``(table, name)``."""
        return [self.table, self.name], {}

    def describe(self) -> str:
        """Describe the operation."""
        return f"Remove column {self.name} from {self.table}"


class AlterColumn(Operation):
    """Change a column's type, nullability, uniqueness or foreign key.

    :param table: the table name.
    :param name: the column name.
    :param column: the column as it must be afterwards (same name).
    """

    def __init__(self, table: str, name: str, column: Column) -> None:
        self.table = table
        self.name = name
        self.column = column

    def state_forwards(self, state: ProjectState) -> None:
        """Replace the column in the table's state."""
        table = state.table(self.table)
        if self.name not in table.columns:
            raise KeyError(f"column {self.table}.{self.name} does not exist")
        table.columns[self.name] = self.column

    def database_forwards(self, context: RunContext) -> None:
        """Alter the column; the table is rebuilt on SQLite when needed."""
        old = context.state.table(self.table).columns[self.name]
        new = self.column
        fk_changed = (old.foreign_key, old.on_delete) != (
            new.foreign_key,
            new.on_delete,
        )
        sqlite = context.vendor == "sqlite"
        recreate: t.Literal["always", "auto"] = "always" if sqlite else "auto"
        with _batch(context, self.table, recreate) as batch:
            if old.unique and not new.unique:
                batch.drop_constraint(old.unique_name(self.table), type_="unique")
            if old.foreign_key and fk_changed:
                batch.drop_constraint(old.fk_name(self.table), type_="foreignkey")
            changes: dict[str, t.Any] = {}
            default = context.server_default(new)
            if default is not None and old.nullable and not new.nullable:
                # Existing NULLs get the default before NOT NULL applies.
                changes["server_default"] = default
                target = sa.table(self.table, sa.column(self.name, old.type))
                context.connection.execute(
                    sa.update(target)
                    .where(target.c[self.name].is_(None))
                    .values({self.name: sa.literal(new.default, old.type)})
                )
            batch.alter_column(
                self.name,
                type_=new.type,
                nullable=new.nullable,
                existing_type=old.type,
                existing_nullable=old.nullable,
                **changes,
            )
            if new.unique and not old.unique:
                batch.create_unique_constraint(new.unique_name(self.table), [self.name])
            if new.foreign_key and fk_changed:
                referent, _, target_col = new.foreign_key.rpartition(".")
                batch.create_foreign_key(
                    new.fk_name(self.table),
                    referent,
                    [self.name],
                    [target_col],
                    ondelete=new.on_delete,
                    deferrable=True,
                    initially="DEFERRED",
                )

    def deconstruct(self) -> tuple[list[t.Any], dict[str, t.Any]]:
        """Return ``(table, name, column)``."""
        return [self.table, self.name, self.column], {}

    def describe(self) -> str:
        """Describe the operation."""
        return f"Alter column {self.name} of {self.table}"


class RenameColumn(Operation):
    """Rename a column, keeping its data.

    :param table: the table name.
    :param old_name: the current column name.
    :param new_name: the new column name.
    """

    def __init__(self, table: str, old_name: str, new_name: str) -> None:
        self.table = table
        self.old_name = old_name
        self.new_name = new_name

    def state_forwards(self, state: ProjectState) -> None:
        """Rename the column (in place, keeping the order) and its indexes."""
        table = state.table(self.table)
        if self.old_name not in table.columns:
            raise KeyError(f"column {self.table}.{self.old_name} does not exist")
        table.columns = {
            (self.new_name if name == self.old_name else name): (
                col.with_changes(name=self.new_name) if name == self.old_name else col
            )
            for name, col in table.columns.items()
        }
        for key, index in list(table.indexes.items()):
            if self.old_name in index.columns:
                columns = tuple(
                    self.new_name if c == self.old_name else c for c in index.columns
                )
                table.indexes[key] = Index(index.name, columns, index.unique)

    def database_forwards(self, context: RunContext) -> None:
        """Rename the column."""
        with _batch(context, self.table) as batch:
            batch.alter_column(self.old_name, new_column_name=self.new_name)

    def deconstruct(self) -> tuple[list[t.Any], dict[str, t.Any]]:
        """Return ``(table, old_name, new_name)``."""
        return [self.table, self.old_name, self.new_name], {}

    def describe(self) -> str:
        """Describe the operation."""
        return f"Rename column {self.table}.{self.old_name} to {self.new_name}"


class AddIndex(Operation):
    """Create an index (``unique=True`` for a unique one).

    :param table: the table name.
    :param index: the :class:`Index`.
    """

    def __init__(self, table: str, index: Index) -> None:
        self.table = table
        self.index = index

    def state_forwards(self, state: ProjectState) -> None:
        """Add the index to the table's state."""
        state.table(self.table).indexes[self.index.name] = self.index

    def database_forwards(self, context: RunContext) -> None:
        """Create the index."""
        context.op.create_index(
            self.index.name,
            self.table,
            list(self.index.columns),
            unique=self.index.unique,
        )

    def deconstruct(self) -> tuple[list[t.Any], dict[str, t.Any]]:
        """Return ``(table, index)``."""
        return [self.table, self.index], {}

    def describe(self) -> str:
        """Describe the operation."""
        return f"Add index {self.index.name} on {self.table}"


class RemoveIndex(Operation):
    """Drop an index.

    :param table: the table name.
    :param name: the index name.
    """

    def __init__(self, table: str, name: str) -> None:
        self.table = table
        self.name = name

    def state_forwards(self, state: ProjectState) -> None:
        """Remove the index from the table's state."""
        table = state.table(self.table)
        if self.name not in table.indexes:
            raise KeyError(f"index {self.name!r} on {self.table} does not exist")
        del table.indexes[self.name]

    def database_forwards(self, context: RunContext) -> None:
        """Drop the index."""
        context.op.drop_index(self.name, table_name=self.table)

    def deconstruct(self) -> tuple[list[t.Any], dict[str, t.Any]]:
        """Return ``(table, name)``."""
        return [self.table, self.name], {}

    def describe(self) -> str:
        """Describe the operation."""
        return f"Remove index {self.name} from {self.table}"


class RunPython(Operation):
    """Run a Python function: a data migration.

    The function is called as ``function(context)`` with a
    :class:`RunContext`: ``context.connection`` (inside the migration's
    transaction) and ``context.table(name)`` (the table as it is at that
    point of the history, for SQLAlchemy Core queries).

    :param function: the function to run.
    """

    def __init__(self, function: cabc.Callable[[RunContext], t.Any]) -> None:
        self.function = function

    def state_forwards(self, state: ProjectState) -> None:
        """Leave the schema unchanged."""

    def database_forwards(self, context: RunContext) -> None:
        """Call the function."""
        self.function(context)

    def deconstruct(self) -> tuple[list[t.Any], dict[str, t.Any]]:
        """Return ``(function,)``."""
        return [self.function], {}

    def describe(self) -> str:
        """Describe the operation."""
        name = getattr(self.function, "__qualname__", repr(self.function))
        return f"Run Python {name}"
