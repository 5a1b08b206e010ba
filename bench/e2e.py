"""End-to-end speed: gunicorn + wrk, this framework against its peers.

    python bench/e2e.py [--runs 3] [--duration 3] [--workers 2] [--connections 4]

Every target serves the same endpoints, ``/hello`` (text), ``/users/<int:id>``
(JSON) and ``/response`` (a view building an explicit response object, as
``Response("Hello, World!", mimetype="text/plain")``),
under the same gunicorn configuration (sync
workers, no access log), and is driven by the same wrk run; each pair is
measured ``--runs`` times, round-robin over the targets (all servers run at
once, so a change in the machine's load hits every target alike), and the
median requests/s is reported with its share of the bare WSGI callable's, and
so is the workers' CPU time per request over the same runs (user + system time
from /proc, divided by the requests wrk completed: it leaves out time spent
waiting, so it scatters less than requests/s when the machine is busy). Targets:

- ``bare``: a plain WSGI callable (the ceiling);
- ``framework``: a ``framework.App`` with no receivers;
- ``app_example``: app_example's own app (its request receivers on, the ORM
  imported), the way it is deployed, plus the three endpoints above (they are
  the benchmark's, so they live here, not in app_example);
- ``falcon``, ``flask``, ``django``.

Then the memory of one gunicorn worker (after ``--warm-up`` requests: of
``/hello``, the same work for both apps, and for "app_example, its pages" of every
page and read endpoint of app_example, so templates are rendered and the
database is connected) of app_example and of a Flask hello-world, both ways a
worker gets its app: imported
in the worker (``gunicorn SPEC``, as Flask's docs deploy an app) and imported in
the master (``framework --app SPEC serve --preload``, the way ``framework serve``
deploys an app: the master imports it, has a child migrate, trims and freezes its
heap, then forks). VmRSS (every
page the worker maps, shared ones included), PSS (shared pages divided among the
processes sharing them) and USS (pages only this worker has: what one more worker
costs), from /proc/<pid>/smaps_rollup.

Results are printed as a Markdown table and written to
``bench/results/e2e.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parent.parent

# The apps -------------------------------------------------------------------------


def bare(environ, start_response):
    """The ceiling: a WSGI callable doing only what the endpoints need."""
    path = environ["PATH_INFO"]
    if path == "/hello" or path == "/response":
        body = b"Hello, World!"
        content_type = "text/plain; charset=utf-8"
    elif path.startswith("/users/") and path[7:].isdigit():
        user_id = int(path[7:])
        body = json.dumps(
            {"id": user_id, "name": f"user{user_id}"}, separators=(",", ":")
        ).encode()
        content_type = "application/json"
    else:
        start_response("404 Not Found", [("Content-Length", "0")])
        return [b""]
    start_response(
        "200 OK",
        [("Content-Type", content_type), ("Content-Length", str(len(body)))],
    )
    return [body]


def framework_app():
    from framework import App

    return add_endpoints(App(__name__))


def add_endpoints(app):
    """Add the benchmark's three endpoints to a framework app."""
    from framework import Response

    def hello(request):
        return "Hello, World!"

    def user(request, user_id):
        return {"id": user_id, "name": f"user{user_id}"}

    def response(request):
        return Response("Hello, World!", mimetype="text/plain")

    app.add_route("/hello", hello, endpoint="bench_hello")
    app.add_route("/users/<int:user_id>", user, endpoint="bench_user")
    app.add_route("/response", response, endpoint="bench_response")
    return app


def app_example_app():
    """app_example's app as deployed, with the benchmark's three endpoints."""
    from app_example.wsgi import app

    # The factory may run twice in a process (framework serve --preload loads
    # the app to migrate, then again for gunicorn): add the endpoints once.
    if "bench_hello" not in app.view_functions:
        add_endpoints(app)
    return app


def falcon_app():
    import falcon

    class Hello:
        def on_get(self, req, resp):
            resp.content_type = falcon.MEDIA_TEXT
            resp.text = "Hello, World!"

    class User:
        def on_get(self, req, resp, user_id):
            resp.media = {"id": user_id, "name": f"user{user_id}"}

    app = falcon.App()
    app.add_route("/hello", Hello())
    app.add_route("/response", Hello())  # Falcon's views always build one
    app.add_route("/users/{user_id:int}", User())
    return app


def flask_hello():
    """The memory reference: Flask's hello world."""
    from flask import Flask

    app = Flask(__name__)

    @app.route("/hello")
    def hello():
        return "Hello, World!"

    return app


def flask_app():
    from flask import Response

    app = flask_hello()

    @app.route("/response")
    def response():
        return Response("Hello, World!", mimetype="text/plain")

    @app.route("/users/<int:user_id>")
    def user(user_id):
        return {"id": user_id, "name": f"user{user_id}"}

    return app


def _django_hello(request):
    from django.http import HttpResponse

    return HttpResponse("Hello, World!", content_type="text/plain")


def _django_user(request, user_id):
    from django.http import JsonResponse

    return JsonResponse({"id": user_id, "name": f"user{user_id}"})


urlpatterns: list = []


def django_app():
    import django
    from django.conf import settings

    settings.configure(
        DEBUG=False,
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=__name__,
        MIDDLEWARE=[],
        INSTALLED_APPS=[],
        SECRET_KEY="bench",
        USE_TZ=True,
    )
    django.setup()
    from django.core.wsgi import get_wsgi_application
    from django.urls import path

    urlpatterns[:] = [
        path("hello", _django_hello),
        path("response", _django_hello),  # HttpResponse(...) is explicit
        path("users/<int:user_id>", _django_user),
    ]
    return get_wsgi_application()


TARGETS = {
    "bare": "bench.e2e:bare",
    "framework": "bench.e2e:framework_app()",
    "app_example": "bench.e2e:app_example_app()",
    "falcon": "bench.e2e:falcon_app()",
    "flask": "bench.e2e:flask_app()",
    "django": "bench.e2e:django_app()",
}
ENDPOINTS = {"/hello": "/hello", "/users/<id>": "/users/42", "/response": "/response"}

MEMORY_TARGETS = {
    "app_example": TARGETS["app_example"],
    "app_example, its pages": TARGETS["app_example"],
    "flask hello world": "bench.e2e:flask_hello()",
}
# What each memory target's worker serves before it is measured: /hello (the
# same work for both apps), or every page and read endpoint of app_example
# (templates rendered, database connected: a worker as it really runs).
MEMORY_WARM_UP = {
    "app_example, its pages": (
        "/",
        "/bookmarks/1",
        "/tags",
        "/api/bookmarks",
        "/api/bookmarks/1",
        "/api/tags",
        "/api/audit",
        "/export.csv",
        "/healthz",
        "/metrics",
        "/hello",
        "/users/42",
    ),
}
# How the worker got the app: `gunicorn SPEC` imports it in each worker;
# `framework serve` imports it in the master (to migrate first, or --preload).
MEMORY_MODES = {"in the worker": False, "in the master": True}

# The harness ----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def app_env(work_dir: pathlib.Path) -> dict[str, str]:
    """The environment of a served app, app_example's database in ``work_dir``."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": f"sqlite:///{work_dir / 'e2e.db'}",
        # framework serve refuses to start without a key outside DEBUG.
        "FRAMEWORK_SECRET_KEY": os.environ.get("FRAMEWORK_SECRET_KEY")
        or f"e2e-bench-{os.getpid()}-0123456789abcdef0123456789",
    }
    env.pop("GUNICORN_CMD_ARGS", None)
    return env


class Server:
    def __init__(
        self,
        spec: str,
        workers: int,
        work_dir: pathlib.Path,
        warm_up: tuple[str, ...] = tuple(ENDPOINTS.values()),
        warm_up_rounds: int = 20,
        preload: bool = False,
    ) -> None:
        self.port = free_port()
        if preload:
            # As `framework serve` deploys an app: imported in the master,
            # which freezes its heap before forking (framework.serving).
            launcher = [sys.executable, "-m", "framework", "--app", spec, "serve"]
            tail = ["--preload", "--no-access-log"]
        else:
            launcher, tail = [sys.executable, "-m", "gunicorn"], [spec]
        self.log_path = work_dir / f"gunicorn-{self.port}.log"
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [
                    *launcher,
                    "--workers",
                    str(workers),
                    "--worker-class",
                    "sync",
                    "--bind",
                    f"127.0.0.1:{self.port}",
                    "--graceful-timeout",
                    "5",
                    "--no-control-socket",
                    *tail,
                ],
                cwd=work_dir,
                env=app_env(work_dir),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            self._wait_and_warm_up(spec, workers, warm_up, warm_up_rounds)
        except BaseException:
            self.stop()  # a server that never answered is not left behind
            raise

    def _wait_and_warm_up(
        self, spec: str, workers: int, warm_up: tuple[str, ...], rounds: int
    ) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(self.log_path.read_text()[-2000:])
            try:
                with urllib.request.urlopen(self.url("/hello"), timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError(f"{spec} did not answer within 30 s")
        # Warm every worker up before measuring.
        for _ in range(rounds * workers):
            for path in warm_up:
                with urllib.request.urlopen(self.url(path), timeout=5) as response:
                    response.read()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def worker_pids(self) -> list[int]:
        children = pathlib.Path(
            f"/proc/{self.process.pid}/task/{self.process.pid}/children"
        )
        return [int(pid) for pid in children.read_text().split()]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def memory_kib(pid: int) -> dict[str, int]:
    """Return RSS, PSS and USS (private pages) of a process, in KiB."""
    rollup = pathlib.Path(f"/proc/{pid}/smaps_rollup").read_text()
    values = {
        key: int(value)
        for key, value in re.findall(r"^(\w+):\s+(\d+) kB", rollup, re.MULTILINE)
    }
    return {
        "rss": values["Rss"],
        "pss": values["Pss"],
        "uss": values["Private_Clean"] + values["Private_Dirty"],
    }


def wrk_run(
    wrk: str, url: str, duration: int, connections: int, threads: int
) -> tuple[float, int]:
    """Run wrk once: return requests/s and the number of requests completed."""
    result = subprocess.run(
        [wrk, f"-t{threads}", f"-c{connections}", f"-d{duration}s", url],
        capture_output=True,
        text=True,
        timeout=duration + 30,
        check=True,
    )
    match = re.search(r"Requests/sec:\s+([\d.]+)", result.stdout)
    count = re.search(r"(\d+) requests in", result.stdout)
    if match is None or count is None or "Non-2xx" in result.stdout:
        raise RuntimeError(f"wrk failed for {url}:\n{result.stdout}")
    return float(match.group(1)), int(count.group(1))


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time the processes have used so far."""
    ticks = 0
    for pid in pids:
        fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=int, default=3, help="seconds per wrk run")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--targets", default=",".join(TARGETS))
    parser.add_argument(
        "--warm-up",
        type=int,
        default=500,
        help="requests a worker serves before its memory is read",
    )
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "e2e.json"))
    args = parser.parse_args(argv)
    wrk = shutil.which("wrk")
    if wrk is None:
        print("wrk is not installed: apt-get install wrk", file=sys.stderr)
        return 2
    targets = [name.strip() for name in args.targets.split(",") if name.strip()]
    with tempfile.TemporaryDirectory(prefix="fw-e2e-") as tmp:
        work_dir = pathlib.Path(tmp)
        servers = {}
        try:
            for name in targets:
                servers[name] = Server(TARGETS[name], args.workers, work_dir)
            results = {name: {label: [] for label in ENDPOINTS} for name in targets}
            # Workers' CPU time per request: steadier than requests/s when
            # other work shares the machine (it does not count waiting).
            cpu_us = {name: {label: [] for label in ENDPOINTS} for name in targets}
            # Round-robin over the targets, run after run, so that a change in
            # the machine's load hits every target alike.
            for run in range(1, args.runs + 1):
                for name, server in servers.items():
                    for label, path in ENDPOINTS.items():
                        workers = server.worker_pids()
                        cpu_before = cpu_seconds(workers)
                        rps, count = wrk_run(
                            wrk,
                            server.url(path),
                            args.duration,
                            args.connections,
                            args.threads,
                        )
                        used = cpu_seconds(workers) - cpu_before
                        results[name][label].append(rps)
                        cpu_us[name][label].append(1e6 * used / count)
                print(f"run {run}/{args.runs} done", flush=True)
        finally:
            for server in servers.values():
                server.stop()
        for name, by in results.items():
            for label, runs in by.items():
                print(
                    f"{name:12} {label:12} "
                    + " ".join(f"{rps:9.0f}" for rps in runs)
                    + f"  median {statistics.median(runs):9.0f} req/s"
                )
        memory: dict[str, dict[str, dict[str, int]]] = {}
        # app_example's pages need its tables, also when gunicorn alone
        # (which does not migrate) serves it.
        subprocess.run(
            [
                sys.executable,
                "-m",
                "framework",
                "--app",
                TARGETS["app_example"],
                "migrate",
                "--noinput",
                "-v",
                "0",
            ],
            cwd=work_dir,
            env=app_env(work_dir),
            check=True,
            timeout=120,
        )
        for mode, preload in MEMORY_MODES.items():
            memory[mode] = {}
            for name, spec in MEMORY_TARGETS.items():
                warm_up = MEMORY_WARM_UP.get(name, ("/hello",))
                server = Server(
                    spec,
                    1,
                    work_dir,
                    warm_up=warm_up,
                    warm_up_rounds=max(1, args.warm_up // len(warm_up)),
                    preload=preload,
                )
                try:
                    (pid,) = server.worker_pids()
                    memory[mode][name] = memory_kib(pid)
                finally:
                    server.stop()
    table = render_table(results, cpu_us, memory, args)
    print()
    print(table)
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "config": vars(args),
                "requests_per_second": results,
                "worker_cpu_us_per_request": cpu_us,
                "medians": {
                    name: {label: statistics.median(runs) for label, runs in by.items()}
                    for name, by in results.items()
                },
                "worker_memory_kib": memory,
                "table": table,
            },
            indent=2,
        )
        + "\n"
    )
    return 0


def render_table(results, cpu_us, memory, args) -> str:
    lines = [
        f"gunicorn sync x {args.workers} workers, wrk -t{args.threads}"
        f" -c{args.connections} -d{args.duration}s, median of {args.runs} runs"
        f" ({os.cpu_count()} cores, wrk on the same machine)",
        "",
        "| target | "
        + " | ".join(f"{label} req/s | vs bare" for label in ENDPOINTS)
        + " |",
        "| --- |" + " ---: | ---: |" * len(ENDPOINTS),
    ]
    base = results.get("bare")
    for name, by in results.items():
        cells = []
        for label in ENDPOINTS:
            median = statistics.median(by[label])
            share = (
                f"{100 * median / statistics.median(base[label]):.0f}%" if base else "-"
            )
            cells += [f"{median:,.0f}", share]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Workers' CPU time per request (user + system, same runs, median;"
        " 'as fast as' = bare's CPU time / this one's):",
        "",
        "| target | "
        + " | ".join(f"{label} us/req | as fast as bare" for label in ENDPOINTS)
        + " |",
        "| --- |" + " ---: | ---: |" * len(ENDPOINTS),
    ]
    base_cpu = cpu_us.get("bare")
    for name, by in cpu_us.items():
        cells = []
        for label in ENDPOINTS:
            median = statistics.median(by[label])
            share = (
                f"{100 * statistics.median(base_cpu[label]) / median:.0f}%"
                if base_cpu
                else "-"
            )
            cells += [f"{median:.1f}", share]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    if memory:
        lines += [
            "",
            f"One sync worker after {args.warm_up} requests:",
            "",
            "| worker | app imported | RSS | PSS | USS |",
            "| --- | --- | ---: | ---: | ---: |",
        ]
        for mode, by_name in memory.items():
            for name, kib in by_name.items():
                lines.append(
                    f"| {name} | {mode} | {kib['rss'] / 1024:.1f} MiB"
                    f" | {kib['pss'] / 1024:.1f} MiB | {kib['uss'] / 1024:.1f} MiB |"
                )
        flask = "flask hello world"
        for app in ("app_example", "app_example, its pages"):
            pairs = [
                (
                    "each as its docs deploy it (framework serve | gunicorn SPEC)",
                    memory.get("in the master", {}).get(app),
                    memory.get("in the worker", {}).get(flask),
                ),
                *(
                    (mode, by_name.get(app), by_name.get(flask))
                    for mode, by_name in memory.items()
                ),
            ]
            for label, mine, theirs in pairs:
                if not mine or not theirs:
                    continue
                lines.append("")
                for kind in ("rss", "pss", "uss"):
                    delta = (mine[kind] - theirs[kind]) / 1024
                    lines.append(
                        f"{label}: {app} worker - Flask hello-world worker,"
                        f" {kind.upper()}: {delta:+.1f} MiB (target: below +10 MiB)"
                    )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
