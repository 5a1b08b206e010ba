"""Failure paths: commits that fail, closed connections, odd values, fixtures."""

import datetime
import decimal
import uuid

import pytest

from framework import orm
from framework import signals
from framework.orm import transaction
from framework.orm.db import ConnectionHandler

from .models import Author
from .models import Book
from .models import Everything
from .models import Tagged


def test_deferred_foreign_key_fails_at_commit(db):
    with pytest.raises(orm.IntegrityError, match="(?i)foreign key"):
        with orm.atomic():
            Book.objects.create(title="orphan", author_id=999_999)
            assert Book.objects.count() == 1
    assert Book.objects.count() == 0
    assert not db.in_atomic_block
    Author.objects.create(name="still works")


def test_atomic_refuses_foreign_transaction(db):
    db.begin()
    try:
        with pytest.raises(orm.TransactionManagementError, match="opened outside"):
            with orm.atomic():
                pass
    finally:
        db.rollback()
    assert transaction.get_connection() is db


def test_hook_defaults_to_default_alias(db):
    calls = []
    assert transaction.savepoint_hook(lambda: calls.append(1), {"using": 3}) is False
    with orm.atomic():
        assert transaction.savepoint_hook(lambda: calls.append(2), {}) is True
    assert calls == [2]


def test_update_across_relation_and_uuid_pk_set(db):
    ann = Author.objects.create(name="Ann")
    Book.objects.create(title="a", author=ann)
    Book.objects.create(title="b", author=Author.objects.create(name="Bob"))
    assert Book.objects.filter(author__name="Ann").update(pages=7) == 1
    assert Book.objects.get(title="a").pages == 7
    one = Tagged.objects.create(label="one")
    seen = []

    def grab(sender, pk_set, **kwargs):
        seen.append(pk_set)

    with signals.post_update.connected_to(grab, sender=Tagged):
        Tagged.objects.filter(label="one").update(label="uno")
    assert seen == [frozenset({one.pk})]
    assert isinstance(next(iter(seen[0])), uuid.UUID)


def test_fast_delete_across_relation(db):
    ann = Author.objects.create(name="Ann")
    Book.objects.create(title="a", author=ann)
    Book.objects.create(title="b", author=Author.objects.create(name="Bob"))
    # No receivers and nothing depends on chapters: one DELETE statement.
    from .models import Chapter

    Chapter.objects.create(book=Book.objects.get(title="a"), number=1)
    assert Chapter.objects.filter(book__author__name="Ann").delete()[0] == 1


def test_bulk_create_checks(db):
    with pytest.raises(TypeError, match="bulk_create\\(\\) of Author got"):
        Author.objects.bulk_create([Book(title="x")])
    author = Author(name="later")
    with pytest.raises(ValueError, match="unsaved Author"):
        Book.objects.bulk_create([Book(title="x", author=author)])
    author.save()
    books = Book.objects.bulk_create([Book(title="x", author=author)], batch_size=1)
    assert books[0].author_id == author.pk
    tags = Tagged.objects.bulk_create([Tagged(label="a"), Tagged(label="b")])
    assert Tagged.objects.count() == 2 and all(
        isinstance(t.pk, uuid.UUID) for t in tags
    )


def test_field_conversions():
    price = Everything._meta.get_field("price")
    assert price.clean(1.5) == decimal.Decimal("1.50")
    for bad in ("abc", float("nan"), True, [1]):
        with pytest.raises(ValueError, match="expected"):
            price.clean(bad)
    moment = Everything._meta.get_field("moment")
    with pytest.raises(ValueError, match="expected a datetime"):
        moment.clean("not a date")
    with pytest.raises(ValueError, match="expected a datetime"):
        moment.clean(datetime.date(2024, 1, 1))
    day = Everything._meta.get_field("day")
    assert day.to_python("2024-02-29") == datetime.date(2024, 2, 29)
    assert day.to_json(datetime.date(2024, 2, 29)) == "2024-02-29"
    token = Everything._meta.get_field("token")
    value = uuid.uuid4()
    assert token.to_python(value.hex) == value and token.to_json(value) == str(value)
    assert Everything._meta.get_field("data").to_python({"a": 1}) == {"a": 1}
    assert Everything._meta.get_field("small").to_python("12") == 12
    flag = Everything._meta.get_field("flag")
    assert flag.clean(1) is True and flag.to_python(0) is False
    big = Everything._meta.get_field("big")
    with pytest.raises(ValueError, match="out of range"):
        big.clean(2**64)
    assert repr(big) == "<BigIntegerField: Everything.big>"


def test_decimal_field_definition_errors():
    with pytest.raises(orm.FieldError, match="needs max_digits and decimal_places"):

        class NoDigits(orm.Model):
            amount = orm.DecimalField()

            class Meta:
                app_label = "ormdynamic"

    with pytest.raises(orm.FieldError, match="decimal_places exceeds max_digits"):

        class TooMany(orm.Model):
            amount = orm.DecimalField(max_digits=2, decimal_places=3)

            class Meta:
                app_label = "ormdynamic"


def test_constraint_definition_errors():
    with pytest.raises(orm.FieldError, match="at least one field"):
        orm.UniqueConstraint(fields=[])
    with pytest.raises(orm.FieldError, match="at least one field"):
        orm.Index(fields=[])

    class Bad(orm.Model):
        name = orm.CharField(max_length=5)

        class Meta:
            app_label = "ormdynamic"
            indexes = [orm.Index(fields=["nope"])]

    try:
        with pytest.raises(orm.FieldError, match="Index of Bad names 'nope'"):
            Bad._meta.table  # noqa: B018
    finally:
        orm.registry.unregister(Bad)


def test_connection_handler_api(backend):
    handler = ConnectionHandler()
    assert "default" in handler and list(handler) == ["default"]
    assert "other" not in handler
    assert [w.alias for w in handler.all()] == ["default"]
    assert "vendor=" in repr(handler["default"])
    assert "aliases=['default']" in repr(handler)
    assert handler.get_if_exists("default") is handler["default"]
    handler.reset()


def test_empty_databases_setting():
    from framework.conf import override_settings

    with override_settings(DATABASES={}):
        with pytest.raises(
            orm.ImproperlyConfigured, match="DATABASES must be a non-empty"
        ):
            orm.connections["default"]


def test_integrity_error_on_raw_execute(db):
    Author.objects.create(name="a", email="e")
    with pytest.raises(orm.IntegrityError, match="database 'default'"):
        db.execute("INSERT INTO ormtests_author (name, email) VALUES ('b', 'e')")
    assert db.is_usable()


def test_hot_paths_compile_no_sql_after_the_first_call(db, compilations):
    from .models import Tagged

    def cycle():
        author = Author(name="x")
        author.save()
        author.name = "y"
        author.save()
        author.save(update_fields=["name"])
        assert Author.objects.get(pk=author.pk).name == "y"
        assert [a.pk for a in Author.objects.filter(name="y")] == [author.pk]
        tag = Tagged.objects.create(label="t")
        tag.delete()
        Author.objects.filter(pk=author.pk).delete()

    cycle()  # the first call of each shape compiles, once per vendor
    with compilations() as compiled:
        for _ in range(3):
            cycle()
    assert compiled == []
    # The spy does see compiles: a new shape is compiled once.
    with compilations() as compiled:
        list(Author.objects.filter(name__startswith="unseen shape").order_by("-email"))
    assert compiled
