"""Per-worker counters of the request signals, shared through small files.

Each process owns one file ``<METRICS_DIR>/worker-<pid>.counters`` holding a
few 64-bit slots, memory-mapped, so an increment is a store into shared memory
(no system call) and any process can read every worker's numbers at any time,
also after the worker has exited (max_requests recycling, timeouts). Without a
``METRICS_DIR`` the counters live in this process only.

A process that starts counting first retires the files of processes that have
exited: their numbers are added to ``retired.counters`` (reported as worker
``retired``, key ``RETIRED`` in ``read_all``) and the files are removed, so the
directory holds one file per live process plus one, however often workers are
recycled, and no count is lost. Retiring and reading hold ``.lock`` (exclusive
and shared), so a reader never sees a worker's numbers twice or not at all.
"""

from __future__ import annotations

import contextlib
import fcntl
import mmap
import os
import pathlib
import struct
import threading
from collections.abc import Iterator

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
RETIRED = 0
"""The ``read_all`` key of the exited processes' summed counters (no process has
pid 0)."""
_RETIRED_FILE = "retired.counters"


class WorkerCounters:
    """The counters of one process."""

    def __init__(self, directory: str = "") -> None:
        self.pid = os.getpid()
        self.lock = threading.Lock()
        self.directory = directory
        if directory:
            os.makedirs(directory, exist_ok=True)
            retire_exited(directory)
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
    """Read the counters of every process that wrote into ``directory``.

    Keys are pids; ``RETIRED`` holds the sums of the processes retired by
    ``retire_exited`` (with ``processes``, how many they were).
    """
    found: dict[int, dict[str, float]] = {}
    if not os.path.isdir(directory):
        return found
    with _locked(directory, fcntl.LOCK_SH):
        retired = _read_retired(pathlib.Path(directory))
        if retired is not None:
            found[RETIRED] = retired[0]
        for path, pid in _worker_files(pathlib.Path(directory)):
            data = path.read_bytes()
            if len(data) == SIZE:
                found[pid] = decode(data)
    return found


def retire_exited(directory: str) -> int:
    """Fold the counters of exited processes into the retired totals.

    Returns how many processes were retired. Safe against a crash at any
    point: the retired file names the worker files it already includes until
    they are gone, so a half-done retirement is finished, never counted twice.
    """
    root = pathlib.Path(directory)
    with _locked(directory, fcntl.LOCK_EX):
        retired = _read_retired(root)
        totals, processes, pending = retired or (decode(bytes(SIZE)), 0, [])
        for name in pending:  # a retirement interrupted after its sums landed
            with contextlib.suppress(FileNotFoundError):
                (root / name).unlink()
        exited = []
        for path, pid in _worker_files(root):
            if pid != os.getpid() and not _alive(pid):
                data = path.read_bytes()
                if len(data) == SIZE:
                    for name, value in decode(data).items():
                        totals[name] += value
                    processes += 1
                exited.append(path.name)
        if not exited and not pending:
            return 0
        _write_retired(root, totals, processes, exited)
        for name in exited:
            (root / name).unlink()
        if exited:
            _write_retired(root, totals, processes, [])
    return len(exited)


def _worker_files(root: pathlib.Path) -> list[tuple[pathlib.Path, int]]:
    files = []
    for path in sorted(root.glob("worker-*.counters")):
        pid = path.stem.split("-", 1)[1]
        if pid.isdigit():
            files.append((path, int(pid)))
    return files


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # somebody else's process
        return True
    return True


@contextlib.contextmanager
def _locked(directory: str, operation: int) -> Iterator[None]:
    with open(os.path.join(directory, ".lock"), "a+b") as lock:
        fcntl.flock(lock, operation)
        yield


# retired.counters: the slots, then the number of processes folded in, then
# the names of worker files already added but maybe not yet removed.
_PROCESSES_OFFSET = SIZE


def _read_retired(
    root: pathlib.Path,
) -> tuple[dict[str, float], int, list[str]] | None:
    try:
        data = (root / _RETIRED_FILE).read_bytes()
    except FileNotFoundError:
        return None
    values = decode(data[:SIZE])
    (processes,) = _INT.unpack_from(data, _PROCESSES_OFFSET)
    values["processes"] = processes
    pending = data[_PROCESSES_OFFSET + _INT.size :].decode().split()
    return values, processes, pending


def _write_retired(
    root: pathlib.Path, totals: dict[str, float], processes: int, pending: list[str]
) -> None:
    data = bytearray(SIZE + _INT.size)
    for index, name in enumerate(SLOTS):
        _INT.pack_into(data, index * _INT.size, int(totals[name]))
    _FLOAT.pack_into(data, _DURATION_OFFSET, totals["duration_seconds"])
    _INT.pack_into(data, _PROCESSES_OFFSET, processes)
    data += "\n".join(pending).encode()
    temporary = root / f".{_RETIRED_FILE}.{os.getpid()}"
    with open(temporary, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, root / _RETIRED_FILE)


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
    workers = {
        ("retired" if pid == RETIRED else str(pid)): values
        for pid, values in all_workers().items()
    }
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
        "# HELP app_example_workers Processes listed with their own counters"
        ' (exited ones end up summed under worker="retired").',
        "# TYPE app_example_workers gauge",
        f"app_example_workers {len(workers) - ('retired' in workers)}",
    ]
    return "\n".join(lines) + "\n"


def reset() -> None:
    """Forget this process's counters (tests; the next use starts from zero)."""
    global _counters
    with _counters_lock:
        _counters = None
