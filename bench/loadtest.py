"""Load test app_example under gunicorn, with signal accounting.

    python bench/loadtest.py --worker-class gthread --database postgres
    framework loadtest --requests 5000 --instances 2 --database postgres

Starts gunicorn (``framework serve``) serving app_example on free 127.0.0.1
ports with a fresh database (a SQLite file, or a PostgreSQL database created
for the run and dropped after it), drives a bounded mixed workload through it
(reads, HTML pages, writes, a streamed CSV export, health checks and an
endpoint that fails on purpose) with wrk and a Lua script, or with a small
built-in Python client when wrk is not installed, shows progress phase by
phase, then stops the servers gracefully and checks the books:

- every request the generator completed has exactly one ``request_started``
  and one ``request_finished`` (summed over every worker of every instance,
  from app_example's per-worker counters);
- ``got_request_exception`` equals the failures injected through ``/fail``,
  and nothing else failed;
- every write that got a 201 is in the database, exactly once, and nothing
  else was written; the tag counts kept by ``m2m_changed`` match the links;
  every bookmark has its search document (the commit-deferred receiver ran).

It prints throughput, p50/p90/p99 latency and errors, writes
``results.json`` and ``latency.png`` (needs matplotlib, the ``loadtest``
extra) in the output directory, and exits non-zero when the books do not
balance.

Each wrk thread drives one connection and stops right after the response
that exhausts its budget, so no request is in flight when a phase ends: the
generator's count is exact.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import http.client
import json
import os
import pathlib
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import types
import uuid

ROOT = pathlib.Path(__file__).resolve().parent.parent
PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=test connect_timeout=3"
TAGS = ("python", "web", "databases", "reading")

# Shares of the mixed workload: kind -> (weight, method, path).
WORKLOAD = {
    "list": (34, "GET", "/api/bookmarks?limit=10"),
    "page": (12, "GET", "/"),
    "detail": (10, "GET", "/bookmarks/1"),
    "write": (25, "POST", "/api/bookmarks"),
    "export": (3, "GET", "/export.csv"),
    "health": (8, "GET", "/healthz"),
    "fail": (8, "GET", "/fail"),
}
EXPECTED_STATUS = {"write": 201, "fail": 500}

# The API's writes need a bearer token: one is registered on the fresh database
# (``framework createtoken loadtest --token``). The servers of one run share a
# secret key; /fail is turned on (FAIL_VIEW).
API_TOKEN = f"loadtest-{uuid.uuid4().hex}{uuid.uuid4().hex}"
SECRET_KEY = f"loadtest-{uuid.uuid4().hex}{uuid.uuid4().hex}"

LUA = r"""
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_usec; } fw_timeval;
int gettimeofday(fw_timeval *tv, void *tz);
]]
local tv = ffi.new("fw_timeval")
local function now()
  ffi.C.gettimeofday(tv, nil)
  return tonumber(tv.tv_sec) + tonumber(tv.tv_usec) / 1e6
end

local out_dir = os.getenv("LOADTEST_OUT")
local prefix = os.getenv("LOADTEST_PREFIX")
local budget = tonumber(os.getenv("LOADTEST_BUDGET"))
local auth = "Bearer " .. os.getenv("LOADTEST_TOKEN")
local kinds = {KINDS}
local tags = {TAGS}
local threads = {}
local counter = 1

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

tid = 0
local done_count = 0
local samples = {}
local writes = {}
local current = nil
local started = 0
local serial = 0
local title = nil

function init(args)
  math.randomseed(tid * 7919 + os.time())
end

function request()
  local pick = math.random(kinds.total)
  for _, k in ipairs(kinds) do
    if pick <= k.upto then current = k break end
  end
  started = now()
  if current.name == "write" then
    serial = serial + 1
    title = string.format("%s-%d-%d", prefix, tid, serial)
    local tag = tags[math.random(#tags)]
    local body = string.format(
      '{"url": "https://example.org/%s", "title": "%s", "tags": ["%s"]}',
      title, title, tag)
    return wrk.format("POST", current.path,
      {["Content-Type"] = "application/json", ["Authorization"] = auth}, body)
  end
  return wrk.format(current.method, current.path)
end

function response(status, headers, body)
  local t = now()
  done_count = done_count + 1
  samples[#samples + 1] = string.format("%.6f %.3f %s %d", t, (t - started) * 1000,
    current.name, status)
  if current.name == "write" and status == 201 then
    writes[#writes + 1] = title
  end
  if done_count >= budget then
    local f = io.open(string.format("%s/thread-%d.samples", out_dir, tid), "w")
    f:write(table.concat(samples, "\n"), "\n")
    f:close()
    f = io.open(string.format("%s/thread-%d.writes", out_dir, tid), "w")
    if #writes > 0 then f:write(table.concat(writes, "\n"), "\n") end
    f:close()
    f = io.open(string.format("%s/thread-%d.done", out_dir, tid), "w")
    f:write(tostring(done_count), "\n")
    f:close()
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "connect": %d, "read": %d, "write": %d, '
      .. '"status": %d, "timeout": %d}\n',
    summary.requests, e.connect, e.read, e.write, e.status, e.timeout))
end
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(
        len(sorted_values) - 1, max(0, round(fraction * len(sorted_values)) - 1)
    )
    return sorted_values[index]


# Databases ---------------------------------------------------------------------


class Database:
    """A fresh database for one run."""

    def __init__(self, kind: str, run_dir: pathlib.Path) -> None:
        self.kind = kind
        self.name = ""
        if kind == "sqlite":
            self.url = f"sqlite:///{run_dir / 'loadtest.db'}"
        elif kind == "postgres":
            import psycopg

            self.name = f"fw_loadtest_{os.getpid()}_{uuid.uuid4().hex[:8]}"
            with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
                # CREATE DATABASE copies template1 and fails while another
                # session (a parallel test run) is connected to it: retry.
                for attempt in range(20):
                    try:
                        admin.execute(f"CREATE DATABASE {self.name}")
                        break
                    except psycopg.errors.ObjectInUse:
                        if attempt == 19:
                            raise
                        time.sleep(0.25)
            self.url = f"postgresql://postgres@127.0.0.1:5432/{self.name}"
        else:
            raise ValueError(f"unknown database {kind!r}: use sqlite or postgres")

    def query(self, sql: str) -> list[tuple]:
        if self.kind == "sqlite":
            import sqlite3

            with contextlib.closing(
                sqlite3.connect(self.url[len("sqlite:///") :])
            ) as db:
                return db.execute(sql).fetchall()
        import psycopg

        with psycopg.connect(self.url) as db:
            return db.execute(sql).fetchall()

    def drop(self) -> None:
        if self.kind == "postgres":
            import psycopg

            with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
                admin.execute(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")


# Servers ---------------------------------------------------------------------------


class Instance:
    """One gunicorn master serving app_example, output in files."""

    def __init__(
        self, index: int, run_dir: pathlib.Path, database: Database, args: list[str]
    ) -> None:
        self.index = index
        self.port = free_port()
        self.metrics_dir = run_dir / f"metrics-{index}"
        self.log_path = run_dir / f"server-{index}.log"
        env = app_env(database)
        env["FRAMEWORK_METRICS_DIR"] = str(self.metrics_dir)
        command = [
            sys.executable,
            "-m",
            "framework",
            "--app",
            "app_example.wsgi:app",
            "serve",
            "--no-migrate",
            "--bind",
            f"127.0.0.1:{self.port}",
            "--access-logfile",
            str(run_dir / f"access-{index}.log"),
            "--graceful-timeout",
            "20",
            *args,
        ]
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                command,
                cwd=run_dir,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"gunicorn exited early:\n{self.log_path.read_text()[-3000:]}"
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"gunicorn did not listen within {timeout} s")

    def stop(self, timeout: float = 30.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
            return -9

    def counters(self) -> dict[int, dict[str, float]]:
        return app_metrics().read_all(str(self.metrics_dir))


def app_env(database: Database) -> dict[str, str]:
    """The environment of an app_example process using ``database``."""
    env = {
        **os.environ,
        "DATABASE_URL": database.url,
        "FRAMEWORK_SETTINGS_MODULE": "app_example.settings",
        "FRAMEWORK_SECRET_KEY": SECRET_KEY,
        "FRAMEWORK_FAIL_VIEW": "1",
        "PYTHONPATH": os.pathsep.join(
            p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p
        ),
    }
    env.pop("GUNICORN_CMD_ARGS", None)
    return env


def app_metrics() -> types.ModuleType:
    """``app_example.metrics``, also when this file runs as a script."""
    sys.path.insert(0, str(ROOT))
    try:
        from app_example import metrics
    finally:
        sys.path.remove(str(ROOT))
    return metrics


def migrate(database: Database, run_dir: pathlib.Path) -> None:
    framework = [sys.executable, "-m", "framework", "--app", "app_example.wsgi:app"]
    with open(run_dir / "migrate.log", "wb") as log:
        for command in (
            ["migrate", "--noinput"],
            ["createtoken", "loadtest", "--token", API_TOKEN],
        ):
            subprocess.run(
                [*framework, *command],
                cwd=run_dir,
                env=app_env(database),
                stdout=log,
                stderr=subprocess.STDOUT,
                check=True,
                timeout=120,
            )


# Generators ------------------------------------------------------------------------


def _lua_script() -> str:
    kinds = []
    upto = 0
    for name, (weight, method, path) in WORKLOAD.items():
        upto += weight
        kinds.append(
            f'{{name = "{name}", method = "{method}", path = "{path}", upto = {upto}}}'
        )
    kinds_src = ", ".join(kinds) + f", total = {upto}"
    tags_src = ", ".join(f'"{tag}"' for tag in TAGS)
    return LUA.replace("{KINDS}", "{" + kinds_src + "}").replace(
        "{TAGS}", "{" + tags_src + "}"
    )


def run_wrk_phase(
    wrk: str,
    port: int,
    phase_dir: pathlib.Path,
    script: pathlib.Path,
    connections: int,
    budget: int,
    prefix: str,
    timeout: float,
) -> dict:
    """One wrk run: ``connections`` threads of one connection, ``budget`` each."""
    phase_dir.mkdir(parents=True)
    env = {
        **os.environ,
        "LOADTEST_OUT": str(phase_dir),
        "LOADTEST_BUDGET": str(budget),
        "LOADTEST_PREFIX": prefix,
        "LOADTEST_TOKEN": API_TOKEN,
    }
    out_path = phase_dir / "wrk.out"
    with open(out_path, "wb") as out:
        process = subprocess.Popen(
            [
                wrk,
                f"-t{connections}",
                f"-c{connections}",
                f"-d{int(timeout)}s",
                "--timeout",
                "10s",
                "-s",
                str(script),
                f"http://127.0.0.1:{port}",
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and process.poll() is None:
            if len(list(phase_dir.glob("thread-*.done"))) >= connections:
                break
            time.sleep(0.01)
    finally:
        if process.poll() is None:
            # wrk sleeps for the whole duration; SIGINT ends it and prints.
            process.send_signal(signal.SIGINT)
        process.wait(30)
    summary = {}
    for line in out_path.read_text().splitlines():
        if line.startswith("{"):
            summary = json.loads(line)
    finished = len(list(phase_dir.glob("thread-*.done")))
    return {"socket_errors": summary, "threads_finished": finished}


LOCUSTFILE = """
import json
import os
import random
import time

from locust import HttpUser
from locust import events
from locust import task
from locust.exception import StopUser

WORKLOAD = json.loads(os.environ["LOADTEST_WORKLOAD"])
TAGS = json.loads(os.environ["LOADTEST_TAGS"])
OUT = os.environ["LOADTEST_OUT"]
PREFIX = os.environ["LOADTEST_PREFIX"]
BUDGET = int(os.environ["LOADTEST_BUDGET"])
USERS = int(os.environ["LOADTEST_USERS"])
AUTH = {"Authorization": "Bearer " + os.environ["LOADTEST_TOKEN"]}
NAMES = list(WORKLOAD)
WEIGHTS = [WORKLOAD[name][0] for name in NAMES]
state = {"next_id": 1, "finished": 0}


class Client(HttpUser):
    wait_time = staticmethod(lambda: 0)

    def on_start(self):
        self.tid = state["next_id"]
        state["next_id"] += 1
        self.rng = random.Random(self.tid)
        self.samples, self.writes, self.serial = [], [], 0

    @task
    def one_request(self):
        if self.serial >= BUDGET:
            self.finish()
        self.serial += 1
        name = self.rng.choices(NAMES, WEIGHTS)[0]
        _weight, method, path = WORKLOAD[name]
        kwargs = {}
        if name == "write":
            title = f"{PREFIX}-{self.tid}-{self.serial}"
            kwargs["json"] = {
                "url": f"https://example.org/{title}",
                "title": title,
                "tags": [self.rng.choice(TAGS)],
            }
            kwargs["headers"] = AUTH
        started = time.time()
        with self.client.request(
            method, path, name=name, catch_response=True, **kwargs
        ) as response:
            response.success()
        end = time.time()
        self.samples.append(
            f"{end:.6f} {(end - started) * 1000:.3f} {name} {response.status_code}"
        )
        if name == "write" and response.status_code == 201:
            self.writes.append(title)

    def finish(self):
        base = os.path.join(OUT, f"thread-{self.tid}")
        with open(base + ".samples", "w") as file:
            file.write("\\n".join(self.samples) + "\\n")
        with open(base + ".writes", "w") as file:
            file.write("".join(title + "\\n" for title in self.writes))
        with open(base + ".done", "w") as file:
            file.write(f"{len(self.samples)}\\n")
        state["finished"] += 1
        if state["finished"] >= USERS:
            self.environment.runner.quit()
        raise StopUser()
"""


def run_locust_phase(
    port: int, phase_dir: pathlib.Path, connections: int, budget: int, prefix: str
) -> dict:
    """Locust, headless: one user per connection, ``budget`` requests each."""
    phase_dir.mkdir(parents=True)
    locustfile = phase_dir / "locustfile.py"
    locustfile.write_text(LOCUSTFILE)
    env = {
        **os.environ,
        "LOADTEST_WORKLOAD": json.dumps(WORKLOAD),
        "LOADTEST_TAGS": json.dumps(TAGS),
        "LOADTEST_OUT": str(phase_dir),
        "LOADTEST_PREFIX": prefix,
        "LOADTEST_BUDGET": str(budget),
        "LOADTEST_USERS": str(connections),
        "LOADTEST_TOKEN": API_TOKEN,
    }
    with open(phase_dir / "locust.out", "wb") as out:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "locust",
                "-f",
                str(locustfile),
                "--headless",
                "--users",
                str(connections),
                "--spawn-rate",
                str(connections),
                "--host",
                f"http://127.0.0.1:{port}",
                "--run-time",
                "300s",
                "--only-summary",
                "--loglevel",
                "WARNING",
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=330,
            check=False,
        )
    finished = len(list(phase_dir.glob("thread-*.done")))
    return {"socket_errors": {}, "threads_finished": finished}


def run_python_phase(
    port: int, phase_dir: pathlib.Path, connections: int, budget: int, prefix: str
) -> dict:
    """The fallback generator: threads with one keep-alive connection each."""
    phase_dir.mkdir(parents=True)
    weights = [weight for weight, _method, _path in WORKLOAD.values()]
    names = list(WORKLOAD)
    errors = collections.Counter()

    def drive(tid: int) -> None:
        rng = random.Random(tid)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        samples, writes = [], []
        for serial in range(1, budget + 1):
            name = rng.choices(names, weights)[0]
            _weight, method, path = WORKLOAD[name]
            body, headers = None, {}
            if name == "write":
                title = f"{prefix}-{tid}-{serial}"
                body = json.dumps(
                    {
                        "url": f"https://example.org/{title}",
                        "title": title,
                        "tags": [rng.choice(TAGS)],
                    }
                )
                headers = {
                    "Content-Type": "application/json",
                    "Authorization": f"Bearer {API_TOKEN}",
                }
            started = time.time()
            try:
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                response.read()
            except OSError:
                errors["read"] += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                continue
            end = time.time()
            samples.append(
                f"{end:.6f} {(end - started) * 1000:.3f} {name} {response.status}"
            )
            if name == "write" and response.status == 201:
                writes.append(title)
        conn.close()
        (phase_dir / f"thread-{tid}.samples").write_text("\n".join(samples) + "\n")
        (phase_dir / f"thread-{tid}.writes").write_text(
            "".join(title + "\n" for title in writes)
        )
        (phase_dir / f"thread-{tid}.done").write_text(f"{len(samples)}\n")

    workers = [
        threading.Thread(target=drive, args=(tid,)) for tid in range(1, connections + 1)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(300)
    return {
        "socket_errors": {"requests": 0, **dict(errors)},
        "threads_finished": connections,
    }


def _has_locust() -> bool:
    import importlib.util

    return importlib.util.find_spec("locust") is not None


def read_phase(phase_dir: pathlib.Path) -> tuple[list[tuple], list[str]]:
    samples, writes = [], []
    for path in sorted(phase_dir.glob("thread-*.samples")):
        for line in path.read_text().splitlines():
            if line.strip():
                at, latency, kind, status = line.split()
                samples.append((float(at), float(latency), kind, int(status)))
    for path in sorted(phase_dir.glob("thread-*.writes")):
        writes.extend(line for line in path.read_text().splitlines() if line)
    return samples, writes


# The run -----------------------------------------------------------------------------


def run(  # noqa: C901
    *,
    worker_class: str = "sync",
    workers: int | None = None,
    threads: int = 4,
    database: str = "sqlite",
    requests: int = 2000,
    connections: int = 4,
    phases: int = 5,
    instances: int = 1,
    generator: str = "auto",
    config_file: str | os.PathLike[str] | None = None,
    out_dir: str | os.PathLike[str] = "loadtest-results",
    chart: bool = True,
    echo=print,
) -> dict:
    """Run one load test and return its results (also written as JSON)."""
    wrk = shutil.which("wrk")
    if generator == "auto":
        generator = "wrk" if wrk else "locust" if _has_locust() else "python"
    if generator == "wrk" and not wrk:
        raise RuntimeError("wrk is not installed: apt-get install wrk")
    if generator == "locust" and not _has_locust():
        raise RuntimeError("locust is not installed: pip install '.[loadtest]'")
    if connections < instances:
        raise ValueError("need at least one connection per instance")
    run_id = time.strftime("%Y%m%d-%H%M%S") + f"-{worker_class}-{database}"
    if instances > 1:
        run_id += f"-x{instances}"
    run_dir = pathlib.Path(out_dir).resolve() / run_id
    run_dir.mkdir(parents=True, exist_ok=False)
    per_instance = [connections // instances] * instances
    for index in range(connections % instances):
        per_instance[index] += 1
    if workers is None:
        workers = per_instance[0] + 1 if worker_class == "sync" else 2
    if worker_class == "sync" and workers <= per_instance[0]:
        # A wrk thread that reached its budget leaves one idle connection open
        # until wrk exits, and a sync worker blocks reading it: keep one free.
        raise ValueError(
            f"sync workers ({workers}) must outnumber the connections per instance"
            f" ({per_instance[0]}); a sync worker blocks on an idle connection."
        )
    budget = max(1, requests // (phases * connections))
    server_args = ["-w", str(workers), "-k", worker_class]
    if worker_class == "gthread":
        server_args += ["--threads", str(threads)]
    if config_file is not None:
        # A gunicorn configuration file for the servers (hooks, settings).
        config_file = os.fspath(pathlib.Path(config_file).resolve())
        server_args += ["--config", config_file]
    echo(
        f"loadtest: {instances} x gunicorn {worker_class} ({workers} workers"
        + (f" x {threads} threads" if worker_class == "gthread" else "")
        + f") on {database}; {generator}, {connections} connections,"
        f" {phases} phases x {budget * connections} requests -> {run_dir}"
    )
    db = Database(database, run_dir)
    servers: list[Instance] = []
    script = run_dir / "workload.lua"
    script.write_text(_lua_script())
    samples: list[tuple] = []
    writes: list[str] = []
    completed = [0] * instances
    socket_errors: collections.Counter[str] = collections.Counter()
    phase_results = []
    try:
        migrate(db, run_dir)
        servers = [Instance(i, run_dir, db, server_args) for i in range(instances)]
        for server in servers:
            server.wait_ready()
        started_at = time.time()
        for phase in range(1, phases + 1):
            phase_start = time.time()
            results: list[dict] = [{}] * instances
            runners = []
            for index, server in enumerate(servers):
                phase_dir = run_dir / f"phase-{phase}" / f"instance-{index}"
                prefix = f"lt{phase}i{index}"

                def go(
                    index=index,
                    server=server,
                    phase_dir=phase_dir,
                    prefix=prefix,
                    results=results,
                ):
                    if generator == "locust":
                        results[index] = run_locust_phase(
                            server.port, phase_dir, per_instance[index], budget, prefix
                        )
                    elif generator == "wrk":
                        results[index] = run_wrk_phase(
                            wrk,
                            server.port,
                            phase_dir,
                            script,
                            per_instance[index],
                            budget,
                            prefix,
                            timeout=120,
                        )
                    else:
                        results[index] = run_python_phase(
                            server.port, phase_dir, per_instance[index], budget, prefix
                        )

                runners.append(threading.Thread(target=go))
            for runner in runners:
                runner.start()
            for runner in runners:
                runner.join(300)
            phase_samples = []
            for index in range(instances):
                phase_dir = run_dir / f"phase-{phase}" / f"instance-{index}"
                got, wrote = read_phase(phase_dir)
                completed[index] += len(got)
                phase_samples += got
                writes += wrote
                for key, value in results[index].get("socket_errors", {}).items():
                    if key != "requests" and key != "status":
                        socket_errors[key] += value
            samples += phase_samples
            elapsed = time.time() - phase_start
            latencies = sorted(sample[1] for sample in phase_samples)
            bad = sum(
                1
                for _at, _lat, kind, status in phase_samples
                if status != EXPECTED_STATUS.get(kind, 200)
            )
            phase_result = {
                "phase": phase,
                "requests": len(phase_samples),
                "seconds": round(elapsed, 3),
                "p50_ms": percentile(latencies, 0.50),
                "p99_ms": percentile(latencies, 0.99),
                "unexpected_status": bad,
            }
            phase_results.append(phase_result)
            echo(
                f"  [{phase}/{phases}] {len(phase_samples)} requests in {elapsed:.2f} s"
                f" ({len(phase_samples) / elapsed:.0f} req/s), p50"
                f" {phase_result['p50_ms']:.1f} ms, p99"
                f" {phase_result['p99_ms']:.1f} ms, unexpected status {bad}"
            )
        duration = time.time() - started_at
        exit_codes = [server.stop() for server in servers]
        counters = [server.counters() for server in servers]
        db_titles = [
            row[0]
            for row in db.query(
                "SELECT title FROM app_example_bookmark WHERE title LIKE 'lt%'"
            )
        ]
        tag_rows = db.query(
            "SELECT t.name, t.bookmark_count, (SELECT COUNT(*) FROM"
            " app_example_bookmark_tags l WHERE l.tag_id = t.id) FROM app_example_tag t"
        )
        bookmarks_total = db.query("SELECT COUNT(*) FROM app_example_bookmark")[0][0]
        indexed = db.query(
            "SELECT COUNT(DISTINCT bookmark_id) FROM app_example_searchdocument"
        )[0][0]
    finally:
        for server in servers:
            server.stop()
        with contextlib.suppress(Exception):
            db.drop()

    by_kind: dict[str, collections.Counter[int]] = collections.defaultdict(
        collections.Counter
    )
    for _at, _lat, kind, status in samples:
        by_kind[kind][status] += 1
    injected = by_kind["fail"][500]
    unexpected = {
        kind: {str(status): count for status, count in statuses.items()}
        for kind, statuses in by_kind.items()
        if any(status != EXPECTED_STATUS.get(kind, 200) for status in statuses)
    }
    retired_key = app_metrics().RETIRED
    instances_books = []
    for index in range(instances):
        totals = collections.Counter()
        for values in counters[index].values():
            for name, value in values.items():
                totals[name] += value
        # Exited workers are summed into one RETIRED entry, which knows how
        # many processes it holds.
        retired = counters[index].get(retired_key, {}).get("processes", 0)
        instances_books.append(
            {
                "port": servers[index].port,
                "exit_code": exit_codes[index],
                "completed_by_generator": completed[index],
                "request_started": int(totals["request_started"]),
                "request_finished": int(totals["request_finished"]),
                "got_request_exception": int(totals["got_request_exception"]),
                "connection_created": int(totals["connection_created"]),
                "workers_seen": int(
                    len(counters[index]) - (retired_key in counters[index]) + retired
                ),
            }
        )
    checks, details = check_books(
        instances=instances_books,
        injected=injected,
        unexpected=unexpected,
        socket_errors=socket_errors,
        writes=writes,
        db_titles=db_titles,
        tag_rows=tag_rows,
        bookmarks=bookmarks_total,
        indexed=indexed,
    )
    latencies = sorted(sample[1] for sample in samples)
    total = len(samples)
    result = {
        "config": {
            "worker_class": worker_class,
            "workers": workers,
            "threads": threads if worker_class == "gthread" else 1,
            "database": database,
            "instances": instances,
            "generator": generator,
            "gunicorn_config": config_file,
            "connections": connections,
            "phases": phases,
            "requests_per_thread_per_phase": budget,
        },
        "requests": total,
        "duration_seconds": round(duration, 3),
        "throughput_rps": round(total / duration, 1) if duration else 0.0,
        "latency_ms": {
            "p50": percentile(latencies, 0.50),
            "p90": percentile(latencies, 0.90),
            "p99": percentile(latencies, 0.99),
            "max": latencies[-1] if latencies else 0.0,
        },
        "by_kind": {
            kind: {str(s): c for s, c in statuses.items()}
            for kind, statuses in sorted(by_kind.items())
        },
        "errors": {
            "socket": dict(socket_errors),
            "unexpected_status": unexpected,
        },
        "accounting": {
            "instances": instances_books,
            "injected_failures": injected,
            "successful_writes": len(writes),
            "writes_in_database": len(db_titles),
            **details,
            "bookmarks": bookmarks_total,
            "indexed_bookmarks": indexed,
            "checks": checks,
        },
        "balanced": all(checks.values()),
        "phases": phase_results,
        "run_dir": str(run_dir),
    }
    (run_dir / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    if chart:
        result["chart"] = write_chart(samples, run_dir / "latency.png", echo)
    report(result, echo)
    return result


def check_books(
    *,
    instances: list[dict],
    injected: int,
    unexpected: dict,
    socket_errors: dict,
    writes: list[str],
    db_titles: list[str],
    tag_rows: list[tuple],
    bookmarks: int,
    indexed: int,
) -> tuple[dict[str, bool], dict]:
    """Compare what the generator saw with what the servers and database say.

    :returns: ``(checks, details)``: each check's name and whether it holds,
        and the evidence (missing, duplicated and unexpected writes...).
    """
    title_counts = collections.Counter(db_titles)
    missing = sorted(set(writes) - set(title_counts))
    duplicated = sorted(title for title, count in title_counts.items() if count > 1)
    unexpected_rows = sorted(set(title_counts) - set(writes))
    bad_tags = [list(row) for row in tag_rows if row[1] != row[2]]
    checks = {
        "every started request finished": all(
            b["request_started"] == b["request_finished"] for b in instances
        ),
        "one request_started per completed request": all(
            b["request_started"] == b["completed_by_generator"] for b in instances
        ),
        "got_request_exception == injected failures": sum(
            b["got_request_exception"] for b in instances
        )
        == injected,
        "no unexpected status": not unexpected,
        "no socket errors": not any(socket_errors.values()),
        "every successful write is in the database once": not missing
        and not duplicated,
        "nothing else was written": not unexpected_rows,
        "tag counts match the links (m2m_changed)": not bad_tags,
        "every bookmark is indexed (on_commit receiver)": indexed == bookmarks,
        "servers stopped cleanly": all(b["exit_code"] == 0 for b in instances),
    }
    details = {
        "missing_writes": missing[:20],
        "duplicated_writes": duplicated[:20],
        "unexpected_rows": unexpected_rows[:20],
        "tag_count_mismatches": bad_tags,
    }
    return checks, details


def write_chart(samples: list[tuple], path: pathlib.Path, echo=print) -> str | None:
    """Latency percentiles and throughput over time, as a PNG."""
    try:
        import matplotlib
    except ImportError:
        echo("  (no chart: matplotlib is not installed; pip install '.[loadtest]')")
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not samples:
        return None
    start = min(sample[0] for sample in samples)
    end = max(sample[0] for sample in samples)
    bins = max(1, min(60, len(samples) // 50))
    width = max((end - start) / bins, 1e-6)
    buckets: list[list[float]] = [[] for _ in range(bins)]
    for at, latency, _kind, _status in samples:
        buckets[min(bins - 1, int((at - start) / width))].append(latency)
    times = [(index + 0.5) * width for index in range(bins)]
    figure, axis = plt.subplots(figsize=(9, 4.5))
    for fraction, label in ((0.5, "p50"), (0.9, "p90"), (0.99, "p99")):
        axis.plot(
            times,
            [percentile(sorted(b), fraction) if b else float("nan") for b in buckets],
            label=label,
        )
    axis.set_xlabel("seconds since start")
    axis.set_ylabel("latency (ms)")
    axis.set_yscale("log")
    rate = axis.twinx()
    rate.plot(
        times, [len(b) / width for b in buckets], color="grey", alpha=0.4, label="req/s"
    )
    rate.set_ylabel("requests/s")
    axis.legend(loc="upper left")
    axis.set_title("app_example under gunicorn: latency over time")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return str(path)


def report(result: dict, echo=print) -> None:
    latency = result["latency_ms"]
    books = result["accounting"]
    echo(
        f"throughput {result['throughput_rps']} req/s ({result['requests']} requests"
        f" in {result['duration_seconds']} s); latency p50 {latency['p50']:.2f} ms,"
        f" p90 {latency['p90']:.2f} ms, p99 {latency['p99']:.2f} ms"
    )
    echo(
        f"errors: socket {sum(result['errors']['socket'].values())},"
        f" unexpected status {result['errors']['unexpected_status'] or 0},"
        f" injected failures {books['injected_failures']}"
    )
    for index, instance in enumerate(books["instances"]):
        echo(
            f"instance {index} (:{instance['port']}): completed"
            f" {instance['completed_by_generator']}, request_started"
            f" {instance['request_started']}, request_finished"
            f" {instance['request_finished']}, got_request_exception"
            f" {instance['got_request_exception']}, connection_created"
            f" {instance['connection_created']} in {instance['workers_seen']} workers"
        )
    echo(
        f"writes: {books['successful_writes']} succeeded,"
        f" {books['writes_in_database']} in the database; bookmarks"
        f" {books['bookmarks']}, indexed {books['indexed_bookmarks']}"
    )
    for name, ok in books["checks"].items():
        echo(f"  [{'ok' if ok else 'FAIL'}] {name}")
    echo(
        ("BALANCED" if result["balanced"] else "NOT BALANCED")
        + f"; results in {result['run_dir']}/results.json"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worker-class", choices=["sync", "gthread"], default="sync")
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="per instance (default: connections + 1 for sync, 2 for gthread)",
    )
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--phases", type=int, default=5)
    parser.add_argument("--instances", type=int, default=1)
    parser.add_argument(
        "--generator", choices=["auto", "wrk", "locust", "python"], default="auto"
    )
    parser.add_argument(
        "--config", help="a gunicorn configuration file for the servers"
    )
    parser.add_argument("--out", default="loadtest-results")
    parser.add_argument("--no-chart", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result = run(
        worker_class=args.worker_class,
        workers=args.workers,
        threads=args.threads,
        database=args.database,
        requests=args.requests,
        connections=args.connections,
        phases=args.phases,
        instances=args.instances,
        generator=args.generator,
        config_file=args.config,
        out_dir=args.out,
        chart=not args.no_chart,
    )
    return 0 if result["balanced"] else 1


if __name__ == "__main__":
    sys.exit(main())
