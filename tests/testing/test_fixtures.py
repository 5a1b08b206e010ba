"""The pytest plugin's fixtures, used in this very session."""

from __future__ import annotations

import pytest

from framework import App
from framework import signals
from framework.conf import settings as real_settings


@pytest.fixture
def app():
    app = App(__name__)
    app.add_route("/", lambda request: "fixture app", endpoint="index")
    return app


def test_client_fixture(client):
    assert client.get("/").text == "fixture app"


def test_settings_fixture_sets_and_deletes(settings, signal_capture):
    calls = signal_capture(signals.setting_changed)
    settings.MAX_FORM_FIELDS = 3
    assert real_settings.MAX_FORM_FIELDS == 3
    assert settings.MAX_FORM_FIELDS == 3
    settings.MAX_FORM_FIELDS = 4
    del settings.SECRET_KEY
    with pytest.raises(AttributeError, match="SECRET_KEY"):
        real_settings.SECRET_KEY  # noqa: B018
    calls.assert_sent(
        signals.setting_changed, setting="MAX_FORM_FIELDS", value=3, enter=True
    )


def test_settings_fixture_refuses_to_delete_a_missing_setting(settings):
    with pytest.raises(AttributeError, match="There is no setting 'NOT_A_SETTING'"):
        del settings.NOT_A_SETTING
    settings.NEW_ONE = 1
    del settings.NEW_ONE
    with pytest.raises(AttributeError, match="NEW_ONE"):
        real_settings.NEW_ONE  # noqa: B018


def test_settings_fixture_restored():
    assert real_settings.MAX_FORM_FIELDS == 1000
    assert real_settings.SECRET_KEY == ""
    assert not hasattr(real_settings, "NEW_ONE")


def test_signal_capture_fixture(signal_capture):
    signal = signals.template_rendered
    calls = signal_capture(signal, sender="me")
    signal.send("me", template=None, context={})
    signal.send("other", template=None, context={})
    assert len(calls) == 1


def test_settings_fixture_restores_in_reverse_order_with_setting_changed():
    from framework.testing import capture
    from framework.testing.pytest_plugin import SettingsFixture

    fixture = SettingsFixture()
    with capture(signals.setting_changed) as calls:
        fixture.SECRET_KEY = "one"
        fixture.SECRET_KEY = "two"
        fixture.BRAND_NEW = 1
        del fixture.BRAND_NEW
        fixture._restore()
    assert real_settings.SECRET_KEY == ""
    assert not hasattr(real_settings, "BRAND_NEW")
    assert [
        (c.kwargs["setting"], c.kwargs["value"], c.kwargs["enter"]) for c in calls
    ] == [
        ("SECRET_KEY", "one", True),
        ("SECRET_KEY", "two", True),
        ("BRAND_NEW", 1, True),
        ("BRAND_NEW", None, True),
        ("BRAND_NEW", 1, False),
        ("BRAND_NEW", None, False),
        ("SECRET_KEY", "one", False),
        ("SECRET_KEY", "", False),
    ]
