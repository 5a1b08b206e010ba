"""Models shared by the ORM tests (app_label ``ormtests``)."""

from __future__ import annotations

import uuid

from framework import orm


class Author(orm.Model):
    name = orm.CharField(max_length=50)
    email = orm.CharField(max_length=100, null=True, unique=True)

    class Meta:
        app_label = "ormtests"
        ordering = ["name"]

    def __str__(self):
        return self.name


class Book(orm.Model):
    title = orm.CharField(max_length=100)
    author = orm.ForeignKey(Author, on_delete=orm.CASCADE, related_name="books")
    pages = orm.IntegerField(default=100)
    in_print = orm.BooleanField(default=True)

    class Meta:
        app_label = "ormtests"

    def __str__(self):
        return self.title


class Chapter(orm.Model):
    book = orm.ForeignKey(Book, on_delete=orm.CASCADE)
    number = orm.IntegerField()

    class Meta:
        app_label = "ormtests"


class Publisher(orm.Model):
    name = orm.CharField(max_length=50)

    class Meta:
        app_label = "ormtests"


class Edition(orm.Model):
    publisher = orm.ForeignKey(Publisher, on_delete=orm.PROTECT)
    book = orm.ForeignKey(Book, on_delete=orm.CASCADE, null=True)

    class Meta:
        app_label = "ormtests"


class Review(orm.Model):
    book = orm.ForeignKey(Book, on_delete=orm.SET_NULL, null=True)
    text = orm.TextField(default="")

    class Meta:
        app_label = "ormtests"


class Loan(orm.Model):
    """RESTRICT: a book on loan cannot be deleted, unless its author is."""

    book = orm.ForeignKey(Book, on_delete=orm.RESTRICT)
    author = orm.ForeignKey(Author, on_delete=orm.CASCADE, null=True)

    class Meta:
        app_label = "ormtests"


class Topping(orm.Model):
    name = orm.CharField(max_length=30)

    class Meta:
        app_label = "ormtests"
        ordering = ["name"]


class Pizza(orm.Model):
    name = orm.CharField(max_length=30)
    toppings = orm.ManyToManyField(Topping)

    class Meta:
        app_label = "ormtests"


class Person(orm.Model):
    name = orm.CharField(max_length=30)

    class Meta:
        app_label = "ormtests"


class Group(orm.Model):
    name = orm.CharField(max_length=30)
    members = orm.ManyToManyField(Person, through="Membership", related_name="groups")

    class Meta:
        app_label = "ormtests"


class Membership(orm.Model):
    person = orm.ForeignKey(Person, on_delete=orm.CASCADE)
    group = orm.ForeignKey(Group, on_delete=orm.CASCADE)
    role = orm.CharField(max_length=20, default="member")

    class Meta:
        app_label = "ormtests"


class Node(orm.Model):
    name = orm.CharField(max_length=20)
    parent = orm.ForeignKey(
        "self", on_delete=orm.CASCADE, null=True, related_name="children"
    )

    class Meta:
        app_label = "ormtests"


class Everything(orm.Model):
    KINDS = [("a", "Alpha"), ("b", "Beta")]

    small = orm.IntegerField(null=True)
    big = orm.BigIntegerField(null=True)
    ratio = orm.FloatField(null=True)
    price = orm.DecimalField(max_digits=8, decimal_places=2, null=True)
    flag = orm.BooleanField(default=False)
    code = orm.CharField(max_length=5, null=True)
    kind = orm.CharField(max_length=1, choices=KINDS, default="a")
    body = orm.TextField(null=True)
    day = orm.DateField(null=True)
    moment = orm.DateTimeField(null=True)
    created = orm.DateTimeField(auto_now_add=True)
    updated = orm.DateTimeField(auto_now=True)
    data = orm.JSONField(null=True)
    token = orm.UUIDField(default=uuid.uuid4, unique=True)

    class Meta:
        app_label = "ormtests"


class Tagged(orm.Model):
    """A UUID primary key with a default."""

    id = orm.UUIDField(primary_key=True, default=uuid.uuid4)
    label = orm.CharField(max_length=20)

    class Meta:
        app_label = "ormtests"
        constraints = [orm.UniqueConstraint(fields=["label"], name="tagged_label_uniq")]
        indexes = [orm.Index(fields=["label"], name="tagged_label_idx")]
