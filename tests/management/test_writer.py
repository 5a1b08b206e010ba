"""The migration writer renders what the loader reads back identically."""

from __future__ import annotations

import decimal
import importlib

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from framework.apps import AppConfig
from framework.orm import migrations as m
from framework.orm.migrations import render_migration
from framework.orm.migrations.autodetector import suggest_name


def fill(context):
    pass


OPERATIONS = [
    m.CreateTable(
        "w_item",
        [
            m.Column(
                "id",
                sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                primary_key=True,
                autoincrement=True,
            ),
            m.Column("data", sa.Text().with_variant(postgresql.JSONB(), "postgresql")),
            m.Column(
                "price",
                sa.Numeric(10, 2),
                nullable=False,
                default=decimal.Decimal("1.50"),
            ),
            m.Column("uid", sa.Uuid(), unique=True),
            m.Column("at", sa.DateTime(timezone=True)),
            m.Column(
                "owner_id", sa.Integer(), foreign_key="w_owner.id", on_delete="SET NULL"
            ),
            m.Column("quote", sa.String(length=5), default='say "hi"'),
        ],
        indexes=[m.Index("w_item_price_at_idx", ("price", "at"), unique=True)],
    ),
    m.RunPython(fill),
    m.RenameColumn("w_item", "quote", "motto"),
    m.RemoveIndex("w_item", "w_item_price_at_idx"),
    m.DropTable("w_item"),
]


def test_render_and_load_back(make_app):
    source = render_migration(OPERATIONS, [], "Everything.")
    package = make_app("writerapp", {"migrations/__init__.py": ""})
    (package / "migrations" / "0001_all.py").write_text(source)
    loader = m.MigrationLoader(
        [AppConfig("writerapp", importlib.import_module("writerapp"))]
    )
    [migration] = loader.by_app["writerapp"]
    assert migration.dependencies == []
    assert [repr(op) for op in migration.operations] == [repr(op) for op in OPERATIONS]
    created = migration.operations[0]
    assert created.columns == OPERATIONS[0].columns
    assert created.columns[2].default == decimal.Decimal("1.50")
    assert created.columns[6].default == 'say "hi"'
    assert migration.operations[1].function is fill
    assert "from sqlalchemy.dialects.postgresql import JSONB\n" in source
    assert f"import {__name__}\n" in source
    assert loader.app_state("writerapp").tables == {}


def test_render_dependencies():
    source = render_migration([], [("blog", "0002_x"), ("auth", "0001_initial")])
    assert (
        "    dependencies = [\n"
        '        ("blog", "0002_x"),\n'
        '        ("auth", "0001_initial"),\n'
        "    ]\n"
    ) in source


def test_suggested_names():
    assert suggest_name(OPERATIONS, first=True) == "initial"
    assert suggest_name(
        [m.AddColumn("t", m.Column("c", sa.Integer()))], first=False
    ) == ("add_column_c_t")
    assert suggest_name(OPERATIONS, first=False).startswith("auto_")
