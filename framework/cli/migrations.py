"""``framework migrate``, ``makemigrations`` and ``showmigrations``.

``migrate`` sends ``pre_migrate`` for every installed app with a models
module (``INSTALLED_APPS`` order), creates the tables of apps without
migrations straight from their models, applies pending migrations (each in
its own transaction), then sends ``post_migrate`` for the same apps. It
does so on every run, even when nothing is pending.
"""

from __future__ import annotations

import collections.abc as cabc
import dataclasses
import importlib
import os
import pathlib
import sys
import typing as t

import click

from .. import signals
from ..apps import AppConfig
from ..apps import apps
from ..conf import settings
from . import CommandContext
from . import CommandError
from . import database_option
from . import error_message
from . import noinput_option
from . import pass_context
from . import verbosity_option

if t.TYPE_CHECKING:
    from ..dispatch import Signal
    from ..orm.migrations import Migration
    from ..orm.migrations import MigrationExecutor
    from ..orm.migrations import MigrationLoader
    from ..orm.migrations import Operation

__all__ = [
    "MigrateResult",
    "emit_post_migrate",
    "emit_pre_migrate",
    "makemigrations",
    "migrate",
    "showmigrations",
    "unapplied",
    "warn_unapplied",
]


def orm_module() -> t.Any:
    """Import ``framework.orm``, or fail with a hint to install the extra."""
    try:
        return importlib.import_module("framework.orm")
    except ImportError as exc:
        raise CommandError(
            f"The ORM is not available ({exc}); install it with"
            " 'pip install framework[orm]'."
        ) from exc


def check_database(database: str) -> None:
    """Fail with a clear message if ``database`` is not a configured alias."""
    databases = settings.DATABASES
    if database not in databases:
        raise CommandError(
            f"Unknown database alias {database!r}; DATABASES has:"
            f" {', '.join(sorted(databases)) or 'nothing'}."
        )


def engine_for(database: str) -> t.Any:
    """Return the SQLAlchemy engine of the alias ``database``."""
    check_database(database)
    return orm_module().connections[database].engine


def _apps_with_models() -> list[AppConfig]:
    return [c for c in apps.get_app_configs() if c.models_module is not None]


def _send_per_app(
    signal: Signal,
    verbosity: int,
    interactive: bool,
    database: str,
    models_key: str,
    models: cabc.Mapping[str, list[t.Any]],
    plan: list[tuple[Migration, bool]] | None,
    state: t.Any,
) -> None:
    for config in _apps_with_models():
        signal.send(
            sender=config.models_module,
            app=config.models_module,
            app_config=config,
            verbosity=verbosity,
            interactive=interactive,
            db=database,
            using=database,
            plan=plan,
            apps=state,
            **{models_key: list(models.get(config.label, []))},
        )


def _models_state() -> t.Any:
    from ..orm.migrations import state_from_models

    return state_from_models(
        [model for config in _apps_with_models() for model in config.get_models()]
    )


def emit_pre_migrate(
    verbosity: int,
    interactive: bool,
    database: str,
    create_models: cabc.Mapping[str, list[t.Any]],
    plan: list[tuple[Migration, bool]] | None = None,
    apps: t.Any = None,
) -> None:
    """Send ``pre_migrate`` for each installed app with models, in order.

    :param create_models: app label -> models whose tables ``migrate`` will
        create from the model definitions (apps without migrations).
    :param plan: the ``(migration, backwards)`` pairs about to run.
    :param apps: the schema (:class:`~framework.orm.migrations.ProjectState`)
        before them; the models' schema by default.
    """
    _send_per_app(
        signals.pre_migrate,
        verbosity,
        interactive,
        database,
        "create_models",
        create_models,
        plan,
        _models_state() if apps is None else apps,
    )


def emit_post_migrate(
    verbosity: int,
    interactive: bool,
    database: str,
    created_models: cabc.Mapping[str, list[t.Any]],
    plan: list[tuple[Migration, bool]] | None = None,
    apps: t.Any = None,
) -> None:
    """Send ``post_migrate`` for each installed app with models, in order.

    :param created_models: app label -> models whose tables this run created.
    :param plan: the ``(migration, backwards)`` pairs that ran; ``None`` for
        ``flush``.
    :param apps: the schema after them; the models' schema by default.
    """
    _send_per_app(
        signals.post_migrate,
        verbosity,
        interactive,
        database,
        "created_models",
        created_models,
        plan,
        _models_state() if apps is None else apps,
    )


def _schema_state(
    loader: MigrationLoader,
    applied: cabc.Container[tuple[str, str]],
    syncdb: cabc.Mapping[str, list[t.Any]],
    tables: cabc.Container[str],
) -> t.Any:
    """Return the schema of the applied migrations plus the existing model tables."""
    from ..orm.migrations import ProjectState
    from ..orm.migrations import state_from_models

    state = ProjectState()
    for migration in loader.order:
        if migration.key in applied:
            for operation in migration.operations:
                operation.state_forwards(state)
    models = [
        model
        for group in syncdb.values()
        for model in group
        if model._meta.db_table in tables
    ]
    state.tables.update(state_from_models(models).tables)
    return state


def _loader() -> MigrationLoader:
    from ..orm.migrations import MigrationError
    from ..orm.migrations import MigrationLoader

    try:
        return MigrationLoader(apps.get_app_configs())
    except MigrationError as exc:
        raise CommandError(str(exc)) from exc


def unapplied(database: str = "default") -> list[str]:
    """Return what ``migrate`` would do on ``database``; change nothing.

    :returns: the pending migrations (``"app_label.name"``), then
        ``"app_label (tables)"`` for each app without migrations whose tables
        are missing. A SQLite file that does not exist yet has everything
        pending (and is not created).
    """
    orm = orm_module()
    check_database(database)
    loader = _loader()
    syncdb = [c for c in _apps_with_models() if c.label not in loader.by_app]
    path = orm.db.sqlite_path(orm.connections.databases[database])
    if path is not None and not os.path.exists(path):
        return [str(m) for m in loader.order] + [f"{c.label} (tables)" for c in syncdb]
    engine = engine_for(database)
    from sqlalchemy import inspect

    from ..orm.migrations import MigrationExecutor

    pending = [str(m) for m in MigrationExecutor(engine, loader, using=database).plan()]
    existing = set(inspect(engine).get_table_names())
    for config in syncdb:
        if any(m._meta.db_table not in existing for m in config.get_models()):
            pending.append(f"{config.label} (tables)")
    return pending


def warn_unapplied(database: str = "default", stream: t.IO[str] | None = None) -> None:
    """Warn on stderr when ``database`` is not migrated (``run``, ``serve``).

    Like Django's ``runserver``: the server starts anyway, and a database that
    cannot be checked is reported the same way.
    """
    if not _apps_with_models():
        return
    try:
        pending = unapplied(database)
    except Exception as exc:
        click.echo(
            f"Warning: cannot check the migrations of database {database!r}:"
            f" {error_message(exc)}",
            file=stream,
            err=True,
        )
        return
    finally:
        orm = sys.modules.get("framework.orm")
        if orm is not None:
            orm.connections.close_all()
    if pending:
        apps_named = sorted({item.partition(".")[0].split()[0] for item in pending})
        click.echo(
            f"Warning: {len(pending)} unapplied migration(s) on database"
            f" {database!r} ({', '.join(pending)}): pages using the tables of"
            f" {', '.join(apps_named)} will fail until you run 'framework migrate'.",
            file=stream,
            err=True,
        )


@dataclasses.dataclass
class MigrateResult:
    """What ``migrate`` did (the return value of ``call_command("migrate")``)."""

    applied: list[str]
    """The migrations applied, as ``"app_label.name"``."""
    created_models: dict[str, list[t.Any]]
    """App label -> the models whose tables were created from the models."""


def _detect_changes(config: AppConfig, loader: MigrationLoader) -> list[Operation]:
    from ..orm.migrations import detect_changes
    from ..orm.migrations import state_from_models

    return detect_changes(
        loader.app_state(config.label), state_from_models(config.get_models())
    )


def _has_changes(config: AppConfig, loader: MigrationLoader) -> bool:
    from ..orm.migrations import MigrationError

    try:
        return bool(_detect_changes(config, loader))
    except MigrationError:
        # Changes exist, only makemigrations cannot write them by itself.
        return True


def _pending_changes(loader: MigrationLoader) -> list[str]:
    return [
        config.label
        for config in _apps_with_models()
        if config.label in loader.by_app and _has_changes(config, loader)
    ]


@click.command()
@database_option
@noinput_option
@click.option("--plan", is_flag=True, help="Only list what would be applied.")
@click.option(
    "--check",
    "check_unapplied",
    is_flag=True,
    help="Apply nothing; exit 1 if migrations (or missing tables) are unapplied.",
)
@click.option(
    "--fake",
    is_flag=True,
    help="Record pending migrations as applied without running them.",
)
@verbosity_option
@pass_context
def migrate(
    obj: CommandContext,
    database: str,
    interactive: bool,
    plan: bool,
    check_unapplied: bool,
    fake: bool,
) -> MigrateResult:
    """Create the tables of apps without migrations and apply migrations.

    Sends pre_migrate and post_migrate for every installed app with models,
    on every run: receivers must be idempotent.
    """
    obj.load_project(require_project=True)
    orm = orm_module()
    engine = engine_for(database)
    loader = _loader()
    from ..orm.migrations import MigrationExecutor

    executor = MigrationExecutor(engine, loader, using=database)
    syncdb = {
        config.label: config.get_models()
        for config in _apps_with_models()
        if config.label not in loader.by_app
    }
    if plan:
        pending = executor.plan()
        for label, models in syncdb.items():
            obj.echo(f"Create missing tables of {label} ({len(models)} model(s))")
        for migration in pending:
            ops = "; ".join(op.describe() for op in migration.operations)
            obj.echo(f"Apply {migration}: {ops}")
        if not pending:
            obj.echo("No migrations to apply.")
        if not check_unapplied:
            return MigrateResult([str(m) for m in pending], {})
    if check_unapplied:
        _check_unapplied(executor, syncdb, database)
        return MigrateResult([], {})
    verbosity = obj.verbosity
    early, late = _syncdb_phases(syncdb, set(loader.by_app))
    # NOTE: one migrate at a time per database, signals included, so that
    # post_migrate receivers of servers starting together do not race.
    with executor.lock():
        applied_before = executor.applied()
        pending = executor.plan()
        migration_plan = [(migration, False) for migration in pending]
        tables = orm.schema.table_names(database)
        emit_pre_migrate(
            verbosity,
            interactive,
            database,
            syncdb,
            plan=migration_plan,
            apps=_schema_state(loader, applied_before, syncdb, tables),
        )
        made = orm.create_tables(early, using=database) if early else []
        _report_created(obj, syncdb, made)
        applied = _apply(obj, executor, pending, fake)
        if late:
            made_late = orm.create_tables(late, using=database)
            _report_created(obj, syncdb, made_late)
            made += made_late
        created = {
            label: [model for model in models if model in made]
            for label, models in syncdb.items()
        }
        if not pending:
            obj.echo("No migrations to apply.", level=2)
        applied_keys = set(applied_before) | {m.key for m in applied}
        emit_post_migrate(
            verbosity,
            interactive,
            database,
            created,
            plan=migration_plan,
            apps=_schema_state(
                loader, applied_keys, syncdb, orm.schema.table_names(database)
            ),
        )
    stale = _pending_changes(loader)
    if stale:
        obj.echo(
            f"Warning: the models of {', '.join(stale)} have changes that no"
            " migration describes yet; run 'framework makemigrations'.",
            err=True,
        )
    return MigrateResult([str(m) for m in applied], created)


def _check_unapplied(
    executor: MigrationExecutor, syncdb: dict[str, list[t.Any]], database: str
) -> None:
    """Raise (exit 1) naming what ``migrate`` would apply or create."""
    orm = orm_module()
    pending = [str(m) for m in executor.plan()]
    tables = orm.schema.table_names(database)
    missing = [
        model._meta.label
        for models in syncdb.values()
        for model in models
        if model._meta.db_table not in tables
    ]
    problems = []
    if pending:
        problems.append(f"unapplied migrations: {', '.join(pending)}")
    if missing:
        problems.append(f"tables to create for: {', '.join(missing)}")
    if problems:
        raise CommandError(
            f"Database {database!r} is not up to date ({'; '.join(problems)});"
            " run 'framework migrate'."
        )


def _report_created(
    obj: CommandContext, syncdb: dict[str, list[t.Any]], made: list[t.Any]
) -> None:
    for label, models in syncdb.items():
        names = ", ".join(m._meta.object_name for m in models if m in made)
        if names:
            obj.echo(f"Created tables of {label}: {names}")


def _syncdb_phases(
    syncdb: dict[str, list[t.Any]], migrated_labels: set[str]
) -> tuple[list[t.Any], list[t.Any]]:
    """Split the models of apps without migrations: before or after migrations.

    A model with a foreign key to a model of an app with migrations (or to
    a model created late) is created after the migrations, when the table
    it refers to exists; the others come first, so that migrations may
    refer to them.
    """
    models = [model for group in syncdb.values() for model in group]
    late: set[t.Any] = set()
    changed = True
    while changed:
        changed = False
        for model in models:
            if model in late:
                continue
            for field in model._meta.fields:
                target = getattr(field, "related_model", None)
                if target is not None and (
                    target._meta.app_label in migrated_labels or target in late
                ):
                    late.add(model)
                    changed = True
                    break
    return [m for m in models if m not in late], [m for m in models if m in late]


def _apply(
    obj: CommandContext,
    executor: MigrationExecutor,
    pending: list[Migration],
    fake: bool,
) -> list[Migration]:
    from ..orm.migrations import MigrationError

    if not pending:
        return []
    try:
        if obj.interactive_output and obj.verbosity >= 1:
            progress_bar: t.Any = click.progressbar(
                length=len(pending),
                label="Applying migrations",
                file=t.cast("t.TextIO | None", obj.stdout),
                item_show_func=lambda m: str(m) if m else None,
            )
            with progress_bar as bar:
                return executor.migrate(
                    pending, progress=lambda m: bar.update(1, m), fake=fake
                )
        verb = "Faked" if fake else "Applied"
        return executor.migrate(
            pending, progress=lambda m: obj.echo(f"{verb} {m}"), fake=fake
        )
    except MigrationError as exc:
        raise CommandError(str(exc)) from exc


@click.command()
@click.argument("app_labels", nargs=-1, metavar="[APP_LABEL]...")
@click.option(
    "--check",
    is_flag=True,
    help="Write nothing; exit 1 if the models have changes without a migration.",
)
@click.option("--dry-run", is_flag=True, help="Show the changes, write nothing.")
@click.option("--name", default=None, help="Name of the new migration(s).")
@click.option(
    "--empty",
    is_flag=True,
    help="Write an empty migration for each named app (for data migrations).",
)
@verbosity_option
@pass_context
def makemigrations(
    obj: CommandContext,
    app_labels: tuple[str, ...],
    check: bool,
    dry_run: bool,
    name: str | None,
    empty: bool,
) -> dict[str, list[t.Any]]:
    """Write the migrations that bring the history in line with the models.

    Without APP_LABEL, looks at the apps that have a migrations package; name
    an app to give it its first migration. Returns app label -> the detected
    operations.
    """
    obj.load_project(require_project=True)
    orm = orm_module()
    from ..orm.migrations import MigrationError
    from ..orm.migrations import write_migration

    loader = _loader()
    try:
        configs = [apps.get_app_config(label) for label in app_labels]
    except LookupError as exc:
        raise click.UsageError(str(exc)) from None
    if not configs:
        configs = [c for c in _apps_with_models() if c.label in loader.by_app]
    table_app = {
        model._meta.db_table: model._meta.app_label
        for model in orm.registry.get_models()
    }
    leaves = {
        label: migrations[-1].key
        for label, migrations in loader.by_app.items()
        if migrations
    }
    if empty:
        if not app_labels:
            raise click.UsageError("--empty needs the label of the app(s).")
        for config in configs:
            path = write_migration(
                pathlib.Path(config.path) / "migrations",
                [],
                [leaves[config.label]] if config.label in leaves else [],
                name or "custom",
            )
            obj.echo(f"Wrote {path}")
        return {config.label: [] for config in configs}
    found: dict[str, list[t.Any]] = {}
    for config in configs:
        if config.models_module is None:
            raise click.UsageError(f"App {config.label!r} has no models module.")
        try:
            operations = _detect_changes(config, loader)
        except MigrationError as exc:
            raise CommandError(f"{config.label}: {exc}") from exc
        if not operations:
            continue
        found[config.label] = operations
        obj.echo(f"Migrations for {config.label}:")
        for operation in operations:
            obj.echo(f"  - {operation.describe()}")
        if check or dry_run:
            continue
        dependencies = _dependencies(config.label, operations, table_app, leaves)
        try:
            path = write_migration(
                pathlib.Path(config.path) / "migrations", operations, dependencies, name
            )
        except MigrationError as exc:
            raise CommandError(f"{config.label}: {exc}") from exc
        leaves[config.label] = (config.label, path.stem)
        obj.echo(f"  wrote {path}")
    if not found:
        obj.echo("No changes detected.")
    elif check:
        raise CommandError(
            f"Missing migrations for: {', '.join(found)}; run 'framework"
            " makemigrations' and commit the files."
        )
    return found


def _dependencies(
    label: str,
    operations: list[t.Any],
    table_app: dict[str, str],
    leaves: dict[str, tuple[str, str]],
) -> list[tuple[str, str]]:
    """Return the app's latest migration plus those of apps its FKs refer to."""
    from ..orm.migrations import AddColumn
    from ..orm.migrations import AlterColumn
    from ..orm.migrations import CreateTable

    deps: list[tuple[str, str]] = []
    if label in leaves:
        deps.append(leaves[label])
    for operation in operations:
        if isinstance(operation, CreateTable):
            columns = operation.columns
        elif isinstance(operation, AddColumn | AlterColumn):
            columns = [operation.column]
        else:
            continue
        for column in columns:
            other = table_app.get((column.foreign_key or "").rpartition(".")[0])
            if other and other != label and other in leaves:
                if leaves[other] not in deps:
                    deps.append(leaves[other])
    return deps


@click.command()
@database_option
@click.option("--plan", is_flag=True, help="List pending migrations in apply order.")
@verbosity_option
@pass_context
def showmigrations(
    obj: CommandContext, database: str, plan: bool
) -> dict[str, list[tuple[str, bool]]]:
    """List each app's migrations, applied ([X]) or pending ([ ]).

    Returns app label -> ``(name, applied)`` pairs.
    """
    obj.load_project(require_project=True)
    engine = engine_for(database)
    loader = _loader()
    from ..orm.migrations import MigrationExecutor

    applied = MigrationExecutor(engine, loader, using=database).applied()
    if plan:
        for migration in loader.order:
            mark = "X" if migration.key in applied else " "
            obj.echo(f"[{mark}] {migration}")
    listing: dict[str, list[tuple[str, bool]]] = {}
    for config in apps.get_app_configs():
        migrations = loader.by_app.get(config.label)
        if migrations is None:
            if config.models_module is not None and not plan:
                obj.echo(
                    f"{config.label}\n (no migrations: tables come from the models)"
                )
            continue
        listing[config.label] = [(m.name, m.key in applied) for m in migrations]
        if plan:
            continue
        obj.echo(config.label)
        for name, done in listing[config.label]:
            obj.echo(f" [{'X' if done else ' '}] {name}")
    return listing
