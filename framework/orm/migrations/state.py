"""The schema a migration history builds: tables, columns and indexes.

Migration files describe columns with :class:`Column` and indexes with
:class:`Index`. :class:`ProjectState` is what applying the operations of a
history in order produces (without touching a database); the autodetector
compares it with :func:`state_from_models`, the schema the models ask for.
Column types are SQLAlchemy type objects, compared by their rendered source
(:func:`render_type`), variants included.
"""

from __future__ import annotations

import collections.abc as cabc
import copy
import dataclasses
import re
import typing as t

import sqlalchemy as sa

from ..fields import NOT_PROVIDED

__all__ = [
    "NOT_PROVIDED",
    "Column",
    "Index",
    "ProjectState",
    "TableState",
    "render_type",
    "state_from_tables",
    "table_options",
]


_NAME_RE = re.compile(r"\b([A-Za-z_]\w*)\(")


def _plain_type_repr(type_: t.Any) -> str:
    text = repr(type_)
    # Drop arguments equal to the defaults that repr() keeps for some types.
    return text.replace("(astext_type=Text())", "()")


def render_type(type_: t.Any) -> str:
    """Return Python source that rebuilds the SQLAlchemy type ``type_``.

    Names in the source are bare class names (``String(length=50)``); the
    writer imports them. Dialect variants are kept as ``.with_variant()``.
    """
    text = _plain_type_repr(type_)
    variants = getattr(type_, "_variant_mapping", None) or {}
    for dialect in sorted(variants):
        text += f'.with_variant({_plain_type_repr(variants[dialect])}, "{dialect}")'
    return text


def type_names(type_: t.Any) -> dict[str, str]:
    """Return the class names used by :func:`render_type` -> their module."""
    found: dict[str, str] = {}
    objects = [type_, *(getattr(type_, "_variant_mapping", None) or {}).values()]
    modules = {type(obj).__name__: type(obj).__module__ for obj in objects}
    for name in _NAME_RE.findall(render_type(type_)):
        if name == "with_variant":
            continue
        if hasattr(sa, name):
            found[name] = "sqlalchemy"
        else:
            module = modules.get(name, "sqlalchemy")
            if module.startswith("sqlalchemy.dialects."):
                module = ".".join(module.split(".")[:3])
            found[name] = module
    return found


@dataclasses.dataclass(eq=False)
class Column:
    """A column of a table, as migration files describe it.

    :param name: the column name.
    :param type: a SQLAlchemy type object (``String(length=50)``).
    :param nullable: whether NULL is allowed.
    :param primary_key: whether the column is (part of) the primary key.
    :param unique: a single-column unique constraint, named
        ``<table>_<column>_key``.
    :param autoincrement: whether the database assigns the value.
    :param foreign_key: ``"table.column"`` the column refers to.
    :param on_delete: the foreign key's ``ON DELETE`` action, if any.
    :param default: a literal that fills existing rows when the column is
        added (a server default); not part of the schema comparison.
    """

    name: str
    type: t.Any
    nullable: bool = True
    primary_key: bool = False
    unique: bool = False
    autoincrement: bool = False
    foreign_key: str | None = None
    on_delete: str | None = None
    default: t.Any = NOT_PROVIDED

    def signature(self) -> tuple[t.Any, ...]:
        """Return what makes two columns the same schema."""
        return (
            self.name,
            render_type(self.type),
            self.nullable and not self.primary_key,
            self.primary_key,
            self.unique,
            self.autoincrement,
            self.foreign_key,
            (self.on_delete or "").upper() or None,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Column):
            return NotImplemented
        return self.signature() == other.signature()

    def __hash__(self) -> int:
        return hash(self.signature())

    def with_changes(self, **changes: t.Any) -> Column:
        """Return a copy with some attributes changed."""
        return dataclasses.replace(self, **changes)

    def to_sa(self, table: str, server_default: t.Any = None) -> sa.Column[t.Any]:
        """Return a new SQLAlchemy column for ``table`` (constraints named).

        The unique constraint is not part of it: operations add it by
        :meth:`unique_name`.
        """
        args: list[t.Any] = []
        if self.foreign_key:
            args.append(
                # Deferred, like the ORM's own: rows may refer to rows that
                # the same transaction inserts later (fixtures, cycles).
                sa.ForeignKey(
                    self.foreign_key,
                    name=self.fk_name(table),
                    ondelete=self.on_delete,
                    deferrable=True,
                    initially="DEFERRED",
                )
            )
        return sa.Column(
            self.name,
            self.type,
            *args,
            nullable=self.nullable and not self.primary_key,
            primary_key=self.primary_key,
            autoincrement=self.autoincrement,
            server_default=server_default,
        )

    def unique_name(self, table: str) -> str:
        """Return the name of this column's unique constraint in ``table``."""
        return _limit(f"{table}_{self.name}_key")

    def fk_name(self, table: str) -> str:
        """Return the name of this column's foreign key constraint in ``table``."""
        return _limit(f"{table}_{self.name}_fkey")


def table_options(columns: cabc.Iterable[Column]) -> dict[str, t.Any]:
    """Return the ``Table`` options a table with ``columns`` is created with.

    An integer primary key the database assigns gets ``AUTOINCREMENT`` on
    SQLite (``sqlite_autoincrement``; other dialects ignore it): without it
    SQLite hands the largest deleted key to the next row, as Django avoids.
    """
    keys = [col for col in columns if col.primary_key]
    if (
        len(keys) == 1
        and keys[0].autoincrement
        and isinstance(keys[0].type, sa.Integer)
    ):
        return {"sqlite_autoincrement": True}
    return {}


def _limit(name: str) -> str:
    if len(name) <= 60:
        return name
    import hashlib

    return f"{name[:50]}_{hashlib.sha1(name.encode()).hexdigest()[:8]}"


@dataclasses.dataclass(frozen=True)
class Index:
    """An index (``unique=True``: a unique index, also for unique_together).

    :param name: the index name.
    :param columns: the indexed column names, in order.
    :param unique: whether the index enforces uniqueness.
    """

    name: str
    columns: tuple[str, ...]
    unique: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "columns", tuple(self.columns))


@dataclasses.dataclass
class TableState:
    """A table: ordered columns and indexes by name."""

    name: str
    columns: dict[str, Column] = dataclasses.field(default_factory=dict)
    indexes: dict[str, Index] = dataclasses.field(default_factory=dict)

    def to_sa(self, metadata: sa.MetaData | None = None) -> sa.Table:
        """Return a SQLAlchemy Table of this state, for data migrations."""
        metadata = metadata if metadata is not None else sa.MetaData()
        columns = [
            sa.Column(
                col.name,
                col.type,
                primary_key=col.primary_key,
                nullable=col.nullable,
                autoincrement=col.autoincrement,
            )
            for col in self.columns.values()
        ]
        return sa.Table(
            self.name, metadata, *columns, **table_options(self.columns.values())
        )


class ProjectState:
    """Tables by name, as a migration history leaves them."""

    def __init__(self, tables: cabc.Mapping[str, TableState] | None = None) -> None:
        self.tables: dict[str, TableState] = dict(tables or {})
        """Table name -> :class:`TableState`."""

    def clone(self) -> ProjectState:
        """Return an independent copy."""
        return ProjectState(copy.deepcopy(self.tables))

    def table(self, name: str) -> TableState:
        """Return the table ``name``.

        :raises KeyError: no such table in this state (message names it).
        """
        try:
            return self.tables[name]
        except KeyError:
            raise KeyError(
                f"table {name!r} does not exist at this point of the migration"
                f" history (known: {', '.join(sorted(self.tables)) or 'none'})"
            ) from None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ProjectState):
            return NotImplemented
        return self.tables == other.tables


def _index_name(table: str, index: sa.Index) -> str:
    name = index.name
    if isinstance(name, str) and name:
        return name
    columns = "_".join(col.name for col in index.columns)
    return _limit(f"ix_{table}_{columns}")


def state_from_tables(tables: cabc.Iterable[sa.Table]) -> ProjectState:
    """Describe SQLAlchemy tables (the models' tables) as a state.

    Column-level unique flags stay on the column; multi-column unique
    constraints and all indexes become :class:`Index` entries. Check
    constraints are not tracked.
    """
    state = ProjectState()
    for table in tables:
        table_state = TableState(table.name)
        for sa_col in table.columns:
            foreign_key = None
            on_delete = None
            for fk in sa_col.foreign_keys:
                foreign_key = fk.target_fullname
                on_delete = fk.ondelete
            table_state.columns[sa_col.name] = Column(
                sa_col.name,
                sa_col.type,
                nullable=bool(sa_col.nullable) and not sa_col.primary_key,
                primary_key=sa_col.primary_key,
                unique=bool(sa_col.unique),
                autoincrement=sa_col.autoincrement is True,
                foreign_key=foreign_key,
                on_delete=on_delete.upper() if on_delete else None,
            )
        for constraint in table.constraints:
            if not isinstance(constraint, sa.UniqueConstraint):
                continue
            cols = tuple(col.name for col in constraint.columns)
            if len(cols) == 1 and table_state.columns[cols[0]].unique:
                continue
            name = constraint.name if isinstance(constraint.name, str) else None
            name = name or _limit(f"{table.name}_{'_'.join(cols)}_uniq")
            table_state.indexes[name] = Index(name, cols, unique=True)
        for index in sorted(
            table.indexes, key=lambda idx: _index_name(table.name, idx)
        ):
            name = _index_name(table.name, index)
            table_state.indexes[name] = Index(
                name, tuple(col.name for col in index.columns), bool(index.unique)
            )
        state.tables[table.name] = table_state
    return state
