"""Static files: served safely with caching headers, versioned URLs."""

from __future__ import annotations

import pytest

from framework import App
from framework import render
from framework.testing import TestApp


@pytest.fixture
def app(tmp_path):
    static = tmp_path / "static"
    (static / "css").mkdir(parents=True)
    (static / "css" / "site.css").write_text("body { color: #222; }\n")
    (tmp_path / "secret.txt").write_text("not public")
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "static_page.html").write_text(
        '<link rel="stylesheet" href="{{ static_url(\'css/site.css\') }}">'
    )
    app = App(
        __name__,
        template_folder=str(tmp_path / "templates"),
        static_folder=str(static),
    )

    @app.route("/page")
    def page(request):
        return render("static_page.html", request=request)

    return app


@pytest.fixture
def client(app):
    return TestApp(app)


def test_a_static_file_is_served_with_validators_and_a_max_age(client):
    response = client.get("/static/css/site.css")
    assert response.text == "body { color: #222; }\n"
    assert response.content_type == "text/css"
    assert response.headers["Cache-Control"] == "public, max-age=3600"
    assert response.headers["ETag"] and response.headers["Last-Modified"]
    again = client.get(
        "/static/css/site.css", headers={"If-None-Match": response.headers["ETag"]}
    )
    assert again.status_int == 304 and again.body == b""


def test_a_versioned_url_is_cached_for_a_year(app, client, settings):
    url = app.static_url("css/site.css")
    assert url.startswith("/static/css/site.css?v=")
    response = client.get(url)
    assert response.headers["Cache-Control"] == ("public, max-age=31536000, immutable")
    stale = client.get("/static/css/site.css?v=000000000000")
    assert stale.headers["Cache-Control"] == "public, max-age=3600"
    settings.STATIC_MAX_AGE = 60
    assert client.get("/static/css/site.css").headers["Cache-Control"] == (
        "public, max-age=60"
    )


def test_the_version_follows_the_content(app, tmp_path):
    first = app.static_url("css/site.css")
    (tmp_path / "static" / "css" / "site.css").write_text("body { color: red; }\n")
    assert app.static_url("css/site.css") != first


def test_templates_get_static_url(client, app):
    page = client.get("/page")
    assert f'href="{app.static_url("css/site.css")}"' in page.text


@pytest.mark.parametrize(
    "path",
    [
        "/static/missing.css",
        "/static/../secret.txt",
        "/static/%2e%2e/secret.txt",
        "/static/css",
        "/static/css/",
        # The version is looked up for ?v=: a folder or a NUL is no file.
        "/static/css?v=1",
        "/static/css/site%00.css?v=1",
        "/static/site%00.css",
    ],
)
def test_missing_files_and_paths_outside_the_folder_are_404(client, path):
    client.get(path, status=404)


def test_static_url_errors_are_clear(app):
    with pytest.raises(FileNotFoundError, match="No static file 'nope.css'"):
        app.static_url("nope.css")
    with pytest.raises(FileNotFoundError):
        app.static_url("../secret.txt")
    with pytest.raises(RuntimeError, match="static_folder='static'"):
        App(__name__).static_url("x.css")


def test_no_static_route_unless_asked():
    assert [rule.rule for rule, _ in App(__name__).iter_routes()] == []
