"""What ``pip install`` gives: the wheel in a fresh virtualenv, not the checkout."""

from __future__ import annotations

import json
import os
import shutil
import sysconfig
import time
import zipfile

import pytest
from support import ROOT
from support import Server
from support import free_port
from support import install_framework


def test_the_wheel_holds_the_package_only(installed_framework):
    names = zipfile.ZipFile(installed_framework.wheel).namelist()
    assert any(name.startswith("framework/") for name in names)
    for outside in ("app_example/", "bench/", "tests/"):
        assert not any(name.startswith(outside) for name in names), outside


COUNT_ONE_REQUEST = """
import os, tempfile
from werkzeug.test import create_environ
from framework import App, metrics
app = App("counted")
app.add_route("/", lambda request: "hi")
with tempfile.TemporaryDirectory() as directory:
    counters = metrics.enable(directory)
    body = app(create_environ("/"), lambda status, headers, exc_info=None: None)
    assert b"".join(body) == b"hi"
    body.close()
    snapshot = metrics.read(directory)[str(os.getpid())]
    metrics.disable()
print(metrics.COMPILED, metrics.__file__, snapshot.request_started,
      snapshot.request_finished, sum(snapshot.buckets))
"""


def test_the_wheel_counts_requests_with_its_compiled_receivers(
    installed_framework, tmp_path
):
    names = zipfile.ZipFile(installed_framework.wheel).namelist()
    assert sorted(name for name in names if "_counting" in name) == [
        f"framework/metrics/_counting{sysconfig.get_config_var('EXT_SUFFIX')}",
        "framework/metrics/_counting.pyi",
    ]
    result = installed_framework.run("python", "-c", COUNT_ONE_REQUEST, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    compiled, where, *counts = result.stdout.split()
    assert compiled == "True"
    assert where.startswith(str(installed_framework.venv))
    assert counts == ["1", "1", "1"]


def test_without_a_c_compiler_the_package_installs_and_counts_in_python(tmp_path):
    """The extension is optional: a failed build leaves the Python receivers."""
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "framework",
        source / "framework",
        ignore=shutil.ignore_patterns("*.so", "__pycache__"),
    )
    # Every compilation fails; only the framework's own dependencies.
    installed = install_framework(
        tmp_path,
        source,
        build_env={**os.environ, "CC": "false"},
        extras="",
        packages=(),
    )
    names = zipfile.ZipFile(installed.wheel).namelist()
    assert [name for name in names if "_counting" in name] == [
        "framework/metrics/_counting.pyi"
    ]
    ran = installed.run("python", "-c", COUNT_ONE_REQUEST, cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    compiled, where, *counts = ran.stdout.split()
    assert compiled == "False"
    assert where.startswith(str(installed.venv))
    assert counts == ["1", "1", "1"]


def test_the_installed_command_runs_outside_the_checkout(installed_framework, tmp_path):
    result = installed_framework.run("framework", "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "serve" in result.stdout
    where = installed_framework.run(
        "python", "-c", "import framework; print(framework.__file__)", cwd=tmp_path
    )
    assert where.stdout.strip().startswith(str(installed_framework.venv)), where


def test_the_package_metadata_stands_on_its_own(installed_framework, tmp_path):
    code = (
        "import importlib.metadata as m, json\n"
        "dist = m.distribution('framework')\n"
        "meta = dist.metadata\n"
        "print(json.dumps({\n"
        "    'license': meta['License-Expression'],\n"
        "    'classifiers': meta.get_all('Classifier'),\n"
        "    'urls': meta.get_all('Project-URL'),\n"
        "    'author': meta['Author'],\n"
        "    'files': [str(f) for f in dist.files],\n"
        "    'requires': dist.requires,\n"
        "}))\n"
    )
    result = installed_framework.run("python", "-c", code, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    meta = json.loads(result.stdout)
    assert meta["license"] == "BSD-3-Clause"
    assert "framework-0.1.0.dist-info/licenses/LICENSE" in meta["files"]
    assert not any("Flask" in classifier for classifier in meta["classifiers"])
    assert "Topic :: Internet :: WWW/HTTP :: WSGI :: Application" in meta["classifiers"]
    assert "Documentation, https://framework.readthedocs.io/" in meta["urls"]
    assert meta["author"] == "The framework authors"
    # The test extra is what a project's tests need, not this project's tools.
    test_extra = sorted(
        requirement.split(";")[0].strip()
        for requirement in meta["requires"]
        if 'extra == "test"' in requirement
    )
    assert test_extra == ["pytest>=8.0", "webtest>=3.0"]


def test_without_a_project_the_commands_say_how_to_point_at_one(
    installed_framework, tmp_path
):
    serve = installed_framework.run("framework", "serve", cwd=tmp_path)
    assert serve.returncode == 2, serve.stderr
    assert "No application found" in serve.stderr
    assert "--app path/to/app.py" in serve.stderr
    assert "app_example" not in serve.stderr + serve.stdout
    for command in (
        ["migrate"],
        ["showmigrations"],
        ["makemigrations"],
        ["flush", "--noinput"],
        ["dumpdata"],
        ["loaddata", "fixture.json"],
    ):
        result = installed_framework.run("framework", *command, cwd=tmp_path)
        assert result.returncode == 2, (command, result.stderr)
        assert "No project configured: no settings module" in result.stderr
    assert list(tmp_path.iterdir()) == []  # no database file appeared
    help_text = installed_framework.run("framework", "--help", cwd=tmp_path).stdout
    assert "Documentation: https://" in help_text
    assert "new" in help_text.split()


@pytest.mark.server
def test_a_new_project_passes_its_tests_and_serves_its_first_page(
    installed_framework, tmp_path
):
    started = time.monotonic()
    new = installed_framework.run("framework", "new", "mysite", cwd=tmp_path)
    assert new.returncode == 0, new.stderr
    project = tmp_path / "mysite"
    # The README's two commands: the tests, then the server.
    readme = (project / "README.md").read_text()
    assert "python -m pytest" in readme and "framework serve" in readme
    tests = installed_framework.run(
        "python", "-m", "pytest", "-p", "no:cacheprovider", cwd=project
    )
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "4 passed" in tests.stdout
    tested = time.monotonic()
    port = free_port()
    server = Server(
        [str(installed_framework.framework), "serve", "--bind", f"127.0.0.1:{port}"]
        + ["--workers", "2", "--graceful-timeout", "5"],
        cwd=project,
        log_path=tmp_path / "serve.log",
        env=installed_framework.env(),
        port=port,
    )
    try:
        server.wait_ready()
        status, page = server.get("/")
        served = time.monotonic()
        assert status == 200
        assert b"<h1>mysite</h1>" in page and b"No notes yet" in page
    finally:
        assert server.stop() == 0
    assert "Applied mysite.0001_initial" in server.output
    assert sorted(path.name for path in project.glob("mysite.db*")) == ["mysite.db"]
    print(
        f"framework new -> green tests: {tested - started:.1f} s;"
        f" -> first page served: {served - started:.1f} s"
    )


def dockerfile_install_step(dockerfile):
    """The shell commands of the Dockerfile's RUN that installs the project."""
    text = dockerfile.read_text().replace("\\\n", " ")
    (run,) = [line for line in text.splitlines() if "pip install" in line]
    steps = [step.strip() for step in run.removeprefix("RUN ").split(" && ")]
    return steps[: next(i for i, s in enumerate(steps) if "pip install" in s) + 1]


def test_the_projects_image_installs_framework_from_its_wheel_only(
    installed_framework, tmp_path
):
    new = installed_framework.run("framework", "new", "mysite", cwd=tmp_path)
    assert new.returncode == 0, new.stderr
    project = tmp_path / "mysite"
    steps = dockerfile_install_step(project / "Dockerfile")
    assert steps[0] == "set -- wheels/framework-*.whl"
    # The Dockerfile's own commands, with pip resolving only (--dry-run) and
    # ignoring what this virtualenv has, as in a fresh image.
    report = tmp_path / "report.json"
    pip = (
        f"{installed_framework.python} -m pip install --dry-run --ignore-installed"
        f" --quiet --report {report}"
    )
    script = " && ".join(steps).replace("pip install --no-cache-dir", pip)
    missing = installed_framework.run("sh", "-c", script, cwd=project)
    assert missing.returncode == 1
    assert missing.stderr.strip() == "No framework wheel in wheels/: see README.md"
    shutil.copy(installed_framework.wheel, project / "wheels")
    result = installed_framework.run("sh", "-c", script, cwd=project, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    installs = {
        item["metadata"]["name"].lower(): item
        for item in json.loads(report.read_text())["install"]
    }
    # The project's framework[orm] dependency is met by the wheel, never by
    # an index; the extra's dependencies come along.
    wheel_url = (project / "wheels" / installed_framework.wheel.name).as_uri()
    assert installs["framework"]["download_info"]["url"] == wheel_url
    assert {"mysite", "sqlalchemy", "alembic", "werkzeug"} <= set(installs)
