"""``framework new NAME``: the project it writes, and what it refuses."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest

from framework.cli import main
from framework.cli.project import TEMPLATE_DIR

from .conftest import framework_env

EXPECTED = {
    ".dockerignore",
    ".gitignore",
    "Dockerfile",
    "README.md",
    "pyproject.toml",
    "wsgi.py",
    "wheels/README.md",
    "mysite/__init__.py",
    "mysite/models.py",
    "mysite/views.py",
    "mysite/receivers.py",
    "mysite/settings.py",
    "mysite/migrations/__init__.py",
    "mysite/migrations/0001_initial.py",
    "mysite/templates/index.html",
    "tests/test_notes.py",
}


@pytest.fixture
def new_project(runner, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    def create(name="mysite"):
        result = runner.invoke(main, ["new", name])
        assert result.exit_code == 0, result.output
        return tmp_path / name, result

    return create


def test_new_writes_a_complete_project(new_project, tmp_path):
    project, result = new_project()
    files = {
        path.relative_to(project).as_posix()
        for path in project.rglob("*")
        if path.is_file()
    }
    assert files == EXPECTED
    for path in project.rglob("*"):
        if path.is_file():
            text = path.read_text()
            assert "{{ project_name }}" not in text and "{{ secret_key }}" not in text
            assert "{{ docs_url }}" not in text
    assert f"Created the project mysite in {project}" in result.output
    settings_py = (project / "mysite" / "settings.py").read_text()
    assert 'INSTALLED_APPS = ["mysite"]' in settings_py
    assert re.search(r'SECRET_KEY = "dev-only-[\w-]{40,}"', settings_py)
    readme = (project / "README.md").read_text()
    assert "framework serve " in readme and "python -m pytest " in readme
    pyproject = (project / "pyproject.toml").read_text()
    assert 'framework_settings = "mysite.settings"' in pyproject
    # Nothing of the template's machinery is copied.
    assert not any(name.endswith("-tpl") for name in files)


def test_each_project_gets_its_own_secret_key(new_project):
    first, _ = new_project("first")
    second, _ = new_project("second")

    def key(project):
        text = (project / project.name / "settings.py").read_text()
        return re.search(r'SECRET_KEY = "(.*)"', text).group(1)

    assert key(first) != key(second)


def test_new_never_overwrites(runner, new_project, tmp_path):
    project, _ = new_project()
    (project / "wsgi.py").write_text("# mine\n")
    result = runner.invoke(main, ["new", "mysite"])
    assert result.exit_code == 2
    assert f"Error: {project} already exists; framework new never overwrites" in (
        result.stderr
    )
    assert (project / "wsgi.py").read_text() == "# mine\n"
    (tmp_path / "taken").write_text("a file")
    assert runner.invoke(main, ["new", "taken"]).exit_code == 2


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("my-site", "'my-site' is not a valid project name"),
        ("9lives", "'9lives' is not a valid project name"),
        ("class", "'class' is not a valid project name"),
        ("json", "'json' is the name of a module Python already finds"),
        ("framework", "'framework' is the name of a module Python already finds"),
        # The package would clash with wsgi.py, tests/ or wheels/ beside it.
        ("wsgi", "'wsgi' is taken: the project's package sits beside its own"),
        ("tests", "'tests' is taken: the project's package sits beside its own"),
        ("wheels", "'wheels' is taken: the project's package sits beside its own"),
    ],
)
def test_new_refuses_names_that_cannot_be_a_package(
    runner, tmp_path, monkeypatch, name, message
):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(main, ["new", name])
    assert result.exit_code == 2
    assert message in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_the_template_ships_in_the_package():
    assert TEMPLATE_DIR.parent.name == "framework"
    assert (TEMPLATE_DIR / "project_name" / "models.py-tpl").is_file()


def test_the_projects_migration_matches_its_models_and_lints_clean(new_project):
    project, _ = new_project()
    check = subprocess.run(
        [sys.executable, "-m", "framework", "makemigrations", "--check"],
        cwd=project,
        env=framework_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "No changes detected." in check.stdout
    assert not (project / "mysite.db").exists()
    for tool, argv in (
        ("ruff", ["check", "."]),
        ("ruff", ["format", "--check", "."]),
        ("hadolint", ["Dockerfile"]),
    ):
        executable = shutil.which(tool)
        if executable is None:
            continue
        result = subprocess.run(
            [executable, *argv], cwd=project, capture_output=True, text=True
        )
        assert result.returncode == 0, (tool, result.stdout, result.stderr)


def test_the_image_never_serves_the_dev_only_key(new_project, tmp_path):
    project, _ = new_project()
    dockerfile = (project / "Dockerfile").read_text()
    assert '    FRAMEWORK_SECRET_KEY=""\n' in dockerfile
    # What the container runs, with the image's environment: refused.
    serve = subprocess.run(
        [sys.executable, "-m", "framework", "serve", "--bind", "127.0.0.1:0"],
        cwd=project,
        env=framework_env(FRAMEWORK_SECRET_KEY="", FRAMEWORK_DEBUG="0"),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert serve.returncode == 1, serve.stdout + serve.stderr
    assert "Error: ImproperlyConfigured: SECRET_KEY is empty." in serve.stderr
