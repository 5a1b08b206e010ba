"""framework.wrappers: Request and Response are werkzeug's, with lean paths.

Every shortcut is checked against werkzeug's own result: the lazy request
attributes against ``werkzeug.wrappers.Request``, the lean ``Response``
construction and WSGI call against ``werkzeug.wrappers.Response``.
"""

from __future__ import annotations

import http
import io
import random
from urllib.parse import unquote

import pytest
from markupsafe import Markup
from werkzeug.datastructures import Headers
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request as WerkzeugRequest
from werkzeug.wrappers import Response as WerkzeugResponse

from framework import Request
from framework import Response

# Request: lazy URL parts ----------------------------------------------------------

ENVIRONS = [
    EnvironBuilder("/a/b", query_string="x=1&y=2").get_environ(),
    EnvironBuilder(
        "/caf%C3%A9//x", base_url="https://h.example:8443/root/"
    ).get_environ(),
    {"REQUEST_METHOD": "post", "wsgi.input": None},
    {"REQUEST_METHOD": "Patch", "wsgi.input": None},
    {"REQUEST_METHOD": "PROPFIND", "wsgi.input": None},
    {"REQUEST_METHOD": "DELETE", "wsgi.input": None},
    {
        "PATH_INFO": "//lead\xff",
        "SCRIPT_NAME": "/s/",
        "SERVER_NAME": "/tmp/sock",
        "SERVER_PORT": "",
        "QUERY_STRING": "a=%E2%82%AC",
        "wsgi.url_scheme": "https",
        "REMOTE_ADDR": "10.0.0.1",
        "HTTP_X_THING": "1",
    },
]
ATTRIBUTES = [
    "method",
    "scheme",
    "server",
    "root_path",
    "path",
    "query_string",
    "remote_addr",
    "full_path",
    "url",
    "host",
    "args",
]


@pytest.mark.parametrize("env", ENVIRONS)
def test_lazy_request_matches_werkzeug_request(env):
    ours = Request(dict(env))
    theirs = WerkzeugRequest(dict(env))
    for name in ATTRIBUTES:
        if name in ("url", "host") and "SERVER_NAME" not in env:
            continue
        assert getattr(ours, name) == getattr(theirs, name), name
    assert dict(ours.headers) == dict(theirs.headers)


# Response: lean construction ------------------------------------------------------


class WerkzeugHTMLResponse(WerkzeugResponse):
    """werkzeug's generic Response with framework's default mimetype."""

    default_mimetype = "text/html"


def state(response):
    """Everything werkzeug's __init__ sets, as comparable values."""
    body = response.response
    return {
        "headers": list(response.headers),
        "status": response.status,
        "status_code": response.status_code,
        "direct_passthrough": response.direct_passthrough,
        "on_close": response._on_close,
        "body": body if isinstance(body, list) else type(body),
        "headers_type": type(response.headers),
    }


def generator():
    yield b"a"
    yield "b\xe9"


CONSTRUCTIONS = [
    ((), {}),
    (("Hello, World!",), {}),
    (("h\xe9llo \u20ac",), {"mimetype": "text/plain"}),
    ((b"\x00\xff",), {"mimetype": "application/octet-stream"}),
    (("{}",), {"mimetype": "application/json"}),
    (("<a/>",), {"mimetype": "image/svg+xml"}),
    (("x",), {"status": 201}),
    (("x",), {"status": 299}),
    (("x",), {"status": 999}),
    (("x",), {"status": "418 I'M A TEAPOT"}),
    (("x",), {"status": "404"}),
    (("x",), {"status": http.HTTPStatus.ACCEPTED}),
    (("",), {"status": 204}),
    ((None,), {"status": 304}),
    (("x",), {"headers": {"X-A": "1"}}),
    (("x",), {"headers": [("Content-Type", "text/csv")]}),
    (("x",), {"content_type": "text/plain; charset=latin-1"}),
    (("x",), {"mimetype": "text/plain", "direct_passthrough": True}),
    ((Markup("<b>x</b>"),), {}),
    ((bytearray(b"ba"),), {}),
    (([b"one", b"two"],), {}),
    ((("tu", b"ple"),), {}),
    ((generator(),), {"mimetype": "text/plain"}),
    ((iter([]),), {}),
]


@pytest.mark.parametrize(("args", "kwargs"), CONSTRUCTIONS, ids=repr)
def test_construction_matches_werkzeug(args, kwargs):
    ours = Response(*args, **kwargs)
    theirs = WerkzeugHTMLResponse(*args, **kwargs)
    assert state(ours) == state(theirs)
    assert ours.mimetype == theirs.mimetype
    assert ours.content_length == theirs.content_length


def test_construction_refuses_what_werkzeug_refuses():
    with pytest.raises(ValueError, match="newline"):
        Response("x", mimetype="text/plain\r\nX-Evil: 1")
    with pytest.raises(ValueError, match="Empty status"):
        Response("x", status=" ")


def test_lean_response_keeps_the_werkzeug_api():
    response = Response("Hello", mimetype="text/plain")
    response.headers["X-Frame-Options"] = "DENY"
    response.set_cookie("session", "abc", httponly=True)
    response.status = 202
    assert response.status == "202 ACCEPTED"
    assert response.get_data() == b"Hello"
    response.set_data("changed")
    assert response.content_length == 7
    assert response.mimetype == "text/plain"
    assert response.headers.getlist("Set-Cookie") == ["session=abc; HttpOnly; Path=/"]
    response.mimetype = "application/json"
    assert response.headers["Content-Type"] == "application/json"
    assert Response('{"a": 1}', mimetype="application/json").json == {"a": 1}


# Response: lean WSGI call ----------------------------------------------------------


def call(wsgi_app, method="GET"):
    """Run a WSGI callable; return (status, headers, body, closed by caller)."""
    environ = EnvironBuilder("/here/x", method=method).get_environ()
    started = []
    result = wsgi_app(environ, lambda s, h, e=None: started.append((s, h)))
    body = b"".join(result)
    if hasattr(result, "close"):
        result.close()
    assert len(started) == 1
    return started[0][0], started[0][1], body


def werkzeug_call(response):
    return lambda environ, start: WerkzeugResponse.__call__(response, environ, start)


def with_headers(*pairs, **kwargs):
    def make():
        response = Response("body", **kwargs)
        for key, value in pairs:
            response.headers.add(key, value)
        return response

    return make


def with_cookie():
    response = Response("Hello, World!", mimetype="text/plain")
    response.headers["X-Frame-Options"] = "DENY"
    response.set_cookie("session", "abc", secure=True, httponly=True)
    response.set_cookie("theme", "dark", max_age=60)
    return response


def without_length():
    response = Response(["a", b"b"])
    response.headers.pop("Content-Length", None)
    return response


def bytes_list_without_length():
    response = Response([b"abc", b"de"], status=201)
    assert "Content-Length" not in response.headers
    return response


def no_automatic_length():
    response = Response([b"abc"])
    response.automatically_set_content_length = False
    return response


def absolute_location():
    response = Response("moved", status=301)
    response.autocorrect_location_header = True
    response.headers["Location"] = "/elsewhere"
    return response


def streamed(*chunks, **kwargs):
    return lambda: Response(iter(chunks), mimetype="text/plain", **kwargs)


RESPONSES = {
    "str": lambda: Response("Hello, World!"),
    "text/plain": lambda: Response("Hello", mimetype="text/plain"),
    "created": lambda: Response("made", status=201),
    "empty list": lambda: Response(),
    "headers given": lambda: Response("x", headers={"X-A": "1"}, status="203"),
    "cookies": with_cookie,
    "explicit length": with_headers(("Content-Length", "4")),
    "lowercase length": with_headers(("content-length", "4")),
    "plain location": with_headers(("Location", "/x"), status=302),
    "iri location": with_headers(("Location", "/caf\xe9 x?q=\xe9"), status=302),
    "host location": with_headers(("Location", "http://Ex\xe4mple.com/"), status=302),
    "lowercase location": with_headers(("location", "/x"), status=302),
    "two locations": with_headers(("Location", "/a"), ("Location", "/b"), status=302),
    "content-location": with_headers(("Content-Location", "/caf\xe9")),
    "odd header": with_headers(("X-Custom", "v"), ("x-other", "w")),
    "absolute location": absolute_location,
    "str chunks": without_length,
    "bytes list": bytes_list_without_length,
    "no automatic length": no_automatic_length,
    "tuple body": lambda: Response((b"a", "b")),
    "no content": lambda: Response("", status=204),
    "not modified": lambda: Response("x", status=304),
    "continue": lambda: Response("x", status=100),
    "no status code": lambda: Response("x", status="MYSTATUS"),
    "error": lambda: Response("nope", status=404),
    "streamed": streamed(b"one,", "tw\xe9,", b"three"),
    "streamed empty": streamed(),
    "passthrough": lambda: Response(
        io.BytesIO(b"file"), mimetype="text/plain", direct_passthrough=True
    ),
    "passthrough list": lambda: Response([b"x"], direct_passthrough=True),
}


@pytest.mark.parametrize("method", ["GET", "HEAD", "POST"])
@pytest.mark.parametrize("make", RESPONSES.values(), ids=RESPONSES.keys())
def test_wsgi_call_matches_werkzeug(make, method):
    assert call(make(), method) == call(werkzeug_call(make()), method)


def test_buffered_body_is_returned_as_a_list():
    response = Response("Hello")
    result = response(EnvironBuilder("/").get_environ(), lambda s, h, e=None: None)
    assert result == [b"Hello"]
    assert type(result) is list


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_streamed_body_is_closed_once_after_iteration(method):
    events = []

    def body():
        try:
            yield b"a"
            yield "b"
        finally:
            events.append("body closed")

    response = Response(body())
    response.call_on_close(lambda: events.append("on_close"))
    environ = EnvironBuilder("/", method=method).get_environ()
    result = response(environ, lambda s, h, e=None: None)
    chunks = list(result)
    assert events == (["body closed"] if method == "GET" else [])
    result.close()
    assert chunks == ([b"a", b"b"] if method == "GET" else [])
    expected = ["body closed", "on_close"] if method == "GET" else ["on_close"]
    assert events == expected


def test_call_on_close_runs_for_a_buffered_body():
    closed = []
    response = Response("x")
    response.call_on_close(lambda: closed.append(True))
    environ = EnvironBuilder("/").get_environ()
    result = response(environ, lambda s, h, e=None: None)
    assert b"".join(result) == b"x"
    result.close()
    assert closed == [True]


class CustomHeaders(Response):
    def get_wsgi_headers(self, environ):
        headers = super().get_wsgi_headers(environ)
        headers["X-Custom"] = "yes"
        return headers


class CustomData(Response):
    def set_data(self, value):
        super().set_data(value.upper() if isinstance(value, str) else value)


def test_subclasses_overriding_werkzeug_methods_keep_their_overrides():
    assert (CustomHeaders._lean_init, CustomHeaders._lean_call) == (True, False)
    assert (CustomData._lean_init, CustomData._lean_call) == (False, True)
    status, headers, body = call(CustomHeaders("x"))
    assert ("X-Custom", "yes") in headers
    assert CustomData("quiet").get_data() == b"QUIET"


def test_replaced_headers_object_takes_werkzeug_path():
    response = Response("x")
    response.headers = Headers([("X-Only", "1")])
    assert call(response) == call(werkzeug_call(response))


# Request: plain query strings and form bodies ----------------------------------------

QUERY_STRINGS = [
    "",
    "q=books&page=2",
    "a=1&a=2&b=",
    "flag&=empty&x==y&&",
    "a=%E2%82%AC&b=c+d",
    "caf\xc3\xa9=1",
    "bad=%ZZ&raw=%ff",
    "k=v;w=z",
    "a%2Bb=c%26d&e=%zz+%&%=&+=+",
    "email=ada%40example.com&sp=a+b%20c&pct=100%",
    "u=%C3%A9%E2%82%AC&broken=%C3",
]


@pytest.mark.parametrize("query", QUERY_STRINGS)
def test_args_match_werkzeug(query):
    env = {"QUERY_STRING": query, "REQUEST_METHOD": "GET"}
    ours = Request(dict(env)).args
    theirs = WerkzeugRequest(dict(env)).args
    assert type(ours) is type(theirs)
    assert list(ours.lists()) == list(theirs.lists())


FORM_BODIES = [
    b"name=Ada&email=ada%40example.com",
    b"name=Ada&tags=a&tags=b&empty=",
    b"a+b=c+d&e=%E2%82%AC",
    b"bad=%ZZ&half=%C3&x=%",
    b"%2B=%26&a%3Db=c",
    b"latin=\xe9",
    b"",
    b"x" * 70000,
]


def form_environ(body, **extra):
    env = EnvironBuilder(
        "/", method="POST", data=body, content_type=FORM_TYPE
    ).get_environ()
    env.update(extra)
    return env


FORM_TYPE = "application/x-www-form-urlencoded"


def form_state(request_class, env, before=None):
    """What a view sees of a form request, and the errors it meets."""
    request = request_class(env)
    seen = []
    for step in (before, "form", "files", "stream", "get_data"):
        try:
            if step is None:
                continue
            if step == "form":
                seen.append(list(request.form.lists()))
            elif step == "files":
                seen.append(list(request.files.lists()))
            elif step == "stream":
                seen.append(request.stream.read())
            elif step == "get_data":
                seen.append(request.get_data())
            elif step == "args":
                seen.append(list(request.args.lists()))
        except Exception as exc:  # the same failures, in the same step
            seen.append(type(exc))
    return seen


@pytest.mark.parametrize("body", FORM_BODIES, ids=lambda b: repr(b[:30]))
@pytest.mark.parametrize("before", [None, "stream", "get_data", "args"])
def test_form_matches_werkzeug(body, before):
    ours = form_state(Request, form_environ(body), before)
    theirs = form_state(WerkzeugRequest, form_environ(body), before)
    assert ours == theirs


@pytest.mark.parametrize(
    ("extra", "length"),
    [
        ({"CONTENT_TYPE": FORM_TYPE + "; charset=utf-8"}, None),
        ({"CONTENT_TYPE": "Application/X-WWW-Form-Urlencoded"}, None),
        ({"CONTENT_TYPE": "text/plain"}, None),
        ({"CONTENT_LENGTH": ""}, None),
        ({"CONTENT_LENGTH": "abc"}, None),
        ({"CONTENT_LENGTH": "٣"}, None),
        ({"wsgi.input_terminated": True}, None),
        ({}, "short"),
        ({"wsgi.input_terminated": True}, "short"),
        ({"HTTP_TRANSFER_ENCODING": "chunked"}, None),
    ],
    ids=repr,
)
def test_form_edge_environs_match_werkzeug(extra, length):
    body = b"name=Ada&x=1"

    def env():
        environ = form_environ(body, **extra)
        if length == "short":
            environ["wsgi.input"] = io.BytesIO(body[:5])
        return environ

    assert form_state(Request, env()) == form_state(WerkzeugRequest, env())


def test_form_respects_max_content_length():
    class Limited(Request):
        max_content_length = 5

    class WerkzeugLimited(WerkzeugRequest):
        max_content_length = 5

    env = form_environ(b"name=Ada")
    assert form_state(Limited, dict(env)) == form_state(WerkzeugLimited, dict(env))


def test_shallow_request_refuses_to_read_the_form():
    env = form_environ(b"a=1")
    with pytest.raises(RuntimeError, match="shallow"):
        Request(env, shallow=True).form  # noqa: B018


def test_unquote_shortcut_matches_urllib():
    from framework.wrappers import _unquote

    rng = random.Random(14)
    alphabet = "%%%0123456789abcdefABCDEFxz+ .-~"
    texts = ["", "%", "%4", "%%41", "%C3%A9", "%C3", "%E2%82%AC%", "%ff%fe"]
    texts += ["".join(rng.choices(alphabet, k=rng.randint(1, 12))) for _ in range(3000)]
    for text in texts:
        assert _unquote(text) == unquote(text, errors="werkzeug.url_quote"), text


def test_args_follow_a_query_string_set_before():
    ours = Request({"QUERY_STRING": "a=1", "REQUEST_METHOD": "GET"})
    theirs = WerkzeugRequest({"QUERY_STRING": "a=1", "REQUEST_METHOD": "GET"})
    for request in (ours, theirs):
        request.query_string = "x=%C3%A9&y=caf\xe9".encode()
    assert (
        list(ours.args.lists())
        == list(theirs.args.lists())
        == [
            ("x", ["\xe9"]),
            ("y", ["caf\xe9"]),
        ]
    )
