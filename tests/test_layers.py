"""DESIGN.md's layer arrows, checked (import-linter checks the rest in CI)."""

from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

import framework

PACKAGE_DIR = pathlib.Path(framework.__file__).parent


def imported_modules(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            yield ("." * node.level) + (node.module or "")


def test_dispatch_imports_only_the_standard_library():
    modules = set(imported_modules(PACKAGE_DIR / "dispatch.py"))
    assert modules
    outside = {
        name
        for name in modules
        if name.startswith(".") or name.split(".")[0] not in sys.stdlib_module_names
    }
    assert outside == {"__future__"} or outside == set(), outside


def run_python(code):
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )


def test_import_framework_leaves_the_orm_out():
    result = run_python(
        "import sys, framework, framework.signals, framework.conf\n"
        "heavy = [m for m in ('sqlalchemy', 'alembic', 'psycopg', 'framework.orm')"
        " if m in sys.modules]\n"
        "print(heavy)"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_serving_a_request_leaves_the_orm_out():
    result = run_python(
        "import sys, io, framework\n"
        "app = framework.App(__name__)\n"
        "app.route('/')(lambda request: 'hi')\n"
        "environ = {'REQUEST_METHOD': 'GET', 'PATH_INFO': '/', 'SERVER_NAME':"
        " 'localhost', 'SERVER_PORT': '80', 'wsgi.url_scheme': 'http',"
        " 'wsgi.input': io.BytesIO(), 'HTTP_HOST': 'localhost'}\n"
        "body = app(environ, lambda status, headers, exc_info=None: None)\n"
        "print(b''.join(body)); body.close()\n"
        "print('sqlalchemy' in sys.modules)"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["b'hi'", "False"]


def test_the_package_never_imports_the_checkout():
    # bench/, app_example/ and tests/ are not in the wheel (DESIGN.md).
    found = [
        (path.relative_to(PACKAGE_DIR).as_posix(), name)
        for path in PACKAGE_DIR.rglob("*.py")
        for name in imported_modules(path)
        if name.split(".")[0] in ("bench", "app_example", "tests", "support")
    ]
    assert found == []


def test_metrics_imports_the_standard_library_dispatch_and_signals_only():
    for path in (PACKAGE_DIR / "metrics").glob("*.py"):
        outside = {
            name
            for name in imported_modules(path)
            if not name.startswith(".")
            and name.split(".")[0] not in sys.stdlib_module_names
        }
        relative = {name for name in imported_modules(path) if name.startswith("..")}
        assert outside == set(), (path.name, outside)
        assert relative <= {"..", "..dispatch"}, (path.name, relative)


def test_the_orm_without_sqlalchemy_says_which_extra_to_install():
    code = (
        "import sys\n"
        "sys.modules['sqlalchemy'] = None  # as if the orm extra were missing\n"
        "try:\n"
        "    import framework.orm\n"
        "except ModuleNotFoundError as exc:\n"
        "    print(exc.name, '|', exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    name, _, message = result.stdout.strip().partition(" | ")
    assert name == "sqlalchemy", result.stderr
    assert "pip install 'framework[orm]'" in message
