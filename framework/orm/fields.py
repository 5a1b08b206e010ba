"""Model fields: what a column holds and how values travel to and from it.

Each field knows its SQLAlchemy column type, how to check a value before
``save()`` (:meth:`Field.clean`), how to turn it into what the driver wants
(:meth:`Field.db_converter`) and back (:meth:`Field.python_converter`), and how
to serialise it to and from JSON (:meth:`Field.to_json` / :meth:`Field.to_python`)
for fixtures.
"""

from __future__ import annotations

import collections.abc as cabc
import datetime
import decimal
import itertools
import json
import re
import typing as t
import uuid

import sqlalchemy as sa

from ..dispatch import Sentinel
from .exceptions import FieldError

if t.TYPE_CHECKING:
    from .models import Model

__all__ = [
    "NOT_PROVIDED",
    "AutoField",
    "BigAutoField",
    "BigIntegerField",
    "BooleanField",
    "CharField",
    "DateField",
    "DateTimeField",
    "DecimalField",
    "Field",
    "FloatField",
    "IntegerField",
    "JSONField",
    "TextField",
    "UUIDField",
]

Converter = cabc.Callable[[t.Any], t.Any]


def convert_values(
    values: cabc.Iterable[t.Any], convs: tuple[tuple[int, Converter], ...]
) -> list[t.Any]:
    """Return ``values`` as a list, converted at each ``(index, converter)``.

    ``None`` is never converted. ``convs`` come from the fields'
    :meth:`Field.db_converter` or :meth:`Field.python_converter`.
    """
    converted = list(values)
    for index, convert in convs:
        value = converted[index]
        if value is not None:
            converted[index] = convert(value)
    return converted


NOT_PROVIDED: t.Final = Sentinel("NOT_PROVIDED")
"""Marks a field without a default."""

_counter = itertools.count()

UTC = datetime.UTC


class Field:
    """Base class of every model field.

    :param null: whether the column accepts NULL (``None``).
    :param default: a value or a callable returning the value of new instances.
    :param primary_key: whether this field is the primary key.
    :param unique: whether the column carries a unique constraint.
    :param db_index: whether the column is indexed.
    :param choices: allowed values, as ``[(value, label), ...]`` or values.
    :param db_column: the column name, by default the field's ``attname``.
    :param blank: accepted for Django compatibility (forms); unused here.
    :param verbose_name: a human-readable name.
    """

    is_relation: t.ClassVar[bool] = False
    many_to_one: t.ClassVar[bool] = False
    one_to_one: t.ClassVar[bool] = False
    many_to_many: t.ClassVar[bool] = False
    concrete: t.ClassVar[bool] = True
    python_types: t.ClassVar[tuple[type, ...]] = (object,)
    type_label: t.ClassVar[str] = "a value"
    empty_strings_allowed: t.ClassVar[bool] = False
    """True for text fields: without a default and ``null=True`` they start
    as ``""`` (Django's rule), else as ``None``."""

    def __init__(
        self,
        verbose_name: str | None = None,
        *,
        null: bool = False,
        default: t.Any = NOT_PROVIDED,
        primary_key: bool = False,
        unique: bool = False,
        db_index: bool = False,
        choices: cabc.Iterable[t.Any] | None = None,
        db_column: str | None = None,
        blank: bool = False,
        editable: bool = True,
        max_length: int | None = None,
    ) -> None:
        self.verbose_name = verbose_name
        self.null = null
        """Whether ``None`` may be saved."""
        self.default = default
        """The default value or callable, or :data:`NOT_PROVIDED`."""
        self.primary_key = primary_key
        self.unique = unique or primary_key
        self.db_index = db_index
        self.choices: list[tuple[t.Any, t.Any]] | None = None
        if choices is not None:
            self.choices = [
                tuple(choice) if isinstance(choice, list | tuple) else (choice, choice)
                for choice in choices
            ]
        self._choice_values = (
            frozenset(value for value, _ in self.choices) if self.choices else None
        )
        self.db_column = db_column
        self.blank = blank
        self.editable = editable
        self.max_length = max_length
        self.name: str = ""
        """The attribute name on the model."""
        self.attname: str = ""
        """The instance ``__dict__`` key holding the value (``author_id`` for a FK)."""
        self.column: str = ""
        """The database column name."""
        self.model: type[Model] | None = None
        self.creation_counter = next(_counter)
        self.auto_created = False

    def __repr__(self) -> str:
        owner = self.model.__name__ + "." if self.model is not None else ""
        return f"<{type(self).__name__}: {owner}{self.name or '?'}>"

    # Class set-up ---------------------------------------------------------

    def get_attname(self) -> str:
        """Return the instance attribute holding the raw value."""
        return self.name

    def set_attributes_from_name(self, name: str) -> None:
        """Fill in ``name``, ``attname`` and ``column`` from the attribute name."""
        self.name = name
        self.attname = self.get_attname()
        self.column = self.db_column or self.attname

    def contribute_to_class(self, cls: type[Model], name: str) -> None:
        """Attach the field to ``cls`` under ``name``."""
        self.set_attributes_from_name(name)
        self.model = cls
        cls._meta.add_field(self)

    def check_definition(self) -> None:
        """Raise :class:`FieldError` when the field is declared wrongly."""

    # Values ---------------------------------------------------------------

    def has_default(self) -> bool:
        """Return whether the field has a default."""
        return self.default is not NOT_PROVIDED

    def get_default(self) -> t.Any:
        """Return the value a new instance starts with."""
        default = self.default
        if default is NOT_PROVIDED:
            return self.implicit_default()
        if callable(default):
            return default()
        return default

    def implicit_default(self) -> t.Any:
        """Return what a new instance holds without a default: ``""`` or None."""
        return "" if self.empty_strings_allowed and not self.null else None

    def clean(self, value: t.Any) -> t.Any:
        """Check a non-``None`` value before it is saved; return it, maybe coerced.

        The check custom fields override (docs/orm.md, "Custom fields"):
        ``save()``, ``bulk_create()``, ``QuerySet.update()`` and filters call
        it. The default accepts instances of :attr:`python_types`.

        :raises ValueError: with a message for the user when the value is wrong.
        """
        if self.python_types != (object,) and not isinstance(value, self.python_types):
            raise ValueError(
                f"expected {self.type_label}, got {type(value).__name__} {value!r}"
            )
        return value

    def can_hold(self, value: t.Any) -> bool:
        """Return False for a value no row of this column can hold.

        A lookup for such a value matches nothing instead of failing: an
        integer out of the column's range, text with a NUL character or a
        lone surrogate (refused on save by both backends' fields), text
        longer than ``max_length``. Values of the wrong type return True:
        :meth:`clean` reports those.
        """
        return True

    def check_choices(self, value: t.Any) -> None:
        """Raise ValueError when ``value`` is not one of the choices."""
        if self._choice_values is not None and value not in self._choice_values:
            allowed = ", ".join(repr(v) for v, _ in self.choices or ())
            raise ValueError(f"{value!r} is not one of the choices ({allowed})")

    def pre_save(self, instance: Model, add: bool) -> t.Any:
        """Return the value to save; fields like ``auto_now`` set it here."""
        return instance.__dict__[self.attname]

    has_pre_save: t.ClassVar[bool] = False

    def _fast_check(self, var: str) -> str | None:
        """Return a Python expression true when ``var`` surely needs no cleaning.

        Private to the built-in fields: the generated insert function of a
        model (``_saving._Saver._build_inserter``) inlines this expression
        instead of calling :meth:`clean`. ``None`` (the default, and what
        custom fields get) means "call :meth:`clean`", which is the public way
        to check values. Choices always go through :meth:`clean`. Besides
        builtins, the expression may use the names in :data:`FAST_CHECK_NAMES`.
        """
        return None

    def db_converter(self, vendor: str) -> Converter | None:
        """Return the function turning a clean value into the driver's, or None."""
        return None

    def python_converter(self, vendor: str) -> Converter | None:
        """Return the function turning a driver value into Python, or None."""
        return None

    def get_db_prep_value(self, value: t.Any, vendor: str) -> t.Any:
        """Convert ``value`` (for a query parameter) into the driver's value."""
        if value is None:
            return None
        value = self.clean(value)
        convert = self.db_converter(vendor)
        return convert(value) if convert is not None else value

    def to_python(self, value: t.Any) -> t.Any:
        """Turn a JSON-compatible value (from a fixture) into the Python value."""
        if value is None:
            return None
        return self.clean(value)

    def to_json(self, value: t.Any) -> t.Any:
        """Turn a Python value into a JSON-compatible one (for a fixture)."""
        return value

    def value_from_object(self, obj: Model) -> t.Any:
        """Return this field's value on ``obj``."""
        return obj.__dict__.get(self.attname)

    # Schema ---------------------------------------------------------------

    def sa_type(self) -> t.Any:
        """Return the SQLAlchemy column type."""
        raise NotImplementedError

    def sa_column(self) -> sa.Column[t.Any]:
        """Return a new SQLAlchemy column for the model's table."""
        return sa.Column(
            self.column,
            self.sa_type(),
            primary_key=self.primary_key,
            nullable=self.null and not self.primary_key,
            unique=self.unique and not self.primary_key,
            index=self.db_index and not self.unique,
            autoincrement=False,
        )


class IntegerField(Field):
    """A 32-bit signed integer."""

    python_types = (int,)
    type_label = "an integer"
    min_value: t.ClassVar[int] = -(2**31)
    max_value: t.ClassVar[int] = 2**31 - 1

    def clean(self, value: t.Any) -> t.Any:
        """Accept ints (not bools) within the column's range."""
        if type(value) is not int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(
                    f"expected {self.type_label}, got {type(value).__name__} {value!r}"
                )
            value = int(value)
        if not self.min_value <= value <= self.max_value:
            raise ValueError(
                f"{value} is out of range [{self.min_value}, {self.max_value}]"
            )
        return value

    def can_hold(self, value: t.Any) -> bool:
        """Return False for an int outside the column's range."""
        return type(value) is not int or self.min_value <= value <= self.max_value

    def _fast_check(self, var: str) -> str | None:
        """Accept exact ints within range without a call."""
        if self.choices:
            return None
        return f"(type({var}) is int and {self.min_value} <= {var} <= {self.max_value})"

    def to_python(self, value: t.Any) -> t.Any:
        """Accept ints and integer strings."""
        if isinstance(value, str):
            value = int(value)
        return super().to_python(value)

    def sa_type(self) -> t.Any:
        """Return ``Integer``."""
        return sa.Integer()


class BigIntegerField(IntegerField):
    """A 64-bit signed integer."""

    min_value = -(2**63)
    max_value = 2**63 - 1

    def sa_type(self) -> t.Any:
        """Return ``BigInteger``."""
        return sa.BigInteger()


class AutoField(IntegerField):
    """An integer primary key the database assigns on insert."""

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        kwargs.setdefault("primary_key", True)
        super().__init__(*args, **kwargs)

    def sa_type(self) -> t.Any:
        """Return ``Integer``: on SQLite the rowid alias."""
        return sa.Integer()

    def sa_column(self) -> sa.Column[t.Any]:
        """Return the primary key column with autoincrement."""
        return sa.Column(
            self.column, self.sa_type(), primary_key=True, autoincrement=True
        )


class BigAutoField(AutoField):
    """A 64-bit integer primary key the database assigns on insert."""

    max_value = 2**63 - 1

    def sa_type(self) -> t.Any:
        """Return ``BigInteger`` (``INTEGER`` on SQLite, to stay the rowid)."""
        return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class FloatField(Field):
    """A double precision floating point number."""

    python_types = (float, int)
    type_label = "a number"

    def _fast_check(self, var: str) -> str | None:
        """Accept exact floats but NaN (which is not equal to itself) without a call."""
        return None if self.choices else f"(type({var}) is float and {var} == {var})"

    def clean(self, value: t.Any) -> t.Any:
        """Accept floats and ints (not bools); ints become floats; never NaN.

        NaN is refused on every backend: SQLite stores it as NULL (a lost
        value, or a NOT NULL failure), PostgreSQL as NaN.
        """
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(
                f"expected {self.type_label}, got {type(value).__name__} {value!r}"
            )
        number = float(value)
        if number != number:
            raise ValueError(
                "is NaN (not a number), which is not stored alike everywhere"
            )
        return number

    def to_python(self, value: t.Any) -> t.Any:
        """Accept numbers and numeric strings (fixtures write ``"1.2"`` too)."""
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise ValueError(f"expected a number, got {value!r}") from None
        return super().to_python(value)

    def sa_type(self) -> t.Any:
        """Return ``Float``."""
        return sa.Float()


class DecimalField(Field):
    """A fixed precision decimal number.

    :param max_digits: the total number of digits.
    :param decimal_places: the digits after the decimal point.
    """

    type_label = "a decimal number"

    def __init__(
        self,
        *args: t.Any,
        max_digits: int | None = None,
        decimal_places: int | None = None,
        **kwargs: t.Any,
    ) -> None:
        self.max_digits = max_digits
        self.decimal_places = decimal_places
        super().__init__(*args, **kwargs)

    def check_definition(self) -> None:
        """Require ``max_digits`` and ``decimal_places``."""
        if self.max_digits is None or self.decimal_places is None:
            raise FieldError(
                f"{self!r} needs max_digits and decimal_places,"
                " e.g. DecimalField(max_digits=10, decimal_places=2)."
            )
        if self.decimal_places > self.max_digits:
            raise FieldError(f"{self!r}: decimal_places exceeds max_digits.")

    def clean(self, value: t.Any) -> t.Any:
        """Accept Decimals, ints, floats and numeric strings that fit."""
        if isinstance(value, bool) or not isinstance(
            value, decimal.Decimal | int | float | str
        ):
            raise ValueError(
                f"expected {self.type_label}, got {type(value).__name__} {value!r}"
            )
        try:
            number = decimal.Decimal(str(value) if isinstance(value, float) else value)
        except decimal.InvalidOperation:
            raise ValueError(f"expected {self.type_label}, got {value!r}") from None
        if not number.is_finite():
            raise ValueError(f"expected a finite number, got {value!r}")
        places = t.cast(int, self.decimal_places)
        try:
            number = number.quantize(decimal.Decimal(1).scaleb(-places))
        except decimal.InvalidOperation:
            # More digits than the decimal context holds ("1e100").
            digits = t.cast(int, self.max_digits) + 1
        else:
            digits = len(number.as_tuple().digits)
        if digits > t.cast(int, self.max_digits) and number != 0:
            raise ValueError(
                f"{value!r} has more than {self.max_digits} digits"
                f" ({places} after the point)"
            )
        return number

    def db_converter(self, vendor: str) -> Converter | None:
        """Send decimals as text to SQLite (it has no decimal type)."""
        return str if vendor == "sqlite" else None

    def python_converter(self, vendor: str) -> Converter | None:
        """Turn what the driver returns into a quantized Decimal."""
        quantum = decimal.Decimal(1).scaleb(-t.cast(int, self.decimal_places))

        def convert(value: t.Any) -> t.Any:
            if isinstance(value, float):
                value = repr(value)
            return decimal.Decimal(value).quantize(quantum)

        return convert

    def to_json(self, value: t.Any) -> t.Any:
        """Return the decimal as a string, keeping every digit."""
        return None if value is None else str(value)

    def sa_type(self) -> t.Any:
        """Return ``Numeric(max_digits, decimal_places)``."""
        return sa.Numeric(self.max_digits, self.decimal_places, asdecimal=True)


class BooleanField(Field):
    """True or False."""

    python_types = (bool,)
    type_label = "True or False"

    def _fast_check(self, var: str) -> str | None:
        """Accept True and False without a call."""
        return None if self.choices else f"({var} is True or {var} is False)"

    def clean(self, value: t.Any) -> t.Any:
        """Accept bools only (0 and 1 too, as the fixtures of other ORMs do)."""
        if value is True or value is False:
            return value
        if type(value) is int and value in (0, 1):
            return bool(value)
        raise ValueError(f"expected True or False, got {value!r}")

    def python_converter(self, vendor: str) -> Converter | None:
        """SQLite returns 0/1: turn them into bools."""
        return bool if vendor == "sqlite" else None

    def sa_type(self) -> t.Any:
        """Return ``Boolean``."""
        return sa.Boolean(create_constraint=False)


_LONE_SURROGATE: t.Final = re.compile("[\ud800-\udfff]")


def text_storable(text: str) -> bool:
    """Return whether a text column can hold ``text`` (no NUL, no lone surrogate)."""
    return "\x00" not in text and (
        text.isascii() or _LONE_SURROGATE.search(text) is None
    )


FAST_CHECK_NAMES: t.Final = {"_lone_surrogate": _LONE_SURROGATE.search}
"""Names the expressions of ``Field._fast_check`` may use."""


def _check_nul(text: str) -> None:
    # PostgreSQL cannot store NUL in text, and no backend can store a lone
    # surrogate (it has no UTF-8 encoding: the driver fails): both are
    # refused everywhere, which keeps the backends alike.
    if "\x00" in text:
        raise ValueError(
            "contains a NUL character (\\x00), which text columns cannot hold"
        )
    if not text.isascii() and _LONE_SURROGATE.search(text) is not None:
        raise ValueError(
            "contains a lone surrogate (an unpaired \\ud800-\\udfff escape),"
            " which is not valid Unicode text"
        )


def _fast_text(var: str) -> str:
    # PERF: isascii() is O(1) in CPython; only non-ASCII text is searched.
    return (
        f"'\\x00' not in {var} and ({var}.isascii() or _lone_surrogate({var}) is None)"
    )


class CharField(Field):
    """A string with a maximum length (``max_length``, required)."""

    python_types = (str,)
    type_label = "a string"
    empty_strings_allowed = True

    def check_definition(self) -> None:
        """Require a positive ``max_length``."""
        if (
            not isinstance(self.max_length, int)
            or isinstance(self.max_length, bool)
            or self.max_length <= 0
        ):
            raise FieldError(
                f"{self!r} needs max_length, a positive integer,"
                " e.g. CharField(max_length=100)."
            )

    def _fast_check(self, var: str) -> str | None:
        """Accept short enough exact strings without NUL without a call."""
        if self.choices:
            return None
        return (
            f"(type({var}) is str and len({var}) <= {int(self.max_length or 0)}"
            f" and {_fast_text(var)})"
        )

    def can_hold(self, value: t.Any) -> bool:
        """Return False for text too long, or with a NUL or a lone surrogate."""
        return type(value) is not str or (
            len(value) <= t.cast(int, self.max_length) and text_storable(value)
        )

    def clean(self, value: t.Any) -> t.Any:
        """Accept strings no longer than ``max_length``, without NUL characters.

        Lone surrogates are refused too (they cannot be encoded).
        """
        if type(value) is not str and not isinstance(value, str):
            raise ValueError(f"expected a string, got {type(value).__name__} {value!r}")
        if len(value) > t.cast(int, self.max_length):
            raise ValueError(
                f"is {len(value)} characters long; at most {self.max_length} allowed"
            )
        _check_nul(value)
        return value

    def sa_type(self) -> t.Any:
        """Return ``String(max_length)``."""
        return sa.String(self.max_length)


class TextField(Field):
    """A string of any length, or at most ``max_length`` characters.

    ``max_length`` (optional) is checked on every save, on both backends,
    like a :class:`CharField`'s; the column stays ``TEXT`` (changing it needs
    no migration). Give one to every text a client can send, so that one
    request cannot store megabytes that every later read then carries.
    """

    python_types = (str,)
    type_label = "a string"
    empty_strings_allowed = True

    def check_definition(self) -> None:
        """Allow no ``max_length`` or a positive one."""
        limit = self.max_length
        if limit is not None and (
            not isinstance(limit, int) or isinstance(limit, bool) or limit <= 0
        ):
            raise FieldError(
                f"{self!r}: max_length must be a positive integer or None,"
                f" got {limit!r}."
            )

    def _fast_check(self, var: str) -> str | None:
        """Accept exact strings without NUL, short enough, without a call."""
        if self.choices:
            return None
        length = (
            ""
            if self.max_length is None
            else f" and len({var}) <= {int(self.max_length)}"
        )
        return f"(type({var}) is str{length} and {_fast_text(var)})"

    def can_hold(self, value: t.Any) -> bool:
        """Return False for text too long, or with a NUL or a lone surrogate."""
        if type(value) is not str:
            return True
        limit = self.max_length
        return (limit is None or len(value) <= limit) and text_storable(value)

    def clean(self, value: t.Any) -> t.Any:
        """Accept strings without NUL characters or lone surrogates, short enough."""
        value = super().clean(value)
        if self.max_length is not None and len(value) > self.max_length:
            raise ValueError(
                f"is {len(value)} characters long; at most {self.max_length} allowed"
            )
        _check_nul(value)
        return value

    def sa_type(self) -> t.Any:
        """Return ``Text``."""
        return sa.Text()


def _sqlite_date(value: t.Any) -> t.Any:
    if isinstance(value, str):
        return datetime.date.fromisoformat(value)
    return value


class DateField(Field):
    """A calendar date (``datetime.date``)."""

    type_label = "a date"

    def __init__(
        self,
        *args: t.Any,
        auto_now: bool = False,
        auto_now_add: bool = False,
        **kwargs: t.Any,
    ) -> None:
        self.auto_now = auto_now
        self.auto_now_add = auto_now_add
        super().__init__(*args, **kwargs)
        self.has_pre_save = auto_now or auto_now_add  # type: ignore[misc]

    def _now(self) -> t.Any:
        return datetime.datetime.now(UTC).date()

    def pre_save(self, instance: Model, add: bool) -> t.Any:
        """Set the value to now for ``auto_now`` (and ``auto_now_add`` on insert)."""
        if self.auto_now or (self.auto_now_add and add):
            value = self._now()
            instance.__dict__[self.attname] = value
            return value
        return instance.__dict__[self.attname]

    def clean(self, value: t.Any) -> t.Any:
        """Accept dates (not datetimes) and ISO date strings."""
        if type(value) is datetime.date:
            return value
        if isinstance(value, str):
            try:
                return datetime.date.fromisoformat(value)
            except ValueError:
                pass
        raise ValueError(f"expected a date, got {type(value).__name__} {value!r}")

    def db_converter(self, vendor: str) -> Converter | None:
        """Send ISO text to SQLite."""
        return datetime.date.isoformat if vendor == "sqlite" else None

    def python_converter(self, vendor: str) -> Converter | None:
        """Parse SQLite's ISO text."""
        return _sqlite_date if vendor == "sqlite" else None

    def to_json(self, value: t.Any) -> t.Any:
        """Return the ISO date string."""
        return None if value is None else value.isoformat()

    def sa_type(self) -> t.Any:
        """Return ``Date``."""
        return sa.Date()


def _to_utc_naive_text(value: datetime.datetime) -> str:
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(" ")


def _from_sqlite_datetime(value: t.Any) -> t.Any:
    if isinstance(value, str):
        parsed = datetime.datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            return parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    return value


class DateTimeField(DateField):
    """A timezone-aware date and time; naive values are taken as UTC."""

    type_label = "a datetime"

    def _now(self) -> t.Any:
        return datetime.datetime.now(UTC)

    def clean(self, value: t.Any) -> t.Any:
        """Accept datetimes and ISO strings; return an aware datetime."""
        if isinstance(value, str):
            try:
                value = datetime.datetime.fromisoformat(value)
            except ValueError:
                raise ValueError(f"expected a datetime, got {value!r}") from None
        if not isinstance(value, datetime.datetime):
            raise ValueError(
                f"expected a datetime, got {type(value).__name__} {value!r}"
            )
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value

    def db_converter(self, vendor: str) -> Converter | None:
        """Send naive UTC ISO text to SQLite (sorts like the instants)."""
        return _to_utc_naive_text if vendor == "sqlite" else None

    def python_converter(self, vendor: str) -> Converter | None:
        """Return aware UTC datetimes."""
        return _from_sqlite_datetime if vendor == "sqlite" else None

    def sa_type(self) -> t.Any:
        """Return ``DateTime(timezone=True)``."""
        return sa.DateTime(timezone=True)


def _json_dumps(value: t.Any) -> str:
    # allow_nan=False: NaN and Infinity are not JSON (PostgreSQL refuses them).
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


# A \u0000 escape not itself escaped: a NUL character in a JSON string.
_JSON_NUL: t.Final = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")


def _json_loads(value: t.Any) -> t.Any:
    if isinstance(value, str | bytes):
        return json.loads(value)
    return value


class JSONField(Field):
    """Any JSON-serialisable value (dicts, lists, strings, numbers, booleans)."""

    type_label = "a JSON-serialisable value"

    def clean(self, value: t.Any) -> t.Any:
        """Accept values ``json.dumps`` can write."""
        try:
            text = _json_dumps(value)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"is not JSON-serialisable: {exc}") from None
        if "\\u0000" in text and _JSON_NUL.search(text):
            raise ValueError(
                "holds a NUL character (\\u0000), which JSON columns cannot hold"
            )
        if not text.isascii() and _LONE_SURROGATE.search(text) is not None:
            raise ValueError(
                "holds a lone surrogate (an unpaired \\ud800-\\udfff escape),"
                " which is not valid Unicode text"
            )
        return value

    def db_converter(self, vendor: str) -> Converter | None:
        """Send JSON text."""
        return _json_dumps

    def python_converter(self, vendor: str) -> Converter | None:
        """Parse JSON text (psycopg already decodes jsonb)."""
        return _json_loads

    def to_python(self, value: t.Any) -> t.Any:
        """Return the value as it is: it came from JSON."""
        return value

    def sa_type(self) -> t.Any:
        """Return ``JSONB`` on PostgreSQL, ``TEXT`` on SQLite."""
        from sqlalchemy.dialects import postgresql

        return sa.Text().with_variant(postgresql.JSONB(), "postgresql")


def _uuid_from_db(value: t.Any) -> t.Any:
    if isinstance(value, uuid.UUID):
        return value
    return uuid.UUID(value)


class UUIDField(Field):
    """A UUID; strings in any standard form are accepted."""

    type_label = "a UUID"

    def clean(self, value: t.Any) -> t.Any:
        """Accept UUIDs and UUID strings; return a ``uuid.UUID``."""
        if isinstance(value, uuid.UUID):
            return value
        if isinstance(value, str):
            try:
                return uuid.UUID(value)
            except ValueError:
                pass
        raise ValueError(f"expected a UUID, got {type(value).__name__} {value!r}")

    def db_converter(self, vendor: str) -> Converter | None:
        """Send 32 hex digits to SQLite."""
        return _uuid_hex if vendor == "sqlite" else None

    def python_converter(self, vendor: str) -> Converter | None:
        """Return ``uuid.UUID`` objects."""
        return _uuid_from_db if vendor == "sqlite" else None

    def to_json(self, value: t.Any) -> t.Any:
        """Return the canonical string."""
        return None if value is None else str(value)

    def sa_type(self) -> t.Any:
        """Return ``Uuid`` (``CHAR(32)`` on SQLite)."""
        return sa.Uuid(as_uuid=True)


def _uuid_hex(value: uuid.UUID) -> str:
    return value.hex
