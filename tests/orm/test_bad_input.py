"""Bad input (§5): clear errors before any SQL, nothing written, on both backends.

``sql_log`` records every statement the ORM sends, so "before any SQL" is
checked, not assumed.
"""

import decimal

import pytest

from framework import orm
from framework import signals

from .models import Author
from .models import Book
from .models import Chapter
from .models import Edition
from .models import Everything
from .models import Publisher
from .relation_models import Human

HOSTILE = [
    "x'); DROP TABLE ormtests_author; --",
    'a" OR "1"="1',
    "%",
    "_",
    "50% off_now\\",
    "/%/_//",
    "?, %s, :name, $1",
    "Robert'); DELETE FROM ormtests_book;--",
    "ünï©ødé ☃ 𝄞",
    "\\x00 is not a NUL",
]


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda: Book.objects.filter(titel="x"),
            orm.FieldError,
            "Cannot resolve keyword 'titel' into a field of Book. Choices are: author,"
            " chapter, edition, id, in_print, loan, pages, pk, review, title",
        ),
        (
            lambda: Book.objects.filter(title__near="x"),
            orm.FieldError,
            "Unsupported lookup 'near' for CharField 'title' of Book. Choices are:"
            " contains, endswith, exact,",
        ),
        (
            lambda: Book.objects.filter(author__nme="x"),
            orm.FieldError,
            "keyword 'nme' into a field of Author. Choices are: books, email,",
        ),
        (
            lambda: Book.objects.exclude(orm.Q(pages=1) | orm.Q(pagez=2)),
            orm.FieldError,
            "keyword 'pagez' into a field of Book",
        ),
        (
            lambda: Book.objects.order_by("-nope"),
            orm.FieldError,
            "keyword 'nope' into a field of Book. Choices are:",
        ),
        (
            lambda: Book.objects.values("nope"),
            orm.FieldError,
            "keyword 'nope' into a field of Book. Choices are:",
        ),
        (
            lambda: Book.objects.values_list("title__exact"),
            orm.FieldError,
            "lookups cannot be selected",
        ),
        (
            lambda: Book.objects.get(titel="x"),
            orm.FieldError,
            "keyword 'titel' into a field of Book",
        ),
        (
            lambda: Book.objects.update(titel="x"),
            orm.FieldError,
            "Book has no field named 'titel'. Choices are:",
        ),
        (
            # Hidden relations (through rows, "+" names) are no choice.
            lambda: Human.objects.filter(nope=1),
            orm.FieldError,
            "Human. Choices are: followers, follows, friends, id, name, pk.$",
        ),
        (
            lambda: Book.objects.in_bulk([1], field_name="nope"),
            orm.FieldError,
            "keyword 'nope' into a field of Book",
        ),
        (
            lambda: Author.objects.create(nme="x"),
            TypeError,
            "unexpected keyword argument 'nme'. Fields: id, name, email",
        ),
        (
            lambda: Author(name="a").save(update_fields=["nme"]),
            orm.FieldError,
            "update_fields names 'nme', which Author does not have",
        ),
        # Hostile names are names like any other: refused, never spliced in.
        (
            lambda: Book.objects.filter(**{"title; DROP TABLE ormtests_book": 1}),
            orm.FieldError,
            "Cannot resolve keyword 'title; DROP TABLE ormtests_book'",
        ),
        (
            lambda: Book.objects.filter(**{"title__exact') OR 1=1 --": "a"}),
            orm.FieldError,
            "Unsupported lookup \"exact'\\) OR 1=1 --\" for CharField 'title'",
        ),
        (
            lambda: Book.objects.order_by('title" DESC; --'),
            orm.FieldError,
            "Cannot resolve keyword 'title\" DESC; --'",
        ),
        (
            lambda: Book.objects.values('id") FROM ormtests_author; --'),
            orm.FieldError,
            "Cannot resolve keyword 'id\"\\) FROM ormtests_author; --'",
        ),
        (
            lambda: Book.objects.update(**{"title = 'x', pages": 1}),
            orm.FieldError,
            "Book has no field named \"title = 'x', pages\"",
        ),
        (lambda: Book.objects.exclude(pages__in=5), ValueError, "must be an iterable"),
        (
            lambda: Book.objects.filter(pages__range=(1,)),
            ValueError,
            "must be a \\(low, high\\) pair",
        ),
        (
            lambda: list(Book.objects.filter(pages="ten")),
            ValueError,
            "Invalid value for 'pages'.*expected an integer",
        ),
        (
            lambda: Chapter.objects.filter(number="one").delete(),
            ValueError,
            "Invalid value for 'number'.*expected an integer",
        ),
        (
            lambda: Author.objects.filter(name__in=["ok", 5]).delete(),
            ValueError,
            "Invalid value for 'name__in'.*expected a string",
        ),
        (
            lambda: Book.objects.get(pk="abc"),
            ValueError,
            "Invalid value for 'pk'",
        ),
        # An instance of another model is no key of this one (as in Django).
        (
            lambda: Book.objects.filter(author=Publisher(pk=1)),
            ValueError,
            "Cannot compare 'author' with .*: it must be a Author instance",
        ),
        (
            lambda: Author.objects.filter(books__in=[Book(pk=1), Publisher(pk=2)]),
            ValueError,
            "Cannot compare 'books__in' with .*: it must be a Book instance",
        ),
    ],
)
def test_bad_names_and_values_raise_before_any_sql(sql_log, call, error, message):
    Author.objects.create(name="keep")
    del sql_log[:]
    with pytest.raises(error, match=message):
        call()
    assert sql_log == []
    assert list(Author.objects.values_list("name", flat=True)) == ["keep"]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"code": "a\x00b"}, "Everything.code: contains a NUL character"),
        ({"body": "a\x00b"}, "Everything.body: contains a NUL character"),
        ({"data": {"k": "a\x00b"}}, "Everything.data: holds a NUL character"),
        ({"data": {"k\x00": 1}}, "Everything.data: holds a NUL character"),
        ({"data": [float("nan")]}, "Everything.data: is not JSON-serialisable"),
        ({"data": float("inf")}, "Everything.data: is not JSON-serialisable"),
        ({"price": decimal.Decimal("NaN")}, "Everything.price: expected a finite"),
        ({"price": decimal.Decimal("1e100")}, "Everything.price: .* than 8 digits"),
        ({"price": "-1e30"}, "Everything.price: .* than 8 digits"),
        ({"price": 10**40}, "Everything.price: .* than 8 digits"),
        ({"ratio": float("nan")}, "Everything.ratio: is NaN"),
        ({"small": True}, "Everything.small: expected an integer, got bool"),
        ({"big": 2**63}, "Everything.big: .* out of range"),
        ({"moment": "noon"}, "Everything.moment: expected a datetime"),
    ],
)
def test_values_no_backend_can_store_are_refused_everywhere(sql_log, values, message):
    with pytest.raises(orm.ValidationError, match=message):
        Everything(**values).save()
    with pytest.raises(orm.ValidationError, match=message):
        Everything.objects.bulk_create([Everything(), Everything(**values)])
    assert sql_log == []
    kept = Everything.objects.create()
    del sql_log[:]
    with pytest.raises(orm.ValidationError, match=message):
        Everything.objects.filter(pk=kept.pk).update(**values)
    for name, value in values.items():
        setattr(kept, name, value)
    with pytest.raises(orm.ValidationError, match=message):
        kept.save()
    assert sql_log == []
    assert Everything.objects.count() == 1


def test_escaped_nul_text_is_ordinary_text(db):
    # A backslash, then "u0000": not a NUL character, stored as is.
    obj = Everything.objects.create(data={"k": "\\u0000"}, body="\\x00")
    loaded = Everything.objects.get(pk=obj.pk)
    assert loaded.data == {"k": "\\u0000"} and loaded.body == "\\x00"


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_strings_are_only_ever_parameters(sql_log, hostile):
    author = Author.objects.create(name=hostile[:50], email=hostile)
    Book.objects.create(title=hostile, author=author)
    Book.objects.create(title="plain", author=author)
    queries = [
        Book.objects.filter(title=hostile),
        Book.objects.filter(title__iexact=hostile.upper()),
        Book.objects.filter(title__contains=hostile),
        Book.objects.filter(title__icontains=hostile.upper()),
        Book.objects.filter(title__startswith=hostile),
        Book.objects.filter(title__endswith=hostile[-3:]).exclude(title="plain"),
        Book.objects.filter(title__in=[hostile, "nothing"]),
        Book.objects.filter(author__email=hostile).exclude(title="plain"),
        Book.objects.filter(orm.Q(title=hostile) | orm.Q(title=hostile + "x")),
    ]
    for qs in queries:
        assert [b.title for b in qs] == [hostile], qs
    # LIKE wildcards in the value match themselves only.
    assert Book.objects.filter(title__contains="%" + hostile).count() == 0
    assert Author.objects.get(email=hostile).name == hostile[:50]
    assert Book.objects.filter(title=hostile).update(title=hostile + "!") == 1
    assert Book.objects.get(title=hostile + "!").author_id == author.pk
    obj, created = Author.objects.get_or_create(email=hostile, defaults={"name": "n"})
    assert obj.pk == author.pk and not created
    assert Book.objects.filter(title=hostile + "!").delete()[0] == 1
    assert [b.title for b in Book.objects.all()] == ["plain"]
    assert Author.objects.count() == 1
    # The values travelled as parameters only: no statement text holds them.
    assert sql_log
    if len(hostile) > 4:
        assert not [sql for sql, _ in sql_log if hostile in sql or hostile[:12] in sql]


def test_protect_lists_every_protector_and_deletes_nothing(sql_log):
    publisher = Publisher.objects.create(name="P")
    other = Publisher.objects.create(name="Q")
    first = Edition.objects.create(publisher=publisher)
    second = Edition.objects.create(publisher=publisher)
    Edition.objects.create(publisher=other)
    sent = []

    def record(sender, instance, **kwargs):
        sent.append(instance)

    del sql_log[:]
    with signals.pre_delete.connected_to(record):
        with pytest.raises(
            orm.ProtectedError,
            match=(
                r"Cannot delete <Publisher: Publisher object \(\d+\)>: referenced"
                r" through protected foreign keys Edition.publisher by"
                r" <Edition: Edition object \(\d+\)>, <Edition: Edition object"
                r" \(\d+\)>. Nothing was deleted."
            ),
        ) as info:
            publisher.delete()
        assert sorted(e.pk for e in info.value.protected_objects) == sorted(
            [first.pk, second.pk]
        )
        with pytest.raises(
            orm.ProtectedError, match="Cannot delete some Publisher instances"
        ) as info:
            Publisher.objects.filter(name__in=["P", "Q"]).delete()
        assert len(info.value.protected_objects) == 3
    assert sent == []
    assert not [sql for sql, _ in sql_log if sql.lstrip().upper().startswith("DELETE")]
    assert Publisher.objects.count() == 2 and Edition.objects.count() == 3
    assert publisher.pk is not None


@pytest.mark.parametrize(
    "query",
    [
        lambda: Book.objects.filter(title="a\x00"),
        lambda: Book.objects.filter(title__contains="a\x00"),
        lambda: Book.objects.filter(title__istartswith="\ud800"),
        lambda: Book.objects.filter(title="\udcff lone"),
        lambda: Book.objects.filter(title="x" * 101),  # longer than max_length
        lambda: Book.objects.filter(pk=2**31),
        lambda: Book.objects.filter(pk=-(2**31) - 1),
        lambda: Book.objects.filter(pk=2**63),
        lambda: Book.objects.filter(pk=2**64, title="t"),
        lambda: Book.objects.filter(author=2**63),
        lambda: Book.objects.filter(author__name="\x00"),
        lambda: Book.objects.filter(pages__gt=2**40),
        lambda: Book.objects.filter(pages__lte=-(2**40)),
        lambda: Book.objects.filter(pk__in=[]),
        lambda: Book.objects.filter(pk__in=[None]),
        lambda: Book.objects.filter(orm.Q(pk=2**40) | orm.Q(title="a\x00")),
    ],
)
def test_values_no_row_can_hold_match_nothing_without_sql(sql_log, query):
    """A value no column can store (NUL, lone surrogate, out of range) finds nothing.

    Both backends alike, and without a query: PostgreSQL would refuse NUL,
    no driver encodes a lone surrogate, SQLite overflows past 64 bits.
    """
    author = Author.objects.create(name="keep")
    Book.objects.create(title="t", author=author)
    del sql_log[:]
    assert list(query()) == []
    assert query().count() == 0
    assert not query().exists()
    assert query().first() is None
    assert query().update(pages=1) == 0
    assert query().delete() == (0, {})
    assert sql_log == []
    assert Book.objects.count() == 1


def test_values_no_row_can_hold_in_other_lookups(db):
    author = Author.objects.create(name="keep")
    book = Book.objects.create(title="t", author=author, pages=10)
    with pytest.raises(Book.DoesNotExist):
        Book.objects.get(pk=2**63)
    with pytest.raises(Book.DoesNotExist):
        Book.objects.get(pk=-(2**31) - 1)
    with pytest.raises(Book.DoesNotExist):
        Book.objects.filter(title="t").get(pk=2**40)
    assert Book.objects.in_bulk([book.pk, 2**63, 2**31]) == {book.pk: book}
    assert list(Book.objects.filter(pk__in=[book.pk, 2**63, 2**31])) == [book]
    assert list(Book.objects.filter(title__in=["t", "\x00", "\ud800"])) == [book]
    assert list(Book.objects.filter(pages__lt=2**40)) == [book]
    assert list(Book.objects.filter(pages__gte=-(2**40))) == [book]
    assert list(Book.objects.exclude(title="a\x00")) == [book]
    assert list(Book.objects.exclude(pk=2**63)) == [book]
    assert list(Author.objects.filter(books__pk=2**63)) == []


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"name": "a\ud800b"}, "lone surrogate"),
        ({"name": "\udcff"}, "lone surrogate"),
        ({"name": "ok", "email": "\x00@x"}, "NUL character"),
        (Everything(body="\ud800"), "lone surrogate"),
        (Everything(data={"k": ["\udfff"]}), "lone surrogate"),
    ],
)
def test_text_no_column_can_hold_is_refused_on_save(sql_log, values, message):
    del sql_log[:]
    with pytest.raises(orm.ValidationError, match=message):
        if isinstance(values, dict):
            Author.objects.create(**values)
        else:
            values.save()
    assert sql_log == []
    author = Author.objects.create(name="ok \U0001f600 ünï")  # real non-ASCII is fine
    assert Author.objects.get(pk=author.pk).name == "ok \U0001f600 ünï"


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda: Book.objects.update(pages=orm.Value(2**70)),
            orm.ValidationError,
            "out of range",
        ),
        (
            lambda: Book.objects.update(title=orm.Value("x" * 101)),
            orm.ValidationError,
            "at most 100",
        ),
        (
            lambda: Book.objects.update(pages=orm.Value("many")),
            orm.ValidationError,
            "expected an integer",
        ),
        (
            lambda: list(Book.objects.filter(pages=orm.Value("many"))),
            ValueError,
            "expected an integer",
        ),
    ],
)
def test_untyped_value_is_checked_by_its_field(sql_log, call, error, message):
    """Value() of no stated type, set or compared, is checked as the plain value is.

    PostgreSQL refused each of these in the driver (bigint out of range, value
    too long, integer = character varying): a 500 instead of a clear error.
    """
    author = Author.objects.create(name="keep")
    Book.objects.create(title="t", author=author, pages=10)
    del sql_log[:]
    with pytest.raises(error, match=message):
        call()
    assert sql_log == []
    assert Book.objects.get().pages == 10


def test_untyped_value_in_range_filters_and_sets_like_a_plain_value(db):
    author = Author.objects.create(name="keep")
    book = Book.objects.create(title="t", author=author, pages=10)
    assert list(Book.objects.filter(pages=orm.Value(10))) == [book]
    assert list(Book.objects.filter(pages__gt=orm.Value(2**40))) == []
    assert Book.objects.update(pages=orm.Value(12), title=orm.Value("u")) == 1
    book.refresh_from_db()
    assert (book.pages, book.title) == (12, "u")
