"""Per-worker counters of the request signals, shared through small files.

Each process owns one file ``<METRICS_DIR>/worker-<pid>.counters`` holding a
few 64-bit slots, memory-mapped, so an increment is a store into shared memory
(no system call) and any process can read every worker's numbers at any time,
also after the worker has exited (max_requests recycling, timeouts). Without a
``METRICS_DIR`` the counters live in this process only.
"""

from __future__ import annotations

import mmap
import os
import pathlib
import struct
import threading

SLOTS = (
    "request_started",
    "request_finished",
    "got_request_exception",
    "connection_created",
    "template_rendered",
)
_INT = struct.Struct("<Q")
_FLOAT = struct.Struct("<d")
_DURATION_OFFSET = len(SLOTS) * _INT.size
SIZE = _DURATION_OFFSET + _FLOAT.size


class WorkerCounters:
    """The counters of one process."""

    def __init__(self, directory: str = "") -> None:
        self.pid = os.getpid()
        self.lock = threading.Lock()
        self.directory = directory
        if directory:
            os.makedirs(directory, exist_ok=True)
            path = pathlib.Path(directory) / f"worker-{self.pid}.counters"
            with open(path, "wb") as file:
                file.write(b"\0" * SIZE)
            with open(path, "r+b") as file:
                self.buffer: mmap.mmap | bytearray = mmap.mmap(file.fileno(), SIZE)
        else:
            self.buffer = bytearray(SIZE)

    def increment(self, slot: int) -> None:
        offset = slot * _INT.size
        with self.lock:
            (value,) = _INT.unpack_from(self.buffer, offset)
            _INT.pack_into(self.buffer, offset, value + 1)

    def add_duration(self, seconds: float) -> None:
        with self.lock:
            (value,) = _FLOAT.unpack_from(self.buffer, _DURATION_OFFSET)
            _FLOAT.pack_into(self.buffer, _DURATION_OFFSET, value + seconds)

    def snapshot(self) -> dict[str, float]:
        return decode(bytes(self.buffer))


def decode(data: bytes) -> dict[str, float]:
    values: dict[str, float] = {
        name: _INT.unpack_from(data, index * _INT.size)[0]
        for index, name in enumerate(SLOTS)
    }
    values["duration_seconds"] = _FLOAT.unpack_from(data, _DURATION_OFFSET)[0]
    return values


def read_all(directory: str) -> dict[int, dict[str, float]]:
    """Read the counters of every process that wrote into ``directory``."""
    found = {}
    for path in sorted(pathlib.Path(directory).glob("worker-*.counters")):
        data = path.read_bytes()
        if len(data) == SIZE:
            found[int(path.stem.split("-", 1)[1])] = decode(data)
    return found


_counters: WorkerCounters | None = None
_counters_lock = threading.Lock()


def counters() -> WorkerCounters:
    """This process's counters (a new set after a fork)."""
    global _counters
    current = _counters
    if current is None or current.pid != os.getpid():
        with _counters_lock:
            current = _counters
            if current is None or current.pid != os.getpid():
                from framework.conf import settings

                current = _counters = WorkerCounters(
                    getattr(settings, "METRICS_DIR", "")
                )
    return current


def all_workers() -> dict[int, dict[str, float]]:
    """Every worker's counters: from METRICS_DIR, or this process only."""
    own = counters()
    if own.directory:
        return read_all(own.directory)
    return {own.pid: own.snapshot()}


def prometheus_text() -> str:
    """The per-worker signal counts in the Prometheus text exposition format."""
    workers = all_workers()
    lines = [
        "# HELP app_example_signals_total Signals received, per worker.",
        "# TYPE app_example_signals_total counter",
    ]
    for pid, values in workers.items():
        for name in SLOTS:
            lines.append(
                f'app_example_signals_total{{signal="{name}",worker="{pid}"}}'
                f" {int(values[name])}"
            )
    lines += [
        "# HELP app_example_request_duration_seconds Time from request_started"
        " to request_finished.",
        "# TYPE app_example_request_duration_seconds summary",
    ]
    for pid, values in workers.items():
        lines.append(
            f'app_example_request_duration_seconds_sum{{worker="{pid}"}}'
            f" {values['duration_seconds']:.6f}"
        )
        lines.append(
            f'app_example_request_duration_seconds_count{{worker="{pid}"}}'
            f" {int(values['request_finished'])}"
        )
    lines += [
        "# HELP app_example_workers Worker processes that reported counters.",
        "# TYPE app_example_workers gauge",
        f"app_example_workers {len(workers)}",
    ]
    return "\n".join(lines) + "\n"


def reset() -> None:
    """Forget this process's counters (tests; the next use starts from zero)."""
    global _counters
    with _counters_lock:
        _counters = None
