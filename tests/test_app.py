"""App behaviour through WebTest (lint on) and wsgiref.validate."""

from __future__ import annotations

import functools
import gc
import json
import wsgiref.util
import wsgiref.validate

import pytest
from werkzeug.exceptions import Forbidden
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Response as WerkzeugResponse

from framework import App
from framework import DisallowedHost
from framework import HTTPException
from framework import MethodNotAllowed
from framework import NotFound
from framework import Response
from framework import TooManyFieldsSent
from framework import signals
from framework.conf import override_settings
from framework.conf import settings
from framework.testing import TestApp
from framework.testing import capture
from tests.web_apps import lifecycle


@pytest.fixture
def app():
    lifecycle.EVENTS.clear()
    return lifecycle.make_app()


@pytest.fixture
def client(app):
    return TestApp(app)


def test_text_json_and_tuples(client):
    response = client.get("/hello")
    assert response.status_int == 200
    assert response.content_type == "text/html"
    assert response.charset == "utf-8"
    assert response.text == "Hello, World!"
    assert client.get("/users/5").json == {"id": 5, "name": "Ada"}
    assert client.get("/list").json == [1, "two", None]
    created = client.post("/created")
    assert created.status_int == 201
    assert created.headers["X-Made"] == "yes"
    assert created.text == "made"
    custom = client.get("/response")
    assert (custom.status_int, custom.content_type, custom.text) == (
        202,
        "text/plain",
        "custom",
    )
    assert client.get("/bytes").body == b"\x00bytes"


def test_streaming_and_files(client):
    assert client.get("/stream").text == "one,two,three"
    assert lifecycle.EVENTS == ["generator closed"]
    assert client.get("/file").body == b"file body"


def test_head_options_and_405(client):
    head = client.head("/hello")
    assert head.body == b""
    assert head.headers["Content-Length"] == "13"
    options = client.options("/items/x")
    assert set(options.headers["Allow"].split(", ")) == {
        "GET",
        "HEAD",
        "POST",
        "OPTIONS",
    }
    refused = client.delete("/hello", status=405)
    assert set(refused.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}


def test_strict_slash_redirect(client):
    response = client.get("/dir", status=308)
    assert response.headers["Location"] == "http://localhost/dir/"


def test_template_response(client):
    assert client.get("/template").text == "Hello &lt;b&gt;Ada&lt;/b&gt;!"


def closing_middleware(wsgi_app):
    """A WSGI middleware that wraps the body and forwards close()."""

    class Body:
        def __init__(self, inner):
            self.inner = inner

        def __iter__(self):
            return iter(self.inner)

        def close(self):
            close = getattr(self.inner, "close", None)
            if close is not None:
                close()

    def wrapped(environ, start_response):
        return Body(wsgi_app(environ, start_response))

    return wrapped


RESPONSE_KINDS = [
    ("/hello", "GET", "200", {}, {}),
    ("/bytes", "GET", "200", {}, {}),
    ("/users/1", "GET", "200", {}, {}),
    ("/list", "GET", "200", {}, {}),
    ("/created", "POST", "201", {}, {}),
    ("/response", "GET", "202", {}, {}),
    ("/stream", "GET", "200", {}, {}),
    ("/stream", "HEAD", "200", {}, {}),
    ("/file", "GET", "200", {}, {}),
    ("/template", "GET", "200", {}, {}),
    ("/hello", "HEAD", "200", {}, {}),
    ("/hello", "OPTIONS", "200", {}, {}),
    ("/no-content", "GET", "204", {}, {}),
    ("/not-modified", "GET", "304", {}, {}),
    ("/dir", "GET", "308", {}, {}),
    ("/hello", "GET", "400", {"headers": {"Host": "evil.example"}}, {}),
    ("/json", "POST", "400", {"data": "{no", "content_type": "application/json"}, {}),
    ("/query", "GET", "400", {"query_string": "a=1&b=2&c=3"}, {"MAX_FORM_FIELDS": 2}),
    ("/json", "POST", "413", {"json": {"big": "x" * 64}}, {"MAX_CONTENT_LENGTH": 8}),
    ("/forbidden", "GET", "403", {}, {}),
    ("/missing", "GET", "404", {}, {}),
    ("/hello", "POST", "405", {}, {}),
    ("/boom", "GET", "500", {}, {}),
    ("/none", "GET", "500", {}, {}),
    ("/split-header", "GET", "500", {}, {}),
    ("/control-header", "GET", "500", {}, {}),
    ("/tab-header", "GET", "500", {}, {}),
]


@pytest.mark.parametrize("middleware", ["none", "view", "wsgi"])
@pytest.mark.parametrize(
    ("path", "method", "status", "request_options", "overrides"), RESPONSE_KINDS
)
def test_every_response_kind_passes_wsgiref_validate(
    app, path, method, status, request_options, overrides, middleware
):
    if middleware == "view":
        app.add_view_middleware(lambda get_response: get_response)
    elif middleware == "wsgi":
        app.add_wsgi_middleware(closing_middleware)
    validated = wsgiref.validate.validator(app)
    env = EnvironBuilder(path, method=method, **request_options).get_environ()
    wsgiref.util.setup_testing_defaults(env)
    env["wsgi.file_wrapper"] = wsgiref.util.FileWrapper
    started = []

    def start_response(status_line, headers, exc_info=None):
        started.append(status_line)
        return lambda data: None

    with override_settings(**overrides), capture(signals.request_finished) as calls:
        result = validated(env, start_response)
        for _chunk in result:
            pass
        result.close()
    assert started[0][:3] == status
    calls.assert_sent_once_with(signals.request_finished, status=int(status))


def test_exception_mid_stream_passes_wsgiref_validate(app):
    validated = wsgiref.validate.validator(app)
    env = EnvironBuilder("/stream-error").get_environ()
    wsgiref.util.setup_testing_defaults(env)
    with capture(signals.got_request_exception, signals.request_finished) as calls:
        result = validated(env, lambda status, headers, exc_info=None: None)
        chunks = iter(result)
        assert next(chunks) == b"start,"
        with pytest.raises(RuntimeError, match="broken stream"):
            next(chunks)
        result.close()
    assert calls.names == ["got_request_exception", "request_finished"]


# PERF checks: the shortcuts match werkzeug --------------------------------------


RETURN_VALUES = [
    "Hello, World!",
    "h\xe9llo \u20ac",
    "",
    b"\x00\xffraw",
    {"id": 42, "name": "Ada", "nested": [1, 2.5, None, True]},
    {"text": "caf\xe9 \u20ac"},
    [],
    [1, "two"],
]


@pytest.mark.parametrize("value", RETURN_VALUES, ids=repr)
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_fast_responses_match_werkzeug_responses(value, method):
    app = App(__name__)
    app.add_route("/", lambda request: value, endpoint="index")
    env = EnvironBuilder("/", method=method).get_environ()

    def run(wsgi_app, environ):
        started = []
        result = wsgi_app(environ, lambda s, h, e=None: started.append((s, h)))
        body = b"".join(result)
        if hasattr(result, "close"):
            result.close()
        return started[0][0], sorted(started[0][1]), body

    fast = run(app, dict(env))
    # The same value made into a Response by the view, served by an app: the
    # response path adds the security headers to HTML, as the fast path does.
    slow_app = App(__name__)
    made = slow_app.make_response(value)
    slow_app.add_route("/", lambda request: made, endpoint="index")
    slow = run(slow_app, dict(env))
    assert fast == slow
    # werkzeug's own generic WSGI call, not the lean one of framework.Response,
    # of that very response (its headers as the app finished them).
    generic = run(functools.partial(WerkzeugResponse.__call__, made), dict(env))
    assert fast == generic


def test_make_response_accepts_the_documented_shapes():
    app = App(__name__)
    assert app.make_response(("x", 201)).status == "201 CREATED"
    assert app.make_response(("x", {"X-A": "1"})).headers["X-A"] == "1"
    response = app.make_response(("x", "418 TEAPOT", [("X-B", "2")]))
    assert (response.status, response.headers["X-B"]) == ("418 TEAPOT", "2")
    streamed = app.make_response(iter([b"a", b"b"]))
    assert streamed.is_streamed
    with pytest.raises(TypeError, match="tuple of length 4"):
        app.make_response(("a", 1, {}, 2))
    with pytest.raises(TypeError, match="returned None"):
        app.make_response(None)
    with pytest.raises(TypeError, match="returned int"):
        app.make_response(3)
    assert isinstance(app.make_response("x"), Response)


def test_errorhandler_rejects_other_keys():
    app = App(__name__)
    with pytest.raises(TypeError, match="status code or an exception class"):
        app.register_error_handler("404", lambda request, exc: "")


def test_wsgi_app_property_tracks_middleware():
    app = App(__name__)
    assert app.wsgi_app == app.dispatch
    app.add_route("/", lambda request: "x", endpoint="index")
    app.add_wsgi_middleware(
        lambda inner, prefix: lambda environ, start: inner(environ, start), "unused"
    )
    assert app._direct is False
    assert TestApp(app).get("/").text == "x"
    app.wsgi_app = app.dispatch
    assert app._direct is True


def test_dispatch_is_a_plain_wsgi_app():
    app = App(__name__)
    app.add_route("/", lambda request: "inner", endpoint="index")
    with capture(signals.request_started, signals.request_finished) as calls:
        assert TestApp(app.dispatch).get("/").text == "inner"
    assert len(calls) == 0


def test_repr():
    assert repr(App("x.y")) == "<App 'x.y'>"


@pytest.mark.parametrize(
    "value",
    [
        {"id": 42, "name": "Ada", "nested": {"list": [1, 2.5, None, True, False]}},
        ["caf\xe9", "\u20ac", "\ud83d\ude00", 'quote" and \\ back', "\n\t\x00"],
        {"1": 1e300, "2": -0.0, "3": float("nan"), "4": float("inf")},
        [],
        {},
        [[[]]],
        {"k": (1, 2)},
    ],
    ids=repr,
)
def test_json_encoder_matches_json_dumps(value):
    from framework.app import _json_encode

    expected = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    assert _json_encode(value) == expected


def test_json_encoder_refuses_what_json_refuses():
    from framework.app import _json_encode

    with pytest.raises(TypeError, match="not JSON serializable"):
        _json_encode({"when": object()})
    cyclic = []
    cyclic.append(cyclic)
    with pytest.raises(RecursionError, match="recursion"):
        _json_encode(cyclic)
    # An earlier failure leaves nothing behind.
    assert _json_encode({"ok": [1]}) == '{"ok":[1]}'


@pytest.mark.parametrize(
    ("path", "method", "status", "request_options", "overrides"), RESPONSE_KINDS
)
def test_every_response_kind_passes_webtest_lint(
    client, path, method, status, request_options, overrides
):
    headers = request_options.get("headers", {})
    body = request_options.get("data")
    content_type = request_options.get("content_type")
    if "json" in request_options:
        body = json.dumps(request_options["json"])
        content_type = "application/json"
    if "query_string" in request_options:
        path = f"{path}?{request_options['query_string']}"
    if content_type:
        headers = {**headers, "Content-Type": content_type}
    with override_settings(**overrides), capture(signals.request_finished) as calls:
        response = client.request(
            path,
            method=method,
            headers=headers,
            body=body.encode() if body else None,
            expect_errors=True,
        )
    assert response.status_int == int(status)
    calls.assert_sent_once_with(signals.request_finished, status=int(status))


def test_response_hooks_see_every_response_the_core_makes():
    """The internal hook point: every response the core makes passes through it.

    Nothing in the framework installs a hook today (sessions and security
    headers are App._finish_response's own steps); the test pins that the
    one place sees every response, the error and middleware ones included.
    """
    app = App(__name__)
    app.add_route("/text", lambda request: "text", endpoint="text")
    app.add_route("/json", lambda request: {"a": 1}, endpoint="json")
    app.add_route("/boom", lambda request: 1 / 0, endpoint="boom")
    seen = []

    def hook(request, response):
        seen.append((request.path, response.status_code))
        response.headers["X-Hooked"] = "yes"
        return response

    app._response_hooks.append(hook)
    client = TestApp(app)
    for path, status in [("/text", 200), ("/json", 200), ("/nope", 404)]:
        response = client.get(path, status=status)
        assert response.headers["X-Hooked"] == "yes"
    assert client.get("/json").json == {"a": 1}
    assert client.get("/boom", status=500).headers["X-Hooked"] == "yes"
    app.add_view_middleware(lambda get_response: get_response)
    assert client.get("/text").headers["X-Hooked"] == "yes"
    assert seen == [
        ("/text", 200),
        ("/json", 200),
        ("/nope", 404),
        ("/json", 200),
        ("/boom", 500),
        ("/text", 200),
    ]


@pytest.mark.parametrize(
    ("path", "method"),
    [("/hello", "GET"), ("/response", "GET"), ("/stream", "GET"), ("/created", "POST")]
    + [("/forbidden", "GET"), ("/boom", "GET"), ("/hello", "HEAD")],
)
def test_requests_leave_no_cyclic_garbage(app, path, method, caplog):
    """Every object of a request is freed by reference counting, not the GC.

    (Not a 404 of an unknown path: werkzeug's own matcher leaves a cycle.)
    """

    def one_request():
        env = EnvironBuilder(path, method=method).get_environ()
        result = app(env, lambda status, headers, exc_info=None: None)
        b"".join(result)
        result.close()

    one_request()
    # Earlier tests' garbage (and what collecting it frees in turn) first.
    for _ in range(5):
        if not gc.collect():
            break
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for _ in range(20):
            one_request()
        gc.collect()
        garbage = [type(obj).__name__ for obj in gc.garbage]
        assert garbage == []
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


class Teapot(HTTPException):
    code = 418
    description = "Short <and> stout."


class OwnPage(NotFound):
    def get_description(self, environ=None, scope=None):
        return "<p>Nothing at all.</p>"


HTTP_ERRORS = {
    "NotFound": NotFound,
    "described": lambda: NotFound("No <such> page."),
    "Forbidden": Forbidden,
    "DisallowedHost": DisallowedHost,
    "TooManyFieldsSent": TooManyFieldsSent,
    "custom class": Teapot,
    "own description method": OwnPage,
    "own response": lambda: NotFound(response=Response("own", status=404)),
    "with headers": lambda: MethodNotAllowed(valid_methods=["GET"]),
}


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("make", HTTP_ERRORS.values(), ids=HTTP_ERRORS.keys())
def test_http_error_pages_match_werkzeug(make, method):
    app = App(__name__)

    def view(request):
        raise make()

    app.add_route("/", view, endpoint="index")

    def run(wsgi_app):
        environ = EnvironBuilder("/", method=method).get_environ()
        started = []
        result = wsgi_app(environ, lambda s, h, e=None: started.append((s, h)))
        body = b"".join(result)
        if hasattr(result, "close"):
            result.close()
        return started[0][0], started[0][1], body

    theirs = make().get_response(EnvironBuilder("/", method=method).get_environ())
    # An HTML error page gets the security headers, like any HTML response.
    for name, value in settings.SECURITY_HEADERS.items():
        theirs.headers.setdefault(name, value)
    expected = run(functools.partial(WerkzeugResponse.__call__, theirs))
    assert run(app) == expected
    assert run(app) == expected  # the page built once, then reused


def test_a_response_class_with_its_own_init_builds_every_text_answer():
    class Tagged(Response):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.headers["X-Tag"] = "tagged"

    class TaggedApp(App):
        response_class = Tagged

    app = TaggedApp(__name__)
    app.add_route("/made", lambda request: ("made", 201), endpoint="made")
    app.add_route("/plain", lambda request: ("plain", "200 OK"), endpoint="plain")
    app.register_error_handler(404, lambda request, exc: ("not here", 404))
    client = TestApp(app)
    for path, status, body in [
        ("/made", 201, "made"),
        ("/plain", 200, "plain"),
        ("/nope", 404, "not here"),
    ]:
        response = client.get(path, status=status)
        assert (response.text, response.headers.get("X-Tag")) == (body, "tagged")


class Refused(Exception):
    pass


class SlowErrors(App):
    """An app whose handle_exception is its own: the Response path, always."""

    def handle_exception(self, request):
        return super().handle_exception(request)


def run_wsgi(wsgi_app, environ):
    """Return the status line, headers and body an app answers, and its signals."""
    started = []
    with capture(signals.got_request_exception, signals.request_finished) as calls:
        result = wsgi_app(environ, lambda s, h, e=None: started.append((s, h)))
        body = b"".join(result)
        if hasattr(result, "close"):
            result.close()
    names = [(call.name, call.kwargs.get("status")) for call in calls]
    return started[0][0], started[0][1], body, names


HANDLER_ANSWERS = [
    ("conflict", 409),
    ("", 200),
    ("h\xe9llo \u20ac", 201),
    ("gone", 404),
    ("broken", 500),
    ("teapot", 418),
]
SECURITY_SETTINGS = {
    "default": {},
    "none": {"SECURITY_HEADERS": {}},
    "own": {
        "SECURITY_HEADERS": {
            "Permissions-Policy": "camera=()",
            "content-type": "text/plain",
            "X-Frame-Options": None,
        }
    },
}


@pytest.mark.parametrize("overrides", SECURITY_SETTINGS.values(), ids=SECURITY_SETTINGS)
@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("answer", HANDLER_ANSWERS, ids=repr)
def test_error_handler_text_answers_match_werkzeug(answer, method, overrides):
    def view(request):
        raise Refused()

    apps = []
    for cls in (App, SlowErrors):
        app = cls(__name__)
        app.add_route("/", view, endpoint="index")
        app.register_error_handler(Refused, lambda request, exc: answer)
        apps.append(app)
    fast_app, slow_app = apps
    environ = EnvironBuilder("/", method=method).get_environ()
    with override_settings(**overrides):
        fast = run_wsgi(fast_app, dict(environ))
        slow = run_wsgi(slow_app, dict(environ))
        assert fast_app._state.lean_errors
        assert not slow_app._state.lean_errors
        theirs = WerkzeugResponse(answer[0], answer[1], mimetype="text/html")
        for name, value in settings.SECURITY_HEADERS.items():
            if value is not None:
                theirs.headers.setdefault(name, value)
    generic = functools.partial(WerkzeugResponse.__call__, theirs)
    # Only the app's own request signals: the handled error is no exception.
    names = [("request_finished", answer[1])]
    assert fast == slow == (*run_wsgi(generic, dict(environ))[:3], names)


def test_error_handler_answers_that_need_a_response_take_the_response_path():
    app = App(__name__)
    answers = {
        "status-line": ("text", "409 CONFLICT"),
        "bodyless": ("text", 304),
        "no-content": ("text", 204),
        "unknown-code": ("text", 599),
        "bytes": (b"raw", 409),
        "three": ("text", 409, {"X-A": "1"}),
        "response": Response("made", status=409),
    }

    def view(request):
        raise Refused(request.args["case"])

    def handler(request, exc):
        if exc.args[0] == "session":
            request.session["seen"] = True
            return ("with session", 409)
        if exc.args[0] == "abort":
            raise NotFound()
        if exc.args[0] == "fails":
            raise RuntimeError("the handler failed")
        return answers[exc.args[0]]

    app.add_route("/", view, endpoint="index")
    app.register_error_handler(Refused, handler)
    client = TestApp(app)
    assert client.get("/?case=status-line", status=409).text == "text"
    assert client.get("/?case=bodyless", status=304).body == b""
    assert client.get("/?case=no-content", status=204).body == b""
    assert client.get("/?case=unknown-code", status=599).text == "text"
    assert client.get("/?case=bytes", status=409).body == b"raw"
    assert client.get("/?case=three", status=409).headers["X-A"] == "1"
    assert client.get("/?case=response", status=409).text == "made"
    with override_settings(SECRET_KEY="test"):
        with_session = client.get("/?case=session", status=409)
    assert with_session.text == "with session"
    assert "Set-Cookie" in with_session.headers
    assert client.get("/?case=abort", status=404).status_int == 404
    with capture(signals.got_request_exception) as calls:
        client.get("/?case=fails", status=500)
    assert len(calls) == 1


def test_error_handler_text_answer_goes_through_response_hooks():
    app = App(__name__)

    def view(request):
        raise Refused()

    def hook(request, response):
        response.headers["X-Hooked"] = "yes"
        return response

    app.add_route("/", view, endpoint="index")
    app.register_error_handler(Refused, lambda request, exc: ("refused", 409))
    app._response_hooks.append(hook)
    response = TestApp(app).get("/", status=409)
    assert (response.text, response.headers["X-Hooked"]) == ("refused", "yes")
    assert not app._state.lean_errors
