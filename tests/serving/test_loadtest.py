"""Short bounded runs of the load test (bench/loadtest.py, framework loadtest)."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil

import pytest
from click.testing import CliRunner

from bench import e2e
from bench import loadtest
from framework.cli import main

needs_wrk = pytest.mark.skipif(
    shutil.which("wrk") is None, reason="wrk is not installed (apt-get install wrk)"
)


@pytest.fixture
def postgres():
    try:
        import psycopg

        psycopg.connect(loadtest.PG_ADMIN).close()
    except Exception as exc:
        if os.environ.get("FRAMEWORK_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL is required but does not answer: {exc}")
        pytest.skip(f"PostgreSQL does not answer: {exc}")


def _quiet_run(tmp_path, **options):
    """Run the load test into ``tmp_path``, without chart or progress lines."""
    return loadtest.run(
        out_dir=tmp_path, chart=False, echo=lambda message: None, **options
    )


@pytest.mark.server
@needs_wrk
def test_cli_run_with_sync_workers_on_sqlite_balances(tmp_path):
    result = CliRunner().invoke(
        main,
        [
            "loadtest",
            "--requests",
            "300",
            "--connections",
            "3",
            "--phases",
            "2",
            "--out",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "[2/2]" in result.output
    assert "BALANCED" in result.output
    (run_dir,) = tmp_path.iterdir()
    data = json.loads((run_dir / "results.json").read_text())
    assert data["balanced"] is True
    assert data["config"]["generator"] == "wrk"
    books = data["accounting"]["instances"][0]
    assert books["request_started"] == books["completed_by_generator"] == 300
    assert books["workers_seen"] == 4
    assert data["accounting"]["injected_failures"] > 0
    assert data["accounting"]["successful_writes"] > 0
    assert set(data["latency_ms"]) == {"p50", "p90", "p99", "max"}
    if importlib.util.find_spec("matplotlib") is None:
        assert "no chart: matplotlib is not installed" in result.output
    else:
        assert (run_dir / "latency.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.server
@pytest.mark.postgres
def test_gthread_workers_on_postgresql_balance(tmp_path, postgres):
    data = _quiet_run(
        tmp_path,
        worker_class="gthread",
        workers=2,
        threads=3,
        database="postgres",
        requests=240,
        connections=4,
        phases=2,
        generator="python",
    )
    assert data["balanced"], data["accounting"]["checks"]
    assert data["accounting"]["instances"][0]["request_started"] == 240


@pytest.mark.server
def test_gthread_workers_on_sqlite_balance(tmp_path):
    # Threads of two processes writing one SQLite file: no lost write.
    data = _quiet_run(
        tmp_path,
        worker_class="gthread",
        workers=2,
        threads=3,
        requests=160,
        connections=4,
        phases=1,
        generator="python",
    )
    assert data["balanced"], data["accounting"]["checks"]
    assert data["config"]["database"] == "sqlite"
    books = data["accounting"]
    assert books["instances"][0]["request_started"] == 160
    assert books["writes_in_database"] == books["successful_writes"] > 0


@pytest.mark.server
@pytest.mark.postgres
def test_two_instances_share_one_postgresql_database(tmp_path, postgres):
    # wrk where it is installed, else a generator that always is: never skipped.
    data = _quiet_run(
        tmp_path,
        generator="wrk" if shutil.which("wrk") else "python",
        database="postgres",
        instances=2,
        requests=320,
        connections=4,
        phases=2,
    )
    assert data["balanced"], data["accounting"]["checks"]
    first, second = data["accounting"]["instances"]
    assert first["port"] != second["port"]
    assert first["request_started"] == second["request_started"] == 160
    books = data["accounting"]
    assert books["writes_in_database"] == books["successful_writes"] > 0


INJECTED_FAULT = """
from framework import signals


def post_worker_init(worker):
    # The fault: this worker's request_finished counter receiver is gone.
    from app_example.receivers import time_and_log_request
    from app_example.web import BookmarksApp

    signals.request_finished.disconnect(time_and_log_request, sender=BookmarksApp)
"""


@pytest.mark.server
def test_cli_exits_1_when_a_server_loses_request_finished(tmp_path):
    config = tmp_path / "fault.conf.py"
    config.write_text(INJECTED_FAULT)
    result = CliRunner().invoke(
        main,
        [
            "loadtest",
            "--requests",
            "40",
            "--connections",
            "2",
            "--phases",
            "1",
            "--generator",
            "python",
            "--config",
            str(config),
            "--no-chart",
            "--out",
            str(tmp_path / "out"),
        ],
    )
    assert result.exit_code == 1, result.output
    assert "[FAIL] every started request finished" in result.output
    assert "NOT BALANCED" in result.output
    (run_dir,) = (tmp_path / "out").iterdir()
    data = json.loads((run_dir / "results.json").read_text())
    assert data["balanced"] is False
    assert data["config"]["gunicorn_config"] == str(config)
    books = data["accounting"]["instances"][0]
    assert books["request_started"] == 40
    assert books["request_finished"] == 0


def _books(**changes):
    instance = {
        "request_started": 10,
        "request_finished": 10,
        "completed_by_generator": 10,
        "got_request_exception": 1,
        "exit_code": 0,
    }
    books = {
        "instances": [instance],
        "injected": 1,
        "unexpected": {},
        "socket_errors": {"read": 0},
        "writes": ["lt-1", "lt-2"],
        "db_titles": ["lt-1", "lt-2"],
        "tag_rows": [("python", 2, 2)],
        "bookmarks": 5,
        "indexed": 5,
    }
    for key, value in changes.items():
        if key in instance:
            instance[key] = value
        else:
            books[key] = value
    return books


@pytest.mark.parametrize(
    "changes, failing",
    [
        ({}, None),
        ({"request_finished": 9}, "every started request finished"),
        (
            {"request_started": 11, "request_finished": 11},
            "one request_started per completed request",
        ),
        ({"got_request_exception": 2}, "got_request_exception == injected failures"),
        ({"db_titles": ["lt-1"]}, "every successful write is in the database once"),
        (
            {"db_titles": ["lt-1", "lt-2", "lt-2"]},
            "every successful write is in the database once",
        ),
        ({"db_titles": ["lt-1", "lt-2", "lt-9"]}, "nothing else was written"),
        ({"tag_rows": [("python", 3, 2)]}, "tag counts match the links (m2m_changed)"),
        ({"indexed": 4}, "every bookmark is indexed (on_commit receiver)"),
        ({"socket_errors": {"read": 1}}, "no socket errors"),
        ({"exit_code": 1}, "servers stopped cleanly"),
    ],
)
def test_books_that_do_not_balance_are_caught(changes, failing):
    checks, _details = loadtest.check_books(**_books(**changes))
    assert [name for name, ok in checks.items() if not ok] == (
        [failing] if failing else []
    )


def test_sync_workers_must_outnumber_connections(tmp_path):
    with pytest.raises(ValueError, match="must outnumber the connections"):
        loadtest.run(workers=2, connections=2, out_dir=tmp_path, echo=print)


@pytest.mark.server
@pytest.mark.skipif(
    not loadtest._has_locust(), reason="locust is in the loadtest extra"
)
def test_locust_generator_balances(tmp_path):
    # Never import locust here: it monkey-patches the whole process (gevent).
    data = _quiet_run(
        tmp_path,
        requests=120,
        connections=2,
        phases=1,
        generator="locust",
    )
    assert data["balanced"], data["accounting"]["checks"]
    assert data["accounting"]["instances"][0]["request_started"] == 120


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


def test_cli_reports_a_bad_configuration_in_one_line(tmp_path):
    result = CliRunner().invoke(
        main,
        ["loadtest", "--workers", "2", "--connections", "2", "--out", str(tmp_path)],
    )
    assert result.exit_code == 1
    assert "must outnumber the connections" in result.output
