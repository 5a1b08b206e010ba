"""app_example as a browser and an API client see it: pages, forms, sign-in, errors.

WebTest with lint on, on a fresh SQLite database per test (the ``site``
fixture); the real-browser walk through the same pages is in
tests/browser/test_app_example_browser.py.
"""

from __future__ import annotations

import csv
import io
import json
import stat
import urllib.parse

import pytest
from bookmarks_server import app_example_in_process
from click.testing import CliRunner

from framework.cli import call_command
from framework.cli import main
from framework.conf import settings
from framework.testing import TestApp

PASSWORD = "correct horse battery"


@pytest.fixture
def site(tmp_path):
    key = "app-example-page-tests-0123456789-0123456789"
    with app_example_in_process(tmp_path, SECRET_KEY=key) as app:
        yield app


@pytest.fixture
def browser(site):
    """A visitor: cookies kept, lint on."""
    return TestApp(site)


@pytest.fixture
def user(site):
    from app_example.accounts import create_user

    return create_user("ada", PASSWORD)


@pytest.fixture
def token(site):
    from app_example.accounts import create_token

    return create_token("tests")


def sign_in(browser, username="ada", password=PASSWORD, next_path=None):
    url = "/signin" + (f"?next={next_path}" if next_path else "")
    form = browser.get(url).forms["signin-form"]
    form["username"] = username
    form["password"] = password
    return form.submit(expect_errors=True)


def add(browser, **fields):
    form = browser.get("/bookmarks/new").forms["bookmark-form"]
    for name, value in fields.items():
        form[name] = value
    return form.submit(expect_errors=True)


def many_bookmarks(count, title="Item"):
    from app_example import services

    for index in range(count):
        services.create_bookmark(
            {
                "url": f"https://example.org/{index}",
                "title": f"{title} {index}",
                "notes": "",
                "tags": [],
                "collection": "inbox",
            }
        )


# Browsing and searching -----------------------------------------------------


def test_the_index_has_a_search_form_with_a_label_and_a_button(browser):
    page = browser.get("/")
    assert page.html.h1.text == "Latest bookmarks"
    form = page.forms["search-form"]
    assert form.method.upper() == "GET" and form.action == "/"
    assert page.html.find("label", attrs={"for": "q"}).text == "Search bookmarks"
    assert page.html.find("button", type="submit").text == "Search"
    assert "3 bookmarks" in page.text
    assert "Add bookmark" not in page.text and "Sign in" in page.text


def test_search_results_say_what_was_searched(browser):
    page = browser.get("/").forms["search-form"]
    page["q"] = "SQLite"
    found = page.submit()
    assert found.html.h1.text == "Search results for “SQLite”"
    titles = [a.text for a in found.html.select(".bookmarks .title")]
    assert titles == ["SQLite write-ahead logging"]
    assert found.forms["search-form"]["q"].value == "SQLite"
    nothing = browser.get("/", {"q": "cobol"})
    assert nothing.html.h1.text == "Search results for “cobol”"
    assert "No bookmarks match “cobol”." in nothing.html.select_one(".empty").text
    assert "No bookmarks yet" not in nothing.text


def test_tag_pages_and_their_empty_state(browser):
    tagged = browser.get("/", {"tag": "databases"})
    assert tagged.html.h1.text == "Bookmarks tagged “databases”"
    assert len(tagged.html.select(".bookmarks > li")) == 1
    # The search form keeps the tag.
    assert tagged.forms["search-form"]["tag"].value == "databases"
    both = browser.get("/", {"tag": "web", "q": "gunicorn"})
    assert both.html.h1.text == "Search results for “gunicorn” tagged “web”"
    empty = browser.get("/", {"tag": "reading"})
    assert "No bookmarks are tagged “reading”." in empty.text
    browser.get("/", {"tag": "nosuchtag"}).mustcontain("No bookmarks are tagged")


def test_an_empty_site_says_so(site, browser, user):
    from app_example import services

    for bookmark_id in (1, 2, 3):
        services.delete_bookmark(bookmark_id)
    assert "No bookmarks yet." in browser.get("/").text
    sign_in(browser)
    browser.get("/").mustcontain("No bookmarks yet.", "Add the first one")


def test_pagination(browser):
    many_bookmarks(25)  # 28 with the samples: 20 + 8
    first = browser.get("/")
    assert len(first.html.select(".bookmarks > li")) == 20
    assert "28 bookmarks · page 1 of 2" in first.text
    nav = first.html.find("nav", attrs={"aria-label": "Pages"})
    assert nav.find("a", rel="next")["href"] == "/?page=2"
    assert nav.find("a", rel="prev") is None
    second = first.click(linkid=None, href=r"/\?page=2$")
    assert len(second.html.select(".bookmarks > li")) == 8
    assert second.html.find("a", rel="prev")["href"] == "/"
    for bad in ("3", "0", "-1", "x"):
        browser.get("/", {"page": bad}, status=404)
    searched = browser.get("/", {"q": "item"})
    assert searched.html.find("a", rel="next")["href"] == "/?q=item&page=2"


def test_a_page_of_bookmarks_costs_the_same_queries_for_any_number(browser):
    from framework.testing import assert_num_queries

    # A count, the page's bookmarks with their collections, their tags.
    with assert_num_queries(3):
        browser.get("/")
    many_bookmarks(25)
    with assert_num_queries(3):
        browser.get("/")
    with assert_num_queries(4):  # and the search index
        browser.get("/", {"q": "item"})


def test_a_bookmark_page_and_the_tags_page(browser):
    page = browser.get("/bookmarks/1")
    assert page.html.h1.text == "PEP 3333: WSGI"
    assert page.html.select_one(".url a")["href"] == "https://peps.python.org/pep-3333/"
    assert [a.text for a in page.html.select(".facts .tag")] == ["python", "web"]
    assert "Edit" not in page.text  # anonymous
    tags = browser.get("/tags")
    assert "2 bookmarks" in tags.html.select_one(".tag-list").text


# Signing in -----------------------------------------------------------------


def test_writing_pages_need_a_signed_in_user(browser):
    response = browser.get("/bookmarks/new", status=303)
    assert response.headers["Location"].endswith("/signin?next=%2Fbookmarks%2Fnew")
    browser.get("/bookmarks/1/edit", status=303)
    browser.get("/bookmarks/1/delete", status=303)


def test_sign_in_redirects_back_and_shows_the_user(browser, user):
    wrong = sign_in(browser, password="not it", next_path="/bookmarks/new")
    assert wrong.status_int == 422
    assert wrong.html.select_one("[role=alert]").text == "Wrong username or password."
    assert wrong.forms["signin-form"]["username"].value == "ada"
    assert wrong.forms["signin-form"]["password"].value == ""
    assert sign_in(browser, username="nobody").status_int == 422
    done = sign_in(browser, next_path="/bookmarks/new")
    assert done.status_int == 303
    assert done.headers["Location"].endswith("/bookmarks/new")
    cookie = done.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    page = done.follow()
    assert page.html.h1.text == "Add a bookmark"
    assert "Signed in as ada." in page.html.select_one(".messages").text
    assert "Signed in as ada." not in browser.get("/").text  # shown once
    assert "Signed in as" in browser.get("/").html.select_one(".account").text


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example/",
        "https://evil.example/",
        "/\\evil.example",
        # Browsers and werkzeug's Location header drop tabs and newlines.
        "/\t/evil.example",
        "/\n/evil.example",
        "/\r\n/evil.example",
    ],
)
def test_sign_in_never_redirects_off_the_site(browser, user, target):
    response = sign_in(browser, next_path=urllib.parse.quote(target, safe=""))
    assert response.headers["Location"] in ("/", "http://localhost/")


def test_sign_out_and_a_password_change_end_the_session(browser, user):
    from app_example.accounts import set_password

    sign_in(browser)
    signed_out = browser.get("/").forms["signout-form"].submit()
    assert signed_out.status_int == 303
    assert "Signed out." in signed_out.follow().text
    browser.get("/bookmarks/new", status=303)
    sign_in(browser)
    browser.get("/bookmarks/new", status=200)
    set_password(user, "a whole new password")
    browser.get("/bookmarks/new", status=303)


def test_signing_in_starts_a_new_session_and_a_new_csrf_token(browser, user):
    form = browser.get("/signin").forms["signin-form"]
    planted = form["csrf_token"].value  # what another site could have fixed
    anonymous = browser.cookies["session"]
    form["username"], form["password"] = "ada", PASSWORD
    assert form.submit().status_int == 303
    assert browser.cookies["session"] != anonymous
    browser.post("/signout", {"csrf_token": planted}, status=403)
    browser.get("/bookmarks/new", status=200)  # still signed in
    # The anonymous cookie, replayed, is not signed in.
    replay = TestApp(browser.app)
    replay.set_cookie("session", anonymous)
    replay.get("/bookmarks/new", status=303)


def test_forms_without_their_csrf_token_are_refused(browser, user):
    sign_in(browser)
    refused = browser.post(
        "/bookmarks/new", {"url": "https://x.test/", "title": "x"}, status=403
    )
    assert refused.html.h1.text == "This form could not be sent"
    assert "reload the page" in refused.text
    browser.post("/signout", status=403)
    browser.post("/signin", {"username": "ada", "password": PASSWORD}, status=403)


# Adding, changing, deleting -------------------------------------------------


def test_add_shows_errors_next_to_the_fields_and_keeps_the_values(browser, user):
    sign_in(browser)
    invalid = add(browser, url="ftp://x", title="  ", tags="ok " + "x" * 41)
    assert invalid.status_int == 422
    for name in ("url", "title", "tags"):
        field = invalid.html.find(id=name)
        assert field["aria-invalid"] == "true"
        error = invalid.html.find(id=f"{name}-error")
        assert error is not None and f"{name}-error" in field["aria-describedby"]
    assert "http:// or https://" in invalid.html.find(id="url-error").text
    assert invalid.html.find(id="title-error").text.strip() == "Error: Enter a title."
    assert invalid.forms["bookmark-form"]["url"].value == "ftp://x"
    assert invalid.html.find(id="notes-error") is None


def test_add_edit_and_delete_from_the_pages(browser, user):
    sign_in(browser)
    created = add(
        browser,
        url=" https://falcon.readthedocs.io/ ",
        title="Falcon",
        tags="Python, api web",
        notes="fast\nframework",
    )
    assert created.status_int == 303
    page = created.follow()
    assert page.html.h1.text == "Falcon"
    assert "Added “Falcon”." in page.text
    assert [a.text for a in page.html.select(".facts .tag")] == ["api", "python", "web"]
    assert page.html.select_one(".notes").text == "fast\nframework"
    bookmark_id = int(page.request.path.rsplit("/", 1)[1])

    edit = page.click("Edit").forms["bookmark-form"]
    assert edit["tags"].value == "api python web"
    edit["title"] = "Falcon framework"
    edit["tags"] = "python"
    saved = edit.submit().follow()
    assert saved.html.h1.text == "Falcon framework"
    assert [a.text for a in saved.html.select(".facts .tag")] == ["python"]
    counts = {t["name"]: t["bookmarks"] for t in browser.get("/api/tags").json["tags"]}
    assert (counts["api"], counts["web"], counts["python"]) == (0, 2, 3)

    confirm = saved.click("Delete")
    assert confirm.html.h1.text == "Delete “Falcon framework”?"
    gone = confirm.forms["delete-form"].submit()
    assert gone.headers["Location"].endswith("/")
    assert "Deleted “Falcon framework”." in gone.follow().text
    browser.get(f"/bookmarks/{bookmark_id}", status=404)


HOSTILE = "<script>alert(1)</script>\"'><img src=x onerror=alert(2)>"


def test_what_visitors_typed_is_escaped_on_every_page(browser, user):
    sign_in(browser)
    created = add(
        browser,
        url=f"https://x.test/?q={HOSTILE}",
        title=HOSTILE,
        tags=f"{HOSTILE[:30]} plain",
        notes=HOSTILE,
    )
    assert created.status_int == 303
    bookmark_id = created.headers["Location"].rsplit("/", 1)[1]
    pages = [
        created.follow(),  # with the "Added ..." message
        browser.get(f"/bookmarks/{bookmark_id}"),
        browser.get(f"/bookmarks/{bookmark_id}/edit"),
        browser.get(f"/bookmarks/{bookmark_id}/delete"),
        browser.get("/"),
        browser.get("/", {"q": HOSTILE[:100]}),  # the heading names the search
        browser.get("/", {"tag": HOSTILE[:30]}),
        browser.get("/tags"),
        browser.get("/signin", {"next": f"/{HOSTILE}"}),
        add(browser, url=HOSTILE, title=HOSTILE),  # the form again, with errors
    ]
    for page in pages:
        assert "<script>" not in page.text and "<img" not in page.text, page.request.url
        assert not page.html.find_all("script") and not page.html.find_all("img")
    # Shown as text, in the title, the heading and the fields.
    detail = pages[1]
    assert detail.html.h1.text == HOSTILE
    assert detail.html.select_one(".notes").text == HOSTILE
    assert pages[2].forms["bookmark-form"]["title"].value == HOSTILE
    assert HOSTILE[:100] in pages[5].html.h1.text


def test_editing_a_bookmark_deleted_meanwhile_is_a_404(browser, user):
    from app_example import services

    sign_in(browser)
    form = browser.get("/bookmarks/2/edit").forms["bookmark-form"]
    services.delete_bookmark(2)
    form.submit(status=404)


# Errors ---------------------------------------------------------------------


def test_error_pages_are_the_sites_own(browser, settings):
    missing = browser.get("/no/such/page", status=404)
    assert missing.html.h1.text == "Page not found"
    assert missing.html.select_one("link[rel=stylesheet]") is not None
    assert missing.headers["X-Frame-Options"] == "DENY"
    browser.get("/fail", status=404)  # off unless FAIL_VIEW
    settings.FAIL_VIEW = True
    failed = browser.get("/fail", status=500)
    assert failed.html.h1.text == "Something went wrong"
    assert "InjectedFailure" not in failed.text


def test_api_errors_are_json(browser, token, settings):
    auth = {"Authorization": f"Bearer {token}"}

    def error(response):
        assert response.content_type == "application/json"
        assert set(response.json) == {"error"}
        return response.json["error"]

    assert "not found" in error(browser.get("/api/nope", status=404))
    assert "not found" in error(browser.get("/api/bookmarks/999", status=404))
    refused = browser.put("/api/bookmarks", "{}", headers=auth, status=405)
    assert set(refused.headers["Allow"].split(", ")) == {
        "GET",
        "HEAD",
        "OPTIONS",
        "POST",
    }
    error(refused)
    unauthorized = browser.post_json("/api/bookmarks", {}, status=401)
    assert unauthorized.headers["WWW-Authenticate"].startswith("Bearer")
    assert "createtoken" in error(unauthorized)
    wrong = {"Authorization": "Bearer not-a-token"}
    assert "not valid" in error(
        browser.delete("/api/bookmarks/1", headers=wrong, status=401)
    )
    error(browser.patch_json("/api/bookmarks/1", {}, headers={}, status=401))
    error(browser.post("/api/bookmarks", "x", headers=auth, status=415))
    bad = browser.post(
        "/api/bookmarks",
        "{nope",
        headers={**auth, "Content-Type": "application/json"},
        status=400,
    )
    assert "not valid JSON" in error(bad)
    settings.MAX_CONTENT_LENGTH = 100
    error(
        browser.post_json("/api/bookmarks", {"x": "y" * 200}, headers=auth, status=413)
    )
    settings.FAIL_VIEW = True
    browser.get("/api/bookmarks", status=200)


def test_api_writes_with_a_token_and_the_same_rules_for_post_and_patch(browser, token):
    auth = {"Authorization": f"Bearer {token}"}
    created = browser.post_json(
        "/api/bookmarks",
        {"url": "https://x.test/", "title": " X ", "tags": ["A"]},
        headers=auth,
        status=201,
    ).json
    assert (created["title"], created["tags"]) == ("X", ["a"])
    for method, path in (
        (browser.post_json, "/api/bookmarks"),
        (browser.patch_json, "/api/bookmarks/1"),
    ):
        payload = {"url": "https://y.test/", "title": "y", "id": 3, "owner": "me"}
        refused = method(path, payload, headers=auth, status=400)
        assert "'id', 'owner'" in refused.json["error"]
    changed = browser.patch_json(
        f"/api/bookmarks/{created['id']}",
        {"collection": "reading list"},
        headers=auth,
    ).json
    assert changed["collection"] == "reading list"
    browser.delete(f"/api/bookmarks/{created['id']}", headers=auth, status=204)


def test_metrics_and_audit_need_a_token_or_an_allowed_address(browser, token, settings):
    remote = {"REMOTE_ADDR": "203.0.113.9"}
    for path in ("/metrics", "/api/audit"):
        browser.get(path, extra_environ=remote, status=401)
        browser.get(
            path,
            extra_environ=remote,
            headers={"Authorization": f"Bearer {token}"},
            status=200,
        )
        browser.get(path, extra_environ={"REMOTE_ADDR": "127.0.0.1"}, status=200)
        browser.get(
            path,
            extra_environ={"REMOTE_ADDR": "127.0.0.1"},
            headers={"Authorization": "Bearer wrong"},
            status=401,
        )
    # Relayed by a reverse proxy on this machine: the address is the proxy's.
    local = {"REMOTE_ADDR": "127.0.0.1"}
    for header in ("X-Forwarded-For", "X-Real-IP", "Forwarded"):
        proxied = {header: "203.0.113.9"}
        browser.get("/metrics", extra_environ=local, headers=proxied, status=401)
        browser.get(
            "/api/audit",
            extra_environ=local,
            headers={**proxied, "Authorization": f"Bearer {token}"},
            status=200,
        )
    settings.OPS_ALLOWED_ADDRESSES = ["203.0.113.0/24"]
    browser.get("/metrics", extra_environ=remote, status=200)
    browser.get("/metrics", extra_environ={"REMOTE_ADDR": "127.0.0.1"}, status=401)


def test_the_export_has_notes_and_no_formulas(browser, token):
    auth = {"Authorization": f"Bearer {token}"}
    browser.post_json(
        "/api/bookmarks",
        {
            "url": "https://x.test/",
            "title": '=HYPERLINK("https://evil.example","click")',
            "notes": "+1 line\nand -2",
            "tags": ["@home"],
        },
        headers=auth,
        status=201,
    )
    rows = list(csv.reader(io.StringIO(browser.get("/export.csv").text)))
    assert rows[0] == ["id", "url", "title", "notes", "collection", "tags", "created"]
    last = rows[-1]
    assert last[2] == '\'=HYPERLINK("https://evil.example","click")'
    assert last[3] == "'+1 line\nand -2"
    assert last[5] == "'@home"
    assert rows[1][2] == "PEP 3333: WSGI"  # nothing else changes
    for notes in ("-2+3", "\tcmd", "\rcmd", "+x"):
        browser.patch_json(
            f"/api/bookmarks/{last[0]}", {"notes": notes}, headers=auth, status=200
        )
        rows = list(csv.reader(io.StringIO(browser.get("/export.csv").text)))
        assert rows[-1][3] == "'" + notes


def test_an_empty_export_still_has_its_header(browser):
    from app_example import services

    for bookmark_id in (1, 2, 3):
        services.delete_bookmark(bookmark_id)
    response = browser.get("/export.csv")
    assert response.content_type == "text/csv"
    assert response.text.splitlines() == ["id,url,title,notes,collection,tags,created"]


def test_static_files_favicon_and_headers(browser, site):
    page = browser.get("/")
    href = page.html.select_one("link[rel=stylesheet]")["href"]
    assert href == site.static_url("style.css")
    css = browser.get(href)
    assert css.content_type == "text/css"
    assert "immutable" in css.headers["Cache-Control"]
    icon = browser.get("/favicon.ico")
    assert icon.content_type in ("image/vnd.microsoft.icon", "image/x-icon")
    assert icon.headers["Cache-Control"] == "public, max-age=3600"
    assert page.headers["Content-Security-Policy"].startswith("default-src 'self'")
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.html.find("meta", attrs={"name": "viewport"}) is not None


# Commands and the secret key ------------------------------------------------


def test_createuser_prompts_or_reads_stdin(site):
    from app_example.models import User

    runner = CliRunner()
    result = runner.invoke(
        main, ["createuser", "grace"], input=f"{PASSWORD}\n{PASSWORD}\n"
    )
    assert result.exit_code == 0, result.output
    piped = runner.invoke(
        main, ["createuser", "linus", "--password-stdin"], input=f"{PASSWORD}\n"
    )
    assert piped.exit_code == 0, piped.output
    stored = User.objects.get(username="linus").password
    assert stored.startswith("scrypt$") and PASSWORD not in stored
    again = runner.invoke(
        main, ["createuser", "grace", "--password-stdin"], input="x\n"
    )
    assert again.exit_code == 1
    assert "at least 8 characters" in again.output
    duplicate = runner.invoke(
        main, ["createuser", "grace", "--password-stdin"], input=f"{PASSWORD}\n"
    )
    assert "exists already" in duplicate.output
    browser = TestApp(site)
    assert sign_in(browser, "linus").status_int == 303


def test_createtoken_prints_a_token_stored_hashed(site):
    from app_example.models import ApiToken

    runner = CliRunner()
    made = runner.invoke(main, ["createtoken", "ci"])
    assert made.exit_code == 0, made.output
    value = made.stdout.splitlines()[0]
    assert len(value) >= 40
    stored = ApiToken.objects.get(name="ci").token_hash
    assert value not in stored and len(stored) == 64
    known = "k" * 40
    assert runner.invoke(main, ["createtoken", "lt", "--token", known]).exit_code == 0
    short = runner.invoke(main, ["createtoken", "x", "--token", "short"])
    assert short.exit_code == 1 and "at least 32" in short.output
    clash = runner.invoke(main, ["createtoken", "lt", "--token", known])
    assert clash.exit_code == 1 and "--replace" in clash.output
    other = "o" * 40
    replaced = runner.invoke(main, ["createtoken", "lt", "--token", other, "--replace"])
    assert replaced.exit_code == 0
    browser = TestApp(site)
    for secret, status in ((known, 401), (other, 201), (value, 201)):
        browser.post_json(
            "/api/bookmarks",
            {"url": "https://x.test/", "title": "t"},
            headers={"Authorization": f"Bearer {secret}"},
            status=status,
        )


def test_app_commands_are_listed_and_callable(site):
    listing = CliRunner().invoke(main, ["--app", "app_example.wsgi:app", "--help"])
    assert "createuser" in listing.output and "createtoken" in listing.output
    out = io.StringIO()
    call_command("createtoken", "called", stdout=out)
    assert len(out.getvalue().split()[0]) >= 40


def test_without_a_key_one_is_made_beside_the_database(tmp_path, site):
    from app_example.web import ensure_secret_key
    from app_example.web import secret_key_file

    settings.SECRET_KEY = ""
    ensure_secret_key()
    path = tmp_path / "app_example.secret_key"
    assert secret_key_file() == str(path)
    assert settings.SECRET_KEY == path.read_text().strip()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    first = settings.SECRET_KEY
    settings.SECRET_KEY = ""
    ensure_secret_key()
    assert settings.SECRET_KEY == first
    json.dumps(first)
