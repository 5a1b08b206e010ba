"""Bounded runs of ``framework loadtest``: the books, the output, the engines.

Each run is a few hundred requests against 127.0.0.1 and stops by itself.
"""

from __future__ import annotations

import json
import sqlite3
import sys

import pytest
from notes_project import listing
from notes_project import needs_wrk
from support import ROOT
from support import Server
from support import create_pg_database
from support import drop_pg_database

from framework.loadtest.locust import has_locust

pytestmark = pytest.mark.server

RESULT_KEYS = {
    "completed",
    "balanced",
    "checks",
    "signals",
    "latency_ms",
    "server_ms",
    "throughput_rps",
}


def assert_balanced(run, requests, instances=1):
    assert run.code == 0, run.stdout + run.stderr
    results = run.results
    assert RESULT_KEYS <= set(results)
    assert results["balanced"] is True
    assert results["completed"] == requests
    assert all(check["passed"] for check in results["checks"]), results["checks"]
    assert len(results["signals"]) == instances
    for books in results["signals"]:
        assert books["request_started"] == books["request_finished"]
    assert sum(books["request_started"] for books in results["signals"]) == requests
    for key in ("latency_ms", "server_ms"):
        assert set(results[key]) == {"p50", "p90", "p99", "max"}
        assert 0 < results[key]["p50"] <= results[key]["p99"] <= results[key]["max"]
    assert results["throughput_rps"] > 0
    assert "BALANCED" in run.stdout
    return results


@needs_wrk
def test_a_scenario_run_writes_results_report_and_logs(project, loadtest):
    database_url = "postgresql://loader:pw-9f2c7e1a@127.0.0.1:5432/notes"
    run = loadtest(
        "--scenario",
        "scenario.toml",
        "-n",
        "300",
        "-c",
        "3",
        "--env",
        f"DATABASE_URL={database_url}",
        cwd=project,
    )
    results = assert_balanced(run, 300)
    # The servers' environment is in the results, its password is not.
    assert results["server"]["env"]["DATABASE_URL"] == (
        "postgresql://loader:<hidden>@127.0.0.1:5432/notes"
    )
    for path in run.out.iterdir():
        if path.is_file():
            assert "pw-9f2c7e1a" not in path.read_text(errors="replace"), path
    requests = results["requests"]
    assert set(requests) == {"page", "api", "export", "add", "boom"}
    assert requests["boom"]["statuses"] == {"500": requests["boom"]["count"]}
    (books,) = results["instances"]
    assert books["got_request_exception"] == requests["boom"]["count"] > 0
    assert set(books["server_ms"]) == {"p50", "p90", "p99"}
    assert 0 < books["server_ms"]["p50"] <= books["server_ms"]["p99"]
    added = results["acknowledged"]["add"]
    assert len(added) == len(set(added)) == requests["add"]["count"]
    assert all(value.startswith(results["unique_prefix"] + "-") for value in added)
    assert books["workers"] == 4  # connections + 1 sync workers
    report = (run.out / "report.html").read_text()
    assert report.count("<svg") == 3 and "<script" not in report
    assert "BALANCED" in report
    for name in ("server-0.log", "access-0.log", "wrk-0.lua", "results.json"):
        assert (run.out / name).is_file(), name
    assert "PASS  request_started == requests completed" in run.stdout


@needs_wrk
def test_a_worker_hook_that_loses_request_finished_is_caught(project, loadtest):
    run = loadtest("-n", "60", "-c", "2", "--config", "fault.conf.py", cwd=project)
    assert run.code == 1, run.stdout + run.stderr
    assert "FAIL  every request_started has its request_finished" in run.stdout
    assert "NOT BALANCED" in run.stdout
    results = run.results
    assert results["balanced"] is False
    assert results["signals"][0]["request_started"] == 60
    assert results["signals"][0]["request_finished"] == 0


@needs_wrk
def test_workers_that_cannot_boot_stop_the_run_at_once_in_one_line(project, loadtest):
    # The master listens before its workers boot: the run must not start
    # loading a server whose workers all fail (here: a placeholder key).
    run = loadtest(
        "-n", "40", "-c", "2", cwd=project, env={"FRAMEWORK_SECRET_KEY": "changeme"}
    )
    assert run.code == 1, run.stdout + run.stderr
    (line,) = run.stderr.splitlines()
    assert line.startswith("Error: http://127.0.0.1:"), line
    assert "the server exited with status" in line
    assert "SECRET_KEY is a well-known placeholder ('changeme')" in line
    assert "Traceback" not in run.stdout + run.stderr
    assert "requests without an answer" not in run.stdout  # nothing was loaded
    assert not (run.out / "results.json").exists()


@needs_wrk
def test_an_earlier_runs_out_directory_is_emptied_first(project, loadtest, tmp_path):
    out = tmp_path / "results"
    first = loadtest("-n", "20", "-c", "2", "--out", str(out), cwd=project, out=False)
    assert first.code == 0, first.stdout + first.stderr
    # What the first run's servers wrote there (a relative SQLite path).
    (out / "notes.db").write_text("the first run's database")
    second = loadtest("-n", "30", "-c", "2", "--out", str(out), cwd=project, out=False)
    assert second.code == 0, second.stdout + second.stderr
    assert not (out / "notes.db").exists()
    assert json.loads((out / "results.json").read_text())["completed"] == 30


@needs_wrk
def test_a_duration_bound_run_across_two_gthread_instances(project, loadtest):
    run = loadtest(
        "-d", "1.5", "-c", "4", "--instances", "2", "-k", "gthread", cwd=project
    )
    results = assert_balanced(run, run.results["completed"], instances=2)
    assert results["completed"] > 20
    assert 1.0 < results["duration_seconds"] < 10
    first, second = results["instances"]
    assert first["url"] != second["url"]
    assert first["completed"] > 0 and second["completed"] > 0


@needs_wrk
def test_two_running_instances_are_accounted_over_their_metrics(
    project, loadtest, tmp_path
):
    servers = [
        Server.serve(tmp_path, "notes:app", ["-w", "2", "--no-access-log"], cwd=project)
        for _ in range(2)
    ]
    try:
        for server in servers:
            server.wait_ready()
        for server in servers:  # traffic before the run is not the run's
            assert server.get("/api/notes")[0] == 200
        files = listing(project)
        run = loadtest(
            "--scenario",
            "scenario.toml",
            "-n",
            "200",
            "-c",
            "4",
            *[arg for server in servers for arg in ("--url", server.url)],
            cwd=project,
        )
        results = assert_balanced(run, 200, instances=2)
        assert [books["instance"] for books in results["signals"]] == [
            server.url for server in servers
        ]
        for books, instance in zip(
            results["signals"], results["instances"], strict=True
        ):
            assert books["request_started"] == instance["completed"] == 100
        assert "servers stopped cleanly" not in {c["name"] for c in results["checks"]}
        assert listing(project) == files
    finally:
        for server in servers:
            server.stop()


@needs_wrk
def test_a_deployment_counting_only_its_answering_worker_is_refused(
    project, loadtest, tmp_path
):
    server = Server.serve(
        tmp_path, "notes:app", ["-w", "2"], {"FRAMEWORK_METRICS": "off"}, cwd=project
    )
    try:
        server.wait_ready()
        run = loadtest("--url", server.url, cwd=project, out=False)
    finally:
        server.stop()
    assert run.code == 2
    assert "counts only the worker that answers" in run.stderr


@pytest.mark.skipif(not has_locust(), reason="Locust is in the loadtest extra")
def test_locust_master_with_two_local_workers_balances(project, loadtest):
    run = loadtest(
        "--scenario",
        "scenario.toml",
        "--generator",
        "locust",
        "--locust-workers",
        "2",
        "-n",
        "200",
        "-c",
        "4",
        cwd=project,
    )
    results = assert_balanced(run, 200)
    assert results["config"]["generator"] == "locust"
    assert results["config"]["locust_workers"] == 2
    for name in ("locust-master.log", "locust-worker-0.log", "locust-worker-1.log"):
        assert (run.out / name).is_file()
    # Both workers ran users: their ids are in the unique values.
    workers = {value.split("-")[2] for value in results["acknowledged"]["add"]}
    assert workers == {"w0", "w1"}


@pytest.mark.skipif(not has_locust(), reason="Locust is in the loadtest extra")
def test_a_users_own_locustfile_gets_the_accounting(project, loadtest):
    (project / "visitors.py").write_text(
        "from locust import HttpUser, constant, task\n\n\n"
        "class Visitor(HttpUser):\n"
        "    wait_time = constant(0)\n\n"
        "    @task(3)\n"
        "    def page(self):\n"
        "        self.client.get('/')\n\n"
        "    @task\n"
        "    def boom(self):\n"
        "        with self.client.get('/boom', catch_response=True) as response:\n"
        "            if response.status_code == 500:\n"
        "                response.success()\n"
    )
    run = loadtest("--locustfile", "visitors.py", "-n", "100", "-c", "2", cwd=project)
    results = assert_balanced(run, run.results["completed"])
    assert results["completed"] >= 100
    assert set(results["requests"]) == {"/", "/boom"}
    boom = results["requests"]["/boom"]["count"]
    assert results["instances"][0]["got_request_exception"] == boom > 0


# app_example, through the same command -------------------------------------------

# SQLite and PostgreSQL, sync and gthread, one and two instances: four short
# runs cover each pair (few workers: they all import app_example).
APP_EXAMPLE_RUNS = [
    ("sqlite", "sync", 1),
    ("sqlite", "gthread", 2),
    pytest.param("postgres", "sync", 2, marks=pytest.mark.postgres),
    pytest.param("postgres", "gthread", 1, marks=pytest.mark.postgres),
]
WORKERS = {("sync", 1): "3", ("sync", 2): "2", ("gthread", 1): "1", ("gthread", 2): "1"}


@needs_wrk
@pytest.mark.parametrize("database, worker_class, instances", APP_EXAMPLE_RUNS)
def test_app_example_scenario_and_check(
    loadtest, tmp_path, database, worker_class, instances
):
    args = [
        "--scenario",
        str(ROOT / "app_example" / "loadtest.toml"),
        "--check",
        "app_example.loadcheck:check",
        "-n",
        "200",
        "-c",
        "2",
        "-k",
        worker_class,
        "-w",
        WORKERS[worker_class, instances],
        "--instances",
        str(instances),
    ]
    name = None
    if database == "postgres":
        name, url = create_pg_database("fw_loadtest")
        args += ["--env", f"DATABASE_URL={url}"]
    try:
        run = loadtest(*args, app="app_example.wsgi:app", cwd=ROOT)
    finally:
        if name:
            drop_pg_database(name)
    results = assert_balanced(run, 200, instances=instances)
    assert "PASS  --check app_example.loadcheck:check: no failed check" in run.stdout
    assert results["requests"]["write"]["statuses"] == {
        "201": len(results["acknowledged"]["write"])
    }
    fail = results["requests"]["fail"]["count"]
    assert sum(i["got_request_exception"] for i in results["instances"]) == fail > 0
    if database == "sqlite" and instances == 1:
        check_finds_a_lost_write(run.out / "app_example.db", results)


def check_finds_a_lost_write(path, results):
    """The check function reports a write that got its 201 and is not there."""
    lost = results["acknowledged"]["write"][0]
    database = sqlite3.connect(path)
    with database:
        database.execute("DELETE FROM app_example_bookmark WHERE title = ?", (lost,))
    database.close()
    sys.path.insert(0, str(ROOT))
    try:
        from app_example import loadcheck
    finally:
        sys.path.remove(str(ROOT))
    failed = loadcheck.check(results)
    assert failed[0] == f"1 acknowledged writes are not in the database: {lost}"
