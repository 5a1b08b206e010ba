"""The pytest plugin of ``framework`` (loaded through the ``pytest11`` entry point).

It turns test instrumentation on for the session (``template_rendered`` is
sent) and provides fixtures:

- ``client``: a :class:`framework.testing.TestApp` (WebTest, lint on) around
  the app returned by an ``app`` fixture you define;
- ``signal_capture``: ``signal_capture(*signals, sender=None)`` starts a
  :class:`~framework.testing.SignalCapture` that stops after the test;
- ``settings``: assign ``settings.NAME = value`` (or ``del``) to override a
  setting for the test, through ``override_settings`` (so ``setting_changed``
  is sent on both ends).

It imports only ``framework.testing`` (never the ORM); WebTest is imported
when ``client`` is first used.
"""

from __future__ import annotations

import collections.abc as cabc
import typing as t

import pytest

from framework import testing
from framework.conf import override_settings
from framework.conf import settings as _settings

if t.TYPE_CHECKING:
    from framework.dispatch import Signal

__all__ = ["SettingsFixture", "client", "settings", "signal_capture"]


def pytest_configure(config: pytest.Config) -> None:
    """Turn test instrumentation on for the session."""
    testing.setup_test_environment()


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
def client(request: pytest.FixtureRequest) -> t.Any:
    """Return a WebTest client (lint on) for the ``app`` fixture's app."""
    try:
        app = request.getfixturevalue("app")
    except pytest.FixtureLookupError:
        raise pytest.UsageError(
            "The 'client' fixture needs an 'app' fixture returning your App;"
            " define one in your conftest.py."
        ) from None
    return testing.TestApp(app)
