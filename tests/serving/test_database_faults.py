"""A database that drops connections costs no request (issue #11, section 3).

app_example under gunicorn on a PostgreSQL database of the test's own; every
backend of that database (never another database's, never the server) is
terminated with ``pg_terminate_backend``:

- between requests: every worker's next request succeeds (each pooled
  connection is checked on checkout, outside a transaction, and replaced if
  it is dead);
- during requests: only a request whose transaction was cut may fail, every
  write that was acknowledged is stored exactly once, and the requests after
  the outage succeed.
"""

from __future__ import annotations

import threading
import time

import bookmarks_server
import pytest
from support import PG_ADMIN

pytestmark = [pytest.mark.server, pytest.mark.postgres]

bookmarks = bookmarks_server.bookmarks

WORKERS = 2
OUTAGES = 4
CHAOS_SECONDS = 2.0
"""The least time backends are terminated while writes run."""
CHAOS_EVENTS = 5
"""...and it goes on until this many terminations and acknowledged writes,"""
CHAOS_LIMIT = 60.0
"""...or this many seconds (a loaded machine writes slowly)."""


@pytest.fixture
def backend():
    return "postgres"


def terminate_backends(database: str, wait: bool = True) -> int:
    """End every session of ``database`` (this test's own); return how many.

    ``wait``: until those sessions are gone (``pg_terminate_backend`` only
    signals them), so that the outage is over before the next request.
    """
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        pids = [
            pid
            for (pid,) in admin.execute(
                "SELECT pid FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                [database],
            )
        ]
        for pid in pids:
            admin.execute("SELECT pg_terminate_backend(%s)", [pid])
        deadline = time.monotonic() + 10
        while wait and pids and time.monotonic() < deadline:
            (alive,) = admin.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", [pids]
            ).fetchone()
            if not alive:
                break
            time.sleep(0.01)
    return len(pids)


def _post(app, url):
    return app.call(
        "POST", "/api/bookmarks", {"url": url, "title": "fault test", "tags": ["f"]}
    )


def test_terminated_backends_between_requests_cost_no_request(bookmarks):
    app = bookmarks(["--workers", str(WORKERS)])
    for index in range(4 * WORKERS):
        assert app.call("GET", "/healthz")[0] == 200
        assert _post(app, f"https://warm.example/{index}")[0] == 201
    for outage in range(OUTAGES):
        assert terminate_backends(app.db.name) >= 1
        # Several requests, so that every worker meets its dead connections.
        for index in range(2 * WORKERS):
            status, body = app.call("GET", "/healthz")
            assert status == 200, (outage, app.server.output)
            status, body = _post(app, f"https://after.example/{outage}-{index}")
            assert status == 201, (outage, app.server.output)
            assert app.call("GET", f"/api/bookmarks/{body['id']}")[0] == 200
    assert "Internal Server Error" not in app.server.output


def test_terminated_backends_during_requests_lose_no_acknowledged_write(bookmarks):
    app = bookmarks(["--workers", str(WORKERS)])
    acknowledged = []
    statuses = []
    stop = threading.Event()

    def write(worker):
        index = 0
        while not stop.is_set():
            url = f"https://during.example/{worker}-{index}"
            index += 1
            try:
                status, _ = _post(app, url)
            except OSError:  # the worker answered nothing: not acknowledged
                status = None
            statuses.append(status)
            if status == 201:
                acknowledged.append(url)

    writers = [threading.Thread(target=write, args=(n,)) for n in range(WORKERS)]
    for thread in writers:
        thread.start()
    terminated = 0
    started = time.monotonic()
    while True:
        terminated += terminate_backends(app.db.name, wait=False)
        elapsed = time.monotonic() - started
        enough = min(terminated, len(acknowledged)) >= CHAOS_EVENTS
        if (enough and elapsed >= CHAOS_SECONDS) or elapsed >= CHAOS_LIMIT:
            break
        time.sleep(0.1)
    stop.set()
    for thread in writers:
        thread.join(60)
    assert min(terminated, len(acknowledged)) >= CHAOS_EVENTS, (terminated, statuses)
    stored = app.db.rows(
        "SELECT url, count(*) FROM app_example_bookmark"
        " WHERE url LIKE 'https://during.example/%%' GROUP BY url"
    )
    counts = dict(stored)
    assert all(counts.get(url) == 1 for url in acknowledged), [
        (url, counts.get(url)) for url in acknowledged if counts.get(url) != 1
    ]
    # After the outage, every request succeeds again.
    for index in range(4 * WORKERS):
        assert _post(app, f"https://after.example/{index}")[0] == 201
        assert app.call("GET", "/healthz")[0] == 200
