"""Models of the expression and aggregation tests (app_label ``ormtests_agg``).

Shaped like Django's ``tests/aggregation`` models: authors with friends,
publishers, books with a contact, several authors and a publisher, stores.
"""

from __future__ import annotations

from framework import orm


class Author(orm.Model):
    name = orm.CharField(max_length=100)
    age = orm.IntegerField()
    friends = orm.ManyToManyField("self", related_name="befriended")

    class Meta:
        app_label = "ormtests_agg"
        ordering = ["name"]

    def __str__(self):
        return self.name


class Publisher(orm.Model):
    name = orm.CharField(max_length=255)
    num_awards = orm.IntegerField()

    class Meta:
        app_label = "ormtests_agg"

    def __str__(self):
        return self.name


class Book(orm.Model):
    isbn = orm.CharField(max_length=9)
    name = orm.CharField(max_length=255)
    pages = orm.IntegerField()
    rating = orm.FloatField()
    price = orm.DecimalField(decimal_places=2, max_digits=6)
    authors = orm.ManyToManyField(Author, related_name="books")
    contact = orm.ForeignKey(Author, on_delete=orm.CASCADE, related_name="contacts")
    publisher = orm.ForeignKey(Publisher, on_delete=orm.CASCADE, related_name="books")
    pubdate = orm.DateField()
    notes = orm.TextField(null=True)

    class Meta:
        app_label = "ormtests_agg"

    def __str__(self):
        return self.name


class Store(orm.Model):
    name = orm.CharField(max_length=255)
    books = orm.ManyToManyField(Book, related_name="stores")
    original_opening = orm.DateTimeField()

    class Meta:
        app_label = "ormtests_agg"

    def __str__(self):
        return self.name
