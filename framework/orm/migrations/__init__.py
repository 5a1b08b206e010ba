"""Schema migrations on Alembic's operations.

A migration module in an app's ``migrations`` package::

    from sqlalchemy import Integer, String

    from framework.orm import migrations


    class Migration(migrations.Migration):
        dependencies = []

        operations = [
            migrations.CreateTable(
                "blog_post",
                [
                    migrations.Column("id", Integer(), primary_key=True,
                                      autoincrement=True),
                    migrations.Column("title", String(length=100), nullable=False),
                ],
            ),
        ]

``framework makemigrations`` writes such modules, ``framework migrate``
applies them (one transaction each, recorded in ``framework_migrations``),
``framework showmigrations`` lists them. See ``docs/migrations.md``.
"""

from __future__ import annotations

from .autodetector import detect_changes
from .autodetector import state_from_models
from .executor import MigrationExecutor
from .loader import Migration
from .loader import MigrationError
from .loader import MigrationLoader
from .operations import AddColumn
from .operations import AddIndex
from .operations import AlterColumn
from .operations import CreateTable
from .operations import DropTable
from .operations import Operation
from .operations import RemoveColumn
from .operations import RemoveIndex
from .operations import RenameColumn
from .operations import RunContext
from .operations import RunPython
from .recorder import MigrationRecorder
from .state import Column
from .state import Index
from .state import ProjectState
from .state import TableState
from .writer import render_migration
from .writer import write_migration

__all__ = [
    "AddColumn",
    "AddIndex",
    "AlterColumn",
    "Column",
    "CreateTable",
    "DropTable",
    "Index",
    "Migration",
    "MigrationError",
    "MigrationExecutor",
    "MigrationLoader",
    "MigrationRecorder",
    "Operation",
    "ProjectState",
    "RemoveColumn",
    "RemoveIndex",
    "RenameColumn",
    "RunContext",
    "RunPython",
    "TableState",
    "detect_changes",
    "render_migration",
    "state_from_models",
    "write_migration",
]
