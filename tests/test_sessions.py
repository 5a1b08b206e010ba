"""Signed-cookie sessions: request.session, cookie flags, bad cookies, rotation."""

from __future__ import annotations

import hashlib
import http.cookies
import logging
import operator
import time

import pytest
from itsdangerous import TimestampSigner
from itsdangerous import URLSafeTimedSerializer

from framework import App
from framework import Response
from framework import abort
from framework import signals
from framework.sessions import Session
from framework.testing import TestApp
from framework.testing import capture

KEY = "a-test-key-that-is-long-enough-0123456789"


@pytest.fixture(autouse=True)
def secret(settings):
    settings.SECRET_KEY = KEY
    return settings


@pytest.fixture
def app():
    app = App(__name__)

    @app.route("/set")
    def set_value(request):
        request.session["name"] = request.args.get("name", "ada")
        return "set"

    @app.route("/set-json")
    def set_json(request):
        request.session["n"] = 1
        return {"ok": True}

    @app.route("/get")
    def get_value(request):
        return {"name": request.session.get("name"), "new": request.session.new}

    @app.route("/clear")
    def clear(request):
        request.session.clear()
        return "cleared"

    @app.route("/plain")
    def plain(request):
        return "no session here"

    @app.route("/set-then-404")
    def set_then_404(request):
        request.session["seen"] = True
        abort(404)

    @app.route("/bad-value")
    def bad_value(request):
        request.session["when"] = object()
        return "x"

    @app.route("/response")
    def response(request):
        request.session["r"] = 1
        return Response("made", headers={"X-Own": "1"})

    return app


@pytest.fixture
def client(app):
    return TestApp(app)


def _set_cookie(response):
    headers = response.headers.getall("Set-Cookie")
    assert len(headers) == 1, headers
    return headers[0]


def test_a_request_that_does_not_use_the_session_gets_no_cookie(client):
    response = client.get("/plain")
    assert "Set-Cookie" not in response.headers
    assert "Vary" not in response.headers


def test_a_modified_session_sets_a_cookie_with_the_right_flags(client):
    response = client.get("/set")
    cookie = _set_cookie(response)
    assert cookie.startswith("session=")
    parts = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert {"httponly", "max-age", "path"} <= parts
    assert "SameSite=Lax" in cookie
    assert "Max-Age=1209600" in cookie
    assert "secure" not in parts  # plain HTTP
    assert response.headers["Vary"] == "Cookie"
    assert client.get("/get").json == {"name": "ada", "new": False}


def test_secure_flag_over_https_or_when_forced(client, secret):
    over_https = client.get("/set", extra_environ={"wsgi.url_scheme": "https"})
    assert "; Secure" in _set_cookie(over_https)
    secret.SESSION_COOKIE_SECURE = True
    assert "; Secure" in _set_cookie(client.get("/set"))


def test_cookie_settings_are_honoured(client, secret):
    secret.SESSION_COOKIE_NAME = "sid"
    secret.SESSION_COOKIE_AGE = 60
    secret.SESSION_COOKIE_SAMESITE = "strict"
    cookie = _set_cookie(client.get("/set"))
    assert cookie.startswith("sid=")
    assert "Max-Age=60" in cookie
    assert "SameSite=Strict" in cookie


def test_reading_only_adds_vary_and_no_cookie(client):
    client.get("/set")
    response = client.get("/get")
    assert "Set-Cookie" not in response.headers
    assert response.headers["Vary"] == "Cookie"


def test_the_fast_path_still_saves_the_session(client):
    # A view returning a dict or str normally skips werkzeug's Response.
    response = client.get("/set-json")
    assert response.json == {"ok": True}
    assert response.headers["Content-Type"] == "application/json"
    assert _set_cookie(response).startswith("session=")
    response = client.get("/response")
    assert response.headers["X-Own"] == "1"
    assert _set_cookie(response).startswith("session=")


def test_clearing_deletes_the_cookie(client):
    client.get("/set")
    response = client.get("/clear")
    cookie = _set_cookie(response)
    assert cookie.startswith(('session=""', "session=;"))
    assert "Max-Age=0" in cookie
    assert client.get("/get").json == {"name": None, "new": True}
    # Clearing a session that never existed sends nothing.
    fresh = TestApp(client.app)
    assert "Set-Cookie" not in fresh.get("/clear").headers


def test_a_session_set_before_an_http_error_is_still_saved(client):
    response = client.get("/set-then-404", status=404)
    assert _set_cookie(response).startswith("session=")


@pytest.mark.parametrize(
    "value",
    [
        "garbage",
        "eyJuYW1lIjoiZXZlIn0.Zz.bad",  # well shaped, bad signature
        "%%%%",
        "x" * 5000,
        "",
    ],
)
def test_a_bad_cookie_is_an_empty_session_never_an_error(client, value, caplog):
    client.set_cookie("session", value)
    with caplog.at_level(logging.WARNING):
        assert client.get("/get").json == {"name": None, "new": True}
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def _serializer(keys, signer=TimestampSigner):
    return URLSafeTimedSerializer(
        keys,
        salt="framework.sessions",
        signer=signer,
        signer_kwargs={"key_derivation": "hmac", "digest_method": hashlib.sha256},
    )


def test_a_cookie_signed_with_another_key_is_refused(client):
    client.set_cookie("session", _serializer(["another key"]).dumps({"name": "eve"}))
    assert client.get("/get").json == {"name": None, "new": True}


def test_a_signed_payload_that_is_not_a_dict_is_refused(client):
    client.set_cookie("session", _serializer([KEY]).dumps(["name", "eve"]))
    assert client.get("/get").json == {"name": None, "new": True}


def test_an_expired_cookie_is_an_empty_session(client, secret):
    class HourAgo(TimestampSigner):
        def get_timestamp(self):
            return int(time.time()) - 3600

    old = _serializer([KEY], signer=HourAgo).dumps({"name": "ada"})
    client.set_cookie("session", old)
    assert client.get("/get").json == {"name": "ada", "new": False}
    secret.SESSION_COOKIE_AGE = 60
    assert client.get("/get").json == {"name": None, "new": True}


def test_key_rotation_accepts_fallbacks_and_signs_with_the_new_key(client, secret):
    client.get("/set?name=grace")
    secret.SECRET_KEY = "the-new-key-0123456789-0123456789"
    assert client.get("/get").json["name"] is None  # old key unknown now
    secret.SECRET_KEY_FALLBACKS = [KEY]
    assert client.get("/get").json["name"] == "grace"
    resigned = _set_cookie(client.get("/set?name=hopper")).split(";")[0]
    value = http.cookies.SimpleCookie(resigned)["session"].value
    assert _serializer(["the-new-key-0123456789-0123456789"]).loads(value) == {
        "name": "hopper"
    }
    secret.SECRET_KEY_FALLBACKS = []
    assert client.get("/get").json["name"] == "hopper"


def test_saving_without_a_secret_key_is_a_clear_500(client, secret, caplog):
    secret.SECRET_KEY = ""
    assert client.get("/get").json == {"name": None, "new": True}
    with caplog.at_level(logging.ERROR, logger="framework.request"):
        with capture(signals.got_request_exception) as calls:
            response = client.get("/set", status=500)
    assert "SECRET_KEY is empty" in caplog.text
    # One error, reported once; the 500 page does not try the session again.
    assert len(calls) == 1
    assert caplog.text.count("Traceback") == 1
    assert "Set-Cookie" not in response.headers


def test_a_value_that_is_not_json_is_a_500(client, caplog):
    with caplog.at_level(logging.ERROR, logger="framework.request"):
        with capture(signals.got_request_exception) as calls:
            response = client.get("/bad-value", status=500)
    assert "not JSON serializable" in caplog.text
    assert len(calls) == 1
    assert caplog.text.count("Traceback") == 1
    assert "Set-Cookie" not in response.headers


def test_session_tracks_every_mutation():
    session = Session({"a": 1}, new=False)
    assert not session.modified
    assert session.setdefault("a", 2) == 1 and not session.modified
    for change in (
        lambda s: s.__setitem__("b", 1),
        lambda s: s.__delitem__("a"),
        lambda s: s.pop("a"),
        lambda s: s.popitem(),
        lambda s: s.setdefault("z", 1),
        lambda s: s.update(c=3),
        lambda s: operator.ior(s, {"c": 3}),
        lambda s: s.clear(),
    ):
        fresh = Session({"a": 1}, new=False)
        change(fresh)
        assert fresh.modified
    assert "modified" in repr(fresh)


def test_loaded_session_is_none_until_something_reads_the_session(app, client):
    seen = []

    @app.route("/loaded")
    def loaded(request):
        seen.append(request.loaded_session)
        session = request.session
        seen.append(request.loaded_session)
        return {"same": request.loaded_session is session}

    assert client.get("/loaded").json == {"same": True}
    assert seen[0] is None
    assert isinstance(seen[1], Session)
