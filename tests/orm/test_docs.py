"""The example at the top of docs/orm.md runs as written, on both backends."""

import json
import os
import pathlib
import re
import subprocess
import sys

from framework import orm

DOC = pathlib.Path(__file__).parents[2] / "docs" / "orm.md"


def test_docs_example_runs(backend, tmp_path):
    block = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)[0]
    script = tmp_path / "example.py"
    script.write_text(block)
    url = backend if backend.startswith("postgresql") else f"sqlite:///{tmp_path}/ex.db"
    env = dict(os.environ)
    env["FRAMEWORK_DATABASES"] = json.dumps({"default": url})
    try:
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
    finally:
        if backend.startswith("postgresql"):
            # The example's tables live beside the test tables: drop them.
            conn = orm.connections["default"]
            rows = conn.fetchall(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                " AND left(tablename, 8) <> 'ormtests'"
            )
            quote = conn.dialect.identifier_preparer.quote
            for (name,) in rows:
                conn.execute(f"DROP TABLE IF EXISTS {quote(name)} CASCADE")
            orm.connections.close_all()
