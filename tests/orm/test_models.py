import datetime
import decimal
import uuid

import pytest

from framework import orm
from framework import signals

from .models import Author
from .models import Book
from .models import Everything
from .models import Pizza
from .models import Tagged
from .models import Topping


def test_meta_names():
    meta = Book._meta
    assert meta.app_label == "ormtests"
    assert meta.model_name == "book"
    assert meta.object_name == "Book"
    assert meta.label == "ormtests.Book"
    assert meta.db_table == "ormtests_book"
    assert [f.name for f in meta.fields] == [
        "id",
        "title",
        "author",
        "pages",
        "in_print",
    ]
    assert meta.pk.name == "id"
    assert meta.get_field("author").attname == "author_id"
    assert meta.get_field("author").related_model is Author
    assert meta.get_field("author").remote_field.model is Author
    assert meta.table.name == "ormtests_book"
    assert meta.table in orm.registry.metadata.tables.values()
    assert Author._meta.ordering == ["name"]


def test_get_field_error_lists_choices():
    with pytest.raises(orm.FieldError, match="Book has no field named 'nope'.*title"):
        Book._meta.get_field("nope")


def test_registry():
    assert orm.registry.get_model("ormtests.book") is Book
    assert orm.registry.get_model("ormtests.BOOK") is Book
    through = Pizza.toppings.through
    assert through._meta.auto_created
    assert through in orm.registry.get_models("ormtests")
    assert orm.registry.get_models("ormtests").index(Pizza) < orm.registry.get_models(
        "ormtests"
    ).index(through)
    with pytest.raises(LookupError, match="No model 'ormtests.Nope'"):
        orm.registry.get_model("ormtests.Nope")


def test_app_label_from_module():
    import types

    module = types.ModuleType("shop.catalog.models")
    ns = {"__module__": "shop.catalog.models", "name": orm.CharField(max_length=5)}
    model = type(orm.Model)("Thing", (orm.Model,), ns)
    try:
        assert model._meta.app_label == "catalog"
        assert model._meta.db_table == "catalog_thing"
    finally:
        orm.registry.unregister(model)
    ns = {"__module__": "plainmod", "name": orm.CharField(max_length=5)}
    model = type(orm.Model)("Other", (orm.Model,), ns)
    try:
        assert model._meta.app_label == "plainmod"
    finally:
        orm.registry.unregister(model)
    del module


def test_class_prepared_for_models_and_through():
    seen = []

    def record(sender, **kwargs):
        seen.append(sender)

    with signals.class_prepared.connected_to(record):

        class Sauce(orm.Model):
            name = orm.CharField(max_length=10)

            class Meta:
                app_label = "ormdynamic"

        class Dish(orm.Model):
            sauces = orm.ManyToManyField(Sauce)

            class Meta:
                app_label = "ormdynamic"

    try:
        assert seen == [Sauce, Dish.sauces.through, Dish] or seen == [
            Sauce,
            Dish,
            Dish.sauces.through,
        ]
        assert Dish.sauces.through._meta.db_table == "ormdynamic_dish_sauces"
    finally:
        for model in (Dish.sauces.through, Dish, Sauce):
            orm.registry.unregister(model)


def test_bad_definitions_fail_at_class_creation():
    with pytest.raises(orm.FieldError, match="needs max_length"):

        class NoLength(orm.Model):
            name = orm.CharField()

            class Meta:
                app_label = "ormdynamic"

    with pytest.raises(orm.FieldError, match="on_delete"):
        orm.ForeignKey(Author, on_delete="cascade")
    with pytest.raises(orm.FieldError, match="SET_NULL\\) needs null=True"):
        orm.ForeignKey(Author, on_delete=orm.SET_NULL)
    with pytest.raises(orm.FieldError, match="unknown option"):

        class BadMeta(orm.Model):
            class Meta:
                app_label = "ormdynamic"
                colour = "red"


def test_init_rejects_unknown_kwargs():
    with pytest.raises(TypeError, match="unexpected keyword argument 'nme'"):
        Author(nme="x")
    with pytest.raises(TypeError, match="must be a Author instance"):
        Book(author="bob")


def test_field_api():
    field = Everything._meta.get_field("price")
    assert field.to_python("1.50") == decimal.Decimal("1.50")
    assert field.to_json(decimal.Decimal("1.50")) == "1.50"
    moment = Everything._meta.get_field("moment")
    value = moment.to_python("2024-05-01T10:00:00+02:00")
    assert value == datetime.datetime(2024, 5, 1, 8, tzinfo=datetime.UTC)
    assert moment.to_json(value) == value.isoformat()
    token = Everything._meta.get_field("token")
    assert isinstance(token.get_default(), uuid.UUID)
    assert Everything._meta.get_field("kind").choices == Everything.KINDS
    assert Book._meta.get_field("pages").get_default() == 100
    assert Book._meta.get_field("author").to_python(3) == 3


def test_roundtrip_every_field(db):
    moment = datetime.datetime(2024, 2, 29, 23, 30, 15, 123456, tzinfo=datetime.UTC)
    obj = Everything(
        small=-5,
        big=2**40,
        ratio=0.25,
        price=decimal.Decimal("123456.78"),
        flag=True,
        code="abcde",
        kind="b",
        body="long " * 100,
        day=datetime.date(2024, 2, 29),
        moment=moment,
        data={"k": [1, "two", None, True]},
    )
    obj.save()
    loaded = Everything.objects.get(pk=obj.pk)
    for name in (
        "small",
        "big",
        "ratio",
        "price",
        "flag",
        "code",
        "kind",
        "body",
        "day",
    ):
        assert getattr(loaded, name) == getattr(obj, name), name
    assert loaded.moment == moment
    assert loaded.moment.tzinfo is not None
    assert loaded.data == {"k": [1, "two", None, True]}
    assert loaded.token == obj.token
    assert isinstance(loaded.token, uuid.UUID)
    assert loaded.created.tzinfo is not None
    assert loaded.flag is True
    empty = Everything.objects.create()
    assert Everything.objects.get(pk=empty.pk).price is None


def test_naive_datetime_is_utc(db):
    obj = Everything.objects.create(moment=datetime.datetime(2024, 1, 1, 12, 0))
    assert Everything.objects.get(pk=obj.pk).moment == datetime.datetime(
        2024, 1, 1, 12, tzinfo=datetime.UTC
    )
    other_zone = datetime.timezone(datetime.timedelta(hours=5))
    Everything.objects.create(
        moment=datetime.datetime(2024, 1, 1, 16, 0, tzinfo=other_zone)
    )
    found = Everything.objects.filter(
        moment__gte=datetime.datetime(2024, 1, 1, 10, 59, tzinfo=datetime.UTC)
    ).count()
    assert found == 2


def test_auto_now(db):
    obj = Everything.objects.create()
    first_created, first_updated = obj.created, obj.updated
    obj.small = 1
    obj.save()
    assert obj.created == first_created
    assert obj.updated >= first_updated


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"code": "toolong"}, "Everything.code: is 7 characters long; at most 5"),
        ({"small": "five"}, "Everything.small: expected an integer"),
        ({"small": 2**40}, "Everything.small: .* out of range"),
        ({"flag": None}, "Everything.flag: cannot be None"),
        ({"flag": "yes"}, "Everything.flag: expected True or False"),
        (
            {"price": decimal.Decimal("1234567.0")},
            "Everything.price: .*more than 8 digits",
        ),
        ({"kind": "z"}, "Everything.kind: 'z' is not one of the choices"),
        ({"data": {1, 2}}, "Everything.data: is not JSON-serialisable"),
        ({"day": "yesterday"}, "Everything.day: expected a date"),
        ({"token": "not-a-uuid"}, "Everything.token: expected a UUID"),
        ({"ratio": "1.5"}, "Everything.ratio: expected a number"),
    ],
)
def test_validation_on_save_writes_nothing(db, values, message):
    obj = Everything(**values)
    with pytest.raises(orm.ValidationError, match=message):
        obj.save()
    assert obj.pk is None
    assert Everything.objects.count() == 0


def test_validation_on_update(db):
    author = Author.objects.create(name="Ann")
    author.name = "x" * 51
    with pytest.raises(orm.ValidationError, match="at most 50"):
        author.save()
    assert Author.objects.get(pk=author.pk).name == "Ann"
    with pytest.raises(orm.ValidationError, match="Author.name: cannot be None"):
        Author.objects.create(name=None)


def test_coercion_on_save(db):
    obj = Everything.objects.create(ratio=2, price=3, token=str(uuid.UUID(int=7)))
    assert obj.ratio == 2.0 and isinstance(obj.ratio, float)
    assert obj.price == decimal.Decimal("3.00")
    assert obj.token == uuid.UUID(int=7)


def test_save_update_and_update_fields(db):
    author = Author.objects.create(name="Ann")
    assert author._state.adding is False
    author.name = "Anne"
    author.email = "a@example.com"
    author.save(update_fields=["name"])
    fresh = Author.objects.get(pk=author.pk)
    assert fresh.name == "Anne"
    assert fresh.email is None
    with pytest.raises(orm.FieldError, match="update_fields names 'nope'"):
        author.save(update_fields=["nope"])


def test_save_with_explicit_pk_updates_or_inserts(db):
    Author(id=10, name="Ten").save()
    Author(id=10, name="Ten again").save()
    assert Author.objects.get(pk=10).name == "Ten again"
    assert Author.objects.count() == 1


def test_raw_save_keeps_pk(db):
    author = Author(id=42, name="Raw")
    author.save(raw=True)
    assert Author.objects.get(pk=42).name == "Raw"
    orm.reset_sequences([Author])
    assert Author.objects.create(name="Next").pk == 43


def test_uuid_primary_key_with_default(db):
    obj = Tagged.objects.create(label="one")
    assert isinstance(obj.pk, uuid.UUID)
    assert Tagged.objects.get(pk=obj.pk).label == "one"
    assert Tagged.objects.get(pk=str(obj.pk)).label == "one"
    with pytest.raises(orm.IntegrityError, match="(?i)unique"):
        Tagged.objects.create(label="one")


def test_integrity_error_wrapped(db):
    Author.objects.create(name="A", email="same@example.com")
    with pytest.raises(orm.IntegrityError, match="(?i)unique"):
        Author.objects.create(name="B", email="same@example.com")


def test_refresh_and_equality(db):
    author = Author.objects.create(name="Ann")
    copy = Author.objects.get(pk=author.pk)
    assert copy == author and hash(copy) == hash(author)
    Author.objects.filter(pk=author.pk).update(name="Zed")
    author.refresh_from_db()
    assert author.name == "Zed"
    assert Author(name="x") != Author(name="x")
    with pytest.raises(TypeError, match="unhashable"):
        hash(Author(name="x"))


def test_does_not_exist_per_model(db):
    with pytest.raises(
        Author.DoesNotExist, match="Author matching query does not exist"
    ):
        Author.objects.get(pk=999)
    assert issubclass(Author.DoesNotExist, orm.ObjectDoesNotExist)
    assert issubclass(Author.DoesNotExist, orm.DoesNotExist)
    assert not issubclass(Author.DoesNotExist, Book.DoesNotExist)
    assert issubclass(Book.MultipleObjectsReturned, orm.MultipleObjectsReturned)


def test_manager_not_on_instances():
    with pytest.raises(
        AttributeError, match="Manager isn't accessible via Author instances"
    ):
        Author(name="x").objects  # noqa: B018


def test_delete_sets_pk_none(db):
    author = Author.objects.create(name="A")
    count, per_model = author.delete()
    assert count == 1 and per_model == {"ormtests.Author": 1}
    assert author.pk is None
    assert Author.objects.count() == 0
    with pytest.raises(ValueError, match="can't be deleted"):
        author.delete()


def test_abstract_base():
    class Stamped(orm.Model):
        stamp = orm.IntegerField(default=0)

        class Meta:
            abstract = True
            ordering = ["stamp"]

    class Note(Stamped):
        text = orm.TextField()

        class Meta(Stamped.Meta):
            app_label = "ormdynamic"

    try:
        assert [f.name for f in Note._meta.fields] == ["id", "stamp", "text"]
        assert Note._meta.ordering == ["stamp"]
        with pytest.raises(orm.FieldError, match="multi-table inheritance"):

            class SubNote(Note):
                class Meta:
                    app_label = "ormdynamic"
    finally:
        orm.registry.unregister(Note)


def test_topping_str():
    assert str(Topping(name="x")) == "Topping object (None)"


def test_conflicting_models_are_refused():
    ns = {
        "__module__": "ormdyn_a",
        "Meta": type("Meta", (), {"app_label": "ormdynamic"}),
    }
    first = type(orm.Model)("Clash", (orm.Model,), dict(ns))
    try:
        other = {**ns, "__module__": "ormdyn_b"}
        with pytest.raises(
            orm.FieldError, match="Conflicting models .*'ormdynamic.Clash'"
        ):
            type(orm.Model)("Clash", (orm.Model,), other)
        again = type(orm.Model)("Clash", (orm.Model,), dict(ns))
        assert orm.registry.get_model("ormdynamic.clash") is again
    finally:
        orm.registry.unregister(orm.registry.get_model("ormdynamic.clash"))
    del first


def test_class_prepared_once_each_with_a_target_defined_later():
    seen = []

    def record(sender, **kwargs):
        seen.append(sender)

    with signals.class_prepared.connected_to(record):

        class Menu(orm.Model):
            dishes = orm.ManyToManyField("Plate", related_name="menus")

            class Meta:
                app_label = "ormdynamic"

        assert seen == [Menu]

        class Plate(orm.Model):
            class Meta:
                app_label = "ormdynamic"

    try:
        through = Menu.dishes.through
        assert seen == [Menu, Plate, through]
        assert through._meta.auto_created and through._meta.db_table == (
            "ormdynamic_menu_dishes"
        )
    finally:
        for model in (Menu.dishes.through, Menu, Plate):
            orm.registry.unregister(model)
