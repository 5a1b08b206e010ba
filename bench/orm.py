"""ORM benchmark: framework.orm against raw sqlite3, SQLAlchemy Core, peewee, Django.

Run: ``python bench/orm.py`` (needs the ``bench`` extra). Every contender gets
its own SQLite file in a temporary directory, with the same settings (WAL,
synchronous=NORMAL) and the same table ``item(id, name varchar(50), score int
indexed)``. The ORMs have a ``pre_save`` and a ``post_save`` receiver
connected for the model (peewee through ``playhouse.signals``); raw sqlite3
and SQLAlchemy Core have no signals and are the floor.

Cases (microseconds per operation, best of ``--repeat`` runs):

- ``save, one transaction``: build an instance and save it, N inside one
  transaction (raw: ``INSERT`` + ``lastrowid``);
- ``save, autocommit``: the same, each save committing on its own;
- ``get(pk=...)``: fetch one row by primary key into an object;
- ``filter (10 rows)``: ``score = k AND name LIKE 'n%'`` returning 10 objects.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import sqlite3
import sys
import tempfile
import time
import typing as t

PRAGMAS = ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL")
READ_ROWS = 1000
CASES: dict[str, tuple[str, int]] = {
    "save, one transaction": ("save_tx", 5000),
    "save, autocommit": ("save_auto", 1000),
    "get(pk=...)": ("get", 5000),
    "filter (10 rows)": ("filter", 2000),
}
"""Each case: the :class:`Contender` method that runs it and its count at scale 1."""


def receiver(*args: t.Any, **kwargs: t.Any) -> None:
    """A receiver that does nothing (the cost measured is the dispatch)."""


def per_operation(func: t.Callable[[int], t.Any], n: int) -> float:
    """Return the time per operation of ``func(n)`` in microseconds."""
    gc.collect()
    start = time.perf_counter()
    func(n)
    return (time.perf_counter() - start) / n * 1e6


def fill_for_reads(path: str) -> None:
    """Replace the rows with READ_ROWS rows: score = i % 100, name = 'n<i>'."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN")
    conn.execute("DELETE FROM item")
    conn.executemany(
        "INSERT INTO item (id, name, score) VALUES (?, ?, ?)",
        [(i, f"n{i}", i % 100) for i in range(1, READ_ROWS + 1)],
    )
    conn.execute("COMMIT")
    conn.close()


class Contender:
    """One library under test."""

    name = ""

    def __init__(self, directory: str) -> None:
        self.path = os.path.join(directory, f"{self.name.split()[0].lower()}.db")

    def save_tx(self, n: int) -> None:
        raise NotImplementedError

    def save_auto(self, n: int) -> None:
        raise NotImplementedError

    def get(self, n: int) -> None:
        raise NotImplementedError

    def filter(self, n: int) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Release connections."""


def _pks(n: int) -> list[int]:
    rng = random.Random(n)
    return [rng.randint(1, READ_ROWS) for _ in range(n)]


class RawSQLite(Contender):
    name = "sqlite3 (raw)"

    def __init__(self, directory: str) -> None:
        super().__init__(directory)
        self.conn = sqlite3.connect(self.path, isolation_level=None)
        for pragma in PRAGMAS:
            self.conn.execute(pragma)
        self.conn.execute(
            "CREATE TABLE item (id INTEGER PRIMARY KEY, name VARCHAR(50) NOT NULL,"
            " score INTEGER NOT NULL)"
        )
        self.conn.execute("CREATE INDEX item_score ON item (score)")

    def save_tx(self, n: int) -> None:
        execute = self.conn.execute
        execute("BEGIN")
        for i in range(n):
            execute("INSERT INTO item (name, score) VALUES (?, ?)", ("x", i)).lastrowid  # noqa: B018
        execute("COMMIT")

    def save_auto(self, n: int) -> None:
        execute = self.conn.execute
        for i in range(n):
            execute("INSERT INTO item (name, score) VALUES (?, ?)", ("x", i)).lastrowid  # noqa: B018

    def get(self, n: int) -> None:
        execute = self.conn.execute
        for pk in _pks(n):
            execute("SELECT id, name, score FROM item WHERE id = ?", (pk,)).fetchone()

    def filter(self, n: int) -> None:
        execute = self.conn.execute
        for i in range(n):
            rows = execute(
                "SELECT id, name, score FROM item WHERE score = ? AND name LIKE ?"
                " ESCAPE '/'",
                (i % 100, "n%"),
            ).fetchall()
            assert len(rows) == 10

    def close(self) -> None:
        self.conn.close()


class SQLAlchemyCore(Contender):
    name = "SQLAlchemy Core"

    def __init__(self, directory: str) -> None:
        super().__init__(directory)
        import sqlalchemy as sa

        self.sa = sa
        self.engine = sa.create_engine(f"sqlite:///{self.path}")

        @sa.event.listens_for(self.engine, "connect")
        def set_pragmas(dbapi_connection: t.Any, record: t.Any) -> None:
            for pragma in PRAGMAS:
                dbapi_connection.execute(pragma)

        metadata = sa.MetaData()
        self.table = sa.Table(
            "item",
            metadata,
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("name", sa.String(50), nullable=False),
            sa.Column("score", sa.Integer, nullable=False, index=True),
        )
        metadata.create_all(self.engine)
        self.conn = self.engine.connect()
        self.conn.commit()

    def save_tx(self, n: int) -> None:
        insert = self.table.insert()
        with self.conn.begin():
            for i in range(n):
                result = self.conn.execute(insert, {"name": "x", "score": i})
                result.inserted_primary_key  # noqa: B018

    def save_auto(self, n: int) -> None:
        insert = self.table.insert()
        for i in range(n):
            self.conn.execute(insert, {"name": "x", "score": i}).inserted_primary_key  # noqa: B018
            self.conn.commit()

    def get(self, n: int) -> None:
        table = self.table
        for pk in _pks(n):
            self.conn.execute(self.sa.select(table).where(table.c.id == pk)).first()
        self.conn.commit()

    def filter(self, n: int) -> None:
        table = self.table
        for i in range(n):
            stmt = self.sa.select(table).where(
                table.c.score == i % 100, table.c.name.startswith("n")
            )
            rows = self.conn.execute(stmt).all()
            assert len(rows) == 10
        self.conn.commit()

    def close(self) -> None:
        self.conn.close()
        self.engine.dispose()


class Peewee(Contender):
    name = "peewee"

    def __init__(self, directory: str) -> None:
        super().__init__(directory)
        import peewee
        from playhouse import signals

        self.db = peewee.SqliteDatabase(
            self.path, pragmas={"journal_mode": "wal", "synchronous": "normal"}
        )

        class Item(signals.Model):  # type: ignore[misc]
            name = peewee.CharField(max_length=50)
            score = peewee.IntegerField(index=True)

            class Meta:
                database = self.db
                table_name = "item"

        self.Item = Item
        self.db.connect()
        self.db.create_tables([Item])
        signals.pre_save.connect(receiver, sender=Item)
        signals.post_save.connect(receiver, sender=Item)

    def save_tx(self, n: int) -> None:
        item = self.Item
        with self.db.atomic():
            for i in range(n):
                item(name="x", score=i).save()

    def save_auto(self, n: int) -> None:
        item = self.Item
        for i in range(n):
            item(name="x", score=i).save()

    def get(self, n: int) -> None:
        item = self.Item
        for pk in _pks(n):
            item.get_by_id(pk)

    def filter(self, n: int) -> None:
        item = self.Item
        for i in range(n):
            rows = list(
                item.select().where((item.score == i % 100) & item.name.startswith("n"))
            )
            assert len(rows) == 10

    def close(self) -> None:
        self.db.close()


class DjangoStyle(Contender):
    """Django and framework.orm share the manager API: the same loops."""

    Item: t.Any
    transaction: t.Any

    def save_tx(self, n: int) -> None:
        item = self.Item
        with self.transaction.atomic():
            for i in range(n):
                item(name="x", score=i).save()

    def save_auto(self, n: int) -> None:
        item = self.Item
        for i in range(n):
            item(name="x", score=i).save()

    def get(self, n: int) -> None:
        objects = self.Item.objects
        for pk in _pks(n):
            objects.get(pk=pk)

    def filter(self, n: int) -> None:
        objects = self.Item.objects
        for i in range(n):
            rows = list(objects.filter(score=i % 100, name__startswith="n"))
            assert len(rows) == 10


class Django(DjangoStyle):
    name = "Django ORM"

    def __init__(self, directory: str) -> None:
        super().__init__(directory)
        import django
        from django.conf import settings

        settings.configure(
            DATABASES={
                "default": {
                    "ENGINE": "django.db.backends.sqlite3",
                    "NAME": self.path,
                    "OPTIONS": {"init_command": ";".join(PRAGMAS)},
                }
            },
            INSTALLED_APPS=[],
            USE_TZ=True,
            DEFAULT_AUTO_FIELD="django.db.models.AutoField",
        )
        django.setup()
        from django.db import connection
        from django.db import models
        from django.db import transaction
        from django.db.models import signals

        class Item(models.Model):
            name = models.CharField(max_length=50)
            score = models.IntegerField(db_index=True)

            class Meta:
                app_label = "bench"
                db_table = "item"

        with connection.schema_editor() as editor:
            editor.create_model(Item)
        signals.pre_save.connect(receiver, sender=Item)
        signals.post_save.connect(receiver, sender=Item)
        self.Item = Item
        self.transaction = transaction
        self.connection = connection

    def close(self) -> None:
        self.connection.close()


class Framework(DjangoStyle):
    name = "framework.orm"

    def __init__(self, directory: str) -> None:
        super().__init__(directory)
        from framework.conf import settings

        settings.configure(DATABASES={"default": f"sqlite:///{self.path}"})
        from framework import orm
        from framework import signals

        class Item(orm.Model):
            name = orm.CharField(max_length=50)
            score = orm.IntegerField(db_index=True)

            class Meta:
                app_label = "bench"
                db_table = "item"

        orm.create_tables([Item])
        signals.pre_save.connect(receiver, sender=Item)
        signals.post_save.connect(receiver, sender=Item)
        self.Item = Item
        self.orm = orm
        self.transaction = orm.transaction

    def close(self) -> None:
        self.orm.connections.close_all()


CONTENDERS = (RawSQLite, SQLAlchemyCore, Peewee, Django, Framework)


def run(scale: float, repeat: int) -> dict[str, dict[str, float]]:
    """Run every case for every contender; return µs per operation.

    The contenders take turns within each round, so that a change in the
    machine's load during the run affects them alike; the best round counts.
    """
    results: dict[str, dict[str, float]] = {c.name: {} for c in CONTENDERS}
    with tempfile.TemporaryDirectory() as directory:
        contenders = [contender_class(directory) for contender_class in CONTENDERS]
        for case, (method, count) in CASES.items():
            if case == "get(pk=...)":
                for contender in contenders:
                    fill_for_reads(contender.path)
            for _ in range(repeat):
                for contender in contenders:
                    func = getattr(contender, method)
                    value = per_operation(func, int(count * scale))
                    previous = results[contender.name].get(case)
                    if previous is None or value < previous:
                        results[contender.name][case] = value
        for contender in contenders:
            contender.close()
    return results


def table(results: dict[str, dict[str, float]]) -> str:
    """Format the results: µs per operation and the ratio to raw sqlite3."""
    names = [c.name for c in CONTENDERS]
    floor = results[RawSQLite.name]
    header = ["case", *names, "framework / raw", "framework fastest ORM?"]
    rows = [header]
    for case in CASES:
        row = [case]
        for name in names:
            value = results[name][case]
            row.append(f"{value:8.2f} ({value / floor[case]:.1f}x)")
        ours = results[Framework.name][case]
        peers = [
            results[n][case] for n in names if n not in (RawSQLite.name, Framework.name)
        ]
        row.append(f"{ours / floor[case]:.2f}x")
        row.append("yes" if ours < min(peers) else "NO")
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = []
    for index, row in enumerate(rows):
        lines.append(
            "| "
            + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True))
            + " |"
        )
        if index == 0:
            lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the counts")
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs per case (best kept)"
    )
    args = parser.parse_args(argv)
    results = run(args.scale, args.repeat)
    print(
        f"Python {sys.version.split()[0]}, SQLite {sqlite3.sqlite_version};"
        " microseconds per operation (ratio to raw sqlite3)"
    )
    print(table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
