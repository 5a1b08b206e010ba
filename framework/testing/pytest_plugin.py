"""The pytest plugin of ``framework`` (loaded through the ``pytest11`` entry point).

Configuration (``[tool.pytest.ini_options]`` in ``pyproject.toml``; the
environment variable wins over the ini value):

- ``framework_settings``: the settings module (``FRAMEWORK_SETTINGS_MODULE``);
- ``framework_app``: the application, as ``--app`` takes it
  (``FRAMEWORK_APP``), relative paths from the rootdir.

With either set, the plugin sets the project up when pytest starts, before
any test module is imported: it sets ``FRAMEWORK_SETTINGS_MODULE``, imports
the app, and runs :func:`framework.setup` (settings, ``LOGGING``, installed
apps, models, receivers). With neither, it leaves logging to pytest and does
nothing else at start-up.

It turns test instrumentation on for the session (``template_rendered`` is
sent) and provides fixtures:

- ``app``: the ``framework_app`` application (define your own ``app``
  fixture to use another);
- ``client``: a :class:`framework.testing.TestApp` (WebTest, lint on) around
  ``app``;
- ``db``: the test databases (created and migrated once per session, see
  ``framework_db_setup``); the test runs inside a transaction rolled back
  after it;
- ``transactional_db``: the test databases, committed for real (``on_commit``
  receivers run); every table is emptied after the test (``flush``, which
  sends ``post_migrate`` again);
- ``framework_db_setup`` (session): creates one test database per alias
  (a temporary SQLite file, or ``test_<name>`` on PostgreSQL), installs them
  as ``DATABASES``, migrates them, and drops them at the end;
- ``signal_capture``: ``signal_capture(*signals, sender=None)`` starts a
  :class:`~framework.testing.SignalCapture` that stops after the test;
- ``settings``: assign ``settings.NAME = value`` (or ``del``) to override a
  setting for the test, through ``override_settings`` (so ``setting_changed``
  is sent on both ends).

Loading it imports ``framework`` (the web core, werkzeug) and
``framework.testing``, never the ORM, WebTest or the command line: those are
imported by the fixtures that need them. A suite that does not use the plugin
skips it with ``-p no:framework``.
"""

from __future__ import annotations

import collections.abc as cabc
import os
import typing as t

import pytest

from framework import bootstrap
from framework import testing
from framework.conf import ENVIRONMENT_VARIABLE
from framework.conf import ImproperlyConfigured
from framework.conf import override_settings
from framework.conf import settings as _settings

if t.TYPE_CHECKING:
    from framework.dispatch import Signal

__all__ = [
    "SettingsFixture",
    "app",
    "client",
    "db",
    "framework_db_setup",
    "settings",
    "signal_capture",
    "transactional_db",
]

_NO_APP = (
    "No application for the 'app' fixture (the 'client' fixture needs an 'app'"
    ' fixture): set framework_app = "module:app" (or "path/to/app.py") under'
    " [tool.pytest.ini_options], or FRAMEWORK_APP, or define an 'app' fixture"
    " returning your App in conftest.py."
)
_NO_PROJECT = (
    "The '{fixture}' fixture needs a project with installed apps, and"
    ' INSTALLED_APPS is empty: set framework_settings = "mysite.settings" (or'
    " framework_app) under [tool.pytest.ini_options], or FRAMEWORK_SETTINGS_MODULE."
)


def pytest_addoption(parser: pytest.Parser) -> None:
    """Declare the ``framework_settings`` and ``framework_app`` ini options."""
    parser.addini(
        "framework_settings",
        "framework: the settings module (env FRAMEWORK_SETTINGS_MODULE wins)",
        default=None,
    )
    parser.addini(
        "framework_app",
        "framework: the application, module:app or path.py (env FRAMEWORK_APP wins)",
        default=None,
    )


def _option(config: pytest.Config, name: str, variable: str) -> str | None:
    value = os.environ.get(variable) or config.getini(name)
    return str(value) if value else None


def _app_spec(config: pytest.Config) -> str | None:
    return _option(config, "framework_app", "FRAMEWORK_APP")


_loaded_app: list[t.Any] = []


def _load_app(config: pytest.Config) -> t.Any:
    if not _loaded_app:
        spec = _app_spec(config)
        if spec is None:
            raise pytest.UsageError(_NO_APP)
        _loaded_app.append(bootstrap.import_app(spec, base_dir=str(config.rootpath)))
    return _loaded_app[0]


def pytest_configure(config: pytest.Config) -> None:
    """Turn test instrumentation on; set the configured project up."""
    testing.setup_test_environment()
    settings_module = _option(config, "framework_settings", ENVIRONMENT_VARIABLE)
    if settings_module is None and _app_spec(config) is None:
        bootstrap.leave_logging_alone()
        return
    if settings_module is not None:
        os.environ[ENVIRONMENT_VARIABLE] = settings_module
    try:
        if _app_spec(config) is not None:
            _load_app(config)
        bootstrap.setup()
    except ImproperlyConfigured as exc:
        raise pytest.UsageError(f"framework: {exc}") from exc


def pytest_unconfigure(config: pytest.Config) -> None:
    """Turn test instrumentation off again."""
    testing.teardown_test_environment()


class SettingsFixture:
    """Attribute access to settings; assignments last until the test ends."""

    def __init__(self) -> None:
        object.__setattr__(self, "_overrides", [])

    def __getattr__(self, name: str) -> t.Any:
        return getattr(_settings, name)

    def __setattr__(self, name: str, value: t.Any) -> None:
        self._override(name, value)

    def __delattr__(self, name: str) -> None:
        getattr(_settings, name)  # AttributeError naming a missing setting
        self._override(name, None)
        delattr(_settings._wrapped, name)

    def _override(self, name: str, value: t.Any) -> None:
        override = override_settings(**{name: value})
        override.__enter__()
        self._overrides.append(override)

    def _restore(self) -> None:
        while self._overrides:
            self._overrides.pop().__exit__(None, None, None)


@pytest.fixture
def settings() -> cabc.Iterator[SettingsFixture]:
    """Override settings for one test: ``settings.DEBUG = True``."""
    fixture = SettingsFixture()
    try:
        yield fixture
    finally:
        fixture._restore()


@pytest.fixture
def signal_capture() -> cabc.Iterator[cabc.Callable[..., testing.SignalCapture]]:
    """Start signal captures that stop when the test ends."""
    started: list[testing.SignalCapture] = []

    def start(*signals: Signal, sender: t.Any = None) -> testing.SignalCapture:
        recorder = testing.capture(*signals, sender=sender).start()
        started.append(recorder)
        return recorder

    try:
        yield start
    finally:
        for recorder in started:
            recorder.stop()


@pytest.fixture
def app(pytestconfig: pytest.Config) -> t.Any:
    """Return the ``framework_app`` application (``FRAMEWORK_APP``)."""
    return _load_app(pytestconfig)


@pytest.fixture
def client(app: t.Any) -> t.Any:
    """Return a WebTest client (lint on) for the ``app`` fixture's app."""
    return testing.TestApp(app)


@pytest.fixture(scope="session")
def framework_db_setup(
    pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory
) -> cabc.Iterator[dict[str, t.Any]]:
    """Create, migrate and finally drop the session's test databases.

    Yields the ``DATABASES`` setting in force meanwhile. Override this fixture
    to use databases of your own.
    """
    if not _settings.INSTALLED_APPS:
        pytest.fail(_NO_PROJECT.format(fixture="db"), pytrace=False)
    from framework.cli import CommandError
    from framework.cli import call_command
    from framework.testing.databases import TestDatabases
    from framework.testing.databases import xdist_suffix

    databases = TestDatabases(tmp_path_factory.mktemp("framework_db"), xdist_suffix())
    try:
        try:
            databases.create()
        except ImproperlyConfigured as exc:
            pytest.fail(f"framework: {exc}", pytrace=False)
        for alias in databases.databases:
            try:
                call_command(
                    "migrate",
                    app=_app_spec(pytestconfig),
                    database=alias,
                    interactive=False,
                    verbosity=0,
                )
            except CommandError as exc:
                pytest.fail(
                    f"framework: migrating the test database {alias!r} failed:"
                    f" {exc.format_message()}",
                    pytrace=False,
                )
        yield databases.databases
    finally:
        databases.destroy()


@pytest.fixture
def db(request: pytest.FixtureRequest, framework_db_setup: dict[str, t.Any]) -> t.Any:
    """Give the test the test databases, inside a transaction rolled back after it.

    The test's own ``atomic()`` blocks are savepoints and its ``on_commit``
    callbacks never run: use ``transactional_db`` for those.
    """
    if "transactional_db" in request.fixturenames:
        request.getfixturevalue("transactional_db")
        yield None
        return
    from framework.testing.databases import rolled_back

    with rolled_back(framework_db_setup):
        yield None


@pytest.fixture
def transactional_db(
    pytestconfig: pytest.Config, framework_db_setup: dict[str, t.Any]
) -> t.Any:
    """Give the test the test databases for real; empty every table after it."""
    from framework.cli import call_command
    from framework.orm import connections

    try:
        yield None
    finally:
        connections.close_all()
        for alias in framework_db_setup:
            call_command(
                "flush",
                app=_app_spec(pytestconfig),
                database=alias,
                interactive=False,
                verbosity=0,
            )
        connections.close_all()
