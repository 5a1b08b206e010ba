import pytest

from framework import orm

from .models import Author
from .models import Book
from .models import Chapter
from .models import Edition
from .models import Group
from .models import Loan
from .models import Membership
from .models import Node
from .models import Person
from .models import Pizza
from .models import Publisher
from .models import Review
from .models import Topping


def test_forward_fk_is_cached(db):
    author = Author.objects.create(name="Ann")
    book = Book.objects.create(title="T", author=author)
    loaded = Book.objects.get(pk=book.pk)
    assert loaded.author_id == author.pk
    first = loaded.author
    assert first == author
    assert loaded.author is first
    other = Author.objects.create(name="Bob")
    loaded.author_id = other.pk
    assert loaded.author == other


def test_unsaved_related_object(db):
    author = Author(name="Later")
    book = Book(title="T", author=author)
    with pytest.raises(ValueError, match="refers to an unsaved Author"):
        book.save()
    author.save()
    book.save()
    assert Book.objects.get(pk=book.pk).author_id == author.pk


def test_reverse_manager(db):
    author = Author.objects.create(name="Ann")
    book = author.books.create(title="One")
    assert book.author_id == author.pk
    other = Book.objects.create(title="Two", author=Author.objects.create(name="Bob"))
    author.books.add(other)
    assert sorted(b.title for b in author.books.all()) == ["One", "Two"]
    assert author.books.count() == 2
    assert author.books.filter(title="Two").get().pk == other.pk
    with pytest.raises(ValueError, match="needs Book.author to be null=True"):
        author.books.clear()
    with pytest.raises(TypeError, match="Direct assignment to the reverse side"):
        author.books = []
    with pytest.raises(ValueError, match="needs a primary key"):
        Author(name="unsaved").books  # noqa: B018


def test_nullable_reverse_manager(db):
    author = Author.objects.create(name="Ann")
    book = Book.objects.create(title="T", author=author)
    review = Review.objects.create(book=book)
    assert list(book.review_set.all()) == [review]
    book.review_set.remove(review)
    assert Review.objects.get(pk=review.pk).book_id is None
    book.review_set.set([review])
    assert Review.objects.get(pk=review.pk).book_id == book.pk
    book.review_set.clear()
    assert book.review_set.count() == 0


def test_self_referencing_tree(db):
    root = Node.objects.create(name="root")
    child = Node.objects.create(name="child", parent=root)
    Node.objects.create(name="leaf", parent=child)
    assert [n.name for n in root.children.all()] == ["child"]
    assert [n.name for n in Node.objects.filter(parent__parent__name="root")] == [
        "leaf"
    ]
    assert root.delete()[0] == 3
    assert Node.objects.count() == 0


def test_protect(db):
    publisher = Publisher.objects.create(name="P")
    edition = Edition.objects.create(publisher=publisher)
    with pytest.raises(
        orm.ProtectedError, match="protected foreign keys Edition.publisher"
    ) as info:
        publisher.delete()
    assert info.value.protected_objects == [edition]
    assert Publisher.objects.count() == 1
    with pytest.raises(orm.ProtectedError, match="Nothing was deleted"):
        Publisher.objects.all().delete()
    edition.delete()
    publisher.delete()
    assert Publisher.objects.count() == 0


def test_protect_blocks_whole_cascade(db):
    author = Author.objects.create(name="A")
    book = Book.objects.create(title="T", author=author)
    Chapter.objects.create(book=book, number=1)
    publisher = Publisher.objects.create(name="P")
    Edition.objects.create(publisher=publisher, book=book)
    # Edition.book cascades; nothing protects the book itself.
    author.delete()
    assert Edition.objects.count() == 0
    assert Publisher.objects.count() == 1


def test_restrict(db):
    author = Author.objects.create(name="A")
    book = Book.objects.create(title="T", author=author)
    loan = Loan.objects.create(book=book)
    with pytest.raises(
        orm.RestrictedError, match="restricted foreign keys Loan.book"
    ) as info:
        book.delete()
    assert info.value.restricted_objects == [loan]
    assert Book.objects.count() == 1
    # Deleting the author cascades to the loan through Loan.author too: allowed.
    loan.author = author
    loan.save()
    author.delete()
    assert Loan.objects.count() == 0 and Book.objects.count() == 0


def test_set_null(db):
    author = Author.objects.create(name="A")
    book = Book.objects.create(title="T", author=author)
    review = Review.objects.create(book=book)
    book.delete()
    review.refresh_from_db()
    assert review.book_id is None


def test_m2m_managers(db):
    cheese = Topping.objects.create(name="cheese")
    ham = Topping.objects.create(name="ham")
    olive = Topping.objects.create(name="olive")
    pizza = Pizza.objects.create(name="p")
    assert Pizza.toppings.through._meta.db_table == "ormtests_pizza_toppings"
    pizza.toppings.add(cheese, ham.pk)
    assert [t.name for t in pizza.toppings.all()] == ["cheese", "ham"]
    assert [p.name for p in cheese.pizza_set.all()] == ["p"]
    pizza.toppings.set([ham, olive])
    assert [t.name for t in pizza.toppings.all()] == ["ham", "olive"]
    pizza.toppings.remove(olive)
    assert [t.name for t in pizza.toppings.all()] == ["ham"]
    created = pizza.toppings.create(name="basil")
    assert [t.name for t in pizza.toppings.all()] == ["basil", "ham"]
    olive.pizza_set.add(pizza)
    assert pizza.toppings.count() == 3
    pizza.toppings.clear()
    assert pizza.toppings.count() == 0
    assert created.pizza_set.count() == 0
    with pytest.raises(TypeError, match="toppings expects Topping"):
        pizza.toppings.add(pizza)
    with pytest.raises(TypeError, match="Direct assignment to 'toppings'"):
        pizza.toppings = []
    with pytest.raises(TypeError, match="cannot set the many-to-many field"):
        Pizza(name="x", toppings=[cheese])


def test_m2m_rows_cascade(db):
    cheese = Topping.objects.create(name="cheese")
    pizza = Pizza.objects.create(name="p")
    pizza.toppings.add(cheese)
    cheese.delete()
    assert Pizza.toppings.through.objects.count() == 0
    assert Pizza.objects.count() == 1


def test_custom_through(db):
    person = Person.objects.create(name="P")
    group = Group.objects.create(name="G")
    assert Group.members.through is Membership
    group.members.add(person, through_defaults={"role": "owner"})
    assert Membership.objects.get().role == "owner"
    assert [g.name for g in person.groups.all()] == ["G"]
    group.members.remove(person)
    assert Membership.objects.count() == 0
    Membership.objects.create(person=person, group=group)
    assert [p.name for p in group.members.all()] == ["P"]
    person.delete()
    assert Membership.objects.count() == 0


def test_string_references_resolve_later():
    class Leaf(orm.Model):
        stem = orm.ForeignKey("Stem", on_delete=orm.CASCADE)

        class Meta:
            app_label = "ormdynamic"

    assert "ormdynamic.stem" in Leaf._meta.pending_relations
    with pytest.raises(
        orm.FieldError, match="refers to ormdynamic.stem, which is not defined"
    ):
        Leaf._meta.table  # noqa: B018

    class Stem(orm.Model):
        class Meta:
            app_label = "ormdynamic"

    try:
        assert Leaf._meta.get_field("stem").related_model is Stem
        assert not Leaf._meta.pending_relations
        assert Leaf._meta.table.c.stem_id.foreign_keys
    finally:
        orm.registry.unregister(Leaf)
        orm.registry.unregister(Stem)


def test_abstract_foreign_key_related_name_placeholders():
    class Stamped(orm.Model):
        owner = orm.ForeignKey(
            Author, on_delete=orm.CASCADE, related_name="%(app_label)s_%(class)s_set"
        )

        class Meta:
            abstract = True

    class Memo(Stamped):
        class Meta:
            app_label = "ormdynamic"

    class Letter(Stamped):
        class Meta:
            app_label = "ormdynamic"

    try:
        assert Author.ormdynamic_memo_set.rel.related_model is Memo
        assert Author.ormdynamic_letter_set.rel.related_model is Letter
    finally:
        for model in (Memo, Letter):
            orm.registry.unregister(model)
            Author._meta.related_objects = [
                rel
                for rel in Author._meta.related_objects
                if rel.related_model is not model
            ]
            Author._meta._reset_caches()
        del Author.ormdynamic_memo_set, Author.ormdynamic_letter_set


def test_update_fields_needs_a_primary_key(db):
    with pytest.raises(ValueError, match="update_fields before it has a primary key"):
        Author(name="x").save(update_fields=["name"])


def test_large_cascade_is_batched(db):
    author = Author.objects.create(name="prolific")
    books = Book.objects.bulk_create(
        [Book(title=f"b{i}", author=author) for i in range(1200)]
    )
    Chapter.objects.bulk_create([Chapter(book=b, number=1) for b in books])
    Review.objects.bulk_create([Review(book=b) for b in books[:700]])
    # A receiver forces instance collection (no single fast DELETE) for books.
    seen = []

    def count(sender, **kwargs):
        seen.append(sender)

    from framework import signals

    with signals.pre_delete.connected_to(count, sender=Book):
        assert Author.objects.filter(pk=author.pk).delete()[0] == 1 + 1200 + 1200
    assert len(seen) == 1200
    assert Review.objects.filter(book__isnull=True).count() == 700
