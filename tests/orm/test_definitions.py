"""Model definitions beyond the shared test models: keys, through models, pickling."""

import pickle

import pytest

from framework import orm
from framework import signals

from .models import Author
from .models import Book
from .models import Pizza


@pytest.fixture
def dynamic(db):
    """Create tables for models defined in a test; drop and forget them after."""
    created = []

    def make(*models):
        orm.create_tables(models)
        created.extend(models)
        return models

    yield make
    orm.drop_tables(created)
    for model in reversed(created):
        orm.registry.unregister(model)


def test_pk_property_and_kwargs(db):
    author = Author(pk=7, name="Seven")
    assert author.id == 7 and author.pk == 7
    author.pk = 8
    assert author.id == 8
    author.save()
    assert Author.objects.get(pk=8).name == "Seven"
    assert Author.pk is not None
    assert Book.author.field.name == "author"
    assert Pizza.toppings.through is Pizza.toppings.field.through
    assert (Author(name="x") == "x") is False


def test_pickle_round_trip(db):
    author = Author.objects.create(name="Ann")
    copy = pickle.loads(pickle.dumps(author))
    assert copy == author and copy._state.db == "default" and not copy._state.adding
    copy.name = "Anne"
    copy.save()
    assert Author.objects.get(pk=author.pk).name == "Anne"


def test_empty_update_fields_and_missing_rows(db):
    author = Author.objects.create(name="Ann")
    with signals.pre_save.connected_to(lambda **kw: pytest.fail("sent"), sender=Author):
        author.save(update_fields=[])
    Author.objects.filter(pk=author.pk).delete()
    with pytest.raises(orm.IntegrityError, match="no row has primary key"):
        author.save(update_fields=["name"])
    author.save()
    assert Author.objects.filter(pk=author.pk).exists()


def test_unique_together_and_long_names(dynamic):
    class Seat(orm.Model):
        row_number_in_the_very_large_theatre = orm.IntegerField()
        seat_number_in_the_very_large_theatre = orm.IntegerField()

        class Meta:
            app_label = "ormdynamic"
            unique_together = (
                "row_number_in_the_very_large_theatre",
                "seat_number_in_the_very_large_theatre",
            )

    dynamic(Seat)
    names = [c.name for c in Seat._meta.table.constraints if c.name]
    assert any(len(name) <= 60 for name in names)
    Seat.objects.create(
        row_number_in_the_very_large_theatre=1, seat_number_in_the_very_large_theatre=1
    )
    with pytest.raises(orm.IntegrityError, match="(?i)unique"):
        Seat.objects.create(
            row_number_in_the_very_large_theatre=1,
            seat_number_in_the_very_large_theatre=1,
        )


def test_self_many_to_many(dynamic):
    class Friendly(orm.Model):
        name = orm.CharField(max_length=10)
        friends = orm.ManyToManyField("self", symmetrical=False)

        class Meta:
            app_label = "ormdynamic"

    through = Friendly.friends.through
    assert {f.name for f in through._meta.fields} == {
        "id",
        "from_friendly",
        "to_friendly",
    }
    dynamic(Friendly, through)
    a = Friendly.objects.create(name="a")
    b = Friendly.objects.create(name="b")
    a.friends.add(b)
    assert [f.name for f in a.friends.all()] == ["b"]
    assert list(b.friends.all()) == []
    assert [f.name for f in b.friendly_set.all()] == ["a"]
    assert Friendly._meta.get_field("friends").value_from_object(a) == [b.pk]
    c = Friendly.objects.create(name="c")
    calls = []

    def record(sender, instance, action, reverse, model, pk_set, **kwargs):
        calls.append((action, instance.name, reverse, model, pk_set))

    with signals.m2m_changed.connected_to(record, sender=through):
        b.friendly_set.add(a, c)  # a already befriends b
        c.friends.add(b)
        b.friendly_set.remove(a)
    assert calls == [
        ("pre_add", "b", True, Friendly, {c.pk}),
        ("post_add", "b", True, Friendly, {c.pk}),
        ("pre_add", "c", False, Friendly, set()),
        ("post_add", "c", False, Friendly, set()),
        ("pre_remove", "b", True, Friendly, {a.pk}),
        ("post_remove", "b", True, Friendly, {a.pk}),
    ]
    assert [f.name for f in b.friendly_set.all()] == ["c"]
    with pytest.raises(orm.FieldError, match="has no column"):
        Friendly._meta.get_field("friends").sa_column()


def test_custom_through_fields_and_big_keys(dynamic):
    class Big(orm.Model):
        id = orm.BigAutoField(primary_key=True)

        class Meta:
            app_label = "ormdynamic"

    class Link(orm.Model):
        left = orm.ForeignKey(Big, on_delete=orm.CASCADE, related_name="+")
        right = orm.ForeignKey(Big, on_delete=orm.CASCADE, related_name="+")
        note = orm.CharField(max_length=5, default="")

        class Meta:
            app_label = "ormdynamic"

    class Holder(orm.Model):
        bigs = orm.ManyToManyField(
            Big, through="ormdynamic.Link", through_fields=("left", "right")
        )
        origin = orm.ForeignKey("ormdynamic.Big", on_delete=orm.CASCADE, null=True)

        class Meta:
            app_label = "ormdynamic"

    dynamic(Big, Link, Holder)
    big = Big.objects.create()
    assert Holder._meta.get_field("origin").to_json(big.pk) == big.pk
    assert isinstance(
        Holder._meta.table.c.origin_id.type, __import__("sqlalchemy").BigInteger
    )
    assert Holder.bigs.field.source_fk.name == "left"


def test_through_needs_two_foreign_keys(db):
    class Lonely(orm.Model):
        class Meta:
            app_label = "ormdynamic"

    class BadThrough(orm.Model):
        lonely = orm.ForeignKey(Lonely, on_delete=orm.CASCADE)

        class Meta:
            app_label = "ormdynamic"

    try:
        with pytest.raises(
            orm.FieldError, match="needs exactly one ForeignKey to Holder2"
        ):

            class Holder2(orm.Model):
                items = orm.ManyToManyField(Lonely, through=BadThrough)

                class Meta:
                    app_label = "ormdynamic"

    finally:
        for label in (
            "ormdynamic.holder2",
            "ormdynamic.badthrough",
            "ormdynamic.lonely",
        ):
            try:
                orm.registry.unregister(orm.registry.get_model(label))
            except LookupError:
                pass
        Lonely._meta.related_objects.clear()


def test_bad_relation_targets():
    with pytest.raises(
        orm.FieldError, match="a relation needs a model class or a name"
    ):

        class Pointing(orm.Model):
            target = orm.ForeignKey(42, on_delete=orm.CASCADE)

            class Meta:
                app_label = "ormdynamic"

    orm.registry.unregister(
        orm.registry.get_model("ormdynamic", "Pointing")
    ) if "ormdynamic.pointing" in {
        m._meta.label_lower for m in orm.registry.get_models()
    } else None


def test_options_api():
    meta = Author._meta
    assert repr(meta) == "<Options for Author>"
    assert meta.concrete_fields == meta.fields
    assert orm.registry.get_model("ormtests", "author") is Author
    with pytest.raises(orm.FieldError, match="two primary keys"):

        class TwoKeys(orm.Model):
            a = orm.IntegerField(primary_key=True)
            b = orm.IntegerField(primary_key=True)

            class Meta:
                app_label = "ormdynamic"

    with pytest.raises(orm.FieldError, match="'pk' is reserved"):

        class NamedPk(orm.Model):
            pk = orm.IntegerField()

            class Meta:
                app_label = "ormdynamic"


def test_reverse_remove_of_unrelated(db):
    from .models import Review

    book = Book.objects.create(title="t", author=Author.objects.create(name="a"))
    stray = Review.objects.create()
    with pytest.raises(ValueError, match="is not related to"):
        book.review_set.remove(stray)
