"""select_related() and prefetch_related(): a fixed number of queries for a
list page, post_init for every instance built, on both databases."""

from __future__ import annotations

import pytest

from framework import orm
from framework import signals
from framework.testing import assert_num_queries

from .models import Author
from .models import Book
from .models import Chapter
from .models import Pizza
from .models import Topping
from .relation_models import Article
from .relation_models import City
from .relation_models import Comment
from .relation_models import Country
from .relation_models import Human
from .relation_models import Place
from .relation_models import Restaurant
from .relation_models import Tag
from .relation_models import Writer
from .test_signals import recording


@pytest.fixture
def page(db):
    """Ten articles by three writers, each with two or three tags and comments."""
    fr = Country.objects.create(code="FR", name="France")
    writers = [
        Writer.objects.create(name=f"w{i}", country=fr if i else None) for i in range(3)
    ]
    tags = [Tag.objects.create(name=f"t{i}") for i in range(4)]
    articles = []
    for i in range(10):
        article = Article.objects.create(
            title=f"a{i}", writer=writers[i % 3], editor=writers[0] if i % 2 else None
        )
        article.tags.add(*tags[i % 2 : i % 2 + 2 + (i % 3 == 0)])
        for n in range(i % 3):
            Comment.objects.create(article=article, text=f"c{i}.{n}")
        articles.append(article)
    return articles


def test_select_related_joins_forward_keys_in_one_query(page):
    with assert_num_queries(1):
        rows = list(Article.objects.select_related("writer", "editor"))
        seen = [(a.title, a.writer.name, a.editor and a.editor.name) for a in rows]
    assert seen == [(f"a{i}", f"w{i % 3}", "w0" if i % 2 else None) for i in range(10)]


def test_select_related_nested_and_nullable(page):
    with assert_num_queries(1):
        rows = list(Article.objects.select_related("writer__country"))
        countries = [a.writer.country and a.writer.country.code for a in rows]
    assert countries == [None if i % 3 == 0 else "FR" for i in range(10)]


def test_select_related_of_the_same_keys_from_other_parents(page):
    # writer__country and editor__country join the same models from two
    # parents: each plan is a statement of its own.
    germany = Country.objects.create(code="DE", name="Germany")
    editor = Writer.objects.create(name="ed", country=germany)
    Article.objects.filter(editor__isnull=False).update(editor=editor)
    list(Article.objects.select_related("writer", "editor", "writer__country"))
    with assert_num_queries(1):
        rows = list(Article.objects.select_related("writer", "editor__country"))
        countries = [a.editor and a.editor.country.code for a in rows]
    assert countries == [("DE" if i % 2 else None) for i in range(10)]


def test_select_related_without_names_follows_non_null_keys(db):
    ann = Author.objects.create(name="Ann")
    book = Book.objects.create(title="B", author=ann)
    Chapter.objects.create(book=book, number=1)
    with assert_num_queries(1):
        chapter = Chapter.objects.select_related().get(number=1)
        assert chapter.book.author.name == "Ann"
    with assert_num_queries(2):
        chapter = Chapter.objects.select_related("book").select_related(None).get()
        assert chapter.book.title == "B"


def test_select_related_combines_with_filters_ordering_and_slices(page):
    with assert_num_queries(1):
        rows = list(
            Article.objects.select_related("writer")
            .filter(writer__name="w1")
            .order_by("-title")[:2]
        )
        assert [(a.title, a.writer.name) for a in rows] == [("a7", "w1"), ("a4", "w1")]
    assert Article.objects.select_related("writer").count() == 10


def test_select_related_one_to_one_and_to_field(db):
    place = Place.objects.create(name="Corner")
    Restaurant.objects.create(place=place, name="Bistro")
    fr = Country.objects.create(code="FR", name="France")
    City.objects.create(country=fr, name="Paris")
    with assert_num_queries(2):
        restaurant = Restaurant.objects.select_related("place").get()
        assert restaurant.place.name == "Corner"
        assert restaurant.place.restaurant is restaurant
        city = City.objects.select_related("country").get()
        assert city.country.name == "France"


def test_select_related_refuses_what_is_not_a_forward_relation(db):
    with pytest.raises(orm.FieldError, match="'title' in select_related.*writer"):
        Article.objects.select_related("title")
    with pytest.raises(orm.FieldError, match="'comments' in select_related"):
        Article.objects.select_related("comments")
    with pytest.raises(orm.FieldError, match="'nope' in select_related"):
        Article.objects.select_related("writer__nope")


def test_post_init_for_every_instance_built(page):
    with recording(signals.post_init) as calls:
        rows = list(Article.objects.select_related("writer", "editor"))
    built = [(c[1], c[2]["instance"]) for c in calls]
    assert len([b for b in built if b[0] is Article]) == 10
    # One Writer per joined row, None rows excepted.
    assert len([b for b in built if b[0] is Writer]) == 10 + 5
    assert {id(a.writer) for a in rows} <= {id(b[1]) for b in built}
    with recording(signals.post_init) as calls:
        list(Article.objects.prefetch_related("tags", "comments"))
    senders = [c[1] for c in calls]
    assert senders.count(Article) == 10
    assert senders.count(Tag) == sum(2 + (i % 3 == 0) for i in range(10))
    assert senders.count(Comment) == sum(i % 3 for i in range(10))


def test_list_page_costs_a_fixed_number_of_queries(page):
    def render():
        qs = Article.objects.select_related("writer").prefetch_related(
            "tags", "comments"
        )
        return [
            (
                a.title,
                a.writer.name,
                [t.name for t in a.tags.all()],
                [c.text for c in a.comments.all()],
            )
            for a in qs
        ]

    with assert_num_queries(3):
        prefetched = render()
    expected = [
        (
            a.title,
            a.writer.name,
            [t.name for t in a.tags.all()],
            [c.text for c in a.comments.all()],
        )
        for a in Article.objects.all()
    ]
    assert prefetched == expected
    assert prefetched[0] == ("a0", "w0", ["t0", "t1", "t2"], [])
    assert prefetched[2][3] == ["c2.0", "c2.1"]
    # Twice the rows, the same number of queries.
    for i in range(10, 20):
        Article.objects.create(title=f"a{i}", writer=Writer.objects.first())
    with assert_num_queries(3):
        assert len(render()) == 20


def test_prefetch_reverse_many_to_many_and_nested(page):
    with assert_num_queries(3):
        tags = list(Tag.objects.prefetch_related("articles__comments"))
        titles = {t.name: [a.title for a in t.articles.all()] for t in tags}
        comments = sum(len(a.comments.all()) for t in tags for a in t.articles.all())
    assert titles["t0"] == ["a0", "a2", "a4", "a6", "a8"]
    assert titles["t3"] == ["a3", "a9"]
    assert titles == {
        t.name: [a.title for a in t.articles.all()] for t in Tag.objects.all()
    }
    assert comments == sum(
        Comment.objects.filter(article__tags=t).count() for t in Tag.objects.all()
    )


def test_prefetch_forward_key_and_reverse_key_back_reference(page):
    with assert_num_queries(2):
        comments = list(Comment.objects.prefetch_related("article"))
        assert [c.article.title for c in comments][:2] == ["a1", "a2"]
    with assert_num_queries(2):
        writers = list(Writer.objects.prefetch_related("articles__writer"))
        # The back reference is set: article.writer needs no query, and the
        # prefetch of "writer" finds it cached.
        assert all(a.writer is w for w in writers for a in w.articles.all())
        assert [len(w.articles.all()) for w in writers] == [4, 3, 3]
    with assert_num_queries(1):
        # Already joined by select_related: the prefetch reuses it.
        rows = list(Article.objects.select_related("writer").prefetch_related("writer"))
        assert rows[0].writer.name == "w0"


def test_prefetched_manager_filters_and_changes_go_to_the_database(page):
    article = Article.objects.prefetch_related("tags").get(title="a0")
    with assert_num_queries(0):
        assert [t.name for t in article.tags.all()] == ["t0", "t1", "t2"]
        assert article.tags.count() == 3
    with assert_num_queries(1):
        assert [t.name for t in article.tags.filter(name="t1")] == ["t1"]
    article.tags.remove(Tag.objects.get(name="t1"))
    with assert_num_queries(1):
        assert [t.name for t in article.tags.all()] == ["t0", "t2"]


def test_prefetch_existing_models_self_and_symmetrical(db):
    ham, olive = (
        Topping.objects.create(name="ham"),
        Topping.objects.create(name="olive"),
    )
    margherita = Pizza.objects.create(name="m")
    margherita.toppings.add(olive, ham)
    Pizza.objects.create(name="plain")
    with assert_num_queries(2):
        pizzas = list(Pizza.objects.order_by("name").prefetch_related("toppings"))
        assert [[t.name for t in p.toppings.all()] for p in pizzas] == [
            ["ham", "olive"],
            [],
        ]
    a, b, c = (Human.objects.create(name=n) for n in "abc")
    a.friends.add(b, c)
    a.follows.add(b)
    with assert_num_queries(3):
        humans = list(Human.objects.prefetch_related("friends", "followers"))
        assert [[f.name for f in h.friends.all()] for h in humans] == [
            ["b", "c"],
            ["a"],
            ["a"],
        ]
        assert [[f.name for f in h.followers.all()] for h in humans] == [[], ["a"], []]


def test_prefetch_related_objects_on_a_list(page):
    articles = list(Article.objects.all())
    with assert_num_queries(2):
        orm.prefetch_related_objects(articles, "tags", "writer")
    with assert_num_queries(0):
        assert articles[0].writer.name == "w0"
        assert len(articles[0].tags.all()) == 3


def test_prefetch_related_refuses_unknown_relations(db):
    with pytest.raises(orm.FieldError, match="'title' on Article.*Choices are:"):
        Article.objects.prefetch_related("title")
    with pytest.raises(orm.FieldError, match="'nope' on Comment"):
        Article.objects.prefetch_related("comments__nope")
    with pytest.raises(TypeError, match="relation names"):
        Article.objects.prefetch_related(3)
    assert (
        Article.objects.prefetch_related("tags").prefetch_related(None)._prefetch == ()
    )


def test_prefetch_reverse_one_to_one_also_through_a_proxy(db):
    from .relation_models import Chain

    corner = Place.objects.create(name="corner")
    Place.objects.create(name="empty")
    Restaurant.objects.create(place=corner, name="Bistro")
    with assert_num_queries(2):
        places = list(Chain.objects.prefetch_related("restaurant"))
    assert [type(p) for p in places] == [Chain, Chain]
    with assert_num_queries(0):
        assert places[1].restaurant.name == "Bistro"  # ordered by -name
        assert places[1].restaurant.place is places[1]
        with pytest.raises(Place.restaurant.RelatedObjectDoesNotExist):
            places[0].restaurant  # noqa: B018
