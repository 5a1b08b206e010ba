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


class _FieldsItem:
    """A table-level declaration over named fields (constraint or index)."""

    _suffix: t.ClassVar[str]

    def __init__(self, *, fields: cabc.Sequence[str], name: str | None = None) -> None:
        if not fields:
            raise FieldError(f"{type(self).__name__} needs at least one field name.")
        self.fields = tuple(fields)
        self.name = name

    def __repr__(self) -> str:
        return f"<{type(self).__name__} fields={self.fields!r} name={self.name!r}>"

    def _columns_and_name(self, options: Options) -> tuple[list[str], str]:
        columns = _columns(options, self.fields, type(self).__name__)
        name = self.name or f"{options.db_table}_{'_'.join(columns)}_{self._suffix}"
        return columns, name[:63]


class UniqueConstraint(_FieldsItem):
    """A unique constraint over several fields.

    :param fields: the field names.
    :param name: the constraint name (default derived from table and columns).
    """

    _suffix = "uniq"

    def to_sa(self, options: Options) -> sa.UniqueConstraint:
        """Return the SQLAlchemy constraint for the model's table."""
        columns, name = self._columns_and_name(options)
        return sa.UniqueConstraint(*columns, name=name)


class Index(_FieldsItem):
    """An index over one or more fields.

    :param fields: the field names.
    :param name: the index name (default derived from table and columns).
    """

    _suffix = "idx"

    def to_sa(self, options: Options) -> sa.Index:
        """Return the SQLAlchemy index for the model's table."""
        columns, name = self._columns_and_name(options)
        return sa.Index(name, *columns)
