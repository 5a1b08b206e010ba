"""annotate() and aggregate(): Count, Sum, Avg, Min, Max; values() grouping; subqueries.

Django's tests/aggregation data set on SQLite and PostgreSQL; expected values
are computed in Python from that data (plus some of Django's own expected
results, quoted), and every call is checked to run exactly one query.
"""

from __future__ import annotations

import datetime
import decimal
import statistics

import pytest

from framework import orm
from framework.orm import Avg
from framework.orm import Count
from framework.orm import Exists
from framework.orm import F
from framework.orm import Max
from framework.orm import Min
from framework.orm import OuterRef
from framework.orm import Q
from framework.orm import Subquery
from framework.orm import Sum
from framework.orm import Value
from framework.testing import assert_num_queries
from framework.testing import capture_queries

from .aggregation_models import AUTHORS
from .aggregation_models import BOOKS
from .aggregation_models import FRIENDS
from .aggregation_models import PUBLISHERS
from .aggregation_models import STORES
from .aggregation_models import Author
from .aggregation_models import Book
from .aggregation_models import Publisher
from .aggregation_models import Store
from .aggregation_models import seed

AGES = {number: age for number, (_, age) in enumerate(AUTHORS, 1)}
NAMES = {number: name for number, (name, _) in enumerate(AUTHORS, 1)}
BOOK = dict(enumerate(BOOKS, 1))
AUTHOR_BOOKS = {a: [b for b, row in BOOK.items() if a in row[8]] for a in AGES}
CENT = decimal.Decimal("0.01")


def approx(value):
    return pytest.approx(value, rel=1e-9)


@pytest.fixture
def data(db):
    return seed()


# aggregate() ------------------------------------------------------------------


def test_aggregate_over_fields_with_default_names(data):
    with assert_num_queries(1):
        result = Author.objects.aggregate(
            Avg("age"), Sum("age"), Min("age"), Max("name"), Count("id")
        )
    assert result == {
        "age__avg": approx(337 / 9),
        "age__sum": 337,
        "age__min": 25,
        "name__max": "Wesley J. Chun",
        "id__count": 9,
    }
    assert isinstance(result["age__avg"], float)


def test_aggregate_decimal_float_and_date_fields(data):
    result = Book.objects.aggregate(
        total=Sum("price"), cheapest=Min("price"), mean=Avg("price"),
        rating=Avg("rating"), first=Min("pubdate"), last=Max("pubdate"),
    )  # fmt: skip
    prices = [decimal.Decimal(row[4]) for row in BOOKS]
    assert result["total"] == sum(prices) == decimal.Decimal("270.27")
    assert result["cheapest"] == decimal.Decimal("23.09")
    assert isinstance(result["mean"], decimal.Decimal)
    assert result["mean"].quantize(decimal.Decimal("0.001")) == decimal.Decimal(
        "45.045"
    )
    assert result["rating"] == approx(statistics.mean(row[3] for row in BOOKS))
    assert result["first"] == datetime.date(1991, 10, 15)
    assert result["last"] == datetime.date(2008, 11, 3)
    opening = Store.objects.aggregate(Max("original_opening"))["original_opening__max"]
    assert opening == datetime.datetime(2001, 3, 15, 11, 23, 37, tzinfo=datetime.UTC)


def test_aggregate_across_relations_joins_them(data):
    # Django: Author.objects.aggregate(Avg("friends__age")) == 34.07
    ages = [AGES[f] for friends in FRIENDS.values() for f in friends]
    with assert_num_queries(1):
        result = Author.objects.aggregate(Avg("friends__age"))
    assert result == {"friends__age__avg": approx(statistics.mean(ages))}
    assert round(result["friends__age__avg"], 2) == 34.07
    # Django: Store.objects.aggregate(Max("books__authors__age")) == 57
    assert Store.objects.aggregate(Max("books__authors__age")) == {
        "books__authors__age__max": 57
    }
    low = Book.objects.filter(rating__lt=4.5).aggregate(Avg("authors__age"))
    expected = [AGES[a] for row in BOOKS if row[3] < 4.5 for a in row[8]]
    assert low == {"authors__age__avg": approx(statistics.mean(expected))}
    assert Publisher.objects.aggregate(n=Count("books")) == {"n": len(BOOKS)}


def test_aggregate_filter_distinct_and_default(data):
    with assert_num_queries(1):
        result = Author.objects.aggregate(
            young=Count("id", filter=Q(age__lt=30)),
            young_age=Sum("age", filter=Q(age__lt=30) & ~Q(name__startswith="W")),
            ratings=Count("books__rating", distinct=True),
            all_ratings=Count("books__rating"),
            big_books=Count("books", filter=Q(books__pages__gt=500)),
        )
    assert result == {
        "young": 3,
        "young_age": 29 + 29,
        "ratings": len({row[3] for row in BOOKS}),
        "all_ratings": sum(len(row[8]) for row in BOOKS),
        "big_books": sum(len(row[8]) for row in BOOKS if row[2] > 500),
    }
    nothing = Book.objects.filter(pages__gt=10**6)
    assert nothing.aggregate(Sum("pages"), n=Count("id")) == {
        "pages__sum": None,
        "n": 0,
    }
    assert nothing.aggregate(s=Sum("pages", default=0), m=Max("price", default=1)) == {
        "s": 0,
        "m": decimal.Decimal("1.00"),
    }


def test_aggregate_of_none_runs_no_query(data):
    with assert_num_queries(0):
        result = Book.objects.none().aggregate(
            Count("id"), Sum("pages"), top=Max("pages", default=7)
        )
    assert result == {"id__count": 0, "pages__sum": None, "top": 7}


def test_aggregate_over_annotations_slices_and_distinct(data):
    counts = [len(AUTHOR_BOOKS[a]) for a in AGES]
    with assert_num_queries(1):
        result = Author.objects.annotate(n=Count("books")).aggregate(
            Avg("n"), Max("n"), oldest=Max("age")
        )
    assert result == {
        "n__avg": approx(statistics.mean(counts)),
        "n__max": max(counts),
        "oldest": 57,
    }
    youngest = Author.objects.order_by("age", "name")[:3].aggregate(Sum("age"))
    assert youngest == {"age__sum": sum(sorted(AGES.values())[:3])}
    ratings = Book.objects.values("rating").distinct().aggregate(Sum("rating"))
    assert ratings == {"rating__sum": sum({row[3] for row in BOOKS})}
    grouped = Book.objects.values("publisher").annotate(n=Count("id"))
    assert grouped.aggregate(Max("n")) == {"n__max": 2}


# annotate() with aggregates -------------------------------------------------------


def test_count_over_reverse_foreign_keys_and_many_to_many(data):
    with assert_num_queries(1):
        publishers = {p.name: p.n for p in Publisher.objects.annotate(n=Count("books"))}
    assert publishers == {
        name: sum(1 for row in BOOKS if row[6] == number)
        for number, (name, _) in enumerate(PUBLISHERS, 1)
    }
    with assert_num_queries(1):
        books = {b.name: b.n for b in Book.objects.annotate(n=Count("authors"))}
    assert books == {row[1]: len(row[8]) for row in BOOKS}
    with assert_num_queries(1):
        authors = [(a.name, a.n) for a in Author.objects.annotate(n=Count("books"))]
    assert authors == sorted((NAMES[a], len(AUTHOR_BOOKS[a])) for a in AGES)
    friends = dict(Author.objects.annotate(n=Count("friends")).values_list("name", "n"))
    assert friends == {NAMES[a]: len(FRIENDS.get(a, ())) for a in AGES}


def test_several_multi_valued_annotations_do_not_multiply(data):
    # Django joins both relations here and needs distinct=True; each is a
    # subquery of its own in framework.orm.
    qs = Book.objects.annotate(
        a=Count("authors"), s=Count("stores"), p=Sum("authors__age")
    )
    with assert_num_queries(1):
        found = {b.name: (b.a, b.s, b.p) for b in qs}
    assert found == {
        row[1]: (
            len(row[8]),
            sum(1 for store in STORES if number in store[2]),
            sum(AGES[a] for a in row[8]),
        )
        for number, row in BOOK.items()
    }


def test_annotation_aggregates_with_filter_distinct_and_default(data):
    qs = Author.objects.annotate(
        good=Count("books", filter=Q(books__rating__gte=4.5)),
        publishers=Count("books__publisher", distinct=True),
        youngest_coauthor=Min(
            "books__authors__age", filter=~Q(books__authors__pk=F("pk"))
        ),
        pages=Sum("books__pages", default=0),
    ).order_by("name")
    rows = list(
        qs.values_list("name", "good", "publishers", "youngest_coauthor", "pages")
    )
    expected = []
    for a in sorted(AGES, key=NAMES.get):
        books = [BOOK[b] for b in AUTHOR_BOOKS[a]]
        coauthors = [AGES[x] for row in books for x in row[8] if x != a]
        expected.append(
            (
                NAMES[a],
                sum(1 for row in books if row[3] >= 4.5),
                len({row[6] for row in books}),
                min(coauthors) if coauthors else None,
                sum(row[2] for row in books),
            )
        )
    assert rows == expected


def test_avg_over_many_to_many_for_one_row(data):
    # Django: Book.objects.annotate(mean_age=Avg("authors__age")).get(pk=b1.pk)
    with assert_num_queries(1):
        book = Book.objects.annotate(mean_age=Avg("authors__age")).get(pk=data.b[1].pk)
    assert (book.name, book.mean_age) == (BOOKS[0][1], 34.5)
    rows = Publisher.objects.annotate(
        top=Max("books__price"), low=Min("books__pubdate")
    ).values_list("name", "top", "low")
    assert sorted(rows) == sorted(
        (
            name,
            max((decimal.Decimal(r[4]) for r in BOOKS if r[6] == n), default=None),
            min((datetime.date(*r[7]) for r in BOOKS if r[6] == n), default=None),
        )
        for n, (name, _) in enumerate(PUBLISHERS, 1)
    )


def test_filter_and_order_by_an_aggregate_annotation(data):
    # Django: Publisher.objects.annotate(num_books=Count("book"))
    #     .filter(num_books__gt=1).order_by("pk") -> Apress, Prentice Hall
    qs = Publisher.objects.annotate(num_books=Count("books")).filter(num_books__gt=1)
    with assert_num_queries(1):
        assert [p.name for p in qs.order_by("pk")] == ["Apress", "Prentice Hall"]
    qs = Author.objects.annotate(n=Count("books")).order_by("-n", "name")
    assert list(qs.values_list("name", "n")[:2]) == [
        ("Peter Norvig", 2),
        ("Adrian Holovaty", 1),
    ]
    qs = Author.objects.annotate(n=Count("friends")).filter(n=0)
    assert [a.name for a in qs] == ["Brad Dayley"]
    qs = Author.objects.annotate(n=Count("books")).filter(n__gt=F("age") / 30)
    assert qs.count() == sum(1 for a in AGES if len(AUTHOR_BOOKS[a]) > AGES[a] // 30)


def test_values_then_annotate_groups_by_those_values(data):
    # Django's expected result, quoted from tests/aggregation.
    qs = (
        Book.objects.values("rating")
        .annotate(n_authors=Count("authors__id"), mean_age=Avg("authors__age"))
        .order_by("rating")
    )
    with assert_num_queries(1) as log:
        rows = list(qs)
    assert "GROUP BY" in log.queries[0]
    assert rows == [
        {"rating": 3.0, "n_authors": 1, "mean_age": 45.0},
        {"rating": 4.0, "n_authors": 6, "mean_age": approx(223 / 6)},
        {"rating": 4.5, "n_authors": 2, "mean_age": 34.5},
        {"rating": 5.0, "n_authors": 1, "mean_age": 57.0},
    ]
    per_publisher = Book.objects.values("publisher__name").annotate(total=Sum("pages"))
    assert sorted((r["publisher__name"], r["total"]) for r in per_publisher) == sorted(
        (name, sum(r[2] for r in BOOKS if r[6] == n))
        for n, (name, _) in enumerate(PUBLISHERS, 1)
        if any(r[6] == n for r in BOOKS)
    )


def test_grouped_filter_on_an_aggregate_is_having(data):
    qs = (
        Book.objects.values("publisher")
        .annotate(n=Count("id"), total=Sum("pages"))
        .filter(n__gt=1, total__gt=800)
        .order_by("publisher")
    )
    with assert_num_queries(1) as log:
        rows = list(qs.values_list("publisher", "n", "total"))
    assert "HAVING" in log.queries[0]
    assert rows == [(data.p[3].pk, 2, 350 + 1132)]
    # A condition on a grouped field stays in WHERE; count() counts groups.
    qs = Book.objects.filter(rating__gte=4).values("rating").annotate(n=Count("id"))
    assert qs.count() == 3
    assert qs.filter(n__gte=3).exists()
    assert not qs.filter(n__gte=4).exists()


def test_grouping_ignores_meta_ordering_like_django(data):
    # Author's Meta.ordering is ["name"]: it would split the groups.
    qs = Author.objects.values("age").annotate(n=Count("id")).order_by("age")
    assert list(qs.values_list("age", "n")) == [
        (25, 1),
        (29, 2),
        (34, 1),
        (35, 1),
        (37, 1),
        (45, 1),
        (46, 1),
        (57, 1),
    ]
    assert sorted(
        Author.objects.values_list("age", flat=True).annotate(n=Count("id"))
    ) == sorted(set(AGES.values()))
    # first()/last() would order by the pk, and so group by it: refused
    # without an ordering, as in Django 5.
    grouped = Author.objects.values("age").annotate(n=Count("id"))
    for method in ("first", "last"):
        with pytest.raises(TypeError, match=f"{method}\\(\\) on an unordered query"):
            getattr(grouped, method)()
    assert grouped.order_by("age").first() == {"age": 25, "n": 1}
    assert grouped.order_by("age").last() == {"age": 57, "n": 1}
    # Grouped by the primary key (annotate() without values()): allowed.
    assert Author.objects.annotate(n=Count("books")).first().name == min(NAMES.values())


def test_aggregate_of_the_row_itself_groups_by_primary_key(data):
    qs = Author.objects.annotate(m=Max("age"), c=Count("id")).filter(m__gt=40)
    with assert_num_queries(1) as log:
        rows = sorted(qs.values_list("name", "m", "c"))
    assert "HAVING" in log.queries[0]
    assert rows == sorted((n, a, 1) for n, a in AUTHORS if a > 40)


# Subqueries -----------------------------------------------------------------------


def test_exists_in_filter_annotate_and_negated(data):
    contacts = Book.objects.filter(contact=OuterRef("pk"))
    is_contact = {row[5] for row in BOOKS}
    with assert_num_queries(1):
        found = [a.name for a in Author.objects.filter(Exists(contacts))]
    assert found == sorted(NAMES[a] for a in is_contact)
    assert [a.name for a in Author.objects.filter(~Exists(contacts))] == sorted(
        NAMES[a] for a in AGES if a not in is_contact
    )
    rows = Author.objects.annotate(is_contact=Exists(contacts)).values_list(
        "name", "is_contact"
    )
    assert dict(rows) == {NAMES[a]: a in is_contact for a in AGES}
    qs = Author.objects.annotate(c=Exists(contacts)).filter(c=False)
    assert sorted(a.name for a in qs) == sorted(
        NAMES[a] for a in AGES if a not in is_contact
    )


def test_exists_combines_with_q(data):
    long_books = Book.objects.filter(authors=OuterRef("pk"), pages__gt=900)
    qs = Author.objects.filter(Exists(long_books) | Q(age__lt=27))
    expected = {a for a in AGES if any(BOOK[b][2] > 900 for b in AUTHOR_BOOKS[a])}
    assert [a.name for a in qs] == sorted(
        NAMES[a] for a in AGES if a in expected or AGES[a] < 27
    )
    qs = Author.objects.filter(Q(age__gt=40) & ~Exists(long_books))
    assert [a.name for a in qs] == sorted(
        NAMES[a] for a in AGES if AGES[a] > 40 and a not in expected
    )


def test_subqueries_of_other_models_or_of_none_get_their_own_sql(data):
    # Same conditions on another model, and on none(): each is its own
    # statement, never a cached one of the same shape.
    def exists(model):
        return [
            a.name
            for a in Author.objects.filter(Exists(model.objects.filter(name="Apress")))
        ]

    everyone = sorted(NAMES.values())
    assert exists(Book) == []
    assert exists(Publisher) == everyone
    assert [a.name for a in Author.objects.filter(Exists(Book.objects.none()))] == []
    assert [a.name for a in Author.objects.filter(~Exists(Book.objects.none()))] == (
        everyone
    )
    nothing = Book.objects.none().filter(pages__gt=0).values("name")[:1]
    rows = Author.objects.annotate(b=Subquery(nothing)).filter(age__gt=40)
    assert sorted(rows.values_list("name", "b")) == sorted(
        (NAMES[a], None) for a in AGES if AGES[a] > 40
    )


def test_subquery_picks_one_value_per_row(data):
    newest = (
        Book.objects.filter(authors=OuterRef("pk"))
        .order_by("-pubdate")
        .values("name")[:1]
    )
    with assert_num_queries(1):
        rows = dict(
            Author.objects.annotate(newest=Subquery(newest)).values_list(
                "name", "newest"
            )
        )
    assert rows == {
        NAMES[a]: max((BOOK[b] for b in AUTHOR_BOOKS[a]), key=lambda r: r[7])[1]
        for a in AGES
    }
    pages = (
        Book.objects.filter(contact=OuterRef("pk"))
        .values("contact")
        .annotate(total=Sum("pages"))
        .values("total")
    )
    qs = Author.objects.annotate(pages=Subquery(pages)).filter(pages__gt=500)
    assert sorted(qs.values_list("name", "pages")) == sorted(
        (NAMES[a], total)
        for a in AGES
        if (total := sum(r[2] for r in BOOKS if r[5] == a)) > 500
    )
    # Without values(): the primary key.
    first_book = Subquery(
        Book.objects.filter(contact=OuterRef("pk")).order_by("pk")[:1]
    )
    ids = dict(Author.objects.annotate(b=first_book).values_list("pk", "b"))
    assert ids[data.a[8].pk] == data.b[5].pk and ids[data.a[2].pk] is None


def test_outer_ref_two_levels_out_and_to_an_annotation(data):
    # Stores selling a book one of whose authors is older than the store's
    # own "threshold" annotation.
    older = Author.objects.filter(
        books=OuterRef("pk"), age__gt=OuterRef(OuterRef("limit"))
    )
    books = Book.objects.filter(stores=OuterRef("pk")).filter(Exists(older))
    qs = Store.objects.annotate(limit=F("id") * 0 + 50).filter(Exists(books))
    with assert_num_queries(1):
        found = sorted(s.name for s in qs)
    assert found == sorted(
        name
        for name, _, store_books in STORES
        if any(AGES[a] > 50 for b in store_books for a in BOOK[b][8])
    )


def test_subquery_mistakes_are_clear(data):
    with assert_num_queries(0):
        with pytest.raises(ValueError, match="may only be used in a subquery"):
            list(Book.objects.filter(contact=OuterRef("pk")))
        with pytest.raises(TypeError, match="one column"):
            Author.objects.annotate(x=Subquery(Book.objects.values("name", "pages")))
        with pytest.raises(TypeError, match="takes a queryset"):
            Exists(Book)
        with pytest.raises(orm.FieldError, match="'nope' into a field of Author"):
            Author.objects.filter(Exists(Book.objects.filter(contact=OuterRef("nope"))))
        with pytest.raises(orm.FieldError, match="inside Subquery"):
            Author.objects.annotate(x=OuterRef("pk"))


# Bad input ------------------------------------------------------------------------


BAD_AGGREGATES = [
    (
        lambda: Book.objects.aggregate(Sum("name")),
        orm.FieldError,
        r"Sum\('name'\) needs a numeric field; CharField 'name' is not",
    ),
    (
        lambda: Book.objects.aggregate(Avg("pubdate")),
        orm.FieldError,
        "needs a numeric field; DateField 'pubdate'",
    ),
    (
        lambda: Book.objects.annotate(x=Sum("contact__name")),
        orm.FieldError,
        "CharField 'contact__name'",
    ),
    (
        lambda: Book.objects.aggregate(Count("*")),
        TypeError,
        r"needs a name for Count\('\*'\)",
    ),
    (
        lambda: Book.objects.aggregate(Sum("nope")),
        orm.FieldError,
        "'nope' into a field of Book",
    ),
    (
        lambda: Book.objects.aggregate(x=F("pages")),
        TypeError,
        r"x=F\('pages'\) is not an aggregate",
    ),
    (
        lambda: Book.objects.aggregate(x=Sum(Count("id"))),
        orm.FieldError,
        "Cannot nest aggregates",
    ),
    (
        lambda: Author.objects.annotate(n=Count("books")).annotate(m=Sum("n")),
        orm.FieldError,
        "'n' is an aggregate",
    ),
    (lambda: Max("pages", distinct=True), TypeError, "Max does not allow distinct"),
    (lambda: Sum("*"), TypeError, r"only Count\('\*'\) is"),
    (lambda: Count("id", filter={"pages": 1}), TypeError, "takes a Q object"),
    (lambda: Sum(3), TypeError, "takes a field name or an expression"),
    (
        lambda: Book.objects.annotate(x=Sum(F("authors__age") + F("stores__id"))),
        orm.FieldError,
        "spans two multi-valued relations",
    ),
    (
        lambda: (
            Book.objects.values("publisher")
            .annotate(n=Count("id"))
            .filter(n=2)
            .update(pages=1)
        ),
        TypeError,
        "grouped by an aggregate",
    ),
    (
        lambda: Book.objects.annotate(n=Max("pages")).filter(n=2).delete(),
        TypeError,
        "grouped by an aggregate",
    ),
    (
        lambda: (
            Book.objects.values("rating")
            .annotate(n=Count("id"))
            .aggregate(Sum("pages"))
        ),
        orm.FieldError,
        r"uses 'pages', which the values\(\)",
    ),
    (
        lambda: Book.objects.aggregate(**{"x; y": Sum("pages")}),
        ValueError,
        "must be identifiers",
    ),
]


@pytest.mark.parametrize(("build", "error", "message"), BAD_AGGREGATES)
def test_bad_aggregates_fail_before_any_sql(db, build, error, message):
    with assert_num_queries(0):
        with pytest.raises(error, match=message):
            build()


def test_boolean_min_max_is_refused_on_every_backend(db):
    from .models import Book as PlainBook

    with pytest.raises(orm.FieldError, match="BooleanField 'in_print' has no order"):
        PlainBook.objects.aggregate(Max("in_print"))


def test_aggregates_compile_once_per_shape(data, compilations):
    def cycle(limit):
        Author.objects.aggregate(n=Count("id", filter=Q(age__lt=limit)))
        list(Author.objects.annotate(n=Count("books")).filter(n__gte=limit // 30))
        list(
            Book.objects.values("rating")
            .annotate(n=Count("id"))
            .filter(n__gt=limit // 40)
        )
        contacts = Book.objects.filter(contact=OuterRef("pk"), pages__gt=limit)
        list(Author.objects.filter(Exists(contacts)))

    cycle(30)
    with compilations() as compiled, capture_queries() as log:
        cycle(40)
        cycle(50)
    assert compiled == []
    assert len(log) == 8
    assert Author.objects.aggregate(n=Count("id", filter=Q(age__lt=40))) == {
        "n": sum(1 for a in AGES.values() if a < 40)
    }


def _near_shapes():
    """Queries whose shapes differ in one detail each (a cached statement of
    one must never serve another)."""
    names = ("name", "n")
    contact = OuterRef("pk")
    return [
        lambda: Author.objects.filter(age__gt=30).values_list("name", flat=True),
        lambda: Author.objects.exclude(age__gt=30).values_list("name", flat=True),
        lambda: Author.objects.filter(~Q(age__gt=30) | Q(age=29)).values_list("name"),
        lambda: Author.objects.filter(~Q(age__gt=30, age=29)).values_list("name"),
        lambda: Author.objects.annotate(n=Count("books")).values_list(*names),
        lambda: Author.objects.annotate(n=Count("contacts")).values_list(*names),
        lambda: Author.objects.annotate(n=Count("friends")).values_list(*names),
        lambda: Author.objects.annotate(n=F("age") * 2).values_list(*names),
        lambda: Author.objects.annotate(n=Value(2)).values_list(*names),
        lambda: Author.objects.annotate(n=Count("books")).values(*names),
        lambda: Author.objects.annotate(
            n=Count("books", filter=Q(books__pages__gt=400))
        ).values_list(*names),
        lambda: Author.objects.filter(
            Exists(Book.objects.filter(contact=contact))
        ).values_list("name"),
        lambda: Author.objects.filter(
            Exists(Book.objects.filter(authors=contact))
        ).values_list("name"),
        lambda: Author.objects.filter(
            Exists(Store.objects.filter(books__contact=contact))
        ).values_list("name"),
        lambda: Author.objects.filter(Exists(Book.objects.none())).values_list("name"),
        lambda: Author.objects.filter(Exists(Book.objects.all())).values_list("name"),
        lambda: Author.objects.filter(
            Exists(Publisher.objects.filter(name="Apress"))
        ).values_list("name"),
        lambda: Author.objects.filter(
            Exists(Book.objects.filter(name="Apress"))
        ).values_list("name"),
        lambda: Author.objects.annotate(
            t=Subquery(Book.objects.filter(contact=contact).values("name")[:1])
        ).values_list("name", "t"),
        lambda: Author.objects.annotate(
            t=Subquery(Book.objects.filter(contact=contact).values("isbn")[:1])
        ).values_list("name", "t"),
        lambda: (
            Book.objects.values("publisher")
            .annotate(n=Count("id"))
            .values_list("publisher", "n")
        ),
        lambda: (
            Book.objects.values("contact")
            .annotate(n=Count("id"))
            .values_list("contact", "n")
        ),
        lambda: [
            (b.name, b.contact.name) for b in Book.objects.select_related("contact")
        ],
        lambda: [
            (b.name, b.publisher.name) for b in Book.objects.select_related("publisher")
        ],
        lambda: [(b.name, b.pages) for b in Book.objects.defer("name")],
        lambda: [(b.name, b.pages) for b in Book.objects.only("name")],
        lambda: [(b.name, b.n) for b in Book.objects.annotate(n=Count("authors"))],
        lambda: [(b.name, b.n) for b in Book.objects.annotate(n=Count("stores"))],
        lambda: [
            (b.name, b.n) for b in Book.objects.only("name").annotate(n=Sum("pages"))
        ],
        lambda: Book.objects.aggregate(s=Sum("pages", filter=Q(rating__gt=4))),
        lambda: Book.objects.aggregate(s=Sum("pages", filter=Q(rating__lt=4))),
        lambda: Book.objects.annotate(n=Count("stores")).aggregate(s=Sum("n")),
        lambda: Book.objects.order_by("pages")[:2].values_list("name"),
        lambda: Book.objects.order_by("-pages")[1:3].values_list("name"),
        lambda: Book.objects.filter(pages__in=[447, 528]).values_list("name"),
        lambda: Book.objects.filter(pages__in=[447, None]).values_list("name"),
        lambda: Book.objects.filter(notes=None).values_list("name"),
        lambda: Book.objects.filter(notes="see errata").values_list("name"),
        lambda: Book.objects.filter(pages__gt=F("contact__age") * 10).values_list(
            "name"
        ),
        lambda: Book.objects.filter(pages__gt=F("rating") * 100).values_list("name"),
        lambda: Author.objects.filter(contacts__pages__gt=F("age")).values_list("name"),
        lambda: Author.objects.filter(books__pages__gt=F("age")).values_list("name"),
    ]


def test_cached_statements_serve_only_their_own_shape(data):
    # Each query, compiled fresh, gives the rows it gives from the cache,
    # whatever ran before it.
    import random

    def rows(result):
        return repr(result) if isinstance(result, dict) else sorted(map(repr, result))

    queries = _near_shapes()
    models = (Author, Book, Publisher, Store)
    expected = []
    for query in queries:
        for model in models:
            model._meta._query_cache.clear()
        expected.append(rows(query()))
    order = list(range(len(queries))) * 2
    random.Random(13).shuffle(order)
    assert [(i, rows(queries[i]())) for i in order] == [(i, expected[i]) for i in order]


def test_update_and_delete_through_a_filter_on_an_annotation(data):
    one_book = [a for a in AGES if len(AUTHOR_BOOKS[a]) == 1]
    with assert_num_queries(1):
        count = (
            Author.objects.annotate(n=Count("books"))
            .filter(n=1)
            .update(age=F("age") + 100)
        )
    assert count == len(one_book)
    assert dict(Author.objects.values_list("name", "age")) == {
        NAMES[a]: AGES[a] + (100 if a in one_book else 0) for a in AGES
    }
    contacts = {row[5] for row in BOOKS}
    Author.objects.annotate(c=Count("contacts")).filter(c=0).delete()
    assert sorted(Author.objects.values_list("name", flat=True)) == sorted(
        NAMES[a] for a in contacts
    )


def test_mixed_grouped_and_subquery_annotations_on_rows(data):
    qs = Author.objects.annotate(
        oldest=Max("age"),
        n=Count("books"),
        contact=Exists(Book.objects.filter(contact=OuterRef("pk"))),
        double=F("age") * 2,
    ).order_by("name")
    with assert_num_queries(1):
        rows = list(qs.values_list("name", "oldest", "n", "contact", "double"))
    contacts = {row[5] for row in BOOKS}
    assert rows == [
        (NAMES[a], AGES[a], len(AUTHOR_BOOKS[a]), a in contacts, AGES[a] * 2)
        for a in sorted(AGES, key=NAMES.get)
    ]
    # An annotation of a sliced queryset applies to its rows.
    sliced = Author.objects.all()[:2].annotate(n=Count("books"))
    assert [(a.name, a.n) for a in sliced] == [(r[0], r[2]) for r in rows[:2]]


def test_count_star_forward_key_prefixes_and_keyword_names(data):
    qs = Book.objects.annotate(
        co_books=Count("contact__books"),  # the books the contact wrote
        order=Count("*", filter=Q(pages__gt=0)),
    )
    rows = sorted(qs.order_by("-order", "pk").values_list("name", "co_books", "order"))
    assert rows == sorted((r[1], len(AUTHOR_BOOKS[r[5]]), 1) for r in BOOKS)
    assert Book.objects.aggregate(n=Count("*")) == {"n": len(BOOKS)}


def test_outer_ref_in_arithmetic_and_its_mistakes(data):
    # Books whose contact is more than a tenth of their pages old... in years.
    young = Author.objects.filter(
        pk=OuterRef("contact"), age__lt=OuterRef("pages") / 10
    )
    qs = Book.objects.filter(Exists(young))
    assert sorted(b.name for b in qs) == sorted(
        r[1] for r in BOOKS if AGES[r[5]] < r[2] // 10
    )
    with assert_num_queries(0):
        with pytest.raises(orm.FieldError, match="takes a field name, not a lookup"):
            Book.objects.filter(Exists(Author.objects.filter(pk=OuterRef("pages__gt"))))
        with pytest.raises(orm.FieldError, match="spans the multi-valued relation"):
            Book.objects.filter(
                Exists(Author.objects.filter(pk=OuterRef("authors__id")))
            )
        too_far = Author.objects.filter(pk=OuterRef(OuterRef("contact")))
        with pytest.raises(
            ValueError,
            match=r"OuterRef\('contact'\)\) and may only be used in a subquery",
        ):
            list(Book.objects.filter(Exists(too_far)))


def test_subquery_as_a_filter_value_and_decimal_averages(data):
    cheapest = Book.objects.filter(publisher=OuterRef("publisher")).order_by("price")
    qs = Book.objects.filter(pk=Subquery(cheapest.values("pk")[:1]))
    expected = {}
    for number, row in BOOK.items():
        best = expected.get(row[6])
        if best is None or decimal.Decimal(row[4]) < decimal.Decimal(BOOK[best][4]):
            expected[row[6]] = number
    assert sorted(b.pk for b in qs) == sorted(data.b[n].pk for n in expected.values())
    rich = Publisher.objects.annotate(mean=Avg("books__price")).filter(
        mean__gt=decimal.Decimal("50")
    )
    assert sorted(p.name for p in rich) == ["Morgan Kaufmann", "Prentice Hall"]


def test_conditions_of_grouped_queries_go_where_they_belong(data):
    base = Book.objects.values("publisher").annotate(n=Count("id"), total=Sum("pages"))
    # On a grouped field: WHERE; nested or combined with an aggregate: HAVING.
    with assert_num_queries(1) as log:
        rows = list(base.filter(publisher=data.p[1].pk).values_list("n", "total"))
    assert rows == [(2, 447 + 300)] and "HAVING" not in log.queries[0]
    either = base.filter(Q(Q(n__gt=1)) | Q(publisher=data.p[4].pk)).order_by(
        "publisher"
    )
    assert [r["publisher"] for r in either] == [data.p[n].pk for n in (1, 3, 4)]
    dense = base.filter(total__gt=F("n") * 500).order_by("publisher")
    assert [(r["publisher"], r["n"]) for r in dense] == [
        (data.p[n].pk, c) for n, c in ((2, 1), (3, 2), (4, 1))
    ]
    wrapped = Author.objects.annotate(n=Count("books")).aggregate(
        many=Count("id", filter=Q(n__gt=1))
    )
    assert wrapped == {"many": 1}
    with assert_num_queries(0):
        empty = Book.objects.none().aggregate(x=Sum("pages") + Sum("rating"))
    assert empty == {"x": None}


def test_aggregate_filters_may_use_the_outer_row(data):
    # Count("books", filter=...) on a field of the author itself.
    qs = Author.objects.annotate(
        n=Count("books", filter=Q(age__gt=40) | Q(books__pages__lt=400))
    )
    assert dict(qs.values_list("name", "n")) == {
        NAMES[a]: sum(1 for b in AUTHOR_BOOKS[a] if AGES[a] > 40 or BOOK[b][2] < 400)
        for a in AGES
    }


def test_unstorable_text_compared_with_an_annotation_matches_nothing(data):
    newest = Book.objects.filter(contact=OuterRef("pk")).order_by("-pubdate")
    qs = Author.objects.annotate(title=Subquery(newest.values("name")[:1]))
    assert list(qs.filter(title="a\x00b")) == []
    assert list(qs.filter(title__contains="\ud800")) == []
    assert [a.name for a in qs.filter(title=BOOKS[1][1])] == ["Brad Dayley"]
