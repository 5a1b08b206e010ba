"""The migration engine on plain SQLAlchemy engines (no models involved)."""

from __future__ import annotations

import importlib

import pytest
import sqlalchemy as sa

from framework.apps import AppConfig
from framework.orm.migrations import MigrationError
from framework.orm.migrations import MigrationExecutor
from framework.orm.migrations import MigrationLoader

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
