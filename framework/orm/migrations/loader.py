"""Finding migration files and putting them in dependency order.

An app's migrations are the modules of its ``migrations`` package whose
names start with four digits (``0001_initial.py``), each defining a class
``Migration`` (a subclass of :class:`Migration`). A migration depends on
the one numbered before it in its app, plus its ``dependencies``:
``("app_label", "0002_name")`` pairs naming migrations of other apps.
"""

from __future__ import annotations

import collections.abc as cabc
import importlib
import pkgutil
import re
import sys
import typing as t

from .operations import Operation
from .state import ProjectState

if t.TYPE_CHECKING:
    from ...apps import AppConfig

__all__ = ["Migration", "MigrationError", "MigrationLoader"]

MIGRATION_NAME = re.compile(r"^(\d{4})_\w+$")
"""The pattern of migration module names."""

Key = tuple[str, str]


class MigrationError(Exception):
    """A migration cannot be loaded, ordered or applied."""


class Migration:
    """A migration: a list of operations and what must run before it.

    Subclass it in a migration module as ``class Migration(migrations.Migration)``
    with ``dependencies`` and ``operations`` class attributes.
    """

    dependencies: t.ClassVar[list[tuple[str, str]]] = []
    """``(app_label, migration_name)`` pairs that must be applied first."""
    operations: t.ClassVar[list[Operation]] = []
    """The operations, applied in order inside one transaction."""

    def __init__(self, app_label: str, name: str) -> None:
        self.app_label = app_label
        """The label of the app the migration belongs to."""
        self.name = name
        """The module name, e.g. ``0001_initial``."""

    @property
    def key(self) -> Key:
        """``(app_label, name)``."""
        return (self.app_label, self.name)

    def __str__(self) -> str:
        return f"{self.app_label}.{self.name}"

    def __repr__(self) -> str:
        return f"<Migration {self}>"


class MigrationLoader:
    """The migrations of a list of apps, ordered by their dependencies.

    :param app_configs: the installed apps (apps without a ``migrations``
        package are skipped).
    :raises MigrationError: a module has no ``Migration`` class, or a
        dependency is unknown or circular.
    """

    def __init__(self, app_configs: cabc.Iterable[AppConfig]) -> None:
        self.app_labels: list[str] = []
        """Labels of the apps that have migrations, in installed order."""
        self.migrations: dict[Key, Migration] = {}
        """Every migration by ``(app_label, name)``."""
        self.by_app: dict[str, list[Migration]] = {}
        """Each app's migrations in number order."""
        for config in app_configs:
            if config.has_migrations:
                self._load_app(config.label, config.migrations_module)
        self.order: list[Migration] = self._sort()
        """Every migration, dependencies first."""

    def _load_app(self, label: str, package_name: str) -> None:
        importlib.invalidate_caches()
        package = importlib.import_module(package_name)
        names = sorted(
            info.name
            for info in pkgutil.iter_modules(getattr(package, "__path__", []))
            if MIGRATION_NAME.match(info.name)
        )
        loaded = []
        for name in names:
            module_name = f"{package_name}.{name}"
            module = sys.modules.get(module_name) or importlib.import_module(
                module_name
            )
            cls = getattr(module, "Migration", None)
            if not (isinstance(cls, type) and issubclass(cls, Migration)):
                raise MigrationError(
                    f"Migration module {module_name} has no class Migration"
                    " deriving from framework.orm.migrations.Migration."
                )
            migration = cls(label, name)
            self.migrations[migration.key] = migration
            loaded.append(migration)
        self.app_labels.append(label)
        self.by_app[label] = loaded

    def dependencies(self, migration: Migration) -> list[Key]:
        """Return the keys ``migration`` depends on (its app's previous first)."""
        deps: list[Key] = []
        siblings = self.by_app[migration.app_label]
        index = siblings.index(migration)
        if index:
            deps.append(siblings[index - 1].key)
        for dep in migration.dependencies:
            key = (dep[0], dep[1])
            if key not in self.migrations:
                raise MigrationError(
                    f"Migration {migration} depends on {key[0]}.{key[1]}, which"
                    " does not exist (is that app installed?)."
                )
            if key not in deps:
                deps.append(key)
        return deps

    def _sort(self) -> list[Migration]:
        order: list[Migration] = []
        done: set[Key] = set()
        visiting: list[Key] = []

        def visit(migration: Migration) -> None:
            if migration.key in done:
                return
            if migration.key in visiting:
                cycle = [*visiting[visiting.index(migration.key) :], migration.key]
                raise MigrationError(
                    "Circular migration dependencies: "
                    + " -> ".join(f"{a}.{n}" for a, n in cycle)
                )
            visiting.append(migration.key)
            for key in self.dependencies(migration):
                visit(self.migrations[key])
            visiting.pop()
            done.add(migration.key)
            order.append(migration)

        for label in self.app_labels:
            for migration in self.by_app[label]:
                visit(migration)
        return order

    def plan(self, applied: cabc.Container[Key]) -> list[Migration]:
        """Return the migrations not yet applied, in the order to apply them."""
        return [m for m in self.order if m.key not in applied]

    def app_state(self, app_label: str) -> ProjectState:
        """Return the schema the migrations of ``app_label`` build."""
        state = ProjectState()
        for migration in self.by_app.get(app_label, []):
            for operation in migration.operations:
                operation.state_forwards(state)
        return state

    def project_state(self, upto: Migration | None = None) -> ProjectState:
        """Return the schema every migration before ``upto`` builds (all if None)."""
        state = ProjectState()
        for migration in self.order:
            if migration is upto:
                break
            for operation in migration.operations:
                operation.state_forwards(state)
        return state

    def leaf(self, app_label: str) -> Migration | None:
        """Return the last migration of ``app_label``, or ``None``."""
        migrations = self.by_app.get(app_label)
        return migrations[-1] if migrations else None
