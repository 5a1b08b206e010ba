"""The pytest plugin, run in a pytest subprocess on a small test file."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

PLUGIN_TESTS = """
import pytest

from framework import App
from framework import signals
from framework.conf import settings as real_settings


@pytest.fixture
def app():
    app = App(__name__)

    @app.route("/")
    def index(request):
        return "index"

    return app


def test_client_uses_the_app_fixture(client):
    assert client.get("/").text == "index"
    assert client.lint is True


def test_signal_capture_stops_after_the_test(signal_capture):
    calls = signal_capture(signals.setting_changed)
    signals.setting_changed.send(None, setting="X", value=1, enter=True)
    assert len(calls) == 1
    pytest.shared = calls


def test_previous_capture_stopped():
    signals.setting_changed.send(None, setting="X", value=1, enter=True)
    assert len(pytest.shared) == 1


def test_settings_fixture_overrides(settings, signal_capture):
    calls = signal_capture(signals.setting_changed)
    settings.SECRET_KEY = "plugin"
    assert real_settings.SECRET_KEY == "plugin"
    assert settings.SECRET_KEY == "plugin"
    del settings.DEBUG
    assert not hasattr(real_settings._wrapped, "DEBUG")
    calls.assert_sent(signals.setting_changed, setting="SECRET_KEY", enter=True)


def test_settings_were_restored():
    assert real_settings.SECRET_KEY == ""
    assert real_settings.DEBUG is False


def test_template_instrumentation_is_on(app, signal_capture):
    calls = signal_capture(signals.template_rendered)
    assert app.render_template("hi.html", name="<b>") == "hi &lt;b&gt;"
    sent = calls.assert_sent_once_with(signals.template_rendered)
    assert sent.sender.name == sent.kwargs["template"].name == "hi.html"
    assert sent.kwargs["context"]["name"] == "<b>"


def test_the_orm_is_not_imported():
    import sys

    assert "framework.orm" not in sys.modules
    assert "sqlalchemy" not in sys.modules
    assert "webtest" in sys.modules  # the client test above imported it
"""

NO_APP = """
def test_client_without_app(client):
    pass
"""


def run_pytest(tmp_path, name, source):
    (tmp_path / name).write_text(textwrap.dedent(source))
    (tmp_path / "templates").mkdir(exist_ok=True)
    (tmp_path / "templates" / "hi.html").write_text("hi {{ name }}")
    log = tmp_path / f"{name}.log"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("FRAMEWORK_") and key != "PYTEST_ADDOPTS"
    }
    with open(log, "w") as out:
        code = subprocess.call(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-W",
                "error",
                "-p",
                "no:cacheprovider",
                name,
            ],
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            timeout=60,
        )
    return code, log.read_text()


def test_plugin_fixtures_and_instrumentation(tmp_path):
    code, output = run_pytest(tmp_path, "test_plugin_use.py", PLUGIN_TESTS)
    assert code == 0, output
    assert "7 passed" in output


def test_client_without_app_fixture_explains(tmp_path):
    code, output = run_pytest(tmp_path, "test_no_app.py", NO_APP)
    assert code != 0
    assert "needs an 'app' fixture" in output


def test_loading_the_plugin_imports_neither_webtest_nor_the_orm(tmp_path):
    out = tmp_path / "modules.txt"
    code = (
        "import sys, framework.testing.pytest_plugin as plugin\n"
        "assert plugin.client and plugin.settings and plugin.signal_capture\n"
        "heavy = ('webtest', 'webob', 'framework.orm', 'sqlalchemy', 'jinja2',"
        " 'framework.cli', 'click', 'framework.testing.databases', 'werkzeug',"
        " 'framework.app', 'framework.dispatch', 'framework.conf')\n"
        "loaded = ' '.join(m for m in heavy if m in sys.modules)\n"
        f"open({str(out)!r}, 'w').write(loaded)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    assert out.read_text() == ""


UNRELATED_PROJECT = """
import sys


def test_nothing_of_framework_was_imported():
    loaded = [
        name
        for name in ("framework.conf", "framework.dispatch", "werkzeug", "jinja2")
        if name in sys.modules
    ]
    assert loaded == []
    assert "framework.testing.pytest_plugin" in sys.modules  # it was loaded
"""


def test_a_project_without_framework_pays_nothing_for_the_plugin(tmp_path):
    """Loaded by its entry point, the plugin imports nothing of framework."""
    code, output = run_pytest(tmp_path, "test_unrelated.py", UNRELATED_PROJECT)
    assert code == 0, output
    assert "1 passed" in output


def test_the_settings_variable_is_the_settings_one():
    from framework.conf import ENVIRONMENT_VARIABLE
    from framework.testing import pytest_plugin

    assert pytest_plugin._SETTINGS_VARIABLE == ENVIRONMENT_VARIABLE
