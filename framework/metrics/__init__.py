"""Per-worker counters of the request signals, shared through small files.

:func:`enable` connects three receivers that count ``request_started``,
``request_finished`` and ``got_request_exception`` in this process, and sort the
``duration`` that ``request_finished`` carries into a fixed histogram (22
buckets per decade from 10 us to 100 s), so the time a request spent in the
app can be read back as percentiles. The receivers are compiled
(``_counting.c``, :data:`COMPILED`) where the package was built with a C
compiler, and written in Python otherwise; both count the same.
``framework serve`` (and ``framework loadtest``) enable them in every
gunicorn worker; no app code is needed.
:func:`count` counts any other signal the same way (app_example counts
``connection_created`` and ``template_rendered``).

With a directory (``FRAMEWORK_METRICS_DIR``, or the one ``framework serve``
makes for its workers), each process owns one file
``<directory>/worker-<pid>.counters`` of 64-bit slots, memory-mapped, so an
increment is a store into shared memory, and any process can read every
worker's numbers at any time, also after the worker has exited (``max_requests``
recycling, a timeout, a kill): the numbers are in the file, not in the process.
Without a directory the counters live in this process only.

A process that starts counting first *retires* the files of processes that have
exited: their numbers are added to ``retired.counters`` (worker ``"retired"``
in :func:`read`) and the files are removed, so the directory holds one file per
live process plus one, however often workers are recycled, and no count is
lost. Retiring and reading hold ``.lock`` (exclusive and shared), so a reader
never sees a worker's numbers twice or not at all; a retirement cut short by a
crash is finished by the next one without counting anything twice.

Nothing read from the directory is trusted: the directory must be owned by
this user and closed to everyone else (it is created with mode 0700 and
refused otherwise), files are created 0600, opened relative to the
directory without following symbolic links, and must be regular files of the
exact size with the right magic number; a file name is never taken from a
file's content (the retired file lists the pids it folded in, as numbers).

:func:`prometheus_text` renders the counters in the Prometheus text exposition
format, summed over every worker and per worker; :func:`view` is a ready-made
``/metrics`` view for any :class:`framework.App`.

This module depends on the standard library, the dispatcher and the signal
catalogue only.
"""

from __future__ import annotations

import bisect
import collections.abc as cabc
import os
import threading
import types
import typing as t
import urllib.parse

from .. import signals
from ..dispatch import Receiver
from ..dispatch import Signal
from ._exposition import parse
from ._exposition import prometheus_text as _render
from ._files import _BUCKETS
from ._files import _DURATION
from ._files import _EXCEPTION
from ._files import _EXTRAS
from ._files import _MAX
from ._files import _MAX_EXTRA
from ._files import _NAME
from ._files import _STARTED
from ._files import BUCKET_BOUNDS
from ._files import DIRECTORY_VARIABLE
from ._files import EXPOSED_BOUNDS
from ._files import RETIRED
from ._files import SIZE
from ._files import SWITCH_VARIABLE
from ._files import MetricsDirectoryError
from ._files import Snapshot
from ._files import WorkerCounters
from ._files import check_directory
from ._files import read
from ._files import retire_exited
from ._files import total

__all__ = [
    "BUCKET_BOUNDS",
    "COMPILED",
    "CONTENT_TYPE",
    "DIRECTORY_VARIABLE",
    "EXPOSED_BOUNDS",
    "MetricsDirectoryError",
    "RETIRED",
    "SIZE",
    "SWITCH_VARIABLE",
    "Snapshot",
    "WorkerCounters",
    "check_directory",
    "collect",
    "count",
    "count_got_request_exception",
    "count_request_finished",
    "count_request_started",
    "current",
    "disable",
    "enable",
    "enabled",
    "parse",
    "prometheus_text",
    "read",
    "retire_exited",
    "total",
    "view",
]

_bisect_left = bisect.bisect_left

_compiled: types.ModuleType | None
try:
    from . import _counting as _compiled
except ImportError:  # built without a C compiler: the Python receivers count
    _compiled = None

COMPILED = _compiled is not None
"""Whether the compiled receivers were built (the C extension ``_counting``).

:func:`enable` connects them when they were; else it connects the Python
receivers (:func:`count_request_started` and the others), which count the
same and add about four times as many instructions to a request
(``bench/instructions.py --counters``).
"""

_extra_names: list[str] = []
_extra_signals: dict[str, Signal] = {}
_current: WorkerCounters | None = None
_directory: str | None = None  # None: FRAMEWORK_METRICS_DIR decides
_open_lock = threading.Lock()
_UID = "framework.metrics"


def _chosen_directory() -> str:
    """Return where counters opened now go: ``""`` for this process's memory."""
    if _directory is not None:
        return _directory
    return os.environ.get(DIRECTORY_VARIABLE, "")


class _Unopened:
    """Stands for this process's slots until its counters are opened.

    The first use opens them (see :func:`_open`), and goes to their slots.
    """

    __slots__ = ("view",)

    def __init__(self, view: str) -> None:
        self.view = view

    def __getitem__(self, index: int) -> t.Any:
        return getattr(_open(), self.view)[index]

    def __setitem__(self, index: int, value: t.Any) -> None:
        getattr(_open(), self.view)[index] = value


# PERF: the receivers write this process's slots through these two globals
# (the counters' ``slots`` and ``seconds``), which _use() keeps in step with
# _current: no attribute or "is it open" test per request.
_slots: t.Any = _Unopened("slots")
_seconds: t.Any = _Unopened("seconds")


def _use(counters: WorkerCounters | None) -> None:
    """Make ``counters`` this process's (``None``: open anew on first use)."""
    global _current, _slots, _seconds
    _current = counters
    if counters is None:
        _slots, _seconds = _Unopened("slots"), _Unopened("seconds")
    else:
        _slots, _seconds = counters.slots, counters.seconds
    if _compiled is not None:
        # The compiled receivers hold the slots' buffer until the next
        # _use(): enable() and disable() call it before closing the counters
        # they replace (the memoryview cannot be released while held).
        _compiled.use(None if counters is None else counters.slots)


def _open(carried: Snapshot | None = None) -> WorkerCounters:
    """Return this process's counters, opening them on first use.

    :param carried: numbers to add to counters opened now, before any
        receiver can count in them (the compiled ones take no lock).
    """
    with _open_lock:
        counters = _current
        if counters is None or counters.pid != os.getpid():
            counters = WorkerCounters(_chosen_directory(), _extra_names)
            if carried is not None:
                _add(counters, carried)
            _use(counters)
        return counters


def _same_place(counters: WorkerCounters, directory: str) -> bool:
    if not counters.directory or not directory:
        return counters.directory == directory
    return os.path.abspath(counters.directory) == os.path.abspath(directory)


def _add(counters: WorkerCounters, snapshot: Snapshot) -> None:
    """Add the numbers of ``snapshot`` to ``counters``."""
    slots = (_EXTRAS + counters.add_name(name) for name in snapshot.counters)
    extras = dict(zip(slots, snapshot.counters.values(), strict=True))
    with counters.lock:
        counters.slots[_STARTED] += snapshot.request_started
        counters.slots[_EXCEPTION] += snapshot.got_request_exception
        counters.seconds[_DURATION] += snapshot.duration_ns / 1e9
        counters.seconds[_MAX] = max(counters.seconds[_MAX], snapshot.max_ns / 1e9)
        for index, value in enumerate(snapshot.buckets):
            counters.slots[_BUCKETS + index] += value
        for slot, value in extras.items():
            counters.slots[slot] += value


def _forget_after_fork() -> None:
    # A forked child counts in a file of its own; the parent's map and lock
    # are left alone (the lock may have been held by another thread).
    global _open_lock
    _use(None)
    _open_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)


def current() -> WorkerCounters | None:
    """Return this process's counters, or ``None`` before anything was counted."""
    counters = _current
    if counters is not None and counters.pid != os.getpid():
        return None
    return counters


# PERF: the receivers below run on every request once enabled, where the
# compiled ones (_counting.c) were not built: a few loads and stores through
# memoryviews of the shared map. The locked ones serve threaded workers; a
# sync worker handles one request at a time, and its receivers skip the lock
# (about 0.1 us each; bench/requests.py measures the whole cost, in process).
# The unlocked ones name every argument their signal sends: a call whose
# keywords all have a parameter builds no keyword dict.


def count_request_started(sender: t.Any, **kwargs: t.Any) -> None:
    """Count one ``request_started`` (the receiver :func:`enable` connects)."""
    with (_current or _open()).lock:
        _count_request_started_unlocked()


def count_request_finished(sender: t.Any, *, duration: float, **kwargs: t.Any) -> None:
    """Count one ``request_finished`` and sort its duration into the histogram.

    The count of ``request_finished`` is the histogram's: every one lands in
    exactly one bucket.
    """
    with (_current or _open()).lock:
        _count_request_finished_unlocked(duration=duration)


def count_got_request_exception(sender: t.Any, **kwargs: t.Any) -> None:
    """Count one ``got_request_exception``."""
    counters = _current or _open()
    with counters.lock:
        counters.slots[_EXCEPTION] += 1


def _count_request_started_unlocked(
    signal: t.Any = None, sender: t.Any = None, environ: t.Any = None, **kwargs: t.Any
) -> None:
    _slots[_STARTED] += 1


def _count_request_finished_unlocked(
    signal: t.Any = None,
    sender: t.Any = None,
    environ: t.Any = None,
    status: t.Any = None,
    duration: float = 0.0,
    **kwargs: t.Any,
) -> None:
    if not 0.0 <= duration < _MAX_SECONDS:  # NaN too: it would stick in the sum
        raise ValueError(f"request_finished sent an impossible duration: {duration!r}")
    seconds = _seconds
    seconds[_DURATION] += duration
    if duration > seconds[_MAX]:
        seconds[_MAX] = duration
    _slots[_BUCKETS + _bisect_left(BUCKET_BOUNDS, duration)] += 1


_MAX_SECONDS = 1e9  # about 32 years; a duration past it is a mistake


def _count_got_request_exception_unlocked(sender: t.Any, **kwargs: t.Any) -> None:
    _slots[_EXCEPTION] += 1


if _compiled is not None:
    _compiled.configure(
        started=_STARTED,
        exception=_EXCEPTION,
        duration=_DURATION,
        maximum=_MAX,
        buckets=_BUCKETS,
        bounds=BUCKET_BOUNDS,
        max_seconds=_MAX_SECONDS,
        opener=_open,
    )
    _COMPILED: tuple[Receiver, ...] = (
        _compiled.request_started,
        _compiled.request_finished,
        _compiled.got_request_exception,
    )

_SIGNALS = (
    signals.request_started,
    signals.request_finished,
    signals.got_request_exception,
)
_LOCKED: tuple[Receiver, ...] = (
    count_request_started,
    count_request_finished,
    count_got_request_exception,
)
_UNLOCKED: tuple[Receiver, ...] = (
    _count_request_started_unlocked,
    _count_request_finished_unlocked,
    _count_got_request_exception_unlocked,
)


def enable(
    directory: str | os.PathLike[str] | None = None,
    *,
    threads: bool = True,
    compiled: bool = True,
) -> WorkerCounters:
    """Count the request signals in this process, from now on.

    Connects a receiver to each request signal for any sender, with
    ``dispatch_uid="framework.metrics"`` (so ``signal.disconnect(
    dispatch_uid="framework.metrics")`` removes one), and opens this process's
    counters. The receivers are the compiled ones where they were built
    (:data:`COMPILED`), else :func:`count_request_started`,
    :func:`count_request_finished` and :func:`count_got_request_exception`.
    A forked child counts in counters of its own, opened on first use.

    Counters this process already has (enabled before, or opened by a
    :func:`count` receiver) are kept when they are in the same place, so the
    process stays one worker with all its numbers. Moved from memory to a
    directory, their numbers go along; a file in another directory keeps its
    numbers there.

    :param directory: the shared counters directory; ``None`` reads
        ``FRAMEWORK_METRICS_DIR``; empty: this process only.
    :param threads: ``False`` promises one request at a time in this process
        (a sync worker): the Python receivers then skip their lock. The
        compiled ones need none: they update a slot without letting another
        thread run in between.
    :param compiled: ``False`` connects the Python receivers even where the
        compiled ones were built (to compare them).
    :returns: this process's counters.
    :raises MetricsDirectoryError: the directory is not safe to use.
    """
    global _directory
    with _open_lock:
        _directory = os.fspath(directory) if directory is not None else None
        previous = current()
        # NOTE: reopening in the same place would retire this live process's
        # file as a stale one: it would show as two workers, its numbers split.
        if previous is not None and _same_place(previous, _chosen_directory()):
            previous = None  # kept
        elif previous is not None:
            _use(None)
    carried = None
    if previous is not None:
        if not previous.directory:
            carried = previous.snapshot()
        previous.close()
    counters = _open(carried)
    receivers = _LOCKED if threads else _UNLOCKED
    if compiled and _compiled is not None:
        receivers = _COMPILED
    for signal in _SIGNALS:
        signal.disconnect(dispatch_uid=_UID)
    for signal, receiver in zip(_SIGNALS, receivers, strict=True):
        signal.connect(receiver, weak=False, dispatch_uid=_UID)
    return counters


def enabled() -> bool:
    """Return whether the request counters are connected."""
    return any(
        info.dispatch_uid == _UID
        for signal in _SIGNALS
        for info in signal.connections()
    )


def disable() -> None:
    """Disconnect the request counters and stop using this process's file.

    Extra counters (:func:`count`) stay connected and reopen the counters
    when they next count.
    """
    global _directory
    for signal in _SIGNALS:
        signal.disconnect(dispatch_uid=_UID)
    with _open_lock:
        previous = _current
        _use(None)
        _directory = None
    if previous is not None and previous.pid == os.getpid():
        previous.close()


def count(signal: Signal, name: str | None = None) -> str:
    """Count every send of ``signal`` in this process's counters too.

    The count is shown by :func:`prometheus_text` with the request signals
    (``framework_signals_total{signal="NAME"}``). Counting the same name
    again is a no-op. At most 16 extra counters.

    :param signal: any signal.
    :param name: the label; defaults to the signal's name.
    :returns: the name.
    :raises ValueError: the name is not a valid label, or too many counters.
    """
    label = name or signal.name or ""
    if not _NAME.fullmatch(label) or label in (
        "request_started",
        "request_finished",
        "got_request_exception",
    ):
        raise ValueError(
            f"Cannot count {signal!r} as {label!r}: give a name of letters,"
            " digits and underscores (at most 32) that is not a request signal."
        )
    if label not in _extra_names:
        if len(_extra_names) >= _MAX_EXTRA:
            raise ValueError(f"At most {_MAX_EXTRA} extra counters can be counted.")
        _extra_names.append(label)
        counters = current()
        if counters is not None:
            counters.add_name(label)

    def receive(sender: t.Any, **kwargs: t.Any) -> None:
        counters = _current or _open()
        slot = _EXTRAS + counters.add_name(label)
        with counters.lock:
            counters.slots[slot] += 1

    receive.__name__ = receive.__qualname__ = f"count_{label}"
    previous = _extra_signals.get(label)
    if previous is not None and previous is not signal:
        previous.disconnect(dispatch_uid=(_UID, label))
    _extra_signals[label] = signal
    signal.connect(receive, weak=False, dispatch_uid=(_UID, label))
    return label


# Reading and exposing ------------------------------------------------------------


def collect() -> dict[str, Snapshot]:
    """Return every worker's counters this process can see.

    From the shared directory when there is one (this process's, else
    ``FRAMEWORK_METRICS_DIR``), else this process's own numbers.
    """
    counters = current()
    directory = counters.directory if counters is not None else None
    if directory is None:
        directory = _chosen_directory()
    if directory:
        return read(directory)
    if counters is None:
        return {}
    return {str(counters.pid): counters.snapshot()}


def _shared() -> bool:
    counters = current()
    if counters is not None:
        return bool(counters.directory)
    return bool(_directory or os.environ.get(DIRECTORY_VARIABLE))


def prometheus_text(
    snapshots: cabc.Mapping[str, Snapshot] | None = None,
    *,
    shared: bool | None = None,
    all_buckets: bool = False,
) -> str:
    """Render counters in the Prometheus text exposition format (0.0.4).

    Families: ``framework_signals_total{signal}`` (the sum over every
    worker), ``framework_worker_signals_total{signal,worker}`` (per worker;
    exited workers are summed under ``worker="retired"``), the histogram
    ``framework_request_duration_seconds`` (sum over workers),
    ``framework_worker_request_duration_seconds{worker}`` (sum and count),
    ``framework_request_duration_max_seconds``, ``framework_workers``
    (processes counted) and ``framework_metrics_shared`` (1 when the numbers
    come from a shared directory, so every worker of the server is included;
    0 when only the answering process is).

    :param snapshots: what to render; defaults to :func:`collect`.
    :param shared: the value of ``framework_metrics_shared``; defaults to
        whether this process counts into a shared directory.
    :param all_buckets: every histogram bucket instead of 1, 2.5 and 5 per
        decade from 100 us to 50 s.
    """
    if snapshots is None:
        snapshots = collect()
    if shared is None:
        shared = _shared()
    return _render(snapshots, shared=shared, all_buckets=all_buckets)


CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""The media type of the Prometheus text exposition format."""


def view(request: t.Any) -> tuple[str, int, dict[str, str]]:
    """Answer ``/metrics`` in any app: ``app.add_route("/metrics", metrics.view)``.

    The body is :func:`prometheus_text` for every worker that shares this
    process's counters directory (``?buckets=all``: every histogram bucket).
    """
    query = urllib.parse.parse_qs(request.environ.get("QUERY_STRING", ""))
    text = prometheus_text(all_buckets=query.get("buckets") == ["all"])
    return text, 200, {"Content-Type": CONTENT_TYPE, "Cache-Control": "no-store"}
