"""The counters files: their layout, the directory's safety, reading, retiring.

See :mod:`framework.metrics` for the design; everything public here is
re-exported there.
"""

from __future__ import annotations

import collections.abc as cabc
import contextlib
import dataclasses
import fcntl
import math
import mmap
import os
import re
import stat
import threading

DIRECTORY_VARIABLE = "FRAMEWORK_METRICS_DIR"
"""The environment variable naming the shared counters directory."""

SWITCH_VARIABLE = "FRAMEWORK_METRICS"
"""Set to ``off`` (or ``0``), ``framework serve`` does not connect the counters."""

RETIRED = "retired"
"""The :func:`read` key of the exited processes' summed counters."""

_MANTISSAS = (
    *(1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6, 1.8, 2.0, 2.2, 2.5),
    *(2.8, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 7.0, 8.0, 9.0),
)
BUCKET_BOUNDS: tuple[float, ...] = (
    *(
        float(f"{mantissa}e{exponent}")
        for exponent in range(-5, 2)
        for mantissa in _MANTISSAS
    ),
    100.0,
)
"""Upper bounds (seconds, inclusive) of the duration histogram's buckets.

One more bucket, past the last bound, holds longer requests. Neighbouring
bounds are at most 17% apart, so a percentile read from the histogram is within
that of the truth.
"""

EXPOSED_BOUNDS: tuple[float, ...] = tuple(
    float(f"{mantissa}e{exponent}")
    for exponent in range(-4, 2)
    for mantissa in (1.0, 2.5, 5.0)
)
"""The ``le`` bounds :func:`prometheus_text` shows unless all are asked for."""

_BUCKET_COUNT = len(BUCKET_BOUNDS) + 1
_MAX_EXTRA = 16
_NAME_SIZE = 32
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,31}")
_WORKER_FILE = re.compile(r"worker-([1-9][0-9]{0,9})\.counters")
_RETIRED_FILE = "retired.counters"
_LOCK_FILE = ".lock"
_MAGIC = int.from_bytes(b"FWMTRC02", "little")
# The first layout, read (a dead worker's file, an old retired total) and
# never written: the duration's sum and maximum in integer nanoseconds.
_MAGIC_01 = int.from_bytes(b"FWMTRC01", "little")

# Slot layout of a counters file (64-bit unsigned integers, native order:
# files never leave the machine), then the names of the extra counters.
_MAGIC_SLOT = 0
_STARTED = 1
# Slot 2 is unused: request_finished is the sum of the buckets.
_EXCEPTION = 3
# Slots 4 and 5 are doubles (seconds), added to and compared as the float
# request_finished carries: no conversion per request.
_DURATION = 4
_MAX = 5
_BUCKETS = 6
_EXTRAS = _BUCKETS + _BUCKET_COUNT
_SLOT_COUNT = _EXTRAS + _MAX_EXTRA
_NAMES_OFFSET = _SLOT_COUNT * 8
SIZE = _NAMES_OFFSET + _MAX_EXTRA * _NAME_SIZE
"""Bytes in one counters file."""

_OPEN_FLAGS = os.O_NOFOLLOW | os.O_CLOEXEC
_MAX_PENDING = 1 << 20


class MetricsDirectoryError(ValueError):
    """The counters directory cannot be used safely (owner, mode, symlink)."""


@dataclasses.dataclass
class Snapshot:
    """The counters of one process, or a sum of several.

    Snapshots add up with ``+``; :func:`total` sums a mapping of them.
    """

    request_started: int = 0
    """``request_started`` signals counted."""
    request_finished: int = 0
    """``request_finished`` signals counted."""
    got_request_exception: int = 0
    """``got_request_exception`` signals counted."""
    duration_ns: int = 0
    """Sum of the ``duration`` of every ``request_finished``, in nanoseconds."""
    max_ns: int = 0
    """The longest ``duration``, in nanoseconds."""
    buckets: tuple[int, ...] = (0,) * _BUCKET_COUNT
    """Requests per histogram bucket (see :data:`BUCKET_BOUNDS`)."""
    counters: dict[str, int] = dataclasses.field(default_factory=dict)
    """Signals counted with :func:`count`, by name."""
    processes: int = 1
    """How many processes these numbers come from."""

    @property
    def duration_seconds(self) -> float:
        """Sum of the request durations, in seconds."""
        return self.duration_ns / 1e9

    @property
    def max_seconds(self) -> float:
        """The longest request duration, in seconds."""
        return self.max_ns / 1e9

    def get(self, name: str) -> int:
        """Return the count of the signal ``name`` (a request signal or an extra)."""
        if name in ("request_started", "request_finished", "got_request_exception"):
            return int(getattr(self, name))
        return self.counters.get(name, 0)

    def percentile(self, fraction: float) -> float:
        """Estimate a percentile of the request durations, in seconds.

        Linear interpolation inside the bucket that holds it; the top bucket
        is capped by :attr:`max_seconds`.

        :param fraction: 0.5 for the median, 0.99 for p99.
        :returns: the duration, or 0.0 when nothing was counted.
        """
        count = sum(self.buckets)
        if not count:
            return 0.0
        rank = max(1.0, fraction * count)
        seen = 0
        for index, in_bucket in enumerate(self.buckets):
            if in_bucket and seen + in_bucket >= rank:
                lower = BUCKET_BOUNDS[index - 1] if index else 0.0
                upper = BUCKET_BOUNDS[index] if index < len(BUCKET_BOUNDS) else math.inf
                if self.max_ns:
                    upper = min(upper, self.max_seconds)
                    lower = min(lower, upper)
                return lower + (upper - lower) * (rank - seen) / in_bucket
            seen += in_bucket
        return self.max_seconds  # pragma: no cover (the loop always returns)

    def __add__(self, other: Snapshot) -> Snapshot:
        """Sum two snapshots."""
        if not isinstance(other, Snapshot):
            return NotImplemented
        counters = dict(self.counters)
        for name, value in other.counters.items():
            counters[name] = counters.get(name, 0) + value
        return Snapshot(
            request_started=self.request_started + other.request_started,
            request_finished=self.request_finished + other.request_finished,
            got_request_exception=self.got_request_exception
            + other.got_request_exception,
            duration_ns=self.duration_ns + other.duration_ns,
            max_ns=max(self.max_ns, other.max_ns),
            buckets=tuple(
                a + b for a, b in zip(self.buckets, other.buckets, strict=True)
            ),
            counters=counters,
            processes=self.processes + other.processes,
        )


def total(snapshots: cabc.Iterable[Snapshot]) -> Snapshot:
    """Return the sum of ``snapshots`` (zero processes when there are none)."""
    result = Snapshot(processes=0)
    for snapshot in snapshots:
        result = result + snapshot
    return result


def _decode(data: bytes | bytearray | memoryview) -> Snapshot | None:
    """Decode one counters block; ``None`` unless it is one of ours."""
    if len(data) < SIZE:
        return None
    block = memoryview(bytes(data[:_NAMES_OFFSET]))
    slots = block.cast("Q")
    if slots[_MAGIC_SLOT] == _MAGIC:
        seconds = block.cast("d")
        duration_ns = _nanoseconds(seconds[_DURATION])
        max_ns = _nanoseconds(seconds[_MAX])
    elif slots[_MAGIC_SLOT] == _MAGIC_01:
        duration_ns, max_ns = slots[_DURATION], slots[_MAX]
    else:
        return None
    counters = {}
    for index in range(_MAX_EXTRA):
        start = _NAMES_OFFSET + index * _NAME_SIZE
        raw = bytes(data[start : start + _NAME_SIZE]).rstrip(b"\0")
        if not raw:
            continue
        try:
            name = raw.decode("ascii")
        except UnicodeDecodeError:
            continue
        if _NAME.fullmatch(name):
            counters[name] = slots[_EXTRAS + index]
    return Snapshot(
        request_started=slots[_STARTED],
        # Every request_finished lands in one bucket: the buckets' sum is
        # the count (the receiver stores nothing else for it).
        request_finished=sum(slots[_BUCKETS:_EXTRAS]),
        got_request_exception=slots[_EXCEPTION],
        duration_ns=duration_ns,
        max_ns=max_ns,
        buckets=tuple(slots[_BUCKETS:_EXTRAS]),
        counters=counters,
    )


def _nanoseconds(seconds: float) -> int:
    """Return a duration slot's seconds in whole nanoseconds (0 if not finite)."""
    if not 0.0 <= seconds < 1e12:  # NaN and damage too
        return 0
    return round(seconds * 1e9)


def _encode(snapshot: Snapshot) -> bytearray:
    """Encode ``snapshot`` as a counters block (extras beyond 16 are dropped)."""
    data = bytearray(SIZE)
    slots = memoryview(data)[:_NAMES_OFFSET].cast("Q")
    seconds = memoryview(data)[:_NAMES_OFFSET].cast("d")
    slots[_MAGIC_SLOT] = _MAGIC
    slots[_STARTED] = snapshot.request_started
    slots[_EXCEPTION] = snapshot.got_request_exception
    seconds[_DURATION] = snapshot.duration_ns / 1e9
    seconds[_MAX] = snapshot.max_ns / 1e9
    for index, value in enumerate(snapshot.buckets):
        slots[_BUCKETS + index] = value
    for index, (name, value) in enumerate(
        sorted(snapshot.counters.items())[:_MAX_EXTRA]
    ):
        slots[_EXTRAS + index] = value
        start = _NAMES_OFFSET + index * _NAME_SIZE
        data[start : start + len(name)] = name.encode("ascii")
    slots.release()
    return data


# The directory ---------------------------------------------------------------


def _open_directory(directory: str | os.PathLike[str], create: bool) -> int:
    """Open ``directory`` safely and return its file descriptor.

    :raises MetricsDirectoryError: it is a symbolic link, not a directory, not
        owned by this user, or open to other users.
    :raises FileNotFoundError: it does not exist and ``create`` is false.
    """
    path = os.fspath(directory)
    if create:
        try:
            os.makedirs(path, mode=0o700, exist_ok=True)
        except FileExistsError:
            pass  # a file or a dangling link: refused below
        except OSError as exc:
            raise MetricsDirectoryError(
                f"Cannot create the metrics directory {path!r}: {exc.strerror}."
            ) from exc
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | _OPEN_FLAGS)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise MetricsDirectoryError(
            f"The metrics directory {path!r} is not a directory of its own"
            f" ({exc.strerror}); symbolic links are refused."
        ) from exc
    info = os.fstat(fd)
    problem = ""
    if info.st_uid != os.geteuid():
        problem = f"it belongs to uid {info.st_uid}, not to this user"
    elif info.st_mode & 0o077:
        problem = f"other users may use it (mode {stat.S_IMODE(info.st_mode):04o})"
    if problem:
        os.close(fd)
        raise MetricsDirectoryError(
            f"Refusing the metrics directory {path!r}: {problem}. Use a"
            " directory of its own, with mode 0700 (created so when missing)."
        )
    return fd


def check_directory(directory: str | os.PathLike[str]) -> None:
    """Create ``directory`` (mode 0700) when missing, and check it is safe to use.

    :raises MetricsDirectoryError: it is a symbolic link, not a directory, not
        owned by this user, or open to other users.
    """
    os.close(_open_directory(directory, create=True))


def _open_file(dir_fd: int, name: str) -> int | None:
    """Open an existing counters file read-only, or ``None`` if it is not one."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | _OPEN_FLAGS, dir_fd=dir_fd)
    except OSError:
        return None  # gone, a symbolic link, or not ours to read
    info = os.fstat(fd)
    if (
        not stat.S_ISREG(info.st_mode)
        or info.st_uid != os.geteuid()
        or info.st_size < SIZE
    ):
        os.close(fd)
        return None
    return fd


def _read_file(dir_fd: int, name: str) -> bytes | None:
    fd = _open_file(dir_fd, name)
    if fd is None:
        return None
    try:
        # A worker file is SIZE bytes; the retired one adds 8 per pending pid.
        size = min(os.fstat(fd).st_size, SIZE + 16 + 8 * _MAX_PENDING)
        return os.pread(fd, size, 0)
    finally:
        os.close(fd)


@contextlib.contextmanager
def _locked(dir_fd: int, operation: int) -> cabc.Iterator[None]:
    fd = os.open(_LOCK_FILE, os.O_RDWR | os.O_CREAT | _OPEN_FLAGS, 0o600, dir_fd=dir_fd)
    try:
        fcntl.flock(fd, operation)
        yield
    finally:
        os.close(fd)


def _worker_files(dir_fd: int) -> list[tuple[str, int]]:
    found = []
    for name in sorted(os.listdir(dir_fd)):
        match = _WORKER_FILE.fullmatch(name)
        if match:
            found.append((name, int(match.group(1))))
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # somebody else's process
        return True
    return True


# retired.counters: a counters block, then the number of processes folded in,
# the number of pending pids, and the pids whose files were added but maybe
# not yet removed (numbers: a file name is never read from a file).


def _read_retired(dir_fd: int) -> tuple[Snapshot, list[int]] | None:
    data = _read_file(dir_fd, _RETIRED_FILE)
    if data is None:
        return None
    snapshot = _decode(data)
    if snapshot is None or len(data) < SIZE + 16:
        return None
    tail = memoryview(data[SIZE:]).cast("B")
    processes, pending_count = (
        int.from_bytes(tail[0:8], "little"),
        int.from_bytes(tail[8:16], "little"),
    )
    pending = []
    for index in range(min(pending_count, (len(tail) - 16) // 8)):
        start = 16 + 8 * index
        pending.append(int.from_bytes(tail[start : start + 8], "little"))
    snapshot.processes = processes
    return snapshot, pending


def _write_retired(dir_fd: int, totals: Snapshot, pending: list[int]) -> None:
    data = _encode(totals)
    data += totals.processes.to_bytes(8, "little")
    data += len(pending).to_bytes(8, "little")
    for pid in pending:
        data += pid.to_bytes(8, "little")
    temporary = f".{_RETIRED_FILE}.{os.getpid()}"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(temporary, dir_fd=dir_fd)
    fd = os.open(
        temporary,
        os.O_WRONLY | os.O_CREAT | os.O_EXCL | _OPEN_FLAGS,
        0o600,
        dir_fd=dir_fd,
    )
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, _RETIRED_FILE, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)


def _retire(dir_fd: int, *, own_stale: bool = False) -> int:
    """Retire exited processes' files; the exclusive lock must be held."""
    retired = _read_retired(dir_fd)
    totals, pending = retired if retired else (Snapshot(processes=0), [])
    for pid in pending:  # a retirement cut short after its sums landed
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"worker-{pid}.counters", dir_fd=dir_fd)
    own = os.getpid()
    exited = []
    for name, pid in _worker_files(dir_fd):
        if pid == own and not own_stale:
            continue
        if pid != own and _alive(pid):
            continue
        data = _read_file(dir_fd, name)
        snapshot = _decode(data) if data is not None else None
        if snapshot is not None:
            totals = totals + snapshot
        exited.append(pid)
    if not exited:
        if pending:
            _write_retired(dir_fd, totals, [])
        return 0
    _write_retired(dir_fd, totals, exited)
    for pid in exited:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"worker-{pid}.counters", dir_fd=dir_fd)
    _write_retired(dir_fd, totals, [])
    return len(exited)


def retire_exited(directory: str | os.PathLike[str]) -> int:
    """Fold the counters of exited processes into the retired totals.

    Safe against a crash at any point: the retired file names (by pid) the
    worker files it already includes until they are gone, so a half-done
    retirement is finished, never counted twice.

    :returns: how many processes were retired.
    :raises MetricsDirectoryError: the directory is not safe to use.
    """
    dir_fd = _open_directory(directory, create=False)
    try:
        with _locked(dir_fd, fcntl.LOCK_EX):
            return _retire(dir_fd)
    finally:
        os.close(dir_fd)


def read(directory: str | os.PathLike[str]) -> dict[str, Snapshot]:
    """Read the counters of every process that counted into ``directory``.

    :returns: snapshots keyed by pid (as a string), plus :data:`RETIRED` for
        the sums of the processes retired so far (its ``processes`` says how
        many); empty when the directory does not exist.
    :raises MetricsDirectoryError: the directory is not safe to use.
    """
    try:
        dir_fd = _open_directory(directory, create=False)
    except FileNotFoundError:
        return {}
    found: dict[str, Snapshot] = {}
    try:
        with _locked(dir_fd, fcntl.LOCK_SH):
            retired = _read_retired(dir_fd)
            if retired is not None:
                found[RETIRED] = retired[0]
            pending = set(retired[1]) if retired else set()
            for name, pid in _worker_files(dir_fd):
                if pid in pending:  # already in the retired sums
                    continue
                data = _read_file(dir_fd, name)
                snapshot = _decode(data) if data is not None else None
                if snapshot is not None:
                    found[str(pid)] = snapshot
    finally:
        os.close(dir_fd)
    return found


class WorkerCounters:
    """The counters of one process: a memory-mapped file, or memory only.

    :param directory: the shared directory; empty or ``None``: this process only.
    :param names: extra counters to give a slot at once.
    :raises MetricsDirectoryError: the directory is not safe to use.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str] | None = None,
        names: cabc.Iterable[str] = (),
    ) -> None:
        self.pid = os.getpid()
        """The process these counters belong to."""
        self.directory = os.fspath(directory) if directory else ""
        """The shared directory, or ``""``."""
        self.lock = threading.Lock()
        """Held around every update (gthread workers count from many threads)."""
        self._mmap: mmap.mmap | None = None
        buffer: mmap.mmap | bytearray
        if self.directory:
            buffer = self._map_file()
        else:
            buffer = bytearray(SIZE)
        self._buffer = buffer
        self.slots = memoryview(buffer)[:_NAMES_OFFSET].cast("Q")
        """The 64-bit slots (the receivers write them directly)."""
        self.seconds = memoryview(buffer)[:_NAMES_OFFSET].cast("d")
        """The same slots as doubles (the duration's sum and maximum)."""
        self.slots[_MAGIC_SLOT] = _MAGIC
        self.names: list[str] = []
        """Names of the extra counters, by slot."""
        for name in names:
            self.add_name(name)

    def _map_file(self) -> mmap.mmap:
        dir_fd = _open_directory(self.directory, create=True)
        try:
            with _locked(dir_fd, fcntl.LOCK_EX):
                # A file under this pid is a dead process's (pids are reused):
                # its numbers are retired with the others, never overwritten.
                _retire(dir_fd, own_stale=True)
                fd = os.open(
                    f"worker-{self.pid}.counters",
                    os.O_RDWR | os.O_CREAT | os.O_EXCL | _OPEN_FLAGS,
                    0o600,
                    dir_fd=dir_fd,
                )
                try:
                    os.ftruncate(fd, SIZE)
                    self._mmap = mmap.mmap(fd, SIZE)
                finally:
                    os.close(fd)
        finally:
            os.close(dir_fd)
        return self._mmap

    def add_name(self, name: str) -> int:
        """Give the extra counter ``name`` a slot (if it has none); return it."""
        if name in self.names:
            return self.names.index(name)
        index = len(self.names)
        if index >= _MAX_EXTRA:
            raise ValueError(f"At most {_MAX_EXTRA} extra counters.")
        start = _NAMES_OFFSET + index * _NAME_SIZE
        with self.lock:
            self._buffer[start : start + len(name)] = name.encode("ascii")
            self.names.append(name)
        return index

    def snapshot(self) -> Snapshot:
        """Return a copy of the numbers."""
        with self.lock:
            data = bytes(self._buffer)
        snapshot = _decode(data)
        assert snapshot is not None
        return snapshot

    def close(self) -> None:
        """Stop using the file (the numbers stay in it for readers)."""
        self.slots.release()
        self.seconds.release()
        if self._mmap is not None:
            self._mmap.close()
            self._mmap = None
