import pytest

from framework import orm
from framework.orm import transaction

from .models import Author


def names():
    return sorted(Author.objects.values_list("name", flat=True))


def test_atomic_commits(db):
    with orm.atomic():
        Author.objects.create(name="a")
        assert db.in_atomic_block
    assert not db.in_atomic_block
    assert names() == ["a"]


def test_failure_leaves_database_as_it_was(db):
    Author.objects.create(name="before")
    with pytest.raises(ZeroDivisionError, match="division"):
        with orm.atomic():
            Author.objects.create(name="a")
            Author.objects.filter(name="before").update(name="changed")
            Author.objects.filter(name="before").delete()
            1 / 0  # noqa: B018
    assert names() == ["before"]


def test_nested_savepoints(db):
    with orm.atomic():
        Author.objects.create(name="outer")
        with pytest.raises(ValueError, match="inner"):
            with orm.atomic():
                Author.objects.create(name="inner")
                raise ValueError("inner")
        with orm.atomic():
            Author.objects.create(name="second")
    assert names() == ["outer", "second"]


def test_integrity_error_inside_savepoint_recovers(db):
    Author.objects.create(name="a", email="dup@x")
    with orm.atomic():
        with pytest.raises(orm.IntegrityError, match="(?i)unique|duplicate"):
            with orm.atomic():
                Author.objects.create(name="b", email="dup@x")
        Author.objects.create(name="c")
    assert names() == ["a", "c"]


def test_atomic_decorator(db):
    @orm.atomic
    def plain():
        Author.objects.create(name="plain")
        raise KeyError("x")

    @transaction.atomic(using="default")
    def with_args(name):
        Author.objects.create(name=name)
        return name

    with pytest.raises(KeyError, match="x"):
        plain()
    assert with_args("ok") == "ok"
    assert plain.__name__ == "plain"
    assert names() == ["ok"]


def test_durable(db):
    with orm.atomic(durable=True):
        pass
    with orm.atomic():
        with pytest.raises(orm.TransactionManagementError, match="durable"):
            with orm.atomic(durable=True):
                pass


def test_on_commit(db):
    calls = []
    orm.on_commit(lambda: calls.append("now"))
    assert calls == ["now"]
    with orm.atomic():
        orm.on_commit(lambda: calls.append("later"))
        with pytest.raises(ValueError, match="x"):
            with orm.atomic():
                orm.on_commit(lambda: calls.append("dropped"))
                raise ValueError("x")
        with orm.atomic():
            orm.on_commit(lambda: calls.append("nested"))
        assert calls == ["now"]
    assert calls == ["now", "later", "nested"]
    with pytest.raises(ValueError, match="y"):
        with orm.atomic():
            orm.on_commit(lambda: calls.append("never"))
            raise ValueError("y")
    assert calls == ["now", "later", "nested"]


def test_robust_on_commit_logs(db, caplog):
    def broken():
        raise RuntimeError("callback failed")

    with orm.atomic():
        orm.on_commit(broken, robust=True)
    assert "callback failed" in caplog.text


def test_savepoint_false_marks_rollback(db):
    with orm.atomic():
        Author.objects.create(name="a")
        with pytest.raises(ValueError, match="z"):
            with orm.atomic(savepoint=False):
                raise ValueError("z")
    assert names() == []


def test_failing_after_commit_receiver_never_undoes_or_hides_the_commit(db, caplog):
    """Each on_commit receiver runs; a failure is logged; the block ends normally."""
    from framework import signals

    calls = []

    def broken(sender, *, instance, **kwargs):
        calls.append(("broken", instance.name))
        raise RuntimeError("search service down")

    def index(sender, *, instance, **kwargs):
        calls.append(("index", instance.name))

    signals.post_save.connect(broken, sender=Author, on_commit=True, priority=1)
    signals.post_save.connect(index, sender=Author, on_commit=True)
    try:
        with caplog.at_level("ERROR", logger="framework.dispatch"):
            with orm.atomic():
                Author.objects.create(name="a")
                orm.on_commit(lambda: calls.append(("callback", "a")))
    finally:
        signals.post_save.disconnect(broken, sender=Author)
        signals.post_save.disconnect(index, sender=Author)
    assert calls == [("broken", "a"), ("index", "a"), ("callback", "a")]
    assert names() == ["a"]
    (record,) = caplog.records
    assert "broken" in record.getMessage()
    assert str(record.exc_info[1]) == "search service down"
    assert not db.in_atomic_block


def test_not_robust_after_commit_receiver_raises_after_the_commit(db):
    from framework import signals

    def broken(sender, **kwargs):
        raise RuntimeError("wanted")

    signals.post_save.connect(broken, sender=Author, on_commit=True, robust=False)
    try:
        with pytest.raises(RuntimeError, match="wanted"):
            with orm.atomic():
                Author.objects.create(name="a")
    finally:
        signals.post_save.disconnect(broken, sender=Author)
    assert names() == ["a"]
