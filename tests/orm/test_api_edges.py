"""Less travelled corners of the public API, on both backends."""

import pytest

from framework import orm
from framework import signals
from framework.orm import Q

from .models import Author
from .models import Book
from .models import Everything


def test_filter_none_means_is_null(db):
    Author.objects.create(name="a")
    Author.objects.create(name="b", email="b@x")
    assert [a.name for a in Author.objects.filter(email=None)] == ["a"]
    assert [a.name for a in Author.objects.exclude(email=None)] == ["b"]
    with pytest.raises(ValueError, match="'email__gt' cannot compare with None"):
        Author.objects.filter(email__gt=None)
    with pytest.raises(ValueError, match="use __isnull=True"):
        Author.objects.filter(email__contains=None)


def test_q_repr_and_errors():
    assert repr(~Q(name="a") | Q(pk=1)) == (
        "<Q: (<Q: NOT (<Q: (('name', 'a'))>)> OR <Q: (('pk', 1))>)>"
    )
    with pytest.raises(TypeError, match="Cannot combine a Q with 3"):
        Q(name="a") | 3


def test_queryset_argument_errors(db):
    with pytest.raises(TypeError, match="order_by\\(\\) takes field names"):
        Author.objects.order_by(1)
    with pytest.raises(orm.FieldError, match="lookups cannot be used for ordering"):
        Author.objects.order_by("name__exact")
    with pytest.raises(ValueError, match="slice steps"):
        Author.objects.all()[::2]
    with pytest.raises(TypeError, match="indexed by ints or slices"):
        Author.objects.all()["x"]
    with pytest.raises(TypeError, match="needs at least one field"):
        Author.objects.update()
    with pytest.raises(TypeError, match="after values"):
        Author.objects.values("name").delete()
    with pytest.raises(ValueError, match="cannot change the primary key"):
        Author.objects.update(id=5)
    with pytest.raises(orm.ValidationError, match="Author.name: cannot be None"):
        Author.objects.update(name=None)
    with pytest.raises(orm.FieldError, match="multi-valued relation 'books'"):
        list(Author.objects.order_by("books__title"))


def test_cached_results_are_reused(db):
    Author.objects.create(name="a")
    qs = Author.objects.all()
    list(qs)
    Author.objects.create(name="b")
    assert qs.exists() and qs.count() == 1
    assert qs[0].name == "a" and [a.name for a in qs[0:1]] == ["a"]
    assert Author.objects.distinct().count() == 2
    assert Author.objects.exists()
    assert Author.objects.none().exists() is False
    assert Author.objects.all()[1:].all()[:5].count() == 1
    assert Author.objects.bulk_create([]) == []
    assert Author.objects.delete() == (2, {"ormtests.Author": 2})


def test_update_with_none_and_empty_queryset(db):
    Author.objects.create(name="a", email="a@x")
    assert Author.objects.update(email=None) == 1
    assert Author.objects.get().email is None
    assert Author.objects.none().update(name="x") == 0


def test_init_signals_for_loaded_rows(db):
    Author.objects.create(name="a")
    calls = []

    def record(sender, args, kwargs, **extra):
        calls.append((args, kwargs))

    with signals.pre_init.connected_to(record, sender=Author):
        loaded = Author.objects.get(name="a")
    assert calls == [((loaded.pk, "a", None), {})]


def test_custom_from_db_is_used(db):
    class Loud(orm.Model):
        name = orm.CharField(max_length=10)

        class Meta:
            app_label = "ormdynamic"

        @classmethod
        def from_db(cls, db, values):
            obj = super().from_db(db, values)
            obj.loaded_from = db
            return obj

    try:
        orm.create_tables([Loud])
        Loud.objects.create(name="x")
        assert Loud.objects.get(name="x").loaded_from == "default"
        assert list(Loud.objects.all())[0].loaded_from == "default"
    finally:
        orm.drop_tables([Loud])
        orm.registry.unregister(Loud)


def test_positional_init_and_errors(db):
    author = Author(None, "pos", "p@x")
    author.save()
    assert Author.objects.get(pk=author.pk).email == "p@x"
    with pytest.raises(IndexError, match="at most 3 positional"):
        Author(None, "a", "b", "c")


def test_full_clean(db):
    Everything(code="abc").full_clean()
    with pytest.raises(orm.ValidationError, match="Everything.code: .*at most") as info:
        Everything(code="abcdefg", small="x").clean_fields()
    assert set(info.value.message_dict) == {"Everything.code", "Everything.small"}
    Everything(code="abcdefg").clean_fields(exclude=["code"])


def test_get_or_create_with_lookup_kwargs(db):
    author, created = Author.objects.get_or_create(
        name__iexact="ann", defaults={"name": "Ann"}
    )
    assert created and author.name == "Ann"
    again, created = Author.objects.get_or_create(
        name__iexact="ANN", defaults={"name": "Other"}
    )
    assert not created and again.pk == author.pk


def test_related_manager_errors(db):
    author = Author.objects.create(name="a")
    other = Author.objects.create(name="b")
    book = Book.objects.create(title="t", author=other)
    with pytest.raises(TypeError, match="books.add\\(\\) expects Book"):
        author.books.add(author)
    assert author.books.count() == 0
    assert book.author == other


def test_exclude_keeps_null_rows(db):
    a = Author.objects.create(name="a", email="a@x")
    b = Author.objects.create(name="b")
    assert [x.name for x in Author.objects.exclude(email="a@x")] == ["b"]
    assert [x.name for x in Author.objects.filter(~Q(email__startswith="a"))] == ["b"]
    assert [x.name for x in Author.objects.filter(email="a@x")] == ["a"]
    Book.objects.create(title="ta", author=a)
    Book.objects.create(title="tb", author=b)
    assert [x.title for x in Book.objects.exclude(author__email="a@x")] == ["tb"]
    assert [x.title for x in Book.objects.exclude(author__email=None)] == ["ta"]
