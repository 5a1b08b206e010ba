"""Load test app_example: ``framework loadtest`` with app_example's scenario and check.

    python bench/loadtest.py [--database sqlite|postgres] [loadtest options...]
    python bench/loadtest.py --database postgres --instances 2 -n 5000 --out out

The same command as

    framework --app app_example.wsgi:app loadtest \\
        --scenario app_example/loadtest.toml --check app_example.loadcheck:check

run from the checkout's root. ``--database postgres`` creates a fresh database on
127.0.0.1:5432 for the run (``--env DATABASE_URL=...``) and drops it after;
SQLite (the default) is a fresh file in the run's directory. Any other option
is ``framework loadtest``'s.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import subprocess
import sys
import uuid

ROOT = pathlib.Path(__file__).resolve().parent.parent
PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=test connect_timeout=3"


def command(extra: list[str], database_url: str | None = None) -> list[str]:
    """The ``framework loadtest`` command line for app_example."""
    argv = [
        sys.executable,
        "-m",
        "framework",
        "--app",
        "app_example.wsgi:app",
        "loadtest",
        "--scenario",
        str(ROOT / "app_example" / "loadtest.toml"),
        "--check",
        "app_example.loadcheck:check",
    ]
    if database_url:
        argv += ["--env", f"DATABASE_URL={database_url}"]
    return argv + extra


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    options, extra = parser.parse_known_args(argv)
    if options.database == "sqlite":
        return subprocess.run(command(extra), cwd=ROOT, check=False).returncode
    import psycopg

    name = f"fw_loadtest_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        url = f"postgresql://postgres@127.0.0.1:5432/{name}"
        return subprocess.run(command(extra, url), cwd=ROOT, check=False).returncode
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


if __name__ == "__main__":
    sys.exit(main())
