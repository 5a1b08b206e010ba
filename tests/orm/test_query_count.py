"""The test kit's query-count helpers (framework.testing), on both databases."""

from __future__ import annotations

import pytest

from framework import orm
from framework.testing import assert_num_queries
from framework.testing import capture_queries

from .models import Author
from .models import Book


def test_capture_records_every_statement_in_order(db):
    author = Author.objects.create(name="Ann")
    with capture_queries() as log:
        Book.objects.create(title="One", author=author)
        list(Book.objects.filter(author=author))
    assert len(log) == 2
    assert log.queries[0].lstrip().upper().startswith("INSERT")
    assert log.queries[1].lstrip().upper().startswith("SELECT")
    assert log.statements[0][1]  # the parameters are recorded too


def test_outer_transaction_control_is_not_counted_savepoints_are(db):
    with capture_queries() as log:
        with orm.atomic():
            Author.objects.create(name="Ann")
            with orm.atomic():
                Author.objects.create(name="Bob")
    sql = [statement.upper() for statement, _ in log.statements]
    assert sql[0].startswith("BEGIN") and sql[-1].startswith("COMMIT")
    assert [s.split()[0] for s in log.queries] == [
        "INSERT",
        "SAVEPOINT",
        "INSERT",
        "RELEASE",
    ]


def test_a_connection_opened_inside_the_block_is_recorded(db):
    orm.connections.close_all()
    with capture_queries() as log:
        Author.objects.count()
    assert len(log) == 1


def test_an_outer_capture_also_records_the_inner_blocks(db):
    with capture_queries() as outer:
        Author.objects.count()
        with capture_queries() as inner:
            Author.objects.count()
        Author.objects.count()
    assert len(inner) == 1
    assert len(outer) == 3


def test_assert_num_queries_passes_and_fails_with_the_listing(db):
    with assert_num_queries(1):
        Author.objects.count()
    with pytest.raises(AssertionError, match=r"2 queries ran on 'default', expected 1"):
        with assert_num_queries(1):
            Author.objects.count()
            Author.objects.exists()
    # Recording stops with the block: the cursor is the driver's again.
    assert type(orm.connections["default"]._cursor).__name__ != "_RecordingCursor"


def test_deleting_what_cannot_match_runs_no_statement(db):
    """filter(pk__in=[]).delete(): no BEGIN, no DELETE ... WHERE 1 != 1, no COMMIT."""
    from framework import signals

    author = Author.objects.create(name="kept")
    calls = []

    def record(sender, **kwargs):
        calls.append(sender)

    with signals.pre_delete.connected_to(record, sender=Author):
        with capture_queries() as log:
            assert Author.objects.filter(pk__in=[]).delete() == (0, {})
            assert Book.objects.filter(author__in=[]).delete() == (0, {})
            assert Author.objects.none().delete() == (0, {})
    assert log.statements == []
    assert calls == []
    assert Author.objects.get(pk=author.pk).name == "kept"
