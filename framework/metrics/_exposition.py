"""The Prometheus text exposition of the counters, and reading it back."""

from __future__ import annotations

import bisect
import collections.abc as cabc
import math
import re

from ._files import _BUCKET_COUNT
from ._files import _MAX_EXTRA
from ._files import _NAME
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


_METRIC = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_SAMPLE = re.compile(
    r"(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)"
    r'(?:\{(?P<labels>(?:[^"}]|"(?:[^"\\]|\\.)*")*)\})?'
    r"[ \t]+(?P<value>\S+)(?:[ \t]+-?[0-9]+)?"
)
_LABEL = re.compile(
    r'[ \t]*([a-zA-Z_][a-zA-Z0-9_]*)[ \t]*=[ \t]*"((?:[^"\\]|\\.)*)"[ \t]*'
)
_ESCAPE = re.compile(r"\\(.)", re.DOTALL)
_UNESCAPED = {"\\": "\\", '"': '"', "n": "\n"}
_FLOAT = re.compile(
    r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[+-]?Inf|NaN"
)
_INTEGER = re.compile(r"\+?[0-9]+")
_MAX_COUNT = 2**64 - 1  # a counters file's slot
_MAX_SECONDS = _MAX_COUNT / 1e9  # nanoseconds in a slot
_REQUEST_NAMES = ("request_started", "request_finished", "got_request_exception")
_SIGNALS = "framework_signals_total"
_BUCKET = "framework_request_duration_seconds_bucket"
_SUM = "framework_request_duration_seconds_sum"
_MAX = "framework_request_duration_max_seconds"
_WORKERS = "framework_workers"
_SHARED = "framework_metrics_shared"
_READ = {
    # The families parse() reads, and the one label each must have (if any).
    _SIGNALS: "signal",
    _BUCKET: "le",
    _SUM: None,
    _MAX: None,
    _WORKERS: None,
    _SHARED: None,
}


def _unescape(value: str, where: str) -> str:
    def replace(match: re.Match[str]) -> str:
        try:
            return _UNESCAPED[match.group(1)]
        except KeyError:
            raise ValueError(
                f"{where}: the escape \\{match.group(1)} in a label value"
                ' (only \\\\, \\" and \\n are allowed)'
            ) from None

    return _ESCAPE.sub(replace, value)


def _labels(text: str, where: str) -> dict[str, str]:
    labels: dict[str, str] = {}
    position = 0
    text = text.rstrip(" \t")
    while position < len(text):
        match = _LABEL.match(text, position)
        if match is None:
            raise ValueError(f"{where}: malformed labels {{{text}}}")
        name, value = match.group(1), _unescape(match.group(2), where)
        if name in labels:
            raise ValueError(f"{where}: the label {name} twice")
        labels[name] = value
        position = match.end()
        if position < len(text):
            if text[position] != ",":
                raise ValueError(f"{where}: malformed labels {{{text}}}")
            position += 1
    return labels


def _number(text: str, where: str) -> float:
    if not _FLOAT.fullmatch(text):
        raise ValueError(f"{where}: {text!r} is not a number")
    return float(text)


def _count(text: str, where: str) -> int:
    """Read a count: a whole number from 0 to 2**64 - 1 (a counters slot)."""
    if _INTEGER.fullmatch(text):
        if len(text) > 21:  # more digits than 2**64 has: out of range
            raise ValueError(f"{where}: the count {text[:24]}... is out of range")
        value = int(text)
    else:
        number = _number(text, where)
        if not (math.isfinite(number) and number.is_integer()):
            raise ValueError(f"{where}: the count {text} is not a whole number")
        value = int(number)
    if not 0 <= value <= _MAX_COUNT:
        raise ValueError(f"{where}: the count {text} is out of range")
    return value


def _seconds(text: str, where: str) -> float:
    value = _number(text, where)
    if not 0 <= value <= _MAX_SECONDS:  # NaN fails too
        raise ValueError(f"{where}: {text} seconds is out of range")
    return value


def _bucket_bound(text: str, where: str) -> float:
    bound = math.inf if text == "+Inf" else _number(text, where)
    if not 0 <= bound <= math.inf:  # NaN, -Inf and negative bounds
        raise ValueError(f"{where}: the bucket bound le={text!r}")
    return bound


def _check_labels(name: str, labels: dict[str, str], where: str) -> str | None:
    wanted = _READ[name]
    if wanted is not None and wanted not in labels:
        raise ValueError(f"{where}: {name} without its {wanted} label")
    if set(labels) - {wanted}:
        raise ValueError(
            f"{where}: {name} with unexpected labels"
            f" {', '.join(sorted(set(labels) - {wanted}))}"
        )
    return labels[wanted] if wanted is not None else None


def _samples(text: str) -> cabc.Iterator[tuple[str, str, str | None, str]]:
    """Yield ``(where, name, label, value)`` of each sample of a family read."""
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"line {number}"
        match = _SAMPLE.fullmatch(line)
        if match is None:
            family = _METRIC.match(line)
            if family is not None and family.group() in _READ:
                raise ValueError(f"{where}: a malformed {family.group()} sample")
            continue
        name = match.group("name")
        if name in _READ:
            labels = _labels(match.group("labels") or "", where)
            label = _check_labels(name, labels, where)
            yield where, name, label, match.group("value")


def _histogram(cumulative: dict[float, int]) -> tuple[int, ...]:
    """Turn cumulative counts by ``le`` bound into counts per bucket."""
    buckets = [0] * _BUCKET_COUNT
    previous = 0
    for bound in sorted(cumulative):
        if cumulative[bound] < previous:
            raise ValueError(
                f"the histogram's count falls from {previous} to"
                f" {cumulative[bound]} at le={bound}"
            )
        index = (
            len(BUCKET_BOUNDS)
            if math.isinf(bound)
            else bisect.bisect_left(BUCKET_BOUNDS, bound)
        )
        buckets[index] += cumulative[bound] - previous
        previous = cumulative[bound]
    return tuple(buckets)


def parse(text: str) -> tuple[Snapshot, bool]:
    """Read back the sums from :func:`prometheus_text` output (``/metrics``).

    Lines of other families (another exporter's, or the per-worker ones) and
    lines that are not samples are skipped. A sample of a family read here must
    be well formed: its label present and no other, escapes ``\\\\``,
    ``\\"`` and ``\\n`` only, counts whole numbers from 0 to 2**64 - 1,
    seconds finite and not negative, each series once, and the histogram's
    cumulative counts never decreasing.

    :returns: the summed snapshot (buckets as fine as the text has: exact
        with ``all_buckets``) and the ``framework_metrics_shared`` flag.
    :raises ValueError: the text has no ``framework_signals_total`` family,
        or a sample of a family read here is malformed, out of range or
        repeated (the message names its line).
    """
    values: dict[str, int] = {}
    cumulative: dict[float, int] = {}
    scalars: dict[str, str] = {}
    for where, name, label, value in _samples(text):
        if name == _SIGNALS:
            assert label is not None
            if label not in _REQUEST_NAMES and not _NAME.fullmatch(label):
                raise ValueError(f"{where}: the signal {label!r} is not a name")
            if label in values:
                raise ValueError(f"{where}: the signal {label} twice")
            values[label] = _count(value, where)
        elif name == _BUCKET:
            assert label is not None
            bound = _bucket_bound(label, where)
            if bound in cumulative:
                raise ValueError(f"{where}: the bucket le={label} twice")
            cumulative[bound] = _count(value, where)
        elif name in scalars:
            raise ValueError(f"{where}: {name} twice")
        elif name == _SHARED and value not in ("0", "1"):
            raise ValueError(f"{where}: {name} is {value}, not 0 or 1")
        else:
            if name == _WORKERS:
                _count(value, where)
            elif name != _SHARED:
                _seconds(value, where)
            scalars[name] = value
    if not values:
        raise ValueError("no framework_signals_total")
    extras = {k: v for k, v in values.items() if k not in _REQUEST_NAMES}
    if len(extras) > _MAX_EXTRA:
        raise ValueError(f"more than {_MAX_EXTRA} extra signals")
    snapshot = Snapshot(
        request_started=values.get("request_started", 0),
        request_finished=values.get("request_finished", 0),
        got_request_exception=values.get("got_request_exception", 0),
        duration_ns=round(_seconds(scalars.get(_SUM, "0"), _SUM) * 1e9),
        max_ns=round(_seconds(scalars.get(_MAX, "0"), _MAX) * 1e9),
        buckets=_histogram(cumulative),
        counters=extras,
        processes=_count(scalars.get(_WORKERS, "0"), _WORKERS),
    )
    return snapshot, scalars.get(_SHARED) == "1"
