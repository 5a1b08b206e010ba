"""OneToOneField, ForeignKey(to_field=...), SET/SET_DEFAULT and symmetrical
many-to-many, with their signals and query counts, on both databases."""

from __future__ import annotations

import pytest

from framework import orm
from framework import signals
from framework.testing import assert_num_queries

from .relation_models import HOUSE_OWNER_ID
from .relation_models import Car
from .relation_models import City
from .relation_models import Country
from .relation_models import Human
from .relation_models import Owner
from .relation_models import Place
from .relation_models import Profile
from .relation_models import Restaurant
from .relation_models import Waiter
from .test_signals import recording


def labels():
    return [model._meta.label_lower for model in orm.registry.get_models()]


# One-to-one ---------------------------------------------------------------


def test_one_to_one_forward_and_reverse_accessors(db):
    place = Place.objects.create(name="Corner")
    restaurant = Restaurant.objects.create(place=place, name="Bistro")
    fresh = Place.objects.get(pk=place.pk)
    with assert_num_queries(1):
        assert fresh.restaurant == restaurant
        assert fresh.restaurant.place is fresh  # both sides cached
    loaded = Restaurant.objects.get(pk=restaurant.pk)
    with assert_num_queries(1):
        assert loaded.place == place
        assert loaded.place.restaurant is loaded
    assert Place.objects.get(restaurant__name="Bistro") == place
    assert list(Restaurant.objects.filter(place__name="Corner")) == [restaurant]


def test_one_to_one_is_unique(db):
    place = Place.objects.create(name="Corner")
    Restaurant.objects.create(place=place, name="One")
    with pytest.raises(orm.IntegrityError):
        with orm.atomic():
            Restaurant.objects.create(place=place, name="Two")


def test_related_object_does_not_exist(db):
    empty = Place.objects.create(name="Empty")
    with pytest.raises(
        Place.restaurant.RelatedObjectDoesNotExist, match="no restaurant"
    ):
        empty.restaurant  # noqa: B018
    # A subclass of the target's DoesNotExist and of AttributeError.
    with pytest.raises(Restaurant.DoesNotExist):
        empty.restaurant  # noqa: B018
    assert not hasattr(empty, "restaurant")
    with pytest.raises(Restaurant.place.RelatedObjectDoesNotExist, match="no place"):
        Restaurant(name="unplaced").place  # noqa: B018
    assert issubclass(Restaurant.place.RelatedObjectDoesNotExist, Place.DoesNotExist)
    # A nullable one-to-one reads None forward, raises backward.
    assert Profile().place is None
    with pytest.raises(Place.profile.RelatedObjectDoesNotExist):
        empty.profile  # noqa: B018


def test_reverse_one_to_one_assignment_points_the_key(db):
    place = Place.objects.create(name="Corner")
    restaurant = Restaurant(name="Late")
    place.restaurant = restaurant
    assert restaurant.place_id == place.pk
    restaurant.save()
    assert Place.objects.get(pk=place.pk).restaurant == restaurant


def test_one_to_one_cascade_signals_in_django_order(db):
    place = Place.objects.create(name="Corner")
    restaurant = Restaurant.objects.create(place=place, name="Bistro")
    w1 = Waiter.objects.create(restaurant=restaurant, name="Al")
    w2 = Waiter.objects.create(restaurant=restaurant, name="Bo")
    profile = Profile.objects.create(place=place)
    with recording(signals.pre_delete, signals.post_delete) as calls:
        assert place.delete() == (
            4,
            {
                "ormtests_rel.Place": 1,
                "ormtests_rel.Restaurant": 1,
                "ormtests_rel.Waiter": 2,
            },
        )
    assert [(c[0], c[1], c[2]["instance"].name) for c in calls] == [
        ("pre_delete", Waiter, "Al"),
        ("pre_delete", Waiter, "Bo"),
        ("pre_delete", Restaurant, "Bistro"),
        ("pre_delete", Place, "Corner"),
        ("post_delete", Waiter, "Bo"),
        ("post_delete", Waiter, "Al"),
        ("post_delete", Restaurant, "Bistro"),
        ("post_delete", Place, "Corner"),
    ]
    assert not Waiter.objects.filter(pk__in=[w1.pk, w2.pk]).exists()
    profile.refresh_from_db()
    assert profile.place_id is None


def test_cascade_signal_order_matches_django(db):
    """R cascades to S, S to T: pre T1 T2 S1 S2 R1, post T2 T1 S2 S1 R1."""
    from .models import Author
    from .models import Book
    from .models import Chapter

    r1 = Author.objects.create(name="R1")
    s1 = Book.objects.create(title="S1", author=r1)
    s2 = Book.objects.create(title="S2", author=r1)
    Chapter.objects.create(book=s1, number=1)
    Chapter.objects.create(book=s2, number=2)
    seen = []

    def record(signal, sender, instance, origin, using, **kwargs):
        assert origin is r1 and using == "default"
        name = f"T{instance.number}" if sender is Chapter else str(instance)
        seen.append((signal.name[:3], name))

    with (
        signals.pre_delete.connected_to(record),
        signals.post_delete.connected_to(record),
    ):
        r1.delete()
    assert seen == [
        ("pre", "T1"),
        ("pre", "T2"),
        ("pre", "S1"),
        ("pre", "S2"),
        ("pre", "R1"),
        ("pos", "T2"),
        ("pos", "T1"),
        ("pos", "S2"),
        ("pos", "S1"),
        ("pos", "R1"),
    ]


def test_post_delete_runs_after_its_model_rows_go(db):
    from .models import Author
    from .models import Book

    author = Author.objects.create(name="R")
    Book.objects.create(title="S", author=author)
    seen = []

    def count_rows(sender, **kwargs):
        seen.append((sender.__name__, Author.objects.count(), Book.objects.count()))

    with signals.post_delete.connected_to(count_rows):
        author.delete()
    # The book's post_delete: its row is gone, its author's not yet.
    assert seen == [("Book", 1, 0), ("Author", 0, 0)]


# ForeignKey(to_field=...) --------------------------------------------------


def test_to_field_stores_and_follows_the_target_field(db, vendor):
    fr = Country.objects.create(code="FR", name="France")
    paris = City.objects.create(country=fr, name="Paris")
    assert paris.country_id == "FR"
    loaded = City.objects.get(pk=paris.pk)
    assert loaded.country_id == "FR"
    with assert_num_queries(1):
        assert loaded.country == fr
    assert [c.name for c in fr.cities.all()] == ["Paris"]
    assert list(City.objects.filter(country=fr)) == [paris]
    assert list(City.objects.filter(country__name="France")) == [paris]
    assert list(Country.objects.filter(cities__name="Paris")) == [fr]
    lyon = fr.cities.create(name="Lyon")
    assert lyon.country_id == "FR"
    assert [c.name for c in fr.cities.all()] == ["Lyon", "Paris"]
    assert City.objects.filter(country_id="FR").count() == 2


def test_to_field_cascade(db):
    fr = Country.objects.create(code="FR", name="France")
    de = Country.objects.create(code="DE", name="Germany")
    City.objects.create(country=fr, name="Paris")
    City.objects.create(country=de, name="Berlin")
    with recording(signals.pre_delete, sender=City) as calls:
        assert fr.delete()[1] == {"ormtests_rel.City": 1, "ormtests_rel.Country": 1}
    assert [c[2]["instance"].name for c in calls] == ["Paris"]
    assert [c.name for c in City.objects.all()] == ["Berlin"]


def test_to_field_keys_in_fixtures(db, tmp_path):
    import json

    from framework.cli import CommandError
    from framework.cli import call_command

    france = {"code": "FR", "name": "France"}
    paris = {"country": "FR", "name": "P"}  # the key is the country's code
    path = tmp_path / "cities.json"
    path.write_text(
        json.dumps(
            [
                {"model": "ormtests_rel.country", "pk": 7, "fields": france},
                {"model": "ormtests_rel.city", "fields": paris},
            ]
        )
    )
    call_command("loaddata", str(path), verbosity=0)
    assert City.objects.get().country.name == "France"
    dumped = call_command("dumpdata", "ormtests_rel.City", verbosity=0)
    assert dumped[0]["fields"] == paris
    path.write_text(
        json.dumps(
            [{"model": "ormtests_rel.city", "fields": {"country": "XX", "name": "Q"}}]
        )
    )
    with pytest.raises(CommandError, match="ormtests_rel.Country code='XX', which"):
        call_command("loaddata", str(path), verbosity=0)
    assert City.objects.count() == 1


def test_to_field_must_be_unique(db):
    with pytest.raises(orm.FieldError, match="to_field='name' must name a unique"):

        class Bad(orm.Model):
            country = orm.ForeignKey(Country, on_delete=orm.CASCADE, to_field="name")

            class Meta:
                app_label = "ormdynamic"

    assert "ormdynamic.bad" not in [
        m._meta.label_lower for m in orm.registry.get_models()
    ]


def test_models_whose_manager_has_another_name(db):
    # Related objects, refresh_from_db() and dumpdata read the rows with a
    # plain queryset (Django's base manager), not through Model.objects.
    from framework.cli import call_command

    from .relation_models import Shelf
    from .relation_models import Volume

    shelf = Shelf.shelves.create(name="top")
    volume = Volume.objects.create(shelf=shelf)
    assert Volume.objects.get(pk=volume.pk).shelf.name == "top"
    Shelf.shelves.update(name="high")
    shelf.refresh_from_db()
    assert shelf.name == "high"
    assert list(shelf.volumes.all()) == [volume]
    dumped = call_command("dumpdata", "ormtests_rel.Shelf", verbosity=0)
    assert [item["fields"] for item in dumped] == [{"name": "high"}]


# SET(...) and SET_DEFAULT ------------------------------------------------------


def test_set_default_and_set(db):
    house = Owner.objects.create(id=HOUSE_OWNER_ID, name="House")
    ann = Owner.objects.create(name="Ann")
    car = Car.objects.create(name="Mini", owner=ann, driver=ann)
    other = Car.objects.create(name="Fiat", owner=house, driver=None)
    with recording(signals.pre_save, signals.post_save, sender=Car) as saves:
        assert ann.delete() == (1, {"ormtests_rel.Owner": 1})
    assert saves == []  # field updates are raw, as in Django
    car.refresh_from_db()
    assert (car.owner_id, car.driver_id) == (HOUSE_OWNER_ID, HOUSE_OWNER_ID)
    other.refresh_from_db()
    assert (other.owner_id, other.driver_id) == (HOUSE_OWNER_ID, None)


def test_set_default_needs_a_default():
    with pytest.raises(orm.FieldError, match="SET_DEFAULT\\) needs a default"):
        orm.ForeignKey(Owner, on_delete=orm.SET_DEFAULT)
    with pytest.raises(orm.FieldError, match="SET_NULL\\) needs null=True"):
        orm.OneToOneField(Owner, on_delete=orm.SET_NULL)
    with pytest.raises(orm.FieldError, match="must be one of CASCADE"):
        orm.ForeignKey(Owner, on_delete="CASCADE")


# Self-referencing many-to-many -------------------------------------------------


def test_symmetrical_self_many_to_many(db):
    a, b, c = (Human.objects.create(name=n) for n in "abc")
    through = Human.friends.through
    with recording(signals.m2m_changed, sender=through) as calls:
        a.friends.add(b, c)
        a.friends.add(b)  # already friends: an empty pk_set, as in Django
    assert [c[2]["action"] for c in calls] == ["pre_add", "post_add"] * 2
    assert calls[0][2]["pk_set"] == {b.pk, c.pk} and calls[2][2]["pk_set"] == set()
    assert [h.name for h in a.friends.all()] == ["b", "c"]
    assert [h.name for h in b.friends.all()] == ["a"]
    assert [h.name for h in c.friends.all()] == ["a"]
    assert not hasattr(Human, "human_set")
    b.friends.remove(a)
    assert [h.name for h in a.friends.all()] == ["c"]
    assert list(b.friends.all()) == []
    c.friends.clear()
    assert list(a.friends.all()) == [] and through.objects.count() == 0
    a.friends.add(a)  # befriending oneself makes one row
    assert [h.name for h in a.friends.all()] == ["a"]
    assert Human.objects.filter(friends__name="a").count() == 1


def test_asymmetrical_self_many_to_many(db):
    a, b = Human.objects.create(name="a"), Human.objects.create(name="b")
    a.follows.add(b)
    assert [h.name for h in a.follows.all()] == ["b"]
    assert list(b.follows.all()) == []
    assert [h.name for h in b.followers.all()] == ["a"]
    with recording(signals.m2m_changed, sender=Human.follows.through) as calls:
        b.followers.remove(a)
    assert [(c[2]["action"], c[2]["reverse"]) for c in calls] == [
        ("pre_remove", True),
        ("post_remove", True),
    ]
    assert list(a.follows.all()) == []


def test_symmetrical_needs_self():
    with pytest.raises(orm.FieldError, match="symmetrical=True needs a relation"):

        class Odd(orm.Model):
            others = orm.ManyToManyField(Owner, symmetrical=True)

            class Meta:
                app_label = "ormdynamic"

    assert "ormdynamic.odd" not in [
        m._meta.label_lower for m in orm.registry.get_models()
    ]
