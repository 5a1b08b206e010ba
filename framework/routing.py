"""URL routing on werkzeug's rules, with a fast matcher built once.

Rules live in a werkzeug :class:`~werkzeug.routing.Map` (``app.url_map``), so
converters, URL building, strict-slash redirects, 405 with ``Allow`` and
automatic ``HEAD`` are werkzeug's. :class:`Router` is built from that map
once (at the first request after a change) and answers most requests
without werkzeug's per-request ``bind_to_environ`` + ``match``:

- a static rule is a dict lookup by path, then by method;
- a rule with converters is a compiled regular expression; it is used only
  when it is the *only* rule of the whole map that matches the path (and no
  rule matches the path with a slash appended), because then werkzeug's
  matcher can return nothing else.

Everything else falls back to werkzeug: misses (404), 405, redirects, rules
with defaults, aliases, host or subdomain matching, converters that match
slashes, and paths that are not plain ASCII.
"""

from __future__ import annotations

import re
import typing as t

from werkzeug.exceptions import NotFound
from werkzeug.routing import Map
from werkzeug.routing import Rule
from werkzeug.routing import ValidationError

if t.TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment
    from werkzeug.routing import BaseConverter

__all__ = ["Map", "Router", "Rule"]

_Converters = tuple[tuple[str, str, "BaseConverter"], ...]
_Candidate = tuple["re.Pattern[str]", Rule, _Converters, bool]


def _is_unusual(rule: Rule, endpoints_with_defaults: set[str]) -> bool:
    """Whether werkzeug may redirect or do more than match for this rule."""
    return bool(
        rule.methods is None
        or rule.defaults
        or rule.alias
        or rule.redirect_to is not None
        or rule.websocket
        or rule.subdomain
        or rule.host
        or not rule.strict_slashes
        or rule.endpoint in endpoints_with_defaults
        or any(not conv.part_isolating for conv in rule._converters.values())
    )


def _rule_regex(rule: Rule) -> tuple[re.Pattern[str], tuple[str, ...]]:
    """Compile the path part of ``rule`` into one regular expression."""
    trace = rule._trace
    # The trace holds the domain part, a "|" separator, then the path part.
    start = trace.index((False, "|")) + 1
    pattern = []
    names: list[str] = []
    for is_dynamic, data in trace[start:]:
        if is_dynamic:
            converter = rule._converters[data]
            pattern.append(f"(?P<_fw{len(names)}>{converter.regex})")
            names.append(data)
        else:
            pattern.append(re.escape(data))
    return re.compile("".join(pattern)), tuple(names)


class Router:
    """Match paths against a werkzeug :class:`Map`, fast where it is safe.

    :param url_map: the map; it must not change while the router is used
        (the app builds a new router after every change).
    """

    def __init__(self, url_map: Map) -> None:
        self.map = url_map
        """The werkzeug map this router was built from."""
        self.static: dict[str, dict[str, Rule]] = {}
        """Static usual rules: path -> method -> rule."""
        self.by_segment: dict[str, tuple[_Candidate, ...]] = {}
        """Other rules to try by first path segment (with the wildcards)."""
        self.wildcards: tuple[_Candidate, ...] = ()
        """Other rules whose first path segment is dynamic."""
        self.slash_candidates: tuple[_Candidate, ...] = ()
        """Rules with converters whose path ends with a slash."""
        self.static_slash_paths: set[str] = set()
        """Static rule paths ending in a slash, without it (slash redirects)."""
        self.enabled = not url_map.host_matching and url_map.strict_slashes
        """Whether the fast path is used at all."""
        self._build()

    def _build(self) -> None:
        rules = list(self.map.iter_rules())
        with_defaults = {rule.endpoint for rule in rules if rule.defaults}
        by_segment: dict[str, list[_Candidate]] = {}
        wildcards: list[_Candidate] = []
        slash_candidates: list[_Candidate] = []
        for rule in rules:
            unusual = _is_unusual(rule, with_defaults)
            if not rule.strict_slashes or rule.subdomain or rule.host:
                self.enabled = False
            path = rule.rule
            if not rule.arguments:
                if path.endswith("/"):
                    self.static_slash_paths.add(path[:-1])
                if not unusual:
                    methods = self.static.setdefault(path, {})
                    for method in sorted(t.cast("set[str]", rule.methods)):
                        methods.setdefault(method, rule)
                    continue
            regex, names = _rule_regex(rule)
            converters = tuple(
                (name, f"_fw{index}", rule._converters[name])
                for index, name in enumerate(names)
            )
            candidate = (regex, rule, converters, unusual)
            first = path[1:].split("/", 1)[0]
            if "<" in first or not rule.arguments:
                # Static unusual rules are wildcards too: they only force a
                # fallback when they match.
                wildcards.append(candidate)
            else:
                by_segment.setdefault(first, []).append(candidate)
            if path.endswith("/") and rule.arguments:
                slash_candidates.append(candidate)
        self.wildcards = tuple(wildcards)
        self.by_segment = {
            segment: (*candidates, *wildcards)
            for segment, candidates in by_segment.items()
        }
        self.slash_candidates = tuple(slash_candidates)

    def match(
        self, environ: WSGIEnvironment, method: str
    ) -> tuple[Rule, dict[str, t.Any]]:
        """Return the rule and converted values for the request.

        :raises werkzeug.exceptions.HTTPException: ``NotFound``,
            ``MethodNotAllowed`` or a ``RequestRedirect``, from werkzeug.
        """
        if self.enabled:
            path = environ.get("PATH_INFO", "")
            # PERF: the fast path; tests/test_routing.py checks it against
            # werkzeug's matcher on a map full of ambiguous rules.
            methods = self.static.get(path)
            if methods is not None:
                rule = methods.get(method)
                if rule is not None:
                    return rule, {}
            elif path.isascii() and "//" not in path and path[:1] == "/":
                found = self._match_dynamic(path, method)
                if found is not None:
                    return found
        return self.slow_match(environ, method)

    def _match_dynamic(
        self, path: str, method: str
    ) -> tuple[Rule, dict[str, t.Any]] | None:
        end = path.find("/", 1)
        first = path[1:] if end < 0 else path[1:end]
        found: tuple[re.Match[str], _Candidate] | None = None
        for candidate in self.by_segment.get(first, self.wildcards):
            hit = candidate[0].fullmatch(path)
            if hit is not None:
                if found is not None:
                    return None
                found = (hit, candidate)
        if found is None:
            return None
        hit, (_, rule, converters, unusual) = found
        if unusual or method not in t.cast("set[str]", rule.methods):
            return None
        if path in self.static_slash_paths:
            return None
        if self.slash_candidates and path[-1] != "/":
            slashed = path + "/"
            for candidate in self.slash_candidates:
                if candidate[0].fullmatch(slashed) is not None:
                    return None
        values: dict[str, t.Any] = {}
        try:
            for name, group, converter in converters:
                values[name] = converter.to_python(hit.group(group))
        except ValidationError:
            return None
        return rule, values

    def slow_match(
        self, environ: WSGIEnvironment, method: str
    ) -> tuple[Rule, dict[str, t.Any]]:
        """Match with werkzeug's ``bind_to_environ`` + ``match``.

        A path that is not UTF-8 matches nothing (404), as docs/app.md says.

        :raises werkzeug.exceptions.HTTPException: as :meth:`match`.
        """
        path = environ.get("PATH_INFO", "")
        if not path.isascii():
            try:
                path.encode("latin-1").decode()
            except UnicodeError:
                # NOTE: werkzeug would decode it with U+FFFD replacements, so
                # that different paths (/%FF, /%FE) reach a view as one name.
                raise NotFound() from None
        adapter = self.map.bind_to_environ(environ)
        rule, values = adapter.match(method=method, return_rule=True)
        return rule, dict(values)

    def allowed_methods(self, environ: WSGIEnvironment) -> list[str]:
        """Return the methods the request's path accepts, for ``Allow``."""
        return list(self.map.bind_to_environ(environ).allowed_methods())
