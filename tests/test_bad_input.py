"""Bad input gets a 4xx (never a 500, never got_request_exception).

Every case still sends request_finished exactly once, and none logs a
traceback (docs/app.md says so): ``run()`` checks the log of each request.
"""

from __future__ import annotations

import io
import json
import logging

import pytest
from werkzeug.test import EnvironBuilder

from framework import signals
from framework.conf import override_settings
from framework.testing import capture
from tests.web_apps import lifecycle


@pytest.fixture
def app():
    return lifecycle.make_app()


class _Tracebacks(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records = []

    def emit(self, record):
        if record.exc_info:
            self.records.append(record)


def run(app, env, tracebacks_expected=False):
    started = []
    logged = _Tracebacks()
    logging.getLogger().addHandler(logged)
    try:
        with capture(
            signals.request_started,
            signals.got_request_exception,
            signals.request_finished,
        ) as calls:
            result = app(env, lambda s, h, e=None: started.append((s, h)))
            body = b"".join(result)
            result.close()
    finally:
        logging.getLogger().removeHandler(logged)
    assert len(calls.calls_of(signals.request_started)) == 1
    assert len(calls.calls_of(signals.request_finished)) == 1
    if not tracebacks_expected:
        assert [record.getMessage() for record in logged.records] == []
    return int(started[-1][0][:3]), dict(started[-1][1]), body, calls


MULTIPART = "multipart/form-data"


def environ(path="/hello", **kwargs):
    return EnvironBuilder(path, **kwargs).get_environ()


@pytest.mark.parametrize(
    ("host", "allowed", "status"),
    [
        ("evil.example", ["localhost"], 400),
        ("localhost:8000", ["localhost"], 200),
        ("LOCALHOST", ["localhost"], 200),
        ("api.example.com", [".example.com"], 200),
        ("example.com:443", [".example.com"], 200),
        ("badexample.com", [".example.com"], 400),
        ("[::1]:80", ["[::1]"], 200),
        ("[::1]", ["[::1]"], 200),
        ("anything.test", ["*"], 200),
        ("bad host", ["*"], 400),
        ("a.b:c:d", ["a.b"], 400),
    ],
)
def test_host_header_must_be_allowed(app, host, allowed, status):
    called = []
    app.add_route("/probe", lambda request: called.append(1) or "ok", endpoint="p")
    with override_settings(ALLOWED_HOSTS=allowed):
        env = environ("/probe", headers={"Host": host})
        code, _, body, calls = run(app, env)
    assert code == status
    assert bool(called) == (status == 200)
    calls.assert_not_sent(signals.got_request_exception)


def test_allowed_hosts_change_takes_effect(app):
    env = environ(headers={"Host": "new.example"})
    assert run(app, dict(env))[0] == 400
    with override_settings(ALLOWED_HOSTS=["new.example"]):
        assert run(app, dict(env))[0] == 200
    code, _, _, calls = run(app, dict(env))
    assert code == 400
    calls.assert_not_sent(signals.got_request_exception)


def test_body_over_the_limit_is_413_without_reading_it(app):
    stream = io.BytesIO(b"x" * 100)
    env = environ("/json", method="POST")
    env.update({"wsgi.input": stream, "CONTENT_LENGTH": "100"})
    with override_settings(MAX_CONTENT_LENGTH=10):
        code, _, _, calls = run(app, env)
    assert code == 413
    assert stream.tell() == 0
    calls.assert_not_sent(signals.got_request_exception)


def test_chunked_body_over_the_limit_is_413(app):
    env = environ(
        "/form",
        method="POST",
        data="a=" + "x" * 100,
        content_type="application/x-www-form-urlencoded",
    )
    del env["CONTENT_LENGTH"]
    env["wsgi.input_terminated"] = True
    with override_settings(MAX_CONTENT_LENGTH=10):
        code, _, _, calls = run(app, env)
    assert code == 413
    calls.assert_not_sent(signals.got_request_exception)


def test_too_many_form_fields_in_the_body(app):
    data = "&".join(f"f{i}=v" for i in range(11))
    with override_settings(MAX_FORM_FIELDS=10):
        code, _, body, calls = run(
            app,
            environ(
                "/form",
                method="POST",
                data=data,
                content_type="application/x-www-form-urlencoded",
            ),
        )
        ok = run(
            app,
            environ(
                "/form",
                method="POST",
                data="&".join(f"f{i}=v" for i in range(10)),
                content_type="application/x-www-form-urlencoded",
            ),
        )
    assert code == 400
    assert b"more form or query fields" in body
    assert ok[0] == 200
    assert ok[2] == b'{"fields":10}'
    calls.assert_not_sent(signals.got_request_exception)


def test_too_many_multipart_fields(app):
    data = {f"f{i}": "v" for i in range(6)}
    with override_settings(MAX_FORM_FIELDS=5):
        code, _, _, calls = run(
            app, environ("/form", method="POST", data=data, content_type=MULTIPART)
        )
    assert code == 400
    calls.assert_not_sent(signals.got_request_exception)


def test_too_many_query_fields(app):
    query = "&".join(f"q{i}=1" for i in range(11))
    with override_settings(MAX_FORM_FIELDS=10):
        code, _, _, calls = run(app, environ("/query", query_string=query))
        ok = run(app, environ("/query", query_string=query.rsplit("&", 1)[0]))
    assert code == 400
    assert ok[0] == 200
    calls.assert_not_sent(signals.got_request_exception)


@pytest.mark.parametrize(
    "raw_path",
    ["/\xff\xfe", "/users/\xc3", "/users/%zz", "/%", "/caf\xc3\xa9/../x"],
)
def test_undecodable_paths_are_404(app, raw_path):
    env = environ()
    env["PATH_INFO"] = raw_path
    code, _, _, calls = run(app, env)
    assert code == 404
    calls.assert_not_sent(signals.got_request_exception)


def test_malformed_json_is_a_clear_400(app):
    env = environ("/json", method="POST", data="{nope", content_type="application/json")
    code, _, body, calls = run(app, env)
    assert code == 400
    assert b"The request body is not valid JSON" in body
    calls.assert_not_sent(signals.got_request_exception)
    deep = environ(
        "/json",
        method="POST",
        data="[" * 100_000 + "]" * 100_000,
        content_type="application/json",
    )
    code, _, body, calls = run(app, deep)
    assert code == 400
    assert b"The request body is not valid JSON: it is nested too deeply" in body
    calls.assert_not_sent(signals.got_request_exception)
    good = environ("/json", method="POST", json={"a": 1})
    assert run(app, good)[2] == b'{"got":{"a":1}}'


@pytest.mark.parametrize(
    "path", ["/split-header", "/split-header-direct", "/control-header", "/tab-header"]
)
def test_header_with_newline_is_a_logged_500(app, caplog, path):
    code, headers, body, calls = run(app, environ(path), tracebacks_expected=True)
    assert code == 500
    assert "Set-Cookie" not in headers
    assert "X-Evil" not in headers
    assert "X-Ctl" not in headers
    calls.assert_sent_once_with(signals.got_request_exception)
    assert any(r.name == "framework.request" and r.exc_info for r in caplog.records)


def test_too_many_multipart_parts_is_413(app):
    data = {f"f{i}": "v" for i in range(6)}
    with override_settings(MAX_FORM_PARTS=3):
        code, _, _, calls = run(
            app, environ("/form", method="POST", data=data, content_type=MULTIPART)
        )
    assert code == 413
    calls.assert_not_sent(signals.got_request_exception)


def test_form_field_over_the_memory_limit_is_413(app):
    data = {"big": "x" * 200}
    with override_settings(MAX_FORM_MEMORY_SIZE=100):
        code, _, _, calls = run(
            app, environ("/form", method="POST", data=data, content_type=MULTIPART)
        )
    assert code == 413
    calls.assert_not_sent(signals.got_request_exception)


def test_raw_non_utf8_query_string_is_400(app):
    env = environ("/query")
    env["QUERY_STRING"] = "a=\xff"  # undecoded bytes, as some servers pass them
    code, _, body, calls = run(app, env)
    assert code == 400
    assert b"The query string is not valid UTF-8." in body
    calls.assert_not_sent(signals.got_request_exception)
    env = environ("/query", query_string="a=%ff&b=%zz")
    assert run(app, env)[:3:2] == (200, b'{"fields":2}')


@pytest.mark.parametrize("view_middleware", [False, True])
def test_json_echo_of_a_lone_surrogate_is_valid_json(app, view_middleware):
    if view_middleware:
        app.add_view_middleware(lambda get_response: get_response)
    data = '{"s": "\\ud800", "t": "\u00e9"}'
    env = environ("/json", method="POST", data=data, content_type="application/json")
    code, headers, body, calls = run(app, env)
    assert code == 200
    assert json.loads(body) == {"got": {"s": "\ud800", "t": "\u00e9"}}
    assert body.isascii()
    assert headers["Content-Type"] == "application/json"
    calls.assert_not_sent(signals.got_request_exception)


def test_chunked_body_under_the_limit_is_read_whole(app):
    env = environ(
        "/form",
        method="POST",
        data="a=1&b=" + "x" * 40,
        content_type="application/x-www-form-urlencoded",
    )
    del env["CONTENT_LENGTH"]
    env["wsgi.input_terminated"] = True
    with override_settings(MAX_CONTENT_LENGTH=46):
        code, _, body, calls = run(app, env)
    assert (code, body) == (200, b'{"fields":2}')
    calls.assert_not_sent(signals.got_request_exception)


def test_json_view_with_another_content_type_is_415(app):
    env = environ("/json", method="POST", data='{"a": 1}', content_type="text/plain")
    code, _, body, calls = run(app, env)
    assert code == 415
    assert b"application/json" in body
    calls.assert_not_sent(signals.got_request_exception)


def test_many_distinct_hosts_are_all_checked(app):
    with override_settings(ALLOWED_HOSTS=[".example.com"]):
        for index in range(300):
            env = environ(headers={"Host": f"h{index}.example.com"})
            assert run(app, env)[0] == 200
        assert run(app, environ(headers={"Host": "h1.example.org"}))[0] == 400


class _BrokenChunks(io.RawIOBase):
    """A server's chunked-body reader meeting a bad chunk (as gunicorn raises)."""

    def __init__(self, good, error):
        self.good = good
        self.error = error

    def readable(self):
        return True

    def readinto(self, buffer):
        if not self.good:
            raise self.error
        size = min(len(buffer), len(self.good))
        buffer[:size], self.good = self.good[:size], self.good[size:]
        return size


class InvalidChunkSize(Exception):
    """Like gunicorn.http.errors.InvalidChunkSize: not an OSError."""


@pytest.mark.parametrize(
    "error", [InvalidChunkSize("Invalid chunk size: b'zz'"), OSError("cut off")]
)
@pytest.mark.parametrize("content_type", ["application/json", MULTIPART])
def test_chunked_body_the_server_cannot_decode_is_400(app, error, content_type):
    env = environ("/json", method="POST", data=b'{"a": 1', content_type=content_type)
    if content_type == MULTIPART:
        env = environ("/form", method="POST", content_type=content_type)
        env["CONTENT_TYPE"] = f"{MULTIPART}; boundary=x"
    del env["CONTENT_LENGTH"]
    env["wsgi.input_terminated"] = True
    env["wsgi.input"] = _BrokenChunks(b'--x\r\n{"a": ', error)
    code, headers, body, calls = run(app, env)
    assert code == 400
    assert f"The request body could not be read: {type(error).__name__}" in (
        body.decode()
    )
    calls.assert_not_sent(signals.got_request_exception)


@pytest.mark.parametrize(
    ("raw_path", "status", "name"),
    [
        ("/files/\xff", 404, None),
        ("/files/\xfe", 404, None),
        ("/files/a\xc3", 404, None),
        ("/files/\xed\xa0\x80", 404, None),  # an encoded surrogate is not UTF-8
        ("/files/caf\xc3\xa9/\xe2\x98\x83", 200, "café/☃"),
    ],
)
def test_a_catch_all_route_never_gets_a_path_that_is_not_utf8(
    app, raw_path, status, name
):
    app.add_route(
        "/files/<path:name>", lambda request, name: {"name": name}, endpoint="files"
    )
    env = environ()
    env["PATH_INFO"] = raw_path
    code, _, body, calls = run(app, env)
    assert code == status
    if name is not None:
        assert json.loads(body) == {"name": name}
    calls.assert_not_sent(signals.got_request_exception)


@pytest.mark.parametrize(
    ("headers", "json_body", "wants_json"),
    [
        ({"Accept": "application/json"}, False, True),
        ({"Accept": "text/html,application/json;q=0.9"}, False, False),
        ({"Accept": "application/json, text/html;q=0.5"}, True, True),
        ({"Accept": "text/html"}, True, False),
        ({"Accept": "*/*"}, True, True),
        ({}, True, True),
        ({}, False, False),
    ],
)
def test_http_errors_answer_json_to_json_clients(app, headers, json_body, wants_json):
    kwargs = {"json": {"a": 1}} if json_body else {}
    env = environ("/users/2", method="PUT", headers=headers, **kwargs)
    code, response_headers, body, calls = run(app, env)
    assert code == 405
    assert "GET" in response_headers["Allow"]
    if wants_json:
        assert response_headers["Content-Type"] == "application/json"
        assert json.loads(body) == {
            "error": "The method is not allowed for the requested URL."
        }
    else:
        assert response_headers["Content-Type"].startswith("text/html")
    calls.assert_not_sent(signals.got_request_exception)


def test_an_error_handler_wins_over_the_json_answer(app):
    app.register_error_handler(404, lambda request, exc: ("custom", 404))
    env = environ("/missing", headers={"Accept": "application/json"})
    assert run(app, env)[2] == b"custom"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Basic \xe9", "null"),  # a byte no base64 has, passed on as latin-1
        ("Basic !!", "null"),
        ("Basic YWRhOnNlY3JldA==", '"ada"'),
    ],
)
def test_malformed_basic_credentials_are_no_credentials(value, expected):
    app = lifecycle.make_app()

    @app.route("/whoami")
    def whoami(request):
        auth = request.authorization
        return json.dumps(auth.username if auth is not None else None)

    env = environ("/whoami")
    env["HTTP_AUTHORIZATION"] = value
    code, _, body, calls = run(app, env)
    assert (code, body) == (200, expected.encode())
    calls.assert_not_sent(signals.got_request_exception)
