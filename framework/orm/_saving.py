"""How a model instance is written: value checks and compiled INSERT/UPDATE.

One :class:`_Saver` per model (``Options._saver``) holds the statements
compiled once per vendor by SQLAlchemy and the generated insert functions
that ``Model.save()`` calls.
"""

from __future__ import annotations

import collections.abc as cabc
import operator
import typing as t

import sqlalchemy as sa

from . import fields as _fields
from .db import compile_sql
from .exceptions import FieldError
from .exceptions import IntegrityError
from .exceptions import ValidationError
from .fields import convert_values

if t.TYPE_CHECKING:
    from .db import DatabaseWrapper
    from .models import Model
    from .models import Options

__all__: list[str] = []


def _check_update_fields(
    meta: Options, update_fields: cabc.Iterable[str]
) -> frozenset[str]:
    names = frozenset(update_fields)
    valid = {f.name for f in meta.fields} | {f.attname for f in meta.fields}
    bad = sorted(names - valid)
    if bad:
        raise FieldError(
            f"update_fields names {', '.join(repr(b) for b in bad)}, which"
            f" {meta.object_name} does not have (or that are not concrete)."
            f" Choices are: {', '.join(f.name for f in meta.fields)}."
        )
    return names


class _Saver:
    """Compiled INSERT/UPDATE statements and value checks for one model."""

    def __init__(self, meta: Options) -> None:
        self.meta = meta
        self.fields = meta.fields
        self.pk = meta.pk
        self.auto_pk = isinstance(meta.pk, _fields.AutoField)
        self.pre_save_fields = [f for f in meta.fields if f.has_pre_save]
        self.vendor_data: dict[str, t.Any] = {}
        self.pk_attname = meta.pk.attname
        self.pk_has_default = meta.pk.has_default()
        self.inserters: dict[tuple[str, bool], t.Any] = {}
        self.plain_inserters: dict[str, t.Any] = {}

    def clean(
        self,
        instance: Model,
        fields: cabc.Iterable[_fields.Field],
        exclude: frozenset[str] = frozenset(),
    ) -> None:
        d = instance.__dict__
        errors: dict[str, list[str]] | None = None
        for field in fields:
            value = d[field.attname]
            if value is None:
                if field.null or (field is self.pk and self.auto_pk):
                    continue
                if field.name in exclude:
                    continue
                message = "cannot be None (the field is not null=True)"
            else:
                try:
                    clean = field.clean(value)
                    if field._choice_values is not None:
                        field.check_choices(clean)
                except ValueError as exc:
                    message = str(exc)
                else:
                    if clean is not value:
                        d[field.attname] = clean
                    continue
            if field.name in exclude:
                continue
            if errors is None:
                errors = {}
            errors.setdefault(field.name, []).append(message)
        if errors:
            raise ValidationError(
                {
                    f"{self.meta.object_name}.{name}": msgs
                    for name, msgs in errors.items()
                }
            )

    def _vendor(self, conn: DatabaseWrapper) -> dict[str, _fields.Converter]:
        data = self.vendor_data.get(conn.vendor)
        if data is None:
            data = {
                f.attname: convert
                for f in self.fields
                if (convert := f.db_converter(conn.vendor)) is not None
            }
            self.vendor_data[conn.vendor] = data
        return data

    def _binding(
        self, conn: DatabaseWrapper, order: tuple[str, ...]
    ) -> tuple[t.Any, tuple[tuple[int, _fields.Converter], ...]]:
        """Return the getter and converters that build parameters in ``order``."""
        converters = self._vendor(conn)
        getter = operator.itemgetter(*order) if len(order) > 1 else None
        convs = tuple(
            (i, converters[name]) for i, name in enumerate(order) if name in converters
        )
        return getter, convs

    def _insert_sql(self, conn: DatabaseWrapper, with_pk: bool) -> t.Any:
        key = ("insert", conn.vendor, with_pk)
        cached = self.meta._sql_cache.get(key)
        if cached is None:
            fields = [f for f in self.fields if with_pk or f is not self.pk]
            table = self.meta.table
            stmt: t.Any = table.insert().values(
                {f.column: sa.bindparam(f.attname) for f in fields}
            )
            returning = not with_pk and conn.vendor != "sqlite"
            if returning:
                stmt = stmt.returning(table.c[self.pk.column])
            sql, order = compile_sql(stmt, conn.dialect)
            getter, convs = self._binding(conn, order)
            cached = (sql, order, getter, convs, returning)
            self.meta._sql_cache[key] = cached
        return cached

    def insert(self, instance: Model, conn: DatabaseWrapper, raw: bool) -> None:
        d = instance.__dict__
        with_pk = d[self.pk_attname] is not None or not self.auto_pk
        inserter = self.inserters.get((conn.vendor, with_pk))
        if inserter is None:
            inserter = self._build_inserter(conn, with_pk)
        inserter(instance, d, conn, raw)

    def _build_inserter(self, conn: DatabaseWrapper, with_pk: bool) -> t.Any:
        """Generate the insert function of this model for one vendor.

        The inline checks come from the built-in fields' private
        ``_fast_check()``; every other field (custom fields, choices) is
        checked by its public ``clean()`` through :meth:`clean`, so it costs
        one call and never slows down the other fields.
        """
        # PERF: save() is the hot path of every write. The generated function
        # checks the built-in field types inline (falling back to the fields'
        # clean() for anything unusual), builds the parameter tuple without a
        # loop, and runs the statement compiled once by SQLAlchemy. For a model
        # with title = CharField(max_length=100), rating =
        # IntegerField(null=True) and a custom field price (that only
        # implements clean() and a db_converter), saved on SQLite without a
        # primary key, the source reads:
        #
        #   def insert(instance, d, conn, raw):
        #       v0 = d['title']
        #       v1 = d['rating']
        #       v2 = d['price']
        #       if not ((type(v0) is str and len(v0) <= 100 and '\x00' not in v0)
        #               and (v1 is None or (type(v1) is int and -2147483648 <= v1
        #                                   <= 2147483647))):
        #           clean(instance, fields)       # every field, every error
        #           v0 = d['title']               # clean() may coerce values
        #           v1 = d['rating']
        #           v2 = d['price']
        #       else:
        #           clean(instance, slow_fields)  # only the custom field
        #           v2 = d['price']
        #       cursor = conn._cursor
        #       if cursor is None: ... (connect)
        #       try:
        #           cursor.execute(SQL, (v0, v1, (None if v2 is None else c2(v2)),))
        #       except DriverIntegrityError as exc: raise IntegrityError(...)
        #       d['id'] = cursor.lastrowid
        sql, order, _getter, convs, returning = self._insert_sql(conn, with_pk)
        by_attname = {f.attname: f for f in self.fields}
        namespace: dict[str, t.Any] = {
            "SQL": sql,
            "clean": self.clean,
            "fields": self.fields,
            "pre_save_fields": self.pre_save_fields,
            **_fields.FAST_CHECK_NAMES,
        }
        lines = ["def insert(instance, d, conn, raw):"]
        if self.pre_save_fields:
            lines.append("    if not raw:")
            lines.append("        for field in pre_save_fields:")
            lines.append("            field.pre_save(instance, True)")
        checks = []
        slow: list[int] = []
        for index, attname in enumerate(order):
            field = by_attname[attname]
            var = f"v{index}"
            lines.append(f"    {var} = d[{attname!r}]")
            check = field._fast_check(var)
            if check is None:
                slow.append(index)
                continue
            if field.null:
                check = f"({var} is None or {check})"
            checks.append(check)
        if checks:
            lines.append(f"    if not ({' and '.join(checks)}):")
            lines.append("        clean(instance, fields)")
            lines.extend(f"        v{i} = d[{a!r}]" for i, a in enumerate(order))
        if slow:
            namespace["slow_fields"] = [by_attname[order[i]] for i in slow]
            indent = "    "
            if checks:
                lines.append("    else:")
                indent = "        "
            lines.append(f"{indent}clean(instance, slow_fields)")
            lines.extend(f"{indent}v{i} = d[{order[i]!r}]" for i in slow)
        params = [f"v{index}" for index in range(len(order))]
        for index, convert in convs:
            namespace[f"c{index}"] = convert
            params[index] = f"(None if v{index} is None else c{index}(v{index}))"
        tuple_text = f"({', '.join(params)},)" if params else "()"
        namespace["IntegrityError"] = IntegrityError
        namespace["DriverIntegrityError"] = conn._integrity_errors
        namespace["DriverError"] = conn._errors
        lines.extend(
            [
                "    cursor = conn._cursor",
                "    if cursor is None:",
                "        conn.ensure_connection()",
                "        cursor = conn._cursor",
                "    try:",
                f"        cursor.execute(SQL, {tuple_text})",
                "    except DriverIntegrityError as exc:",
                "        raise IntegrityError(",
                "            f'{exc} (database {conn.alias!r})'",
                "        ) from exc",
                "    except DriverError:",
                "        conn.errors_occurred = True",
                "        raise",
            ]
        )
        if not with_pk:
            fetch = "cursor.fetchone()[0]" if returning else "cursor.lastrowid"
            lines.append(f"    d[{self.pk_attname!r}] = {fetch}")
        exec(
            compile("\n".join(lines), f"<insert {self.meta.label}>", "exec"), namespace
        )
        inserter = namespace["insert"]
        self.inserters[(conn.vendor, with_pk)] = inserter
        return inserter

    def _update_sql(self, conn: DatabaseWrapper, names: frozenset[str] | None) -> t.Any:
        key = ("update", conn.vendor, names)
        cached = self.meta._sql_cache.get(key)
        if cached is None:
            fields = [
                f
                for f in self.fields
                if f is not self.pk
                and (names is None or f.name in names or f.attname in names)
            ]
            table = self.meta.table
            pk_col = table.c[self.pk.column]
            stmt = (
                table.update()
                .where(pk_col == sa.bindparam("__pk"))
                .values({f.column: sa.bindparam(f.attname) for f in fields})
            )
            sql, bind_names = compile_sql(stmt, conn.dialect)
            order = tuple(
                self.pk.attname if name == "__pk" else name for name in bind_names
            )
            getter, convs = self._binding(conn, order)
            cached = (sql, order, getter, convs, tuple(fields))
            self.meta._sql_cache[key] = cached
        return cached

    def update(
        self,
        instance: Model,
        conn: DatabaseWrapper,
        names: frozenset[str] | None,
        raw: bool,
    ) -> bool:
        sql, order, getter, convs, fields = self._update_sql(conn, names)
        if not raw:
            for field in self.pre_save_fields:
                if field in fields:
                    field.pre_save(instance, False)
        self.clean(instance, (self.pk, *fields))
        if not fields:
            from .query import QuerySet

            rows = QuerySet(instance.__class__, conn.alias)
            return rows.filter(pk=instance.pk).exists()
        cursor = conn.execute(sql, _params(instance.__dict__, order, getter, convs))
        return bool(cursor.rowcount > 0)


def _params(
    d: dict[str, t.Any],
    order: tuple[str, ...],
    getter: t.Any,
    convs: tuple[tuple[int, t.Any], ...],
) -> t.Any:
    if getter is None:
        params: t.Any = [d[name] for name in order]
    else:
        params = getter(d)
    return convert_values(params, convs) if convs else params


def _saver(meta: Options) -> _Saver:
    saver = meta._saver
    if saver is None:
        saver = meta._saver = _Saver(meta)
    return saver
