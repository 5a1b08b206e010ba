"""Query expressions: ``F``, ``Value``, arithmetic, aggregates and subqueries.

Expressions are built by the user and passed to ``filter()``, ``annotate()``,
``aggregate()`` and ``update()``. Each is *resolved* against the queryset's
model when it is passed (every name checked, the result type inferred,
:class:`FieldError` or :class:`TypeError` raised before any SQL) into a
:class:`~._compiler.Node` that builds SQLAlchemy Core for one query shape
and computes its parameters the way :class:`~._compiler._ParamWalker` does
for conditions, so the SQL stays compiled once per shape.

Aggregates over a multi-valued relation (``Count("books")``) become a
correlated subquery in ``annotate()``: rows never repeat and several such
annotations never multiply each other. After ``values()`` (grouping) and in
``aggregate()`` they join the relation, as in Django.
"""

from __future__ import annotations

import collections.abc as cabc
import datetime
import decimal
import typing as t

import sqlalchemy as sa

from . import fields as _fields
from ._compiler import Node
from ._compiler import Q
from ._compiler import Resolvable
from ._compiler import _Compiler
from ._compiler import _Context
from ._compiler import _ExprTarget
from ._compiler import _is_forward
from ._compiler import _ParamWalker
from ._compiler import _Path
from ._compiler import _resolve_q
from ._compiler import _shape
from ._compiler import resolve_path
from .exceptions import FieldError

if t.TYPE_CHECKING:
    from .models import Model
    from .query import QuerySet

__all__ = [
    "Aggregate",
    "Avg",
    "CombinedExpression",
    "Count",
    "Exists",
    "Expression",
    "ExpressionWrapper",
    "F",
    "Max",
    "Min",
    "OuterRef",
    "Subquery",
    "Sum",
    "Value",
]

_ARITHMETIC: t.Final = frozenset({"+", "-", "*", "/", "%"})


def _arithmetic(
    op: str, reverse: bool = False
) -> cabc.Callable[[Expression, t.Any], CombinedExpression]:
    """Return the method of the operator ``op`` (``reverse``: the ``__r*__`` one)."""

    def method(self: Expression, other: t.Any) -> CombinedExpression:
        return self._combine(other, op, reverse)

    return method


class Expression(Resolvable):
    """Base of the expressions; they combine with ``+ - * / %``.

    Plain numbers on either side become :class:`Value`: ``F("price") * 2``,
    ``100 - F("stock")``.
    """

    __slots__ = ()

    def _combine(self, other: t.Any, op: str, reverse: bool) -> CombinedExpression:
        if not isinstance(other, Expression):
            other = Value(other)
        if reverse:
            return CombinedExpression(other, op, self)
        return CombinedExpression(self, op, other)

    __add__ = _arithmetic("+")
    __radd__ = _arithmetic("+", reverse=True)
    __sub__ = _arithmetic("-")
    __rsub__ = _arithmetic("-", reverse=True)
    __mul__ = _arithmetic("*")
    __rmul__ = _arithmetic("*", reverse=True)
    __truediv__ = _arithmetic("/")
    __rtruediv__ = _arithmetic("/", reverse=True)
    __mod__ = _arithmetic("%")
    __rmod__ = _arithmetic("%", reverse=True)

    def __neg__(self) -> CombinedExpression:
        return CombinedExpression(self, "*", Value(-1))

    def _condition(self) -> Q:
        if self.conditional:
            return Q(self)
        raise TypeError(
            f"{self!r} is not a condition: only Q objects and boolean expressions"
            " (Exists) combine with &, | and ~."
        )

    def __and__(self, other: t.Any) -> Q:
        return self._condition().__and__(other)

    def __or__(self, other: t.Any) -> Q:
        return self._condition().__or__(other)

    @property
    def default_alias(self) -> str | None:
        """The name ``annotate()``/``aggregate()`` give it when passed by position."""
        return None


class F(Expression):
    """A reference to a field (``F("price")``, ``F("author__name")``) or annotation.

    :param name: a field name, relations spanned with ``__``, or the name of
        an earlier annotation.
    """

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        if not isinstance(name, str) or not name:
            raise TypeError(f"F() takes a field name, got {name!r}.")
        self.name = name

    def __repr__(self) -> str:
        return f"F({self.name!r})"

    def resolve(self, ctx: _Context) -> Node:
        """Resolve the name against the model (annotations first)."""
        node = ctx.annotations.get(self.name)
        if node is not None:
            if node.has_aggregate and ctx.in_aggregate and ctx.purpose != "wrapped":
                raise FieldError(
                    f"Cannot aggregate {self!r}: {self.name!r} is an aggregate"
                    " (aggregate() it over the annotated queryset instead)."
                )
            return _AnnotationRef(self.name, node)
        path = resolve_path(ctx.model, self.name)
        if path.lookup != "exact" or self.name.endswith("__exact"):
            raise FieldError(
                f"{self!r}: F() takes a field name, not a lookup ({path.lookup!r})."
            )
        multi = [step for step in path.steps if not _is_forward(step)]
        if ctx.purpose == "update" and path.steps:
            raise FieldError(
                f"update() cannot use {self!r}: it spans the relation"
                f" {path.steps[0].name!r} (joined field references are not"
                " permitted in update())."
            )
        if multi and not ctx.in_aggregate:
            raise FieldError(
                f"{self!r} spans the multi-valued relation {multi[0].name!r}: wrap it"
                f" in an aggregate (Count, Sum, ...) or filter on it with a lookup."
            )
        if ctx.purpose == "wrapped" and path.steps:
            raise FieldError(
                f"aggregate() over an annotated, sliced or distinct queryset can use"
                f" its fields and annotations only, not {self!r}."
            )
        return _Column(path)


class OuterRef(F):
    """A field of the query around a :class:`Subquery` or :class:`Exists`.

    ``OuterRef(OuterRef("pk"))`` reaches two levels out.
    """

    __slots__ = ("depth",)
    depth: int

    def __init__(self, name: str | OuterRef) -> None:
        depth = 1
        while isinstance(name, OuterRef):
            depth += name.depth
            name = name.name
        super().__init__(name)
        self.depth = depth

    def __repr__(self) -> str:
        inner = repr(self.name)
        for _ in range(self.depth):
            inner = f"OuterRef({inner})"
        return inner

    def resolve(self, ctx: _Context) -> Node:
        """Leave the reference open until the queryset is used in a subquery."""
        return _OpenOuterRef(self.name, self.depth)


class Value(Expression):
    """A constant, sent as a bound parameter (``Value(3)``, ``Value("x")``).

    :param value: the constant.
    :param output_field: the field describing it (inferred from the type).
    """

    __slots__ = ("output_field", "plain", "value")

    def __init__(self, value: t.Any, output_field: _fields.Field | None = None) -> None:
        if isinstance(value, str) and not _fields.text_storable(value):
            raise ValueError(
                f"Value({value!r}) holds a NUL character or a lone surrogate,"
                " which no database can take as text."
            )
        self.value = value
        self.output_field = output_field or _field_for_value(value)
        # Untyped: filter(pages=Value("x")) and update(pages=Value(2**70)) are
        # checked by the field, as a plain value is, not left to the driver.
        self.plain = output_field is None

    def __repr__(self) -> str:
        return f"Value({self.value!r})"

    def resolve(self, ctx: _Context) -> Node:
        """Return the parameter node."""
        return _Param(self.value, self.output_field)


class CombinedExpression(Expression):
    """``lhs <op> rhs`` for the arithmetic operators ``+ - * / %``.

    Integers combine with integers (``/`` is the database's integer
    division), with floats into floats and with decimals into decimals; other
    mixes need :class:`ExpressionWrapper` to state the result's field.
    """

    __slots__ = ("lhs", "op", "rhs")

    def __init__(self, lhs: Expression, op: str, rhs: Expression) -> None:
        if op not in _ARITHMETIC:
            raise ValueError(f"Unknown operator {op!r}; use one of + - * / %.")
        self.lhs = lhs
        self.op = op
        self.rhs = rhs

    def __repr__(self) -> str:
        sides = [
            f"({side!r})" if isinstance(side, CombinedExpression) else repr(side)
            for side in (self.lhs, self.rhs)
        ]
        return f"{sides[0]} {self.op} {sides[1]}"

    def resolve(self, ctx: _Context) -> Node:
        """Resolve both sides and infer the result's field."""
        lhs = self.lhs.resolve(ctx)
        rhs = self.rhs.resolve(ctx)
        return _Combined(lhs, self.op, rhs, _combined_output(self, lhs, rhs))


class ExpressionWrapper(Expression):
    """An expression with the field of its result stated (``output_field``).

    :param expression: the expression.
    :param output_field: a field instance, e.g. ``orm.DecimalField(max_digits=10,
        decimal_places=2)``.
    """

    __slots__ = ("expression", "output_field")

    def __init__(self, expression: Expression, output_field: _fields.Field) -> None:
        if not isinstance(expression, Expression):
            raise TypeError(
                f"ExpressionWrapper() takes an expression, got {expression!r}."
            )
        if not isinstance(output_field, _fields.Field):
            raise TypeError(
                "ExpressionWrapper(output_field=...) takes a field, got"
                f" {output_field!r}."
            )
        self.expression = expression
        self.output_field = output_field

    def __repr__(self) -> str:
        return f"ExpressionWrapper({self.expression!r})"

    def resolve(self, ctx: _Context) -> Node:
        """Resolve the expression with the stated output field."""
        return _Typed(_resolve_untyped(self.expression, ctx), self.output_field)


def _resolve_untyped(expr: Expression, ctx: _Context) -> Node:
    """Resolve arithmetic without inferring types (the caller states them)."""
    if isinstance(expr, CombinedExpression):
        lhs = _resolve_untyped(expr.lhs, ctx)
        rhs = _resolve_untyped(expr.rhs, ctx)
        return _Combined(lhs, expr.op, rhs, None)
    return expr.resolve(ctx)


# Aggregates --------------------------------------------------------------------


class Aggregate(Expression):
    """Base of :class:`Count`, :class:`Sum`, :class:`Avg`, :class:`Min`, :class:`Max`.

    :param expression: a field name (relations spanned with ``__``) or an
        expression.
    :param distinct: aggregate each distinct value once (Count, Sum, Avg).
    :param filter: a :class:`Q`: only the rows matching it count.
    :param default: the result when there are no rows, instead of None.
    """

    __slots__ = ("default", "distinct", "filter", "source")
    function: t.ClassVar[str] = ""
    allow_distinct: t.ClassVar[bool] = False

    def __init__(
        self,
        expression: str | Expression,
        *,
        distinct: bool = False,
        filter: t.Any = None,
        default: t.Any = None,
    ) -> None:
        name = type(self).__name__
        if expression == "*" and not isinstance(self, Count):
            raise TypeError(f"{name}('*') is not allowed; only Count('*') is.")
        if isinstance(expression, str):
            source: Expression | None = None if expression == "*" else F(expression)
        elif isinstance(expression, Expression):
            source = expression
        else:
            raise TypeError(
                f"{name}() takes a field name or an expression, got {expression!r}."
            )
        if distinct and not self.allow_distinct:
            raise TypeError(f"{name} does not allow distinct.")
        if (
            filter is not None
            and not isinstance(filter, Q)
            and not (isinstance(filter, Resolvable) and filter.conditional)
        ):
            raise TypeError(f"{name}(filter=...) takes a Q object, got {filter!r}.")
        if isinstance(default, Aggregate):
            raise TypeError(f"{name}(default=...) cannot be an aggregate.")
        self.source = source
        self.distinct = bool(distinct)
        self.filter = filter
        self.default = default

    def __repr__(self) -> str:
        inner = "'*'" if self.source is None else repr(self.source)
        if isinstance(self.source, F) and not isinstance(self.source, OuterRef):
            inner = repr(self.source.name)
        extra = ", distinct=True" if self.distinct else ""
        extra += f", filter={self.filter!r}" if self.filter is not None else ""
        return f"{type(self).__name__}({inner}{extra})"

    @property
    def default_alias(self) -> str | None:
        """``"<field>__<function>"``, as Django names it (``"books__count"``)."""
        if isinstance(self.source, F):
            return f"{self.source.name}__{type(self).__name__.lower()}"
        return None

    def _output(self, source: Node | None) -> t.Any:
        return source.output if source is not None else _fields.BigIntegerField()

    def _numeric(self, source: Node | None) -> str:
        """Return the numeric kind of ``source``; raise FieldError for others."""
        kind = _numeric_kind(source)
        if kind is None:
            raise FieldError(
                f"{self!r} needs a numeric field; {_describe(source)} is not."
            )
        return kind

    def resolve(self, ctx: _Context) -> Node:
        """Check the aggregate and decide how it is computed for ``ctx``."""
        if ctx.in_aggregate:
            raise FieldError(f"Cannot nest aggregates: {self!r} is inside another one.")
        if ctx.purpose in ("filter", "update"):
            hint = (
                " annotate() them and filter on the annotation."
                if ctx.purpose == "filter"
                else ""
            )
            raise FieldError(
                f"{self!r}: aggregates cannot be used in {ctx.purpose}().{hint}"
            )
        inner = ctx._replace(in_aggregate=True)
        source = None if self.source is None else self.source.resolve(inner)
        output = self._output(source)
        condition = None
        if self.filter is not None:
            q = self.filter if isinstance(self.filter, Q) else Q(self.filter)
            condition = _resolve_q(ctx.model, q, ctx.annotations, "aggregate")
        default = None
        if self.default is not None:
            value = self.default
            default = (
                value.resolve(ctx)
                if isinstance(value, Expression)
                else _Param(value, output if output is not None else None)
            )
        prefix: tuple[t.Any, ...] = ()
        if ctx.purpose == "annotate" and source is not None:
            prefix = _multi_prefix(self, source)
        mode = (
            "subquery" if prefix else ("join" if ctx.purpose != "wrapped" else "inline")
        )
        return _Aggregate(
            self.function,
            source,
            self.distinct,
            condition,
            default,
            output,
            mode,
            prefix,
        )


class Count(Aggregate):
    """The number of rows (``Count("*")``) or of non-NULL values."""

    __slots__ = ()
    function = "count"
    allow_distinct = True

    def _output(self, source: Node | None) -> t.Any:
        return _fields.BigIntegerField()


class Sum(Aggregate):
    """The sum of a numeric field or expression (None when there are no rows)."""

    __slots__ = ()
    function = "sum"
    allow_distinct = True

    def _output(self, source: Node | None) -> t.Any:
        kind = self._numeric(source)
        if kind == "decimal":
            return _target(t.cast(Node, source).output)
        return _NUMERIC_OUTPUTS[kind]()


class Avg(Aggregate):
    """The mean of a numeric field or expression: a float (a Decimal for decimals)."""

    __slots__ = ()
    function = "avg"
    allow_distinct = True

    def _output(self, source: Node | None) -> t.Any:
        kind = self._numeric(source)
        return _AnyDecimalField() if kind == "decimal" else _fields.FloatField()


class Min(Aggregate):
    """The smallest value (numbers, text, dates)."""

    __slots__ = ()
    function = "min"

    def _output(self, source: Node | None) -> t.Any:
        output = t.cast(Node, source).output
        if isinstance(output, _UNORDERED):
            raise FieldError(
                f"{self!r}: {_describe(source)} has no order on every database."
            )
        return output


class Max(Min):
    """The largest value (numbers, text, dates)."""

    __slots__ = ()
    function = "max"


# Subqueries ----------------------------------------------------------------------


class Subquery(Expression):
    """The single value of a queryset, correlated with :class:`OuterRef`.

    ``Subquery(Book.objects.filter(author=OuterRef("pk")).order_by("-pages")
    .values("title")[:1])``; a queryset without ``values()`` selects its
    primary key.
    """

    __slots__ = ("output_field", "queryset")

    def __init__(
        self, queryset: QuerySet[t.Any], output_field: _fields.Field | None = None
    ) -> None:
        from .query import QuerySet

        if not isinstance(queryset, QuerySet):
            raise TypeError(
                f"{type(self).__name__}() takes a queryset, got {queryset!r}."
            )
        self.queryset = queryset
        self.output_field = output_field

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.queryset.model.__name__} queryset)"

    def resolve(self, ctx: _Context) -> Node:
        """Bind the queryset's ``OuterRef`` to ``ctx`` and check its column."""
        qs = self.queryset._clone()
        qs._for_update = None  # rows of a subquery are not locked
        qs._select_related = ()
        if qs._values is None:
            qs._values = (("pk",), "flat")
        names = qs._values[0]
        if len(names) != 1:
            raise TypeError(
                f"Subquery() needs a queryset selecting one column (values('field')),"
                f" not {', '.join(names)}."
            )
        output = self.output_field or _value_output(qs, names[0])
        return _Subquery(_bind_queryset(qs, ctx, 1), False, False, output)


class Exists(Subquery):
    """True when the queryset has a row; a condition on its own.

    ``Author.objects.filter(Exists(Book.objects.filter(author=OuterRef("pk"))))``;
    ``~Exists(...)`` negates it.
    """

    __slots__ = ("negated",)
    conditional = True

    def __init__(self, queryset: QuerySet[t.Any], negated: bool = False) -> None:
        super().__init__(queryset, _fields.BooleanField())
        self.negated = negated

    def __invert__(self) -> Exists:
        return Exists(self.queryset, negated=not self.negated)

    def __repr__(self) -> str:
        return f"{'~' if self.negated else ''}{super().__repr__()}"

    def resolve(self, ctx: _Context) -> Node:
        """Bind the queryset's ``OuterRef`` to ``ctx``."""
        qs = self.queryset._clone()
        qs._values = None
        qs._order_by = ()
        qs._deferred = None
        qs._for_update = None
        qs._select_related = ()
        return _Subquery(
            _bind_queryset(qs, ctx, 1), True, self.negated, self.output_field
        )


# Resolved nodes -----------------------------------------------------------------


class _Column(Node):
    __slots__ = ("nullable", "output", "path")

    def __init__(self, path: _Path) -> None:
        self.path = path
        field = path.field
        self.output = field
        self.nullable = bool(path.steps) or bool(getattr(field, "null", True))

    def __repr__(self) -> str:
        return f"F({self.path.key!r})"

    def shape(self) -> t.Hashable:
        return ("col", self.path.key)

    def compile(self, compiler: _Compiler) -> t.Any:
        return compiler.column(self.path)

    def paths(self) -> cabc.Iterator[t.Any]:
        yield self.path


class _AnnotationRef(Node):
    __slots__ = ("has_aggregate", "name", "needs_group", "node", "nullable", "output")

    def __init__(self, name: str, node: Node) -> None:
        self.name = name
        self.node = node
        self.output = node.output
        self.nullable = node.nullable
        self.needs_group = node.needs_group
        self.has_aggregate = node.has_aggregate

    def __repr__(self) -> str:
        return f"F({self.name!r})"

    def shape(self) -> t.Hashable:
        return ("ann", self.name)

    def compile(self, compiler: _Compiler) -> t.Any:
        return compiler.annotations[self.name]


class _Param(Node):
    __slots__ = ("nullable", "output", "value")

    def __init__(self, value: t.Any, output: t.Any) -> None:
        self.value = value
        self.output = output
        self.nullable = value is None

    def __repr__(self) -> str:
        return f"Value({self.value!r})"

    def shape(self) -> t.Hashable:
        return ("param", type(self.value).__name__, type(self.output).__name__)

    def _prepared(self, vendor: str) -> t.Any:
        value = self.value
        if value is None or self.output is None:
            return value
        convert = self.output.db_converter(vendor)
        if isinstance(value, decimal.Decimal) and vendor == "sqlite":
            return str(value)
        return value if convert is None else convert(value)

    def compile(self, compiler: _Compiler) -> t.Any:
        name = f"p{next(compiler.param_counter)}"
        value = self._prepared(compiler.vendor)
        compiler.params[name] = value
        return sa.bindparam(name, value, type_=_sa_type(self.output))

    def walk(self, walker: _ParamWalker) -> None:
        walker.params[f"p{next(walker.param_counter)}"] = self._prepared(walker.vendor)


class _Combined(Node):
    __slots__ = (
        "has_aggregate",
        "lhs",
        "needs_group",
        "nullable",
        "op",
        "output",
        "rhs",
    )

    def __init__(self, lhs: Node, op: str, rhs: Node, output: t.Any) -> None:
        self.lhs = lhs
        self.op = op
        self.rhs = rhs
        self.output = output
        self.nullable = lhs.nullable or rhs.nullable
        self.needs_group = lhs.needs_group or rhs.needs_group
        self.has_aggregate = lhs.has_aggregate or rhs.has_aggregate

    def __repr__(self) -> str:
        return f"{self.lhs!r} {self.op} {self.rhs!r}"

    def shape(self) -> t.Hashable:
        return (
            "op",
            self.op,
            self.lhs.shape(),
            self.rhs.shape(),
            _output_key(self.output),
        )

    def compile(self, compiler: _Compiler) -> t.Any:
        lhs = self.lhs.compile(compiler)
        rhs = self.rhs.compile(compiler)
        if self.op == "/":
            # NOTE: the database's own division (integer for integers, as in
            # Django); SQLAlchemy's "/" would cast integers to NUMERIC. SQLite
            # stores 30.00 as the integer 30: make decimal division real.
            if compiler.vendor == "sqlite" and _numeric_kind(self) != "int":
                lhs = sa.cast(lhs, sa.Float)
            expr = lhs.op("/", return_type=_sa_type(self.output))(rhs).self_group()
        elif self.op == "+":
            expr = lhs + rhs
        elif self.op == "-":
            expr = lhs - rhs
        elif self.op == "*":
            expr = lhs * rhs
        else:
            expr = lhs % rhs
        return sa.type_coerce(expr, _sa_type(self.output)).self_group()

    def walk(self, walker: _ParamWalker) -> None:
        self.lhs.walk(walker)
        self.rhs.walk(walker)

    def bind(self, ctx: _Context, level: int) -> Node:
        lhs = self.lhs.bind(ctx, level)
        rhs = self.rhs.bind(ctx, level)
        if lhs is self.lhs and rhs is self.rhs:
            return self
        # Inferred types are inferred again once OuterRef know their fields.
        output = self.output and _combined_output(self, lhs, rhs)
        return _Combined(lhs, self.op, rhs, output)

    def paths(self) -> cabc.Iterator[t.Any]:
        yield from self.lhs.paths()
        yield from self.rhs.paths()


class _Typed(Node):
    """A node with a stated output field (ExpressionWrapper)."""

    __slots__ = ("has_aggregate", "needs_group", "node", "nullable", "output")

    def __init__(self, node: Node, output: t.Any) -> None:
        self.node = node
        self.output = output
        self.nullable = node.nullable
        self.needs_group = node.needs_group
        self.has_aggregate = node.has_aggregate

    def shape(self) -> t.Hashable:
        return ("typed", self.node.shape(), _output_key(self.output))

    def compile(self, compiler: _Compiler) -> t.Any:
        return self.node.compile(compiler)

    def walk(self, walker: _ParamWalker) -> None:
        self.node.walk(walker)

    def bind(self, ctx: _Context, level: int) -> Node:
        return _Typed(self.node.bind(ctx, level), self.output)

    def paths(self) -> cabc.Iterator[t.Any]:
        return self.node.paths()


class _Aggregate(Node):
    __slots__ = (
        "condition",
        "default",
        "distinct",
        "function",
        "mode",
        "needs_group",
        "nullable",
        "output",
        "prefix",
        "source",
    )
    has_aggregate = True

    def __init__(
        self,
        function: str,
        source: Node | None,
        distinct: bool,
        condition: t.Any,
        default: Node | None,
        output: t.Any,
        mode: str,
        prefix: tuple[t.Any, ...],
    ) -> None:
        self.function = function
        self.source = source
        self.distinct = distinct
        self.condition = condition
        self.default = default
        self.output = output
        self.mode = mode
        """``subquery`` (correlated, per row), ``join`` (GROUP BY, multi-valued
        relations joined) or ``inline`` (over a wrapped subquery's columns)."""
        self.prefix = prefix
        self.needs_group = mode != "subquery"
        self.nullable = function != "count" and default is None

    def __repr__(self) -> str:
        return f"{self.function.capitalize()}({self.source!r})"

    def shape(self) -> t.Hashable:
        return (
            "agg",
            self.function,
            None if self.source is None else self.source.shape(),
            self.distinct,
            None if self.condition is None else _shape(self.condition),
            None if self.default is None else self.default.shape(),
            self.mode,
            tuple(id(step) for step in self.prefix),
        )

    def _call(self, compiler: _Compiler) -> t.Any:
        if self.source is None:
            return sa.func.count()
        arg = self.source.compile(compiler)
        if self.distinct:
            arg = sa.distinct(arg)
        return getattr(sa.func, self.function)(arg)

    def compile(self, compiler: _Compiler) -> t.Any:
        if self.mode == "subquery":
            expr = self._compile_subquery(compiler)
        else:
            joins = compiler.multi_joins
            compiler.multi_joins = self.mode == "join"
            try:
                expr = self._call(compiler)
                if self.condition is not None:
                    expr = expr.filter(compiler.where(self.condition))
            finally:
                compiler.multi_joins = joins
        if self.default is not None:
            expr = sa.func.coalesce(expr, self.default.compile(compiler))
        return sa.type_coerce(expr, _sa_type(self.output))

    def _compile_subquery(self, compiler: _Compiler) -> t.Any:
        # Count("books") on Author: (SELECT count(U.id) FROM book U WHERE
        # U.author_id = author.id); forward keys before the relation join
        # the outer query.
        outer_table = compiler.table
        for step in self.prefix[:-1]:
            outer_table = compiler.join(outer_table, step)
        link_model, link_fk, outer_field, inner_steps = self.prefix[-1].subquery_plan()
        sub = compiler.child(link_model)
        sub.level = False
        sub.multi_joins = True
        sub.scope = (self.prefix, inner_steps)
        expr = self._call(sub)
        conditions = [sub.table.c[link_fk.column] == outer_table.c[outer_field.column]]
        if self.condition is not None:
            conditions.append(sub.where(self.condition))
        select = sa.select(expr).select_from(sub.from_clause).where(*conditions)
        return select.correlate(*compiler.froms()).scalar_subquery()

    def walk(self, walker: _ParamWalker) -> None:
        if self.source is not None:
            self.source.walk(walker)
        if self.condition is not None:
            walker.where(self.condition)
        if self.default is not None:
            self.default.walk(walker)

    def bind(self, ctx: _Context, level: int) -> Node:
        return _Aggregate(
            self.function,
            None if self.source is None else self.source.bind(ctx, level),
            self.distinct,
            None if self.condition is None else _bind_where(self.condition, ctx, level),
            None if self.default is None else self.default.bind(ctx, level),
            self.output,
            self.mode,
            self.prefix,
        )

    def paths(self) -> cabc.Iterator[t.Any]:
        if self.source is not None:
            yield from self.source.paths()


class _Subquery(Node):
    __slots__ = ("exists", "negated", "output", "queryset")

    def __init__(
        self, queryset: QuerySet[t.Any], exists: bool, negated: bool, output: t.Any
    ) -> None:
        self.queryset = queryset
        self.exists = exists
        self.negated = negated
        self.output = output

    @property
    def nullable(self) -> bool:  # type: ignore[override]
        return not self.exists

    def __repr__(self) -> str:
        kind = "Exists" if self.exists else "Subquery"
        return f"{'~' if self.negated else ''}{kind}({self.queryset.model.__name__})"

    def shape(self) -> t.Hashable:
        kind = "exists" if self.exists else "select"
        return ("sub", kind, self.negated, self.queryset._shape_key(kind))

    def compile(self, compiler: _Compiler) -> t.Any:
        qs = self.queryset
        sub = compiler.child(qs.model)
        kind = "exists" if self.exists else "select"
        stmt = qs._statement(sub, kind).correlate(*compiler.froms())
        if self.exists:
            expr = sa.exists(stmt)
            return sa.not_(expr) if self.negated else expr
        return stmt.scalar_subquery()

    def walk(self, walker: _ParamWalker) -> None:
        self.queryset._walk(walker)

    def bind(self, ctx: _Context, level: int) -> Node:
        bound = _bind_queryset(self.queryset, ctx, level + 1)
        return _Subquery(bound, self.exists, self.negated, self.output)


class _OpenOuterRef(Node):
    """An ``OuterRef`` not bound yet: its queryset is not inside a subquery."""

    __slots__ = ("depth", "name")
    output = None

    def __init__(self, name: str, depth: int) -> None:
        self.name = name
        self.depth = depth

    def __repr__(self) -> str:
        return f"OuterRef({self.name!r})"

    def shape(self) -> t.Hashable:
        return ("open", self.name, self.depth)

    def compile(self, compiler: _Compiler) -> t.Any:
        raise ValueError(
            f"This queryset contains a reference to an outer query ({self!r}) and"
            " may only be used in a subquery (Subquery(...) or Exists(...))."
        )

    def bind(self, ctx: _Context, level: int) -> Node:
        if self.depth != level:
            return self
        node = ctx.annotations.get(self.name)
        if node is not None:
            return _OuterColumn(level, None, self.name, node.output, node.nullable)
        path = resolve_path(ctx.model, self.name)
        if path.lookup != "exact" or self.name.endswith("__exact"):
            raise FieldError(
                f"OuterRef({self.name!r}) takes a field name, not a lookup."
            )
        for step in path.steps:
            if not _is_forward(step):
                raise FieldError(
                    f"OuterRef({self.name!r}) spans the multi-valued relation"
                    f" {step.name!r}; refer to a field of the outer row."
                )
        nullable = bool(path.steps) or path.field.null
        return _OuterColumn(level, path, self.name, path.field, nullable)


class _OuterColumn(Node):
    __slots__ = ("depth", "name", "nullable", "output", "path")

    def __init__(
        self, depth: int, path: _Path | None, name: str, output: t.Any, nullable: bool
    ) -> None:
        self.depth = depth
        self.path = path
        self.name = name
        self.output = output
        self.nullable = nullable

    def __repr__(self) -> str:
        return f"OuterRef({self.name!r})"

    def shape(self) -> t.Hashable:
        return ("outer", self.depth, self.name)

    def compile(self, compiler: _Compiler) -> t.Any:
        # NOTE: the subqueries of conditions and aggregates are part of their
        # query, not a level of OuterRef.
        target: _Compiler | None = _query_level(compiler)
        for _ in range(self.depth):
            target = None if target is None else _query_level(target.outer)
        if target is None:
            raise ValueError(f"{self!r} has no outer query at this depth.")
        if self.path is None:
            return target.annotations[self.name]
        return target.column(self.path)


# Helpers ---------------------------------------------------------------------


def _query_level(compiler: _Compiler | None) -> _Compiler | None:
    while compiler is not None and not compiler.level:
        compiler = compiler.outer
    return compiler


class _AnyDecimalField(_fields.DecimalField):
    """The result of decimal arithmetic or averages: no fixed places."""

    def __init__(self) -> None:
        super().__init__(max_digits=None, decimal_places=None)

    def python_converter(self, vendor: str) -> _fields.Converter | None:
        """Return Decimals as the database computed them."""
        return _to_decimal

    def get_db_prep_value(self, value: t.Any, vendor: str) -> t.Any:
        """Send decimals (as text to SQLite)."""
        if value is None:
            return None
        number = (
            value if isinstance(value, decimal.Decimal) else decimal.Decimal(str(value))
        )
        return str(number) if vendor == "sqlite" else number

    def sa_type(self) -> t.Any:
        """Return ``Numeric``."""
        return sa.Numeric(asdecimal=True)


def _to_decimal(value: t.Any) -> decimal.Decimal:
    if isinstance(value, float):
        return decimal.Decimal(repr(value))
    return decimal.Decimal(value)


_NUMERIC_OUTPUTS: t.Final[dict[str, t.Any]] = {
    "int": _fields.BigIntegerField,
    "float": _fields.FloatField,
}
_UNORDERED: t.Final = (_fields.BooleanField, _fields.UUIDField, _fields.JSONField)


def _target(output: t.Any) -> t.Any:
    if output is not None and getattr(output, "is_relation", False):
        return output.target_field
    return output


def _numeric_kind(node: Node | None) -> str | None:
    output = _target(None if node is None else node.output)
    if isinstance(output, _fields.IntegerField):
        return "int"
    if isinstance(output, _fields.FloatField):
        return "float"
    if isinstance(output, _fields.DecimalField):
        return "decimal"
    return None


def _describe(node: Node | None) -> str:
    output = _target(None if node is None else node.output)
    kind = type(output).__name__ if output is not None else "an untyped value"
    if isinstance(node, _Column):
        return f"{kind} {node.path.key!r}"
    return f"{node!r} ({kind})"


def _combined_output(expr: t.Any, lhs: Node, rhs: Node) -> t.Any:
    kinds = []
    for side in (lhs, rhs):
        if (isinstance(side, _Param) and side.value is None) or isinstance(
            side, _OpenOuterRef
        ):
            # Typed when bound (OuterRef) or by the other side (NULL).
            continue
        kind = _numeric_kind(side)
        if kind is None:
            raise FieldError(
                f"Cannot use {expr.op} on {_describe(side)} in {expr!r}: arithmetic"
                " needs numeric fields (IntegerField, FloatField, DecimalField)."
            )
        kinds.append(kind)
    found = set(kinds) or {"int"}
    if found == {"int"}:
        return _fields.BigIntegerField()
    if found <= {"int", "float"}:
        return _fields.FloatField()
    if found <= {"int", "decimal"}:
        return _AnyDecimalField()
    raise FieldError(
        f"Cannot infer the type of {expr!r}, which mixes DecimalField and FloatField;"
        " state it with ExpressionWrapper(..., output_field=...)."
    )


def _field_for_value(value: t.Any) -> t.Any:
    if isinstance(value, bool):
        return _fields.BooleanField()
    if isinstance(value, int):
        return _fields.BigIntegerField()
    if isinstance(value, float):
        return _fields.FloatField()
    if isinstance(value, decimal.Decimal):
        return _AnyDecimalField()
    if isinstance(value, str):
        return _fields.TextField()
    if isinstance(value, datetime.datetime):
        return _fields.DateTimeField()
    if isinstance(value, datetime.date):
        return _fields.DateField()
    if value is None:
        return None
    raise TypeError(
        f"Value({value!r}): cannot infer its field; pass output_field=... ."
    )


def _sa_type(output: t.Any) -> t.Any:
    output = _target(output)
    if output is None:
        return sa.types.NULLTYPE
    if isinstance(output, _fields.IntegerField):
        # NOTE: results of arithmetic and sums may exceed a 32-bit column's
        # range; comparing them binds 64-bit parameters.
        return sa.BigInteger()
    return output.sa_type()


def _output_key(output: t.Any) -> t.Hashable:
    return type(_target(output)).__name__


def _multi_prefix(agg: Aggregate, source: Node) -> tuple[t.Any, ...]:
    """Return the relation steps up to the first multi-valued one, or ()."""
    prefix: tuple[t.Any, ...] = ()
    for path in source.paths():
        for index, step in enumerate(path.steps):
            if not _is_forward(step):
                found = tuple(path.steps[: index + 1])
                if prefix and found != prefix:
                    raise FieldError(
                        f"{agg!r} spans two multi-valued relations"
                        f" ({prefix[-1].name!r} and {step.name!r}); aggregate each"
                        " in its own annotation."
                    )
                prefix = found
                break
    return prefix


def _value_output(qs: QuerySet[t.Any], name: str) -> t.Any:
    if qs._annotations and name in qs._annotations:
        return qs._annotations[name].output
    return resolve_path(qs.model, name).field


def converter(output: t.Any, vendor: str) -> _fields.Converter | None:
    """Return the function turning a database value of ``output`` into Python."""
    output = _target(output)
    if output is None:
        return None
    if isinstance(output, _fields.IntegerField):
        # PostgreSQL sums integers into numeric.
        return int
    if isinstance(output, _fields.FloatField):
        return float
    if isinstance(output, _fields.BooleanField):
        return bool
    return t.cast(_fields.Converter | None, output.python_converter(vendor))


# Binding OuterRef --------------------------------------------------------------


def _bind_where(node: t.Any, ctx: _Context, level: int) -> t.Any:
    connector, negated, children = node
    bound: list[t.Any] = []
    for child in children:
        if isinstance(child[0], str):
            bound.append(_bind_where(child, ctx, level))
            continue
        path, value = child
        field = path.field
        if field.__class__ is _ExprTarget and field.annotation is None:
            target = _ExprTarget(field.node.bind(ctx, level), None, field.model)
            path = path._replace(field=target)
        if isinstance(value, Node):
            value = value.bind(ctx, level)
        bound.append((path, value))
    return (connector, negated, bound)


def _bind_queryset(qs: QuerySet[t.Any], ctx: _Context, level: int) -> QuerySet[t.Any]:
    """Return a copy of ``qs`` with its ``OuterRef`` of depth ``level`` bound."""
    clone = qs._clone()
    clone._where = [_bind_where(node, ctx, level) for node in qs._where]
    if qs._having:
        clone._having = tuple(_bind_where(node, ctx, level) for node in qs._having)
    if qs._annotations:
        clone._annotations = {
            name: node.bind(ctx, level) for name, node in qs._annotations.items()
        }
    clone._refresh_extra()
    return clone


# QuerySet support --------------------------------------------------------------


def _references_group(node: t.Any) -> bool:
    """Return whether a condition uses an aggregate computed by GROUP BY."""
    for child in node[2]:
        if isinstance(child[0], str):
            if _references_group(child):
                return True
            continue
        path, value = child
        field = path.field
        if field.__class__ is _ExprTarget and field.node.needs_group:
            return True
        if isinstance(value, Node) and value.needs_group:
            return True
    return False


def split_having(node: t.Any) -> tuple[t.Any, t.Any]:
    """Split a condition into its WHERE part and its HAVING part (either None)."""
    if not _references_group(node):
        return node, None
    connector, negated, children = node
    if connector != Q.AND or negated:
        return None, node
    where = [c for c in children if not _references_group(("AND", False, [c]))]
    having = [c for c in children if _references_group(("AND", False, [c]))]
    return ((connector, False, where) if where else None), (connector, False, having)


def check_alias(
    model: type[Model], alias: str, taken: cabc.Container[str], fields: bool = True
) -> None:
    """Refuse an annotation name that is no identifier, or names a field."""
    if not isinstance(alias, str) or not alias.isidentifier():
        raise ValueError(f"Annotation names must be identifiers; got {alias!r}.")
    meta = model._meta
    if fields and (alias == "pk" or alias in meta.field_map):
        raise FieldError(
            f"The annotation {alias!r} conflicts with a field on"
            f" {meta.object_name}; choose another name."
        )
    if alias in taken:
        raise FieldError(
            f"The annotation {alias!r} is already defined on this queryset."
        )


def named_expressions(
    args: tuple[t.Any, ...], kwargs: dict[str, t.Any], what: str
) -> dict[str, Expression]:
    """Name the positional expressions of annotate()/aggregate() by default alias."""
    named: dict[str, Expression] = {}
    for arg in args:
        alias = arg.default_alias if isinstance(arg, Expression) else None
        if alias is None:
            raise TypeError(
                f"{what}() needs a name for {arg!r}: pass it as name=expression."
            )
        if alias in kwargs or alias in named:
            raise ValueError(f"{what}(): the name {alias!r} of {arg!r} is given twice.")
        named[alias] = arg
    for alias, expr in kwargs.items():
        if not isinstance(expr, Expression):
            raise TypeError(
                f"{what}() takes expressions (F, Value, Count, Sum, Subquery, ...);"
                f" {alias}={expr!r} is not one."
            )
        named[alias] = expr
    return named


def annotate(
    qs: QuerySet[t.Any], args: tuple[t.Any, ...], kwargs: dict[str, t.Any]
) -> t.Any:
    """Return a copy of ``qs`` with the expressions added as annotations."""
    model = qs.model
    named = named_expressions(args, kwargs, "annotate")
    annotations = dict(qs._annotations or {})
    clone = qs._clone()
    grouping = qs._values is not None
    for alias, expr in named.items():
        check_alias(model, alias, annotations)
        node = expr.resolve(
            _Context(model, annotations, "group" if grouping else "annotate")
        )
        if isinstance(node, _OpenOuterRef):
            raise FieldError(
                f"{expr!r} can only be used inside Subquery() or Exists()."
            )
        annotations[alias] = node
        if node.needs_group and clone._group_by is None:
            if grouping:
                values = t.cast(tuple[tuple[str, ...], str], qs._values)[0]
                clone._group_by = tuple(n for n in values if n not in annotations)
            else:
                clone._group_by = ("pk",)
    clone._annotations = annotations
    if clone._values is not None:
        names, kind = clone._values
        clone._values = ((*names, *named), kind)
    clone._refresh_extra()
    return clone


class _AggregateStatement:
    """The ``extra`` of QuerySet._sql for aggregate(): key, statement, params."""

    __slots__ = ("key", "nodes", "wrapped")

    def __init__(self, nodes: dict[str, Node], wrapped: bool) -> None:
        self.nodes = nodes
        self.wrapped = wrapped
        self.key = (
            "aggregate",
            wrapped,
            tuple((n, v.shape()) for n, v in nodes.items()),
        )

    def build(self, qs: QuerySet[t.Any], compiler: _Compiler) -> t.Any:
        if not self.wrapped:
            where = qs._where_expr(compiler)
            columns = [node.compile(compiler) for node in self.nodes.values()]
            stmt = sa.select(*columns)
            if where is not None:
                stmt = stmt.where(where)
            return stmt.select_from(compiler.from_clause)
        sub = qs._statement(compiler, "select").subquery("subquery")
        outer = _WrappedCompiler(qs.model, compiler, sub)
        columns = [node.compile(outer) for node in self.nodes.values()]
        return sa.select(*columns).select_from(sub)

    def walk(self, walker: _ParamWalker) -> None:
        for node in self.nodes.values():
            node.walk(walker)


class _WrappedCompiler(_Compiler):
    """Compiles aggregates over the columns of a wrapped (sub)query."""

    def __init__(self, model: type[Model], inner: _Compiler, sub: t.Any) -> None:
        super().__init__(model, inner.vendor, inner.params)
        self.counter = inner.counter
        self.param_counter = inner.param_counter
        self.table = self.from_clause = sub
        self.annotations = {name: sub.c[name] for name in inner.annotations}

    def column(self, path: _Path) -> t.Any:
        field = path.field
        if field.__class__ is _ExprTarget:
            return self.annotations[t.cast(str, field.annotation)]
        return self.table.c[field.column]


def aggregate(
    qs: QuerySet[t.Any], args: tuple[t.Any, ...], kwargs: dict[str, t.Any]
) -> dict[str, t.Any]:
    """Compute the aggregates over ``qs``; one query (none for ``none()``)."""
    from .db import connections

    model = qs.model
    named = named_expressions(args, kwargs, "aggregate")
    wrapped = bool(
        qs._annotations
        or qs._group_by is not None
        or qs._distinct
        or qs._low
        or qs._high is not None
    )
    purpose = "wrapped" if wrapped else "aggregate"
    annotations = qs._annotations or {}
    nodes: dict[str, Node] = {}
    for alias, expr in named.items():
        check_alias(model, alias, nodes, fields=False)
        node = expr.resolve(_Context(model, annotations, purpose))
        if not node.has_aggregate:
            raise TypeError(f"aggregate(): {alias}={expr!r} is not an aggregate.")
        nodes[alias] = node
    if wrapped and qs._values is not None:
        allowed = set(qs._values[0])
        for alias, node in nodes.items():
            for path in node.paths():
                if path.key not in allowed:
                    raise FieldError(
                        f"aggregate({alias}=...) uses {path.key!r}, which the"
                        " values() of this queryset do not select"
                        f" ({', '.join(sorted(allowed))})."
                    )
    if not nodes:
        return {}
    if qs._empty or (qs._high is not None and qs._high <= qs._low):
        return {alias: _empty_result(node) for alias, node in nodes.items()}
    clone = qs._clone()
    clone._deferred = None
    clone._select_related = ()
    clone._for_update = None  # PostgreSQL locks no rows an aggregate reads
    if not (qs._low or qs._high is not None):
        clone._order_by = ()
    clone._refresh_extra()
    conn = connections[qs.db]
    sql, params = clone._sql(conn, "aggregate", _AggregateStatement(nodes, wrapped))
    row = conn.fetchall(sql, params)[0]
    result = {}
    for (alias, node), value in zip(nodes.items(), row, strict=True):
        convert = converter(node.output, conn.vendor)
        result[alias] = value if value is None or convert is None else convert(value)
    return result


def _empty_result(node: Node) -> t.Any:
    if isinstance(node, _Aggregate):
        if node.default is not None and isinstance(node.default, _Param):
            return node.default.value
        return 0 if node.function == "count" else None
    return None


def group_by_columns(qs: QuerySet[t.Any], compiler: _Compiler) -> list[t.Any]:
    """Return the GROUP BY of a queryset with aggregates computed per group.

    After ``values()``: its fields; otherwise the primary key (the database
    knows the other columns depend on it). Then every selected or ordering
    expression that is not an aggregate, as Django does, so that the query
    is valid on PostgreSQL.
    """
    model = qs.model
    annotations = qs._annotations or {}
    names = t.cast(tuple[str, ...], qs._group_by)
    by_pk = names == ("pk",)
    columns: list[t.Any] = []
    if by_pk:
        columns.append(compiler.table.c[model._meta.pk.column])
        # The keys of the rows joined through forward foreign keys: one row
        # each per group, and PostgreSQL accepts their columns (in subqueries
        # of annotations too) only when grouped.
        reached = {id(compiler.table)}
        for key, alias in compiler.joins.items():
            if len(key) == 2 and key[0] in reached:
                reached.add(id(alias))
                columns.extend(alias.primary_key)
    else:
        columns.extend(compiler.column(resolve_path(model, name)) for name in names)
    selected = qs._values[0] if qs._values is not None else tuple(annotations)
    for name in selected:
        node = annotations.get(name)
        if node is None:
            columns.append(compiler.column(resolve_path(model, name)))
        elif not node.needs_group and not (
            by_pk and (node.has_aggregate or isinstance(node, _Subquery))
        ):
            columns.append(compiler.annotations[name])
    for path, _descending in qs._ordering():
        field = path.field
        if field.__class__ is not _ExprTarget or not field.node.needs_group:
            columns.append(compiler.column(path))
    unique: dict[int, t.Any] = {}
    for column in columns:
        unique.setdefault(id(column), column)
    return list(unique.values())
