import contextlib

import pytest

from framework import dispatch
from framework import orm
from framework import signals

from .models import Author
from .models import Book
from .models import Chapter
from .models import Group
from .models import Person
from .models import Pizza
from .models import Review
from .models import Topping


@pytest.fixture(autouse=True)
def _check_signal_arguments():
    """Every send must carry exactly the declared keyword names."""
    dispatch.set_debug(True)
    yield
    dispatch.set_debug(False)


class Recorder:
    def __init__(self):
        self.calls = []

    def __call__(self, signal, sender, **kwargs):
        self.calls.append((signal.name, sender, kwargs))


@contextlib.contextmanager
def recording(*sigs, sender=None):
    recorder = Recorder()
    with contextlib.ExitStack() as stack:
        for sig in sigs:
            stack.enter_context(sig.connected_to(recorder, sender=sender))
        yield recorder.calls


def test_init_signals(db):
    with recording(signals.pre_init, signals.post_init, sender=Author) as calls:
        author = Author(name="Ann")
    assert calls == [
        ("pre_init", Author, {"args": (), "kwargs": {"name": "Ann"}}),
        ("post_init", Author, {"instance": author}),
    ]
    author.save()
    with recording(signals.post_init, sender=Author) as calls:
        loaded = Author.objects.get(pk=author.pk)
        list(Author.objects.all())
    assert [c[2]["instance"] for c in calls][0] is loaded
    assert len(calls) == 2


def test_init_signals_filtered_by_sender(db):
    with recording(signals.post_init, sender=Book) as calls:
        Author(name="x")
    assert calls == []


def test_save_signals(db):
    with recording(signals.pre_save, signals.post_save, sender=Author) as calls:
        author = Author(name="Ann")
        author.save()
        author.name = "Anne"
        author.save(update_fields=["name"])
        Author(id=77, name="Raw").save(raw=True)
    assert calls[0] == (
        "pre_save",
        Author,
        {"instance": author, "raw": False, "using": "default", "update_fields": None},
    )
    assert calls[1][2]["created"] is True
    assert calls[2][2]["update_fields"] == frozenset({"name"})
    assert isinstance(calls[2][2]["update_fields"], frozenset)
    assert calls[3][2]["created"] is False
    assert calls[5][2]["raw"] is True and calls[5][2]["created"] is True


def test_post_save_sees_primary_key(db):
    seen = []

    def grab(sender, instance, created, **kwargs):
        seen.append(
            (instance.pk, created, Author.objects.filter(pk=instance.pk).exists())
        )

    with signals.post_save.connected_to(grab, sender=Author):
        Author.objects.create(name="Ann")
    assert seen[0][0] is not None and seen[0][1:] == (True, True)


def test_failed_validation_sends_no_post_save(db):
    with recording(signals.pre_save, signals.post_save, sender=Author) as calls:
        with pytest.raises(orm.ValidationError, match="at most 50"):
            Author(name="x" * 60).save()
    assert [c[0] for c in calls] == ["pre_save"]


def test_delete_signals_with_cascade(db):
    author = Author.objects.create(name="Ann")
    book = Book.objects.create(title="T", author=author)
    chapter = Chapter.objects.create(book=book, number=1)
    review = Review.objects.create(book=book, text="ok")
    expected = {(Author, author.pk), (Book, book.pk), (Chapter, chapter.pk)}
    events = []

    def before(sender, instance, origin, **kwargs):
        # Every pre_delete comes before any row goes.
        events.append(("pre", sender, instance.pk, origin, Chapter.objects.count()))

    def after(sender, instance, origin, **kwargs):
        events.append(("post", sender, instance.pk, origin, Chapter.objects.count()))

    with (
        signals.pre_delete.connected_to(before),
        signals.post_delete.connected_to(after),
    ):
        assert author.delete() == (
            3,
            {"ormtests.Author": 1, "ormtests.Book": 1, "ormtests.Chapter": 1},
        )
    pre = [e for e in events if e[0] == "pre"]
    post = [e for e in events if e[0] == "post"]
    assert [e[0] for e in events] == ["pre"] * 3 + ["post"] * 3
    assert all(e[4] == 1 for e in pre)
    assert all(e[4] == 0 for e in post)
    assert all(e[3] is author for e in events)
    # Each instance exactly once per signal, its primary key still set.
    assert sorted((e[1].__name__, e[2]) for e in pre) == sorted(
        (model.__name__, pk) for model, pk in expected
    )
    assert sorted((e[1].__name__, e[2]) for e in post) == sorted(
        (model.__name__, pk) for model, pk in expected
    )
    assert author.pk is None
    review.refresh_from_db()
    assert review.book_id is None


def test_queryset_delete_cascade_signals(db):
    ann = Author.objects.create(name="Ann")
    bob = Author.objects.create(name="Bob")
    books = [
        Book.objects.create(title=f"t{n}", author=a)
        for n, a in enumerate([ann, bob, bob])
    ]
    Author.objects.create(name="Cid")
    qs = Author.objects.filter(name__in=["Ann", "Bob"])
    events = []

    def record(signal, sender, instance, origin, using, **kwargs):
        assert origin is qs and using == "default"
        events.append((signal.name, sender, instance.pk, Book.objects.count()))

    with (
        signals.pre_delete.connected_to(record),
        signals.post_delete.connected_to(record),
    ):
        assert qs.delete()[0] == 5
    assert [e[0] for e in events] == ["pre_delete"] * 5 + ["post_delete"] * 5
    assert all(e[3] == 3 for e in events[:5]) and all(e[3] == 0 for e in events[5:])
    assert {(e[1], e[2]) for e in events} == {(Author, ann.pk), (Author, bob.pk)} | {
        (Book, b.pk) for b in books
    }
    assert list(Author.objects.values_list("name", flat=True)) == ["Cid"]


def test_automatic_through_rows_go_silently(db):
    # As in Django: deleting a pizza deletes its links without delete signals.
    pizza = Pizza.objects.create(name="p")
    pizza.toppings.add(Topping.objects.create(name="ham"))
    with recording(signals.pre_delete, signals.post_delete) as calls:
        pizza.delete()
    assert [(c[0], c[1]) for c in calls] == [
        ("pre_delete", Pizza),
        ("post_delete", Pizza),
    ]
    assert Pizza.toppings.through.objects.count() == 0


def test_queryset_delete_origin(db):
    Author.objects.create(name="A")
    Author.objects.create(name="B")
    qs = Author.objects.filter(name__in=["A", "B"])
    with recording(signals.pre_delete, signals.post_delete, sender=Author) as calls:
        assert qs.delete()[0] == 2
    assert [c[0] for c in calls] == [
        "pre_delete",
        "pre_delete",
        "post_delete",
        "post_delete",
    ]
    assert all(c[2]["origin"] is qs and c[2]["using"] == "default" for c in calls)


def test_m2m_changed_forward_and_reverse(db):
    cheese = Topping.objects.create(name="cheese")
    ham = Topping.objects.create(name="ham")
    pizza = Pizza.objects.create(name="p")
    through = Pizza.toppings.through
    with recording(signals.m2m_changed, sender=through) as calls:
        pizza.toppings.add(cheese)
        pizza.toppings.add(cheese, ham)
        ham.pizza_set.remove(pizza)
        pizza.toppings.clear()
    actions = [(c[2]["action"], c[2]["pk_set"], c[2]["reverse"]) for c in calls]
    assert actions == [
        ("pre_add", {cheese.pk}, False),
        ("post_add", {cheese.pk}, False),
        ("pre_add", {ham.pk}, False),
        ("post_add", {ham.pk}, False),
        ("pre_remove", {pizza.pk}, True),
        ("post_remove", {pizza.pk}, True),
        ("pre_clear", None, False),
        ("post_clear", {cheese.pk}, False),
    ]
    assert calls[0][2]["model"] is Topping and calls[0][2]["instance"] is pizza
    assert calls[4][2]["model"] is Pizza and calls[4][2]["instance"] is ham
    assert all(c[1] is through and c[2]["using"] == "default" for c in calls)


def test_m2m_changed_custom_through_reverse(db):
    person = Person.objects.create(name="P")
    group = Group.objects.create(name="G")
    with recording(signals.m2m_changed, sender=Group.members.through) as calls:
        person.groups.add(group, through_defaults={"role": "admin"})
    assert [(c[2]["action"], c[2]["reverse"], c[2]["pk_set"]) for c in calls] == [
        ("pre_add", True, {group.pk}),
        ("post_add", True, {group.pk}),
    ]


def test_post_bulk_create(db):
    with recording(signals.post_bulk_create, sender=Author) as calls:
        authors = Author.objects.bulk_create([Author(name="a"), Author(name="b")])
    assert calls == [
        ("post_bulk_create", Author, {"instances": authors, "using": "default"})
    ]
    assert all(a.pk for a in calls[0][2]["instances"])


def test_post_update(db):
    a = Author.objects.create(name="a")
    b = Author.objects.create(name="b")
    Author.objects.create(name="c")
    with recording(signals.post_update, sender=Author) as calls:
        assert Author.objects.filter(name__in=["a", "b"]).update(email=None) == 2
        assert Author.objects.filter(name="zzz").update(email=None) == 0
    assert calls[0] == (
        "post_update",
        Author,
        {
            "pk_set": frozenset({a.pk, b.pk}),
            "values": {"email": None},
            "using": "default",
        },
    )
    assert calls[1][2]["pk_set"] == frozenset()


def test_on_commit_receivers(db):
    calls = []

    def after_commit(sender, instance, created, **kwargs):
        calls.append((instance.name, Author.objects.filter(pk=instance.pk).exists()))

    signals.post_save.connect(after_commit, sender=Author, on_commit=True)
    try:
        Author.objects.create(name="outside")
        assert calls == [("outside", True)]
        with orm.atomic():
            Author.objects.create(name="inside")
            assert calls == [("outside", True)]
        assert calls[-1] == ("inside", True)
        with pytest.raises(RuntimeError, match="boom"):
            with orm.atomic():
                Author.objects.create(name="rolled back")
                raise RuntimeError("boom")
        with orm.atomic():
            Author.objects.create(name="kept")
            with pytest.raises(RuntimeError, match="inner"):
                with orm.atomic():
                    Author.objects.create(name="savepoint")
                    raise RuntimeError("inner")
        assert [c[0] for c in calls] == ["outside", "inside", "kept"]
    finally:
        signals.post_save.disconnect(after_commit, sender=Author)


def test_on_commit_receiver_via_decorator(db):
    seen = []

    @dispatch.receiver(signals.post_delete, sender=Author, on_commit=True, weak=False)
    def gone(sender, instance, **kwargs):
        seen.append(instance.name)

    try:
        author = Author.objects.create(name="x")
        with orm.atomic():
            author.delete()
            assert seen == []
        assert seen == ["x"]
    finally:
        signals.post_delete.disconnect(gone, sender=Author)


def test_connection_created(backend):
    orm.connections.close_all()
    orm.connections.reset()
    with recording(signals.connection_created) as calls:
        conn = orm.connections["default"]
        conn.ensure_connection()
        conn.ensure_connection()
    assert len(calls) == 1
    name, sender, kwargs = calls[0]
    assert sender is orm.DatabaseWrapper
    wrapper = kwargs["connection"]
    assert wrapper is conn
    assert wrapper.alias == "default"
    assert wrapper.vendor in ("sqlite", "postgresql")
    cursor = wrapper.cursor()
    cursor.execute("SELECT 1")
    assert cursor.fetchone()[0] == 1
    assert wrapper.connection is not None
    orm.connections.close_all()


def test_no_listeners_no_pk_collection(db):
    assert not signals.post_update.has_listeners(Author)
    Author.objects.create(name="a")
    assert Author.objects.update(name="b") == 1


def test_delete_signals_without_dependants(db):
    from .models import Tagged

    tag = Tagged.objects.create(label="t")
    pk = tag.pk
    with recording(signals.pre_delete, signals.post_delete, sender=Tagged) as calls:
        assert tag.delete() == (1, {"ormtests.Tagged": 1})
    assert [c[0] for c in calls] == ["pre_delete", "post_delete"]
    assert all(
        c[2] == {"instance": tag, "using": "default", "origin": tag} for c in calls
    )
    assert tag.pk is None and not Tagged.objects.filter(pk=pk).exists()


def test_m2m_changed_every_action_from_both_sides(db):
    cheese, ham, olive = (Topping.objects.create(name=n) for n in ("c", "h", "o"))
    margherita = Pizza.objects.create(name="m")
    hawaii = Pizza.objects.create(name="h")
    through = Pizza.toppings.through

    def seen(calls):
        return [
            (c[2]["action"], c[2]["instance"], c[2]["reverse"], c[2]["model"])
            + (c[2]["pk_set"],)
            for c in calls
        ]

    with recording(signals.m2m_changed, sender=through) as calls:
        margherita.toppings.add()  # nothing to add: no query, no signal
        margherita.toppings.add(cheese.pk, ham)  # keys and instances alike
        olive.pizza_set.add(margherita, hawaii)  # reverse side
        ham.pizza_set.add(margherita, hawaii)  # margherita already linked
        margherita.toppings.remove(olive, cheese, Topping(id=999))
        hawaii.toppings.set([ham, cheese])  # removes olive, adds cheese
        ham.pizza_set.clear()
    assert seen(calls) == [
        ("pre_add", margherita, False, Topping, {cheese.pk, ham.pk}),
        ("post_add", margherita, False, Topping, {cheese.pk, ham.pk}),
        ("pre_add", olive, True, Pizza, {margherita.pk, hawaii.pk}),
        ("post_add", olive, True, Pizza, {margherita.pk, hawaii.pk}),
        ("pre_add", ham, True, Pizza, {hawaii.pk}),
        ("post_add", ham, True, Pizza, {hawaii.pk}),
        ("pre_remove", margherita, False, Topping, {olive.pk, cheese.pk}),
        ("post_remove", margherita, False, Topping, {olive.pk, cheese.pk}),
        ("pre_remove", hawaii, False, Topping, {olive.pk}),
        ("post_remove", hawaii, False, Topping, {olive.pk}),
        ("pre_add", hawaii, False, Topping, {cheese.pk}),
        ("post_add", hawaii, False, Topping, {cheese.pk}),
        ("pre_clear", ham, True, Pizza, None),
        ("post_clear", ham, True, Pizza, {margherita.pk, hawaii.pk}),
    ]
    assert all(c[1] is through and c[2]["using"] == "default" for c in calls)
    assert [t.name for t in hawaii.toppings.all()] == ["c"]
    assert list(margherita.toppings.all()) == []


def test_m2m_pre_signals_see_the_links_before_the_change(db):
    ham = Topping.objects.create(name="ham")
    pizza = Pizza.objects.create(name="p")
    states = []

    def look(sender, action, **kwargs):
        states.append((action, pizza.toppings.count()))

    with signals.m2m_changed.connected_to(look, sender=Pizza.toppings.through):
        pizza.toppings.add(ham)
        pizza.toppings.clear()
    assert states == [
        ("pre_add", 0),
        ("post_add", 1),
        ("pre_clear", 1),
        ("post_clear", 0),
    ]


def test_batch_signals_cost_nothing_without_receivers(sql_log):
    Author.objects.bulk_create([Author(name="a"), Author(name="b")])
    del sql_log[:]
    assert Author.objects.filter(name="a").update(email="a@x") == 1
    # Without a post_update receiver: the UPDATE alone, no key collection.
    assert [sql.split()[0] for sql, _ in sql_log] == ["UPDATE"]
    del sql_log[:]
    with recording(signals.post_update, sender=Author) as calls:
        assert Author.objects.filter(name="b").update(email="b@x") == 1
    assert len(calls) == 1 and len(calls[0][2]["pk_set"]) == 1
    assert len(sql_log) > 1 or "RETURNING" in sql_log[0][0]
    del sql_log[:]
    Author.objects.bulk_create([Author(name="c")])
    bulk_statements = len(sql_log)
    del sql_log[:]
    with recording(signals.post_bulk_create, sender=Author) as calls:
        Author.objects.bulk_create([Author(name="d")])
    # The batch signal adds no statement: it carries what bulk_create made.
    assert len(sql_log) == bulk_statements
    assert [i.name for i in calls[0][2]["instances"]] == ["d"]


def test_connection_created_once_per_physical_connection(backend):
    import threading

    orm.connections.close_all()
    orm.connections.reset()
    with recording(signals.connection_created) as calls:
        wrapper = orm.connections["default"]
        wrapper.ensure_connection()
        first = wrapper.connection
        wrapper.close()  # back to the pool: the same physical connection
        Author.objects.count()
        assert wrapper.connection is first
        assert len(calls) == 1
        wrapper.close_physically()
        Author.objects.count()
        assert wrapper.connection is not first
        assert len(calls) == 2 and calls[1][2]["connection"] is wrapper
        held = []

        def other_thread():
            conn = orm.connections["default"]
            Author.objects.count()
            held.append((conn, conn.connection))
            conn.close()

        thread = threading.Thread(target=other_thread)
        thread.start()
        thread.join(10)
        # Another thread, another wrapper; the pool lends it a second connection.
        assert held[0][0] is not wrapper and held[0][1] is not wrapper.connection
        assert len(calls) == 3 and calls[2][2]["connection"] is held[0][0]
    assert {c[1] for c in calls} == {orm.DatabaseWrapper}
    orm.connections.close_all()


def test_on_commit_receivers_wait_for_the_outermost_commit(db):
    calls = []

    def after_commit(sender, instance, **kwargs):
        calls.append(instance.name)

    signals.post_save.connect(after_commit, sender=Author, on_commit=True)
    try:
        with orm.atomic():
            with orm.atomic():
                Author.objects.create(name="inner")
            # The savepoint was released, the transaction is still open.
            assert calls == []
            with orm.atomic():
                with orm.atomic():
                    Author.objects.create(name="deep")
            assert calls == []
        assert calls == ["inner", "deep"]
        del calls[:]
        with orm.atomic():
            Author.objects.create(name="doomed")
            with pytest.raises(ValueError, match="x"):
                with orm.atomic(savepoint=False):
                    raise ValueError("x")
            # Marked for rollback: the outer block rolls back, not commits.
            Author.objects.create(name="after the mark")
        assert calls == []
        assert Author.objects.count() == 2
    finally:
        signals.post_save.disconnect(after_commit, sender=Author)


def test_update_or_create_saves_only_the_defaults(db):
    from .models import Everything

    obj = Everything.objects.create(code="a", small=1)
    with recording(signals.pre_save, signals.post_save, sender=Everything) as calls:
        same, created = Everything.objects.update_or_create(
            code="a", defaults={"small": 2}
        )
        new, created_new = Everything.objects.update_or_create(
            code="b", defaults={"small": 3}
        )
    assert same.pk == obj.pk and not created and created_new
    # auto_now fields are saved too, as in Django.
    assert calls[0][2]["update_fields"] == frozenset({"small", "updated", "created"})
    assert calls[1][2]["created"] is False
    assert calls[2][2]["update_fields"] is None and calls[3][2]["created"] is True
    loaded = Everything.objects.get(pk=obj.pk)
    assert loaded.small == 2 and loaded.created == obj.created
    assert loaded.updated > obj.updated


def test_batch_operations_send_only_their_batch_signal(db):
    sigs = (
        signals.pre_save,
        signals.post_save,
        signals.post_bulk_create,
        signals.post_update,
    )
    with recording(*sigs, sender=Author) as calls:
        Author.objects.bulk_create([Author(name="a"), Author(name="b")])
        Author.objects.update(name="c")
    assert [c[0] for c in calls] == ["post_bulk_create", "post_update"]
