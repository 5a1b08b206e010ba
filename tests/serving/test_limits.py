"""Limits and defaults that hold under abuse (issue #11, section 5).

app_example under a real gunicorn, on SQLite and PostgreSQL: notes and
request bodies have a maximum, list endpoints page with a maximum page size,
a deleted bookmark's id is never given to another one, and a new SQLite
database is private to its owner.
"""

from __future__ import annotations

import json
import os
import pathlib

import pytest
from bookmarks_server import BACKENDS
from bookmarks_server import Launcher

from app_example.models import MAX_NOTES
from app_example.views import MAX_PAGE_SIZE

pytestmark = pytest.mark.server


@pytest.fixture(scope="module", params=BACKENDS)
def app(request, tmp_path_factory):
    directory = tmp_path_factory.mktemp("limits")
    launcher = Launcher(request.param, directory)
    try:
        yield launcher.start(["--workers", "2"])
    finally:
        launcher.close()


def _post(app, **fields):
    payload = {"url": "https://example.com/", "title": "limits", **fields}
    return app.call("POST", "/api/bookmarks", payload)


def test_notes_and_bodies_have_a_maximum(app):
    status, body = _post(app, notes="n" * (MAX_NOTES + 1))
    assert status == 400 and "'notes'" in body["error"]
    status, body = _post(app, notes="\u00e9" * MAX_NOTES)
    assert status == 201, body
    huge = json.dumps({"url": "https://x/", "title": "t", "notes": "n" * 200_000})
    status, _, _ = app.server.request(
        "POST",
        "/api/bookmarks",
        huge.encode(),
        {"Content-Type": "application/json", "Accept": "application/json"},
    )
    assert status == 413
    chunked = (
        b"POST /api/bookmarks HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
        b"Connection: close\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(huge), huge.encode())
    )
    assert app.raw(chunked).startswith(b"HTTP/1.1 413 ")
    (count,) = app.db.rows(
        "SELECT count(*) FROM app_example_bookmark WHERE length(notes) > %s",
        [MAX_NOTES],
    )[0]
    assert count == 0


def _walk(app, path):
    items, pages = [], 0
    while path:
        status, body = app.call("GET", path)
        assert status == 200, body
        key = "bookmarks" if "bookmarks" in body else "tags"
        items.extend(body[key])
        path, pages = body["next"], pages + 1
        assert pages < 100
    return items, pages


def test_lists_page_with_a_maximum_page_size(app):
    for index in range(25):
        assert _post(app, tags=[f"page-{index}"])[0] == 201
    (total,) = app.db.rows("SELECT count(*) FROM app_example_bookmark")[0]
    items, pages = _walk(app, "/api/bookmarks?limit=7")
    ids = [item["id"] for item in items]
    assert len(ids) == len(set(ids)) == total
    assert ids == sorted(ids, reverse=True)
    assert pages == -(-total // 7)
    status, body = app.call("GET", "/api/bookmarks?limit=100000")
    assert len(body["bookmarks"]) == min(total, MAX_PAGE_SIZE)
    tags, pages = _walk(app, "/api/tags?limit=4")
    names = [tag["name"] for tag in tags]
    assert names == sorted(set(names))
    assert len(names) == app.db.rows("SELECT count(*) FROM app_example_tag")[0][0]
    for bad in ("limit=many", "before=x1", "before=%C2%B2", "before=-1"):
        status, body = app.call("GET", f"/api/bookmarks?{bad}")
        assert status == 400 and set(body) == {"error"}


def test_a_deleted_bookmark_id_is_never_reused(app):
    status, first = _post(app, title="first")
    old = first["id"]
    assert app.call("DELETE", f"/api/bookmarks/{old}")[0] == 204
    status, second = _post(app, title="second")
    assert second["id"] > old
    assert app.call("GET", f"/api/bookmarks/{old}")[0] == 404
    audit = app.db.rows(
        "SELECT action FROM app_example_auditentry"
        " WHERE model = 'bookmark' AND object_id = %s ORDER BY id",
        [old],
    )
    assert [action for (action,) in audit] == ["create", "delete"]


def test_a_new_sqlite_database_is_private(tmp_path):
    path = tmp_path / "var" / "lib" / "app" / "bookmarks.db"
    launcher = Launcher("sqlite", tmp_path)
    old_umask = os.umask(0o022)
    try:
        served = launcher.start(env={"DATABASE_URL": f"sqlite:///{path}"})
        assert _post(served)[0] == 201
        modes = {
            file.name: file.stat().st_mode & 0o777
            for file in path.parent.glob(path.name + "*")
        }
    finally:
        os.umask(old_umask)
        launcher.close()
    assert modes == {name: 0o600 for name in modes} and path.name in modes
    for directory in (path.parent, path.parent.parent, path.parent.parent.parent):
        assert pathlib.Path(directory).stat().st_mode & 0o777 == 0o700
