"""Querysets, ``Q`` objects, lookups and managers.

A :class:`QuerySet` is lazy: ``filter()``/``exclude()``/``order_by()`` check
every field name and lookup at once (raising :class:`FieldError` before any
SQL) and return a new queryset; SQL is built with SQLAlchemy Core and run
only when the results are needed. Values always travel as bound parameters.

Relations are spanned with ``__``: forward foreign keys become LEFT OUTER
JOINs; reverse foreign keys and many-to-many relations become ``pk IN
(subquery)`` conditions, so rows are never duplicated and ``exclude()`` reads
naturally ("no related row matches").
"""

from __future__ import annotations

import collections.abc as cabc
import itertools
import typing as t

import sqlalchemy as sa

from framework import signals

from .db import DEFAULT_DB_ALIAS
from .db import compile_sql
from .db import connections
from .exceptions import FieldError
from .exceptions import IntegrityError
from .exceptions import ValidationError
from .models import Model
from .models import ModelState
from .transaction import atomic

if t.TYPE_CHECKING:
    from .db import DatabaseWrapper

__all__ = ["LOOKUPS", "Manager", "Q", "QuerySet"]

M = t.TypeVar("M", bound="Model")

LOOKUPS: t.Final = frozenset(
    {
        "exact",
        "iexact",
        "in",
        "gt",
        "gte",
        "lt",
        "lte",
        "contains",
        "icontains",
        "startswith",
        "istartswith",
        "endswith",
        "iendswith",
        "isnull",
        "range",
    }
)
"""Every supported lookup name."""

_TEXT_LOOKUPS: t.Final = frozenset(
    {
        "iexact",
        "contains",
        "icontains",
        "startswith",
        "istartswith",
        "endswith",
        "iendswith",
    }
)

_MAX_CACHED_QUERIES: t.Final = 512
_BASE_FROM_DB: t.Final = Model.from_db.__func__  # type: ignore[attr-defined]

_post_update = signals.post_update
_post_bulk_create = signals.post_bulk_create


class Q:
    """A filter condition combinable with ``&``, ``|`` and ``~``.

    ``Q(name="x") | Q(price__lt=5)``; keyword conditions inside one ``Q`` are
    ANDed.
    """

    AND: t.Final = "AND"
    OR: t.Final = "OR"

    def __init__(
        self,
        *args: t.Any,
        _connector: str = "AND",
        _negated: bool = False,
        **kwargs: t.Any,
    ) -> None:
        for arg in args:
            if not isinstance(arg, Q | tuple):
                raise TypeError(
                    f"Q() takes Q objects or keyword conditions, got {arg!r}."
                )
        self.children: list[t.Any] = [*args, *sorted(kwargs.items())]
        self.connector = _connector
        self.negated = _negated

    def __repr__(self) -> str:
        inner = f" {self.connector} ".join(repr(c) for c in self.children)
        return f"<Q: {'NOT ' if self.negated else ''}({inner})>"

    def _combine(self, other: Q, connector: str) -> Q:
        if not isinstance(other, Q):
            raise TypeError(f"Cannot combine a Q with {other!r}.")
        return Q(self, other, _connector=connector)

    def __and__(self, other: Q) -> Q:
        return self._combine(other, self.AND)

    def __or__(self, other: Q) -> Q:
        return self._combine(other, self.OR)

    def __invert__(self) -> Q:
        return Q(self, _negated=True)


# Resolving names ----------------------------------------------------------------


class _Path(t.NamedTuple):
    steps: tuple[t.Any, ...]
    field: t.Any
    lookup: str
    key: str


def _lookup_error(model: type[Model], field: t.Any, name: str) -> FieldError:
    return FieldError(
        f"Unsupported lookup {name!r} for {type(field).__name__} {field.name!r} of"
        f" {model._meta.object_name}. Choices are: {', '.join(sorted(LOOKUPS))}."
    )


def resolve_path(model: type[Model], key: str) -> _Path:
    """Split ``"author__name__icontains"`` into relation steps, field and lookup.

    :raises FieldError: naming the model and the valid choices.
    """
    cache = model._meta._path_cache
    try:
        return t.cast(_Path, cache[key])
    except KeyError:
        pass
    path = _resolve_path(model, key)
    if len(cache) < _MAX_CACHED_QUERIES:
        cache[key] = path
    return path


def _resolve_path(model: type[Model], key: str) -> _Path:
    parts = key.split("__")
    current = model
    steps: list[t.Any] = []
    field: t.Any = None
    lookup = "exact"
    for index, name in enumerate(parts):
        last = index == len(parts) - 1
        if field is not None:
            if last and name in LOOKUPS:
                lookup = name
                break
            if field.is_relation:
                steps.append(field)
                current = field.related_model
                field = None
            else:
                raise _lookup_error(current, field, name)
        opts = current._meta
        if name == "pk":
            name = opts.pk.name
        found = opts.field_map.get(name)
        if found is None:
            raise FieldError(
                f"Cannot resolve keyword {name!r} into a field of"
                f" {opts.object_name}. Choices are: {', '.join(opts.field_names())}."
            )
        field = found
    if field.is_relation and not field.many_to_one:
        # Ends on a multi-valued relation: compare the related primary key.
        steps.append(field)
        field = field.related_model._meta.pk
    return _Path(tuple(steps), field, lookup, key)


def _resolve_q(model: type[Model], q: Q) -> tuple[str, bool, list[t.Any]]:
    children: list[t.Any] = []
    for child in q.children:
        if isinstance(child, Q):
            children.append(_resolve_q(model, child))
        else:
            key, value = child
            path = resolve_path(model, key)
            children.append((path, _check_value(path, value)))
    return (q.connector, q.negated, children)


def _check_value(path: _Path, value: t.Any) -> t.Any:
    if path.lookup == "in":
        if isinstance(value, str | bytes) or not isinstance(value, cabc.Iterable):
            raise ValueError(
                f"The value of {path.key!r} must be an iterable, got {value!r}."
            )
        return list(value)
    if path.lookup == "range":
        if not isinstance(value, list | tuple) or len(value) != 2:
            raise ValueError(
                f"The value of {path.key!r} must be a (low, high) pair, got {value!r}."
            )
    elif path.lookup == "isnull" and not isinstance(value, bool):
        raise ValueError(
            f"The value of {path.key!r} must be True or False, got {value!r}."
        )
    elif path.lookup in _TEXT_LOOKUPS and value is None:
        raise ValueError(f"{path.key!r} cannot compare with None; use __isnull=True.")
    elif path.lookup not in ("exact", "isnull") and value is None:
        raise ValueError(f"{path.key!r} cannot compare with None.")
    return value


def _shape(node: tuple[str, bool, list[t.Any]]) -> t.Hashable:
    """Return what decides the SQL of a condition tree (not its values)."""
    connector, negated, children = node
    parts: list[t.Hashable] = []
    for child in children:
        if isinstance(child[0], str):
            parts.append(_shape(child))
            continue
        path, value = child
        if path.lookup == "in":
            kind: t.Hashable = len(value)
        elif path.lookup in ("exact", "isnull"):
            kind = value is None if path.lookup == "exact" else bool(value)
        else:
            kind = None
        parts.append((path.key, path.lookup, kind))
    return (connector, negated, tuple(parts))


# Compiling ------------------------------------------------------------


def _pk_of(value: t.Any) -> t.Any:
    if isinstance(value, Model):
        if value.pk is None:
            raise ValueError(
                f"Cannot filter on the unsaved {type(value).__name__} {value!r}."
            )
        return value.pk
    return value


class _Compiler:
    """Turns resolved conditions into SQLAlchemy expressions for one vendor.

    Every value becomes a bind parameter named ``p<n>`` by the order of the
    conditions; :class:`_ParamWalker` computes the same parameters for a
    statement whose SQL is cached already.
    """

    def __init__(
        self,
        model: type[Model],
        vendor: str,
        params: dict[str, t.Any] | None = None,
    ) -> None:
        self.model = model
        self.vendor = vendor
        self.params: dict[str, t.Any] = {} if params is None else params
        self.table = model._meta.table
        self.from_clause: t.Any = self.table
        self.joins: dict[tuple[int, str], t.Any] = {}
        self.counter = itertools.count(1)
        self.param_counter = itertools.count()

    def join(self, table: t.Any, fk: t.Any) -> t.Any:
        key = (id(table), fk.name)
        alias = self.joins.get(key)
        if alias is None:
            target_meta = fk.related_model._meta
            alias = target_meta.table.alias(
                f"T{next(self.counter)}_{target_meta.db_table}"
            )
            self.from_clause = self.from_clause.outerjoin(
                alias, table.c[fk.column] == alias.c[fk.target_field.column]
            )
            self.joins[key] = alias
        return alias

    def column(self, path: _Path) -> t.Any:
        """Return the column of a path made only of forward foreign keys."""
        table = self.table
        for step in path.steps:
            if not getattr(step, "many_to_one", False):
                raise FieldError(
                    f"{path.key!r} spans the multi-valued relation {step.name!r};"
                    " only forward foreign keys can be used here."
                )
            table = self.join(table, step)
        return table.c[path.field.column]

    def where(self, node: tuple[str, bool, list[t.Any]]) -> t.Any:
        connector, negated, children = node
        parts = []
        for child in children:
            if isinstance(child[0], str):
                parts.append(self.where(child))
            else:
                parts.append(self.condition(child[0], child[1]))
        if not parts:
            expr: t.Any = sa.true()
        elif len(parts) == 1:
            expr = parts[0]
        else:
            expr = sa.and_(*parts) if connector == Q.AND else sa.or_(*parts)
        return sa.not_(expr) if negated else expr

    def condition(self, path: _Path, value: t.Any, table: t.Any = None) -> t.Any:
        table = self.table if table is None else table
        for index, step in enumerate(path.steps):
            if getattr(step, "many_to_one", False):
                rest = path.steps[index + 1 :]
                if not rest and path.field is step.target_field:
                    # author__id=3 is author_id=3: no join.
                    column = table.c[step.column]
                    return _null_safe(_leaf(self, column, path, value), column, path)
                table = self.join(table, step)
                continue
            remaining = path._replace(steps=path.steps[index + 1 :])
            return self._subquery(table, step, remaining, value)
        column = table.c[path.field.column]
        expr = _leaf(self, column, path, value)
        if table is not self.table or path.field.null:
            return _null_safe(expr, column, path)
        return expr

    def _subquery(self, table: t.Any, step: t.Any, rest: _Path, value: t.Any) -> t.Any:
        link_model, link_fk, outer_field, inner_steps = step.subquery_plan()
        sub = _Compiler(link_model, self.vendor, self.params)
        sub.counter = self.counter
        sub.param_counter = self.param_counter
        sub.table = sub.from_clause = link_model._meta.table.alias(
            f"U{next(self.counter)}_{link_model._meta.db_table}"
        )
        inner = sub.condition(rest._replace(steps=(*inner_steps, *rest.steps)), value)
        link_column = sub.table.c[link_fk.column]
        select = (
            sa.select(link_column)
            .select_from(sub.from_clause)
            .where(inner, link_column.is_not(None))
        )
        return table.c[outer_field.column].in_(select)


class _ParamWalker:
    """Computes the parameters of a cached statement, like _Compiler would."""

    __slots__ = ("param_counter", "params", "vendor")

    def __init__(self, vendor: str, params: dict[str, t.Any]) -> None:
        self.vendor = vendor
        self.params = params
        self.param_counter = itertools.count()

    def where(self, node: tuple[str, bool, list[t.Any]]) -> None:
        for child in node[2]:
            if isinstance(child[0], str):
                self.where(child)
            else:
                _leaf_params(self, child[0], child[1])


def _prep(field: t.Any, value: t.Any, vendor: str, key: str) -> t.Any:
    value = _pk_of(value)
    if value is None:
        return None
    try:
        return field.get_db_prep_value(value, vendor)
    except ValueError as exc:
        owner = field.model.__name__ if field.model is not None else "?"
        raise ValueError(
            f"Invalid value for {key!r} ({owner}.{field.name}): {exc}"
        ) from None


def _escape_like(text: str) -> str:
    return text.replace("/", "//").replace("%", "/%").replace("_", "/_")


_LIKE_PATTERNS: t.Final = {
    "contains": "%{}%",
    "icontains": "%{}%",
    "startswith": "{}%",
    "istartswith": "{}%",
    "endswith": "%{}",
    "iendswith": "%{}",
}


def _leaf_params(compiler: t.Any, path: _Path, value: t.Any) -> str:
    """Compute the bind parameters of one condition; return their base name."""
    name = f"p{next(compiler.param_counter)}"
    lookup = path.lookup
    field = path.field.target_field if path.field.is_relation else path.field
    vendor = compiler.vendor
    params = compiler.params
    if lookup == "isnull":
        return name
    if lookup == "in":
        values = [_prep(field, v, vendor, path.key) for v in value]
        values = [v for v in values if v is not None]
        for index, item in enumerate(values, 1):
            params[f"{name}_{index}"] = item
        params[name] = values
        return name
    if lookup == "range":
        params[f"{name}a"] = _prep(field, value[0], vendor, path.key)
        params[f"{name}b"] = _prep(field, value[1], vendor, path.key)
        return name
    if lookup in _TEXT_LOOKUPS:
        text = str(_pk_of(value))
        if lookup == "iexact":
            params[name] = text.lower()
        else:
            pattern = _LIKE_PATTERNS[lookup].format(_escape_like(text))
            params[name] = pattern.lower() if lookup.startswith("i") else pattern
        return name
    prepped = _prep(field, value, vendor, path.key)
    if prepped is not None:
        params[name] = prepped
    return name


def _null_safe(expr: t.Any, column: t.Any, path: _Path) -> t.Any:
    """Make a comparison on a column that may be NULL false, never unknown.

    ``NOT (email = 'x')`` is unknown, so excluded, for a NULL email; with
    ``email IS NOT NULL`` added, ``exclude(email="x")`` keeps those rows, as
    Django users expect.
    """
    if path.lookup == "isnull" or (path.lookup == "exact" and _expr_is_null(expr)):
        return expr
    return sa.and_(expr, column.is_not(None))


def _expr_is_null(expr: t.Any) -> bool:
    """Return whether ``expr`` is a plain ``IS NULL`` test."""
    return getattr(expr, "operator", None) is sa.sql.operators.is_


def _leaf(compiler: _Compiler, column: t.Any, path: _Path, value: t.Any) -> t.Any:
    name = _leaf_params(compiler, path, value)
    params = compiler.params
    lookup = path.lookup
    col_type = column.type
    if lookup == "isnull":
        return column.is_(None) if value else column.is_not(None)
    if lookup == "in":
        values = params.pop(name)
        for index in range(len(values)):
            params.pop(f"{name}_{index + 1}")
        return column.in_(sa.bindparam(name, values, expanding=True, type_=col_type))
    if lookup == "range":
        return column.between(
            sa.bindparam(f"{name}a", params[f"{name}a"], type_=col_type),
            sa.bindparam(f"{name}b", params[f"{name}b"], type_=col_type),
        )
    if lookup in _TEXT_LOOKUPS:
        text_col = (
            column if isinstance(col_type, sa.String) else sa.cast(column, sa.Text)
        )
        bind = sa.bindparam(name, params[name], type_=sa.Text())
        if lookup == "iexact":
            return sa.func.lower(text_col) == bind
        if lookup.startswith("i"):
            return sa.func.lower(text_col).like(bind, escape="/")
        return text_col.like(bind, escape="/")
    if name not in params:
        return column.is_(None)
    bind = sa.bindparam(name, params[name], type_=col_type)
    if lookup == "exact":
        return column == bind
    if lookup == "gt":
        return column > bind
    if lookup == "gte":
        return column >= bind
    if lookup == "lt":
        return column < bind
    return column <= bind


def _loader(model: type[Model], vendor: str) -> tuple[tuple[int, t.Any], ...]:
    key = ("load", vendor)
    cache = model._meta._sql_cache
    convs = cache.get(key)
    if convs is None:
        convs = tuple(
            (index, conv)
            for index, field in enumerate(model._meta.fields)
            if (conv := field.python_converter(vendor)) is not None
        )
        cache[key] = convs
    return t.cast(tuple[tuple[int, t.Any], ...], convs)


def rows_to_instances(
    model: type[Model], rows: cabc.Iterable[t.Any], conn: DatabaseWrapper
) -> list[t.Any]:
    """Turn raw rows (columns in field order) into model instances."""
    convs = _loader(model, conn.vendor)
    alias = conn.alias
    result = []
    if model.from_db.__func__ is not _BASE_FROM_DB:  # type: ignore[attr-defined]
        from_db = model.from_db
        for row in rows:
            if convs:
                row = list(row)
                for index, convert in convs:
                    value = row[index]
                    if value is not None:
                        row[index] = convert(value)
            result.append(from_db(alias, row))
        return result
    # PERF: Model.from_db inlined; the signal checks are hoisted out of the loop.
    attnames = (model._meta._init_cache or model._meta.init_cache())[3]
    new = object.__new__
    pre_init = signals.pre_init if signals.pre_init._records else None
    post_init = signals.post_init if signals.post_init._records else None
    for row in rows:
        if convs:
            row = list(row)
            for index, convert in convs:
                value = row[index]
                if value is not None:
                    row[index] = convert(value)
        obj = new(model)
        if pre_init is not None:
            pre_init.send(sender=model, args=tuple(row), kwargs={})
        d = obj.__dict__
        d.update(zip(attnames, row, strict=True))
        d["_state"] = ModelState(False, alias)
        if post_init is not None:
            post_init.send(sender=model, instance=obj)
        result.append(obj)
    return result


def get_by_pk(model: type[Model], conn: DatabaseWrapper, pk: t.Any) -> t.Any:
    """Fetch one instance by primary key with a cached statement, or None."""
    key = ("get", conn.vendor)
    meta = model._meta
    cached = meta._sql_cache.get(key)
    if cached is None:
        table = meta.table
        stmt = sa.select(*(table.c[f.column] for f in meta.fields)).where(
            table.c[meta.pk.column] == sa.bindparam("pk")
        )
        int_pk = type(meta.pk.fast_check("v")) is str and meta.pk.python_types == (int,)
        cached = (compile_sql(stmt, conn.dialect)[0], int_pk)
        meta._sql_cache[key] = cached
    sql, int_pk = cached
    # PERF: an int for an integer key needs no conversion.
    if type(pk) is not int or not int_pk:
        pk = _prep(meta.pk, pk, conn.vendor, "pk")
    row = conn.execute(sql, (pk,)).fetchone()
    if row is None:
        return None
    return rows_to_instances(model, (row,), conn)[0]


def _get_by_key(model: type[Model], alias: str, key: str, value: t.Any) -> t.Any:
    """Return the instance for ``get(pk=value)``, or ``_NOT_A_PK`` for other keys."""
    meta = model._meta
    if key not in ("pk", "pk__exact", meta.pk.name, meta.pk.attname):
        return _NOT_A_PK
    found = get_by_pk(model, connections[alias], value)
    if found is None:
        raise model.DoesNotExist(
            f"{meta.object_name} matching query does not exist ({key}={value!r})."
        )
    return found


_NOT_A_PK: t.Final = object()


# QuerySet ------------------------------------------------------------


class QuerySet(t.Generic[M]):
    """A lazy database query for instances of ``model``.

    :param model: the model class.
    :param using: the database alias, or ``None`` for the default.
    """

    def __init__(self, model: type[M], using: str | None = None) -> None:
        self.model = model
        self._using = using
        self._where: list[tuple[str, bool, list[t.Any]]] = []
        self._order_by: tuple[tuple[_Path, bool], ...] | None = None
        self._low = 0
        self._high: int | None = None
        self._values: tuple[tuple[str, ...], str] | None = None
        self._distinct = False
        self._empty = False
        self._result_cache: list[t.Any] | None = None
        self._hints: dict[str, t.Any] = {}

    @property
    def db(self) -> str:
        """The database alias the query runs on."""
        return self._using or DEFAULT_DB_ALIAS

    def _clone(self) -> QuerySet[M]:
        clone = type(self).__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone._where = list(self._where)
        clone._result_cache = None
        return clone

    def __repr__(self) -> str:
        items = (
            list(self[:21]) if self._result_cache is None else self._result_cache[:21]
        )
        shown = ", ".join(repr(item) for item in items[:20])
        more = ", ...(remaining elements truncated)..." if len(items) > 20 else ""
        return f"<QuerySet [{shown}{more}]>"

    # Building ----------------------------------------------------------------------

    def using(self, alias: str) -> QuerySet[M]:
        """Return a copy running on the database ``alias``."""
        clone = self._clone()
        clone._using = alias
        return clone

    def all(self) -> QuerySet[M]:
        """Return a copy of this queryset."""
        return self._clone()

    def none(self) -> QuerySet[M]:
        """Return a queryset that matches nothing (and runs no SQL)."""
        clone = self._clone()
        clone._empty = True
        return clone

    def filter(self, *args: Q, **kwargs: t.Any) -> QuerySet[M]:
        """Return a copy keeping the rows that match every condition."""
        return self._filter(False, args, kwargs)

    def exclude(self, *args: Q, **kwargs: t.Any) -> QuerySet[M]:
        """Return a copy leaving out the rows that match all the conditions."""
        return self._filter(True, args, kwargs)

    def _filter(
        self, negate: bool, args: tuple[Q, ...], kwargs: dict[str, t.Any]
    ) -> QuerySet[M]:
        self._check_unsliced("filter")
        node = _resolve_q(self.model, Q(*args, _negated=negate, **kwargs))
        clone = self._clone()
        clone._where.append(node)
        return clone

    def order_by(self, *names: str) -> QuerySet[M]:
        """Return a copy ordered by these fields (``"-name"`` for descending)."""
        self._check_unsliced("order_by")
        resolved = []
        for name in names:
            if not isinstance(name, str):
                raise TypeError(f"order_by() takes field names, got {name!r}.")
            descending = name.startswith("-")
            path = resolve_path(self.model, name.lstrip("-"))
            if path.lookup != "exact" or name.endswith("__exact"):
                raise FieldError(
                    f"order_by({name!r}): lookups cannot be used for ordering."
                )
            resolved.append((path, descending))
        clone = self._clone()
        clone._order_by = tuple(resolved)
        return clone

    def reverse(self) -> QuerySet[M]:
        """Return a copy with the ordering reversed."""
        clone = self._clone()
        clone._order_by = tuple((path, not desc) for path, desc in self._ordering())
        return clone

    def distinct(self) -> QuerySet[M]:
        """Return a copy that drops duplicate rows."""
        clone = self._clone()
        clone._distinct = True
        return clone

    def values(self, *fields: str) -> QuerySet[M]:
        """Return a copy yielding dicts of the given fields (all by default)."""
        return self._with_values(fields, "dict")

    def values_list(self, *fields: str, flat: bool = False) -> QuerySet[M]:
        """Return a copy yielding tuples (or single values with ``flat=True``)."""
        if flat and len(fields) != 1:
            raise TypeError("values_list(flat=True) takes exactly one field name.")
        return self._with_values(fields, "flat" if flat else "tuple")

    def _with_values(self, fields: tuple[str, ...], kind: str) -> QuerySet[M]:
        if not fields:
            fields = tuple(f.attname for f in self.model._meta.fields)
        for name in fields:
            path = resolve_path(self.model, name)
            if path.lookup != "exact" or name.endswith("__exact"):
                raise FieldError(f"values({name!r}): lookups cannot be selected.")
        clone = self._clone()
        clone._values = (fields, kind)
        return clone

    def _check_unsliced(self, what: str) -> None:
        if self._low or self._high is not None:
            raise TypeError(f"Cannot {what}() a queryset once it has been sliced.")

    # Running ------------------------------------------------------------------------

    def _ordering(self) -> tuple[tuple[_Path, bool], ...]:
        if self._order_by is not None:
            return self._order_by
        meta = self.model._meta
        ordering = meta._default_ordering
        if ordering is None:
            ordering = meta._default_ordering = tuple(
                (resolve_path(self.model, name.lstrip("-")), name.startswith("-"))
                for name in meta.ordering
            )
        return ordering

    def _compiler(self, conn: DatabaseWrapper) -> tuple[_Compiler, t.Any]:
        compiler = _Compiler(self.model, conn.vendor)
        return compiler, self._where_expr(compiler)

    def _where_expr(self, compiler: _Compiler) -> t.Any:
        if not self._where:
            return None
        parts = [compiler.where(node) for node in self._where]
        return parts[0] if len(parts) == 1 else sa.and_(*parts)

    def _statement(self, compiler: _Compiler, kind: str) -> t.Any:
        where = self._where_expr(compiler)
        meta = self.model._meta
        if kind == "count" and not (
            self._low or self._high is not None or self._distinct or self._values
        ):
            stmt: t.Any = sa.select(sa.func.count())
            if where is not None:
                stmt = stmt.where(where)
            return stmt.select_from(compiler.from_clause)
        columns: list[t.Any]
        if kind == "exists" or (kind == "count" and not self._distinct):
            columns = [sa.literal_column("1")]
        elif self._values is not None:
            columns = [
                compiler.column(resolve_path(self.model, name))
                for name in self._values[0]
            ]
        else:
            columns = [compiler.table.c[f.column] for f in meta.fields]
        stmt = sa.select(*columns)
        if where is not None:
            stmt = stmt.where(where)
        if kind != "count":
            order = []
            for path, descending in self._ordering():
                column = compiler.column(path)
                order.append(column.desc() if descending else column.asc())
            if order:
                stmt = stmt.order_by(*order)
        if self._distinct:
            stmt = stmt.distinct()
        if self._low or self._high is not None:
            # A literal, not a parameter (SQLite's compiler would add one).
            stmt = stmt.offset(sa.literal_column(str(int(self._low))))
        if self._high is not None:
            stmt = stmt.limit(sa.literal_column(str(int(self._high - self._low))))
        stmt = stmt.select_from(compiler.from_clause)
        if kind == "count":
            return sa.select(sa.func.count()).select_from(stmt.subquery())
        return stmt

    def _sql(self, conn: DatabaseWrapper, kind: str) -> tuple[str, list[t.Any]]:
        """Return the SQL and parameters, compiling only new query shapes.

        # PERF: the SQL of a query depends on its shape (names, lookups,
        # ordering, slicing), not on its values; it is compiled once per shape
        # and vendor, and later queries of the same shape only compute their
        # parameters.
        """
        key = (
            kind,
            conn.vendor,
            tuple(_shape(node) for node in self._where),
            tuple((path.key, desc) for path, desc in self._ordering()),
            self._low,
            self._high,
            self._distinct,
            self._values,
        )
        cache = self.model._meta._query_cache
        params: dict[str, t.Any] = {}
        entry = cache.get(key)
        if entry is None:
            compiler = _Compiler(self.model, conn.vendor, params)
            compiled = self._statement(compiler, kind).compile(
                dialect=conn.dialect, compile_kwargs={"render_postcompile": True}
            )
            names = tuple(compiled.positiontup or ())
            if len(cache) >= _MAX_CACHED_QUERIES:
                cache.clear()
            cache[key] = (compiled.string, names)
            values = compiled.params
            return compiled.string, [values[name] for name in names]
        sql, names = entry
        walker = _ParamWalker(conn.vendor, params)
        for node in self._where:
            walker.where(node)
        return sql, [params[name] for name in names]

    def _fetch_all(self) -> list[t.Any]:
        if self._result_cache is None:
            self._result_cache = self._run()
        return self._result_cache

    def _run(self) -> list[t.Any]:
        if self._empty or (self._high is not None and self._high <= self._low):
            return []
        conn = connections[self.db]
        sql, params = self._sql(conn, "select")
        rows = conn.fetchall(sql, params)
        if self._values is None:
            return rows_to_instances(self.model, rows, conn)
        names, kind = self._values
        convs = []
        for index, name in enumerate(names):
            field = resolve_path(self.model, name).field
            if field.is_relation:
                field = field.target_field
            conv = field.python_converter(conn.vendor)
            if conv is not None:
                convs.append((index, conv))
        converted = []
        for row in rows:
            values = list(row)
            for index, conv in convs:
                if values[index] is not None:
                    values[index] = conv(values[index])
            converted.append(values)
        if kind == "dict":
            return [dict(zip(names, values, strict=True)) for values in converted]
        if kind == "flat":
            return [values[0] for values in converted]
        return [tuple(values) for values in converted]

    def __iter__(self) -> cabc.Iterator[t.Any]:
        return iter(self._fetch_all())

    def iterator(self) -> cabc.Iterator[t.Any]:
        """Iterate over the results without caching them on the queryset."""
        return iter(self._run() if self._result_cache is None else self._result_cache)

    def __len__(self) -> int:
        return len(self._fetch_all())

    def __bool__(self) -> bool:
        return bool(self._fetch_all())

    def __getitem__(self, key: int | slice) -> t.Any:
        if isinstance(key, slice):
            if key.step not in (None, 1):
                raise ValueError("Querysets do not support slice steps.")
            start, stop = key.start or 0, key.stop
            if start < 0 or (stop is not None and stop < 0):
                raise ValueError("Negative indexing is not supported on querysets.")
            if self._result_cache is not None:
                return self._result_cache[key]
            clone = self._clone()
            clone._low = self._low + start
            if stop is not None:
                high = self._low + stop
                clone._high = high if self._high is None else min(self._high, high)
            elif self._high is not None:
                clone._high = self._high
            if clone._high is not None and clone._high < clone._low:
                clone._high = clone._low
            return clone
        if not isinstance(key, int) or isinstance(key, bool):
            raise TypeError(f"Querysets are indexed by ints or slices, not {key!r}.")
        if key < 0:
            raise ValueError("Negative indexing is not supported on querysets.")
        if self._result_cache is not None:
            return self._result_cache[key]
        found = list(self[key : key + 1])
        if not found:
            raise IndexError(f"queryset index {key} out of range")
        return found[0]

    def get(self, *args: Q, **kwargs: t.Any) -> M:
        """Return the one instance matching the conditions.

        :raises Model.DoesNotExist: nothing matches.
        :raises Model.MultipleObjectsReturned: more than one row matches.
        """
        model = self.model
        if (
            not args
            and len(kwargs) == 1
            and not self._where
            and not self._empty
            and self._values is None
            and not self._low
            and self._high is None
        ):
            ((key, value),) = kwargs.items()
            found = _get_by_key(model, self.db, key, value)
            if found is not _NOT_A_PK:
                return t.cast(M, found)
        clone = self.filter(*args, **kwargs) if (args or kwargs) else self._clone()
        clone._order_by = ()
        clone._high = clone._low + 2
        results = list(clone)
        if not results:
            raise model.DoesNotExist(
                f"{model._meta.object_name} matching query does not exist."
            )
        if len(results) > 1:
            raise model.MultipleObjectsReturned(
                f"get() returned more than one {model._meta.object_name}."
            )
        return t.cast(M, results[0])

    def count(self) -> int:
        """Return the number of matching rows."""
        if self._result_cache is not None:
            return len(self._result_cache)
        if self._empty:
            return 0
        conn = connections[self.db]
        sql, params = self._sql(conn, "count")
        return int(conn.fetchall(sql, params)[0][0])

    def exists(self) -> bool:
        """Return whether any row matches."""
        if self._result_cache is not None:
            return bool(self._result_cache)
        if self._empty:
            return False
        conn = connections[self.db]
        clone = self._clone()
        clone._values = None
        clone._order_by = ()
        if clone._high is None or clone._high - clone._low > 1:
            clone._high = clone._low + 1
        sql, params = clone._sql(conn, "exists")
        return bool(conn.fetchall(sql, params))

    def first(self) -> M | None:
        """Return the first instance (by the ordering, else the pk), or None."""
        qs = self if self._ordering() else self.order_by("pk")
        for obj in qs[:1]:
            return t.cast(M, obj)
        return None

    def last(self) -> M | None:
        """Return the last instance (by the ordering, else the pk), or None."""
        qs = (self if self._ordering() else self.order_by("pk")).reverse()
        for obj in qs[:1]:
            return t.cast(M, obj)
        return None

    def in_bulk(
        self, id_list: cabc.Iterable[t.Any] | None = None, *, field_name: str = "pk"
    ) -> dict[t.Any, M]:
        """Return ``{value: instance}`` for the given values of ``field_name``."""
        qs = self
        if id_list is not None:
            ids = list(id_list)
            if not ids:
                return {}
            qs = self.filter(**{f"{field_name}__in": ids})
        attr = (
            "pk"
            if field_name == "pk"
            else resolve_path(self.model, field_name).field.attname
        )
        return {getattr(obj, attr): obj for obj in qs}

    # Writing --------------------------------------------------------------------------

    def create(self, **kwargs: t.Any) -> M:
        """Create, save and return an instance."""
        obj = self.model(**kwargs)
        obj.save(
            using=self.db,
            force_insert=obj._meta.pk.attname not in kwargs and "pk" not in kwargs,
        )
        return obj

    def get_or_create(
        self, defaults: cabc.Mapping[str, t.Any] | None = None, **kwargs: t.Any
    ) -> tuple[M, bool]:
        """Return ``(instance, created)``, creating it from kwargs and defaults."""
        try:
            return self.get(**kwargs), False
        except self.model.DoesNotExist:
            pass
        params = {k: v for k, v in kwargs.items() if "__" not in k}
        for key, value in (defaults or {}).items():
            params[key] = value() if callable(value) else value
        try:
            with atomic(using=self.db):
                return self.create(**params), True
        except IntegrityError:
            try:
                return self.get(**kwargs), False
            except self.model.DoesNotExist:
                pass
            raise

    def update_or_create(
        self, defaults: cabc.Mapping[str, t.Any] | None = None, **kwargs: t.Any
    ) -> tuple[M, bool]:
        """Update the matching instance with ``defaults``, or create it."""
        with atomic(using=self.db):
            obj, created = self.get_or_create(defaults=defaults, **kwargs)
            if created:
                return obj, True
            for key, value in (defaults or {}).items():
                setattr(obj, key, value() if callable(value) else value)
            obj.save(using=self.db)
        return obj, False

    def bulk_create(
        self, objs: cabc.Iterable[M], batch_size: int | None = None
    ) -> list[M]:
        """Insert many instances in few statements; sends ``post_bulk_create``.

        ``pre_save``/``post_save`` are not sent. Primary keys are set on the
        instances.
        """
        from .bulk import bulk_insert

        objs = list(objs)
        if not objs:
            return objs
        bulk_insert(self.model, objs, connections[self.db], batch_size)
        if _post_bulk_create._records:
            _post_bulk_create.send(sender=self.model, instances=objs, using=self.db)
        return objs

    def update(self, **kwargs: t.Any) -> int:
        """Set fields on every matching row; sends ``post_update``.

        :returns: the number of rows updated.
        """
        from .bulk import update_rows

        if not kwargs:
            raise TypeError("update() needs at least one field=value.")
        self._check_unsliced("update")
        count, pk_set, values = update_rows(
            self, kwargs, _post_update.has_listeners(self.model)
        )
        self._result_cache = None
        if pk_set is not None:
            _post_update.send(
                sender=self.model, pk_set=pk_set, values=values, using=self.db
            )
        return count

    update.alters_data = True  # type: ignore[attr-defined]

    def delete(self) -> tuple[int, dict[str, int]]:
        """Delete every matching row and its dependants (``on_delete``).

        Sends ``pre_delete``/``post_delete`` per instance with ``origin`` this
        queryset.
        """
        from .related import Collector

        self._check_unsliced("delete")
        if self._values is not None:
            raise TypeError("Cannot call delete() after values() or values_list().")
        collector = Collector(self.db, origin=self)
        collector.collect_queryset(self)
        self._result_cache = None
        return collector.delete()

    delete.alters_data = True  # type: ignore[attr-defined]

    def _pk_select(self, conn: DatabaseWrapper) -> t.Any:
        compiler, where = self._compiler(conn)
        pk_column = compiler.table.c[self.model._meta.pk.column]
        stmt = sa.select(pk_column).select_from(compiler.from_clause)
        if where is not None:
            stmt = stmt.where(where)
        return stmt, bool(compiler.joins), where


class Manager(t.Generic[M]):
    """``Model.objects``: the entry point of queries on a model."""

    def __init__(self) -> None:
        self.model: type[M] = t.cast(type[M], None)
        self.name = ""

    def contribute_to_class(self, cls: type[M], name: str) -> None:
        """Install the manager on ``cls`` as ``name``."""
        self.model = cls
        self.name = name
        setattr(cls, name, _ManagerDescriptor(self))

    def __repr__(self) -> str:
        model = self.model.__name__ if self.model is not None else "?"
        return f"<{type(self).__name__} for {model}>"

    def get_queryset(self) -> QuerySet[M]:
        """Return the queryset every manager method starts from."""
        return QuerySet(self.model)

    def get(self, *args: Q, **kwargs: t.Any) -> M:
        """See :meth:`QuerySet.get`."""
        if not args and len(kwargs) == 1 and type(self).get_queryset is _BASE_QS:
            # PERF: get(pk=...) on a plain manager skips building a queryset.
            ((key, value),) = kwargs.items()
            found = _get_by_key(self.model, DEFAULT_DB_ALIAS, key, value)
            if found is not _NOT_A_PK:
                return t.cast(M, found)
        return self.get_queryset().get(*args, **kwargs)

    def all(self) -> QuerySet[M]:
        """See :meth:`QuerySet.all`."""
        return self.get_queryset().all()

    def none(self) -> QuerySet[M]:
        """See :meth:`QuerySet.none`."""
        return self.get_queryset().none()

    def using(self, alias: str) -> QuerySet[M]:
        """See :meth:`QuerySet.using`."""
        return self.get_queryset().using(alias)

    def filter(self, *args: Q, **kwargs: t.Any) -> QuerySet[M]:
        """See :meth:`QuerySet.filter`."""
        return self.get_queryset().filter(*args, **kwargs)

    def exclude(self, *args: Q, **kwargs: t.Any) -> QuerySet[M]:
        """See :meth:`QuerySet.exclude`."""
        return self.get_queryset().exclude(*args, **kwargs)

    def order_by(self, *names: str) -> QuerySet[M]:
        """See :meth:`QuerySet.order_by`."""
        return self.get_queryset().order_by(*names)

    def distinct(self) -> QuerySet[M]:
        """See :meth:`QuerySet.distinct`."""
        return self.get_queryset().distinct()

    def reverse(self) -> QuerySet[M]:
        """See :meth:`QuerySet.reverse`."""
        return self.get_queryset().reverse()

    def values(self, *fields: str) -> QuerySet[M]:
        """See :meth:`QuerySet.values`."""
        return self.get_queryset().values(*fields)

    def values_list(self, *fields: str, flat: bool = False) -> QuerySet[M]:
        """See :meth:`QuerySet.values_list`."""
        return self.get_queryset().values_list(*fields, flat=flat)

    def create(self, **kwargs: t.Any) -> M:
        """See :meth:`QuerySet.create`."""
        return self.get_queryset().create(**kwargs)

    def get_or_create(
        self, defaults: cabc.Mapping[str, t.Any] | None = None, **kwargs: t.Any
    ) -> tuple[M, bool]:
        """See :meth:`QuerySet.get_or_create`."""
        return self.get_queryset().get_or_create(defaults, **kwargs)

    def update_or_create(
        self, defaults: cabc.Mapping[str, t.Any] | None = None, **kwargs: t.Any
    ) -> tuple[M, bool]:
        """See :meth:`QuerySet.update_or_create`."""
        return self.get_queryset().update_or_create(defaults, **kwargs)

    def bulk_create(
        self, objs: cabc.Iterable[M], batch_size: int | None = None
    ) -> list[M]:
        """See :meth:`QuerySet.bulk_create`."""
        return self.get_queryset().bulk_create(objs, batch_size)

    def count(self) -> int:
        """See :meth:`QuerySet.count`."""
        return self.get_queryset().count()

    def exists(self) -> bool:
        """See :meth:`QuerySet.exists`."""
        return self.get_queryset().exists()

    def first(self) -> M | None:
        """See :meth:`QuerySet.first`."""
        return self.get_queryset().first()

    def last(self) -> M | None:
        """See :meth:`QuerySet.last`."""
        return self.get_queryset().last()

    def in_bulk(
        self, id_list: cabc.Iterable[t.Any] | None = None, *, field_name: str = "pk"
    ) -> dict[t.Any, M]:
        """See :meth:`QuerySet.in_bulk`."""
        return self.get_queryset().in_bulk(id_list, field_name=field_name)

    def update(self, **kwargs: t.Any) -> int:
        """See :meth:`QuerySet.update`."""
        return self.get_queryset().update(**kwargs)

    def delete(self) -> tuple[int, dict[str, int]]:
        """See :meth:`QuerySet.delete`."""
        return self.get_queryset().delete()

    def iterator(self) -> cabc.Iterator[t.Any]:
        """See :meth:`QuerySet.iterator`."""
        return self.get_queryset().iterator()


class _ManagerDescriptor:
    def __init__(self, manager: Manager[t.Any]) -> None:
        self.manager = manager

    def __get__(self, instance: t.Any, owner: type) -> Manager[t.Any]:
        if instance is not None:
            raise AttributeError(
                f"Manager isn't accessible via {owner.__name__} instances; use"
                f" {owner.__name__}.{self.manager.name}."
            )
        return self.manager


def check_values(model: type[Model], values: cabc.Mapping[str, t.Any]) -> None:
    """Raise ValidationError unless every value suits its concrete field."""
    errors: dict[str, list[str]] = {}
    for name, value in values.items():
        field = model._meta.get_field(name)
        try:
            if value is None:
                if not field.null:
                    raise ValueError("cannot be None (the field is not null=True)")
            else:
                field.clean(
                    _pk_of(value)
                ) if not field.is_relation else field.target_field.clean(_pk_of(value))
        except ValueError as exc:
            errors.setdefault(f"{model._meta.object_name}.{name}", []).append(str(exc))
    if errors:
        raise ValidationError(errors)


_BASE_QS: t.Final = Manager.get_queryset
