"""``framework signals`` and ``framework routes``: what a worker would run."""

from __future__ import annotations

import json
import os
import typing as t

import click

from .. import dispatch
from .. import signals as catalogue
from . import CommandContext
from . import pass_context
from . import verbosity_option

__all__ = ["describe_signals", "routes", "signals"]


def _short_location(location: str | None) -> str | None:
    if not location:
        return location
    path, sep, line = location.rpartition(":")
    if not sep:
        return location
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return location
    return location if rel.startswith("..") else f"{rel}:{line}"


def _sender_text(sender: t.Any) -> str | None:
    if sender is dispatch.ANY:
        return None
    if isinstance(sender, type):
        return f"{sender.__module__}.{sender.__qualname__}"
    name = getattr(sender, "__name__", None)
    if isinstance(name, str) and type(sender).__name__ == "module":
        return f"module {name}"
    return repr(sender)


def _uid_value(uid: t.Hashable | None) -> t.Any:
    if uid is None or isinstance(uid, str | int | float | bool):
        return uid
    return repr(uid)


def _aliases() -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    for name in dir(catalogue):
        value = getattr(catalogue, name)
        if isinstance(value, dispatch.DeprecatedSignal):
            found.setdefault(id(value.target), []).append(name)
    return found


def describe_signals() -> list[dict[str, t.Any]]:
    """Describe every live signal and its receivers, as JSON-ready dicts.

    Each dict has ``name``, ``args`` (sorted, or ``None`` if undeclared),
    ``doc`` (its first line), ``deprecated_aliases`` and ``receivers``; each
    receiver has ``name``, ``location``, ``sender`` (``None`` for any),
    ``weak``, ``dispatch_uid``, ``priority``, ``async`` and ``on_commit``.
    """
    aliases = _aliases()
    described = []
    for signal in dispatch.all_signals():
        doc = (signal.__doc__ or "").strip().splitlines()
        described.append(
            {
                "name": signal.name or repr(signal),
                "args": sorted(signal.args) if signal.args is not None else None,
                "doc": doc[0] if doc else "",
                "deprecated_aliases": sorted(aliases.get(id(signal), [])),
                "receivers": [
                    {
                        "name": info.name,
                        "location": _short_location(info.location),
                        "sender": _sender_text(info.sender),
                        "weak": info.weak,
                        "dispatch_uid": _uid_value(info.dispatch_uid),
                        "priority": info.priority,
                        "async": info.is_async,
                        "on_commit": info.on_commit,
                    }
                    for info in signal.connections()
                ],
            }
        )
    return described


def _receiver_line(receiver: dict[str, t.Any]) -> str:
    flags = [
        "weak" if receiver["weak"] else "strong",
        "async" if receiver["async"] else "sync",
    ]
    if receiver["on_commit"]:
        flags.append("on_commit")
    if receiver["priority"]:
        flags.append(f"priority={receiver['priority']}")
    if receiver["dispatch_uid"] is not None:
        flags.append(f"dispatch_uid={receiver['dispatch_uid']!r}")
    sender = receiver["sender"] or "any sender"
    where = receiver["location"] or "?"
    return f"  - {receiver['name']}  [{', '.join(flags)}]\n    from {sender}; {where}"


@click.command()
@click.argument("names", nargs=-1, metavar="[SIGNAL]...")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for tools.")
@click.option("--connected", is_flag=True, help="Only signals that have receivers.")
@verbosity_option
@pass_context
def signals(
    obj: CommandContext, names: tuple[str, ...], as_json: bool, connected: bool
) -> list[dict[str, t.Any]]:
    """List every signal, its arguments and its connected receivers.

    The app and every installed app's models, management and receivers
    modules are loaded first, so the list shows what a running worker has
    connected. Returns the same list of dicts that ``--json`` prints.
    """
    obj.load_project()
    described = describe_signals()
    if names:
        known = {item["name"] for item in described}
        unknown = sorted(set(names) - known)
        if unknown:
            raise click.UsageError(
                f"Unknown signal(s): {', '.join(unknown)}."
                f" Known: {', '.join(sorted(known))}."
            )
        described = [item for item in described if item["name"] in names]
    if connected:
        described = [item for item in described if item["receivers"]]
    if as_json:
        click.echo(json.dumps(described, indent=2), file=obj.stdout)
        return described
    for item in described:
        args = ", ".join(item["args"] or [])
        alias = (
            f"  (deprecated aliases: {', '.join(item['deprecated_aliases'])})"
            if item["deprecated_aliases"]
            else ""
        )
        obj.echo(f"{item['name']}({args}){alias}")
        if obj.verbosity >= 2 and item["doc"]:
            obj.echo(f"  {item['doc']}")
        if not item["receivers"]:
            obj.echo("  (no receivers)", level=2)
        for receiver in item["receivers"]:
            obj.echo(_receiver_line(receiver))
    return described


_HIDDEN_METHODS = frozenset({"HEAD", "OPTIONS"})


@click.command()
@click.option(
    "--sort",
    "sort_by",
    type=click.Choice(["rule", "endpoint", "methods", "match"]),
    default="rule",
    show_default=True,
    help="Order of the rows ('match' keeps the map's matching order).",
)
@click.option("--all-methods", is_flag=True, help="Show HEAD and OPTIONS too.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for tools.")
@verbosity_option
@pass_context
def routes(
    obj: CommandContext, sort_by: str, all_methods: bool, as_json: bool
) -> list[dict[str, t.Any]]:
    """List the app's URL rules with their methods and endpoints.

    Returns the rows as dicts (``rule``, ``methods``, ``endpoint``, ``view``).
    """
    obj.load_project(require_app=True)
    app = obj.load_app()
    url_map = getattr(app, "url_map", None)
    if url_map is None:
        raise click.ClickException(
            f"{obj.app_spec} has no url_map: not a framework.App."
        )
    views = getattr(app, "view_functions", {})
    rows = []
    for rule in url_map.iter_rules():
        methods = sorted(rule.methods or ())
        if not all_methods:
            methods = [method for method in methods if method not in _HIDDEN_METHODS]
        view = views.get(rule.endpoint)
        rows.append(
            {
                "rule": rule.rule,
                "methods": methods,
                "endpoint": rule.endpoint,
                "view": (
                    f"{view.__module__}.{view.__qualname__}"
                    if view is not None and hasattr(view, "__qualname__")
                    else None
                ),
            }
        )
    if sort_by != "match":
        rows.sort(key=lambda row: (str(row[sort_by]), row["rule"]))
    if as_json:
        click.echo(json.dumps(rows, indent=2), file=obj.stdout)
        return rows
    if not rows:
        obj.echo("No routes.")
        return rows
    headers = ("Endpoint", "Methods", "Rule")
    table = [(row["endpoint"], ", ".join(row["methods"]), row["rule"]) for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in table)) for i, h in enumerate(headers)]
    obj.echo(
        "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()
    )
    obj.echo("  ".join("-" * w for w in widths))
    for line in table:
        obj.echo(
            "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
        )
    return rows
