"""A real browser against a real server: Debian's Chromium driven by Playwright.

- ``served``: app_example under ``framework serve`` (gunicorn) on 127.0.0.1, on
  a fresh SQLite database, started the way the README's first command starts
  it (no SECRET_KEY configured: the app makes one beside its database), with a
  user made by ``framework createuser``. One per module.
- ``chromium``: headless Chromium (``/usr/bin/chromium``, or ``$CHROMIUM``),
  launched by Playwright with ``executable_path``: nothing is downloaded. Each
  launch gets a fresh temporary profile (user-data-dir). One per module; each
  test gets its own context (cookies) from ``context``, with the app's
  Content-Security-Policy enforced (a refusal fails the test) unless it
  injects axe-core.
- ``axe``: the path of axe-core's ``axe.min.js``, from ``$AXE_CORE_PATH`` (the
  file, or a directory where ``npm install axe-core`` ran; ``.ci/run`` does).
- ``artefacts``: the screenshot directory, ``$TEST_ARTEFACTS_DIR/browser`` or
  ``artefacts/browser`` in the checkout (git-ignored).

Outside CI, a missing Chromium, Playwright or axe-core skips what needs it; in
CI (``CI`` set) it is a failure.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys

import pytest
from support import ROOT
from support import START_TIMEOUT
from support import Server
from support import subprocess_env

USERNAME = "ada"
PASSWORD = "correct horse battery"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1024, "height": 768}
TIMEOUT_MS = 30_000
"""How long a navigation, an action or an ``expect`` may wait (a loaded CI)."""


def _missing(what: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{what}: the browser tests must run in CI (.ci/run installs it)")
    pytest.skip(what)


def chromium_path() -> str | None:
    candidate = os.environ.get("CHROMIUM") or shutil.which("chromium") or ""
    return candidate if candidate and os.access(candidate, os.X_OK) else None


@pytest.fixture(scope="session")
def artefacts() -> pathlib.Path:
    base = os.environ.get("TEST_ARTEFACTS_DIR")
    directory = (pathlib.Path(base) if base else ROOT / "artefacts") / "browser"
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """app_example under gunicorn, with one user; ``.url``, ``.directory``."""
    directory = tmp_path_factory.mktemp("browser-site")
    env = {
        "DATABASE_URL": f"sqlite:///{directory / 'app_example.db'}",
        # As configured by nobody: the app keeps a key beside its database.
        "FRAMEWORK_SECRET_KEY": "",
    }
    server = Server.serve(directory, "app_example.wsgi:app", ["-w", "2"], env)
    try:
        server.wait_ready()
        # A worker answers (the port listens before the workers have booted).
        status, body = server.get("/healthz", timeout=START_TIMEOUT)
        assert status == 200, (body, server.output)
        made = subprocess.run(
            [sys.executable, "-m", "framework", "createuser", USERNAME]
            + ["--password-stdin"],
            input=PASSWORD + "\n",
            cwd=directory,
            env=subprocess_env(env),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert made.returncode == 0, made.stdout + made.stderr
        server.directory = directory
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def chromium():
    executable = chromium_path()
    if executable is None:
        _missing("Chromium is not installed (apt-get install chromium)")
    try:
        from playwright.sync_api import expect
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("Playwright is not installed (pip install -e '.[dev]')")
    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def context(chromium, request):
    # The app's Content-Security-Policy is enforced, as in a visitor's
    # browser, except in a test that injects axe-core's script (the policy
    # refuses it; the app itself runs no script).
    bypass = "axe" in request.fixturenames
    context = chromium.new_context(viewport=DESKTOP, bypass_csp=bypass)
    context.set_default_timeout(TIMEOUT_MS)
    try:
        yield context
    finally:
        context.close()


@pytest.fixture
def page(context):
    """A tab; the test fails if the page's Content-Security-Policy refused anything."""
    page = context.new_page()
    refused = []

    def note(message):
        if "Content Security Policy" in message.text:
            refused.append(message.text)

    page.on("console", note)
    yield page
    assert not refused, refused


@pytest.fixture(scope="session")
def axe() -> pathlib.Path:
    raw = os.environ.get("AXE_CORE_PATH", "")
    path = pathlib.Path(raw) if raw else None
    if path is not None and path.is_dir():
        for candidate in (
            path / "node_modules" / "axe-core" / "axe.min.js",
            path / "axe.min.js",
        ):
            if candidate.is_file():
                path = candidate
                break
    if path is None or not path.is_file():
        _missing(
            "axe-core is not installed: run `npm install axe-core` in a directory"
            " and set AXE_CORE_PATH to it"
        )
    return path


def run_axe(page, axe_path: pathlib.Path) -> list[str]:
    """Run axe-core on the page; return one line per violation."""
    page.add_script_tag(path=str(axe_path))
    result = page.evaluate(
        "async () => await axe.run(document, {resultTypes: ['violations']})"
    )
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at"
        f" {[node['target'] for node in v['nodes']][:3]}"
        for v in result["violations"]
    ]
