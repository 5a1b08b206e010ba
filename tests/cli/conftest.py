from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest
from click.testing import CliRunner
from support import create_pg_database
from support import drop_pg_database

from framework.apps import apps
from framework.conf import settings

ROOT = pathlib.Path(__file__).resolve().parents[2]


def framework_env(**variables):
    """The environment of a ``framework`` subprocess: no inherited app or settings."""
    env = dict(os.environ)
    env.pop("FRAMEWORK_APP", None)
    env.pop("FRAMEWORK_SETTINGS_MODULE", None)
    env.update(variables)
    return env


def run_framework(*argv, env, cwd=ROOT):
    """Run ``python -m framework argv`` to the end; return the finished process."""
    return subprocess.run(
        [sys.executable, "-m", "framework", *argv],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def configure(monkeypatch):
    """Configure settings for one test; reset them (and the app registry) after."""
    monkeypatch.setenv("FRAMEWORK_APP", "tests.apps.wsgiapp:app")

    def _configure(**options):
        settings.reset()
        settings.configure(**options)
        apps.reset()
        _reset_orm()
        return settings

    yield _configure
    _reset_orm()
    settings.reset()
    apps.reset()


def _reset_orm():
    orm = sys.modules.get("framework.orm")
    if orm is not None:
        orm.connections.reset()


@pytest.fixture
def runner():
    return CliRunner()


@pytest.fixture(scope="session")
def pg_database():
    """A PostgreSQL database of this test session (created, dropped at the end)."""
    name, url = create_pg_database("fw_mgmt")
    try:
        yield url
    finally:
        _reset_orm()
        drop_pg_database(name)


def _empty_pg(url):
    import psycopg

    with psycopg.connect(url.replace("postgresql://", "postgresql://", 1)) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request, tmp_path):
    """A fresh, empty database: a SQLite file, or the session's PostgreSQL one."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'db.sqlite3'}"
    url = request.getfixturevalue("pg_database")
    _reset_orm()
    _empty_pg(url)
    return url


def sa_url(url):
    """The SQLAlchemy URL of a DATABASES URL (psycopg 3 driver for PostgreSQL)."""
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


@pytest.fixture
def make_app(tmp_path, monkeypatch):
    """Write a throw-away app package under tmp_path; forget its modules after."""
    root = tmp_path / "apps_root"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    names = []

    def _make(name, files):
        package = root / name
        for relative, text in {"__init__.py": "", **files}.items():
            path = package / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        names.append(name)
        return package

    yield _make
    forget_modules(*names)


def forget_modules(*prefixes):
    """Drop modules (and their models) so the next import is fresh."""
    orm = sys.modules.get("framework.orm")
    for name in list(sys.modules):
        if any(name == p or name.startswith(p + ".") for p in prefixes):
            module = sys.modules.pop(name)
            if orm is not None and name.endswith(".models"):
                for value in list(vars(module).values()):
                    if isinstance(value, type) and issubclass(value, orm.Model):
                        for field in value._meta.many_to_many:
                            orm.registry.unregister(field.through)
                        orm.registry.unregister(value)
