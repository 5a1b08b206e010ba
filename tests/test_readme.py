"""README.md's first command and its tour run as written."""

import json
import os
import pathlib
import re
import subprocess
import sys

import pytest
from support import Server
from support import free_port
from support import subprocess_env

README = pathlib.Path(__file__).parents[1] / "README.md"

DRIVER = """
from framework.orm import create_tables, transaction
from framework.testing import TestApp


class SearchIndex(dict):
    def add(self, pk, url):
        self[pk] = url


search_index = SearchIndex()
print(TestApp(app).get("/hello/ada").text)
create_tables([Bookmark])
with transaction.atomic():
    Bookmark(url="https://example.org/").save()
    print("in transaction", dict(search_index))
print("after commit", dict(search_index))
"""


def test_tour_runs_as_written(tmp_path):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    web, orm = blocks[0], blocks[1]
    script = tmp_path / "tour.py"
    script.write_text(web + "\n" + orm + "\n" + DRIVER)
    env = dict(os.environ)
    env["FRAMEWORK_DATABASES"] = json.dumps(
        {"default": f"sqlite:///{tmp_path}/tour.db"}
    )
    result = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    # The request_finished receiver printed after the body was delivered.
    assert re.fullmatch(r"/hello/ada 200 \d+\.\d ms", lines[0]), lines
    assert lines[1:] == [
        "Hello, ada!",
        "in transaction {}",
        "after commit {1: 'https://example.org/'}",
    ]


@pytest.mark.server
def test_the_first_command_serves_app_example_with_nothing_configured(tmp_path):
    # The command as the README gives it: no --app, no settings, no key.
    assert "pip install -e '.[orm]' && framework serve\n" in README.read_text()
    env = subprocess_env({"FRAMEWORK_SECRET_KEY": ""}, clean=True)
    env.pop("DATABASE_URL", None)
    port = free_port()
    server = Server(
        [sys.executable, "-m", "framework", "serve", "--bind", f"127.0.0.1:{port}"]
        + ["--workers", "2", "--graceful-timeout", "5"],
        cwd=tmp_path,
        log_path=tmp_path / "serve.log",
        env=env,
        port=port,
    )
    try:
        server.wait_ready()
        status, page = server.get("/")
        health, _ = server.get("/healthz")
    finally:
        assert server.stop() == 0, server.output
    assert (status, health) == (200, 200), server.output
    assert b"<html" in page.lower()
    assert "Applied app_example.0001_initial" in server.output
    assert (tmp_path / "app_example.db").is_file()
    key = tmp_path / "app_example.secret_key"
    assert key.stat().st_mode & 0o777 == 0o600
