"""Samples in, results out: what the generator saw, the books, the checks.

:class:`Samples` reads the generators' sample lines (see
:data:`framework.loadtest._plan.FIELDS`) while they are written, and keeps
the latencies, statuses and acknowledged ``${unique}`` values. :func:`checks`
compares them with what every server counted.
"""

from __future__ import annotations

import array
import collections
import dataclasses
import math
import pathlib
import typing as t

from .scenario import Scenario

if t.TYPE_CHECKING:
    from .servers import Books

__all__ = ["Check", "Samples", "checks", "percentile", "percentiles"]


def percentile(ordered: t.Sequence[float], fraction: float) -> float:
    """Return the nearest-rank percentile of sorted values (0.0 when empty)."""
    if not ordered:
        return 0.0
    rank = max(1, math.ceil(fraction * len(ordered)))
    return float(ordered[min(rank, len(ordered)) - 1])


def percentiles(values: t.Iterable[float]) -> dict[str, float]:
    """Return ``p50``, ``p90``, ``p99`` and ``max`` of ``values``, rounded to 0.001."""
    ordered = sorted(values)
    return {
        "p50": round(percentile(ordered, 0.50), 3),
        "p90": round(percentile(ordered, 0.90), 3),
        "p99": round(percentile(ordered, 0.99), 3),
        "max": round(ordered[-1], 3) if ordered else 0.0,
    }


class Samples:
    """Every answer the generator reported, read from its sample files.

    :param directory: where the generator writes ``*.tsv`` files.
    :param instances: how many instances were loaded.
    :param scenario: tells which 5xx answers are raised on purpose; ``None``
        (a user's locustfile): every expected 5xx is.
    """

    def __init__(
        self, directory: pathlib.Path, instances: int, scenario: Scenario | None
    ) -> None:
        self.directory = directory
        self._offsets: dict[str, int] = {}
        self._partial: dict[str, bytes] = {}
        self.completed = [0] * instances
        """Answers per instance (socket errors excluded)."""
        self.expected_exceptions = [0] * instances
        """Expected 5xx answers of requests that raise on purpose, per instance."""
        self.socket_errors = 0
        """Requests without an answer (Locust reports them; wrk counts its own)."""
        self.statuses: dict[str, collections.Counter[int]] = collections.defaultdict(
            collections.Counter
        )
        """Answers by request name and status."""
        self.unexpected: dict[str, collections.Counter[int]] = collections.defaultdict(
            collections.Counter
        )
        """Unexpected answers by request name and status."""
        self.acknowledged: dict[str, list[str]] = collections.defaultdict(list)
        """``${unique}`` values of expected answers, by request name."""
        self.times = array.array("d")
        """When each answer ended (epoch seconds)."""
        self.latencies = array.array("d")
        """Each answer's latency, ms."""
        self.by_name: dict[str, array.array[float]] = collections.defaultdict(
            lambda: array.array("d")
        )
        """Latencies by request name."""
        self.first_start: float | None = None
        """When the first answered request was sent (epoch seconds)."""
        self.bad_lines = 0
        """Lines that could not be read (a generator's bug)."""
        self._raises = (
            {request.name: request.raises for request in scenario.requests}
            if scenario is not None
            else None
        )

    @property
    def count(self) -> int:
        """Answers so far."""
        return len(self.latencies)

    def poll(self) -> int:
        """Read what the generator wrote since the last call; return how much."""
        before = len(self.latencies)
        for path in sorted(self.directory.glob("*.tsv")):
            offset = self._offsets.get(path.name, 0)
            with open(path, "rb") as file:
                file.seek(offset)
                data = file.read()
            if not data:
                continue
            self._offsets[path.name] = offset + len(data)
            data = self._partial.pop(path.name, b"") + data
            lines = data.split(b"\n")
            if lines[-1]:
                self._partial[path.name] = lines[-1]
            for line in lines[:-1]:
                if line:
                    self._add(line)
        return len(self.latencies) - before

    def _add(self, line: bytes) -> None:
        try:
            fields = line.decode("utf-8", "replace").split("\t")
            instance_text, end_text, latency_text, name, status_text, ok, unique = (
                fields
            )
            instance = int(instance_text)
            end = float(end_text)
            latency = float(latency_text)
            status = int(status_text)
        except ValueError:
            self.bad_lines += 1
            return
        if not 0 <= instance < len(self.completed):
            self.bad_lines += 1
            return
        if status == 0:
            self.socket_errors += 1
            return
        self.completed[instance] += 1
        self.statuses[name][status] += 1
        if ok != "1":
            self.unexpected[name][status] += 1
        elif status >= 500 and (self._raises is None or self._raises.get(name, True)):
            self.expected_exceptions[instance] += 1
        if ok == "1" and unique != "-":
            self.acknowledged[name].append(unique)
        self.times.append(end)
        self.latencies.append(latency)
        self.by_name[name].append(latency)
        start = end - latency / 1000
        if self.first_start is None or start < self.first_start:
            self.first_start = start

    def since(self, position: int) -> list[float]:
        """Return the latencies of the answers after the first ``position``."""
        return list(self.latencies[position:])


@dataclasses.dataclass
class Check:
    """One check of the books: its name, whether it passed, and the evidence."""

    name: str
    """What is checked."""
    passed: bool
    """Whether it holds."""
    detail: str
    """The numbers behind it."""

    def as_dict(self) -> dict[str, t.Any]:
        """Return ``{"name", "passed", "detail"}``."""
        return {"name": self.name, "passed": self.passed, "detail": self.detail}


def _per_instance(
    urls: list[str], pairs: list[tuple[int, int]], joiner: str = " = "
) -> str:
    return "; ".join(
        f"{url}: {left}{joiner if left == right else ' != '}{right}"
        for url, (left, right) in zip(urls, pairs, strict=True)
    )


def checks(
    *,
    urls: list[str],
    books: list[Books],
    samples: Samples,
    setup_requests: list[int],
    wrk_socket_errors: int,
    exit_codes: list[int] | None,
) -> list[Check]:
    """Compare what the generator saw with what every server counted.

    :param setup_requests: set-up requests sent to each instance (they count).
    :param exit_codes: the local servers' exit statuses, or ``None`` (``--url``).
    """
    completed = [
        answers + setup
        for answers, setup in zip(samples.completed, setup_requests, strict=True)
    ]
    found = [
        Check(
            "every request_started has its request_finished",
            all(b.request_started == b.request_finished for b in books),
            _per_instance(
                urls, [(b.request_started, b.request_finished) for b in books]
            ),
        ),
        Check(
            "request_started == requests completed",
            all(
                b.request_started == done
                for b, done in zip(books, completed, strict=True)
            ),
            _per_instance(
                urls,
                [
                    (b.request_started, done)
                    for b, done in zip(books, completed, strict=True)
                ],
            ),
        ),
        Check(
            "got_request_exception == expected 5xx answers",
            all(
                b.got_request_exception == expected
                for b, expected in zip(books, samples.expected_exceptions, strict=True)
            ),
            _per_instance(
                urls,
                [
                    (b.got_request_exception, expected)
                    for b, expected in zip(
                        books, samples.expected_exceptions, strict=True
                    )
                ],
            ),
        ),
    ]
    unexpected = {
        name: dict(sorted(statuses.items()))
        for name, statuses in sorted(samples.unexpected.items())
    }
    found.append(
        Check(
            "no unexpected status",
            not unexpected,
            "; ".join(
                f"{name}: "
                + ", ".join(f"{count} x {status}" for status, count in statuses.items())
                for name, statuses in unexpected.items()
            )
            or "every answer had an expected status",
        )
    )
    errors = samples.socket_errors + wrk_socket_errors
    found.append(
        Check(
            "no socket errors",
            errors == 0 and samples.bad_lines == 0,
            f"{errors} requests without an answer"
            + (
                f", {samples.bad_lines} unreadable samples" if samples.bad_lines else ""
            ),
        )
    )
    if exit_codes is not None:
        found.append(
            Check(
                "servers stopped cleanly",
                all(code == 0 for code in exit_codes),
                "exit statuses " + ", ".join(map(str, exit_codes)),
            )
        )
    return found
