"""What every generator is told: the mix compiled once, the bounds, where to write.

Both generators (wrk's Lua script, the Locust file) receive the same
:class:`Plan` as data, and write the same sample lines (see :data:`FIELDS`).
"""

from __future__ import annotations

import dataclasses
import typing as t

from .scenario import Part
from .scenario import Scenario
from .scenario import encode

__all__ = ["CONTEXTS", "FIELDS", "Plan", "compile_plan"]

FIELDS = ("instance", "end", "latency_ms", "name", "status", "ok", "unique")
"""Columns of a sample line (tab-separated): the instance's index, the time the
answer ended (epoch seconds), the latency in milliseconds, the request's name,
the status (0: no answer), 1 if the status was expected, and the ``${unique}``
value of an expected answer (else ``-``)."""

CONTEXTS = ("raw", "path", "json")
"""The encodings of a picked value, in the order of :attr:`Plan.values` variants."""


@dataclasses.dataclass
class Plan:
    """The compiled mix and the run's bounds, as plain data for a generator."""

    requests: list[dict[str, t.Any]]
    """Each: ``name``, ``method``, ``path``/``body`` (compiled parts or
    ``None``), ``headers`` (``[name, parts]`` pairs), ``expect`` (list or
    ``None``), ``weight``, ``upto`` (cumulative weight) and ``unique``."""
    values: list[list[list[str]]]
    """Per placeholder list: its values encoded for each of :data:`CONTEXTS`."""
    total_weight: int
    """The sum of the weights."""
    prefix: str
    """The run's prefix of ``${unique}`` values."""


def compile_plan(
    scenario: Scenario, constants: t.Mapping[str, str], prefix: str
) -> Plan:
    """Compile the scenario's load requests for a generator.

    Compiled parts are literal strings, ``0`` for ``${unique}``, or
    ``[list index, context index]`` (0-based) for a value picked from a list;
    ``constants`` (captured by set-up requests) are written in as literals.
    """
    names = sorted(scenario.values)
    index = {name: position for position, name in enumerate(names)}

    def compiled(parts: list[Part] | None) -> list[t.Any] | None:
        if parts is None:
            return None
        out: list[t.Any] = []
        for part in parts:
            if isinstance(part, str):
                literal = part
            elif part[0] == "unique":
                out.append(0)
                continue
            elif part[0] in constants:
                literal = encode(constants[part[0]], part[1])
            else:
                out.append([index[part[0]], CONTEXTS.index(part[1])])
                continue
            if out and isinstance(out[-1], str):
                out[-1] += literal
            else:
                out.append(literal)
        return out

    requests = []
    upto = 0
    for request in scenario.requests:
        upto += request.weight
        requests.append(
            {
                "name": request.name,
                "method": request.method,
                "path": compiled(request.path),
                "headers": [[name, compiled(value)] for name, value in request.headers],
                "body": compiled(request.body),
                "expect": sorted(request.expect) if request.expect else None,
                "weight": request.weight,
                "upto": upto,
                "unique": "unique" in request.placeholders,
            }
        )
    values = [
        [
            [encode(value, context) for value in scenario.values[name]]
            for context in CONTEXTS
        ]
        for name in names
    ]
    return Plan(requests=requests, values=values, total_weight=upto, prefix=prefix)


def split(total: int, parts: int) -> list[int]:
    """Split ``total`` into ``parts`` whole shares differing by at most one."""
    share, extra = divmod(total, parts)
    return [share + (1 if position < extra else 0) for position in range(parts)]
