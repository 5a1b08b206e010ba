"""Models for the relation tests (app_label ``ormtests_rel``): one-to-one,
``to_field``, ``SET``/``SET_DEFAULT``, self-referencing many-to-many, and the
list page of select_related/prefetch_related."""

from __future__ import annotations

from framework import orm

HOUSE_OWNER_ID = 9000


class Place(orm.Model):
    name = orm.CharField(max_length=50)

    class Meta:
        app_label = "ormtests_rel"


class Restaurant(orm.Model):
    place = orm.OneToOneField(Place, on_delete=orm.CASCADE)
    name = orm.CharField(max_length=50)

    class Meta:
        app_label = "ormtests_rel"


class Waiter(orm.Model):
    restaurant = orm.ForeignKey(
        Restaurant, on_delete=orm.CASCADE, related_name="waiters"
    )
    name = orm.CharField(max_length=50)

    class Meta:
        app_label = "ormtests_rel"
        ordering = ["name"]


class Profile(orm.Model):
    """A nullable one-to-one with a related_name."""

    place = orm.OneToOneField(
        Place, on_delete=orm.SET_NULL, null=True, related_name="profile"
    )

    class Meta:
        app_label = "ormtests_rel"


class Country(orm.Model):
    code = orm.CharField(max_length=2, unique=True)
    name = orm.CharField(max_length=50)

    class Meta:
        app_label = "ormtests_rel"


class City(orm.Model):
    country = orm.ForeignKey(
        Country, on_delete=orm.CASCADE, to_field="code", related_name="cities"
    )
    name = orm.CharField(max_length=50)

    class Meta:
        app_label = "ormtests_rel"
        ordering = ["name"]


class Owner(orm.Model):
    name = orm.CharField(max_length=50)

    class Meta:
        app_label = "ormtests_rel"


def house_owner():
    return Owner.objects.get(pk=HOUSE_OWNER_ID)


class Car(orm.Model):
    name = orm.CharField(max_length=20)
    owner = orm.ForeignKey(
        Owner, on_delete=orm.SET_DEFAULT, default=HOUSE_OWNER_ID, related_name="cars"
    )
    driver = orm.ForeignKey(
        Owner, on_delete=orm.SET(house_owner), null=True, related_name="driven"
    )

    class Meta:
        app_label = "ormtests_rel"


class Human(orm.Model):
    name = orm.CharField(max_length=20)
    friends = orm.ManyToManyField("self")
    follows = orm.ManyToManyField("self", symmetrical=False, related_name="followers")

    class Meta:
        app_label = "ormtests_rel"
        ordering = ["name"]


class Tag(orm.Model):
    name = orm.CharField(max_length=20)

    class Meta:
        app_label = "ormtests_rel"
        ordering = ["name"]


class Writer(orm.Model):
    name = orm.CharField(max_length=50)
    country = orm.ForeignKey(Country, on_delete=orm.CASCADE, null=True)

    class Meta:
        app_label = "ormtests_rel"


class Article(orm.Model):
    """A list-page row: a foreign key and a many-to-many."""

    title = orm.CharField(max_length=100)
    writer = orm.ForeignKey(Writer, on_delete=orm.CASCADE, related_name="articles")
    editor = orm.ForeignKey(
        Writer, on_delete=orm.SET_NULL, null=True, related_name="edited"
    )
    tags = orm.ManyToManyField(Tag, related_name="articles")

    class Meta:
        app_label = "ormtests_rel"
        ordering = ["id"]


class Comment(orm.Model):
    article = orm.ForeignKey(Article, on_delete=orm.CASCADE, related_name="comments")
    text = orm.TextField()

    class Meta:
        app_label = "ormtests_rel"
        ordering = ["id"]


class Chain(Place):
    """A proxy: the places table, its own behaviour, ordering and signals."""

    class Meta:
        proxy = True
        app_label = "ormtests_rel"
        ordering = ["-name"]

    def describe(self):
        return f"chain {self.name}"


class Shelf(orm.Model):
    """A model whose only manager is not called ``objects`` (as Django allows)."""

    name = orm.CharField(max_length=20)
    shelves = orm.Manager()

    class Meta:
        app_label = "ormtests_rel"


class Volume(orm.Model):
    shelf = orm.ForeignKey(Shelf, on_delete=orm.CASCADE, related_name="volumes")

    class Meta:
        app_label = "ormtests_rel"
