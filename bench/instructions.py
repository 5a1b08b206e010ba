"""The pattern table of bench/requests.py in instructions, not seconds.

On a shared machine the time of a request moves by 5-10% from run to run,
as much as the differences the pattern table is read for. Valgrind's
callgrind counts the instructions the CPU executes instead, which does not
depend on the machine's load. For each pattern and app, a child process
serves the pattern ``--number`` times under callgrind, and another serves it
no times; the difference per request is what one request costs.

    python bench/instructions.py [--number 2000] [--only NAME ...]
    python bench/instructions.py --counters [--number 2000]

``--counters`` counts the cost of framework.metrics' counters instead: the
framework's ``GET /hello`` alone, with one no-op receiver per request signal,
with the counters as a sync worker of ``framework serve`` has them, and with
their Python receivers (a package built without a C compiler): the rows of
bench/requests.py's main table.

Needs ``valgrind`` (Debian's package) and the ``bench`` extra (Falcon). A
serial run takes about ten minutes.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import pathlib
import re
import shutil
import subprocess
import sys
import typing as t

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

# bench/requests.py (this folder is first on the path), not the HTTP library.
import requests as patterns

APPS: t.Final = {
    "framework": patterns.framework_patterns,
    "falcon": patterns.falcon_patterns,
}
_COLLECTED: t.Final = re.compile(r"Collected : (\d+)")


COUNTERS: t.Final = (
    "framework",
    "framework, 1 receiver each",
    "framework + metrics counters",
    "framework + counters in Python",
)


def serve(app_name: str, pattern_name: str, number: int) -> None:
    """Serve one pattern ``number`` times (after 200 unmeasured requests)."""
    import gc

    counting = contextlib.ExitStack()
    if app_name == "counters":
        # pattern_name is a row of COUNTERS: GET /hello, set up as in
        # bench/requests.py.
        app = patterns.framework_app()
        if pattern_name == COUNTERS[1]:
            patterns.connect_one_receiver_each()
        elif pattern_name in COUNTERS[2:]:
            compiled = pattern_name != COUNTERS[3]
            counting.enter_context(patterns.Counters(compiled=compiled))
        environ = patterns.make_environ("/hello")
        body = b""
    else:
        app = APPS[app_name]()
        (pattern,) = [p for p in patterns.PATTERNS if p.name == pattern_name]
        environ = patterns.pattern_environ(pattern)
        body = pattern.body

    def one() -> None:
        env = environ.copy()
        env["wsgi.input"] = io.BytesIO(body)
        result = app(env, patterns.start_response)
        for _chunk in result:
            pass
        if hasattr(result, "close"):
            result.close()

    with counting:
        for _ in range(200):
            one()
        # The garbage collector would run at different moments in the two
        # children: off, the counts differ by the requests alone.
        gc.collect()
        gc.disable()
        for _ in range(number):
            one()


def instructions(app_name: str, pattern_name: str, number: int) -> int:
    """Return the instructions of a child serving the pattern ``number`` times."""
    command = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        __file__,
        "--serve",
        app_name,
        pattern_name,
        str(number),
    ]
    # A fixed hash seed: dict and set layouts, so the counts, repeat.
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    result = subprocess.run(
        command, capture_output=True, text=True, env=env, timeout=600, check=True
    )
    match = _COLLECTED.search(result.stderr)
    if match is None:
        raise SystemExit(f"valgrind printed no count:\n{result.stderr[-2000:]}")
    return int(match.group(1))


def per_request(app_name: str, pattern_name: str, number: int) -> float:
    base = instructions(app_name, pattern_name, 0)
    return (instructions(app_name, pattern_name, number) - base) / number


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=2000)
    parser.add_argument("--only", nargs="*", default=None)
    parser.add_argument("--counters", action="store_true")
    parser.add_argument("--serve", nargs=3, help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.serve:
        app_name, pattern_name, number = options.serve
        serve(app_name, pattern_name, int(number))
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    if options.counters:
        counts = {row: per_request("counters", row, options.number) for row in COUNTERS}
        plain = counts[COUNTERS[0]]
        print("| GET /hello | instructions | over the framework row |")
        print("| --- | ---: | ---: |")
        for row, count in counts.items():
            print(f"| {row} | {count:,.0f} | {count - plain:+,.0f} |")
        return
    print("| pattern | framework instr | falcon instr | / falcon |")
    print("| --- | ---: | ---: | ---: |")
    for pattern in patterns.PATTERNS:
        if options.only and not any(part in pattern.name for part in options.only):
            continue
        ours, falcon = (per_request(app, pattern.name, options.number) for app in APPS)
        ratio = ours / falcon
        print(f"| {pattern.name} | {ours:,.0f} | {falcon:,.0f} | {ratio:.2f}x |")


if __name__ == "__main__":
    main()
