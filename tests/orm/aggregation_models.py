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


AUTHORS = [
    ("Adrian Holovaty", 34),
    ("Jacob Kaplan-Moss", 35),
    ("Brad Dayley", 45),
    ("James Bennett", 29),
    ("Jeffrey Forcier", 37),
    ("Paul Bissex", 29),
    ("Wesley J. Chun", 25),
    ("Peter Norvig", 57),
    ("Stuart Russell", 46),
]
FRIENDS = {
    1: (2, 4),
    2: (1, 7),
    4: (1,),
    5: (6, 7),
    6: (5, 7),
    7: (2, 5, 6),
    8: (9,),
    9: (8,),
}
PUBLISHERS = [
    ("Apress", 3),
    ("Sams", 1),
    ("Prentice Hall", 7),
    ("Morgan Kaufmann", 9),
    ("Jonno's House of Books", 0),
]
# isbn, name, pages, rating, price, contact, publisher, pubdate, authors, notes
BOOKS = [
    ("159059725", "The Definitive Guide to Django", 447, 4.5, "30.00", 1, 1,
     (2007, 12, 6), (1, 2), "159059725"),
    ("067232959", "Sams Teach Yourself Django in 24 Hours", 528, 3.0, "23.09", 3, 2,
     (2008, 3, 3), (3,), "see errata"),
    ("159059996", "Practical Django Projects", 300, 4.0, "29.69", 4, 1,
     (2008, 6, 23), (4,), None),
    ("013235613", "Python Web Development with Django", 350, 4.0, "29.69", 5, 3,
     (2008, 11, 3), (5, 6, 7), None),
    ("013790395", "Artificial Intelligence: A Modern Approach", 1132, 4.0, "82.80", 8,
     3, (1995, 1, 15), (8, 9), None),
    ("155860191", "Paradigms of Artificial Intelligence Programming", 946, 5.0,
     "75.00", 8, 4, (1991, 10, 15), (8,), None),
]  # fmt: skip
STORES = [
    ("Amazon.com", (1994, 4, 23, 9, 17, 42), (1, 2, 3, 4, 5, 6)),
    ("Books.com", (2001, 3, 15, 11, 23, 37), (1, 3, 5, 6)),
    ("Mamma and Pappa's Books", (1945, 4, 25, 16, 24, 14), (3, 4, 6)),
]


class Data:
    """The rows of :func:`seed`, by 1-based number as in Django's tests (a1, b1...)."""

    def __init__(self):
        self.a, self.p, self.b, self.s = {}, {}, {}, {}


def seed():
    """Create Django's tests/aggregation data set in a handful of statements."""
    import datetime
    import decimal

    data = Data()
    authors = Author.objects.bulk_create(
        [Author(name=name, age=age) for name, age in AUTHORS]
    )
    data.a = dict(enumerate(authors, 1))
    Author.friends.through.objects.bulk_create(
        Author.friends.through(from_author=data.a[a], to_author=data.a[f])
        for a, friends in FRIENDS.items()
        for f in friends
    )
    publishers = Publisher.objects.bulk_create(
        [Publisher(name=name, num_awards=awards) for name, awards in PUBLISHERS]
    )
    data.p = dict(enumerate(publishers, 1))
    books = []
    for isbn, name, pages, rating, price, contact, pub, day, _, notes in BOOKS:
        books.append(
            Book(
                isbn=isbn,
                name=name,
                pages=pages,
                rating=rating,
                price=decimal.Decimal(price),
                contact=data.a[contact],
                publisher=data.p[pub],
                pubdate=datetime.date(*day),
                notes=notes,
            )
        )
    Book.objects.bulk_create(books)
    data.b = dict(enumerate(books, 1))
    Book.authors.through.objects.bulk_create(
        Book.authors.through(book=data.b[number], author=data.a[a])
        for number, row in enumerate(BOOKS, 1)
        for a in row[8]
    )
    stores = Store.objects.bulk_create(
        [
            Store(
                name=name,
                original_opening=datetime.datetime(*moment, tzinfo=datetime.UTC),
            )
            for name, moment, _ in STORES
        ]
    )
    data.s = dict(enumerate(stores, 1))
    Store.books.through.objects.bulk_create(
        Store.books.through(store=data.s[number], book=data.b[b])
        for number, row in enumerate(STORES, 1)
        for b in row[2]
    )
    return data
