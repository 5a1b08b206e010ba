"""The query compiler: lookups, ``Q``, name resolution, SQL and row loading.

Conditions are resolved once, when a queryset is built (every field name
and lookup checked, :class:`FieldError` raised before any SQL); SQL is built
with SQLAlchemy Core per query *shape* and cached by :mod:`.query`; values
always travel as bound parameters named ``p<n>``.

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

from ..dispatch import Sentinel
from .db import compile_sql
from .db import connections
from .exceptions import FieldError
from .exceptions import ValidationError
from .fields import convert_values
from .models import Model
from .models import ModelState

if t.TYPE_CHECKING:
    from .db import DatabaseWrapper

__all__ = [
    "LOOKUPS",
    "Q",
    "check_values",
    "get_by_pk",
    "resolve_path",
    "rows_to_instances",
]

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
    if field.is_relation and not _is_forward(field):
        # Ends on a multi-valued (or reverse) relation: compare the related primary key.
        steps.append(field)
        field = field.related_model._meta.pk
    return _Path(tuple(steps), field, lookup, key)


def _is_forward(field: t.Any) -> bool:
    """Return whether ``field`` is a forward foreign key or one-to-one (a column)."""
    return bool(getattr(field, "concrete", False) and field.is_relation)


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
            kind: t.Hashable = sum(1 for item in value if item is not None)
        elif path.lookup in ("exact", "isnull"):
            kind = value is None if path.lookup == "exact" else bool(value)
        else:
            kind = None
        parts.append((path.key, path.lookup, kind))
    return (connector, negated, tuple(parts))


# Compiling ------------------------------------------------------------


def _pk_of(value: t.Any, field: t.Any = None) -> t.Any:
    """Return the key an instance stands for: its primary key, or ``field``'s value.

    ``field`` is the field a relation points at (``ForeignKey(to_field=...)``).
    """
    if isinstance(value, Model):
        if field is not None and isinstance(value, field.model):
            key = value.__dict__[field.attname]
        else:
            key = value.pk
        if key is None:
            raise ValueError(
                f"Cannot filter on the unsaved {type(value).__name__} {value!r}."
            )
        return key
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
            if not _is_forward(step):
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
            if _is_forward(step):
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
    """Computes the parameters of a cached statement, like _Compiler would.

    # PERF: a query whose shape was compiled before skips SQLAlchemy
    # entirely: ``QuerySet._sql`` takes the cached ``(sql, names)`` and this
    # walker fills ``params`` by visiting the conditions in the compiler's
    # order, through the same :func:`_leaf_params` (so ``p0``, ``p1_1``,
    # ``p2a`` ... get the same names and the same prepared values). For
    # ``filter(score=3, name__startswith="n")`` the cached SQL is ``... WHERE
    # item.score = ? AND item.name LIKE ? ESCAPE '/'`` with names ``("p0",
    # "p1")``, and the walker yields ``{"p0": 3, "p1": "n%"}``. Anything that
    # changes which parameters exist (the number of ``in`` values, ``None``
    # in ``exact``) is part of the shape (:func:`_shape`), so a cached SQL
    # always matches the walker's names.
    """

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
    value = _pk_of(value, field)
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
    """Compute the bind parameters of one condition; return their base name.

    Shared by :class:`_Compiler` (first query of a shape) and
    :class:`_ParamWalker` (every later one): the one place that numbers and
    prepares values, so the two can never disagree.
    """
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
        if "\x00" in text:
            raise ValueError(
                f"Invalid value for {path.key!r}: contains a NUL character (\\x00),"
                " which text columns cannot hold"
            )
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
    if model.from_db.__func__ is not _BASE_FROM_DB:  # type: ignore[attr-defined]
        from_db = model.from_db
        if convs:
            return [from_db(alias, convert_values(row, convs)) for row in rows]
        return [from_db(alias, row) for row in rows]
    # PERF: Model.from_db and convert_values inlined; the signal checks are
    # hoisted out of the loop. Instances are made with object.__new__ and
    # their __dict__ filled from the row (the attnames in field order), which
    # is what from_db() would do, without one call per row; a model that
    # overrides from_db takes the plain path above.
    attnames = (model._meta._init_cache or model._meta.init_cache())[3]
    new = object.__new__
    pre_init = signals.pre_init if signals.pre_init.connected else None
    post_init = signals.post_init if signals.post_init.connected else None
    result = []
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
        int_pk = meta.pk._fast_check("v") is not None and meta.pk.python_types == (int,)
        cached = (compile_sql(stmt, conn.dialect)[0], int_pk)
        meta._sql_cache[key] = cached
    # The cache holds the SELECT of every column (in field order, as
    # rows_to_instances expects) by "pk = ?", compiled once per vendor, and
    # whether the key is a built-in integer field (inline-checkable).
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


_NOT_A_PK: t.Final = Sentinel("_NOT_A_PK")


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
                target = field.target_field if field.is_relation else field
                target.clean(_pk_of(value, target))
        except ValueError as exc:
            errors.setdefault(f"{model._meta.object_name}.{name}", []).append(str(exc))
    if errors:
        raise ValidationError(errors)
