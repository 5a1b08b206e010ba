from __future__ import annotations

import collections
import gc
import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import threading
import time

import click
import pytest
from support import ROOT
from support import TEST_SECRET_KEY
from support import Server
from support import free_port
from support import get

from framework import metrics
from framework import serving
from framework.cli.serve import parse_gunicorn_args
from framework.metrics import RETIRED

HERE = pathlib.Path(__file__).resolve().parent


def test_defaults_bind_loopback_sync_workers_and_access_log(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)
    monkeypatch.delenv("GUNICORN_CMD_ARGS", raising=False)
    cfg = serving.GunicornApplication("fixture_app:app").cfg
    assert cfg.bind == ["127.0.0.1:8000"]
    cores = len(os.sched_getaffinity(0))
    assert cfg.workers == 2 * cores + 1
    assert cfg.worker_class_str == "sync"
    assert cfg.accesslog == "-"
    assert cfg.control_socket_disable is True


def test_web_concurrency_sets_the_default_worker_count(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    assert serving.GunicornApplication("fixture_app:app").cfg.workers == 3


def test_threads_select_gthread_workers(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = serving.GunicornApplication("fixture_app:app", {"threads": 4}).cfg
    assert cfg.threads == 4
    assert cfg.worker_class_str == "gthread"


def test_config_file_then_env_then_options_take_precedence(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "gunicorn.conf.py").write_text(
        "workers = 7\ntimeout = 11\nkeepalive = 4\nmax_requests = 50\n"
    )
    monkeypatch.setenv("GUNICORN_CMD_ARGS", "--keep-alive 9")
    cfg = serving.GunicornApplication(
        "fixture_app:app", {"workers": 2, "max_requests": None}
    ).cfg
    assert (cfg.workers, cfg.timeout, cfg.keepalive, cfg.max_requests) == (
        2,
        11,
        9,
        50,
    )


def test_an_explicit_config_file_wins_over_the_default_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "gunicorn.conf.py").write_text("timeout = 11\n")
    (tmp_path / "prod.py").write_text("timeout = 12\n")
    cfg = serving.GunicornApplication("x:y", config_file="prod.py").cfg
    assert cfg.timeout == 12


def test_unknown_setting_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit, match="1"):
        serving.GunicornApplication("x:y", {"wrokers": 2})


def test_no_access_log_wins_over_the_config_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "gunicorn.conf.py").write_text("accesslog = 'access.log'\n")
    assert serving.GunicornApplication("x:y").cfg.accesslog == "access.log"
    assert serving.GunicornApplication("x:y", access_log=False).cfg.accesslog is None


def test_gunicorn_options_pass_through():
    assert parse_gunicorn_args(["--keep-alive", "5", "--preload"]) == {
        "keepalive": 5,
        "preload_app": True,
    }
    with pytest.raises(click.UsageError, match="--no-such-option"):
        parse_gunicorn_args(["--no-such-option"])


def _count(log_dir: pathlib.Path) -> collections.Counter[str]:
    counts: collections.Counter[str] = collections.Counter()
    for path in log_dir.glob("*.log"):
        for line in path.read_text().splitlines():
            counts[line.split()[0]] += 1
    return counts


@pytest.mark.server
def test_serve_runs_gunicorn_with_access_log_and_user_post_fork(tmp_path, start_server):
    (tmp_path / "gunicorn.conf.py").write_text(
        "import os\n"
        "def post_fork(server, worker):\n"
        "    open(f'forked-{os.getpid()}', 'w').close()\n"
    )
    server = start_server(["-w", "2", "--no-migrate"])
    status, body = get(server.url + "/hello")
    assert status == 200
    assert body.startswith(b"pid=")
    assert server.stop() == 0
    assert len(list(tmp_path.glob("forked-*"))) == 2
    assert '"GET /hello HTTP/1.1" 200' in server.output


@pytest.mark.server
@pytest.mark.parametrize("worker", ["sync", "gthread"])
def test_sigterm_lets_in_flight_requests_finish(tmp_path, start_server, worker):
    log_dir = tmp_path / "requests"
    log_dir.mkdir()
    server = start_server(
        ["-w", "1", "-k", worker, "--no-migrate"],
        env={"FIXTURE_LOG_DIR": str(log_dir)},
    )
    results: list[tuple[int, bytes]] = []
    client = threading.Thread(
        target=lambda: results.append(get(server.url + "/slow?ms=1200"))
    )
    client.start()
    deadline = time.monotonic() + 30  # a poll: a loaded machine boots slowly
    while not _count(log_dir)["started"] and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(server.process.pid, signal.SIGTERM)
    client.join(30)
    assert server.stop() == 0
    assert results and results[0][0] == 200
    assert _count(log_dir) == {"started": 1, "finished": 1}


@pytest.mark.server
@pytest.mark.parametrize("worker", ["sync", "gthread"])
def test_max_requests_recycling_loses_no_request(tmp_path, start_server, worker):
    log_dir = tmp_path / "requests"
    log_dir.mkdir()
    server = start_server(
        ["-w", "1", "-k", worker, "--max-requests", "3", "--no-migrate"],
        env={"FIXTURE_LOG_DIR": str(log_dir)},
    )
    pids = set()
    for _ in range(8):
        status, body = get(server.url + "/")
        assert status == 200
        pids.add(body)
    assert server.stop() == 0
    assert len(pids) >= 2
    assert _count(log_dir) == {"started": 8, "finished": 8}


def _start_counting_app_example(tmp_path, start_server, args):
    """Serve app_example on a fresh database, its counters in ``tmp_path/metrics``."""
    metrics_dir = tmp_path / "metrics"
    server = start_server(
        args,
        app="app_example.wsgi:app",
        env={
            "DATABASE_URL": f"sqlite:///{tmp_path / 'app.db'}",
            "FRAMEWORK_METRICS_DIR": str(metrics_dir),
        },
    )
    return server, metrics_dir


def _healthz_pids(server, requests):
    """Send ``requests`` requests to /healthz; return the pids that answered."""
    pids = set()
    for _ in range(requests):
        status, body = get(server.url + "/healthz")
        assert status == 200
        pids.add(json.loads(body)["pid"])
    return pids


@pytest.mark.server
def test_recycled_workers_counters_are_retired_without_losing_a_count(
    tmp_path, start_server
):
    server, metrics_dir = _start_counting_app_example(
        tmp_path, start_server, ["-w", "1", "--max-requests", "4"]
    )
    pids = _healthz_pids(server, 13)
    master = server.process.pid
    assert server.stop() == 0
    assert len(pids) == 4
    counters = metrics.read(metrics_dir)
    # Each new worker retired the processes before it (three recycled
    # workers): the last worker's file and the retired totals are all that is
    # left; neither the master nor the child that migrated counted here ...
    (last,) = set(counters) - {RETIRED}
    assert int(last) in pids
    assert str(master) not in counters
    assert counters[RETIRED].processes == 3
    assert sorted(path.name for path in metrics_dir.glob("*.counters")) == [
        "retired.counters",
        f"worker-{last}.counters",
    ]
    # ... and every request is still counted once, with its duration.
    summed = metrics.total(counters.values())
    assert summed.request_started == summed.request_finished == 13
    assert sum(summed.buckets) == 13
    assert counters[RETIRED].request_started == 12


@pytest.mark.server
def test_the_master_keeps_nothing_of_the_migration(tmp_path, start_server):
    # gunicorn runs when_ready in the master, after migrating, before forking.
    (tmp_path / "gunicorn.conf.py").write_text(
        "import json, sys\n"
        "def when_ready(server):\n"
        "    from framework.orm import connections\n"
        "    state = {\n"
        "        'app': 'app_example.views' in sys.modules,\n"
        "        'migration_modules': sorted(m for m in sys.modules\n"
        "            if m.split('.')[0] in ('alembic', 'mako')\n"
        "            or m.startswith('framework.orm.migrations')),\n"
        "        'connections': len(connections.all(initialized_only=True)),\n"
        "    }\n"
        "    with open('master.json', 'w') as f:\n"
        "        json.dump(state, f)\n"
    )
    server = start_server(
        ["-w", "1"],
        app="app_example.wsgi:app",
        env={"DATABASE_URL": f"sqlite:///{tmp_path / 'app.db'}"},
    )
    status, body = get(server.url + "/api/bookmarks")
    assert server.stop() == 0
    assert status == 200 and len(json.loads(body)["bookmarks"]) == 3  # migrated
    state = json.loads((tmp_path / "master.json").read_text())
    assert state == {"app": True, "migration_modules": [], "connections": 0}


@pytest.mark.server
@pytest.mark.parametrize("traceback", [False, True])
def test_a_failing_migration_stops_serve_before_any_worker(tmp_path, traceback):
    app_dir = tmp_path / "brokenmig"
    (app_dir / "migrations").mkdir(parents=True)
    (app_dir / "__init__.py").write_text("")
    (app_dir / "models.py").write_text(
        "from framework import orm\n\n"
        "class Thing(orm.Model):\n    name = orm.CharField(max_length=5)\n"
    )
    (app_dir / "migrations" / "__init__.py").write_text("")
    (app_dir / "migrations" / "0001_initial.py").write_text(
        "from framework.orm import migrations\n\n"
        "class Migration(migrations.Migration):\n"
        "    operations = [migrations.DropTable('no_such_table')]\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(HERE), str(ROOT)]),
        "FRAMEWORK_INSTALLED_APPS": json.dumps(["brokenmig"]),
        "FRAMEWORK_DATABASES": json.dumps({"default": f"sqlite:///{tmp_path / 'db'}"}),
    }
    env.pop("FRAMEWORK_SETTINGS_MODULE", None)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "framework",
            *(["--traceback"] if traceback else []),
            "--app",
            "fixture_app:app",
            "serve",
            "--bind",
            f"127.0.0.1:{free_port()}",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    # The error of the migrating child, reported once, by the master.
    assert lines[-1] == (
        "Error: Migration brokenmig.0001_initial failed at operation 1 (Drop table"
        " no_such_table): OperationalError: no such table: no_such_table. It was"
        " rolled back; the migrations before it stay applied."
    )
    assert sum(line.startswith("Error:") for line in lines) == 1
    if traceback:
        assert lines[0] == "Traceback (most recent call last):"
        assert "sqlite3.OperationalError: no such table: no_such_table" in lines
    else:
        assert len(lines) == 1
    assert "Listening at" not in result.stdout + result.stderr


@pytest.mark.server
def test_plain_gunicorn_serves_app_example(tmp_path):
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'app.db'}",
        "PYTHONPATH": str(ROOT),
    }
    env.pop("FRAMEWORK_SETTINGS_MODULE", None)
    migrate = subprocess.run(
        [sys.executable, "-m", "framework", "migrate", "--noinput"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert migrate.returncode == 0, migrate.stderr
    server = Server.gunicorn(
        tmp_path,
        "app_example.wsgi:app",
        env={"DATABASE_URL": env["DATABASE_URL"]},
        clean=True,
    )
    try:
        server.wait_ready()
        status, body = server.get("/api/tags")
        assert status == 200
        assert b'"python"' in body
    finally:
        assert server.stop() == 0


def _hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]


def test_load_returns_the_callable_or_resolves_the_spec(
    tmp_path, monkeypatch, settings
):
    monkeypatch.chdir(tmp_path)
    settings.SECRET_KEY = TEST_SECRET_KEY
    assert serving.GunicornApplication(_hello).load() is _hello
    loaded = serving.GunicornApplication(
        "anything", loader=lambda spec: (spec, _hello)
    ).load()
    assert loaded == ("anything", _hello)
    (tmp_path / "tiny_wsgi.py").write_text(
        "def app(environ, start_response):\n    return []\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    app = serving.GunicornApplication("tiny_wsgi:app").load()
    assert app.__module__ == "tiny_wsgi"


def test_a_worker_that_imports_the_app_trims_its_heap(tmp_path, monkeypatch, settings):
    monkeypatch.chdir(tmp_path)
    settings.SECRET_KEY = TEST_SECRET_KEY
    trims = []
    monkeypatch.setattr(serving, "trim_heap", lambda: trims.append(1))
    loader = {"loader": lambda spec: _hello}
    assert serving.GunicornApplication("any:app", **loader).load() is _hello
    assert trims == [1]
    # Preloaded, the master trims once before forking (freeze_heap), not here.
    preloaded = serving.GunicornApplication("any:app", {"preload_app": True}, **loader)
    assert preloaded.load() is _hello
    assert trims == [1]


def test_bad_gunicorn_option_values_are_usage_errors():
    assert parse_gunicorn_args([]) == {}
    with pytest.raises(click.UsageError, match="bad gunicorn option"):
        parse_gunicorn_args(["--workers", "many"])


def test_migrate_before_fork_only_for_apps_with_models(tmp_path):
    from framework.apps import apps
    from framework.cli.serve import migrate_before_fork
    from framework.conf import settings
    from framework.orm import connections

    try:
        settings.reset()
        settings.configure(INSTALLED_APPS=[])
        assert migrate_before_fork("fixture_app:app", verbosity=0) is False
        settings.reset()
        settings.configure(
            INSTALLED_APPS=["app_example"],
            DATABASES={"default": f"sqlite:///{tmp_path / 'db.sqlite3'}"},
        )
        apps.reset()
        assert migrate_before_fork("app_example.wsgi:app", verbosity=0) is True
        assert (tmp_path / "db.sqlite3").exists()
        # The master keeps no connection to hand down to its workers.
        assert connections.all(initialized_only=True) == []
    finally:
        connections.reset()
        settings.reset()
        apps.reset()


@pytest.mark.server
@pytest.mark.parametrize("worker", ["sync", "gthread"])
def test_sigterm_under_load_finishes_every_started_request(
    tmp_path, start_server, worker
):
    log_dir = tmp_path / "requests"
    log_dir.mkdir()
    args = ["-w", "2", "-k", worker, "--no-migrate"]
    if worker == "gthread":
        args += ["--threads", "3"]
    server = start_server(args, env={"FIXTURE_LOG_DIR": str(log_dir)})
    successes = []
    stop = threading.Event()

    def client():
        for _ in range(200):
            if stop.is_set():
                return
            try:
                status, _body = get(server.url + "/slow?ms=40", timeout=10)
            except OSError:
                return
            successes.append(status)

    clients = [threading.Thread(target=client) for _ in range(4)]
    for thread in clients:
        thread.start()
    deadline = time.monotonic() + 30  # a poll: a loaded machine boots slowly
    while _count(log_dir)["finished"] < 8 and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(server.process.pid, signal.SIGTERM)
    assert server.process.wait(15) == 0
    stop.set()
    for thread in clients:
        thread.join(15)
    counts = _count(log_dir)
    assert counts["started"] == counts["finished"]
    assert set(successes) == {200}
    assert len(successes) == counts["finished"]


def test_an_app_loaded_in_the_master_is_frozen_before_the_fork(
    tmp_path, monkeypatch, settings
):
    monkeypatch.chdir(tmp_path)
    settings.SECRET_KEY = TEST_SECRET_KEY
    assert gc.get_freeze_count() == 0
    worker = serving.GunicornApplication("any:app", loader=lambda spec: _hello)
    assert worker.wsgi() is _hello
    assert gc.get_freeze_count() == 0
    # An application object is frozen once, by run(), not again on loading.
    given = serving.GunicornApplication(_hello, {"preload_app": True})
    assert given.wsgi() is _hello
    assert gc.get_freeze_count() == 0
    server = serving.GunicornApplication(
        "any:app", {"preload_app": True}, loader=lambda spec: _hello
    )
    try:
        assert server.wsgi() is _hello
        # The workers' collectors will never walk what the master imported.
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


def _rss_kib():
    status = pathlib.Path("/proc/self/status").read_text()
    return int(status.split("VmRSS:")[1].split()[0])


@pytest.mark.skipif(
    not hasattr(os, "confstr")
    or "glibc" not in (os.confstr("CS_GNU_LIBC_VERSION") or ""),
    reason="malloc_trim is glibc's",
)
def test_trim_heap_hands_freed_heap_memory_back():
    # 40 MB of C-heap blocks (too big for Python's small-object allocator),
    # all freed but the topmost one, which pins the heap's end.
    blocks = [bytes(1000) + bytes([n % 256]) for n in range(40_000)]
    pin = blocks.pop()
    del blocks
    before = _rss_kib()
    serving.trim_heap()
    assert before - _rss_kib() > 20_000
    assert pin


@pytest.mark.server
def test_a_worker_killed_by_the_timeout_still_finishes_its_request(
    tmp_path, start_server
):
    log_dir = tmp_path / "requests"
    log_dir.mkdir()
    metrics_dir = tmp_path / "metrics"
    server = start_server(
        ["-w", "1", "--timeout", "1", "--no-migrate"],
        env={
            "FIXTURE_LOG_DIR": str(log_dir),
            "FRAMEWORK_METRICS_DIR": str(metrics_dir),
        },
    )
    # gunicorn aborts the worker (SystemExit in the view) and answers 500.
    status, _body = get(server.url + "/slow?ms=8000", timeout=15)
    assert status == 500
    status, _body = get(server.url + "/hello")
    assert status == 200
    assert server.stop() == 0
    assert "WORKER TIMEOUT" in server.output
    # The counters kept the aborted request once, with its time (over 1 s).
    counters = metrics.read(metrics_dir)
    summed = metrics.total(counters.values())
    assert summed.request_started == summed.request_finished == 2
    assert sum(summed.buckets) == 2 and summed.max_seconds >= 1.0
    assert summed.processes >= 2  # the aborted worker and its replacement
    lines = sorted(
        line
        for path in log_dir.iterdir()
        for line in path.read_text().splitlines()
        if "/slow" in line
    )
    # The aborted worker sent request_finished before it exited.
    assert lines == ["finished /slow 500", "started /slow"]


@pytest.mark.server
def test_workers_open_their_own_database_connections_after_the_fork(
    tmp_path, start_server
):
    server, metrics_dir = _start_counting_app_example(
        tmp_path, start_server, ["-w", "2"]
    )
    served = _healthz_pids(server, 10)
    master = server.process.pid
    assert server.stop() == 0
    counters = metrics.read(metrics_dir)
    # A child of the master connected to migrate, and counted nothing in the
    # workers' directory; the master itself never connected ...
    assert (tmp_path / "app.db").exists()
    assert str(master) not in counters
    assert RETIRED not in counters
    assert metrics.total(counters.values()).processes == 2
    # ... so every worker that answered opened its own connection.
    assert served and master not in served
    for pid in served:
        assert counters[str(pid)].get("connection_created") >= 1
        assert counters[str(pid)].request_started >= 1


def _serve_check_config(cwd, args, app="app_example.wsgi:app"):
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "FRAMEWORK_SECRET_KEY": TEST_SECRET_KEY,
    }
    for name in ("FRAMEWORK_SETTINGS_MODULE", "DATABASE_URL", "GUNICORN_CMD_ARGS"):
        env.pop(name, None)
    return subprocess.run(
        [sys.executable, "-m", "framework", "--app", app, "serve", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_env_and_chdir_apply_before_the_master_migrates(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (tmp_path / "gunicorn.conf.py").write_text(
        "chdir = 'site'\nraw_env = ['DATABASE_URL=sqlite:///env.db']\n"
    )
    result = _serve_check_config(tmp_path, ["--check-config"])
    assert result.returncode == 0, result.stderr
    assert "Applied app_example.0001_initial" in result.stdout
    # Migrated where the workers will look: raw_env's database, in chdir.
    assert (site / "env.db").exists()
    assert not list(tmp_path.glob("*.db"))


def test_pythonpath_applies_before_the_master_imports_the_app(tmp_path):
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "tiny_served_app.py").write_text(
        "from framework import App\napp = App(__name__)\n"
    )
    result = _serve_check_config(
        tmp_path, ["--pythonpath", "lib", "--check-config"], app="tiny_served_app:app"
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.server
def test_workers_that_cannot_boot_stop_serve_without_a_master_traceback(
    tmp_path, start_server
):
    # gunicorn halts when a worker fails to boot; a second one failing while
    # it halts used to escape its arbiter as a HaltServer traceback.
    (tmp_path / "gunicorn.conf.py").write_text(
        "def post_worker_init(worker):\n    raise RuntimeError('hook broke')\n"
    )
    server = start_server(["-w", "3", "--no-migrate"], ready=False)
    assert server.process.wait(60) == 3
    output = server.output
    # No worker outlives the master (gunicorn's cut-short stop left some).
    workers = [
        int(pid) for pid in re.findall(r"Booting worker with pid: (\d+)", output)
    ]
    assert workers
    for pid in workers:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert output.rstrip().endswith("Worker failed to boot."), output[-2000:]
    assert "HaltServer" not in output
    # The only tracebacks are the workers' own, which gunicorn logs.
    assert output.count("Traceback") == output.count("Exception in worker process")
