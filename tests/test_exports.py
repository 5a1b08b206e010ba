"""The public API: sorted, complete __all__ lists that resolve."""

from __future__ import annotations

import importlib
import subprocess
import sys
import types

import pytest

MODULES = [
    "framework",
    "framework.app",
    "framework.apps",
    "framework.bootstrap",
    "framework.cli",
    "framework.cli.appcommands",
    "framework.cli.develop",
    "framework.cli.introspect",
    "framework.cli.project",
    "framework.conf",
    "framework.csrf",
    "framework.exceptions",
    "framework.loadtest",
    "framework.metrics",
    "framework.routing",
    "framework.security",
    "framework.sessions",
    "framework.static",
    "framework.templating",
    "framework.testing",
    "framework.testing.databases",
    "framework.testing.pytest_plugin",
    "framework.typing",
    "framework.wrappers",
]


@pytest.mark.parametrize("name", MODULES)
def test_all_is_sorted_and_resolves(name):
    module = importlib.import_module(name)
    assert module.__all__ == sorted(module.__all__)
    for export in module.__all__:
        assert hasattr(module, export), export


def test_framework_exports_every_public_name():
    import framework

    public = {
        name
        for name, value in vars(framework).items()
        if not name.startswith("_")
        and not (isinstance(value, types.ModuleType) and name != "signals")
        and name not in {"annotations"}
    }
    assert public == set(framework.__all__)


def test_web_api_is_reachable_from_the_package():
    import framework

    for name in ("App", "Request", "Response", "render_template", "url_for"):
        assert name in framework.__all__
    assert framework.signals.request_started.name == "request_started"


def test_import_framework_and_serving_a_request_skip_the_orm():
    code = (
        "import sys, framework\n"
        "from framework.testing import TestApp\n"
        "app = framework.App('x')\n"
        "app.add_route('/', lambda request: 'ok', endpoint='i')\n"
        "assert TestApp(app).get('/').text == 'ok'\n"
        "bad = [m for m in ('sqlalchemy', 'framework.orm', 'alembic', 'psycopg')"
        " if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    result = subprocess.run(
        [sys.executable, "-W", "ignore::DeprecationWarning", "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
