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
from .fields import DecimalField
from .fields import convert_values
from .fields import text_storable
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
            if not isinstance(arg, Q | tuple) and not _is_condition(arg):
                raise TypeError(
                    "Q() takes Q objects, boolean expressions (Exists) or keyword"
                    f" conditions, got {arg!r}."
                )
        self.children: list[t.Any] = [*args, *sorted(kwargs.items())]
        self.connector = _connector
        self.negated = _negated

    def __repr__(self) -> str:
        inner = f" {self.connector} ".join(repr(c) for c in self.children)
        return f"<Q: {'NOT ' if self.negated else ''}({inner})>"

    def _combine(self, other: Q, connector: str) -> Q:
        if _is_condition(other):
            other = Q(other)
        if not isinstance(other, Q):
            raise TypeError(f"Cannot combine a Q with {other!r}.")
        return Q(self, other, _connector=connector)

    def __and__(self, other: Q) -> Q:
        return self._combine(other, self.AND)

    def __or__(self, other: Q) -> Q:
        return self._combine(other, self.OR)

    def __invert__(self) -> Q:
        return Q(self, _negated=True)


# PERF: "value.__class__ in _NODE_TYPES" is how the per-query paths tell an
# expression from a plain value: a set lookup, cheaper than isinstance().
_RESOLVABLE_TYPES: set[type] = set()
_NODE_TYPES: set[type] = set()


class Resolvable:
    """Base of the query expressions of :mod:`.expressions` (``F``, ``Count`` ...).

    An expression is resolved against a queryset's model when it is passed
    to ``filter()``, ``annotate()``, ``aggregate()`` or ``update()``: names are
    checked then, and the result is a :class:`Node`.
    """

    __slots__ = ()
    conditional: t.ClassVar[bool] = False
    """True for expressions usable as a condition on their own (``Exists``)."""
    plain: bool = False
    """True for a constant of no stated type (``Value(3)``): compared with or
    assigned to a field, its ``value`` is that field's value, checked by it."""

    def __init_subclass__(cls, **kwargs: t.Any) -> None:
        super().__init_subclass__(**kwargs)
        _RESOLVABLE_TYPES.add(cls)

    def resolve(self, ctx: _Context) -> Node:
        """Return the node of this expression for the query described by ``ctx``.

        :raises FieldError: an unknown name, or an expression used where it
            cannot be (an aggregate in ``filter()``).
        """
        raise NotImplementedError


class Node:
    """A resolved expression: its SQL for one query shape, and its parameters.

    ``compile()`` and ``walk()`` must number parameters the same way (see
    :class:`_ParamWalker`); ``shape()`` is everything the SQL depends on.
    """

    __slots__ = ()
    output: t.Any = None
    """The field describing the values (for conversion), or None."""
    nullable: bool = True
    needs_group: bool = False
    """True when the node holds an aggregate computed by this query's GROUP BY."""
    has_aggregate: bool = False
    """True when the node holds an aggregate (grouped or in a subquery)."""

    def __init_subclass__(cls, **kwargs: t.Any) -> None:
        super().__init_subclass__(**kwargs)
        _NODE_TYPES.add(cls)

    def shape(self) -> t.Hashable:
        """Return what decides the SQL of this node (never its values)."""
        raise NotImplementedError

    def compile(self, compiler: _Compiler) -> t.Any:
        """Return the SQLAlchemy expression, taking parameters in walk order."""
        raise NotImplementedError

    def walk(self, walker: _ParamWalker) -> None:
        """Compute the parameters exactly as :meth:`compile` numbers them."""

    def bind(self, ctx: _Context, level: int) -> Node:
        """Return this node with the ``OuterRef`` of depth ``level`` resolved."""
        return self

    def paths(self) -> cabc.Iterator[t.Any]:
        """Yield the field paths the node reads."""
        return iter(())


def _is_condition(value: t.Any) -> bool:
    return isinstance(value, Resolvable) and value.conditional


class _Context(t.NamedTuple):
    """What an expression is resolved for."""

    model: type[Model]
    annotations: cabc.Mapping[str, t.Any]
    purpose: str
    """``filter``, ``annotate``, ``group`` (after values()), ``aggregate``,
    ``wrapped`` (aggregate over an annotated queryset) or ``update``."""
    in_aggregate: bool = False


class _ExprTarget:
    """The "field" of a condition on an annotation or a boolean expression."""

    __slots__ = ("annotation", "model", "name", "node")
    is_relation: t.ClassVar[bool] = False
    many_to_one: t.ClassVar[bool] = False
    many_to_many: t.ClassVar[bool] = False
    primary_key: t.ClassVar[bool] = False
    null: t.ClassVar[bool] = True

    def __init__(self, node: Node, annotation: str | None, model: type[Model]) -> None:
        self.node = node
        self.annotation = annotation
        self.model = model
        self.name = annotation or repr(node)

    def can_hold(self, value: t.Any) -> bool:
        """Return False for text no database can compare (see Field.can_hold)."""
        return not isinstance(value, str) or text_storable(value)

    def get_db_prep_value(self, value: t.Any, vendor: str) -> t.Any:
        """Prepare a compared value like the annotation's output field would."""
        output = self.node.output
        if output is None or value is None:
            return value
        prepped = output.get_db_prep_value(value, vendor)
        if vendor == "sqlite" and isinstance(output, DecimalField):
            # NOTE: an expression has no column affinity on SQLite: a decimal
            # sent as text would compare as text, greater than every number.
            return float(prepped)
        return prepped


def _annotation_path(
    model: type[Model], key: str, annotations: cabc.Mapping[str, t.Any]
) -> _Path | None:
    """Return the path of ``key`` when it names an annotation (plus a lookup)."""
    name, lookup = key, "exact"
    if name not in annotations:
        name, _, lookup = key.rpartition("__")
        if name not in annotations:
            return None
        if lookup not in LOOKUPS:
            raise FieldError(
                f"Unsupported lookup {lookup!r} for the annotation {name!r}."
                f" Choices are: {', '.join(sorted(LOOKUPS))}."
            )
    return _Path((), _ExprTarget(annotations[name], name, model), lookup, key)


_EXPRESSION_LOOKUPS: t.Final = frozenset({"exact", "gt", "gte", "lt", "lte"})


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


def _resolve_q(
    model: type[Model],
    q: Q,
    annotations: cabc.Mapping[str, t.Any] | None = None,
    purpose: str = "filter",
) -> tuple[str, bool, list[t.Any]]:
    children: list[t.Any] = []
    for child in q.children:
        if child.__class__ is not tuple:
            if isinstance(child, Q):
                children.append(_resolve_q(model, child, annotations, purpose))
                continue
            node = child.resolve(_Context(model, annotations or {}, purpose))
            children.append(
                (_Path((), _ExprTarget(node, None, model), "exact", ""), True)
            )
        else:
            key, value = child
            path = (annotations and _annotation_path(model, key, annotations)) or (
                resolve_path(model, key)
            )
            expression = value.__class__ in _RESOLVABLE_TYPES
            if expression and value.plain:
                value, expression = value.value, False
            if expression:
                if path.lookup not in _EXPRESSION_LOOKUPS:
                    raise FieldError(
                        f"{key!r}: the {path.lookup!r} lookup cannot compare with"
                        f" an expression ({value!r}); use exact, gt, gte, lt or lte."
                    )
                node = t.cast(Resolvable, value).resolve(
                    _Context(model, annotations or {}, purpose)
                )
                children.append((path, node))
            else:
                children.append(_storable(path, _check_value(path, value)))
    return (q.connector, q.negated, children)


_ORDERED: t.Final = frozenset({"gt", "gte", "lt", "lte"})


def _storable(path: _Path, value: t.Any) -> tuple[_Path, t.Any]:
    """Rewrite a condition on a value no row can hold (see ``Field.can_hold``).

    Such a value matches nothing (``exact``, the text lookups) or is left out
    of an ``in`` list, instead of failing in the driver (PostgreSQL refuses
    NUL; no driver encodes a lone surrogate; SQLite overflows past 64 bits):
    ``get(pk=2**63)`` is a ``DoesNotExist``, ``filter(name="a\x00")`` is empty.
    An integer beyond the range makes ``gt``/``lt`` match every row or none.
    """
    lookup = path.lookup
    field = path.field
    if lookup == "exact":
        if value is None or field.can_hold(value):
            return path, value
        return path._replace(lookup="in"), []
    if lookup == "in":
        if all(item is None or field.can_hold(item) for item in value):
            return path, value
        return path, [item for item in value if item is None or field.can_hold(item)]
    if lookup in _TEXT_LOOKUPS:
        if isinstance(value, str) and not text_storable(value):
            return path._replace(lookup="in"), []
        return path, value
    if lookup in _ORDERED and type(value) is int and not field.can_hold(value):
        target = field.target_field if field.is_relation else field
        above = value > target.max_value
        if above == lookup.startswith("g"):
            return path._replace(lookup="in"), []
        return path._replace(lookup="isnull"), False
    return path, value


def _check_value(path: _Path, value: t.Any) -> t.Any:
    if path.lookup == "in":
        if isinstance(value, str | bytes) or not isinstance(value, cabc.Iterable):
            raise ValueError(
                f"The value of {path.key!r} must be an iterable, got {value!r}."
            )
        value = list(value)
        for item in value:
            _check_instance(path, item)
        return value
    _check_instance(path, value)
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


def _check_instance(path: _Path, value: t.Any) -> None:
    """Refuse an instance of another model where a key is compared (as Django).

    ``filter(author=publisher)`` would otherwise compare the publisher's key
    with the authors' keys.
    """
    if not isinstance(value, Model) or path.field.__class__ is _ExprTarget:
        return
    field = path.field.target_field if path.field.is_relation else path.field
    expected = field.model
    if expected is not None and not isinstance(value, expected._meta.concrete_model):
        raise ValueError(
            f"Cannot compare {path.key!r} with {value!r}: it must be a"
            f" {expected.__name__} instance (or its key), not"
            f" {type(value).__name__}."
        )


def _shape(node: tuple[str, bool, list[t.Any]]) -> t.Hashable:
    """Return what decides the SQL of a condition tree (not its values)."""
    connector, negated, children = node
    parts: list[t.Hashable] = []
    for child in children:
        if isinstance(child[0], str):
            parts.append(_shape(child))
            continue
        path, value = child
        if value.__class__ in _NODE_TYPES or path.field.__class__ is _ExprTarget:
            parts.append(_expression_shape(path, value))
            continue
        if path.lookup == "in":
            kind: t.Hashable = sum(1 for item in value if item is not None)
        elif path.lookup in ("exact", "isnull"):
            kind = value is None if path.lookup == "exact" else bool(value)
        else:
            kind = None
        parts.append((path.key, path.lookup, kind))
    return (connector, negated, tuple(parts))


def _expression_shape(path: _Path, value: t.Any) -> t.Hashable:
    field = path.field
    target = (
        (field.annotation, field.annotation is None and field.node.shape())
        if field.__class__ is _ExprTarget
        else path.key
    )
    lookup = path.lookup
    if isinstance(value, Node):
        kind: t.Hashable = value.shape()
    elif lookup == "in":
        kind = sum(1 for item in value if item is not None)
    elif lookup == "isnull":
        kind = bool(value)
    elif lookup == "exact":
        # None becomes IS NULL; a boolean expression compared with True or
        # False becomes the expression or its negation.
        kind = value if value is None or isinstance(value, bool) else "value"
    else:
        kind = None
    return (target, lookup, kind)


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
        self.table: t.Any = model._meta.table
        self.from_clause: t.Any = self.table
        self.joins: dict[tuple[t.Any, ...], t.Any] = {}
        self.counter = itertools.count(1)
        self.param_counter = itertools.count()
        self.annotations: dict[str, t.Any] = {}
        """The compiled annotations of the query, by name."""
        self.outer: _Compiler | None = None
        """The compiler of the enclosing query, inside a subquery."""
        self.level = True
        """False for the subqueries a condition or an aggregate makes: they
        are not a level of ``OuterRef``."""
        self.multi_joins = False
        """Join multi-valued relations (aggregates of grouped queries)."""
        self.scope: tuple[tuple[t.Any, ...], tuple[t.Any, ...]] | None = None
        """In an aggregate's subquery: the relation steps it covers and the
        steps from its table to the related model; other paths are the
        outer query's."""

    def child(self, model: type[Model]) -> _Compiler:
        """Return a compiler for a subquery on ``model``, numbering with this one."""
        sub = _Compiler(model, self.vendor, self.params)
        sub.counter = self.counter
        sub.param_counter = self.param_counter
        sub.outer = self
        sub.table = sub.from_clause = model._meta.table.alias(
            f"U{next(self.counter)}_{model._meta.db_table}"
        )
        return sub

    def froms(self) -> list[t.Any]:
        """Return the tables of this query and those around it.

        A subquery correlates with all of them explicitly: SQLAlchemy's
        automatic correlation reaches only the query right around it, and an
        ``OuterRef(OuterRef(...))`` reaches further.
        """
        found = [self.table, *self.joins.values()]
        return found if self.outer is None else [*found, *self.outer.froms()]

    def join_multi(self, table: t.Any, step: t.Any) -> t.Any:
        """LEFT JOIN the rows of a multi-valued relation; return the target table."""
        key = (id(table), "multi", id(step))
        alias = self.joins.get(key)
        if alias is None:
            link_model, link_fk, outer_field, inner_steps = step.subquery_plan()
            link_meta = link_model._meta
            alias = link_meta.table.alias(f"T{next(self.counter)}_{link_meta.db_table}")
            self.from_clause = self.from_clause.outerjoin(
                alias, alias.c[link_fk.column] == table.c[outer_field.column]
            )
            for fk in inner_steps:
                alias = self.join(alias, fk)
            self.joins[key] = alias
        return alias

    def _scoped(self, path: _Path) -> _Path | None:
        """Map a path of the outer model into this aggregate subquery, or None."""
        prefix, inner_steps = t.cast(tuple[t.Any, t.Any], self.scope)
        if path.steps[: len(prefix)] != prefix:
            return None
        return path._replace(steps=(*inner_steps, *path.steps[len(prefix) :]))

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
        field = path.field
        if field.__class__ is _ExprTarget:
            if field.annotation is not None:
                return self.annotations[field.annotation]
            return field.node.compile(self)
        if self.scope is not None:
            scoped = self._scoped(path)
            if scoped is None:
                return t.cast(_Compiler, self.outer).column(path)
            path = scoped
        table = self.table
        for step in path.steps:
            if _is_forward(step):
                table = self.join(table, step)
            elif self.multi_joins:
                table = self.join_multi(table, step)
            else:
                raise FieldError(
                    f"{path.key!r} spans the multi-valued relation {step.name!r};"
                    " only forward foreign keys can be used here."
                )
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
        if path.field.__class__ is _ExprTarget:
            if self.scope is not None:
                return t.cast(_Compiler, self.outer).condition(path, value)
            return _target_condition(self, path, value)
        if self.scope is not None and table is None:
            scoped = self._scoped(path)
            if scoped is None:
                return t.cast(_Compiler, self.outer).condition(path, value)
            path = scoped
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
            if self.multi_joins:
                table = self.join_multi(table, step)
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
        sub = self.child(link_model)
        sub.level = False
        inner = sub.condition(rest._replace(steps=(*inner_steps, *rest.steps)), value)
        link_column = sub.table.c[link_fk.column]
        select = (
            sa.select(link_column)
            .select_from(sub.from_clause)
            .where(inner, link_column.is_not(None))
            .correlate(*self.froms())
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
                continue
            path, value = child
            field = path.field
            if field.__class__ is _ExprTarget and field.annotation is None:
                field.node.walk(self)
            _leaf_params(self, path, value)
            if value.__class__ in _NODE_TYPES:
                t.cast(Node, value).walk(self)


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
    if value.__class__ in _NODE_TYPES:
        return name
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


def _target_condition(compiler: _Compiler, path: _Path, value: t.Any) -> t.Any:
    """Compile a condition on an annotation or on a boolean expression."""
    column = compiler.column(path)
    output = path.field.node.output
    if (
        path.lookup == "exact"
        and isinstance(value, bool)
        and output is not None
        and output.python_types == (bool,)
    ):
        _leaf_params(compiler, path, value)
        return column if value else sa.not_(column)
    return _null_safe(_leaf(compiler, column, path, value), column, path)


def _compare(column: t.Any, lookup: str, other: t.Any) -> t.Any:
    if lookup == "exact":
        return column == other
    if lookup == "gt":
        return column > other
    if lookup == "gte":
        return column >= other
    if lookup == "lt":
        return column < other
    return column <= other


def _leaf(compiler: _Compiler, column: t.Any, path: _Path, value: t.Any) -> t.Any:
    name = _leaf_params(compiler, path, value)
    if isinstance(value, Node):
        # The expression names fields of the queryset's model: compile it in
        # that query, not in the subquery of a multi-valued lookup
        # (books__pages__gt=F("age") compares with the author's age).
        owner = compiler
        while not owner.level and owner.scope is None and owner.outer is not None:
            owner = owner.outer
        other = value.compile(owner)
        expr = _compare(column, path.lookup, other)
        return sa.and_(expr, other.is_not(None)) if value.nullable else expr
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
    return _compare(column, lookup, sa.bindparam(name, params[name], type_=col_type))


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
        pk_field: t.Any = meta.pk
        bounds = (pk_field.min_value, pk_field.max_value) if int_pk else None
        cached = (compile_sql(stmt, conn.dialect)[0], bounds)
        meta._sql_cache[key] = cached
    # The cache holds the SELECT of every column (in field order, as
    # rows_to_instances expects) by "pk = ?", compiled once per vendor, and
    # the range of a built-in integer key (inline-checkable), else None.
    sql, bounds = cached
    # PERF: an int for an integer key needs no conversion, only a range check.
    if type(pk) is int and bounds is not None:
        if not bounds[0] <= pk <= bounds[1]:
            return None  # no row can have it (the driver could overflow)
    else:
        if not meta.pk.can_hold(_pk_of(pk)):
            return None
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
