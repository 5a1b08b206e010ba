import pytest

from framework import orm
from framework.orm import Q

from .models import Author
from .models import Book
from .models import Chapter
from .models import Group
from .models import Membership
from .models import Person
from .models import Pizza
from .models import Topping


@pytest.fixture
def library(db):
    ann = Author.objects.create(name="Ann", email="ann@example.com")
    bob = Author.objects.create(name="Bob")
    cid = Author.objects.create(name="Cid_100%")
    books = [
        Book.objects.create(title="Alpha", author=ann, pages=10),
        Book.objects.create(title="beta", author=ann, pages=20, in_print=False),
        Book.objects.create(title="Gamma", author=bob, pages=30),
    ]
    return {"ann": ann, "bob": bob, "cid": cid, "books": books}


def titles(qs):
    return sorted(b.title for b in qs)


@pytest.mark.parametrize(
    ("lookup", "expected"),
    [
        ({"title": "Alpha"}, ["Alpha"]),
        ({"title__exact": "alpha"}, []),
        ({"title__iexact": "ALPHA"}, ["Alpha"]),
        ({"title__contains": "amm"}, ["Gamma"]),
        ({"title__contains": "AMM"}, []),
        ({"title__icontains": "AMM"}, ["Gamma"]),
        ({"title__startswith": "b"}, ["beta"]),
        ({"title__startswith": "B"}, []),
        ({"title__istartswith": "B"}, ["beta"]),
        ({"title__endswith": "ta"}, ["beta"]),
        ({"title__iendswith": "TA"}, ["beta"]),
        ({"pages__gt": 10}, ["Gamma", "beta"]),
        ({"pages__gte": 20}, ["Gamma", "beta"]),
        ({"pages__lt": 20}, ["Alpha"]),
        ({"pages__lte": 20}, ["Alpha", "beta"]),
        ({"pages__in": [10, 30, 99]}, ["Alpha", "Gamma"]),
        ({"pages__in": []}, []),
        ({"pages__range": (15, 30)}, ["Gamma", "beta"]),
        ({"in_print": False}, ["beta"]),
        ({"author__name": "Bob"}, ["Gamma"]),
        ({"author__name__startswith": "A"}, ["Alpha", "beta"]),
        ({"author__email__isnull": True}, ["Gamma"]),
        ({"author__email__isnull": False}, ["Alpha", "beta"]),
        ({"title__in": Book.objects.none()}, []),
    ],
)
def test_lookups(library, lookup, expected):
    assert titles(Book.objects.filter(**lookup)) == expected


def test_like_wildcards_are_literal(library):
    assert [a.name for a in Author.objects.filter(name__contains="%")] == ["Cid_100%"]
    assert [a.name for a in Author.objects.filter(name__contains="_")] == ["Cid_100%"]
    assert Author.objects.filter(name__startswith="C_").count() == 0


def test_fk_lookups_by_instance_and_id(library):
    ann = library["ann"]
    assert titles(Book.objects.filter(author=ann)) == ["Alpha", "beta"]
    assert titles(Book.objects.filter(author_id=ann.pk)) == ["Alpha", "beta"]
    assert titles(Book.objects.filter(author__id=ann.pk)) == ["Alpha", "beta"]
    assert titles(Book.objects.filter(author__pk__in=[ann])) == ["Alpha", "beta"]
    assert titles(Book.objects.filter(author__in=[library["bob"]])) == ["Gamma"]


def test_reverse_relation_lookups(library):
    assert [a.name for a in Author.objects.filter(books__title="Gamma")] == ["Bob"]
    assert [a.name for a in Author.objects.filter(books__pages__gte=10)] == [
        "Ann",
        "Bob",
    ]
    assert [a.name for a in Author.objects.exclude(books__in_print=False)] == [
        "Bob",
        "Cid_100%",
    ]
    assert [a.name for a in Author.objects.filter(books__isnull=True)] == []


def test_q_objects(library):
    qs = Book.objects.filter(Q(title="Alpha") | Q(pages=30))
    assert titles(qs) == ["Alpha", "Gamma"]
    assert titles(Book.objects.filter(~Q(title="Alpha"))) == ["Gamma", "beta"]
    assert titles(Book.objects.filter(Q(author__name="Ann") & ~Q(in_print=True))) == [
        "beta"
    ]
    assert titles(Book.objects.exclude(title="Alpha", pages=20)) == [
        "Alpha",
        "Gamma",
        "beta",
    ]
    with pytest.raises(TypeError, match="Q\\(\\) takes Q objects"):
        Q("title")


def test_ordering_and_slicing(library):
    assert [a.name for a in Author.objects.all()] == ["Ann", "Bob", "Cid_100%"]
    assert [b.title for b in Book.objects.order_by("-pages")] == [
        "Gamma",
        "beta",
        "Alpha",
    ]
    assert [b.title for b in Book.objects.order_by("author__name", "-pages")] == [
        "beta",
        "Alpha",
        "Gamma",
    ]
    qs = Book.objects.order_by("pages")
    assert [b.title for b in qs[1:]] == ["beta", "Gamma"]
    # The second run of a shape takes the cached SQL (an offset alone too).
    assert [b.title for b in qs[1:]] == ["beta", "Gamma"]
    assert [b.title for b in qs[:2]] == ["Alpha", "beta"]
    assert [b.title for b in qs[1:2]] == ["beta"]
    assert qs[2].title == "Gamma"
    with pytest.raises(IndexError, match="out of range"):
        qs[5]
    with pytest.raises(ValueError, match="Negative indexing"):
        qs[-1]
    with pytest.raises(TypeError, match="sliced"):
        qs[:1].filter(pages=1)
    assert qs[1:][:1][0].title == "beta"
    assert [b.title for b in qs.reverse()] == ["Gamma", "beta", "Alpha"]


def test_first_last_count_exists(library):
    assert Book.objects.order_by("pages").first().title == "Alpha"
    assert Book.objects.order_by("pages").last().title == "Gamma"
    assert Book.objects.first().pk == min(b.pk for b in library["books"])
    assert Book.objects.filter(pages=999).first() is None
    assert Book.objects.count() == 3
    assert Book.objects.filter(author__name="Ann").count() == 2
    assert Book.objects.order_by("pages")[1:].count() == 2
    assert Book.objects.filter(title="beta").exists()
    assert not Book.objects.filter(title="nope").exists()
    assert Book.objects.none().count() == 0
    assert list(Book.objects.none()) == []


def test_values_and_values_list(library):
    rows = list(Book.objects.order_by("pages").values("title", "author__name"))
    assert rows[0] == {"title": "Alpha", "author__name": "Ann"}
    full = Book.objects.order_by("pages").values()[0]
    assert set(full) == {"id", "title", "author_id", "pages", "in_print"}
    assert full["in_print"] is True
    assert list(Book.objects.order_by("pages").values_list("title", flat=True)) == [
        "Alpha",
        "beta",
        "Gamma",
    ]
    assert Book.objects.order_by("pages").values_list("title", "pages")[0] == (
        "Alpha",
        10,
    )
    with pytest.raises(TypeError, match="exactly one field"):
        Book.objects.values_list("title", "pages", flat=True)


def test_in_bulk(library):
    books = library["books"]
    found = Book.objects.in_bulk([books[0].pk, books[2].pk])
    assert {b.title for b in found.values()} == {"Alpha", "Gamma"}
    assert Book.objects.in_bulk([]) == {}
    by_title = Book.objects.in_bulk(["beta"], field_name="title")
    assert list(by_title) == ["beta"]


def test_get_errors(library):
    with pytest.raises(Book.DoesNotExist, match="Book matching query does not exist"):
        Book.objects.get(title="nope")
    with pytest.raises(Book.MultipleObjectsReturned, match="more than one Book"):
        Book.objects.get(author__name="Ann")
    assert Book.objects.filter(author__name="Ann").get(pages=20).title == "beta"


def test_get_or_create_and_update_or_create(db):
    author, created = Author.objects.get_or_create(
        name="Ann", defaults={"email": "a@x"}
    )
    assert created and author.email == "a@x"
    again, created = Author.objects.get_or_create(name="Ann", defaults={"email": "b@x"})
    assert not created and again.pk == author.pk
    updated, created = Author.objects.update_or_create(
        name="Ann", defaults={"email": "c@x"}
    )
    assert not created and Author.objects.get(pk=author.pk).email == "c@x"
    new, created = Author.objects.update_or_create(
        name="Zoe", defaults={"email": "z@x"}
    )
    assert created and new.email == "z@x"


def test_bulk_create(db):
    authors = Author.objects.bulk_create([Author(name=f"a{i}") for i in range(1200)])
    assert len({a.pk for a in authors}) == 1200
    assert all(a.pk is not None and not a._state.adding for a in authors)
    assert Author.objects.count() == 1200
    loaded = Author.objects.in_bulk([a.pk for a in authors[:5]])
    assert [loaded[a.pk].name for a in authors[:5]] == ["a0", "a1", "a2", "a3", "a4"]
    with pytest.raises(orm.ValidationError, match="Author.name: is 51 characters long"):
        Author.objects.bulk_create([Author(name="ok"), Author(name="x" * 51)])
    assert Author.objects.count() == 1200
    chosen = Author.objects.bulk_create([Author(id=5000, name="explicit")])
    assert chosen[0].pk == 5000


def test_update(library):
    assert Book.objects.filter(author__name="Ann").update(pages=99) == 2
    assert titles(Book.objects.filter(pages=99)) == ["Alpha", "beta"]
    assert Book.objects.filter(title="Gamma").update(author=library["ann"]) == 1
    assert Book.objects.get(title="Gamma").author_id == library["ann"].pk
    with pytest.raises(orm.ValidationError, match="Book.pages: expected an integer"):
        Book.objects.update(pages="many")
    with pytest.raises(orm.FieldError, match="Book has no field named 'nope'"):
        Book.objects.update(nope=1)
    with pytest.raises(orm.ValidationError, match="at most 100"):
        Book.objects.update(title="x" * 101)
    assert Book.objects.filter(pages=99).count() == 2


def test_queryset_delete(library):
    Chapter.objects.create(book=library["books"][0], number=1)
    count, per_model = Book.objects.filter(author__name="Ann").delete()
    assert count == 3
    assert per_model == {"ormtests.Book": 2, "ormtests.Chapter": 1}
    assert titles(Book.objects.all()) == ["Gamma"]
    assert Author.objects.filter(name__startswith="C").delete() == (
        1,
        {"ormtests.Author": 1},
    )


def test_m2m_lookups(db):
    cheese = Topping.objects.create(name="cheese")
    ham = Topping.objects.create(name="ham")
    plain = Pizza.objects.create(name="plain")
    hawaii = Pizza.objects.create(name="hawaii")
    plain.toppings.add(cheese)
    hawaii.toppings.add(cheese, ham)
    assert sorted(p.name for p in Pizza.objects.filter(toppings__name="ham")) == [
        "hawaii"
    ]
    assert sorted(p.name for p in Pizza.objects.filter(toppings=cheese)) == [
        "hawaii",
        "plain",
    ]
    assert sorted(p.name for p in Pizza.objects.exclude(toppings=ham)) == ["plain"]
    assert [t.name for t in Topping.objects.filter(pizza__name="plain")] == ["cheese"]
    person = Person.objects.create(name="P")
    group = Group.objects.create(name="G")
    Membership.objects.create(person=person, group=group, role="admin")
    assert [g.name for g in Group.objects.filter(members__name="P")] == ["G"]
    assert [p.name for p in Person.objects.filter(groups__name="G")] == ["P"]
    assert [m.role for m in Membership.objects.filter(group__members__name="P")] == [
        "admin"
    ]


def test_iteration_caches(library):
    qs = Book.objects.all()
    assert len(qs) == 3
    assert bool(qs)
    assert qs.count() == 3
    assert "<QuerySet [" in repr(qs)
    assert len(list(qs.iterator())) == 3


def test_using_unknown_alias(db):
    with pytest.raises(
        orm.ImproperlyConfigured, match="alias 'other' is not in DATABASES"
    ):
        list(Book.objects.using("other"))


def test_cached_query_shapes_take_new_values(library):
    for name, expected in (
        ("Ann", ["Alpha", "beta"]),
        ("Bob", ["Gamma"]),
        ("Cid_100%", []),
    ):
        qs = Book.objects.filter(author__name=name, pages__gte=0).exclude(title="zzz")
        assert titles(qs) == expected
    for pages, expected in (([10], ["Alpha"]), ([20, 30], ["Gamma", "beta"]), ([], [])):
        assert titles(Book.objects.filter(pages__in=pages)) == expected
    for title, expected in (("Gamma", ["Bob"]), ("Alpha", ["Ann"])):
        assert [a.name for a in Author.objects.filter(books__title=title)] == expected
    for needle, expected in (("a", ["Alpha", "Gamma", "beta"]), ("mm", ["Gamma"])):
        assert titles(Book.objects.filter(title__icontains=needle)) == expected
    assert [b.title for b in Book.objects.order_by("pages")[1:2]] == ["beta"]
    assert [b.title for b in Book.objects.order_by("pages")[2:3]] == ["Gamma"]


def test_values_order_by_fk_and_distinct(library):
    ann, bob = library["ann"], library["bob"]
    rows = list(Book.objects.order_by("author", "pages").values("author", "title"))
    assert rows[0] == {"author": ann.pk, "title": "Alpha"}
    assert rows[-1] == {"author": bob.pk, "title": "Gamma"}
    authors = Book.objects.order_by("author__name").values_list(
        "author__name", flat=True
    )
    assert list(authors.distinct()) == ["Ann", "Bob"]


def test_nested_q_across_relations(library):
    qs = Book.objects.filter(
        Q(author__name="Bob") | (Q(author__name="Ann") & Q(pages__gt=15))
    )
    assert titles(qs) == ["Gamma", "beta"]
    qs = Author.objects.filter(Q(books__title="Alpha") | Q(name__startswith="C"))
    assert [a.name for a in qs] == ["Ann", "Cid_100%"]


def test_threads_get_their_own_connection(db):
    import threading

    seen = {}

    def work():
        wrapper = orm.connections["default"]
        seen["wrapper"] = wrapper
        seen["count"] = Author.objects.count()
        orm.connections.close_all()

    Author.objects.create(name="a")
    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert seen["wrapper"] is not orm.connections["default"]
    assert seen["count"] == 1


def test_in_with_a_queryset_of_keys(library):
    keys = Book.objects.filter(title="Alpha", pages=10).values_list("author", flat=True)
    assert [a.name for a in Author.objects.filter(pk__in=keys)] == ["Ann"]


def test_in_lists_with_none_share_no_stale_sql(library):
    assert titles(Book.objects.filter(pages__in=[10, None])) == ["Alpha"]
    assert titles(Book.objects.filter(pages__in=[10, 20])) == ["Alpha", "beta"]
    assert titles(Book.objects.filter(pages__in=[None, 30])) == ["Gamma"]


def test_in_bulk_many_keys(db):
    authors = Author.objects.bulk_create([Author(name=f"a{i}") for i in range(1100)])
    found = Author.objects.in_bulk([a.pk for a in authors] + [10**9])
    assert len(found) == 1100
    assert found[authors[-1].pk].name == "a1099"
