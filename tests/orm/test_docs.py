"""The example at the top of docs/orm.md runs as written."""

import json
import os
import pathlib
import re
import subprocess
import sys

DOC = pathlib.Path(__file__).parents[2] / "docs" / "orm.md"


def test_docs_example_runs(tmp_path):
    block = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)[0]
    script = tmp_path / "example.py"
    script.write_text(block)
    env = dict(os.environ)
    env["FRAMEWORK_DATABASES"] = json.dumps({"default": f"sqlite:///{tmp_path}/ex.db"})
    result = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "new pizza 1\n"
