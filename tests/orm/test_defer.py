"""defer() and only(): what loads, what reading a deferred field costs, signals."""

from __future__ import annotations

import decimal

import pytest

from framework import orm
from framework import signals
from framework.orm import Count
from framework.orm import F
from framework.testing import assert_num_queries
from framework.testing import capture

from .aggregation_models import BOOKS
from .aggregation_models import Author
from .aggregation_models import Book
from .aggregation_models import seed

BOOK_FIELDS = {
    "id",
    "isbn",
    "name",
    "pages",
    "rating",
    "price",
    "contact_id",
    "publisher_id",
    "pubdate",
    "notes",
}


@pytest.fixture
def data(db):
    return seed()


def test_only_loads_the_named_fields_and_the_primary_key(data):
    with assert_num_queries(1) as log:
        books = list(Book.objects.only("name").order_by("pk"))
    select = log.queries[0].split("FROM")[0]
    assert "name" in select and "pages" not in select and "isbn" not in select
    assert [b.name for b in books] == [row[1] for row in BOOKS]
    for book in books:
        assert book.get_deferred_fields() == BOOK_FIELDS - {"id", "name"}
        assert "pages" not in book.__dict__


def test_a_deferred_field_loads_on_first_read_with_one_query(data):
    book = Book.objects.defer("notes", "price").get(pk=data.b[2].pk)
    assert book.get_deferred_fields() == {"notes", "price"}
    with assert_num_queries(1):
        assert book.price == decimal.Decimal("23.09")
    with assert_num_queries(0):
        assert book.price == decimal.Decimal("23.09")
    assert book.get_deferred_fields() == {"notes"}
    with assert_num_queries(1):
        assert book.notes == "see errata"
    assert book.get_deferred_fields() == set()


def test_a_deferred_foreign_key_loads_then_follows(data):
    book = Book.objects.only("name").get(pk=data.b[1].pk)
    with assert_num_queries(2):
        assert book.contact.name == "Adrian Holovaty"
    with assert_num_queries(0):
        assert book.contact_id == data.a[1].pk


def test_post_init_is_sent_for_every_instance_and_for_each_load(data):
    with capture(signals.pre_init, signals.post_init, sender=Book) as recorded:
        books = list(Book.objects.only("name", "pages").order_by("pk")[:2])
    assert [c.name for c in recorded.calls] == ["pre_init", "post_init"] * 2
    args = recorded.calls[0].kwargs["args"]
    assert len(args) == len(BOOK_FIELDS)
    assert args[1] is orm.DEFERRED  # isbn
    assert args[2] == BOOKS[0][1]
    assert recorded.calls[1].kwargs["instance"] is books[0]
    # As in Django, a deferred read goes through refresh_from_db(), which
    # builds (and announces) an instance holding the field.
    with capture(signals.pre_init, signals.post_init, sender=Book) as recorded:
        assert books[0].isbn == BOOKS[0][0]
    assert [c.name for c in recorded.calls] == ["pre_init", "post_init"]
    assert recorded.calls[1].kwargs["instance"] is not books[0]


def test_save_writes_only_the_loaded_fields(data):
    book = Book.objects.only("name", "pages").get(pk=data.b[3].pk)
    Book.objects.filter(pk=book.pk).update(notes="changed meanwhile", rating=1.0)
    book.name = "Practical Django Projects, 2nd ed."
    book.pages = 301
    with capture(signals.pre_save, signals.post_save, sender=Book) as recorded:
        with assert_num_queries(1) as log:
            book.save()
    assert log.queries[0].startswith("UPDATE")
    expected = frozenset({"name", "pages"})
    assert [c.kwargs["update_fields"] for c in recorded.calls] == [expected, expected]
    fresh = Book.objects.get(pk=book.pk)
    assert (fresh.name, fresh.pages, fresh.notes, fresh.rating) == (
        "Practical Django Projects, 2nd ed.",
        301,
        "changed meanwhile",
        1.0,
    )


def test_an_assigned_deferred_field_is_saved_too(data):
    book = Book.objects.only("name").get(pk=data.b[1].pk)
    book.notes = "signed copy"
    book.save()
    fresh = Book.objects.get(pk=book.pk)
    assert (fresh.notes, fresh.pages) == ("signed copy", 447)


def test_delete_and_refresh_of_deferred_instances(data):
    book = Book.objects.only("name").get(pk=data.b[6].pk)
    book.refresh_from_db()
    assert book.get_deferred_fields() == BOOK_FIELDS - {"id", "name"}
    book.refresh_from_db(fields=["pages", "contact"])
    assert book.pages == 946 and book.contact_id == data.a[8].pk
    with assert_num_queries(0):
        book.refresh_from_db(fields=[])  # nothing asked for: no query
        book.refresh_from_db(fields=iter(()))
    with assert_num_queries(1):
        book.refresh_from_db(fields=iter(["rating"]))  # any iterable, once
    with capture(signals.pre_delete, signals.post_delete, sender=Book) as recorded:
        assert book.delete()[0] >= 1
    assert [c.kwargs["instance"] for c in recorded.calls] == [book, book]
    assert not Book.objects.filter(pk=data.b[6].pk).exists()


def test_defer_and_only_combine_as_in_django(data):
    def deferred(qs):
        return qs.get(pk=data.b[1].pk).get_deferred_fields()

    qs = Book.objects.all()
    assert deferred(qs.defer("name").defer("pages")) == {"name", "pages"}
    assert deferred(qs.only("name", "pages").only("isbn")) == BOOK_FIELDS - {
        "id",
        "isbn",
    }
    assert deferred(qs.only("name", "pages").defer("pages")) == BOOK_FIELDS - {
        "id",
        "name",
    }
    assert deferred(qs.defer("name", "pages").only("name", "isbn")) == BOOK_FIELDS - {
        "id",
        "isbn",
    }
    assert deferred(qs.only("name").defer("name")) == set()
    assert deferred(qs.defer("name").defer(None)) == set()
    assert deferred(qs.defer("pk", "id")) == set()
    assert deferred(qs.only("contact")) == BOOK_FIELDS - {"id", "contact_id"}


def test_defer_with_annotations_and_values(data):
    qs = Author.objects.only("name").annotate(n=Count("books"), double=F("age") * 2)
    with assert_num_queries(1):
        authors = list(qs.filter(name="Peter Norvig"))
    assert [(a.name, a.n, a.double) for a in authors] == [("Peter Norvig", 2, 114)]
    assert authors[0].get_deferred_fields() == {"age"}
    # values() selects its own columns: deferral does not apply.
    assert list(Book.objects.defer("name").values_list("name", flat=True)[:1]) == [
        BOOKS[0][1]
    ]


@pytest.mark.parametrize(
    ("build", "error", "message"),
    [
        (lambda: Book.objects.defer("nope"), orm.FieldError, "no such concrete field"),
        (lambda: Book.objects.only("authors"), orm.FieldError, "no such concrete"),
        (lambda: Book.objects.defer("contact__name"), orm.FieldError, "relations"),
        (lambda: Book.objects.only(None), TypeError, "Cannot pass None"),
        (lambda: Book.objects.defer(3), TypeError, "takes field names"),
    ],
)
def test_bad_names_fail_before_any_sql(db, build, error, message):
    with assert_num_queries(0):
        with pytest.raises(error, match=message):
            build()


def test_force_insert_loads_the_deferred_fields_first(data):
    book = Book.objects.only("name").get(pk=data.b[4].pk)
    with pytest.raises(orm.IntegrityError):
        book.save(force_insert=True)  # the primary key is taken
    assert book.get_deferred_fields() == set()
    assert (book.pages, book.isbn) == (350, BOOKS[3][0])


def test_a_custom_from_db_gets_deferred_markers(data, monkeypatch):
    seen = []
    base = Book.from_db.__func__

    def from_db(cls, db, values):
        seen.append(tuple(values))
        return base(cls, db, values)

    monkeypatch.setattr(Book, "from_db", classmethod(from_db))
    book = Book.objects.only("name").get(pk=data.b[1].pk)
    assert len(seen) == 1 and seen[0][2] == BOOKS[0][1]
    assert [v is orm.DEFERRED for v in seen[0]].count(True) == len(BOOK_FIELDS) - 2
    assert book.get_deferred_fields() == BOOK_FIELDS - {"id", "name"}
    assert isinstance(Book.pages, orm._loading.DeferredAttribute)


def test_select_related_prefetch_related_annotations_and_deferral_together(data):
    qs = (
        Book.objects.select_related("contact", "publisher")
        .prefetch_related("authors")
        .only("name")
        .annotate(n_authors=Count("authors"), double=F("pages") * 2)
        .order_by("pk")
    )
    with assert_num_queries(2):
        books = list(qs)
        rows = [
            (
                b.name,
                b.contact.name,
                b.publisher.name,
                sorted(a.name for a in b.authors.all()),
                b.n_authors,
                b.double,
            )
            for b in books
        ]
    from .aggregation_models import AUTHORS
    from .aggregation_models import PUBLISHERS

    assert rows == [
        (
            row[1],
            AUTHORS[row[5] - 1][0],
            PUBLISHERS[row[6] - 1][0],
            sorted(AUTHORS[a - 1][0] for a in row[8]),
            len(row[8]),
            row[2] * 2,
        )
        for row in BOOKS
    ]
    assert books[0].get_deferred_fields() == BOOK_FIELDS - {
        "id",
        "name",
        "contact_id",
        "publisher_id",
    }
