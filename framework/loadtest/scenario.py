"""Scenarios: what a load test sends, read from TOML and checked before anything runs.

A scenario is a weighted mix of requests (method, path, headers, a body or
JSON, the expected statuses) plus optional set-up requests run once before the
load, a ``[values]`` table of lists to pick placeholders from, a ``[server]``
table for the servers ``loadtest`` starts (environment, prepare commands) and
a ``[metrics]`` table (where a running deployment serves its counters).
``docs/loadtest.md`` has a complete example.

Placeholders ``${name}`` may appear in paths, header values and bodies:
``${unique}`` is a value unique within the run, any key of ``[values]`` is
picked at random from its list (one pick per request, whatever the number of
uses), and a name captured by a set-up request is that request's answer.
``$$`` is a literal ``$``.

Every mistake is reported as ``FILE:LINE: what is wrong`` by
:class:`ScenarioError` before a server starts.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import tomllib
import typing as t
import urllib.parse

__all__ = [
    "BUILTIN_PLACEHOLDERS",
    "Part",
    "RequestSpec",
    "Scenario",
    "ScenarioError",
    "default_scenario",
    "load_scenario",
    "parse_template",
    "render",
]

BUILTIN_PLACEHOLDERS = frozenset({"unique"})
"""Placeholders every scenario may use."""

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
"""The methods a request may use."""

Part = str | tuple[str, str]
"""A piece of a template: literal text, or ``(placeholder, context)``.

The context says how a picked value is written there: ``"path"``
(percent-encoded), ``"json"`` (escaped inside a JSON string) or ``"raw"``.
"""

_PLACEHOLDER = re.compile(r"\$\$|\$\{([^}]*)\}|\$")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_REQUEST_NAME = re.compile(r"[^\t\r\n]{1,100}")
_CAPTURE = re.compile(r"(json|header|cookie):(.+)")
_PATH_SAFE = "-._~:@!$'()*,;/"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_HEADER_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # a tab may be in a value


class ScenarioError(ValueError):
    """A scenario file is malformed; the message is ``FILE:LINE: problem``."""


@dataclasses.dataclass
class RequestSpec:
    """One kind of request of a scenario (or a set-up request)."""

    name: str
    """Its label in the results."""
    method: str
    """The HTTP method."""
    path: list[Part]
    """The path and query string, as a template."""
    headers: list[tuple[str, list[Part]]]
    """Header names and value templates."""
    body: list[Part] | None
    """The body template, or ``None``."""
    expect: frozenset[int] | None
    """The expected statuses; ``None``: any status is expected."""
    weight: int = 1
    """Share of the mix (load requests)."""
    raises: bool = True
    """Whether an expected 5xx answer is an exception raised on purpose."""
    capture: dict[str, str] = dataclasses.field(default_factory=dict)
    """Set-up requests: placeholder name -> ``json:a.b``, ``header:X``, ``cookie:x``."""

    @property
    def placeholders(self) -> set[str]:
        """Every placeholder name the request uses."""
        parts = [*self.path, *(self.body or [])]
        for _name, value in self.headers:
            parts += value
        return {part[0] for part in parts if isinstance(part, tuple)}

    def describe(self) -> str:
        """Return ``METHOD /path`` with the placeholders as written."""
        path = "".join(
            part if isinstance(part, str) else f"${{{part[0]}}}" for part in self.path
        )
        return f"{self.method} {path}"


@dataclasses.dataclass
class Scenario:
    """A load test's mix of requests and what surrounds it."""

    requests: list[RequestSpec]
    """The weighted mix."""
    setup: list[RequestSpec] = dataclasses.field(default_factory=list)
    """Run once, in order, before the load."""
    values: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    """Lists to pick placeholders from."""
    server_env: dict[str, str] = dataclasses.field(default_factory=dict)
    """Environment of the servers loadtest starts."""
    prepare: list[list[str]] = dataclasses.field(default_factory=list)
    """Commands run (in order) after migrating, before the servers start."""
    metrics_path: str = "/metrics"
    """Where a running deployment serves ``framework.metrics.view``."""
    metrics_headers: dict[str, str] = dataclasses.field(default_factory=dict)
    """Headers of the requests for ``metrics_path`` (a token, say)."""
    source: str = "(default scenario)"
    """The file it was read from."""
    default: bool = False
    """Whether it was made from the app's routes."""

    def by_name(self) -> dict[str, RequestSpec]:
        """Return the load requests by name."""
        return {request.name: request for request in self.requests}


def parse_template(text: str, context: str) -> list[Part]:
    """Split ``text`` into literal parts and ``(placeholder, context)`` parts.

    :raises ValueError: a ``$`` that is neither ``$$`` nor ``${name}``, or a
        name that is not an identifier.
    """
    parts: list[Part] = []
    literal = ""
    position = 0
    for match in _PLACEHOLDER.finditer(text):
        literal += text[position : match.start()]
        position = match.end()
        token = match.group(0)
        if token == "$$":
            literal += "$"
            continue
        name = match.group(1)
        if name is None:
            raise ValueError(
                f"a lone '$' in {text!r}: write ${{name}} for a placeholder, $$ for $"
            )
        if not _NAME.fullmatch(name):
            raise ValueError(f"'${{{name}}}' in {text!r} is not a placeholder name")
        if literal:
            parts.append(literal)
            literal = ""
        parts.append((name, context))
    literal += text[position:]
    if literal:
        parts.append(literal)
    return parts


def encode(value: str, context: str) -> str:
    """Write ``value`` for a template context (see :data:`Part`)."""
    if context == "path":
        return urllib.parse.quote(value, safe=_PATH_SAFE)
    if context == "json":
        return json.dumps(value)[1:-1]
    return value


def render(parts: list[Part], values: t.Mapping[str, str]) -> str:
    """Fill a template with ``values`` (raw strings, encoded here)."""
    return "".join(
        part if isinstance(part, str) else encode(values[part[0]], part[1])
        for part in parts
    )


# Reading TOML -------------------------------------------------------------------


class _Lines:
    """Finds the line of a table or key in the TOML text, for messages."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()

    def _headers(self) -> list[tuple[int, str]]:
        found = []
        for number, line in enumerate(self.lines, 1):
            match = re.match(r"\s*(\[\[?)\s*([A-Za-z0-9_.\"' -]+?)\s*\]\]?", line)
            if match:
                found.append((number, match.group(2).strip()))
        return found

    def table(self, name: str, index: int | None = None) -> tuple[int, int]:
        """Return the first and last line of ``[name]`` (``[[name]]`` #index)."""
        headers = self._headers()
        seen = -1
        for position, (number, header) in enumerate(headers):
            if header != name:
                continue
            seen += 1
            if index is None or seen == index:
                end = (
                    headers[position + 1][0] - 1
                    if position + 1 < len(headers)
                    else len(self.lines)
                )
                return number, end
        for number, line in enumerate(self.lines, 1):  # inline: name = [...]
            if re.match(rf"\s*{re.escape(name)}\s*=", line):
                return number, number
        return 1, len(self.lines)

    def key(self, table: str | None, key: str, index: int | None = None) -> int:
        """Return the line of ``key`` in a table (or at the top)."""
        if table is None:
            first = 1
            headers = self._headers()
            last = headers[0][0] - 1 if headers else len(self.lines)
        else:
            first, last = self.table(table, index)
        pattern = re.compile(rf"\s*[\"']?{re.escape(key)}[\"']?\s*[=.]")
        for number in range(first, last + 1):
            if pattern.match(self.lines[number - 1]):
                return number
        return first


_TOP = {"name", "request", "setup", "values", "server", "metrics", "defaults"}
_REQUEST_KEYS = {
    "name",
    "weight",
    "method",
    "path",
    "headers",
    "body",
    "json",
    "expect",
    "raises",
}
_SETUP_KEYS = (_REQUEST_KEYS - {"weight", "raises"}) | {"capture"}


class _Reader:
    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self.lines = _Lines(text)

    def error(self, line: int, message: str) -> ScenarioError:
        return ScenarioError(f"{self.path}:{line}: {message}")

    def unknown(
        self,
        data: dict[str, t.Any],
        known: set[str],
        where: str,
        table: str | None,
        index: int | None = None,
    ) -> None:
        extra = sorted(set(data) - known)
        if extra:
            raise self.error(
                self.lines.key(table, extra[0], index),
                f"unknown key {extra[0]!r} in {where}; known keys:"
                f" {', '.join(sorted(known))}.",
            )

    def subtable(self, data: dict[str, t.Any], name: str, known: set[str]) -> t.Any:
        """Return the table ``[name]``, checked to be a table of ``known`` keys."""
        table = data[name]
        if not isinstance(table, dict):
            raise self.error(self.lines.table(name)[0], f"[{name}] must be a table.")
        self.unknown(table, known, f"[{name}]", name)
        return table

    def table_of_strings(
        self, value: t.Any, what: str, line: int, header_names: bool = False
    ) -> dict[str, str]:
        if not isinstance(value, dict):
            raise self.error(line, f"{what} must be a table of strings.")
        for key, item in value.items():
            if not isinstance(item, str):
                raise self.error(
                    line, f"{what}: {key!r} must be a string, not {_kind(item)}."
                )
            if header_names and not _HEADER_NAME.fullmatch(key):
                raise self.error(line, f"{what}: {key!r} is not a header name.")
            if "\x00" in item or (header_names and _HEADER_CONTROL.search(item)):
                # A line break would end the header (or smuggle another in);
                # a NUL cannot go into a header or an environment variable.
                raise self.error(
                    line, f"{what}: {key} = {item!r} has a control character."
                )
        return dict(value)

    def template(self, text: str, context: str, line: int) -> list[Part]:
        try:
            return parse_template(text, context)
        except ValueError as exc:
            raise self.error(line, str(exc)) from None

    def request(
        self,
        data: t.Any,
        table: str,
        index: int,
        defaults: dict[str, str],
    ) -> RequestSpec:
        where = f"[[{table}]] number {index + 1}"
        start = self.lines.table(table, index)[0]
        if not isinstance(data, dict):
            raise self.error(start, f"{where} must be a table.")
        known = _SETUP_KEYS if table == "setup" else _REQUEST_KEYS
        self.unknown(data, known, where, table, index)

        def line(key: str) -> int:
            return self.lines.key(table, key, index)

        method = data.get("method", "GET")
        if not isinstance(method, str) or method.upper() not in METHODS:
            raise self.error(
                line("method"),
                f"{where}: method {method!r} is not one of {', '.join(METHODS)}.",
            )
        method = method.upper()
        path = data.get("path")
        if not isinstance(path, str) or not path.startswith("/"):
            raise self.error(
                line("path") if "path" in data else start,
                f"{where}: path must be a string starting with '/'"
                + (f", not {path!r}." if "path" in data else " (it is missing)."),
            )
        if " " in path or "#" in path or _CONTROL.search(path):
            raise self.error(
                line("path"),
                f"{where}: path {path!r} has a space, a control character or '#';"
                " percent-encode it.",
            )
        headers = {**defaults}
        if "headers" in data:
            headers.update(
                self.table_of_strings(
                    data["headers"], f"{where}: headers", line("headers"), True
                )
            )
        body, is_json = self.body(data, where, line)
        if is_json and not any(key.lower() == "content-type" for key in headers):
            headers["Content-Type"] = "application/json"
        expect = self.expect(data.get("expect", 200), where, line("expect"))
        name = data.get("name", f"{method} {path}")
        if not isinstance(name, str) or not _REQUEST_NAME.fullmatch(name):
            raise self.error(
                line("name"),
                f"{where}: name must be 1 to 100 characters without tabs or"
                " line breaks.",
            )
        weight = data.get("weight", 1)
        if isinstance(weight, bool) or not isinstance(weight, int) or weight < 1:
            raise self.error(
                line("weight"), f"{where}: weight must be a whole number >= 1."
            )
        raises = data.get("raises", True)
        if not isinstance(raises, bool):
            raises_line = line("raises")
            raise self.error(raises_line, f"{where}: raises must be true or false.")
        capture = (
            self.capture(data["capture"], where, line("capture"))
            if "capture" in data
            else {}
        )
        return RequestSpec(
            name=name,
            method=method,
            path=self.template(path, "path", line("path")),
            headers=[
                (key, self.template(value, "raw", line("headers")))
                for key, value in headers.items()
            ],
            body=body,
            expect=expect,
            weight=weight,
            raises=raises,
            capture=capture,
        )

    def capture(self, value: t.Any, where: str, line: int) -> dict[str, str]:
        capture = self.table_of_strings(value, f"{where}: capture", line)
        for key, source in capture.items():
            if not _NAME.fullmatch(key) or key in BUILTIN_PLACEHOLDERS:
                raise self.error(
                    line, f"{where}: capture name {key!r} is not a placeholder name."
                )
            if not _CAPTURE.fullmatch(source):
                raise self.error(
                    line,
                    f"{where}: capture {key} = {source!r}: use 'json:a.b',"
                    " 'header:Name' or 'cookie:name'.",
                )
        return capture

    def body(
        self, data: dict[str, t.Any], where: str, line: t.Callable[[str], int]
    ) -> tuple[list[Part] | None, bool]:
        """Return the body template, and whether it is JSON."""
        if "body" in data and "json" in data:
            raise self.error(line("json"), f"{where}: give body or json, not both.")
        if "body" in data:
            if not isinstance(data["body"], str):
                raise self.error(line("body"), f"{where}: body must be a string.")
            return self.template(data["body"], "raw", line("body")), False
        if "json" in data:
            try:
                text = json.dumps(data["json"], separators=(",", ":"), allow_nan=False)
            except (TypeError, ValueError) as exc:
                # TOML has dates and nan/inf; JSON has neither.
                raise self.error(
                    line("json"), f"{where}: json cannot be sent as JSON ({exc})."
                ) from None
            return self.template(text, "json", line("json")), True
        return None, False

    def expect(self, value: t.Any, where: str, line: int) -> frozenset[int] | None:
        if value == "any":
            return None
        items = value if isinstance(value, list) else [value]
        if not items or not all(
            isinstance(item, int) and not isinstance(item, bool) and 100 <= item <= 599
            for item in items
        ):
            raise self.error(
                line,
                f"{where}: expect must be a status (100-599), a list of statuses"
                f' or "any", not {value!r}.',
            )
        return frozenset(items)


def _kind(value: t.Any) -> str:
    return {
        dict: "a table",
        list: "an array",
        bool: "a boolean",
        int: "a number",
        float: "a number",
    }.get(type(value), type(value).__name__)


def load_scenario(path: str | os.PathLike[str]) -> Scenario:  # noqa: C901
    """Read and check a scenario file.

    :raises ScenarioError: the file cannot be read or is malformed; the message
        names the file, the line and the problem.
    """
    source = os.fspath(path)
    try:
        with open(source, "rb") as file:
            raw = file.read()
    except OSError as exc:
        raise ScenarioError(f"{source}: cannot read it ({exc.strerror}).") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ScenarioError(f"{source}:1: the file is not UTF-8 text.") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        found = re.search(r"\(at line (\d+), column (\d+)\)", message)
        if found:
            problem = message[: found.start()].strip()
            raise ScenarioError(
                f"{source}:{found.group(1)}: TOML syntax: {problem}"
                f" (column {found.group(2)})."
            ) from None
        problem = message.replace("(at end of document)", "").strip()
        last = max(1, len(text.rstrip("\n").splitlines()))
        raise ScenarioError(
            f"{source}:{last}: TOML syntax: {problem} (at the end of the file)."
        ) from None
    reader = _Reader(source, text)
    reader.unknown(data, _TOP, "the scenario", None)

    values: dict[str, list[str]] = {}
    if "values" in data:
        table = data["values"]
        line = reader.lines.table("values")[0]
        if not isinstance(table, dict):
            raise reader.error(line, "[values] must be a table of lists.")
        for key, items in table.items():
            key_line = reader.lines.key("values", key)
            if not _NAME.fullmatch(key) or key in BUILTIN_PLACEHOLDERS:
                raise reader.error(
                    key_line, f"[values] {key!r} cannot be a placeholder name."
                )
            if (
                not isinstance(items, list)
                or not items
                or not all(isinstance(item, str | int | float) for item in items)
            ):
                raise reader.error(
                    key_line,
                    f"[values] {key} must be a non-empty list of strings or numbers.",
                )
            values[key] = [
                item if isinstance(item, str) else json.dumps(item) for item in items
            ]

    defaults: dict[str, str] = {}
    if "defaults" in data:
        table = reader.subtable(data, "defaults", {"headers"})
        if "headers" in table:
            defaults = reader.table_of_strings(
                table["headers"],
                "[defaults] headers",
                reader.lines.key("defaults", "headers"),
                True,
            )

    scenario = Scenario(requests=[], values=values, source=source)
    if "server" in data:
        table = reader.subtable(data, "server", {"env", "prepare"})
        if "env" in table:
            env_line = reader.lines.key("server", "env")
            scenario.server_env = reader.table_of_strings(
                table["env"], "[server] env", env_line
            )
            for key in scenario.server_env:
                if not _NAME.fullmatch(key):
                    raise reader.error(
                        env_line, f"[server] env: {key!r} is not a variable name."
                    )
        if "prepare" in table:
            prepare_line = reader.lines.key("server", "prepare")
            commands = table["prepare"]
            if not isinstance(commands, list) or not all(
                isinstance(command, list)
                and command
                and all(isinstance(word, str) for word in command)
                for command in commands
            ):
                raise reader.error(
                    prepare_line,
                    "[server] prepare must be a list of commands, each a list of"
                    ' strings: [["framework", "migrate"], ...].',
                )
            scenario.prepare = [list(command) for command in commands]

    if "metrics" in data:
        table = reader.subtable(data, "metrics", {"path", "headers"})
        metrics_path = table.get("path", "/metrics")
        if not isinstance(metrics_path, str) or not metrics_path.startswith("/"):
            raise reader.error(
                reader.lines.key("metrics", "path"),
                "[metrics] path must start with '/'.",
            )
        scenario.metrics_path = metrics_path
        if "headers" in table:
            headers_line = reader.lines.key("metrics", "headers")
            scenario.metrics_headers = reader.table_of_strings(
                table["headers"], "[metrics] headers", headers_line, True
            )
            for key, value in scenario.metrics_headers.items():
                # NOTE: the counters are read before the set-up requests run,
                # so nothing could fill a placeholder; sent as written, it
                # would only earn a 401 blamed on the missing view.
                if "${" in value:
                    raise reader.error(
                        headers_line,
                        f"[metrics] headers: {key} = {value!r}: these headers are"
                        " sent as written, before any set-up request; write the"
                        " value itself, without ${placeholders}.",
                    )

    known = set(values) | BUILTIN_PLACEHOLDERS
    setups = data.get("setup", [])
    if not isinstance(setups, list):
        raise reader.error(
            reader.lines.table("setup")[0], "setup must be [[setup]] tables."
        )
    for index, item in enumerate(setups):
        spec = reader.request(item, "setup", index, defaults)
        _check_placeholders(reader, spec, known, "setup", index)
        known |= set(spec.capture)
        scenario.setup.append(spec)

    requests = data.get("request")
    if requests is None:
        raise reader.error(1, "no [[request]] table: a scenario needs at least one.")
    if not isinstance(requests, list) or not requests:
        raise reader.error(
            reader.lines.table("request")[0], "request must be [[request]] tables."
        )
    names: set[str] = set()
    for index, item in enumerate(requests):
        spec = reader.request(item, "request", index, defaults)
        _check_placeholders(reader, spec, known, "request", index)
        if spec.name in names:
            raise reader.error(
                reader.lines.key("request", "name", index),
                f"[[request]] number {index + 1}: the name {spec.name!r} is"
                " already used; give each request its own name.",
            )
        names.add(spec.name)
        scenario.requests.append(spec)
    return scenario


def _check_placeholders(
    reader: _Reader, spec: RequestSpec, known: set[str], table: str, index: int
) -> None:
    unknown = sorted(spec.placeholders - known)
    if unknown:
        raise reader.error(
            reader.lines.table(table, index)[0],
            f"[[{table}]] number {index + 1} uses ${{{unknown[0]}}}, which is"
            f" neither 'unique', a key of [values] nor captured by an earlier"
            f" [[setup]].",
        )


def default_scenario(app: t.Any) -> Scenario:
    """Make a scenario of every parameter-free GET route of ``app``.

    Each route gets the same weight, and any status is expected (the answers
    are reported by status; a 5xx must match a ``got_request_exception``).

    :raises ScenarioError: the app has no URL map or no such route.
    """
    url_map = getattr(app, "url_map", None)
    if url_map is None:
        raise ScenarioError(
            f"{app!r} has no URL map (not a framework.App): give a --scenario."
        )
    requests = []
    for rule in url_map.iter_rules():
        if "GET" not in (rule.methods or ()) or rule.arguments:
            continue
        if any(character in rule.rule for character in " #?"):
            continue
        requests.append(
            RequestSpec(
                name=rule.rule,
                method="GET",
                path=[rule.rule],
                headers=[],
                body=None,
                expect=None,
            )
        )
    if not requests:
        raise ScenarioError(
            "the app has no GET route without parameters to load: give a"
            " --scenario file (see docs/loadtest.md)."
        )
    requests.sort(key=lambda request: request.name)
    return Scenario(requests=requests, default=True)
