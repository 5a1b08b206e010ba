"""Two databases at once: ``using=`` reaches every query, save and signal."""

import pytest

from framework import orm
from framework import signals
from framework.conf import override_settings

from .conftest import orm_test_models
from .models import Author
from .models import Book
from .models import Pizza
from .models import Topping


@pytest.fixture
def two_databases(db, backend, tmp_path):
    databases = {"default": backend, "other": f"sqlite:///{tmp_path}/other.db"}
    with override_settings(DATABASES=databases):
        orm.create_tables(orm_test_models(), using="other")
        yield
        orm.connections.close_all()


def test_using_everywhere(two_databases):
    ann = Author.objects.using("other").create(name="Ann")
    assert ann._state.db == "other"
    assert Author.objects.count() == 0
    assert Author.objects.using("other").get(pk=ann.pk).name == "Ann"
    book = Book(title="t", author=ann)
    book.save(using="other")
    loaded = Book.objects.using("other").get(pk=book.pk)
    assert loaded.author.name == "Ann"
    assert [b.title for b in ann.books.all()] == ["t"]
    pizza = Pizza.objects.using("other").create(name="p")
    pizza.toppings.add(Topping.objects.using("other").create(name="ham"))
    assert [t.name for t in pizza.toppings.all()] == ["ham"]
    assert Pizza.toppings.through.objects.count() == 0
    ann.delete()
    assert Book.objects.using("other").count() == 0


def test_signals_and_transactions_per_alias(two_databases):
    seen = []

    def record(sender, instance, using, **kwargs):
        seen.append((instance.name, using))

    signals.post_save.connect(record, sender=Author, on_commit=True)
    try:
        with orm.atomic(using="other"):
            Author.objects.using("other").create(name="deferred")
            Author.objects.create(name="now")
            assert seen == [("now", "default")]
        assert seen == [("now", "default"), ("deferred", "other")]
        with pytest.raises(RuntimeError, match="undo"):
            with orm.atomic(using="other"):
                Author.objects.using("other").create(name="gone")
                raise RuntimeError("undo")
        assert Author.objects.using("other").filter(name="gone").count() == 0
        assert len(seen) == 2
    finally:
        signals.post_save.disconnect(record, sender=Author)
