"""F() expressions and Q objects in filter(), update() and annotate(), both databases.

Cases follow Django's tests/expressions; the expected rows are computed in
Python from the data set of aggregation_models.py.
"""

from __future__ import annotations

import decimal

import pytest

from framework import orm
from framework import signals
from framework.orm import F
from framework.orm import Q
from framework.orm import Value
from framework.testing import assert_num_queries
from framework.testing import capture
from framework.testing import capture_queries

from .aggregation_models import AUTHORS
from .aggregation_models import BOOKS
from .aggregation_models import PUBLISHERS
from .aggregation_models import Author
from .aggregation_models import Book
from .aggregation_models import Publisher
from .aggregation_models import seed


@pytest.fixture
def data(db):
    return seed()


def age(number):
    return AUTHORS[number - 1][1]


def awards(number):
    return PUBLISHERS[number - 1][1]


def names(qs):
    return sorted(qs.values_list("name", flat=True))


def book_names(predicate):
    return sorted(row[1] for row in BOOKS if predicate(row))


# filter() ------------------------------------------------------------------------


def test_f_compares_two_columns_of_a_row(data):
    with assert_num_queries(1):
        found = names(Book.objects.filter(pages__gt=F("contact__age") * 10))
    assert found == book_names(lambda row: row[2] > age(row[5]) * 10)


def test_f_on_both_sides_across_foreign_keys(data):
    qs = Book.objects.filter(contact__age__gt=F("publisher__num_awards") * 10)
    assert names(qs) == book_names(lambda row: age(row[5]) > awards(row[6]) * 10)
    assert names(
        Book.objects.filter(publisher__num_awards__gte=F("contact__age") / 10)
    ) == book_names(lambda row: awards(row[6]) >= age(row[5]) // 10)


def test_arithmetic_keeps_operator_precedence_and_literal_sides(data):
    qs = Book.objects.filter(pages__lt=(F("publisher__num_awards") + 2) * 100 - 50)
    assert names(qs) == book_names(lambda row: row[2] < (awards(row[6]) + 2) * 100 - 50)
    qs = Book.objects.filter(pages__gt=1000 - F("publisher__num_awards") * 100)
    assert names(qs) == book_names(lambda row: row[2] > 1000 - awards(row[6]) * 100)
    qs = Author.objects.filter(age__gte=-F("age") + 80)
    assert names(qs) == sorted(name for name, years in AUTHORS if years >= 80 - years)


def test_integer_division_and_modulo_are_the_databases(data):
    rows = Book.objects.annotate(
        half=F("pages") / 2, rest=F("pages") % 7, third=F("rating") / 3
    ).values_list("pages", "half", "rest", "third")
    assert sorted(rows) == sorted(
        (row[2], row[2] // 2, row[2] % 7, pytest.approx(row[3] / 3, rel=1e-12))
        for row in BOOKS
    )


def test_exclude_with_f_keeps_rows_whose_column_is_null(data):
    # Only book 1 has notes equal to its isbn; books 3-6 have no notes.
    assert names(Book.objects.filter(notes=F("isbn"))) == [BOOKS[0][1]]
    assert names(Book.objects.exclude(notes=F("isbn"))) == sorted(
        row[1] for row in BOOKS[1:]
    )


def test_gte_lte_and_exact_against_expressions(data):
    assert names(Author.objects.filter(age=F("age"))) == sorted(n for n, _ in AUTHORS)
    assert names(Book.objects.filter(pages__lte=F("pages") - 1)) == []
    assert len(Book.objects.filter(pages__gte=F("pages"))) == len(BOOKS)


def test_q_objects_nest_negate_and_mix_with_keyword_filters(data):
    qs = Book.objects.filter(
        Q(rating__gte=4.5) | (Q(publisher__name="Sams") & ~Q(pages__lt=500)),
        ~Q(authors__age__gt=50),
        pages__gt=100,
    )
    with assert_num_queries(1):
        found = names(qs)
    assert found == book_names(
        lambda row: (
            (row[3] >= 4.5 or (row[6] == 2 and not row[2] < 500))
            and not any(age(a) > 50 for a in row[8])
            and row[2] > 100
        )
    )
    qs = Author.objects.filter(~(Q(age__lt=30) | Q(name__startswith="J")))
    assert names(qs) == sorted(
        n for n, a in AUTHORS if not (a < 30 or n.startswith("J"))
    )


def test_q_with_f_values_across_relations(data):
    qs = Book.objects.filter(Q(pages__gt=F("contact__age") * 20) | Q(rating=5.0))
    assert names(qs) == book_names(lambda row: row[2] > age(row[5]) * 20 or row[3] == 5)


def test_filter_on_an_annotation_and_on_a_lookup_of_it(data):
    qs = Book.objects.annotate(double=F("pages") * 2)
    assert names(qs.filter(double__gt=1000)) == book_names(
        lambda row: row[2] * 2 > 1000
    )
    assert names(qs.filter(double__in=[600, 700])) == book_names(
        lambda row: row[2] * 2 in (600, 700)
    )
    assert names(qs.exclude(double__range=(0, 1000))) == book_names(
        lambda row: row[2] * 2 > 1000
    )


# update() ------------------------------------------------------------------------


def test_update_with_f_is_one_statement_and_exact(data):
    with assert_num_queries(1):
        count = Book.objects.filter(rating__gte=4).update(pages=F("pages") + 1)
    assert count == sum(1 for row in BOOKS if row[3] >= 4)
    assert sorted(Book.objects.values_list("name", "pages")) == sorted(
        (row[1], row[2] + 1 if row[3] >= 4 else row[2]) for row in BOOKS
    )


def test_update_with_several_fields_values_and_expressions(data):
    Book.objects.filter(pk=data.b[2].pk).update(
        pages=F("pages") * 2 - 6, rating=F("rating") + 0.5, notes="reprint"
    )
    book = Book.objects.get(pk=data.b[2].pk)
    assert (book.pages, book.rating, book.notes) == (528 * 2 - 6, 3.5, "reprint")
    Publisher.objects.update(num_awards=F("num_awards") * 0 + 1)
    assert set(Publisher.objects.values_list("num_awards", flat=True)) == {1}


def test_update_decimal_arithmetic_is_exact(data):
    Book.objects.update(price=F("price") * 2 + decimal.Decimal("0.01"))
    prices = sorted(Book.objects.values_list("price", flat=True))
    assert prices == sorted(
        decimal.Decimal(row[4]) * 2 + decimal.Decimal("0.01") for row in BOOKS
    )


def test_update_sends_post_update_with_the_expression(data):
    with capture(signals.post_update) as recorded:
        Book.objects.filter(pk=data.b[1].pk).update(pages=F("pages") + 10)
    ((sender, kwargs),) = [(c.sender, c.kwargs) for c in recorded.calls]
    assert sender is Book
    assert kwargs["pk_set"] == frozenset({data.b[1].pk})
    assert repr(kwargs["values"]["pages"]) == "F('pages') + Value(10)"


def test_update_refuses_joined_references_and_aggregates_before_any_sql(data):
    with assert_num_queries(0):
        with pytest.raises(
            orm.FieldError, match=r"update\(\) cannot use F\('contact__age'\)"
        ):
            Book.objects.update(pages=F("contact__age"))
        with pytest.raises(
            orm.FieldError, match=r"aggregates cannot be used in update\(\)\.$"
        ):
            Book.objects.update(pages=orm.Count("id"))
        with pytest.raises(orm.FieldError, match="'pagez' into a field of Book"):
            Book.objects.update(pages=F("pagez") + 1)
        with pytest.raises(orm.FieldError, match="cannot set CharField 'name'"):
            Book.objects.update(name=F("pages") + 1)


# annotate() ------------------------------------------------------------------------


def test_annotate_arithmetic_on_rows_and_in_values(data):
    with assert_num_queries(1):
        books = list(
            Book.objects.annotate(
                double=F("pages") * 2, pages_per_year=F("pages") / F("contact__age")
            )
        )
    assert sorted((b.name, b.double, b.pages_per_year) for b in books) == sorted(
        (row[1], row[2] * 2, row[2] // age(row[5])) for row in BOOKS
    )
    rows = Book.objects.annotate(total=F("price") * F("pages")).values("name", "total")
    assert sorted(
        (r["name"], r["total"].quantize(decimal.Decimal("0.01"))) for r in rows
    ) == (sorted((row[1], decimal.Decimal(row[4]) * row[2]) for row in BOOKS))


def test_annotate_value_and_a_reference_to_an_earlier_annotation(data):
    qs = Author.objects.annotate(one=Value(1), label=Value("x"), twice=F("age") * 2)
    qs = qs.annotate(more=F("twice") + F("one"))
    assert sorted(qs.values_list("name", "one", "label", "more")) == sorted(
        (name, 1, "x", years * 2 + 1) for name, years in AUTHORS
    )


def test_order_by_an_annotation(data):
    qs = Book.objects.annotate(score=F("rating") * 100 - F("pages")).order_by(
        "-score", "name"
    )
    expected = sorted(BOOKS, key=lambda row: (-(row[3] * 100 - row[2]), row[1]))
    assert list(qs.values_list("name", flat=True)) == [row[1] for row in expected]


def test_decimal_and_float_mix_needs_an_output_field(data):
    with assert_num_queries(0):
        with pytest.raises(orm.FieldError, match="mixes DecimalField and FloatField"):
            Book.objects.annotate(x=F("price") * F("rating"))
    qs = Book.objects.annotate(
        x=orm.ExpressionWrapper(F("price") * F("rating"), output_field=orm.FloatField())
    )
    assert sorted(round(v, 6) for v in qs.values_list("x", flat=True)) == sorted(
        round(float(row[4]) * row[3], 6) for row in BOOKS
    )


# Bad input ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "error", "message"),
    [
        (
            lambda: Book.objects.filter(pages__gt=F("pagez")),
            orm.FieldError,
            "Cannot resolve keyword 'pagez' into a field of Book",
        ),
        (
            lambda: Book.objects.annotate(x=F("name") + 1),
            orm.FieldError,
            r"Cannot use \+ on CharField 'name'",
        ),
        (
            lambda: Book.objects.annotate(x=F("pages__gt")),
            orm.FieldError,
            "F\\(\\) takes a field name, not a lookup",
        ),
        (
            lambda: Author.objects.annotate(x=F("books__pages")),
            orm.FieldError,
            "spans the multi-valued relation 'books'",
        ),
        (
            lambda: Book.objects.filter(name__contains=F("isbn")),
            orm.FieldError,
            "the 'contains' lookup cannot compare with an expression",
        ),
        (
            lambda: Book.objects.filter(pages__gt=orm.Count("id")),
            orm.FieldError,
            r"aggregates cannot be used in filter\(\)",
        ),
        (
            lambda: Book.objects.annotate(pages=F("pages") + 1),
            orm.FieldError,
            "The annotation 'pages' conflicts with a field on Book",
        ),
        (
            lambda: Book.objects.annotate(contact_id=Value(1)),
            orm.FieldError,
            "The annotation 'contact_id' conflicts with a field on Book",
        ),
        (
            lambda: Book.objects.annotate(x=Value(1)).annotate(x=Value(2)),
            orm.FieldError,
            "The annotation 'x' is already defined",
        ),
        (
            lambda: Book.objects.annotate(x=3),
            TypeError,
            r"x=3 is not one",
        ),
        (
            lambda: Book.objects.annotate(Value(1)),
            TypeError,
            r"needs a name for Value\(1\)",
        ),
        (lambda: F(3), TypeError, "F\\(\\) takes a field name"),
        (lambda: F("a") & F("b"), TypeError, "is not a condition"),
        (lambda: Q(F("a")), TypeError, "Q\\(\\) takes Q objects"),
        (lambda: Value(object()), TypeError, "cannot infer its field"),
        (lambda: Value("a\x00"), ValueError, "NUL character"),
        (
            lambda: Book.objects.annotate(x=Value(1)).filter(x__near=3),
            orm.FieldError,
            "Unsupported lookup 'near' for the annotation 'x'",
        ),
    ],
)
def test_bad_expressions_fail_before_any_sql(db, build, error, message):
    with assert_num_queries(0):
        with pytest.raises(error, match=message):
            build()


def test_each_shape_is_compiled_once(data, compilations):
    def cycle(pages):
        list(Book.objects.filter(pages__gt=F("contact__age") * pages))
        list(Book.objects.annotate(d=F("pages") * pages).filter(d__gt=pages))
        Book.objects.filter(pk=data.b[1].pk).update(pages=F("pages") + pages)
        Book.objects.filter(Q(pages__lt=pages) | ~Q(rating=F("rating"))).count()

    cycle(1)
    with compilations() as compiled, capture_queries() as log:
        cycle(2)
        cycle(3)
    assert compiled == []
    assert len(log) == 8
    # The values travel as parameters of the cached statements.
    assert Book.objects.get(pk=data.b[1].pk).pages == 447 + 1 + 2 + 3


def test_numbers_on_the_left_and_values_of_every_kind(data):
    import datetime

    qs = Book.objects.annotate(
        a=2 * F("pages"),
        b=1000 / F("contact__age"),
        c=10000 % F("pages"),
        d=1 + F("pages"),
        flag=Value(True),
        day=Value(datetime.date(2020, 1, 2)),
        moment=Value(datetime.datetime(2020, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)),
        nothing=Value(None),
        price2=F("price") + decimal.Decimal("0.50"),
    ).filter(pk=data.b[2].pk)
    row = qs.values(
        "a", "b", "c", "d", "flag", "day", "moment", "nothing", "price2"
    ).get()
    assert row == {
        "a": 2 * 528,
        "b": 1000 // age(3),
        "c": 10000 % 528,
        "d": 529,
        "flag": True,
        "day": datetime.date(2020, 1, 2),
        "moment": datetime.datetime(2020, 1, 2, 3, 4, 5, tzinfo=datetime.UTC),
        "nothing": None,
        "price2": decimal.Decimal("23.59"),
    }
    # A foreign key read through F() is its key.
    assert Book.objects.annotate(c=F("contact")).get(pk=data.b[2].pk).c == (
        data.a[3].pk
    )


def test_expression_wrapper_states_the_type_of_any_expression(data):
    qs = Book.objects.annotate(
        ratio=orm.ExpressionWrapper(
            F("rating") * 2 + F("price") / F("pages"), output_field=orm.FloatField()
        ),
        as_float=orm.ExpressionWrapper(F("pages"), output_field=orm.FloatField()),
    )
    row = qs.values("ratio", "as_float").get(pk=data.b[1].pk)
    assert row["ratio"] == pytest.approx(4.5 * 2 + 30.0 / 447, rel=1e-9)
    assert row["as_float"] == 447.0 and isinstance(row["as_float"], float)


def test_expression_construction_mistakes(db):
    with pytest.raises(TypeError, match="takes an expression"):
        orm.ExpressionWrapper(3, output_field=orm.FloatField())
    with pytest.raises(TypeError, match="takes a field"):
        orm.ExpressionWrapper(F("pages"), output_field=float)
    with pytest.raises(ValueError, match="Unknown operator"):
        orm.expressions.CombinedExpression(F("a"), "**", F("b"))
    with pytest.raises(TypeError, match="is not a condition"):
        F("a") | Q(b=1)


def test_expressions_read_back_as_python(db):
    expr = (F("pages") + 1) * -F("rating")
    assert repr(expr) == "(F('pages') + Value(1)) * (F('rating') * Value(-1))"
    assert repr(orm.OuterRef(orm.OuterRef("pk"))) == "OuterRef(OuterRef('pk'))"
    count = orm.Count("books", distinct=True, filter=Q(books__pages=1))
    assert repr(count) == (
        "Count('books', distinct=True, filter=<Q: (('books__pages', 1))>)"
    )
    assert repr(orm.Sum(F("pages") * 2)) == "Sum(F('pages') * Value(2))"
    assert repr(orm.Exists(Book.objects.all())) == "Exists(Book queryset)"
    assert repr(~orm.Exists(Book.objects.all())) == "~Exists(Book queryset)"


def test_update_to_null_and_type_checks_of_update_expressions(data):
    Book.objects.filter(pk=data.b[1].pk).update(notes=Value(None))
    assert Book.objects.get(pk=data.b[1].pk).notes is None
    with assert_num_queries(0):
        with pytest.raises(orm.FieldError, match="cannot set IntegerField 'pages'"):
            Book.objects.update(pages=F("name"))
    qs = Book.objects.annotate(half=F("pages") / 2)
    assert qs.filter(half__isnull=True).count() == 0
    assert qs.filter(half__isnull=False).count() == len(BOOKS)


def test_f_in_a_lookup_across_a_multi_valued_relation_is_the_outer_row(data):
    # books__pages__gt=F("age"): some book of the author is longer than 20
    # times the author's age.
    qs = Author.objects.filter(books__pages__gt=F("age") * 20)
    long = {
        name
        for number, (name, years) in enumerate(AUTHORS, 1)
        if any(row[2] > years * 20 for row in BOOKS if number in row[8])
    }
    assert sorted(a.name for a in qs) == sorted(long)
    assert sorted(
        a.name for a in Author.objects.exclude(books__pages__gt=F("age") * 20)
    ) == sorted(name for name, _ in AUTHORS if name not in long)
    older = Book.objects.filter(authors__age__gt=F("contact__age"))
    assert names(older) == book_names(
        lambda row: any(age(a) > age(row[5]) for a in row[8])
    )
