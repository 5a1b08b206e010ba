"""framework.setup() and the application finders (framework.bootstrap)."""

from __future__ import annotations

import itertools
import pathlib
import subprocess
import sys
import textwrap

import pytest
from support import subprocess_env

from framework import bootstrap
from framework.bootstrap import AppNotFoundError
from framework.bootstrap import discover_app
from framework.bootstrap import import_app

APPS = pathlib.Path(__file__).resolve().parent / "apps"
_names = itertools.count()

APP_SOURCE = """
from framework import App

{name} = App(__name__)


@{name}.route("/")
def index(request):
    return "{text}"
"""


def unique(prefix):
    return f"{prefix}_{next(_names)}_{id(object())}"


def body_of(app, path="/"):
    from framework.testing import TestApp

    return TestApp(app).get(path).text


@pytest.fixture
def restore_sys_path(monkeypatch):
    monkeypatch.setattr(sys, "path", list(sys.path))


def test_import_app_takes_a_file_path(tmp_path, restore_sys_path):
    module = unique("fileapp")
    (tmp_path / f"{module}.py").write_text(APP_SOURCE.format(name="app", text="file"))
    app = import_app(f"{module}.py", base_dir=str(tmp_path))
    assert body_of(app) == "file"
    assert import_app(f"{tmp_path}/{module}.py:app") is app


def test_import_app_takes_a_path_and_a_factory(tmp_path, restore_sys_path):
    module = unique("factoryapp")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / f"{module}.py").write_text(
        "from framework import App\n\n\n"
        "def create_app():\n"
        "    app = App(__name__)\n"
        "    app.route('/')(lambda request: 'made')\n"
        "    return app\n"
    )
    spec = f"src/{module}.py:create_app()"
    assert body_of(import_app(spec, base_dir=str(tmp_path))) == "made"
    # Without an attribute, the create_app() factory is found and called.
    assert body_of(import_app(f"src/{module}.py", base_dir=str(tmp_path))) == "made"


def test_a_file_in_a_package_is_imported_as_part_of_it(tmp_path, restore_sys_path):
    package = unique("pkg")
    (tmp_path / package).mkdir()
    (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / package / "web.py").write_text(
        APP_SOURCE.format(name="application", text="in a package")
    )
    app = import_app(f"{package}/web.py", base_dir=str(tmp_path))
    assert app.import_name == f"{package}.web"
    assert body_of(app) == "in a package"


def test_import_app_errors_name_what_is_missing(tmp_path, restore_sys_path):
    with pytest.raises(AppNotFoundError, match="No such file 'nope.py'"):
        import_app("nope.py", base_dir=str(tmp_path))
    module = unique("noapp")
    (tmp_path / f"{module}.py").write_text("value = 1\n")
    with pytest.raises(AppNotFoundError, match=r"has none of app, application, crea"):
        import_app(f"{module}.py", base_dir=str(tmp_path))
    with pytest.raises(AppNotFoundError, match="no attribute 'missing'"):
        import_app(f"{module}.py:missing", base_dir=str(tmp_path))
    with pytest.raises(AppNotFoundError, match="not a WSGI application"):
        import_app(f"{module}:value", base_dir=str(tmp_path))
    with pytest.raises(AppNotFoundError, match="Invalid attribute"):
        import_app(f"{module}:value.x", base_dir=str(tmp_path))
    (tmp_path / "my-app.py").write_text("")
    with pytest.raises(AppNotFoundError, match="is not a module name"):
        import_app("my-app.py", base_dir=str(tmp_path))


def test_discovery_prefers_wsgi_py_to_app_py(tmp_path):
    assert discover_app(str(tmp_path)) is None
    (tmp_path / "app.py").write_text("")
    assert discover_app(str(tmp_path)) == "app.py"
    (tmp_path / "wsgi.py").write_text("")
    assert discover_app(str(tmp_path)) == "wsgi.py"


def test_configure_logging_refuses_a_bad_dictionary():
    with pytest.raises(bootstrap.ImproperlyConfigured, match="dictConfig dictionary"):
        bootstrap.configure_logging(["not", "a", "dict"])  # type: ignore[arg-type]
    with pytest.raises(bootstrap.ImproperlyConfigured, match="LOGGING setting is inv"):
        bootstrap.configure_logging({"version": 1, "handlers": {"h": {"class": "x"}}})


def run_python(code, env=None):
    """Run ``code`` in a fresh interpreter with tests/apps on the path."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=subprocess_env(env, [APPS], clean=True),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_app_sets_the_project_up_on_its_first_request():
    result = run_python(
        """
        from framework.testing import TestApp
        import reqcount_app, sys
        assert "reqcount.receivers" not in sys.modules
        client = TestApp(reqcount_app.app)
        client.get("/")
        print(client.get("/count").json["started"])
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["2"]
    # The default LOGGING: the receiver's log.info reaches stderr.
    assert "[INFO] reqcount: reqcount: request 1 started: /" in result.stderr


def test_setup_loads_receivers_once_and_logging_once():
    result = run_python(
        """
        import logging, sys
        import framework
        framework.setup()
        framework.setup()
        from reqcount import receivers
        from framework import signals
        names = [info.name for info in signals.request_started.connections()]
        print(names.count("reqcount.receivers.count_request"))
        print(len(logging.getLogger().handlers), logging.getLogger().level)
        print(logging.getLogger("sqlalchemy").level)
        print(framework.bootstrap.is_ready())
        """,
        {"FRAMEWORK_SETTINGS_MODULE": "reqcount_settings"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1", "1", "20", "30", "True"]


def test_an_empty_logging_setting_leaves_logging_alone():
    result = run_python(
        """
        import logging, framework
        framework.setup()
        print(len(logging.getLogger().handlers))
        """,
        {"FRAMEWORK_SETTINGS_MODULE": "reqcount_settings", "FRAMEWORK_LOGGING": "{}"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["0"]


def test_a_logging_setting_keeps_the_loggers_that_exist_unless_it_says_so():
    code = """
        import logging, framework
        before = logging.getLogger("made.before.setup")
        framework.setup()
        print(before.disabled)
        """
    for logging_setting, disabled in (
        ('{"root": {"level": "INFO"}}', "False"),
        ('{"root": {"level": "INFO"}, "disable_existing_loggers": true}', "True"),
    ):
        env = {
            "FRAMEWORK_SETTINGS_MODULE": "reqcount_settings",
            "FRAMEWORK_LOGGING": logging_setting,
        }
        result = run_python(code, env)
        assert result.returncode == 0, result.stderr
        assert result.stdout.split() == [disabled], logging_setting


def test_settings_read_too_early_are_read_again_from_the_module():
    result = run_python(
        """
        import os
        from framework.conf import settings
        assert settings.INSTALLED_APPS == []  # read before the module is named
        os.environ["FRAMEWORK_SETTINGS_MODULE"] = "reqcount_settings"
        import framework
        framework.setup()
        print(settings.INSTALLED_APPS)
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['reqcount']"


def test_an_override_before_the_settings_module_is_named_fails_loudly():
    # A user's natural first attempt: override DATABASES, then import the
    # app (whose module names the settings). It must not run on defaults.
    result = run_python(
        """
        from framework.conf import override_settings
        with override_settings(DATABASES={"default": "sqlite:///test.db"}):
            import reqcount_app, framework
            framework.setup()
        """
    )
    assert result.returncode != 0
    assert "ImproperlyConfigured: FRAMEWORK_SETTINGS_MODULE names" in result.stderr
    assert "'reqcount_settings', but the settings in use are the defaults" in (
        result.stderr
    )
    assert 'framework_settings = "reqcount_settings"' in result.stderr


def test_settings_from_another_module_are_refused():
    result = run_python(
        """
        import os, framework
        from framework.conf import settings
        os.environ["FRAMEWORK_SETTINGS_MODULE"] = "hooks_settings"
        settings.DEBUG
        os.environ["FRAMEWORK_SETTINGS_MODULE"] = "reqcount_settings"
        framework.setup()
        """
    )
    assert result.returncode != 0
    assert "they were read from 'hooks_settings' first" in result.stderr
