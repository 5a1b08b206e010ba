"""The summary table and ``report.html``, with charts drawn as inline SVG.

The charts (latency over time with the throughput, the latency histogram, and
client-side against server-side time) are drawn by the few lines of SVG below:
the report is one self-contained file, and no plotting library is needed.
"""

from __future__ import annotations

import html
import math
import re
import typing as t

from .. import metrics

if t.TYPE_CHECKING:
    from .results import Samples

__all__ = ["render_html", "summary_lines"]

_NUMBER = re.compile(r"[-+0-9.,]*")
_COLORS = {"p50": "#1f77b4", "p90": "#ff7f0e", "p99": "#d62728"}
_CLIENT = "#1f77b4"
_SERVER = "#2ca02c"


def summary_lines(results: dict[str, t.Any]) -> list[str]:
    """Return the summary table printed at the end of a run."""
    client, server = results["latency_ms"], results["server_ms"]
    lines = [
        f"{'':18} {'requests':>9} {'req/s':>9} {'p50':>8} {'p90':>8}"
        f" {'p99':>8} {'max':>8}  (ms)",
        f"{'client (' + results['config']['generator'] + ')':18}"
        f" {results['completed']:>9,} {results['throughput_rps']:>9,.1f}"
        + "".join(f" {client[key]:>8.2f}" for key in ("p50", "p90", "p99", "max")),
        f"{'server (signals)':18} {results['server_requests']:>9,} {'':>9}"
        + "".join(f" {server[key]:>8.2f}" for key in ("p50", "p90", "p99", "max")),
        "",
    ]
    width = max([len("request")] + [len(name) for name in results["requests"]])
    lines.append(f"{'request':{width}}  {'answers':>8}  statuses")
    for name, data in results["requests"].items():
        statuses = ", ".join(
            f"{count} x {status}" for status, count in data["statuses"].items()
        )
        lines.append(f"{name:{width}}  {data['count']:>8,}  {statuses}")
    lines.append("")
    for instance in results["instances"]:
        exit_code = instance.get("exit_code")
        lines.append(
            f"{instance['url']}: completed {instance['completed']:,},"
            f" request_started {instance['request_started']:,}, request_finished"
            f" {instance['request_finished']:,}, got_request_exception"
            f" {instance['got_request_exception']:,}"
            f" ({instance['expected_exceptions']:,} expected)"
            + (f", {instance['workers']} workers" if instance["workers"] else "")
            + (f", exit {exit_code}" if exit_code is not None else "")
        )
    lines.append("")
    for check in results["checks"]:
        verdict = "PASS" if check["passed"] else "FAIL"
        lines.append(f"  {verdict}  {check['name']}: {check['detail']}")
    return lines


# SVG -----------------------------------------------------------------------------


class _Chart:
    """A small x/y chart: linear or log axes, lines, bars and a legend."""

    def __init__(
        self,
        x_range: tuple[float, float],
        y_range: tuple[float, float],
        *,
        x_log: bool = False,
        y_log: bool = False,
        x_label: str = "",
        y_label: str = "",
        width: int = 760,
        height: int = 300,
    ) -> None:
        self.width, self.height = width, height
        self.left, self.right, self.top, self.bottom = 64, 64, 30, 44
        self.x_ticks = True
        self.x_log, self.y_log = x_log, y_log
        self.x_range = self._range(x_range, x_log)
        self.y_range = self._range(y_range, y_log)
        self.x_label, self.y_label = x_label, y_label
        self.items: list[str] = []
        self.legend: list[tuple[str, str]] = []

    @staticmethod
    def _range(span: tuple[float, float], log: bool) -> tuple[float, float]:
        low, high = span
        if log:
            low = max(low, 1e-6)
            high = max(high, low * 10)
            return 10 ** math.floor(math.log10(low)), 10 ** math.ceil(math.log10(high))
        if high <= low:
            high = low + 1
        return low, high

    def x(self, value: float) -> float:
        return self._scale(
            value, self.x_range, self.x_log, self.left, self.width - self.right
        )

    def y(self, value: float) -> float:
        return self._scale(
            value, self.y_range, self.y_log, self.height - self.bottom, self.top
        )

    @staticmethod
    def _scale(
        value: float, span: tuple[float, float], log: bool, start: float, end: float
    ) -> float:
        low, high = span
        if log:
            value = max(value, low)
            fraction = math.log10(value / low) / math.log10(high / low)
        else:
            fraction = (value - low) / (high - low)
        fraction = min(max(fraction, 0.0), 1.0)
        return round(start + (end - start) * fraction, 2)

    def line(self, points: list[tuple[float, float]], color: str, label: str) -> None:
        """Draw a polyline (points with a NaN y break it)."""
        segments: list[list[str]] = [[]]
        for x, y in points:
            if math.isnan(y):
                segments.append([])
            else:
                segments[-1].append(f"{self.x(x)},{self.y(y)}")
        for segment in segments:
            if segment:
                self.items.append(
                    f'<polyline fill="none" stroke="{color}" stroke-width="1.8"'
                    f' points="{" ".join(segment)}"/>'
                )
        self.legend.append((color, label))

    def bars(
        self,
        spans: list[tuple[float, float, float]],
        color: str,
        label: str,
        opacity: float = 0.6,
        scale: t.Callable[[float], float] | None = None,
    ) -> None:
        """Draw bars ``(x from, x to, height)``; ``scale`` maps heights (a 2nd axis)."""
        to_y = scale or self.y
        base = self.height - self.bottom
        for start, end, value in spans:
            if value <= 0:
                continue
            left, right = self.x(start), self.x(end)
            top = to_y(value)
            self.items.append(
                f'<rect x="{left}" y="{top}" width="{max(right - left - 1, 1):.2f}"'
                f' height="{max(base - top, 0):.2f}" fill="{color}"'
                f' fill-opacity="{opacity}"/>'
            )
        self.legend.append((color, label))

    def _ticks(self, span: tuple[float, float], log: bool) -> list[float]:
        low, high = span
        if log:
            ticks = []
            exponent = math.floor(math.log10(low))
            while 10**exponent <= high * 1.0001:
                for mantissa in (1, 2, 5):
                    value = mantissa * 10**exponent
                    if low <= value <= high * 1.0001:
                        ticks.append(value)
                exponent += 1
            return ticks
        step = 10 ** math.floor(math.log10((high - low) / 5))
        for factor in (1, 2, 5, 10):
            if (high - low) / (step * factor) <= 6:
                step *= factor
                break
        first = math.ceil(low / step) * step
        count = int((high - first) / step) + 1
        return [first + index * step for index in range(count)]

    def render(self, second_axis: tuple[float, str] | None = None) -> str:
        """Return the ``<svg>``; ``second_axis`` = (top value, label) on the right."""
        base = self.height - self.bottom
        parts = [
            f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {self.width}'
            f' {self.height}" width="{self.width}" height="{self.height}"'
            ' font-family="sans-serif" font-size="11">',
        ]
        for value in self._ticks(self.y_range, self.y_log):
            y = self.y(value)
            parts.append(
                f'<line x1="{self.left}" y1="{y}" x2="{self.width - self.right}"'
                f' y2="{y}" stroke="#ddd"/>'
                f'<text x="{self.left - 6}" y="{y + 4}" text-anchor="end">'
                f"{_short(value)}</text>"
            )
        for value in self._ticks(self.x_range, self.x_log) if self.x_ticks else []:
            x = self.x(value)
            parts.append(
                f'<line x1="{x}" y1="{base}" x2="{x}" y2="{base + 4}" stroke="#333"/>'
                f'<text x="{x}" y="{base + 16}" text-anchor="middle">'
                f"{_short(value)}</text>"
            )
        parts += self.items
        parts.append(
            f'<line x1="{self.left}" y1="{base}" x2="{self.width - self.right}"'
            f' y2="{base}" stroke="#333"/>'
            f'<line x1="{self.left}" y1="{self.top}" x2="{self.left}" y2="{base}"'
            ' stroke="#333"/>'
            f'<text x="{(self.left + self.width - self.right) / 2}"'
            f' y="{self.height - 6}" text-anchor="middle">'
            f"{html.escape(self.x_label)}</text>"
            f'<text transform="translate(14,{(self.top + base) / 2}) rotate(-90)"'
            f' text-anchor="middle">{html.escape(self.y_label)}</text>'
        )
        if second_axis is not None:
            top_value, label = second_axis
            right = self.width - self.right
            for fraction in (0.0, 0.5, 1.0):
                y = base - (base - self.top) * fraction
                parts.append(
                    f'<text x="{right + 6}" y="{y + 4}" fill="#888">'
                    f"{_short(top_value * fraction)}</text>"
                )
            parts.append(
                f'<text transform="translate({self.width - 12},'
                f'{(self.top + base) / 2}) rotate(90)" text-anchor="middle"'
                f' fill="#888">{html.escape(label)}</text>'
            )
        for position, (color, label) in enumerate(self.legend):
            x = self.left + position * 190
            parts.append(
                f'<rect x="{x}" y="4" width="12" height="12"'
                f' fill="{color}"/><text x="{x + 18}" y="14">'
                f"{html.escape(label)}</text>"
            )
        parts.append("</svg>")
        return "".join(parts)


def _short(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:g}"
    return f"{value:.3g}"


def _latency_over_time(samples: Samples) -> str:
    if not samples.count:
        return "<p>No answers.</p>"
    start = samples.first_start or min(samples.times)
    end = max(samples.times)
    span = max(end - start, 1e-3)
    bins = max(1, min(60, samples.count // 25))
    width = span / bins
    buckets: list[list[float]] = [[] for _ in range(bins)]
    for at, latency in zip(samples.times, samples.latencies, strict=True):
        buckets[min(bins - 1, int((at - start) / width))].append(latency)
    for bucket in buckets:
        bucket.sort()
    low = min(samples.latencies)
    high = max(samples.latencies)
    chart = _Chart(
        (0, span),
        (low, high),
        y_log=True,
        x_label="seconds since the first request",
        y_label="latency (ms)",
    )
    rates = [len(bucket) / width for bucket in buckets]
    top_rate = max(rates) or 1.0
    base = chart.height - chart.bottom

    def rate_y(value: float) -> float:
        return round(base - (base - chart.top) * value / top_rate, 2)

    chart.bars(
        [
            (index * width, (index + 1) * width, rate)
            for index, rate in enumerate(rates)
        ],
        "#bbb",
        "requests/s (right axis)",
        opacity=0.5,
        scale=rate_y,
    )
    from .results import percentile

    for key, fraction in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99)):
        chart.line(
            [
                (
                    (index + 0.5) * width,
                    percentile(bucket, fraction) if bucket else math.nan,
                )
                for index, bucket in enumerate(buckets)
            ],
            _COLORS[key],
            key,
        )
    return chart.render(second_axis=(top_rate, "requests/s"))


def _histogram(samples: Samples, server: metrics.Snapshot) -> str:
    if not samples.count:
        return "<p>No answers.</p>"
    bounds = metrics.BUCKET_BOUNDS
    lowest_server = next(
        (
            (bounds[index - 1] if index else bounds[0] / 2) * 1000
            for index, in_bucket in enumerate(server.buckets)
            if in_bucket
        ),
        math.inf,
    )
    low = max(min(min(samples.latencies), lowest_server), 0.01)
    high = max(max(samples.latencies), server.max_seconds * 1000, low * 10)
    edges_low = math.floor(math.log10(low) * 10) / 10
    edges_high = math.ceil(math.log10(high) * 10) / 10
    count = max(1, round((edges_high - edges_low) * 10))
    edges = [10 ** (edges_low + index / 10) for index in range(count + 1)]

    def binned(values: t.Iterable[tuple[float, int]]) -> list[int]:
        heights = [0] * count
        for value, weight in values:
            position = int((math.log10(max(value, low)) - edges_low) * 10)
            heights[min(max(position, 0), count - 1)] += weight
        return heights

    client = binned((latency, 1) for latency in samples.latencies)
    server_points = []
    for index, in_bucket in enumerate(server.buckets):
        if in_bucket:
            upper = bounds[index] if index < len(bounds) else server.max_seconds
            lower = bounds[index - 1] if index else upper / 2
            server_points.append((math.sqrt(lower * upper) * 1000, in_bucket))
    server_heights = binned(server_points)
    chart = _Chart(
        (edges[0], edges[-1]),
        (0, max(client + server_heights) or 1),
        x_log=True,
        x_label="latency (ms, log scale)",
        y_label="requests",
    )
    chart.x_range = (edges[0], edges[-1])
    chart.bars(
        [(edges[i], edges[i + 1], client[i]) for i in range(count)],
        _CLIENT,
        "client-side latency",
        opacity=0.55,
    )
    chart.bars(
        [(edges[i], edges[i + 1], server_heights[i]) for i in range(count)],
        _SERVER,
        "server-side time",
        opacity=0.45,
    )
    return chart.render()


def _client_vs_server(results: dict[str, t.Any]) -> str:
    keys = ("p50", "p90", "p99")
    client = [results["latency_ms"][key] for key in keys]
    server = [results["server_ms"][key] for key in keys]
    top = max(client + server) or 1.0
    chart = _Chart(
        (0, len(keys)),
        (0, top * 1.1),
        x_label="",
        y_label="ms",
        height=260,
    )
    chart.x_ticks = False
    chart.bars(
        [(i + 0.15, i + 0.5, value) for i, value in enumerate(client)],
        _CLIENT,
        "client-side",
    )
    chart.bars(
        [(i + 0.5, i + 0.85, value) for i, value in enumerate(server)],
        _SERVER,
        "server-side (request_started to request_finished)",
    )
    svg = chart.render()
    labels = "".join(
        f'<text x="{chart.x(i + 0.5)}" y="{chart.height - chart.bottom + 30}"'
        f' text-anchor="middle" font-weight="bold">{key}</text>'
        for i, key in enumerate(keys)
    )
    for offset, values in ((0.325, client), (0.675, server)):
        labels += "".join(
            f'<text x="{chart.x(i + offset)}" y="{chart.y(value) - 4}"'
            f' text-anchor="middle">{value:.2f}</text>'
            for i, value in enumerate(values)
        )
    # The category names replace the numeric x ticks of this chart.
    svg = svg.replace("</svg>", labels + "</svg>")
    return svg


_STYLE = """
body { font-family: sans-serif; margin: 2em; color: #222; max-width: 64em; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child, td.text { text-align: left; }
.pass { color: #1a7f37; font-weight: bold; }
.fail { color: #cf222e; font-weight: bold; }
.verdict { font-size: 1.4em; }
"""


def _table(headers: list[str], rows: list[list[t.Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(cell))}</th>" for cell in headers)
    body = "".join(
        "<tr>"
        + "".join(
            f"<td>{cell}</td>"
            if not isinstance(cell, str) or _NUMBER.fullmatch(cell) or "<span" in cell
            else f'<td class="text">{cell}</td>'
            for cell in row
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def render_html(
    results: dict[str, t.Any], samples: Samples, server: metrics.Snapshot
) -> str:
    """Return ``report.html``: one file, no scripts, charts as inline SVG."""
    escape = html.escape
    config = results["config"]
    verdict = (
        '<span class="pass">BALANCED</span>'
        if results["balanced"]
        else '<span class="fail">NOT BALANCED</span>'
    )
    keys = ("p50", "p90", "p99", "max")
    summary = _table(
        ["", "requests", "req/s", *[f"{key} ms" for key in keys]],
        [
            [
                f"client ({escape(config['generator'])})",
                f"{results['completed']:,}",
                f"{results['throughput_rps']:,.1f}",
                *[f"{results['latency_ms'][key]:.2f}" for key in keys],
            ],
            [
                "server (signals)",
                f"{results['server_requests']:,}",
                "",
                *[f"{results['server_ms'][key]:.2f}" for key in keys],
            ],
        ],
    )
    checks = _table(
        ["check", "result", "detail"],
        [
            [
                escape(check["name"]),
                '<span class="pass">PASS</span>'
                if check["passed"]
                else '<span class="fail">FAIL</span>',
                escape(check["detail"]),
            ]
            for check in results["checks"]
        ],
    )
    requests = _table(
        ["request", "answers", "statuses", "p50 ms", "p99 ms"],
        [
            [
                escape(name),
                f"{data['count']:,}",
                escape(
                    ", ".join(
                        f"{count} x {status}"
                        for status, count in data["statuses"].items()
                    )
                ),
                f"{data['latency_ms']['p50']:.2f}",
                f"{data['latency_ms']['p99']:.2f}",
            ]
            for name, data in results["requests"].items()
        ],
    )
    instances = _table(
        [
            "instance",
            "completed",
            "request_started",
            "request_finished",
            "got_request_exception",
            "expected 5xx",
            "workers",
        ],
        [
            [
                escape(instance["url"]),
                f"{instance['completed']:,}",
                f"{instance['request_started']:,}",
                f"{instance['request_finished']:,}",
                f"{instance['got_request_exception']:,}",
                f"{instance['expected_exceptions']:,}",
                instance["workers"] or "",
            ]
            for instance in results["instances"]
        ],
    )
    logs = "".join(
        f'<li><a href="{escape(name)}">{escape(name)}</a></li>'
        for name in results.get("files", [])
    )
    settings = escape(
        ", ".join(
            f"{key}={value}"
            for key, value in config.items()
            if value not in (None, "", [], 0)
        )
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>framework loadtest: {escape(config["app"])}</title>
<style>{_STYLE}</style></head><body>
<h1>Load test of {escape(config["app"])}</h1>
<p class="verdict">{verdict}</p>
<p>{settings}</p>
<h2>Summary</h2>{summary}
<h2>Checks</h2>{checks}
<h2>Latency over time</h2>
<p>Client-side percentiles per time slice, and the requests completed per
second (grey, right axis).</p>{_latency_over_time(samples)}
<h2>Latency histogram</h2>
<p>Client-side latency (what the generator measured) and server-side time (the
<code>duration</code> of <code>request_finished</code>, from the workers'
histograms): the gap is queueing, the network and the generator.</p>
{_histogram(samples, server)}
<h2>Server-side against client-side</h2>{_client_vs_server(results)}
<h2>Requests</h2>{requests}
<h2>Instances</h2>{instances}
<h2>Files</h2><ul>{logs}</ul>
</body></html>
"""
