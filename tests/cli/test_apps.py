from __future__ import annotations

import pytest

from framework.apps import AppConfig
from framework.apps import Apps
from framework.apps import apps
from framework.conf import ImproperlyConfigured


def test_registry_follows_installed_apps(configure):
    configure(INSTALLED_APPS=["tests.apps.hooks", "tests.apps.library"])
    configs = apps.get_app_configs()
    assert [c.label for c in configs] == ["hooks", "library"]
    hooks, library = configs
    assert repr(library) == "<AppConfig 'library' (tests.apps.library)>"
    assert library.path.endswith("tests/apps/library")
    assert library.models_module.__name__ == "tests.apps.library.models"
    assert hooks.models_module is None and hooks.get_models() == []
    assert not library.has_migrations
    assert library.migrations_module == "tests.apps.library.migrations"
    assert apps.ready
    apps.import_modules()
    assert hooks.management_module.__name__ == "tests.apps.hooks.management"
    assert apps.get_app_config("hooks") is hooks
    with pytest.raises(LookupError, match="No installed app with label 'nope'"):
        apps.get_app_config("nope")
    configure(INSTALLED_APPS=["tests.apps.journal"])
    assert [c.label for c in apps.get_app_configs()] == ["journal"]
    assert apps.get_app_config("journal").has_migrations


@pytest.mark.parametrize(
    ("installed", "message"),
    [
        ([42], "must be dotted package names, got 42"),
        (
            ["tests.apps.not_there"],
            "Cannot import the installed app 'tests.apps.not_there'",
        ),
        (
            ["tests.apps.hooks", "tests.apps.hooks"],
            "Two installed apps have the label 'hooks'",
        ),
    ],
)
def test_bad_installed_apps(installed, message):
    with pytest.raises(ImproperlyConfigured, match=message):
        Apps().populate(installed)


def test_app_without_file_and_missing_parent(tmp_path, monkeypatch):
    (tmp_path / "nsapp").mkdir()
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = Apps()
    registry.populate(["nsapp"])
    [config] = registry.get_app_configs()
    assert config.path == str(tmp_path / "nsapp")
    assert config.import_models() is None
    assert not AppConfig("x.y", config.module).has_migrations
    registry.reset()
    assert not registry.ready
