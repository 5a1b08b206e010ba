"""What ``pip install`` gives: the wheel in a fresh virtualenv, not the checkout."""

from __future__ import annotations

import zipfile


def test_the_wheel_holds_the_package_only(installed_framework):
    names = zipfile.ZipFile(installed_framework.wheel).namelist()
    assert any(name.startswith("framework/") for name in names)
    for outside in ("app_example/", "bench/", "tests/"):
        assert not any(name.startswith(outside) for name in names), outside


def test_the_installed_command_runs_outside_the_checkout(installed_framework, tmp_path):
    result = installed_framework.run("framework", "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "serve" in result.stdout
    where = installed_framework.run(
        "python", "-c", "import framework; print(framework.__file__)", cwd=tmp_path
    )
    assert where.stdout.strip().startswith(str(installed_framework.venv)), where
