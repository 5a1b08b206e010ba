"""Table-level declarations for ``Meta.constraints`` and ``Meta.indexes``."""

from __future__ import annotations

import collections.abc as cabc
import typing as t

import sqlalchemy as sa

from .exceptions import FieldError

if t.TYPE_CHECKING:
    from .models import Options

__all__ = ["Index", "UniqueConstraint"]


def _columns(options: Options, fields: cabc.Sequence[str], owner: str) -> list[str]:
    columns = []
    for name in fields:
        field = options.field_map.get(name.lstrip("-"))
        if field is None or not field.concrete:
            raise FieldError(
                f"{owner} of {options.object_name} names {name!r}, which is not a"
                f" concrete field. Choices are:"
                f" {', '.join(f.name for f in options.fields)}."
            )
        columns.append(field.column)
    return columns


class UniqueConstraint:
    """A unique constraint over several fields.

    :param fields: the field names.
    :param name: the constraint name (default derived from table and columns).
    """

    def __init__(self, *, fields: cabc.Sequence[str], name: str | None = None) -> None:
        if not fields:
            raise FieldError("UniqueConstraint needs at least one field name.")
        self.fields = tuple(fields)
        self.name = name

    def __repr__(self) -> str:
        return f"<UniqueConstraint fields={self.fields!r} name={self.name!r}>"

    def to_sa(self, options: Options) -> sa.UniqueConstraint:
        """Return the SQLAlchemy constraint for the model's table."""
        columns = _columns(options, self.fields, "UniqueConstraint")
        name = self.name or f"{options.db_table}_{'_'.join(columns)}_uniq"
        return sa.UniqueConstraint(*columns, name=name[:63])


class Index:
    """An index over one or more fields.

    :param fields: the field names.
    :param name: the index name (default derived from table and columns).
    """

    def __init__(self, *, fields: cabc.Sequence[str], name: str | None = None) -> None:
        if not fields:
            raise FieldError("Index needs at least one field name.")
        self.fields = tuple(fields)
        self.name = name

    def __repr__(self) -> str:
        return f"<Index fields={self.fields!r} name={self.name!r}>"

    def to_sa(self, options: Options) -> sa.Index:
        """Return the SQLAlchemy index for the model's table."""
        columns = _columns(options, self.fields, "Index")
        name = self.name or f"{options.db_table}_{'_'.join(columns)}_idx"
        return sa.Index(name[:63], *columns)
