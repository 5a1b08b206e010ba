"""The tour in README.md runs as written."""

import json
import os
import pathlib
import re
import subprocess
import sys

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
