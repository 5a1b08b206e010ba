"""The pytest plugin's test databases: ``db``, ``transactional_db`` and their setup.

Each test runs pytest in a subprocess on a project made by ``framework new``,
configured the way that project is (``framework_settings`` and
``framework_app`` in its pyproject.toml, no conftest.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
from support import PG_ADMIN
from support import create_pg_database
from support import drop_pg_database
from support import subprocess_env

from framework.cli.project import create_project

FIXTURE_TESTS = """
import pytest

from framework.orm import connections
from framework.orm import transaction
from mysite.models import Note
from mysite import receivers

SEEN = []


def test_the_test_database_is_not_the_projects(db):
    url = connections["default"].settings_dict["URL"]
    assert "mysite.db" not in url
    print("TEST DATABASE", url)


def test_db_changes_are_rolled_back_1(db, client):
    client.post_json("/api/notes", {"title": "one"}, status=201)
    with transaction.atomic():  # a savepoint inside the test's transaction
        Note.objects.create(title="two")
    assert Note.objects.count() == 2


def test_db_changes_are_rolled_back_2(db):
    assert Note.objects.count() == 0


def test_on_commit_receivers_do_not_run_under_db(db, caplog):
    with caplog.at_level("INFO", logger="mysite"):
        Note.objects.create(title="never committed")
    assert "created" not in caplog.text


def test_transactional_db_commits_1(transactional_db, client, caplog):
    with caplog.at_level("INFO", logger="mysite"):
        client.post_json("/api/notes", {"title": "committed"}, status=201)
    # (On PostgreSQL the rolled-back tests above used up keys 1 to 3.)
    assert "created: 'committed'" in caplog.text


def test_transactional_db_commits_2(transactional_db):
    # Emptied after the previous test, sequences reset.
    assert Note.objects.count() == 0
    assert Note.objects.create(title="again").pk == 1
"""


def make_project(tmp_path):
    project = tmp_path / "mysite"
    create_project("mysite", project)
    (project / "tests" / "test_fixtures.py").write_text(FIXTURE_TESTS)
    return project


def run_pytest(project, env=None, *args):
    variables = {"PYTEST_ADDOPTS": "", **(env or {})}
    log = project.parent / "pytest.log"
    with log.open("w") as out:
        code = subprocess.call(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-s", *args],
            cwd=project,
            env=subprocess_env(variables, clean=True),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            timeout=120,
        )
    return code, log.read_text()


def test_db_fixtures_on_sqlite(tmp_path):
    project = make_project(tmp_path)
    code, output = run_pytest(project)
    assert code == 0, output
    assert "10 passed" in output  # the project's 4 tests and these 6
    assert not (project / "mysite.db").exists()
    assert "TEST DATABASE sqlite:///" in output


@pytest.mark.postgres
def test_db_fixtures_on_postgresql_use_test_name(tmp_path):
    name, url = create_pg_database("fw_plugin")
    try:
        project = make_project(tmp_path)
        code, output = run_pytest(project, {"DATABASE_URL": url})
        assert code == 0, output
        assert "10 passed" in output
        assert f"TEST DATABASE {url.rsplit('/', 1)[0]}/test_{name}" in output
        import psycopg

        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            names = {row[0] for row in admin.execute("SELECT datname FROM pg_database")}
        assert f"test_{name}" not in names  # dropped at the end
        assert name in names  # the project's own database is left alone
    finally:
        drop_pg_database(f"test_{name}")
        drop_pg_database(name)


@pytest.mark.postgres
def test_an_xdist_worker_gets_its_own_database_and_a_leftover_one_is_dropped_first(
    tmp_path,
):
    import psycopg

    name, url = create_pg_database("fw_plugin")
    leftover = f"test_{name}_gw3"
    try:
        # What an interrupted run of the same worker left behind.
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{leftover}"')
        project = make_project(tmp_path)
        # The variable pytest-xdist sets in each of its workers.
        env = {"DATABASE_URL": url, "PYTEST_XDIST_WORKER": "gw3"}
        code, output = run_pytest(project, env)
        assert code == 0, output
        assert f"TEST DATABASE {url.rsplit('/', 1)[0]}/{leftover}" in output
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            names = {row[0] for row in admin.execute("SELECT datname FROM pg_database")}
        assert leftover not in names  # dropped at the end
    finally:
        drop_pg_database(leftover)
        drop_pg_database(name)


def test_client_without_webtest_says_what_to_install(tmp_path):
    project = make_project(tmp_path)
    (project / "tests" / "conftest.py").write_text(
        "import sys\n\nsys.modules['webtest'] = None  # as if not installed\n"
    )
    code, output = run_pytest(project, None, "-k", "first_page")
    assert code != 0
    assert "pip install 'framework[test]'" in output


def test_db_without_a_project_says_how_to_configure_one(tmp_path):
    (tmp_path / "test_bare.py").write_text(
        textwrap.dedent(
            """
            def test_needs_db(db):
                pass


            def test_needs_app(client):
                pass
            """
        )
    )
    code, output = run_pytest(tmp_path, None, "test_bare.py")
    assert code != 0
    assert "The 'db' fixture needs a project with installed apps" in output
    assert 'framework_settings = "mysite.settings"' in output
    assert "needs an 'app' fixture" in output
    assert "Traceback" not in output


def test_a_settings_module_named_in_the_environment_wins(tmp_path):
    project = make_project(tmp_path)
    (project / "other_settings.py").write_text(
        "from mysite.settings import *  # noqa: F403\n\nDEBUG = True\n"
    )
    (project / "tests" / "test_other.py").write_text(
        "from framework.conf import settings\n\n\n"
        "def test_settings():\n    assert settings.DEBUG is True\n"
    )
    code, output = run_pytest(
        project, {"FRAMEWORK_SETTINGS_MODULE": "other_settings"}, "tests/test_other.py"
    )
    assert code == 0, output
    assert os.path.exists(project / "other_settings.py")


@pytest.mark.postgres
def test_a_failed_setup_drops_what_it_created_and_says_why(tmp_path):
    name, url = create_pg_database("fw_plugin")
    try:
        project = make_project(tmp_path)
        settings_py = project / "mysite" / "settings.py"
        settings_py.write_text(
            settings_py.read_text() + f"\nDATABASES = {{'default': {url!r},"
            " 'other': 'postgresql://postgres@127.0.0.1:1/nothing'}\n"
        )
        code, output = run_pytest(project, None, "-k", "rolled_back_2")
        assert code != 0
        assert "framework: Cannot connect to the PostgreSQL server of 'nothing'" in (
            output
        )
        assert "Traceback" not in output
        import psycopg

        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            names = {row[0] for row in admin.execute("SELECT datname FROM pg_database")}
        assert f"test_{name}" not in names  # the first alias's, dropped again
    finally:
        drop_pg_database(f"test_{name}")
        drop_pg_database(name)


def test_a_failing_migration_fails_the_tests_in_one_line(tmp_path):
    project = make_project(tmp_path)
    (project / "mysite" / "migrations" / "0002_broken.py").write_text(
        "from framework.orm import migrations\n\n\n"
        "class Migration(migrations.Migration):\n"
        "    dependencies = [('mysite', '0001_initial')]\n"
        "    operations = [migrations.DropTable('no_such_table')]\n"
    )
    code, output = run_pytest(project, None, "-k", "rolled_back_2")
    assert code != 0
    assert "framework: migrating the test database 'default' failed: Migration" in (
        output
    )
    assert "mysite.0002_broken failed at operation 1" in output
    assert "Traceback" not in output
