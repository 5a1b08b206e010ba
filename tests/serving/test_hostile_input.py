"""Bad input is the client's error: 4xx, never 500 (issue #11, section 4).

Each case goes to app_example under a real gunicorn, on SQLite and on
PostgreSQL, through a wrapper module that adds one catch-all route
(``/files/<path:name>``, which echoes the name it got). Every answer is a 400
(or a 404 for an id no row can have), with a JSON ``{"error": ...}`` body on
the JSON API; nothing is stored; no request ends in ``got_request_exception``
(counted by app_example's ``/metrics`` over every worker) and nothing is
logged as an exception.
"""

from __future__ import annotations

import json
import textwrap
import urllib.parse

import pytest
from bookmarks_server import BACKENDS
from bookmarks_server import Launcher

pytestmark = pytest.mark.server

WRAPPER = """
    from app_example.wsgi import app


    @app.route("/files/<path:name>")
    def show_file(request, name):
        return {"name": name}
"""

GOOD = {"url": "https://example.com/", "title": "fine", "tags": ["ok"]}


@pytest.fixture(scope="module", params=BACKENDS)
def app(request, tmp_path_factory):
    """One server per backend for the whole module (each test adds its cases)."""
    directory = tmp_path_factory.mktemp("hostile")
    (directory / "hostile_app.py").write_text(textwrap.dedent(WRAPPER))
    launcher = Launcher(request.param, directory)
    try:
        served = launcher.start(
            ["--workers", "2"],
            env={"FRAMEWORK_METRICS_DIR": str(directory / "metrics")},
            app="hostile_app:app",
            pythonpath=[directory],
        )
        status, created = served.call("POST", "/api/bookmarks", GOOD)
        assert status == 201
        served.existing = created["id"]
        yield served
    finally:
        launcher.close()


def _json_error(status, body, expected_status, *words):
    assert status == expected_status, body
    assert isinstance(body, dict) and set(body) == {"error"}, body
    for word in words:
        assert word in body["error"], body


JSON_FIELDS = [
    ({**GOOD, "title": "a\x00b"}, "NUL"),
    ({**GOOD, "notes": "x\x00"}, "NUL"),
    ({**GOOD, "url": "https://example.com/\x00"}, "NUL"),
    ({**GOOD, "tags": ["\x00"]}, "NUL"),
    ({**GOOD, "collection": "in\x00box"}, "NUL"),
    ({**GOOD, "title": "\ud800"}, "surrogate"),
    ({**GOOD, "notes": "lone \udfff"}, "surrogate"),
    ({**GOOD, "tags": ["\udc80x"]}, "surrogate"),
    ({**GOOD, "tags": ["\u0130" * 40]}, "'tags'"),  # 80 characters lower-cased
]


def test_bad_json_fields_are_400(app):
    before = app.db.rows("SELECT count(*) FROM app_example_bookmark")
    path = f"/api/bookmarks/{app.existing}"
    for payload, word in JSON_FIELDS:
        _json_error(*app.call("POST", "/api/bookmarks", payload), 400, word)
        changes = {k: v for k, v in payload.items() if v != GOOD.get(k)}
        changes.pop("collection", None)  # not a field PATCH can change
        if changes:
            _json_error(*app.call("PATCH", path, changes), 400, word)
    assert app.db.rows("SELECT count(*) FROM app_example_bookmark") == before
    status, kept = app.call("GET", path)
    assert (status, kept["title"], kept["tags"]) == (200, "fine", ["ok"])
    _assert_no_request_exception(app)


@pytest.mark.parametrize(
    "query",
    ["tag=a%00b", "q=%00", "q=x%00y", "tag=" + "%C4%B0" * 40, "q=" + "x" * 201],
)
def test_bad_query_parameters_are_400(app, query):
    _json_error(*app.call("GET", f"/api/bookmarks?{query}"), 400)
    assert app.call("GET", f"/?{query}")[0] == 400
    _assert_no_request_exception(app)


@pytest.mark.parametrize("number", [2**31, 2**31 + 7, 2**63, 2**64, 10**30])
def test_ids_beyond_the_column_are_404(app, number):
    for method in ("GET", "PATCH", "DELETE"):
        payload = {"title": "x"} if method == "PATCH" else None
        _json_error(*app.call(method, f"/api/bookmarks/{number}", payload), 404)
    assert app.call("GET", f"/bookmarks/{number}")[0] == 404
    _assert_no_request_exception(app)


CHUNKED_HEAD = (
    b"POST /api/bookmarks HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
    b"Connection: close\r\n\r\n"
)
BODY = json.dumps(GOOD).encode()


@pytest.mark.parametrize(
    "request_bytes",
    [
        CHUNKED_HEAD + b"zz\r\n" + BODY + b"\r\n0\r\n\r\n",  # invalid chunk size
        CHUNKED_HEAD + b"%x\r\n" % len(BODY) + BODY[:10],  # cut off by the client
        CHUNKED_HEAD + b"%x\r\n" % len(BODY) + BODY + b"XX0\r\n\r\n",  # no CRLF
        (
            b"POST /api/bookmarks HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(BODY)
        )
        + BODY[:10],  # fewer bytes than announced
    ],
    ids=["invalid-size", "cut-off", "missing-terminator", "short-content-length"],
)
def test_broken_request_bodies_are_400(app, request_bytes):
    before = app.db.rows("SELECT count(*) FROM app_example_bookmark")
    answer = app.raw(request_bytes)
    assert answer.startswith(b"HTTP/1.1 400 "), answer
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"application/json" in head, answer
    assert set(json.loads(body)) == {"error"}
    assert app.db.rows("SELECT count(*) FROM app_example_bookmark") == before
    _assert_no_request_exception(app)


def test_paths_that_are_not_utf8_are_404(app):
    for raw in (b"/files/%FF", b"/files/%FE", b"/files/a%C3", b"/files/%ED%A0%80"):
        answer = app.raw(b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" % raw)
        assert answer.startswith(b"HTTP/1.1 404 "), (raw, answer)
    status, body = app.call("GET", "/files/caf%C3%A9/%E2%98%83")
    assert (status, body) == (200, {"name": "café/☃"})
    _assert_no_request_exception(app)


@pytest.mark.parametrize(
    "token", ["aa" * 63 + "  ", " 0" * 64, "zz" * 64, "\u00e9" * 128, "x"]
)
def test_malformed_csrf_tokens_are_403(app, token):
    body = urllib.parse.urlencode({"csrf_token": token, "username": "a"})
    status, _, _ = app.server.request(
        "POST",
        "/signin",
        body.encode(),
        {"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert status == 403
    _assert_no_request_exception(app)


def _assert_no_request_exception(app):
    status, text = app.call("GET", "/metrics")
    assert status == 200
    totals = [
        int(line.rsplit(" ", 1)[1])
        for line in text.decode().splitlines()
        if line.startswith('framework_signals_total{signal="got_request_exception"}')
    ]
    assert totals == [0], text  # framework.metrics: the sum over every worker
    output = app.server.output
    assert "Traceback" not in output and "Internal Server Error" not in output, output
