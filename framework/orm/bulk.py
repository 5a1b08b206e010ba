"""Set-based writes: ``bulk_create``, ``QuerySet.update`` and raw deletes."""

from __future__ import annotations

import collections.abc as cabc
import typing as t

import sqlalchemy as sa

from . import fields as _fields
from .db import compile_sql
from .db import compile_with_params
from .exceptions import ValidationError

if t.TYPE_CHECKING:
    from .db import DatabaseWrapper
    from .models import Model
    from .query import QuerySet

__all__ = [
    "bulk_insert",
    "delete_pks",
    "insert_ignoring_conflicts",
    "lock_existing",
    "raw_delete",
    "update_rows",
]

# SQLite's default limit of bound parameters in one statement (recent
# versions allow more; this keeps every build happy).
_MAX_PARAMS: t.Final = 999


def bulk_insert(
    model: type[Model],
    objs: list[t.Any],
    conn: DatabaseWrapper,
    batch_size: int | None,
) -> None:
    """Insert ``objs`` with multi-row INSERTs, setting primary keys."""
    from .transaction import atomic

    _prepare(model, objs)
    pk_attname = model._meta.pk.attname
    with_pk = [obj for obj in objs if obj.__dict__[pk_attname] is not None]
    without_pk = [obj for obj in objs if obj.__dict__[pk_attname] is None]
    with atomic(using=conn.alias):
        for group, include_pk in ((with_pk, True), (without_pk, False)):
            if group:
                _insert_group(model, group, conn, include_pk, batch_size)
    for obj in objs:
        obj._state.adding = False
        obj._state.db = conn.alias


def _prepare(model: type[Model], objs: list[t.Any]) -> None:
    """Run pre_save and check every value of ``objs``, as ``save()`` would."""
    from ._saving import _saver

    saver = _saver(model._meta)
    errors: dict[str, list[str]] = {}
    for obj in objs:
        if not isinstance(obj, model):
            raise TypeError(f"bulk_create() of {model.__name__} got {obj!r}.")
        obj._prepare_related()
        for field in saver.pre_save_fields:
            field.pre_save(obj, True)
        try:
            saver.clean(obj, saver.fields)
        except ValidationError as exc:
            for key, messages in exc.message_dict.items():
                errors.setdefault(key, []).extend(messages)
    if errors:
        raise ValidationError(errors)


def insert_ignoring_conflicts(
    model: type[Model], objs: list[t.Any], conn: DatabaseWrapper, returning: t.Any
) -> list[t.Any]:
    """Insert ``objs``, skipping the rows a unique constraint refuses.

    ``INSERT ... ON CONFLICT DO NOTHING RETURNING``: a row that another
    transaction inserted first is left out instead of failing the whole
    statement, and only the rows really inserted come back.

    :param returning: the field whose values are returned.
    :returns: ``returning``'s value of each row really inserted.
    """
    from ._saving import _params
    from ._saving import _saver

    _prepare(model, objs)
    saver = _saver(model._meta)
    include_pk = objs[0].__dict__[model._meta.pk.attname] is not None
    sql, order, getter, convs, _returning = saver._insert_sql(conn, include_pk)
    head, _, group = sql.partition(" RETURNING ")[0].partition(" VALUES ")
    column = conn.dialect.identifier_preparer.quote(returning.column)
    size = max(1, _MAX_PARAMS // max(1, len(order)))
    converter = returning.python_converter(conn.vendor)
    found: list[t.Any] = []
    for start in range(0, len(objs), size):
        batch = objs[start : start + size]
        params: list[t.Any] = []
        for obj in batch:
            params.extend(_params(obj.__dict__, order, getter, convs))
        statement = (
            f"{head} VALUES {', '.join([group] * len(batch))}"
            f" ON CONFLICT DO NOTHING RETURNING {column}"
        )
        rows = conn.execute(statement, params).fetchall()
        found.extend(row[0] if converter is None else converter(row[0]) for row in rows)
    return found


def _insert_group(
    model: type[Model],
    objs: list[t.Any],
    conn: DatabaseWrapper,
    include_pk: bool,
    batch_size: int | None,
) -> None:
    from ._saving import _params
    from ._saving import _saver

    saver = _saver(model._meta)
    sql, order, getter, convs, _returning = saver._insert_sql(conn, include_pk)
    width = max(1, len(order))
    size = max(1, _MAX_PARAMS // width)
    if batch_size:
        size = min(size, batch_size)
    sql = sql.partition(" RETURNING ")[0]
    head, _, group = sql.partition(" VALUES ")
    if not order:
        group = ""
    pk_column = conn.dialect.identifier_preparer.quote(model._meta.pk.column)
    for start in range(0, len(objs), size):
        batch = objs[start : start + size]
        params: list[t.Any] = []
        for obj in batch:
            params.extend(_params(obj.__dict__, order, getter, convs))
        if order:
            statement = f"{head} VALUES {', '.join([group] * len(batch))}"
        else:
            statement = head
        if include_pk:
            conn.execute(statement, params)
            continue
        if not order:
            for obj in batch:
                cursor = conn.execute(f"{head} RETURNING {pk_column}", ())
                obj.__dict__[model._meta.pk.attname] = cursor.fetchone()[0]
            continue
        rows = conn.execute(f"{statement} RETURNING {pk_column}", params).fetchall()
        for obj, row in zip(batch, rows, strict=True):
            obj.__dict__[model._meta.pk.attname] = row[0]


def update_rows(
    qs: QuerySet[t.Any], values: cabc.Mapping[str, t.Any], want_pks: bool
) -> tuple[int, frozenset[t.Any] | None, dict[str, t.Any]]:
    """Run ``UPDATE`` for a queryset; collect the primary keys if asked.

    Values may be expressions (``F("stock") - 1``). The statement is compiled
    once per shape, like a select's.

    :returns: ``(rowcount, pk_set or None, values by field name)``.
    """
    from ._compiler import Resolvable
    from ._compiler import _Context
    from ._compiler import _pk_of
    from ._compiler import check_values
    from .db import connections

    model = qs.model
    meta = model._meta
    fields = {}
    for name in values:
        field = meta.get_field(name)
        if not field.concrete or field.many_to_many or not hasattr(field, "column"):
            raise ValueError(
                f"update() can only set concrete fields; {name!r} is not one."
            )
        if field.primary_key:
            raise ValueError(f"update() cannot change the primary key {name!r}.")
        fields[name] = field
    # A Value() of no stated type is set like the plain value it holds.
    assigned: dict[str, t.Any] = {
        name: t.cast(t.Any, value).value
        if isinstance(value, Resolvable) and value.plain
        else value
        for name, value in values.items()
    }
    plain = {k: v for k, v in assigned.items() if not isinstance(v, Resolvable)}
    check_values(model, plain)
    conn = connections[qs.db]
    assignments: list[tuple[t.Any, t.Any]] = []
    for name, value in assigned.items():
        field = fields[name]
        if isinstance(value, Resolvable):
            node = value.resolve(_Context(model, {}, "update"))
            _check_assignable(field, node, value)
            assignments.append((field, node))
            continue
        target = field.target_field if field.is_relation else field
        raw = _pk_of(value, target)
        prepped = None if raw is None else target.get_db_prep_value(raw, conn.vendor)
        assignments.append((field, _Plain(prepped)))
    if qs._empty:
        return 0, (frozenset() if want_pks else None), dict(values)
    sql, params = qs._sql(conn, "update", _UpdateStatement(assignments, want_pks))
    cursor = conn.execute(sql, params)
    if want_pks:
        converter = meta.pk.python_converter(conn.vendor)
        pks = [row[0] for row in cursor.fetchall()]
        if converter is not None:
            pks = [converter(pk) for pk in pks]
        return len(pks), frozenset(pks), dict(values)
    return int(cursor.rowcount), None, dict(values)


class _Plain:
    """A plain value assigned by update(): a parameter of its own."""

    __slots__ = ("value",)

    def __init__(self, value: t.Any) -> None:
        self.value = value


def _check_assignable(field: t.Any, node: t.Any, expr: t.Any) -> None:
    from .exceptions import FieldError

    output = node.output
    if output is None:
        return
    target = field.target_field if field.is_relation else field
    source = output.target_field if getattr(output, "is_relation", False) else output
    numeric = (_fields.IntegerField, _fields.FloatField, _fields.DecimalField)
    if isinstance(source, numeric) != isinstance(target, numeric):
        raise FieldError(
            f"update() cannot set {type(target).__name__} {field.name!r} to {expr!r}"
            f" ({type(source).__name__})."
        )


class _UpdateStatement:
    """The ``extra`` of QuerySet._sql for update(): key, statement, params."""

    __slots__ = ("assignments", "key", "want_pks")

    def __init__(self, assignments: list[tuple[t.Any, t.Any]], want_pks: bool) -> None:
        self.assignments = assignments
        self.want_pks = want_pks
        self.key = (
            "update",
            want_pks,
            tuple(
                (field.column, None if isinstance(item, _Plain) else item.shape())
                for field, item in assignments
            ),
        )

    def build(self, qs: QuerySet[t.Any], compiler: t.Any) -> t.Any:
        where = qs._where_expr(compiler)
        table = compiler.table
        columns = {}
        for index, (field, item) in enumerate(self.assignments):
            if isinstance(item, _Plain):
                columns[field.column] = sa.bindparam(
                    f"u{index}", item.value, type_=table.c[field.column].type
                )
            else:
                columns[field.column] = item.compile(compiler)
        stmt = qs._restrict(table.update().values(columns), compiler, where)
        if self.want_pks:
            stmt = stmt.returning(table.c[qs.model._meta.pk.column])
        return stmt

    def walk(self, walker: t.Any) -> None:
        for index, (_field, item) in enumerate(self.assignments):
            if isinstance(item, _Plain):
                walker.params[f"u{index}"] = item.value
            else:
                item.walk(walker)


def raw_delete(qs: QuerySet[t.Any]) -> int:
    """Delete the rows of ``qs`` with one statement, no signals, no cascade."""
    from .db import connections

    if qs._empty:
        return 0
    conn = connections[qs.db]
    # PERF: compiled once per query shape, like selects (cascades run this
    # for every dependent model on every delete).
    sql, params = qs._sql(conn, "delete")
    return int(conn.execute(sql, params).rowcount)


def lock_existing(
    model: type[Model], alias: str, pks: list[t.Any], no_key: bool = False
) -> set[t.Any]:
    """Return which of ``pks`` still have a row, locking those rows.

    ``no_key``: the weaker lock of :meth:`QuerySet.select_for_update`, for a
    caller that neither deletes the rows nor changes their keys.

    Inside ``atomic()``: on PostgreSQL the rows stay locked (``FOR UPDATE``,
    in key order so that two lockers never wait for each other) until the
    transaction ends, and a row another transaction deletes meanwhile is not
    returned once that transaction commits; on SQLite the write transaction
    (``BEGIN IMMEDIATE``) already keeps other writers out.
    """
    from .query import QuerySet

    found: set[t.Any] = set()
    for start in range(0, len(pks), _MAX_PARAMS):
        batch = pks[start : start + _MAX_PARAMS]
        qs = QuerySet(model, alias).filter(pk__in=batch).order_by("pk")
        locked = qs.select_for_update(no_key=no_key)
        found.update(locked.values_list("pk", flat=True))
    return found


def delete_pks(
    model: type[Model],
    conn: DatabaseWrapper,
    pks: list[t.Any],
    returning: bool = False,
) -> t.Any:
    """Delete rows by primary key in batches.

    :param returning: return the keys of the rows really deleted
        (``DELETE ... RETURNING``) instead of their number.
    """
    if returning:
        return _delete_returning(model, conn, pks)
    meta = model._meta
    if len(pks) == 1:
        key = ("delete", conn.vendor)
        sql = meta._sql_cache.get(key)
        if sql is None:
            table = meta.table
            stmt = table.delete().where(table.c[meta.pk.column] == sa.bindparam("pk"))
            sql = compile_sql(stmt, conn.dialect)[0]
            meta._sql_cache[key] = sql
        convert = meta.pk.db_converter(conn.vendor)
        pk = pks[0] if convert is None else convert(pks[0])
        return int(conn.execute(sql, (pk,)).rowcount)
    total = 0
    table = meta.table
    convert = meta.pk.db_converter(conn.vendor)
    for start in range(0, len(pks), _MAX_PARAMS):
        batch = pks[start : start + _MAX_PARAMS]
        if convert is not None:
            batch = [convert(pk) for pk in batch]
        stmt = table.delete().where(table.c[meta.pk.column].in_(batch))
        sql, params = compile_with_params(stmt, conn.dialect)
        total += int(conn.execute(sql, params).rowcount)
    return total


def _delete_returning(
    model: type[Model], conn: DatabaseWrapper, pks: list[t.Any]
) -> list[t.Any]:
    meta = model._meta
    table = meta.table
    column = table.c[meta.pk.column]
    convert = meta.pk.db_converter(conn.vendor)
    back = meta.pk.python_converter(conn.vendor)
    deleted: list[t.Any] = []
    for start in range(0, len(pks), _MAX_PARAMS):
        batch = pks[start : start + _MAX_PARAMS]
        if convert is not None:
            batch = [convert(pk) for pk in batch]
        stmt = table.delete().where(column.in_(batch)).returning(column)
        sql, params = compile_with_params(stmt, conn.dialect)
        rows = conn.execute(sql, params).fetchall()
        deleted.extend(row[0] if back is None else back(row[0]) for row in rows)
    return deleted
