"""Custom fields: a subclass of ``orm.Field`` that implements ``clean()``.

No source code is involved: the public API is ordinary methods (``clean``,
``sa_type``, ``db_converter``, ``python_converter``), as docs/orm.md shows.
"""

from __future__ import annotations

import decimal

import pytest
import sqlalchemy as sa

from framework import orm

CENT = decimal.Decimal("0.01")


class MoneyField(orm.Field):
    """An amount with two decimal places, stored as integer cents."""

    type_label = "an amount"

    def clean(self, value):
        if isinstance(value, bool) or not isinstance(
            value, decimal.Decimal | int | str
        ):
            raise ValueError(f"expected an amount, got {type(value).__name__}")
        try:
            amount = decimal.Decimal(value).quantize(CENT)
        except decimal.InvalidOperation:
            raise ValueError(f"{value!r} is not an amount") from None
        if amount < 0:
            raise ValueError(f"{amount} is negative")
        return amount

    def db_converter(self, vendor):
        return lambda amount: int(amount * 100)

    def python_converter(self, vendor):
        return lambda cents: (decimal.Decimal(cents) / 100).quantize(CENT)

    def sa_type(self):
        return sa.BigInteger()


class EmailField(orm.Field):
    """A lower-cased address containing one ``@``."""

    def clean(self, value):
        if not isinstance(value, str) or value.count("@") != 1:
            raise ValueError(f"{value!r} is not an e-mail address")
        return value.lower()

    def sa_type(self):
        return sa.String(100)


class Order(orm.Model):
    customer = orm.CharField(max_length=20)
    email = EmailField(null=True)
    total = MoneyField()
    quantity = orm.IntegerField(default=1)
    size = MoneyField(choices=[decimal.Decimal("1.00"), decimal.Decimal("2.00")])

    class Meta:
        app_label = "ormtests_custom"


def make(**values):
    values = {"customer": "ann", "total": 10, "size": 1, **values}
    return Order(**values)


def test_clean_coerces_and_converters_roundtrip(db):
    order = make(email="Ann@Example.ORG", total="19.5")
    order.save()
    assert order.total == decimal.Decimal("19.50")
    assert order.email == "ann@example.org"
    raw = db.execute(
        f"SELECT total, email, size FROM ormtests_custom_order WHERE id = {order.pk}"
    ).fetchone()
    assert tuple(raw) == (1950, "ann@example.org", 100)
    loaded = Order.objects.get(pk=order.pk)
    assert loaded.total == decimal.Decimal("19.50")
    assert loaded.size == decimal.Decimal("1.00")
    assert Order.objects.filter(total=decimal.Decimal("19.5")).count() == 1
    assert Order.objects.filter(total__gt=19).count() == 1


def test_null_custom_value_is_not_cleaned(db):
    order = make(email=None)
    order.save()
    assert Order.objects.get(pk=order.pk).email is None
    with pytest.raises(orm.ValidationError, match="Order.total: cannot be None"):
        make(total=None).save()


@pytest.mark.parametrize(
    ("values", "messages"),
    [
        ({"total": -1}, {"Order.total": ["-1.00 is negative"]}),
        ({"total": "ten"}, {"Order.total": ["'ten' is not an amount"]}),
        ({"email": "nobody"}, {"Order.email": ["'nobody' is not an e-mail address"]}),
        (
            {"size": 3},
            {"Order.size": ["Decimal('3.00') is not one of the choices ("]},
        ),
        (
            {"customer": "x" * 21, "total": True},
            {
                "Order.customer": ["is 21 characters long; at most 20 allowed"],
                "Order.total": ["expected an amount, got bool"],
            },
        ),
    ],
)
def test_wrong_values_list_every_error_and_write_nothing(db, values, messages):
    order = make(**values)
    with pytest.raises(orm.ValidationError) as info:
        order.save()
    got = info.value.message_dict
    assert sorted(got) == sorted(messages)
    for key, expected in messages.items():
        assert len(got[key]) == 1
        assert got[key][0].startswith(expected[0])
    assert order.pk is None
    assert Order.objects.count() == 0


def test_clean_runs_once_per_save(db, monkeypatch):
    calls = []
    original = EmailField.clean

    def counting(self, value):
        calls.append(value)
        return original(self, value)

    monkeypatch.setattr(EmailField, "clean", counting)
    make(email="A@B.C").save()
    make(email="d@e.f", customer="bob").save()
    assert calls == ["A@B.C", "d@e.f"]


def test_update_paths_use_clean(db):
    order = make()
    order.save()
    order.total = "7.125"
    order.save()
    assert Order.objects.get(pk=order.pk).total == decimal.Decimal("7.12")
    Order.objects.filter(pk=order.pk).update(total="3")
    assert Order.objects.get(pk=order.pk).total == decimal.Decimal("3.00")
    with pytest.raises(orm.ValidationError, match="Order.total: -2.00 is negative"):
        Order.objects.filter(pk=order.pk).update(total=-2)
    created = Order.objects.bulk_create([make(total="1.5"), make(total=2)])
    assert sorted(o.total for o in Order.objects.all()) == [
        decimal.Decimal("1.50"),
        decimal.Decimal("2.00"),
        decimal.Decimal("3.00"),
    ]
    assert len(created) == 2
