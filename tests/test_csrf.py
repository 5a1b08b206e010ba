"""CSRF protection: unsafe methods need the session's token unless exempt."""

from __future__ import annotations

import logging
import pathlib

import pytest

from framework import App
from framework import csrf_exempt
from framework import render
from framework.csrf import CSRFError
from framework.csrf import get_token
from framework.csrf import rotate_token
from framework.testing import TestApp

TEMPLATES = pathlib.Path(__file__).parent / "web_apps" / "templates"


@pytest.fixture(autouse=True)
def secret(settings):
    settings.SECRET_KEY = "csrf-test-key-0123456789-0123456789"
    return settings


def make_app(**options):
    app = App(__name__, template_folder=str(TEMPLATES))

    @app.route("/form")
    def form(request):
        return render("csrf_form.html", request=request)

    @app.route("/submit", methods=["POST", "PUT", "PATCH", "DELETE"])
    def submit(request):
        return {"done": request.method}

    @app.route("/api", methods=["POST"])
    @csrf_exempt
    def api(request):
        return {"api": True}

    @csrf_exempt
    @app.route("/api-marked-above", methods=["POST"])
    def api_marked_above(request):
        return {"above": True}

    @app.route("/signin", methods=["POST"])
    def signin(request):
        rotate_token(request)
        request.session["user"] = 1
        return "in"

    @app.route("/token")
    def token(request):
        return get_token(request)

    return app


@pytest.fixture
def client():
    return TestApp(make_app())


def _form_token(client):
    form = client.get("/form").forms[0]
    return form["csrf_token"].value


def test_a_form_posted_with_its_token_reaches_the_view(client):
    response = client.get("/form").forms[0].submit()
    assert response.json == {"done": "POST"}


def test_a_form_posted_without_a_token_is_a_clear_403(client, caplog):
    client.get("/form")  # a session with a secret exists
    with caplog.at_level(logging.WARNING, logger="framework.security.csrf"):
        response = client.post("/submit", {"text": "hi"}, status=403)
    assert "This form has expired or was not sent from this site" in response.text
    assert response.content_type == "text/html"
    assert "Forbidden (CSRF token missing): POST /submit" in caplog.text


def test_the_warning_is_one_line_whatever_the_path(caplog):
    app = make_app()
    app.add_route("/notes/<name>", lambda request, name: name, methods=["POST"])
    with caplog.at_level(logging.WARNING, logger="framework.security.csrf"):
        TestApp(app).post("/notes/a%0A[ERROR] forged%0D", status=403)
    (record,) = caplog.records
    assert record.getMessage() == (
        "Forbidden (CSRF token missing): POST /notes/a\\n[ERROR] forged\\r"
    )


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_every_unsafe_method_is_checked(client, method):
    token = _form_token(client)
    client.request("/submit", method=method, status=403)
    ok = client.request(
        "/submit", method=method, headers={"X-CSRF-Token": token}, status=200
    )
    assert ok.json == {"done": method}


def test_a_wrong_or_foreign_token_is_refused(client, caplog):
    _form_token(client)
    other = TestApp(client.app)
    foreign = _form_token(other)
    with caplog.at_level(logging.WARNING, logger="framework.security.csrf"):
        client.post("/submit", {"csrf_token": foreign}, status=403)
        client.post("/submit", {"csrf_token": "zz" * 64}, status=403)
        client.post("/submit", {"csrf_token": "short"}, status=403)
        # The right length, but spaces among the hex digits.
        client.post("/submit", {"csrf_token": "aa" * 63 + "  "}, status=403)
        client.post("/submit", {"csrf_token": " 0" * 64}, status=403)
    assert caplog.text.count("CSRF token incorrect") == 5


def test_a_token_without_its_session_is_refused(client, caplog):
    token = _form_token(client)
    client.reset()  # cookies gone: the browser dropped the session
    with caplog.at_level(logging.WARNING, logger="framework.security.csrf"):
        client.post("/submit", {"csrf_token": token}, status=403)
    assert "CSRF session missing or expired" in caplog.text


def test_tokens_differ_per_rendering_and_all_stay_valid(client):
    first, second = _form_token(client), _form_token(client)
    assert first != second and len(first) == len(second) == 128
    for token in (first, second):
        client.post("/submit", {"csrf_token": token}, status=200)


def test_rotation_invalidates_earlier_tokens(client):
    before = _form_token(client)
    client.post("/signin", {"csrf_token": before}, status=200)
    client.post("/submit", {"csrf_token": before}, status=403)
    client.post("/submit", {"csrf_token": _form_token(client)}, status=200)


def test_exempt_views_and_safe_methods_are_not_checked(client):
    assert client.post_json("/api", {"a": 1}).json == {"api": True}
    assert client.post_json("/api-marked-above", {}).json == {"above": True}
    assert client.get("/form").status_int == 200
    assert client.head("/form").status_int == 200
    assert client.options("/submit").status_int == 200


def test_the_check_can_be_turned_off(client, secret):
    secret.CSRF_ENABLED = False
    assert client.post("/submit").json == {"done": "POST"}


def test_field_and_header_names_are_settings(client, secret):
    secret.CSRF_FIELD_NAME = "_token"
    secret.CSRF_HEADER_NAME = "X-Token"
    form = client.get("/form").forms[0]
    assert "_token" in form.fields and "csrf_token" not in form.fields
    assert form.submit().json == {"done": "POST"}
    token = client.get("/token").text
    client.post("/submit", headers={"X-Token": token}, status=200)
    client.post("/submit", headers={"X-CSRF-Token": token}, status=403)


def test_view_middleware_does_not_bypass_the_check():
    app = make_app()
    app.add_view_middleware(lambda get_response: get_response)
    client = TestApp(app)
    client.post("/submit", status=403)
    assert client.get("/form").forms[0].submit().json == {"done": "POST"}


def test_an_errorhandler_can_render_the_403():
    app = make_app()

    @app.errorhandler(CSRFError)
    def refused(request, exc):
        return f"refused: {exc.reason}", 403

    response = TestApp(app).post("/submit", status=403)
    assert response.text == "refused: CSRF token missing"


def test_template_helpers_need_the_request(caplog):
    app = make_app()

    @app.route("/no-request")
    def no_request(request):
        return render("csrf_form.html", app=request.app)

    with caplog.at_level(logging.ERROR, logger="framework.request"):
        TestApp(app).get("/no-request", status=500)
    assert "csrf_input() needs the request: render the template with" in caplog.text
