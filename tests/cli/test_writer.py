"""The migration writer renders what the loader reads back identically."""

from __future__ import annotations

import decimal
import importlib
import pathlib
import subprocess
import sys

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from framework.apps import AppConfig
from framework.orm import migrations as m
from framework.orm.migrations import render_migration
from framework.orm.migrations import write_migration
from framework.orm.migrations.writer import suggest_name

ROOT = pathlib.Path(__file__).resolve().parents[2]


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


LONG = "a default long enough to need more than one line of the migration file " * 2
LONG_NAME = "_".join(["a_long_migration_name"] * 6)
LONG_OPERATIONS = [
    OPERATIONS[0],
    m.AddColumn(
        "a_table_with_a_rather_long_name_to_push_things_to_the_right",
        m.Column(
            "a_column_whose_name_is_also_long",
            sa.String(length=200),
            nullable=False,
            default=LONG,
        ),
    ),
    m.AddColumn(
        "w_item",
        m.Column(
            "amount",
            sa.Numeric(12, 4),
            nullable=False,
            unique=True,
            foreign_key="another_table_with_a_long_name.identifier_column",
            on_delete="CASCADE",
            default=decimal.Decimal("0.0001"),
        ),
    ),
    m.AddIndex(
        "w_item",
        m.Index(
            "w_item_a_column_whose_name_is_also_long_amount_idx",
            ("a_column_whose_name_is_also_long", "amount"),
            unique=True,
        ),
    ),
    m.AddIndex(
        "w_item",
        m.Index(
            "w_item_three_long_columns_idx",
            (
                "a_column_whose_name_is_also_long",
                "another_column_whose_name_is_long",
                "yet_another_column_with_a_long_name",
            ),
        ),
    ),
]


def assert_ruff_clean(package):
    """Check an app's migrations with the project's ruff check and format."""
    pytest.importorskip("ruff")
    # The project's settings, with the app where a project keeps its apps.
    config = ["--config", str(ROOT / "pyproject.toml"), "--no-cache"]
    config += ["--config", f"src = [{str(package.parent)!r}]"]
    files = sorted(map(str, (package / "migrations").glob("*.py")))
    assert files
    for command in (["check"], ["format", "--check", "--diff"]):
        result = subprocess.run(
            [sys.executable, "-m", "ruff", *command, *config, *files],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stdout + result.stderr


def test_written_migrations_pass_ruff(make_app, tmp_path):
    """The files makemigrations writes pass the project's ruff check and format."""
    pytest.importorskip("ruff")
    package = make_app("ruffapp", {"data.py": "def fill(context):\n    pass\n"})
    directory = package / "migrations"
    operations = [
        *LONG_OPERATIONS,
        m.RunPython(importlib.import_module("ruffapp.data").fill),
    ]
    description = "; ".join(op.describe() for op in operations)
    assert len(description) > 88
    paths = [
        write_migration(directory, operations, [], LONG_NAME),
        write_migration(directory, [], [("ruffapp", f"0001_{LONG_NAME}")], "custom"),
    ]
    assert [p.name for p in paths] == [f"0001_{LONG_NAME}.py", "0002_custom.py"]
    sources = [path.read_text() for path in paths]
    assert sources[0].startswith(
        '"""Generated by framework makemigrations.\n\nCreate table w_item;'
    )
    assert max(len(line) for s in sources for line in s.splitlines()) <= 88
    assert_ruff_clean(package)
    loader = m.MigrationLoader(
        [AppConfig("ruffapp", importlib.import_module("ruffapp"))]
    )
    first, second = loader.by_app["ruffapp"]
    assert [repr(op) for op in first.operations] == [repr(op) for op in operations]
    assert first.operations[1].column.default == LONG
    assert "\nimport ruffapp.data\nfrom framework.orm import migrations\n" in sources[0]
    assert second.dependencies == [("ruffapp", f"0001_{LONG_NAME}")]
    assert second.operations == []
