"""The Locust generator, in Locust's own distributed mode when asked.

``loadtest`` writes a self-contained locustfile into the run directory: the
scenario as one ``FastHttpUser`` class per instance (one user per connection,
each with its budget of requests or until the deadline), plus a small plugin
that records every request Locust reports (``events.request``) as a sample
line. Workers send their samples to the master as Locust custom messages, so
workers on other hosts are accounted like local ones; the master writes them
to ``samples/locust.tsv`` and stops the test gracefully (every user finishes
the request it is in) once every user is done, the requests are all made, or
the time is up. With ``--locustfile`` the user's own file is loaded beside the
plugin, which then supplies only the recording and the bounds.

This module never imports Locust (it monkey-patches the process it runs in):
Locust runs in processes of its own.
"""

from __future__ import annotations

import importlib.util
import json
import pathlib
import signal
import subprocess
import sys
import time

from ._plan import Plan

__all__ = ["LocustRun", "has_locust", "locustfile"]

_TEMPLATE = r'''"""Written by framework loadtest: Locust users and the books.

Workers on other hosts can fetch it from the master: locust --worker -f - ...
"""

import json
import os
import random
import time

import gevent
from locust import FastHttpUser
from locust import constant
from locust import events
from locust import task
from locust.exception import StopUser
from locust.runners import MasterRunner
from locust.runners import WorkerRunner

CONFIG = json.loads(__CONFIG__)
FLUSH_SECONDS = 0.25
_buffer = []
_state = {"users": 0, "done": 0, "received": 0, "stopping": False, "start": 0.0}


def _flush(environment):
    global _buffer
    if _buffer and environment.runner is not None:
        lines, _buffer = _buffer, []
        environment.runner.send_message("fw_samples", lines)


@events.request.add_listener
def _record(name, response_time, response=None, context=None, exception=None, **kw):
    marker = (context or {}).get("fw")
    status = 0
    if response is not None:
        status = int(getattr(response, "status_code", 0) or 0)
    if marker is None:  # a request of the user's own locustfile
        instance, unique = 0, "-"
        ok = 1 if exception is None and status else 0
    else:
        instance, expect, unique = marker
        ok = 1 if status and (expect is None or status in expect) else 0
        if not (ok and unique):
            unique = "-"
    label = " ".join(str(name).split())[:100] or "-"
    _buffer.append(
        f"{instance}\t{time.time():.6f}\t{float(response_time or 0):.3f}\t{label}"
        f"\t{status}\t{ok}\t{unique}"
    )


def _flusher(environment):
    while True:
        gevent.sleep(FLUSH_SECONDS)
        _flush(environment)


def _stop(environment, graceful=True):
    if _state["stopping"]:
        return
    _state["stopping"] = True

    def stop_then_quit():
        # Stopping lets every user finish the request it is in (stop_timeout);
        # workers send their last samples before they report being stopped.
        # Users that are all done need no stopping: quitting is enough.
        if graceful:
            environment.runner.stop()
            _flush(environment)
        environment.runner.quit()

    gevent.spawn(stop_then_quit)


def _on_samples(environment, msg, **kw):
    lines = msg.data
    path = os.path.join(os.environ["FRAMEWORK_LOADTEST_SAMPLES"], "locust.tsv")
    with open(path, "a") as file:
        file.write("\n".join(lines) + "\n")
    _state["received"] += len(lines)
    target = CONFIG["target_requests"]
    if target and _state["received"] >= target:
        _stop(environment)


def _on_done(environment, msg, **kw):
    _state["done"] += msg.data
    if CONFIG["users"] and _state["done"] >= CONFIG["users"]:
        _stop(environment, graceful=False)


@events.init.add_listener
def _on_init(environment, **kw):
    if not isinstance(environment.runner, WorkerRunner):
        environment.runner.register_message("fw_samples", _on_samples)
        environment.runner.register_message("fw_done", _on_done)


@events.test_start.add_listener
def _on_test_start(environment, **kw):
    _state["start"] = time.time()
    if not isinstance(environment.runner, MasterRunner):
        gevent.spawn(_flusher, environment)
    if not isinstance(environment.runner, WorkerRunner) and CONFIG["duration"]:
        # A user's own locustfile is stopped when the time is up; the users
        # written here stop themselves at the deadline (this is the backstop).
        grace = 60 if CONFIG["users"] else 0
        gevent.spawn_later(CONFIG["duration"] + grace, _stop, environment)


@events.test_stop.add_listener
def _on_test_stop(environment, **kw):
    _flush(environment)


def _render(parts, unique, picks, rng):
    out = []
    for part in parts:
        if isinstance(part, str):
            out.append(part)
        elif part == 0:
            out.append(unique)
        else:
            variants = CONFIG["values"][part[0]]
            index = picks.get(part[0])
            if index is None:
                index = picks[part[0]] = rng.randrange(len(variants[0]))
            out.append(variants[part[1]][index])
    return "".join(out)


class ScenarioUser(FastHttpUser):
    abstract = True
    wait_time = constant(0)
    network_timeout = CONFIG["timeout"]
    connection_timeout = CONFIG["timeout"]
    instance = 0

    def on_start(self):
        _state["users"] += 1
        runner = self.environment.runner
        worker = runner.worker_index if isinstance(runner, WorkerRunner) else "l"
        self.uid = f"{CONFIG['prefix']}-{self.instance}-w{worker}-{_state['users']}"
        self.serial = 0
        self.rng = random.Random(f"{self.uid}-{os.getpid()}-{time.time()}")
        self.expect = [
            frozenset(request["expect"]) if request["expect"] else None
            for request in CONFIG["requests"]
        ]

    def finish(self):
        _flush(self.environment)
        self.environment.runner.send_message("fw_done", 1)
        raise StopUser()

    @task
    def one_request(self):
        budget = CONFIG["budget"]
        if (budget and self.serial >= budget) or (
            CONFIG["duration"] and time.time() - _state["start"] >= CONFIG["duration"]
        ):
            self.finish()
        pick = self.rng.randrange(CONFIG["total"]) + 1
        for position, request in enumerate(CONFIG["requests"]):
            if pick <= request["upto"]:
                break
        self.serial += 1
        unique = f"{self.uid}-{self.serial}" if request["unique"] else None
        picks = {}
        headers = {
            name: _render(value, unique, picks, self.rng)
            for name, value in request["headers"]
        }
        body = None
        if request["body"] is not None:
            body = _render(request["body"], unique, picks, self.rng).encode()
        self.client.request(
            request["method"],
            _render(request["path"], unique, picks, self.rng),
            name=request["name"],
            headers=headers,
            data=body,
            context={"fw": (self.instance, self.expect[position], unique)},
        )


for _index, (_host, _count) in enumerate(CONFIG["instances"]):
    _name = f"Instance{_index}User"
    globals()[_name] = type(
        _name,
        (ScenarioUser,),
        {"abstract": False, "host": _host, "fixed_count": _count, "instance": _index},
    )
'''


def has_locust() -> bool:
    """Whether Locust can be run with this Python (the ``loadtest`` extra)."""
    return importlib.util.find_spec("locust") is not None


def locustfile(
    plan: Plan | None,
    *,
    instances: list[tuple[str, int]],
    budget: int,
    duration: float,
    target_requests: int,
    timeout: float,
) -> str:
    """Return the locustfile's source.

    :param plan: the compiled scenario; ``None`` writes the plugin only (for
        a user's own locustfile).
    :param instances: ``(url, connections)`` per instance (scenario users).
    :param budget: requests per user, or 0.
    :param duration: seconds the test runs, or 0.
    :param target_requests: stop once this many answers came in (a user's
        own locustfile), or 0.
    """
    config = {
        "requests": plan.requests if plan else [],
        "values": plan.values if plan else [],
        "total": plan.total_weight if plan else 1,
        "prefix": plan.prefix if plan else "",
        "instances": instances if plan else [],
        "users": sum(count for _url, count in instances) if plan else 0,
        "budget": budget,
        "duration": duration,
        "target_requests": target_requests,
        "timeout": timeout,
    }
    return _TEMPLATE.replace("__CONFIG__", repr(json.dumps(config)))


class LocustRun:
    """A headless Locust master and its local workers, output in files.

    :param files: the locustfiles (``-f``, comma-joined).
    :param users: users in all (one per connection).
    :param workers: local worker processes (0: the master alone runs users).
    :param remote_workers: more workers the master waits for, from other hosts.
    :param host: ``--host`` (a user's own locustfile).
    """

    def __init__(
        self,
        *,
        files: list[pathlib.Path],
        users: int,
        workers: int,
        remote_workers: int,
        master_host: str,
        master_port: int,
        host: str | None,
        samples_dir: pathlib.Path,
        run_dir: pathlib.Path,
        env: dict[str, str],
        stop_timeout: int = 15,
    ) -> None:
        self.run_dir = run_dir
        self.env = {**env, "FRAMEWORK_LOADTEST_SAMPLES": str(samples_dir)}
        self.workers = workers
        self.remote_workers = remote_workers
        self.master_host = master_host
        self.master_port = master_port
        locust = [sys.executable, "-m", "locust", "-f", ",".join(map(str, files))]
        common = ["--loglevel", "WARNING"]
        self.master = [
            *locust,
            "--headless",
            "--users",
            str(users),
            "--spawn-rate",
            str(users),
            "--stop-timeout",
            str(stop_timeout),
            "--exit-code-on-error",
            "0",
            "--only-summary",
            *common,
        ]
        if host:
            self.master += ["--host", host]
        if workers or remote_workers:
            bind = "*" if remote_workers else master_host
            self.master += [
                "--master",
                "--master-bind-host",
                bind,
                "--master-bind-port",
                str(master_port),
                "--expect-workers",
                str(workers + remote_workers),
            ]
        self.worker = [
            *locust,
            "--worker",
            "--master-host",
            master_host,
            "--master-port",
            str(master_port),
            *common,
        ]
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        """Start the master, then the local workers."""
        commands = [("locust-master", self.master)]
        commands += [(f"locust-worker-{n}", self.worker) for n in range(self.workers)]
        for name, command in commands:
            with open(self.run_dir / f"{name}.log", "wb") as log:
                self.processes.append(
                    subprocess.Popen(
                        command,
                        cwd=self.run_dir,
                        env=self.env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL,
                    )
                )

    def finished(self) -> bool:
        """Whether the master has exited."""
        return not self.processes or self.processes[0].poll() is not None

    def stop(self) -> None:
        """Stop what still runs (SIGTERM: Locust's own clean stop).

        Once the master has exited, every sample is in: a worker that lingers
        (after a graceful stop, a worker waits for a next test) is stopped.
        """
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline and self.processes[0].poll() is not None:
            if all(process.poll() is not None for process in self.processes):
                break
            time.sleep(0.05)
        for process in self.processes:
            if process.poll() is None:
                # Locust's own clean stop: users end, stats are printed.
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)

    def problem(self) -> str | None:
        """Describe a master that failed, from the end of its log."""
        if not self.processes or self.processes[0].returncode in (None, 0):
            return None
        log = (self.run_dir / "locust-master.log").read_text(errors="replace")
        lines = [line for line in log.strip().splitlines() if line.strip()]
        return (
            f"locust exited with status {self.processes[0].returncode}:"
            f" {lines[-1] if lines else ''}"
        )

    def command_for_other_hosts(self, public_host: str) -> str:
        """Return the command that adds a worker on another host."""
        return (
            f"locust --worker --master-host {public_host} --master-port"
            f" {self.master_port} -f -"
        )
