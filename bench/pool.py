"""What checking a pooled PostgreSQL connection on checkout costs.

Run: ``python bench/pool.py`` (needs the PostgreSQL server on 127.0.0.1:5432;
it creates and drops a database of its own). One request's database use with
``CONN_MAX_AGE=0`` is a pool checkout, a query and a checkin; this times that
cycle (``SELECT 1`` as the query) three ways, interleaved round by round so
that a change in the machine's load hits each alike:

- ``no check``: the pool hands out whatever it holds (a connection the server
  has ended fails the request);
- ``pool_pre_ping``: SQLAlchemy's pre-ping, a ``SELECT 1`` round trip per
  checkout;
- ``framework``: the ORM's check (``framework.orm.db._closed_by_server``): one
  ``poll()`` of the socket, a ``SELECT 1`` only if something is waiting on it.

Prints the median microseconds per cycle and the ratio to ``no check``.
"""

from __future__ import annotations

import argparse
import pathlib
import statistics
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "tests"))

from sqlalchemy import event
from support import create_pg_database
from support import drop_pg_database

from framework.orm import db


def cycle(engine: object, count: int) -> float:
    """Microseconds per checkout + ``SELECT 1`` + checkin."""
    started = time.perf_counter()
    for _ in range(count):
        proxy = engine.raw_connection()  # type: ignore[attr-defined]
        cursor = proxy.dbapi_connection.cursor()
        cursor.execute("SELECT 1")
        cursor.fetchall()
        proxy.close()
    return (time.perf_counter() - started) / count * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=3000, help="cycles per round")
    parser.add_argument("--rounds", type=int, default=7, help="rounds (median kept)")
    args = parser.parse_args(argv)
    name, url = create_pg_database("fw_bench_pool")
    try:
        config = db.parse_database("default", url)
        engines = {}
        for variant in ("no check", "pool_pre_ping", "framework"):
            engine = db._create_engine(config)
            if variant != "framework":
                event.remove(engine, "checkout", db._replace_if_closed_by_server)
            if variant == "pool_pre_ping":
                engine.pool._pre_ping = True
            engines[variant] = engine
        times: dict[str, list[float]] = {variant: [] for variant in engines}
        for _ in range(args.rounds):
            for variant, engine in engines.items():
                times[variant].append(cycle(engine, args.count))
        base = statistics.median(times["no check"])
        print("us per checkout + SELECT 1 + checkin (median; ratio to no check)")
        for variant, found in times.items():
            median = statistics.median(found)
            print(f"{variant:14} {median:7.1f} us  x{median / base:.2f}")
        for engine in engines.values():
            engine.dispose()
    finally:
        drop_pg_database(name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
