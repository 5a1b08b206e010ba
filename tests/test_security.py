"""Security headers, secret keys (serve refuses bad ones) and password hashes."""

from __future__ import annotations

import concurrent.futures
import os
import stat
import subprocess
import sys

import pytest
from support import ROOT
from support import TEST_SECRET_KEY
from support import Server

from framework import App
from framework import Response
from framework.conf import ImproperlyConfigured
from framework.security import check_password
from framework.security import check_secret_key
from framework.security import load_or_create_secret_key
from framework.security import make_password
from framework.security import password_needs_rehash
from framework.testing import TestApp

DEFAULT_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


@pytest.fixture
def client():
    app = App(__name__)
    app.add_route("/text", lambda request: "<p>hi</p>", endpoint="text")
    app.add_route("/bytes", lambda request: b"<p>hi</p>", endpoint="bytes")
    app.add_route("/json", lambda request: {"a": 1}, endpoint="json")
    app.add_route(
        "/own",
        lambda request: Response("x", headers={"X-Frame-Options": "SAMEORIGIN"}),
        endpoint="own",
    )
    app.add_route(
        "/plain", lambda request: Response("x", mimetype="text/plain"), endpoint="plain"
    )
    return TestApp(app)


def _security(response):
    return {name: response.headers.get(name) for name in DEFAULT_HEADERS}


@pytest.mark.parametrize("path", ["/text", "/bytes", "/missing"])
def test_html_responses_carry_the_security_headers(client, path):
    response = client.get(path, expect_errors=True)
    assert response.content_type == "text/html"
    assert _security(response) == DEFAULT_HEADERS


def test_other_responses_do_not_and_a_view_header_wins(client):
    assert set(_security(client.get("/json")).values()) == {None}
    assert set(_security(client.get("/plain")).values()) == {None}
    own = client.get("/own")
    assert own.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert own.headers["X-Content-Type-Options"] == "nosniff"


def test_the_headers_are_a_setting(client, settings):
    settings.SECURITY_HEADERS = {
        "Content-Security-Policy": "frame-ancestors 'none'",
        "Referrer-Policy": None,
    }
    for path in ("/text", "/own"):
        response = client.get(path)
        assert response.headers["Content-Security-Policy"] == "frame-ancestors 'none'"
        assert "Referrer-Policy" not in response.headers
        assert "X-Content-Type-Options" not in response.headers
    settings.SECURITY_HEADERS = {}
    assert set(_security(client.get("/text")).values()) == {None}


def test_a_header_the_view_set_in_another_case_is_not_repeated(client):
    app = App(__name__)
    app.add_route(
        "/lower",
        lambda request: Response(
            "x", headers=[("content-type", "text/html"), ("x-frame-options", "ALLOW")]
        ),
        endpoint="lower",
    )
    response = TestApp(app).get("/lower")
    assert response.headers.getall("X-Frame-Options") == ["ALLOW"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"


VIEW_HEADERS = {
    "usual names": [("Location", "/x"), ("Cache-Control", "no-store")],
    "a security header": [("X-Frame-Options", "SAMEORIGIN")],
    "another spelling": [("x-frame-options", "ALLOW"), ("referrer-policy", "none")],
    "an unusual name": [("X-Request-Id", "42"), ("Set-Cookie", "a=b")],
    "a setting's own header": [("Cache-Control", "private")],
}
SECURITY_SETTINGS = [
    None,
    {"Cache-Control": "no-store", "X-Frame-Options": "DENY"},
    {"cache-control": "no-cache", "set-cookie": "x=y"},
    {"Content-Type": "text/plain", "Content-Length": "0", "Referrer-Policy": None},
]


@pytest.mark.parametrize("security", SECURITY_SETTINGS)
@pytest.mark.parametrize("extra", VIEW_HEADERS.values(), ids=VIEW_HEADERS)
def test_security_headers_join_as_werkzeug_setdefault_would(settings, extra, security):
    """The headers added are those setdefault() adds, whatever the names' case."""
    if security is not None:
        settings.SECURITY_HEADERS = security
    app = App(__name__)

    def view(request):
        response = Response("<p>x</p>")
        for name, value in extra:
            response.headers.add(name, value)
        return response

    app.add_route("/", view, endpoint="index")
    expected = view(None).headers
    for name, value in settings.SECURITY_HEADERS.items():
        if value is not None:
            expected.setdefault(name, value)
    response = TestApp(app).get("/")
    assert response.headerlist == expected.to_wsgi_list()


@pytest.mark.parametrize(
    "headers",
    [{"X-Bad": "a\r\nSet-Cookie: x=1"}, {"X-Bad\n": "a"}, {"": "a"}],
)
def test_a_security_header_that_would_split_a_response_is_refused(
    client, settings, headers, caplog
):
    settings.SECURITY_HEADERS = headers
    response = client.get("/text", expect_errors=True)
    assert response.status_int == 500
    assert "Set-Cookie" not in response.headers
    (record,) = [r for r in caplog.records if r.name == "framework.request"]
    assert isinstance(record.exc_info[1], ImproperlyConfigured)
    assert "SECURITY_HEADERS: the header" in str(record.exc_info[1])


# Secret keys -------------------------------------------------------------------


@pytest.mark.parametrize("key", ["", "   ", "change-me", "CHANGEME", "secret"])
def test_an_empty_or_placeholder_key_is_refused(settings, key):
    settings.SECRET_KEY = key
    with pytest.raises(ImproperlyConfigured, match="FRAMEWORK_SECRET_KEY="):
        check_secret_key()
    settings.DEBUG = True
    check_secret_key()


def test_a_real_key_passes(settings):
    settings.SECRET_KEY = TEST_SECRET_KEY
    check_secret_key()


def _serve_check_config(tmp_path, env):
    full = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    full = {k: v for k, v in full.items() if not k.startswith("FRAMEWORK_")}
    full.update(env, PYTHONPATH=str(ROOT / "tests" / "apps"))
    return subprocess.run(
        [sys.executable, "-m", "framework", "--app", "webapp:app", "serve"]
        + ["--no-migrate", "--check-config", "--preload"],
        cwd=tmp_path,
        env=full,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.server
def test_serve_refuses_to_start_without_a_key_outside_debug(tmp_path):
    refused = _serve_check_config(tmp_path, {})
    assert refused.returncode != 0
    assert "SECRET_KEY is empty" in refused.stderr
    assert "FRAMEWORK_SECRET_KEY=" in refused.stderr
    placeholder = _serve_check_config(tmp_path, {"FRAMEWORK_SECRET_KEY": "change-me"})
    assert placeholder.returncode != 0
    assert "well-known placeholder" in placeholder.stderr
    debug = _serve_check_config(tmp_path, {"FRAMEWORK_DEBUG": "1"})
    assert debug.returncode == 0, debug.stderr
    keyed = _serve_check_config(tmp_path, {"FRAMEWORK_SECRET_KEY": TEST_SECRET_KEY})
    assert keyed.returncode == 0, keyed.stderr


@pytest.mark.server
def test_workers_refuse_when_the_master_never_imported_the_app(tmp_path):
    server = Server.serve(
        tmp_path,
        "webapp:app",
        ["--no-migrate", "-w", "1"],
        {"FRAMEWORK_SECRET_KEY": ""},
        pythonpath=[ROOT / "tests" / "apps"],
    )
    try:
        status = server.process.wait(60)
    finally:
        server.kill()
    assert status != 0
    assert "Worker failed to boot" in server.output
    assert "SECRET_KEY is empty" in server.output


def test_a_key_file_is_created_once_with_mode_0600(tmp_path):
    path = tmp_path / "data" / "secret_key"
    key = load_or_create_secret_key(path)
    assert len(key) == 50
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert load_or_create_secret_key(path) == key
    assert load_or_create_secret_key(tmp_path / "other") != key
    assert sorted(p.name for p in path.parent.iterdir()) == ["secret_key"]


def test_processes_starting_together_share_one_key(tmp_path):
    path = tmp_path / "secret_key"
    with concurrent.futures.ProcessPoolExecutor(4) as pool:
        keys = set(pool.map(load_or_create_secret_key, [path] * 16))
    assert keys == {path.read_text().strip()}


def test_a_key_file_others_can_read_or_an_empty_one_is_refused(tmp_path):
    path = tmp_path / "secret_key"
    path.write_text("k" * 50)
    path.chmod(0o644)
    with pytest.raises(ImproperlyConfigured, match="chmod 600"):
        load_or_create_secret_key(path)
    path.chmod(0o600)
    path.write_text("\n")
    with pytest.raises(ImproperlyConfigured, match="is empty"):
        load_or_create_secret_key(path)


# Passwords ---------------------------------------------------------------------


def test_password_hashes_verify_and_are_salted():
    first, second = make_password("correct horse"), make_password("correct horse")
    assert first != second
    assert first.startswith("scrypt$16384$8$5$")
    assert check_password("correct horse", first)
    assert check_password("correct horse", second)
    assert not check_password("correct horsE", first)
    assert not check_password("", first)
    assert not password_needs_rehash(first)


@pytest.mark.parametrize(
    "encoded",
    [
        "",
        "plain",
        "md5$1$2$3$4$5",
        "scrypt$16384$8$5$!!$!!",
        "scrypt$1000$8$5$c2FsdA$aGFzaA",  # n not a power of two
        "scrypt$1073741824$8$1$c2FsdA$aGFzaA",  # too much memory
        "scrypt$x$8$5$c2FsdA$aGFzaA",
    ],
)
def test_a_malformed_hash_never_matches(encoded):
    assert not check_password("anything", encoded)
    assert password_needs_rehash(encoded)


def test_older_parameters_still_verify_and_ask_for_a_rehash():
    import base64
    import hashlib

    salt = b"0123456789abcdef"
    digest = hashlib.scrypt(b"pw", salt=salt, n=1024, r=8, p=1, dklen=32)
    encoded = "scrypt$1024$8$1${}${}".format(
        base64.b64encode(salt).decode().rstrip("="),
        base64.b64encode(digest).decode().rstrip("="),
    )
    assert check_password("pw", encoded)
    assert password_needs_rehash(encoded)
