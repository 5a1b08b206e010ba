"""Settings: defaults, settings module, configure(), environment, overrides."""

from __future__ import annotations

import asyncio
import os
import unittest

import pytest

from framework import signals
from framework.conf import DEFAULTS
from framework.conf import ImproperlyConfigured
from framework.conf import Settings
from framework.conf import override_settings
from framework.conf import settings
from framework.testing import capture


@pytest.fixture
def fresh(monkeypatch):
    """Resolve the settings anew in the test; put the old ones back after."""
    saved = settings._wrapped
    for key in list(os.environ):
        if key.startswith("FRAMEWORK_") and key != "FRAMEWORK_DISPATCH_DEBUG":
            monkeypatch.delenv(key)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    settings.reset()
    yield settings
    settings.reset()
    settings._wrapped = saved


def test_documented_defaults(fresh):
    assert fresh.DEBUG is False
    assert fresh.ALLOWED_HOSTS == ["localhost", "127.0.0.1", "[::1]"]
    assert fresh.MAX_CONTENT_LENGTH == 2_621_440
    assert fresh.DEFAULT_CHARSET == "utf-8"
    assert fresh.TEMPLATE_DIRS == []
    for name, value in DEFAULTS.items():
        assert getattr(fresh, name) == value
    assert repr(fresh._wrapped) == "<Settings from defaults>"


def test_defaults_are_copied(fresh):
    fresh.ALLOWED_HOSTS.append("mutated")
    assert DEFAULTS["ALLOWED_HOSTS"] == ["localhost", "127.0.0.1", "[::1]"]


def test_unknown_setting_says_how_to_fix(fresh):
    with pytest.raises(AttributeError, match="There is no setting 'NOPE'"):
        fresh.NOPE  # noqa: B018


def test_settings_module_from_the_environment(fresh, tmp_path, monkeypatch):
    (tmp_path / "conf_test_module.py").write_text(
        "DEBUG = True\nALLOWED_HOSTS = ['example.com']\nlower = 1\nEXTRA = 'x'\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("FRAMEWORK_SETTINGS_MODULE", "conf_test_module")
    assert fresh.DEBUG is True
    assert fresh.ALLOWED_HOSTS == ["example.com"]
    assert fresh.EXTRA == "x"
    assert fresh.MAX_FORM_FIELDS == 1000
    assert "lower" not in dir(fresh)
    assert "EXTRA" in dir(fresh)
    assert repr(fresh._wrapped) == "<Settings from conf_test_module>"


def test_missing_settings_module(fresh, monkeypatch):
    monkeypatch.setenv("FRAMEWORK_SETTINGS_MODULE", "no_such_settings_module")
    with pytest.raises(ImproperlyConfigured, match="Cannot import the settings module"):
        fresh.DEBUG  # noqa: B018


def test_configure(fresh):
    assert not fresh.configured
    fresh.configure(DEBUG=True, CUSTOM=3)
    assert fresh.configured
    assert (fresh.DEBUG, fresh.CUSTOM, fresh.DEFAULT_CHARSET) == (True, 3, "utf-8")
    with pytest.raises(ImproperlyConfigured, match="already configured"):
        fresh.configure(DEBUG=False)


def test_configure_rejects_lower_case_names(fresh):
    with pytest.raises(ImproperlyConfigured, match="must be upper case, got debug"):
        fresh.configure(debug=True)


@pytest.mark.parametrize(
    ("name", "raw", "expected"),
    [
        ("DEBUG", "1", True),
        ("DEBUG", "false", False),
        ("DEBUG", "on", True),
        ("ALLOWED_HOSTS", "a.example, b.example", ["a.example", "b.example"]),
        ("ALLOWED_HOSTS", '["x", "y"]', ["x", "y"]),
        ("MAX_CONTENT_LENGTH", "10", 10),
        ("SECRET_KEY", "s3cret", "s3cret"),
        ("NEW_THING", "plain", "plain"),
        ("NEW_JSON", '{"a": 1}', {"a": 1}),
    ],
)
def test_environment_overrides(fresh, monkeypatch, name, raw, expected):
    monkeypatch.setenv(f"FRAMEWORK_{name}", raw)
    assert getattr(fresh, name) == expected


def test_environment_overrides_win_over_configure(fresh, monkeypatch):
    monkeypatch.setenv("FRAMEWORK_DEBUG", "0")
    fresh.configure(DEBUG=True)
    assert fresh.DEBUG is False


@pytest.mark.parametrize(
    ("name", "raw", "message"),
    [
        ("DEBUG", "maybe", "is not a boolean"),
        ("MAX_CONTENT_LENGTH", "lots", "is not valid JSON"),
        ("MAX_CONTENT_LENGTH", "", "is empty; give a number"),
    ],
)
def test_bad_environment_values(fresh, monkeypatch, name, raw, message):
    monkeypatch.setenv(f"FRAMEWORK_{name}", raw)
    with pytest.raises(ImproperlyConfigured, match=message):
        fresh.DEBUG  # noqa: B018


def test_database_url(fresh, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@h/db")
    assert fresh.DATABASES["default"] == "postgresql://u@h/db"


def test_database_url_keeps_options(fresh, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@h/db")
    fresh.configure(DATABASES={"default": {"URL": "sqlite://", "POOL": 3}})
    assert fresh.DATABASES["default"] == {"URL": "postgresql://u@h/db", "POOL": 3}


# override_settings --------------------------------------------------------------


def test_override_as_context_manager_sends_setting_changed():
    before = settings.DEBUG
    with capture(signals.setting_changed) as calls:
        with override_settings(DEBUG=not before, BRAND_NEW="x") as override:
            assert settings.DEBUG is (not before)
            assert settings.BRAND_NEW == "x"
            assert isinstance(override, override_settings)
        assert settings.DEBUG is before
        assert not hasattr(settings._wrapped, "BRAND_NEW")
    assert [(c.sender, c.kwargs) for c in calls] == [
        (Settings, {"setting": "DEBUG", "value": not before, "enter": True}),
        (Settings, {"setting": "BRAND_NEW", "value": "x", "enter": True}),
        (Settings, {"setting": "DEBUG", "value": before, "enter": False}),
        (Settings, {"setting": "BRAND_NEW", "value": None, "enter": False}),
    ]


def test_override_nests():
    with override_settings(SECRET_KEY="outer"):
        with override_settings(SECRET_KEY="inner"):
            assert settings.SECRET_KEY == "inner"
        assert settings.SECRET_KEY == "outer"


def test_override_restores_after_an_exception():
    before = settings.MAX_FORM_FIELDS
    with pytest.raises(ValueError, match="inside"):
        with override_settings(MAX_FORM_FIELDS=1):
            raise ValueError("inside")
    assert settings.MAX_FORM_FIELDS == before


@override_settings(SECRET_KEY="decorated")
def test_override_as_function_decorator():
    assert settings.SECRET_KEY == "decorated"


def test_override_decorates_coroutine_functions():
    @override_settings(SECRET_KEY="async")
    async def read():
        return settings.SECRET_KEY

    assert asyncio.run(read()) == "async"
    assert settings.SECRET_KEY != "async"


@pytest.fixture
@override_settings(SECRET_KEY="fixture")
def overridden_in_a_fixture():
    yield settings.SECRET_KEY


def test_override_decorates_generator_fixtures(overridden_in_a_fixture):
    assert overridden_in_a_fixture == "fixture"
    assert settings.SECRET_KEY == "fixture"


def test_override_decorated_generator_restores_when_done():
    @override_settings(SECRET_KEY="gen")
    def generate():
        yield settings.SECRET_KEY
        return "done"

    items = generate()
    assert settings.SECRET_KEY != "gen"
    assert next(items) == "gen"
    with pytest.raises(StopIteration, match="done"):
        next(items)
    assert settings.SECRET_KEY != "gen"


@override_settings(SECRET_KEY="class")
class TestOverrideAsClassDecorator:
    def test_method_sees_it(self):
        assert settings.SECRET_KEY == "class"

    def helper(self):
        return settings.SECRET_KEY


def test_class_decorator_leaves_other_methods():
    assert TestOverrideAsClassDecorator().helper() != "class"


class InheritedChecks:
    def setup_method(self, method):
        self.at_setup = (method.__name__, settings.SECRET_KEY)

    def teardown_method(self):
        assert settings.SECRET_KEY == "subclass"

    def test_inherited_method_takes_fixtures(self, tmp_path):
        assert tmp_path.is_dir()
        assert settings.SECRET_KEY == "subclass"

    def test_inherited_method_sees_the_subclass_override(self):
        assert self.at_setup == (
            "test_inherited_method_sees_the_subclass_override",
            "subclass",
        )
        assert settings.SECRET_KEY == "subclass"


@override_settings(SECRET_KEY="subclass")
class TestInheritedMethods(InheritedChecks):
    pass


def test_class_decorator_subclass_and_method_overrides_win():
    seen = []

    @override_settings(SECRET_KEY="base", MAX_FORM_FIELDS=5)
    class Base:
        def test_read(self):
            seen.append((settings.SECRET_KEY, settings.MAX_FORM_FIELDS))

        def teardown_method(self, method):
            seen.append(("teardown", settings.SECRET_KEY))

    class Plain(Base):
        pass

    @override_settings(SECRET_KEY="sub")
    class Sub(Base):
        @override_settings(MAX_FORM_FIELDS=7)
        def test_own(self):
            seen.append((settings.SECRET_KEY, settings.MAX_FORM_FIELDS))

    Base().test_read()
    Plain().test_read()
    Sub().test_read()
    Sub().test_own()
    Sub().teardown_method(None)
    assert seen == [
        ("base", 5),
        ("base", 5),
        ("sub", 5),
        ("sub", 7),
        ("teardown", "sub"),
    ]
    assert settings.SECRET_KEY == ""
    assert Sub.test_own.__name__ == "test_own"


def test_stacked_class_decorators_merge_and_the_outer_wins():
    @override_settings(SECRET_KEY="outer", DEBUG=True)
    @override_settings(SECRET_KEY="inner", MAX_FORM_FIELDS=3)
    class Stacked:
        def test_read(self):
            return settings.SECRET_KEY, settings.DEBUG, settings.MAX_FORM_FIELDS

    with capture(signals.setting_changed) as calls:
        assert Stacked().test_read() == ("outer", True, 3)
    # One override per call: each setting is entered and left once.
    assert len(calls) == 6


def test_class_decorator_wraps_coroutine_methods_only_once():
    @override_settings(SECRET_KEY="async")
    class Base:
        async def test_read(self):
            return settings.SECRET_KEY

    @override_settings(SECRET_KEY="async sub")
    class Sub(Base):
        pass

    assert Sub.test_read is Base.test_read
    assert asyncio.run(Base().test_read()) == "async"
    assert asyncio.run(Sub().test_read()) == "async sub"


@override_settings(SECRET_KEY="unittest")
class OverrideUnitTest(unittest.TestCase):
    def setUp(self):
        self.seen_in_setup = settings.SECRET_KEY

    def test_setup_and_test_see_it(self):
        assert self.seen_in_setup == "unittest"
        assert settings.SECRET_KEY == "unittest"


def test_failing_setting_changed_receiver_restores_and_raises():
    def refuse(**kwargs):
        if kwargs["enter"]:
            raise RuntimeError("refused")

    before = settings.SECRET_KEY
    with signals.setting_changed.connected_to(refuse):
        with pytest.raises(RuntimeError, match="refused"):
            with override_settings(SECRET_KEY="never"):
                pass  # pragma: no cover
    assert settings.SECRET_KEY == before


def test_failing_setting_changed_receiver_on_exit_restores_then_raises():
    def refuse_exit(**kwargs):
        if not kwargs["enter"]:
            raise RuntimeError("refused on exit")

    before = settings.SECRET_KEY
    with signals.setting_changed.connected_to(refuse_exit):
        with pytest.raises(RuntimeError, match="refused on exit"):
            with override_settings(SECRET_KEY="inside"):
                assert settings.SECRET_KEY == "inside"
        assert settings.SECRET_KEY == before
        # An exception from the block wins over the receiver's.
        with pytest.raises(ValueError, match="from the block"):
            with override_settings(SECRET_KEY="inside"):
                raise ValueError("from the block")
    assert settings.SECRET_KEY == before
