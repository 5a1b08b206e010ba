"""Loading related rows with the main ones: ``select_related`` and ``prefetch_related``.

``select_related("author", "author__country")`` follows forward foreign keys
and one-to-ones with LEFT OUTER JOINs in the main query: each row carries its
related rows, and the instances built from them sit in the owners' related
caches. ``prefetch_related("tags", "comments__author")`` runs one more query
per relation once the main rows are in (reverse foreign keys, many-to-many
either way, forward keys too) and hands each owner its related instances,
which its relation manager's ``all()`` then returns without a query. Every
instance built either way sends ``pre_init``/``post_init``, like any loaded row.
"""

from __future__ import annotations

import collections.abc as cabc
import typing as t

import sqlalchemy as sa

from .db import DEFAULT_DB_ALIAS
from .db import compile_sql
from .db import connections
from .exceptions import FieldError
from .models import Model

if t.TYPE_CHECKING:
    from ._compiler import _Compiler
    from .db import DatabaseWrapper

__all__ = ["prefetch_related_objects"]

PREFETCH_CACHE: t.Final = "_prefetched_objects_cache"
"""The instance ``__dict__`` key holding prefetched relations by accessor name."""

_MAX_DEPTH: t.Final = 5
"""How deep ``select_related()`` without names follows non-null keys (Django's)."""

_BATCH: t.Final = 500
"""Keys per prefetch query: more owners than this cost one query per batch."""

_MAX_CACHED: t.Final = 64
"""Compiled prefetch statements kept per through model."""


def _is_forward(field: t.Any) -> bool:
    return bool(getattr(field, "concrete", False) and field.is_relation)


# select_related -------------------------------------------------------------


class Join(t.NamedTuple):
    """One related model in a select_related query."""

    field: t.Any
    """The forward foreign key or one-to-one followed."""
    parent: int
    """The index of the join it hangs from, ``-1`` for the main model."""


def plan_select_related(
    model: type[Model], names: tuple[str, ...] | bool
) -> tuple[Join, ...]:
    """Check ``select_related`` names and return the joins, parents first.

    :param names: ``"author__country"``-style paths, or True for every
        non-null foreign key, recursively (five levels at most).
    :raises FieldError: a name is not a forward foreign key or one-to-one.
    """
    joins: list[Join] = []
    index: dict[tuple[int, str], int] = {}
    if names is True:
        _plan_all(model, -1, joins, 0)
        return tuple(joins)
    for path in t.cast(tuple[str, ...], names):
        current, parent = model, -1
        for name in path.split("__"):
            field = current._meta.field_map.get(name)
            if field is None or not _is_forward(field):
                choices = sorted(f.name for f in current._meta.fields if _is_forward(f))
                raise FieldError(
                    f"Invalid field name {name!r} in select_related({path!r}):"
                    f" {current._meta.object_name} has no forward foreign key or"
                    f" one-to-one of that name. Choices are:"
                    f" {', '.join(choices) or '(none)'}."
                )
            key = (parent, field.name)
            if key not in index:
                index[key] = len(joins)
                joins.append(Join(field, parent))
            parent = index[key]
            current = field.related_model
    return tuple(joins)


def _plan_all(model: type[Model], parent: int, joins: list[Join], depth: int) -> None:
    if depth >= _MAX_DEPTH:
        return
    field: t.Any
    for field in model._meta.fields:
        if _is_forward(field) and not field.null:
            joins.append(Join(field, parent))
            _plan_all(field.related_model, len(joins) - 1, joins, depth + 1)


def select_related_columns(compiler: _Compiler, joins: tuple[Join, ...]) -> list[t.Any]:
    """Join every related table and return the columns to select after the main ones."""
    tables: list[t.Any] = []
    columns: list[t.Any] = []
    for join in joins:
        parent = compiler.table if join.parent < 0 else tables[join.parent]
        alias = compiler.join(parent, join.field)
        tables.append(alias)
        columns.extend(alias.c[f.column] for f in join.field.related_model._meta.fields)
    return columns


def load_select_related(
    model: type[Model],
    rows: list[t.Any],
    conn: DatabaseWrapper,
    joins: tuple[Join, ...],
    built_from: tuple[list[t.Any], int] | None = None,
) -> list[t.Any]:
    """Build the main instances and their joined related instances from ``rows``.

    :param built_from: the main instances, already built from the first
        columns (deferred fields: :mod:`._loading`), and how many there were.
    """
    from ._compiler import rows_to_instances

    if built_from is None:
        width = len(model._meta.fields)
        objs = rows_to_instances(model, [row[:width] for row in rows], conn)
    else:
        objs, width = built_from
    built: list[list[t.Any]] = []
    start = width
    for join in joins:
        target = join.field.related_model
        stop = start + len(target._meta.fields)
        pk_index = start + target._meta.fields.index(target._meta.pk)
        present = [i for i, row in enumerate(rows) if row[pk_index] is not None]
        made = rows_to_instances(target, [rows[i][start:stop] for i in present], conn)
        related: list[t.Any] = [None] * len(rows)
        for i, obj in zip(present, made, strict=True):
            related[i] = obj
        owners = objs if join.parent < 0 else built[join.parent]
        field = join.field
        reverse_name = (
            field.remote_field.accessor_name
            if field.one_to_one and not field.remote_field.hidden
            else None
        )
        for owner, obj in zip(owners, related, strict=True):
            if owner is None:
                continue
            owner._state.fields_cache[field.name] = obj
            if obj is not None and reverse_name is not None:
                obj._state.fields_cache[reverse_name] = owner
        built.append(related)
        start = stop
    return objs


# prefetch_related -------------------------------------------------------------


def check_prefetch(model: type[Model], lookup: str) -> None:
    """Raise FieldError unless every step of ``lookup`` is a relation."""
    current = model
    for name in lookup.split("__"):
        current = _relation(current, name, lookup).related_model


def _relation(model: type[Model], name: str, lookup: str) -> t.Any:
    opts = model._meta
    for field in [*opts.fields, *opts.many_to_many]:
        if field.name == name and field.is_relation:
            return field
    for rel in opts.related_objects:
        if rel.accessor_name == name and not rel.hidden:
            return rel
    choices = sorted(
        [f.name for f in [*opts.fields, *opts.many_to_many] if f.is_relation]
        + [rel.accessor_name for rel in opts.related_objects if not rel.hidden]
    )
    raise FieldError(
        f"Cannot find {name!r} on {opts.object_name} in prefetch_related({lookup!r}):"
        f" it is not a relation. Choices are: {', '.join(choices) or '(none)'}."
    )


def prefetch_related_objects(
    instances: cabc.Sequence[Model], *lookups: str, using: str | None = None
) -> None:
    """Load the relations named by ``lookups`` for every instance, one query each.

    ``prefetch_related_objects(books, "author", "tags")``: what
    ``QuerySet.prefetch_related()`` does for a list you already have.
    Nested lookups (``"comments__author"``) prefetch level by level; a
    prefix shared by several lookups is loaded once.
    """
    objs = [obj for obj in instances if obj is not None]
    if not objs:
        return
    alias = using or objs[0]._state.db or DEFAULT_DB_ALIAS
    loaded: dict[str, list[Model]] = {}
    for lookup in lookups:
        level = objs
        parts = lookup.split("__")
        for depth, name in enumerate(parts):
            if not level:
                break
            prefix = "__".join(parts[: depth + 1])
            if prefix in loaded:
                level = loaded[prefix]
                continue
            relation = _relation(type(level[0]), name, lookup)
            level = _prefetch_one(level, relation, alias)
            loaded[prefix] = level


def _prefetch_one(objs: list[Model], relation: t.Any, alias: str) -> list[Model]:
    if _is_forward(relation):
        return _prefetch_forward(objs, relation, alias)
    if relation.many_to_many:
        return _prefetch_many_to_many(objs, relation, alias)
    return _prefetch_reverse(objs, relation, alias)


def _batches(keys: list[t.Any]) -> cabc.Iterator[list[t.Any]]:
    for start in range(0, len(keys), _BATCH):
        yield keys[start : start + _BATCH]


def _prefetch_forward(objs: list[Model], field: t.Any, alias: str) -> list[Model]:
    from .query import QuerySet

    name = field.name
    if all(name in obj._state.fields_cache for obj in objs):
        # Already there (select_related): nothing to fetch.
        found = {id(o): o for obj in objs if (o := obj._state.fields_cache[name])}
        return list(found.values())
    attname = field.attname
    target_attname = field.target_field.attname
    keys = list(
        dict.fromkeys(k for obj in objs if (k := obj.__dict__[attname]) is not None)
    )
    by_key: dict[t.Any, Model] = {}
    for batch in _batches(keys):
        qs = QuerySet(field.related_model, alias).filter(
            **{f"{field.target_field.name}__in": batch}
        )
        for related in qs:
            by_key[related.__dict__[target_attname]] = related
    reverse_name = (
        field.remote_field.accessor_name
        if field.one_to_one and not field.remote_field.hidden
        else None
    )
    for obj in objs:
        related = by_key.get(obj.__dict__[attname])
        obj._state.fields_cache[name] = related
        if related is not None and reverse_name is not None:
            related._state.fields_cache[reverse_name] = obj
    return list(by_key.values())


def _prefetch_reverse(objs: list[Model], rel: t.Any, alias: str) -> list[Model]:
    from .query import QuerySet

    field = rel.field
    own_attname = field.target_field.attname
    keys = list(
        dict.fromkeys(k for obj in objs if (k := obj.__dict__[own_attname]) is not None)
    )
    groups: dict[t.Any, list[Model]] = {}
    children: list[Model] = []
    for batch in _batches(keys):
        qs = QuerySet(rel.related_model, alias).filter(
            **{f"{field.attname}__in": batch}
        )
        for child in qs:
            groups.setdefault(child.__dict__[field.attname], []).append(child)
            children.append(child)
    for obj in objs:
        found = groups.get(obj.__dict__[own_attname], [])
        for child in found:
            child._state.fields_cache[field.name] = obj
        if rel.one_to_one:
            obj._state.fields_cache[rel.accessor_name] = found[0] if found else None
        else:
            obj.__dict__.setdefault(PREFETCH_CACHE, {})[rel.accessor_name] = found
    return children


def _prefetch_many_to_many(
    objs: list[Model], relation: t.Any, alias: str
) -> list[Model]:
    from ._compiler import rows_to_instances

    if hasattr(relation, "accessor_name"):
        # The reverse side: the declaring model's instances are the targets.
        field, name = relation.field, relation.accessor_name
        own_fk, other_fk = field.target_fk, field.source_fk
        target = t.cast("type[Model]", field.model)
    else:
        field, name = relation, relation.name
        own_fk, other_fk = field.source_fk, field.target_fk
        target = field.related_model
    conn = connections[alias]
    own_attname = own_fk.target_field.attname
    prep = own_fk.target_field.db_converter(conn.vendor)
    back = own_fk.target_field.python_converter(conn.vendor)
    keys = list(
        dict.fromkeys(k for obj in objs if (k := obj.__dict__[own_attname]) is not None)
    )
    groups: dict[t.Any, list[Model]] = {}
    children: list[Model] = []
    width = len(target._meta.fields)
    for batch in _batches(keys):
        params = [prep(k) for k in batch] if prep is not None else batch
        sql = _many_to_many_sql(field, own_fk, other_fk, target, conn, len(batch))
        rows = conn.fetchall(sql, params)
        made = rows_to_instances(target, [row[:width] for row in rows], conn)
        for row, child in zip(rows, made, strict=True):
            owner = row[width]
            if back is not None and owner is not None:
                owner = back(owner)
            groups.setdefault(owner, []).append(child)
            children.append(child)
    for obj in objs:
        obj.__dict__.setdefault(PREFETCH_CACHE, {})[name] = groups.get(
            obj.__dict__[own_attname], []
        )
    return children


def _many_to_many_sql(
    field: t.Any,
    own_fk: t.Any,
    other_fk: t.Any,
    target: type[Model],
    conn: DatabaseWrapper,
    count: int,
) -> str:
    """Return the SELECT of ``target`` rows linked to ``count`` owners (cached).

    # PERF: compiled once per relation, direction, vendor and number of
    # owners: a list page asks for the same number every time.
    """
    through = field.through._meta
    key = ("prefetch", own_fk.name, conn.vendor, count)
    sql = through._sql_cache.get(key)
    if sql is None:
        table = target._meta.table
        link = through.table
        directions = []
        for spec in target._meta.ordering:
            ordered = target._meta.field_map.get(spec.lstrip("-"))
            if ordered is None or not ordered.concrete:
                continue  # the link order stands in for orderings across relations
            column = table.c[ordered.column]
            directions.append(column.desc() if spec.startswith("-") else column.asc())
        owner_column = link.c[own_fk.column]
        stmt = (
            sa.select(*(table.c[f.column] for f in target._meta.fields), owner_column)
            .select_from(
                table.join(
                    link,
                    link.c[other_fk.column] == table.c[other_fk.target_field.column],
                )
            )
            .where(owner_column.in_([sa.bindparam(f"k{i}") for i in range(count)]))
            .order_by(*directions, link.c[through.pk.column])
        )
        sql = compile_sql(stmt, conn.dialect)[0]
        if len(through._sql_cache) > _MAX_CACHED:
            through._sql_cache.clear()
        through._sql_cache[key] = sql
    return t.cast(str, sql)


def prefetched(instance: Model, name: str) -> list[Model] | None:
    """Return the prefetched instances of relation ``name``, or None."""
    cache = instance.__dict__.get(PREFETCH_CACHE)
    if cache is None:
        return None
    return t.cast("list[Model] | None", cache.get(name))


def forget_prefetched(instance: Model, name: str) -> None:
    """Drop the prefetched instances of ``name`` (the relation changed)."""
    cache = instance.__dict__.get(PREFETCH_CACHE)
    if cache is not None:
        cache.pop(name, None)
