"""A committed write never answers 500 (issue #11, section 2).

app_example under gunicorn with one more ``on_commit=True`` receiver that
fails (a search service that is down), connected before the app's own search
indexer: the POST still answers 201 with the stored bookmark, exactly once
in the database, the app's indexer still runs, and the failure is one logged
error with its traceback, not a request exception.
"""

from __future__ import annotations

import textwrap

import bookmarks_server
import pytest
from bookmarks_server import BACKENDS

pytestmark = pytest.mark.server

bookmarks = bookmarks_server.bookmarks

FAILING_APP = """
    from app_example.models import Bookmark
    from app_example.wsgi import app
    from framework import signals


    def notify_search_service(sender, **kwargs):
        raise ConnectionError("search service down")


    signals.post_save.connect(
        notify_search_service, sender=Bookmark, on_commit=True, priority=10
    )
"""


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


def test_failing_after_commit_receiver_leaves_a_201_and_the_write(bookmarks, tmp_path):
    (tmp_path / "failing_app.py").write_text(textwrap.dedent(FAILING_APP))
    app = bookmarks(
        app="failing_app:app",
        pythonpath=[tmp_path],
        env={"FRAMEWORK_SEED_SAMPLE_DATA": "false"},
    )
    status, created = app.call(
        "POST",
        "/api/bookmarks",
        {"url": "https://example.com/once", "title": "Stored once", "tags": ["x"]},
    )
    assert status == 201, created
    assert created["title"] == "Stored once"
    rows = app.db.rows(
        "SELECT id FROM app_example_bookmark WHERE url = %s",
        ["https://example.com/once"],
    )
    assert rows == [(created["id"],)]
    # The app's own after-commit receiver ran after the failing one.
    assert app.db.rows(
        "SELECT count(*) FROM app_example_searchdocument WHERE bookmark_id = %s",
        [created["id"]],
    ) == [(1,)]
    status, found = app.call("GET", "/api/bookmarks?q=stored")
    assert [b["id"] for b in found["bookmarks"]] == [created["id"]]
    app.server.stop()
    output = app.server.output
    assert output.count("ConnectionError: search service down") == 1
    assert "Error calling failing_app.notify_search_service" in output
    assert "Internal Server Error" not in output
    assert '"unhandled_exception"' not in output
