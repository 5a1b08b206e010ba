"""Write docs/signals.md, the signals reference, from framework/signals.py.

    python scripts/gen_signals_doc.py           # rewrite docs/signals.md
    python scripts/gen_signals_doc.py --check   # exit 1 if it is stale
    python scripts/gen_signals_doc.py --stdout  # print the page

Every built-in signal's ``doc`` (a summary line, ``:sender:`` and one field
per keyword argument) becomes a row of the table and a section of its own;
tests/test_signals.py runs this script and compares its output with the page.
"""

from __future__ import annotations

import argparse
import pathlib
import re
import sys

from framework import dispatch
from framework import signals

DOC_PATH = pathlib.Path(__file__).resolve().parent.parent / "docs" / "signals.md"
COMMAND = "python scripts/gen_signals_doc.py"


def catalogue_signals() -> dict[str, dispatch.Signal]:
    """Return every built-in signal of the catalogue by name, in order."""
    return {
        name: value
        for name, value in vars(signals).items()
        if isinstance(value, dispatch.Signal)
    }


def doc_fields(doc: str) -> dict[str, str]:
    """Map the ``:name:`` fields of a reST docstring to their (joined) text."""
    fields: dict[str, str] = {}
    current = None
    for line in doc.splitlines():
        match = re.match(r":(\w+): ?(.*)", line)
        if match:
            current = match.group(1)
            fields[current] = match.group(2).strip()
        elif current and line.startswith("    "):
            fields[current] += " " + line.strip()
        else:
            current = None
    return fields


def render_reference() -> str:
    """Return the Markdown of docs/signals.md."""
    lines = [
        "# Signals reference",
        "",
        f"Generated from `framework/signals.py` by `{COMMAND}`;",
        "a test fails when the two differ. Every receiver is called with `signal`,",
        "`sender` and the arguments below, and must accept `**kwargs`.",
        "",
        "| signal | sender | keyword arguments besides `sender` | when sent |",
        "| --- | --- | --- | --- |",
    ]
    sections: list[str] = []
    for name, sig in catalogue_signals().items():
        doc = sig.__doc__ or ""
        fields = doc_fields(doc)
        args = ", ".join(f"`{arg}`" for arg in fields if arg in (sig.args or ())) or "—"
        summary = doc.split("\n", 1)[0]
        lines.append(f"| `{name}` | {fields['sender']} | {args} | {summary} |")
        sections += ["", f"## `{name}`", "", doc.strip()]
    for name, alias in vars(signals).items():
        if isinstance(alias, dispatch.DeprecatedSignal):
            target = f"`{alias.target.name}`"
            lines.append(
                f"| `{name}` | deprecated name of {target}; connecting warns"
                f" `DeprecationWarning` | as {target} | as {target} |"
            )
    return "\n".join(lines + sections) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write, check or print the page; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="fail if stale")
    mode.add_argument("--stdout", action="store_true", help="print the page")
    options = parser.parse_args(argv)
    page = render_reference()
    if options.stdout:
        sys.stdout.write(page)
    elif options.check:
        if DOC_PATH.read_text() != page:
            print(f"{DOC_PATH} is stale: run {COMMAND}", file=sys.stderr)
            return 1
    else:
        DOC_PATH.write_text(page)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
