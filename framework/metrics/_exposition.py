"""The Prometheus text exposition of the counters, and reading it back."""

from __future__ import annotations

import bisect
import collections.abc as cabc
import math
import re

from ._files import _BUCKET_COUNT
from ._files import BUCKET_BOUNDS
from ._files import EXPOSED_BOUNDS
from ._files import Snapshot
from ._files import total


def _bound(value: float) -> str:
    text = repr(value)
    return text if "e" not in text else f"{value:.10f}".rstrip("0")


def prometheus_text(
    snapshots: cabc.Mapping[str, Snapshot],
    *,
    shared: bool,
    all_buckets: bool = False,
) -> str:
    """Render ``snapshots`` (by worker) in the Prometheus text format.

    See :func:`framework.metrics.prometheus_text`.
    """
    workers = dict(snapshots)
    summed = total(workers.values())
    names = [
        "request_started",
        "request_finished",
        "got_request_exception",
        *sorted(summed.counters),
    ]
    lines = [
        "# HELP framework_signals_total Signals sent, summed over every worker.",
        "# TYPE framework_signals_total counter",
    ]
    for name in names:
        lines.append(f'framework_signals_total{{signal="{name}"}} {summed.get(name)}')
    lines += [
        "# HELP framework_worker_signals_total Signals sent, per worker"
        ' (exited workers summed as worker="retired").',
        "# TYPE framework_worker_signals_total counter",
    ]
    for worker, snapshot in workers.items():
        for name in names:
            lines.append(
                f'framework_worker_signals_total{{signal="{name}",worker="{worker}"}}'
                f" {snapshot.get(name)}"
            )
    lines += [
        "# HELP framework_request_duration_seconds Time from request_started to"
        " request_finished, summed over every worker.",
        "# TYPE framework_request_duration_seconds histogram",
    ]
    wanted = set(BUCKET_BOUNDS if all_buckets else EXPOSED_BOUNDS)
    cumulative = 0
    for index, bound in enumerate(BUCKET_BOUNDS):
        cumulative += summed.buckets[index]
        if bound in wanted:
            lines.append(
                f'framework_request_duration_seconds_bucket{{le="{_bound(bound)}"}}'
                f" {cumulative}"
            )
    cumulative += summed.buckets[-1]
    lines += [
        f'framework_request_duration_seconds_bucket{{le="+Inf"}} {cumulative}',
        f"framework_request_duration_seconds_sum {summed.duration_seconds!r}",
        f"framework_request_duration_seconds_count {cumulative}",
        "# HELP framework_worker_request_duration_seconds Time from request_started"
        " to request_finished, per worker.",
        "# TYPE framework_worker_request_duration_seconds summary",
    ]
    for worker, snapshot in workers.items():
        lines.append(
            f'framework_worker_request_duration_seconds_sum{{worker="{worker}"}}'
            f" {snapshot.duration_seconds!r}"
        )
        lines.append(
            f'framework_worker_request_duration_seconds_count{{worker="{worker}"}}'
            f" {sum(snapshot.buckets)}"
        )
    lines += [
        "# HELP framework_request_duration_max_seconds The longest request.",
        "# TYPE framework_request_duration_max_seconds gauge",
        f"framework_request_duration_max_seconds {summed.max_seconds!r}",
        "# HELP framework_workers Processes whose counters are included.",
        "# TYPE framework_workers gauge",
        f"framework_workers {summed.processes}",
        "# HELP framework_metrics_shared 1 when the numbers cover every worker"
        " (a shared counters directory), 0 when only the answering process.",
        "# TYPE framework_metrics_shared gauge",
        f"framework_metrics_shared {int(shared)}",
    ]
    return "\n".join(lines) + "\n"


_SAMPLE = re.compile(
    r"(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>[^}]*)\})?"
    r" (?P<value>[-+0-9.eEinfINFaN]+)(?: [0-9]+)?"
)
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse(text: str) -> tuple[Snapshot, bool]:
    """Read back the sums from :func:`prometheus_text` output (``/metrics``).

    :returns: the summed snapshot (buckets as fine as the text has: exact
        with ``all_buckets``) and the ``framework_metrics_shared`` flag.
    :raises ValueError: the text has no ``framework_signals_total`` family.
    """
    values: dict[str, int] = {}
    cumulative: dict[float, int] = {}
    duration = 0.0
    max_seconds = 0.0
    processes = 0
    shared = False
    found = False
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.fullmatch(line.strip())
        if match is None:
            continue
        name = match.group("name")
        labels = dict(_LABEL.findall(match.group("labels") or ""))
        value = float(match.group("value"))
        if name == "framework_signals_total" and "signal" in labels:
            values[labels["signal"]] = int(value)
            found = True
        elif name == "framework_request_duration_seconds_bucket":
            bound = math.inf if labels.get("le") == "+Inf" else float(labels["le"])
            cumulative[bound] = int(value)
        elif name == "framework_request_duration_seconds_sum":
            duration = value
        elif name == "framework_request_duration_max_seconds":
            max_seconds = value
        elif name == "framework_workers":
            processes = int(value)
        elif name == "framework_metrics_shared":
            shared = value == 1
    if not found:
        raise ValueError("no framework_signals_total samples: not framework.metrics")
    buckets = [0] * _BUCKET_COUNT
    previous = 0
    for bound in sorted(cumulative):
        index = (
            len(BUCKET_BOUNDS)
            if math.isinf(bound)
            else bisect.bisect_left(BUCKET_BOUNDS, bound)
        )
        buckets[index] += cumulative[bound] - previous
        previous = cumulative[bound]
    request_names = ("request_started", "request_finished", "got_request_exception")
    snapshot = Snapshot(
        request_started=values.get("request_started", 0),
        request_finished=values.get("request_finished", 0),
        got_request_exception=values.get("got_request_exception", 0),
        duration_ns=round(duration * 1e9),
        max_ns=round(max_seconds * 1e9),
        buckets=tuple(buckets),
        counters={k: v for k, v in values.items() if k not in request_names},
        processes=processes,
    )
    return snapshot, shared
