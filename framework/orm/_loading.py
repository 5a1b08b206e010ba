"""Loading rows with deferred fields or annotations; ``defer()`` and ``only()``.

A deferred field is left out of the instance's ``__dict__``; the first read
goes through a :class:`DeferredAttribute` that the model class gets for that
field (only once some queryset defers it, so other reads stay plain
attribute reads) and loads it with one query, as Django does:
``refresh_from_db(fields=[name])``.
"""

from __future__ import annotations

import collections.abc as cabc
import typing as t

from framework import signals

from ..dispatch import Sentinel
from ._compiler import rows_to_instances
from .exceptions import FieldError
from .models import Model
from .models import ModelState

if t.TYPE_CHECKING:
    from .db import DatabaseWrapper
    from .query import QuerySet

__all__ = ["DEFERRED", "DeferredAttribute", "defer_fields", "load_instances"]

DEFERRED: t.Final = Sentinel("DEFERRED")
"""Stands for a deferred field's value in ``pre_init`` args and ``from_db()``."""

_BASE_FROM_DB: t.Final = Model.from_db.__func__  # type: ignore[attr-defined]


class DeferredAttribute:
    """The class attribute of a field that some queryset deferred.

    Instances holding the value in ``__dict__`` never reach it (it is a
    non-data descriptor); for the others it loads the value with one query.
    """

    def __init__(self, field: t.Any) -> None:
        self.field = field

    def __get__(self, instance: Model | None, owner: type) -> t.Any:
        if instance is None:
            return self
        attname = self.field.attname
        data = instance.__dict__
        if attname not in data:
            instance.refresh_from_db(fields=[attname])
        return data[attname]


def _install(model: type[Model], attnames: cabc.Iterable[str]) -> None:
    meta = model._meta
    by_attname = {field.attname: field for field in meta.fields}
    for attname in attnames:
        if not isinstance(model.__dict__.get(attname), DeferredAttribute):
            setattr(model, attname, DeferredAttribute(by_attname[attname]))


def _attnames(model: type[Model], fields: tuple[t.Any, ...], what: str) -> set[str]:
    meta = model._meta
    names = set()
    for name in fields:
        if not isinstance(name, str):
            raise TypeError(f"{what}() takes field names, got {name!r}.")
        if "__" in name:
            raise FieldError(
                f"{what}({name!r}): only fields of {meta.object_name} itself can be"
                " deferred, not fields across relations."
            )
        field = meta.field_map.get(meta.pk.name if name == "pk" else name)
        if field is None or not field.concrete or field.many_to_many:
            raise FieldError(
                f"{what}({name!r}): {meta.object_name} has no such concrete field."
                f" Choices are: {', '.join(f.name for f in meta.fields)}."
            )
        names.add(field.attname)
    return names


def defer_fields(
    qs: QuerySet[t.Any], fields: tuple[t.Any, ...], only: bool
) -> QuerySet[t.Any]:
    """Return a copy of ``qs`` deferring ``fields`` (or loading only them)."""
    model = qs.model
    clone = qs._clone()
    if not only and fields == (None,):
        clone._deferred = None
        clone._refresh_extra()
        return clone
    if only and None in fields:
        raise TypeError("Cannot pass None as an argument to only().")
    names = _attnames(model, fields, "only" if only else "defer")
    current = qs._deferred
    # Django's rules: defer() adds to the deferred set or takes names out of
    # the only() set; only() replaces the only() set, minus deferred names.
    if only:
        if current is not None and not current[1]:
            names -= current[0]
        deferred: tuple[frozenset[str], bool] | None = (frozenset(names), True)
    elif current is None or not current[1]:
        deferred = (frozenset(names | (current[0] if current else set())), False)
    else:
        remaining = current[0] - names
        if remaining:
            deferred = (frozenset(remaining), True)
        else:
            deferred = (
                (frozenset(names - current[0]), False) if names - current[0] else None
            )
    clone._deferred = deferred
    clone._refresh_extra()
    if deferred is not None:
        pk = model._meta.pk.attname
        loaded = {f.attname for f in clone._loaded_fields()}
        _install(
            model,
            (
                f.attname
                for f in model._meta.fields
                if f.attname not in loaded and f.attname != pk
            ),
        )
    return clone


def load_instances(
    qs: QuerySet[t.Any], rows: list[t.Any], conn: DatabaseWrapper
) -> list[t.Any]:
    """Build instances from rows of the loaded fields, then the annotations."""
    from .expressions import converter

    model = qs.model
    fields = qs._loaded_fields()
    width = len(fields)
    annotations = list((qs._annotations or {}).items())
    if width == len(model._meta.fields):
        objs = (
            rows_to_instances(
                model,
                [row[:width] for row in rows] if len(rows[0]) > width else rows,
                conn,
            )
            if rows
            else []
        )
    else:
        objs = _partial_instances(model, fields, rows, conn)
    offset = width
    if qs._select_related:
        from .related_loading import load_select_related

        load_select_related(model, rows, conn, qs._select_related, (objs, width))
        for join in qs._select_related:
            offset += len(join.field.related_model._meta.fields)
    if annotations:
        vendor = conn.vendor
        convs = [
            (offset + index, name, converter(node.output, vendor))
            for index, (name, node) in enumerate(annotations)
        ]
        for obj, row in zip(objs, rows, strict=True):
            data = obj.__dict__
            for index, name, convert in convs:
                value = row[index]
                data[name] = (
                    value if value is None or convert is None else convert(value)
                )
    return objs


def _partial_instances(
    model: type[Model],
    fields: list[t.Any],
    rows: list[t.Any],
    conn: DatabaseWrapper,
) -> list[t.Any]:
    vendor = conn.vendor
    alias = conn.alias
    width = len(fields)
    convs = [
        (index, convert)
        for index, field in enumerate(fields)
        if (convert := field.python_converter(vendor)) is not None
    ]
    attnames = [field.attname for field in fields]
    all_attnames = [field.attname for field in model._meta.fields]
    positions = [all_attnames.index(name) for name in attnames]
    custom = model.from_db.__func__ is not _BASE_FROM_DB  # type: ignore[attr-defined]
    pre_init = signals.pre_init
    post_init = signals.post_init
    result = []
    for raw in rows:
        values = list(raw[:width])
        for index, convert in convs:
            if values[index] is not None:
                values[index] = convert(values[index])
        full: list[t.Any] = [DEFERRED] * len(all_attnames)
        for position, value in zip(positions, values, strict=True):
            full[position] = value
        if custom:
            obj = model.from_db(alias, full)
            data = obj.__dict__
            for name in all_attnames:
                if data.get(name) is DEFERRED:
                    del data[name]
        else:
            obj = model.__new__(model)
            if pre_init.connected:
                pre_init.send(sender=model, args=tuple(full), kwargs={})
            data = obj.__dict__
            data.update(zip(attnames, values, strict=True))
            data["_state"] = ModelState(False, alias)
            if post_init.connected:
                post_init.send(sender=model, instance=obj)
        result.append(obj)
    return result
