from __future__ import annotations

import pytest
from click.testing import CliRunner

from framework.apps import apps
from framework.conf import settings


@pytest.fixture
def configure(monkeypatch):
    """Configure settings for one test; reset them (and the app registry) after."""
    monkeypatch.setenv("FRAMEWORK_APP", "tests.apps.wsgiapp:app")

    def _configure(**options):
        settings.reset()
        settings.configure(**options)
        apps.reset()
        return settings

    yield _configure
    settings.reset()
    apps.reset()


@pytest.fixture
def runner():
    return CliRunner()
