"""The benchmarks' apps answer alike (bench/ is not timed here, only checked)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from support import ROOT
from support import subprocess_env

from bench import e2e


@pytest.mark.parametrize(
    "name, needs",
    [
        ("bare", None),
        ("framework_app", None),
        ("falcon_app", "falcon"),
        ("flask_app", "flask"),
    ],
)
def test_e2e_targets_answer_the_same(name, needs):
    if needs:
        pytest.importorskip(needs, reason="in the bench extra")
    from framework.testing import TestApp

    target = getattr(e2e, name)
    client = TestApp(target if name == "bare" else target())
    assert client.get("/hello").text == "Hello, World!"
    assert client.get("/users/42").json == {"id": 42, "name": "user42"}
    client.get("/users/x", status=404)


def test_app_example_serves_the_benchmark_endpoints_only_in_the_benchmark(tmp_path):
    # In a process of its own: the benchmark adds its endpoints to app_example's
    # app object, which the other tests use without them.
    code = (
        "from framework.testing import TestApp\n"
        "from bench import e2e\n"
        "client = TestApp(e2e.app_example_app())\n"
        "print(client.get('/hello').text, client.get('/users/7').json['name'])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=subprocess_env({"DATABASE_URL": f"sqlite:///{tmp_path / 'e2e.db'}"}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["Hello,", "World!", "user7"]
    assert ROOT.joinpath("bench", "e2e.py").exists()
