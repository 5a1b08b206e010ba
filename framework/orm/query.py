"""Querysets and managers (``Q`` and the lookups live in :mod:`._compiler`).

A :class:`QuerySet` is lazy: ``filter()``/``exclude()``/``order_by()`` check
every field name and lookup at once (raising :class:`FieldError` before any
SQL) and return a new queryset; SQL is built with SQLAlchemy Core and run
only when the results are needed. Values always travel as bound parameters.
"""

from __future__ import annotations

import collections.abc as cabc
import typing as t

import sqlalchemy as sa

from framework import signals

from ._compiler import _MAX_CACHED_QUERIES
from ._compiler import _NOT_A_PK
from ._compiler import LOOKUPS
from ._compiler import Q
from ._compiler import _annotation_path
from ._compiler import _Compiler
from ._compiler import _get_by_key
from ._compiler import _ParamWalker
from ._compiler import _Path
from ._compiler import _resolve_q
from ._compiler import _shape
from ._compiler import check_values
from ._compiler import get_by_pk
from ._compiler import resolve_path
from ._compiler import rows_to_instances
from .db import DEFAULT_DB_ALIAS
from .db import compile_sql
from .db import connections
from .exceptions import FieldError
from .exceptions import IntegrityError
from .exceptions import TransactionManagementError
from .fields import convert_values
from .models import Model
from .transaction import atomic

if t.TYPE_CHECKING:
    from .db import DatabaseWrapper
    from .related_loading import Join

__all__ = [
    "LOOKUPS",
    "Manager",
    "Q",
    "QuerySet",
    "check_values",
    "get_by_pk",
    "resolve_path",
    "rows_to_instances",
]

M = t.TypeVar("M", bound="Model")

_IN_BULK_BATCH: t.Final = 500

_post_update = signals.post_update
_post_bulk_create = signals.post_bulk_create


def _never(node: tuple[str, bool, list[t.Any]]) -> bool:
    """Return whether a condition tree surely matches no row (an empty ``in``)."""
    connector, negated, children = node
    if negated or not children:
        return False
    wanted = connector != Q.AND  # AND: one never-child is enough; OR: all
    for child in children:
        if isinstance(child[0], str):
            found = _never(child)
        else:
            path, value = child
            found = path.lookup == "in" and all(item is None for item in value)
        if found is not wanted:
            return found
    return wanted


# QuerySet ------------------------------------------------------------


class QuerySet(t.Generic[M]):
    """A lazy database query for instances of ``model``.

    :param model: the model class.
    :param using: the database alias, or ``None`` for the default.
    """

    # PERF: what annotate()/defer() add lives in class-level defaults, so
    # that plain querysets neither set nor copy it.
    _annotations: dict[str, t.Any] | None = None
    _group_by: tuple[str, ...] | None = None
    _having: tuple[t.Any, ...] = ()
    _deferred: tuple[frozenset[str], bool] | None = None
    _extra: t.Hashable = None

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
        self._select_related: tuple[Join, ...] = ()
        self._prefetch: tuple[str, ...] = ()
        self._for_update: tuple[bool, bool, bool] | None = None

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
        node = _resolve_q(
            self.model, Q(*args, _negated=negate, **kwargs), self._annotations
        )
        clone = self._clone()
        if self._group_by is not None:
            from .expressions import split_having

            node, having = split_having(node)
            if having is not None:
                clone._having = (*self._having, having)
                clone._refresh_extra()
            if node is None:
                return clone
        clone._where.append(node)
        if _never(node):
            # PERF: filter(pk__in=[]), or a value no row can hold: no SQL.
            clone._empty = True
        return clone

    def order_by(self, *names: str) -> QuerySet[M]:
        """Return a copy ordered by these fields (``"-name"`` for descending)."""
        self._check_unsliced("order_by")
        resolved = []
        for name in names:
            if not isinstance(name, str):
                raise TypeError(f"order_by() takes field names, got {name!r}.")
            descending = name.startswith("-")
            bare = name.lstrip("-")
            path = (
                self._annotations
                and _annotation_path(self.model, bare, self._annotations)
            ) or resolve_path(self.model, bare)
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

    def select_related(self, *fields: str | None) -> QuerySet[M]:
        """Return a copy that joins the named related rows into its one query.

        Names are forward foreign keys and one-to-ones, nested with ``__``
        (``"author__country"``); no names: every non-null foreign key,
        recursively; ``None``: none.

        :raises FieldError: a name is not a forward relation.
        """
        clone = self._clone()
        if fields == (None,):
            clone._select_related = ()
            return clone
        from .related_loading import plan_select_related

        names = t.cast(tuple[str, ...], fields)
        paths = tuple(join.field for join in self._select_related)
        if not fields:
            clone._select_related = plan_select_related(self.model, True)
        elif paths:
            # Added to the earlier ones, as in Django.
            earlier = self._select_related_names()
            clone._select_related = plan_select_related(self.model, (*earlier, *names))
        else:
            clone._select_related = plan_select_related(self.model, names)
        return clone

    def _select_related_names(self) -> tuple[str, ...]:
        names: list[str] = []
        for join in self._select_related:
            parent = names[join.parent] if join.parent >= 0 else ""
            names.append(f"{parent}__{join.field.name}" if parent else join.field.name)
        return tuple(names)

    def prefetch_related(self, *lookups: str | None) -> QuerySet[M]:
        """Return a copy that loads these relations with one query each.

        Reverse foreign keys, many-to-many relations (either side) and
        forward keys, nested with ``__`` (``"comments__author"``); ``None``
        clears the list.

        :raises FieldError: a step of a lookup is not a relation.
        """
        from .related_loading import check_prefetch

        clone = self._clone()
        if lookups == (None,):
            clone._prefetch = ()
            return clone
        for lookup in lookups:
            if not isinstance(lookup, str):
                raise TypeError(
                    f"prefetch_related() takes relation names, got {lookup!r}."
                )
            check_prefetch(self.model, lookup)
        clone._prefetch = (*self._prefetch, *t.cast(tuple[str, ...], lookups))
        return clone

    def select_for_update(
        self,
        nowait: bool = False,
        skip_locked: bool = False,
        of: tuple[str, ...] = (),
        no_key: bool = False,
    ) -> QuerySet[M]:
        """Return a copy that locks the rows it reads until the transaction ends.

        On PostgreSQL the query gets ``FOR UPDATE`` (of the model's own rows
        only: tables joined for a filter are not locked); another transaction
        locking or changing the same rows waits until this one ends, then
        reads their new state. On SQLite the clause is left out: every
        ``atomic()`` block there starts with ``BEGIN IMMEDIATE``, which
        already lets one writer at a time in.

        As in Django, evaluating it outside ``atomic()`` raises
        :class:`TransactionManagementError` (on both backends, so code that
        forgets the transaction fails in development too).

        :param nowait: fail at once (the driver's error) instead of waiting
            for a row another transaction holds (PostgreSQL).
        :param skip_locked: leave out rows other transactions hold (PostgreSQL).
        :param of: ``("self",)``, the only choice: the model's own rows.
        :param no_key: take the weaker ``FOR NO KEY UPDATE`` lock (PostgreSQL),
            for a transaction that updates the rows but neither deletes them nor
            changes their key: other transactions may still insert rows that
            refer to them (their foreign key checks are not blocked).
        :raises ValueError: both ``nowait`` and ``skip_locked``.
        :raises FieldError: ``of`` names something else.
        """
        if nowait and skip_locked:
            raise ValueError(
                "select_for_update() takes nowait or skip_locked, not both."
            )
        unknown = [name for name in of if name != "self"]
        if unknown:
            raise FieldError(
                f"select_for_update(of=...) got {', '.join(map(repr, unknown))};"
                " only 'self' (the model's own rows, which are always the ones"
                " locked) is supported."
            )
        clone = self._clone()
        clone._for_update = (bool(nowait), bool(skip_locked), bool(no_key))
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
        annotations = self._annotations or {}
        if not fields:
            fields = tuple(f.attname for f in self.model._meta.fields)
            fields += tuple(annotations)
        for name in fields:
            if name in annotations:
                continue
            path = resolve_path(self.model, name)
            if path.lookup != "exact" or name.endswith("__exact"):
                raise FieldError(f"values({name!r}): lookups cannot be selected.")
        clone = self._clone()
        clone._values = (fields, kind)
        return clone

    def annotate(self, *args: t.Any, **kwargs: t.Any) -> QuerySet[M]:
        """Return a copy whose rows carry the values of these expressions.

        ``annotate(n=Count("books"), total=F("price") * F("stock"))``; an
        aggregate passed by position is named ``"<field>__<function>"``.
        After ``values()`` the aggregates are computed per group.

        :raises FieldError: an unknown name, or a name clashing with a field.
        """
        from .expressions import annotate

        return t.cast(QuerySet[M], annotate(self, args, kwargs))

    def aggregate(self, *args: t.Any, **kwargs: t.Any) -> dict[str, t.Any]:
        """Return ``{name: value}`` of the aggregates over the matching rows.

        One query (none on ``none()``: counts are 0, the rest None or their
        ``default``).
        """
        from .expressions import aggregate

        return aggregate(self, args, kwargs)

    def defer(self, *fields: str | None) -> QuerySet[M]:
        """Return a copy that loads these fields only when they are read.

        ``defer(None)`` loads every field again. The primary key is always
        loaded.
        """
        from ._loading import defer_fields

        return t.cast(QuerySet[M], defer_fields(self, fields, only=False))

    def only(self, *fields: str) -> QuerySet[M]:
        """Return a copy that loads only these fields (and the primary key) at once."""
        from ._loading import defer_fields

        return t.cast(QuerySet[M], defer_fields(self, fields, only=True))

    def _check_unsliced(self, what: str) -> None:
        if self._low or self._high is not None:
            raise TypeError(f"Cannot {what}() a queryset once it has been sliced.")

    def _check_ungrouped(self, what: str) -> None:
        if self._having or (what == "update" and self._group_by is not None):
            raise TypeError(
                f"Cannot {what}() a queryset grouped by an aggregate; select the"
                f" keys first: filter(pk__in=qs.values_list('pk', flat=True))."
            )

    # Running ------------------------------------------------------------------------

    def _ordering(self) -> tuple[tuple[_Path, bool], ...]:
        if self._order_by is not None:
            return self._order_by
        if self._group_by is not None:
            # As in Django, Meta.ordering does not apply to GROUP BY queries.
            return ()
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
        if self._annotations and not compiler.annotations:
            # Annotations first: conditions, columns and ordering use them,
            # and _walk() computes their parameters first.
            for name, node in self._annotations.items():
                compiler.annotations[name] = node.compile(compiler)
        parts = [compiler.where(node) for node in self._where]
        if self._empty:
            # NOTE: only a subquery of none() gets here (other empty querysets
            # run no SQL): it matches no row. Its conditions are compiled all
            # the same, so that parameters keep the walker's numbering.
            return sa.false()
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else sa.and_(*parts)

    def _delete_statement(self, compiler: _Compiler, where: t.Any) -> t.Any:
        return self._restrict(compiler.table.delete(), compiler, where)

    def _restrict(self, stmt: t.Any, compiler: _Compiler, where: t.Any) -> t.Any:
        """Return the UPDATE or DELETE ``stmt`` limited to the matching rows."""
        if compiler.joins:
            # UPDATE and DELETE cannot join: select the keys of the matching rows.
            keys = self._keys(compiler, where).correlate(None)
            return stmt.where(compiler.table.c[self.model._meta.pk.column].in_(keys))
        return stmt if where is None else stmt.where(where)

    def _keys(self, compiler: _Compiler, where: t.Any) -> t.Any:
        """Return the SELECT of the primary keys of the matching rows."""
        pk_column = compiler.table.c[self.model._meta.pk.column]
        stmt = sa.select(pk_column).select_from(compiler.from_clause)
        return stmt if where is None else stmt.where(where)

    def _columns(self, compiler: _Compiler, kind: str) -> list[t.Any]:
        # A row: the (loaded) fields, the select_related() models' fields,
        # then the annotations.
        if kind == "exists" or (kind == "count" and not self._distinct):
            return [sa.literal_column("1")]
        if self._values is not None:
            return [self._value_column(compiler, name) for name in self._values[0]]
        table = compiler.table
        fields = (
            self.model._meta.fields if self._extra is None else self._loaded_fields()
        )
        columns = [table.c[f.column] for f in fields]
        if self._select_related and kind == "select":
            from .related_loading import select_related_columns

            columns += select_related_columns(compiler, self._select_related)
        for name in self._annotations or ():
            columns.append(compiler.annotations[name].label(_label(name)))
        return columns

    def _statement(self, compiler: _Compiler, kind: str) -> t.Any:
        where = self._where_expr(compiler)
        if kind == "delete":
            return self._delete_statement(compiler, where)
        having = [compiler.where(node) for node in self._having]
        if kind == "count" and self._counts_rows():
            stmt: t.Any = sa.select(sa.func.count())
            if where is not None:
                stmt = stmt.where(where)
            return stmt.select_from(compiler.from_clause)
        stmt = sa.select(*self._columns(compiler, kind))
        if where is not None:
            stmt = stmt.where(where)
        order = self._order_columns(compiler) if kind != "count" else []
        if self._group_by is not None:
            stmt = self._grouped(stmt, compiler, having)
        if order:
            stmt = stmt.order_by(*order)
        if self._distinct:
            stmt = stmt.distinct()
        # Literals, not parameters: the SQL is cached per shape, and the
        # parameters of a cached shape come from the conditions alone.
        if self._low or self._high is not None:
            stmt = stmt.offset(sa.literal_column(str(int(self._low))))
        if self._high is not None:
            stmt = stmt.limit(sa.literal_column(str(int(self._high - self._low))))
        elif self._low and compiler.vendor == "sqlite":
            # SQLite needs a LIMIT before OFFSET; its compiler would bind -1.
            stmt = stmt.limit(sa.literal_column("-1"))
        stmt = stmt.select_from(compiler.from_clause)
        if kind == "count":
            return sa.select(sa.func.count()).select_from(stmt.subquery())
        return self._lock_clause(stmt, compiler)

    def _lock_clause(self, stmt: t.Any, compiler: _Compiler) -> t.Any:
        # SQLite has no row locks (BEGIN IMMEDIATE queues writers instead).
        # OF the model's own table: a table joined for a filter is an outer
        # join's NULL side, which PostgreSQL refuses to lock.
        if self._for_update is None or compiler.vendor == "sqlite":
            return stmt
        nowait, skip_locked, no_key = self._for_update
        return stmt.with_for_update(
            nowait=nowait, skip_locked=skip_locked, of=compiler.table, key_share=no_key
        )

    def _sql(
        self, conn: DatabaseWrapper, kind: str, extra: t.Any = None
    ) -> tuple[str, list[t.Any]]:
        """Return the SQL and parameters, compiling only new query shapes.

        # PERF: the SQL of a query depends on its shape (names, lookups,
        # ordering, slicing), not on its values; it is compiled once per shape
        # and vendor, and later queries of the same shape only compute their
        # parameters.

        :param extra: for statements built elsewhere (aggregate(), update()):
            an object with ``key``, ``build(qs, compiler)`` and ``walk(walker)``.
        """
        # A subquery's shape, plus what only a query of its own has.
        key = (
            self._shape_key(kind),
            conn.vendor,
            self._select_related,
            self._for_update if kind != "count" else None,
            None if extra is None else extra.key,
        )
        cache = self.model._meta._query_cache
        entry = cache.get(key)
        if entry is None:
            compiler = _Compiler(self.model, conn.vendor)
            if extra is None:
                stmt = self._statement(compiler, kind)
            else:
                stmt = extra.build(self, compiler)
            entry = compile_sql(stmt, conn.dialect)
            if len(cache) >= _MAX_CACHED_QUERIES:
                cache.clear()
            cache[key] = entry
        sql, names = entry
        # The walker numbers the values as the compiler did: the first query
        # of a shape takes its parameters the same way as every later one.
        params: dict[str, t.Any] = {}
        walker = _ParamWalker(conn.vendor, params)
        if self._extra is None:
            for node in self._where:
                walker.where(node)
        else:
            self._walk(walker)
        if extra is not None:
            extra.walk(walker)
        return sql, [params[name] for name in names]

    def _walk(self, walker: _ParamWalker) -> None:
        """Compute the parameters in the order _statement() numbers them."""
        for node in (self._annotations or {}).values():
            node.walk(walker)
        for node in self._where:
            walker.where(node)
        for node in self._having:
            walker.where(node)

    def _shape_key(self, kind: str) -> t.Hashable:
        """Return what decides this query's SQL as a subquery (not its values).

        A subquery never locks nor joins for select_related() (Subquery and
        Exists drop both); :meth:`_sql` adds them for a query of its own.
        """
        return (
            kind,
            self.model,
            self._empty,
            tuple(_shape(node) for node in self._where),
            tuple((path.key, desc) for path, desc in self._ordering()),
            self._low,
            self._high,
            self._distinct,
            self._values,
            self._extra,
        )

    def _refresh_extra(self) -> None:
        """Recompute ``_extra``, the cache key of annotations, grouping, deferral."""
        if not (
            self._annotations
            or self._having
            or self._group_by is not None
            or self._deferred is not None
        ):
            self._extra = None
            return
        self._extra = (
            tuple(
                (name, node.shape()) for name, node in (self._annotations or {}).items()
            ),
            self._group_by,
            tuple(_shape(node) for node in self._having),
            self._deferred,
        )

    def _loaded_fields(self) -> list[t.Any]:
        """Return the concrete fields a row holds (all but the deferred ones)."""
        fields = self.model._meta.fields
        if self._deferred is None:
            return fields
        names, only = self._deferred
        pk = self.model._meta.pk
        # The keys select_related() follows are loaded: they own the joins.
        keys = {join.field for join in self._select_related if join.parent < 0}
        return [
            field
            for field in fields
            if field is pk or field in keys or (field.attname in names) is only
        ]

    def _order_columns(self, compiler: _Compiler) -> list[t.Any]:
        order = []
        for path, descending in self._ordering():
            name = getattr(path.field, "annotation", None)
            if name is not None:
                # A label: ORDER BY its name when it is selected, rather than
                # running an annotation's subquery twice.
                column = compiler.annotations[name].label(_label(name))
            else:
                column = compiler.column(path)
            order.append(column.desc() if descending else column.asc())
        return order

    def _counts_rows(self) -> bool:
        """Return whether COUNT(*) over the conditions gives count() directly."""
        return not (
            self._low
            or self._high is not None
            or self._distinct
            or self._values
            or self._group_by is not None
        )

    def _grouped(self, stmt: t.Any, compiler: _Compiler, having: list[t.Any]) -> t.Any:
        from .expressions import group_by_columns

        stmt = stmt.group_by(*group_by_columns(self, compiler))
        return stmt.having(sa.and_(*having)) if having else stmt

    def _value_column(self, compiler: _Compiler, name: str) -> t.Any:
        if self._annotations and name in self._annotations:
            return compiler.annotations[name].label(_label(name))
        return compiler.column(resolve_path(self.model, name))

    def _fetch_all(self) -> list[t.Any]:
        if self._result_cache is None:
            self._result_cache = self._run()
            if self._prefetch and self._values is None:
                from .related_loading import prefetch_related_objects

                prefetch_related_objects(
                    self._result_cache, *self._prefetch, using=self.db
                )
        return self._result_cache

    def _check_for_update(self) -> None:
        if self._for_update is not None and not connections[self.db].in_atomic_block:
            raise TransactionManagementError(
                "select_for_update() cannot be used outside a transaction: its"
                " locks would end with the statement. Evaluate it, and do the"
                " writes that depend on it, inside 'with transaction.atomic():'."
            )

    def _run(self) -> list[t.Any]:
        if self._for_update is not None:
            self._check_for_update()
        if self._empty or (self._high is not None and self._high <= self._low):
            return []
        conn = connections[self.db]
        sql, params = self._sql(conn, "select")
        rows = conn.fetchall(sql, params)
        if self._values is None:
            if self._extra is not None:
                from ._loading import load_instances

                return load_instances(self, rows, conn)
            if self._select_related:
                from .related_loading import load_select_related

                return load_select_related(self.model, rows, conn, self._select_related)
            return rows_to_instances(self.model, rows, conn)
        names, kind = self._values
        annotations = self._annotations or {}
        convs = []
        for index, name in enumerate(names):
            if name in annotations:
                from .expressions import converter

                conv = converter(annotations[name].output, conn.vendor)
                if conv is not None:
                    convs.append((index, conv))
                continue
            field = resolve_path(self.model, name).field
            if field.is_relation:
                field = field.target_field
            conv = field.python_converter(conn.vendor)
            if conv is not None:
                convs.append((index, conv))
        converted = [convert_values(row, tuple(convs)) for row in rows]
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
            and not self._select_related
            and not self._prefetch
            and self._for_update is None
            and self._extra is None
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
        if self._for_update is not None:
            self._check_for_update()
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
        """Return the first instance (by the ordering, else the pk), or None.

        :raises TypeError: an unordered queryset grouped by ``values()``
            (ordering by the pk would group by it too), as in Django.
        """
        for obj in self._ordered("first")[:1]:
            return t.cast(M, obj)
        return None

    def last(self) -> M | None:
        """Return the last instance (by the ordering, else the pk), or None.

        :raises TypeError: as :meth:`first`.
        """
        for obj in self._ordered("last").reverse()[:1]:
            return t.cast(M, obj)
        return None

    def _ordered(self, method: str) -> QuerySet[M]:
        if self._ordering():
            return self
        if self._group_by is not None and self._group_by != ("pk",):
            raise TypeError(
                f"Cannot use QuerySet.{method}() on an unordered queryset performing"
                " aggregation. Add an ordering with order_by()."
            )
        return self.order_by("pk")

    def in_bulk(
        self, id_list: cabc.Iterable[t.Any] | None = None, *, field_name: str = "pk"
    ) -> dict[t.Any, M]:
        """Return ``{value: instance}`` for the given values of ``field_name``."""
        attr = (
            "pk"
            if field_name == "pk"
            else resolve_path(self.model, field_name).field.attname
        )
        if id_list is None:
            return {getattr(obj, attr): obj for obj in self}
        ids = list(id_list)
        found: dict[t.Any, M] = {}
        # Batches keep every statement under the drivers' parameter limits.
        for start in range(0, len(ids), _IN_BULK_BATCH):
            batch = ids[start : start + _IN_BULK_BATCH]
            for obj in self.filter(**{f"{field_name}__in": batch}):
                found[getattr(obj, attr)] = obj
        return found

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
        """Update the matching instance with ``defaults``, or create it.

        As in Django, the update saves (and the save signals name) only the
        fields in ``defaults`` plus those set when saving, such as
        ``auto_now`` ones.
        """
        with atomic(using=self.db):
            obj, created = self.get_or_create(defaults=defaults, **kwargs)
            if created:
                return obj, True
            for key, value in (defaults or {}).items():
                setattr(obj, key, value() if callable(value) else value)
            meta = self.model._meta
            names = set(defaults or ())
            concrete = {f.name for f in meta.fields if f is not meta.pk}
            concrete |= {f.attname for f in meta.fields if f is not meta.pk}
            if names <= concrete:
                names |= {f.name for f in meta.fields if f.has_pre_save}
                obj.save(using=self.db, update_fields=names)
            else:
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
        if _post_bulk_create.connected:
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
        self._check_ungrouped("update")
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
        self._check_ungrouped("delete")
        if self._values is not None:
            raise TypeError("Cannot call delete() after values() or values_list().")
        if self._empty:
            # Nothing can match: no transaction, no statement, no signal.
            return 0, {}
        # As in Django: the rows are locked by the delete itself; joins and
        # ordering serve no purpose (and select_for_update() outside atomic()
        # would refuse to run).
        rows = self._clone()
        rows._for_update = None
        rows._select_related = ()
        rows._prefetch = ()
        rows._order_by = ()
        collector = Collector(self.db, origin=self)
        collector.collect_queryset(rows)
        self._result_cache = None
        return collector.delete()

    delete.alters_data = True  # type: ignore[attr-defined]

    def _pk_select(self, conn: DatabaseWrapper) -> t.Any:
        compiler, where = self._compiler(conn)
        return self._keys(compiler, where), bool(compiler.joins), where


def _label(name: str) -> t.Any:
    # Always quoted: an annotation may be named like an SQL keyword
    # ("nothing", "order").
    return sa.sql.quoted_name(name, quote=True)


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
        """See :meth:`QuerySet.all`.

        The manager's queryset itself, as in Django, so that a relation's
        prefetched instances come back without a query.
        """
        return self.get_queryset()

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

    def select_related(self, *fields: str | None) -> QuerySet[M]:
        """See :meth:`QuerySet.select_related`."""
        return self.get_queryset().select_related(*fields)

    def prefetch_related(self, *lookups: str | None) -> QuerySet[M]:
        """See :meth:`QuerySet.prefetch_related`."""
        return self.get_queryset().prefetch_related(*lookups)

    def reverse(self) -> QuerySet[M]:
        """See :meth:`QuerySet.reverse`."""
        return self.get_queryset().reverse()

    def select_for_update(
        self,
        nowait: bool = False,
        skip_locked: bool = False,
        of: tuple[str, ...] = (),
        no_key: bool = False,
    ) -> QuerySet[M]:
        """See :meth:`QuerySet.select_for_update`."""
        return self.get_queryset().select_for_update(nowait, skip_locked, of, no_key)

    def values(self, *fields: str) -> QuerySet[M]:
        """See :meth:`QuerySet.values`."""
        return self.get_queryset().values(*fields)

    def values_list(self, *fields: str, flat: bool = False) -> QuerySet[M]:
        """See :meth:`QuerySet.values_list`."""
        return self.get_queryset().values_list(*fields, flat=flat)

    def annotate(self, *args: t.Any, **kwargs: t.Any) -> QuerySet[M]:
        """See :meth:`QuerySet.annotate`."""
        return self.get_queryset().annotate(*args, **kwargs)

    def aggregate(self, *args: t.Any, **kwargs: t.Any) -> dict[str, t.Any]:
        """See :meth:`QuerySet.aggregate`."""
        return self.get_queryset().aggregate(*args, **kwargs)

    def defer(self, *fields: str | None) -> QuerySet[M]:
        """See :meth:`QuerySet.defer`."""
        return self.get_queryset().defer(*fields)

    def only(self, *fields: str) -> QuerySet[M]:
        """See :meth:`QuerySet.only`."""
        return self.get_queryset().only(*fields)

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


_BASE_QS: t.Final = Manager.get_queryset
