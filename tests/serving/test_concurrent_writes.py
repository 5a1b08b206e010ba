"""Concurrent requests on the same rows never corrupt data (issue #11, section 1).

app_example under a real gunicorn with several workers, on SQLite and
PostgreSQL: rounds of simultaneous DELETEs of one bookmark answer exactly one
204 (404 to the others) and leave one audit entry; simultaneous tag PATCHes
of one bookmark leave one of the requested tag sets, never their union; and
afterwards every tag's count equals its link rows.
"""

from __future__ import annotations

import threading

import bookmarks_server
import pytest
from bookmarks_server import BACKENDS
from bookmarks_server import failed_http

pytestmark = pytest.mark.server

ROUNDS = 12
RACERS = 3
TAG_SETS = (["red", "green"], ["green", "blue"], ["violet"])


bookmarks = bookmarks_server.bookmarks


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


def _race(calls):
    """Run the calls at the same moment, one thread each; return their results.

    A call's exception (a timeout...) is raised here, not lost in its thread.
    """
    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)
    errors = []

    def run(index, call):
        try:
            barrier.wait(30)
            results[index] = call()
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=run, args=(index, call))
        for index, call in enumerate(calls)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads), "a request hung"
    if errors:
        raise errors[0]
    return results


def _delete_audits(app):
    """How many bookmark deletes the audit log holds."""
    ((count,),) = app.db.rows(
        "SELECT count(*) FROM app_example_auditentry"
        " WHERE action = 'delete' AND model = 'bookmark'"
    )
    return count


def test_concurrent_deletes_and_tag_patches_keep_the_data_right(bookmarks):
    app = bookmarks(["--workers", str(RACERS + 1)])
    deleted = []
    for round_number in range(ROUNDS):
        status, created = app.call(
            "POST",
            "/api/bookmarks",
            {
                "url": f"https://example.com/{round_number}",
                "title": f"round {round_number}",
                "tags": ["red", "python"],
            },
        )
        assert status == 201, created
        path = f"/api/bookmarks/{created['id']}"

        def patch(tags, path=path):
            return app.call("PATCH", path, {"tags": tags})

        def delete(path=path):
            return app.call("DELETE", path)

        patches = _race([lambda tags=tags: patch(tags) for tags in TAG_SETS])
        assert [status for status, _ in patches] == [200] * RACERS, patches
        status, final = app.call("GET", path)
        assert final["tags"] in [sorted(tags) for tags in TAG_SETS], (
            f"round {round_number}: {final['tags']} is none of the PATCHed sets"
        )
        statuses = sorted(status for status, _ in _race([delete] * RACERS))
        assert statuses == [204] + [404] * (RACERS - 1), f"round {round_number}"
        deleted.append(created["id"])
        assert _delete_audits(app) == len(deleted), f"round {round_number}"

    for name, count, links in app.db.tag_counts():
        assert count == links, f"tag {name!r}: count {count}, {links} link rows"
    assert not app.db.rows(
        "SELECT id FROM app_example_bookmark WHERE id IN"
        f" ({', '.join(str(pk) for pk in deleted)})"
    )
    assert failed_http(app.server.output) == []
