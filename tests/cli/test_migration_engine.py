"""The migration engine on plain SQLAlchemy engines (no models involved)."""

from __future__ import annotations

import importlib

import pytest
import sqlalchemy as sa

from framework.apps import AppConfig
from framework.orm.migrations import MigrationError
from framework.orm.migrations import MigrationExecutor
from framework.orm.migrations import MigrationLoader
from framework.orm.migrations import operations as ops
from framework.orm.migrations.state import Column
from framework.orm.migrations.state import Index
from framework.orm.migrations.state import ProjectState

from .conftest import sa_url

INITIAL = """
from sqlalchemy import Integer, String
from framework.orm import migrations


class Migration(migrations.Migration):
    operations = [
        migrations.CreateTable("shop_customer", [
            migrations.Column("id", Integer(), primary_key=True, autoincrement=True),
            migrations.Column("name", String(length=50), nullable=False, unique=True),
        ]),
        migrations.CreateTable(
            "shop_order",
            [
                migrations.Column(
                    "id", Integer(), primary_key=True, autoincrement=True
                ),
                migrations.Column("label", String(length=50), nullable=False),
                migrations.Column(
                    "customer_id", Integer(), foreign_key="shop_customer.id",
                    on_delete="CASCADE",
                ),
            ],
            indexes=[migrations.Index("ix_shop_order_label", ("label",))],
        ),
    ]
"""

CHANGES = """
import sqlalchemy as sa
from sqlalchemy import Integer, String, Text
from framework.orm import migrations


def number_orders(context):
    order = context.table("shop_order")
    rows = context.connection.execute(sa.select(order.c.id).order_by(order.c.id))
    for position, (pk,) in enumerate(rows.fetchall(), 1):
        context.connection.execute(
            order.update().where(order.c.id == pk).values(quantity=position * 10)
        )


class Migration(migrations.Migration):
    operations = [
        migrations.AddColumn(
            "shop_order",
            migrations.Column("quantity", Integer(), nullable=False, default=1),
        ),
        migrations.RunPython(number_orders),
        migrations.AlterColumn(
            "shop_order", "label", migrations.Column("label", Text(), nullable=True)
        ),
        migrations.RenameColumn("shop_order", "quantity", "amount"),
        migrations.RemoveIndex("shop_order", "ix_shop_order_label"),
        migrations.AddIndex(
            "shop_order", migrations.Index("ix_shop_order_amount", ("amount",))
        ),
        migrations.AddColumn(
            "shop_customer", migrations.Column("email", String(length=40), unique=True)
        ),
        migrations.AddColumn("shop_customer", migrations.Column("notes", Text())),
        migrations.RemoveColumn("shop_customer", "notes"),
    ]
"""

BROKEN = """
from sqlalchemy import Integer
from framework.orm import migrations


class Migration(migrations.Migration):
    dependencies = [("shop", "0002_changes")]
    operations = [
        migrations.AddColumn("shop_order", migrations.Column("rank", Integer())),
        migrations.AddColumn("no_such_table", migrations.Column("x", Integer())),
    ]
"""


def _loader(name):
    return MigrationLoader([AppConfig(name, importlib.import_module(name))])


def test_apply_in_order_keep_data_and_roll_back_a_failure(make_app, db_url):
    make_app(
        "shop",
        {
            "migrations/__init__.py": "",
            "migrations/0001_initial.py": INITIAL,
            "migrations/0002_changes.py": CHANGES,
            "migrations/0003_broken.py": BROKEN,
        },
    )
    engine = sa.create_engine(sa_url(db_url))
    try:
        loader = _loader("shop")
        assert [str(m) for m in loader.order] == [
            "shop.0001_initial",
            "shop.0002_changes",
            "shop.0003_broken",
        ]
        executor = MigrationExecutor(engine, loader)
        executor.migrate(loader.order[:1])
        with engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO shop_customer (name) VALUES ('ann')"))
            conn.execute(
                sa.text(
                    "INSERT INTO shop_order (label, customer_id)"
                    " VALUES ('a', 1), ('b', 1)"
                )
            )
        with pytest.raises(
            MigrationError, match=r"shop\.0003_broken failed at operation 2"
        ):
            executor.migrate()
        assert executor.applied() == {
            ("shop", "0001_initial"),
            ("shop", "0002_changes"),
        }
        inspector = sa.inspect(engine)
        columns = {c["name"]: c for c in inspector.get_columns("shop_order")}
        assert list(columns) == ["id", "label", "customer_id", "amount"]
        assert columns["label"]["nullable"] is True
        assert [i["name"] for i in inspector.get_indexes("shop_order")] == [
            "ix_shop_order_amount"
        ]
        assert [c["name"] for c in inspector.get_columns("shop_customer")] == [
            "id",
            "name",
            "email",
        ]
        [fk] = inspector.get_foreign_keys("shop_order")
        assert fk["referred_table"] == "shop_customer"
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT label, amount FROM shop_order ORDER BY id")
            ).fetchall()
        assert [tuple(row) for row in rows] == [("a", 10), ("b", 20)]
        # The failed migration left nothing behind: its first operation was undone.
        assert "rank" not in columns
        assert executor.plan() == [loader.migrations[("shop", "0003_broken")]]
    finally:
        engine.dispose()


def test_loader_errors(make_app):
    make_app(
        "badshop",
        {
            "migrations/__init__.py": "",
            "migrations/0001_initial.py": (
                "from framework.orm import migrations\n\n"
                "class Migration(migrations.Migration):\n"
                "    dependencies = [('elsewhere', '0001_initial')]\n"
            ),
        },
    )
    with pytest.raises(MigrationError, match=r"depends on elsewhere\.0001_initial"):
        _loader("badshop")
    make_app(
        "noclass", {"migrations/__init__.py": "", "migrations/0001_x.py": "X = 1\n"}
    )
    with pytest.raises(MigrationError, match="has no class Migration"):
        _loader("noclass")


ALTER_BASE = """
from sqlalchemy import Integer, String
from framework.orm import migrations


class Migration(migrations.Migration):
    operations = [
        migrations.CreateTable("alt_a", [
            migrations.Column("id", Integer(), primary_key=True, autoincrement=True),
        ]),
        migrations.CreateTable("alt_b", [
            migrations.Column("id", Integer(), primary_key=True, autoincrement=True),
            migrations.Column("code", String(length=10)),
            migrations.Column("name", String(length=10), unique=True),
            migrations.Column(
                "a_id", Integer(), foreign_key="alt_a.id", on_delete="CASCADE"
            ),
        ]),
    ]
"""

ALTER_CHANGES = """
from sqlalchemy import Integer, String
from framework.orm import migrations


class Migration(migrations.Migration):
    operations = [
        migrations.AlterColumn("alt_b", "code", migrations.Column(
            "code", String(length=20), nullable=False, unique=True, default="none"
        )),
        migrations.AlterColumn(
            "alt_b", "name", migrations.Column("name", String(length=10))
        ),
        migrations.AlterColumn("alt_b", "a_id", migrations.Column("a_id", Integer())),
    ]
"""

ALTER_FK = """
from sqlalchemy import Integer
from framework.orm import migrations


class Migration(migrations.Migration):
    operations = [
        migrations.AlterColumn("alt_b", "a_id", migrations.Column(
            "a_id", Integer(), foreign_key="alt_a.id", on_delete="SET NULL"
        )),
    ]
"""


def test_alter_column_constraints(make_app, db_url):
    make_app(
        "altapp",
        {
            "migrations/__init__.py": "",
            "migrations/0001_base.py": ALTER_BASE,
            "migrations/0002_changes.py": ALTER_CHANGES,
            "migrations/0003_fk.py": ALTER_FK,
        },
    )
    engine = sa.create_engine(sa_url(db_url))
    try:
        loader = _loader("altapp")
        executor = MigrationExecutor(engine, loader)
        executor.migrate(loader.order[:1])
        with engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO alt_a (id) VALUES (1)"))
            conn.execute(sa.text("INSERT INTO alt_b (name, a_id) VALUES ('n', 1)"))
        executor.migrate(loader.order[1:2])
        inspector = sa.inspect(engine)
        uniques = [u["name"] for u in inspector.get_unique_constraints("alt_b")]
        assert uniques == ["alt_b_code_key"]
        assert inspector.get_foreign_keys("alt_b") == []
        columns = {c["name"]: c for c in inspector.get_columns("alt_b")}
        assert columns["code"]["nullable"] is False
        assert columns["code"]["type"].length == 20
        executor.migrate()
        [fk] = sa.inspect(engine).get_foreign_keys("alt_b")
        assert (fk["name"], fk["options"]["ondelete"]) == (
            "alt_b_a_id_fkey",
            "SET NULL",
        )
        with engine.connect() as conn:
            row = conn.execute(sa.text("SELECT code, name, a_id FROM alt_b")).one()
        assert tuple(row) == ("none", "n", 1)
    finally:
        engine.dispose()


def test_state_errors_and_descriptions():
    state = ProjectState()
    create = ops.CreateTable("t", [Column("id", sa.Integer(), primary_key=True)])
    create.state_forwards(state)
    with pytest.raises(ValueError, match="table 't' already exists"):
        create.state_forwards(state)
    with pytest.raises(ValueError, match="column t.id already exists"):
        ops.AddColumn("t", Column("id", sa.Integer())).state_forwards(state)
    for operation in (
        ops.RemoveColumn("t", "nope"),
        ops.AlterColumn("t", "nope", Column("nope", sa.Integer())),
        ops.RenameColumn("t", "nope", "x"),
        ops.RemoveIndex("t", "nope"),
    ):
        with pytest.raises(KeyError, match="nope"):
            operation.state_forwards(state)
    with pytest.raises(KeyError, match="table 'u' does not exist at this point"):
        ops.DropTable("u").state_forwards(state)
    assert [
        op.describe()
        for op in (
            ops.DropTable("t"),
            ops.RemoveColumn("t", "c"),
            ops.AlterColumn("t", "c", Column("c", sa.Integer())),
            ops.RenameColumn("t", "a", "b"),
            ops.AddIndex("t", Index("i", ("c",))),
            ops.RemoveIndex("t", "i"),
            ops.RunPython(_loader),
        )
    ] == [
        "Drop table t",
        "Remove column c from t",
        "Alter column c of t",
        "Rename column t.a to b",
        "Add index i on t",
        "Remove index i from t",
        "Run Python _loader",
    ]
    assert ProjectState() != object()
    assert Column("a", sa.Integer()) != "a"
    assert len({Column("a", sa.Integer()), Column("a", sa.Integer())}) == 1
    table = state.table("t").to_sa()
    assert list(table.c.keys()) == ["id"]


DEP_BASE_1 = """
from sqlalchemy import Integer
from framework.orm import migrations


class Migration(migrations.Migration):
    operations = [
        migrations.CreateTable("depbase_a", [
            migrations.Column("id", Integer(), primary_key=True, autoincrement=True),
        ]),
    ]
"""

DEP_BASE_2 = """
from sqlalchemy import Integer
from framework.orm import migrations


class Migration(migrations.Migration):
    operations = [
        migrations.CreateTable("depbase_b", [
            migrations.Column("id", Integer(), primary_key=True, autoincrement=True),
        ]),
    ]
"""

DEP_FIRST_1 = """
from sqlalchemy import Integer
from framework.orm import migrations


class Migration(migrations.Migration):
    dependencies = [("depbase", "0002_b")]
    operations = [
        migrations.CreateTable("depfirst_c", [
            migrations.Column("id", Integer(), primary_key=True, autoincrement=True),
            migrations.Column("b_id", Integer(), foreign_key="depbase_b.id"),
        ]),
    ]
"""


def test_dependencies_across_apps_come_first(make_app, db_url):
    """An app listed first waits for the migration of another app it needs."""
    make_app(
        "depbase",
        {
            "migrations/__init__.py": "",
            "migrations/0001_a.py": DEP_BASE_1,
            "migrations/0002_b.py": DEP_BASE_2,
        },
    )
    make_app(
        "depfirst",
        {"migrations/__init__.py": "", "migrations/0001_c.py": DEP_FIRST_1},
    )
    loader = MigrationLoader(
        [
            AppConfig(name, importlib.import_module(name))
            for name in ("depfirst", "depbase")
        ]
    )
    assert [str(m) for m in loader.order] == [
        "depbase.0001_a",
        "depbase.0002_b",
        "depfirst.0001_c",
    ]
    engine = sa.create_engine(sa_url(db_url))
    try:
        applied = []
        MigrationExecutor(engine, loader).migrate(progress=applied.append)
        assert applied == loader.order
        [fk] = sa.inspect(engine).get_foreign_keys("depfirst_c")
        assert fk["referred_table"] == "depbase_b"
    finally:
        engine.dispose()


def test_integer_keys_are_never_reused_even_after_a_rebuild(make_app, db_url):
    """SQLite tables get AUTOINCREMENT, also when a migration rebuilds them."""
    make_app(
        "keyshop",
        {
            "migrations/__init__.py": "",
            "migrations/0001_initial.py": INITIAL,
            "migrations/0002_changes.py": CHANGES,
        },
    )
    engine = sa.create_engine(sa_url(db_url))

    def insert_then_delete_last():
        with engine.begin() as conn:
            for name in ("a", "b", "c"):
                conn.execute(
                    sa.text("INSERT INTO shop_order (label) VALUES (:n)"), {"n": name}
                )
            last = conn.execute(sa.text("SELECT max(id) FROM shop_order")).scalar()
            conn.execute(sa.text("DELETE FROM shop_order WHERE id = :i"), {"i": last})
            conn.execute(sa.text("INSERT INTO shop_order (label) VALUES ('d')"))
            new = conn.execute(sa.text("SELECT max(id) FROM shop_order")).scalar()
        return last, new

    try:
        loader = _loader("keyshop")
        executor = MigrationExecutor(engine, loader)
        executor.migrate(loader.order[:1])
        last, new = insert_then_delete_last()
        assert new == last + 1
        executor.migrate()  # AlterColumn: SQLite rebuilds shop_order
        last, new = insert_then_delete_last()
        assert new == last + 1
        if engine.dialect.name == "sqlite":
            with engine.connect() as conn:
                rows = conn.execute(sa.text("SELECT name, sql FROM sqlite_master"))
                ddl = {name: sql for name, sql in rows}
            assert "AUTOINCREMENT" in ddl["shop_order"]
            assert "AUTOINCREMENT" in ddl["shop_customer"]
    finally:
        engine.dispose()
