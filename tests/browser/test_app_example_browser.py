"""app_example in headless Chromium against gunicorn: what a person can do with it.

The walk: sign in, add a bookmark with tags (a first try with errors next to
the fields), see it listed, edit it, search it, delete it, sign out. Also: a
form posted without its CSRF token is refused, every page passes axe-core's
accessibility rules, fits a phone's width, and is saved as a screenshot in the
artefacts directory (see conftest.py).
"""

from __future__ import annotations

import re
import stat

import pytest

from .conftest import DESKTOP
from .conftest import PASSWORD
from .conftest import PHONE
from .conftest import USERNAME
from .conftest import run_axe

pytestmark = [pytest.mark.browser, pytest.mark.server]


def shoot(page, artefacts, name):
    page.screenshot(path=str(artefacts / f"{name}.png"), full_page=True)


def sign_in(page, base):
    page.goto(f"{base}/signin")
    page.get_by_label("Username").fill(USERNAME)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/")


def titles(page):
    """The titles listed on a page that has finished loading."""
    page.wait_for_load_state()
    return page.locator(".bookmarks .title").all_inner_texts()


def expect(locator):
    # NOTE: an action that navigates returns once the new page has started
    # loading: reads after it go through Playwright's retrying ``expect``.
    from playwright.sync_api import expect

    return expect(locator)


def heading(page):
    return page.get_by_role("heading", level=1)


def test_sign_in_add_edit_search_delete_sign_out(served, page, artefacts):
    base = served.url
    # The README's first command: no SECRET_KEY set, one was made beside the DB.
    key_file = served.directory / "app_example.secret_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600

    page.goto(base + "/")
    assert page.title() == "Latest bookmarks · Bookmarks"
    assert page.get_by_role("heading", level=1).inner_text() == "Latest bookmarks"
    shoot(page, artefacts, "01-index")

    page.get_by_role("link", name="Sign in").click()
    page.get_by_label("Username").fill(USERNAME)
    page.get_by_label("Password").fill("wrong password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("Wrong username or password.")
    shoot(page, artefacts, "02-signin-error")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(base + "/")
    assert "Signed in as ada." in page.get_by_role("status").inner_text()
    shoot(page, artefacts, "03-signed-in")

    # Add: a first try with mistakes, errors next to the fields.
    page.get_by_role("link", name="Add bookmark").first.click()
    page.get_by_label("Address").fill("not a link")
    page.get_by_role("button", name="Add bookmark").click()
    expect(page.locator("#url-error")).to_have_text(
        re.compile(r"Enter an http:// or https:// address\.$")
    )
    expect(page.locator("#title-error")).to_be_visible()
    expect(page.get_by_label("Address")).to_have_attribute("aria-invalid", "true")
    shoot(page, artefacts, "04-add-errors")
    page.get_by_label("Address").fill("https://www.postgresql.org/docs/")
    page.get_by_label("Title").fill("PostgreSQL manual")
    page.get_by_label("Tags (optional)").fill("databases, SQL reference")
    page.get_by_label("Notes (optional)").fill("Chapter 13: concurrency control")
    page.get_by_role("button", name="Add bookmark").click()
    page.wait_for_url(re.compile(r"/bookmarks/\d+$"))
    detail_url = page.url
    assert page.get_by_role("heading", level=1).inner_text() == "PostgreSQL manual"
    assert page.locator(".facts .tag").all_inner_texts() == [
        "databases",
        "reference",
        "sql",
    ]
    shoot(page, artefacts, "05-bookmark")

    # Listed first on the index, with its tags.
    page.get_by_role("link", name="All", exact=True).click()
    page.wait_for_url(base + "/")
    assert titles(page)[0] == "PostgreSQL manual"
    assert "4 bookmarks" in page.locator(".meta").inner_text()

    # Edit it.
    page.goto(detail_url)
    page.get_by_role("link", name="Edit").click()
    expect(page.get_by_label("Tags (optional)")).to_have_value(
        "databases reference sql"
    )
    page.get_by_label("Title").fill("PostgreSQL 17 manual")
    page.get_by_label("Tags (optional)").fill("databases postgres")
    shoot(page, artefacts, "06-edit")
    page.get_by_role("button", name="Save changes").click()
    page.wait_for_url(detail_url)
    assert page.get_by_role("heading", level=1).inner_text() == "PostgreSQL 17 manual"
    assert page.locator(".facts .tag").all_inner_texts() == ["databases", "postgres"]

    # Search for it, with the button.
    page.get_by_role("link", name="All", exact=True).click()
    page.get_by_label("Search bookmarks").fill("concurrency")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url(re.compile(r"/\?q=concurrency$"))
    assert (
        page.get_by_role("heading", level=1).inner_text()
        == "Search results for “concurrency”"
    )
    assert titles(page) == ["PostgreSQL 17 manual"]
    shoot(page, artefacts, "07-search")
    page.get_by_label("Search bookmarks").fill("cobol")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url(re.compile(r"/\?q=cobol$"))
    assert page.locator(".empty").inner_text().startswith("No bookmarks match “cobol”.")
    shoot(page, artefacts, "08-search-empty")

    # Delete it, after a confirmation page.
    page.goto(detail_url)
    page.get_by_role("link", name="Delete").click()
    expect(heading(page)).to_have_text("Delete “PostgreSQL 17 manual”?")
    shoot(page, artefacts, "09-delete")
    page.get_by_role("button", name="Delete bookmark").click()
    page.wait_for_url(base + "/")
    assert "Deleted “PostgreSQL 17 manual”." in page.get_by_role("status").inner_text()
    assert "PostgreSQL 17 manual" not in titles(page)
    assert page.goto(detail_url).status == 404
    shoot(page, artefacts, "10-not-found")

    # Sign out: the writing pages send the visitor to sign in again.
    page.goto(base + "/")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(base + "/")
    assert page.get_by_role("link", name="Sign in").is_visible()
    page.goto(base + "/bookmarks/new")
    assert page.url.startswith(base + "/signin?next=")


def test_a_form_without_its_csrf_token_is_refused(served, page, artefacts):
    base = served.url
    sign_in(page, base)
    page.goto(base + "/bookmarks/new")
    page.get_by_label("Address").fill("https://forged.example/")
    page.get_by_label("Title").fill("Forged")
    # What a form on another site would send: no token of this session.
    page.locator("#bookmark-form input[name=csrf_token]").evaluate("e => e.remove()")
    with page.expect_response(re.compile(r"/bookmarks/new$")) as answer:
        page.get_by_role("button", name="Add bookmark").click()
    assert answer.value.status == 403
    expect(heading(page)).to_have_text("This form could not be sent")
    shoot(page, artefacts, "11-csrf-refused")
    page.goto(base + "/?q=forged")
    assert titles(page) == []


PAGES = [
    ("index", "/", False),
    ("search", "/?q=python", False),
    ("search-empty", "/?q=cobol", False),
    ("tag", "/?tag=web", False),
    ("bookmark", "/bookmarks/1", False),
    ("tags", "/tags", False),
    ("signin", "/signin", False),
    ("not-found", "/no/such/page", False),
    ("index-signed-in", "/", True),
    ("add", "/bookmarks/new", True),
    ("edit", "/bookmarks/1/edit", True),
    ("delete", "/bookmarks/1/delete", True),
]


def test_every_page_passes_axe_and_fits_a_phone(served, page, axe, artefacts):
    base = served.url
    problems = []
    signed_in = False
    for name, path, needs_user in PAGES:
        if needs_user and not signed_in:
            sign_in(page, base)
            signed_in = True
        for viewport in (None, PHONE):
            if viewport:
                page.set_viewport_size(viewport)
            page.goto(base + path)
            if viewport:
                width = page.evaluate(
                    "[document.documentElement.scrollWidth, window.innerWidth]"
                )
                if width[0] > width[1]:
                    problems.append(
                        f"{path}: {width[0]}px wide on a {width[1]}px phone"
                    )
                shoot(page, artefacts, f"phone-{name}")
                page.set_viewport_size(DESKTOP)
            else:
                problems += [f"{path}: {line}" for line in run_axe(page, axe)]
    # The form with its errors shown, and the sign-in error.
    page.goto(base + "/bookmarks/new")
    page.get_by_role("button", name="Add bookmark").click()
    expect(page.locator("#url-error")).to_be_visible()
    page.wait_for_load_state()
    problems += [f"add (errors): {line}" for line in run_axe(page, axe)]
    assert not problems, "\n".join(problems)
