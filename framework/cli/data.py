"""``framework flush``, ``loaddata`` and ``dumpdata``.

Fixtures are JSON lists of objects::

    [{"model": "blog.Post", "pk": 1,
      "fields": {"title": "Hello", "author": 3, "tags": [1, 2]}}]

A foreign key is given by the primary key it refers to, a many-to-many
field (with an automatic through model) as the list of related keys.
``loaddata`` saves every object with ``raw=True`` inside one transaction;
``dumpdata`` writes what ``loaddata`` reads back identically, parents first.
"""

from __future__ import annotations

import collections.abc as cabc
import json
import os
import pathlib
import typing as t

import click

from ..apps import apps
from ..conf import ENVIRONMENT_VARIABLE
from ..conf import settings
from . import NO_PROJECT_MESSAGE
from . import CommandContext
from . import CommandError
from . import CommandUsageError
from . import database_option
from . import error_message
from . import noinput_option
from . import pass_context
from . import verbosity_option
from .migrations import check_database
from .migrations import emit_post_migrate
from .migrations import engine_for
from .migrations import orm_module

__all__ = ["dumpdata", "flush", "loaddata"]


def _installed_models(include_auto_created: bool = True) -> list[t.Any]:
    models = [m for config in apps.get_app_configs() for m in config.get_models()]
    if not include_auto_created:
        models = [m for m in models if not getattr(m._meta, "auto_created", False)]
    return models


def _confirm(question: str) -> bool:
    try:
        return click.confirm(question, default=False)
    except click.Abort:
        # End of input (nobody to ask) or Ctrl-C.
        raise CommandError(
            "No answer, nothing was flushed; pass --noinput to flush without asking."
        ) from None


def _load_data_project(obj: CommandContext) -> t.Any:
    """Load the project and return the ORM; refuse to run with nothing to work on.

    A data command needs models: those of the installed apps, or models an
    application or a caller (``call_command`` in tests) registered. With no
    settings module, no app, no installed apps and no model at all, it says
    how to point at a project instead of creating an empty database.

    :raises CommandUsageError: there is no project and no model.
    """
    app = obj.load_project()
    orm = orm_module()
    if (
        app is None
        and not settings.INSTALLED_APPS
        and not os.environ.get(ENVIRONMENT_VARIABLE)
        and not orm.registry.get_models()
    ):
        raise CommandUsageError(NO_PROJECT_MESSAGE.format(cwd=os.getcwd()))
    return orm


@click.command()
@database_option
@noinput_option
@verbosity_option
@pass_context
def flush(obj: CommandContext, database: str, interactive: bool) -> list[t.Any]:
    """Delete every row of the installed apps' tables, then send post_migrate.

    Sequences are reset. Asks first unless --noinput. Returns the models
    whose tables were emptied.
    """
    orm = _load_data_project(obj)
    engine = engine_for(database)
    from sqlalchemy import inspect

    existing = set(inspect(engine).get_table_names())
    # Tables not created yet (an app not migrated) have nothing to empty.
    models = [m for m in _installed_models() if m._meta.db_table in existing]
    if interactive and not _confirm(
        f"This deletes every row of the {len(models)} table(s) of the installed"
        f" apps in database {database!r}. Continue?"
    ):
        obj.echo("Flush cancelled.")
        return []
    orm.flush_tables(models, using=database)
    obj.echo(f"Flushed {len(models)} table(s).", level=2)
    emit_post_migrate(obj.verbosity, interactive, database, {})
    return models


class _FixtureError(Exception):
    pass


def _find_fixture(name: str) -> pathlib.Path:
    path = pathlib.Path(name)
    if path.is_file():
        return path
    candidates = [name] if name.endswith(".json") else [name, f"{name}.json"]
    for config in apps.get_app_configs():
        for candidate in candidates:
            found = pathlib.Path(config.path) / "fixtures" / candidate
            if found.is_file():
                return found
    raise CommandError(
        f"No fixture named {name!r}: not a file, and no app has"
        f" fixtures/{candidates[-1]}."
    )


def _read_fixture(path: pathlib.Path) -> list[t.Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise CommandError(f"{path}: cannot read the fixture: {exc}") from exc
    if not isinstance(data, list):
        raise CommandError(f"{path}: a fixture must be a JSON list of objects.")
    return data


def _build(orm: t.Any, item: t.Any) -> tuple[t.Any, list[tuple[str, list[t.Any]]]]:
    if not isinstance(item, dict) or "model" not in item:
        raise _FixtureError("not an object with a 'model' key")
    try:
        model = orm.registry.get_model(str(item["model"]))
    except LookupError as exc:
        raise _FixtureError(f"unknown model {item['model']!r}") from exc
    meta = model._meta
    fields = item.get("fields", {})
    if not isinstance(fields, dict):
        raise _FixtureError("'fields' must be an object")
    concrete = {field.name: field for field in meta.fields}
    concrete.update({field.attname: field for field in meta.fields})
    m2m = {field.name: field for field in meta.many_to_many}
    values: dict[str, t.Any] = {}
    relations: list[tuple[str, list[t.Any]]] = []
    if item.get("pk") is not None:
        values[meta.pk.attname] = _convert(meta.pk, item["pk"])
    for name, raw in fields.items():
        if name in m2m:
            if not isinstance(raw, list):
                raise _FixtureError(f"field {name!r} must be a list of keys")
            target_pk = m2m[name].related_model._meta.pk
            relations.append((name, [_convert(target_pk, key, name) for key in raw]))
        elif name in concrete:
            field = concrete[name]
            values[field.attname] = _convert(field, raw, name)
        else:
            valid = sorted({*(f.name for f in meta.fields), *m2m})
            raise _FixtureError(
                f"{meta.label} has no field {name!r} (fields: {', '.join(valid)})"
            )
    return model(**values), relations


def _convert(field: t.Any, value: t.Any, name: str | None = None) -> t.Any:
    try:
        return field.to_python(value)
    except Exception as exc:
        label = f"field {name!r}" if name else "the primary key"
        raise _FixtureError(f"bad value {value!r} for {label}: {exc}") from exc


def _describe(index: int, item: t.Any) -> str:
    if isinstance(item, dict):
        return f"object #{index} ({item.get('model')!s} pk={item.get('pk')!r})"
    return f"object #{index}"


class _Loaded(t.NamedTuple):
    path: pathlib.Path
    number: int
    item: t.Any
    instance: t.Any
    relations: list[tuple[str, list[t.Any]]]


def _load_objects(
    obj: CommandContext,
    orm: t.Any,
    path: pathlib.Path,
    items: list[t.Any],
    database: str,
) -> list[_Loaded]:
    loaded = []
    for index, item in enumerate(items, 1):
        try:
            instance, relations = _build(orm, item)
            instance.save(using=database, raw=True)
            for name, keys in relations:
                getattr(instance, name).set(keys)
        except Exception as exc:
            message = str(exc) if isinstance(exc, _FixtureError) else error_message(exc)
            raise CommandError(
                f"{path}: {_describe(index, item)}: {message}. Nothing was loaded."
            ) from exc
        loaded.append(_Loaded(path, index, item, instance, relations))
        if obj.verbosity >= 3:
            obj.echo(f"Loaded {_describe(index, item)} from {path}")
    return loaded


def _check_references(orm: t.Any, records: list[_Loaded], database: str) -> None:
    # Foreign keys are deferred until the commit, where a failure could not
    # name the object: check every reference while the objects are known.
    # A reference is (model, the field it refers to: its primary key or a
    # ForeignKey's to_field), value.
    refs: list[tuple[_Loaded, str, tuple[t.Any, t.Any], t.Any]] = []
    for record in records:
        meta = record.instance._meta
        for field in meta.fields:
            target = getattr(field, "related_model", None)
            value = getattr(record.instance, field.attname)
            if target is not None and value is not None:
                refs.append((record, field.name, (target, field.target_field), value))
        m2m = {field.name: field for field in meta.many_to_many}
        for name, keys in record.relations:
            target = m2m[name].related_model
            refs += [(record, name, (target, target._meta.pk), key) for key in keys]
    wanted: dict[tuple[t.Any, t.Any], set[t.Any]] = {}
    for _, _, key, value in refs:
        wanted.setdefault(key, set()).add(value)
    existing = {
        (target, field): set(
            orm.QuerySet(target, database)
            .filter(**{f"{field.name}__in": sorted(values, key=repr)})
            .values_list(field.name, flat=True)
        )
        for (target, field), values in wanted.items()
    }
    for record, name, key, value in refs:
        if value not in existing[key]:
            target, field = key
            column = "pk" if field.primary_key else field.name
            raise CommandError(
                f"{record.path}: {_describe(record.number, record.item)}: field"
                f" {name!r} refers to {target._meta.label} {column}={value!r}, which"
                " does not exist. Nothing was loaded."
            )


@click.command()
@click.argument("fixtures", nargs=-1, required=True, metavar="FIXTURE...")
@database_option
@verbosity_option
@pass_context
def loaddata(obj: CommandContext, fixtures: tuple[str, ...], database: str) -> int:
    """Load JSON fixtures (files, or names in an app's fixtures/ directory).

    Every object is saved with raw=True, all in one transaction: any bad
    object stops the load, names the file and the object, and nothing is
    written. Returns the number of objects loaded.
    """
    orm = _load_data_project(obj)
    check_database(database)
    loaded = [(path, _read_fixture(path)) for path in map(_find_fixture, fixtures)]
    total = sum(len(items) for _, items in loaded)
    records: list[_Loaded] = []
    with orm.transaction.atomic(using=database):
        if obj.interactive_output and obj.verbosity >= 1 and total:
            bar: t.Any = click.progressbar(
                length=len(loaded),
                label="Loading fixtures",
                file=t.cast("t.TextIO | None", obj.stdout),
            )
            with bar:
                for path, items in loaded:
                    records += _load_objects(obj, orm, path, items, database)
                    bar.update(1)
        else:
            for path, items in loaded:
                records += _load_objects(obj, orm, path, items, database)
        _check_references(orm, records, database)
        # PostgreSQL sequences must move past the keys the fixtures set.
        models = {type(record.instance) for record in records}
        orm.reset_sequences(sorted(models, key=lambda m: m._meta.label), using=database)
    count = len(records)
    obj.echo(f"Installed {count} object(s) from {len(loaded)} fixture(s).")
    return count


def _dependency_order(models: cabc.Sequence[t.Any]) -> list[t.Any]:
    ordered: list[t.Any] = []
    wanted = set(models)

    def visit(model: t.Any, seen: tuple[t.Any, ...]) -> None:
        if model in ordered or model in seen:
            return
        for field in model._meta.fields:
            target = getattr(field, "related_model", None)
            if target is not None and target in wanted and target is not model:
                visit(target, (*seen, model))
        ordered.append(model)

    for model in models:
        visit(model, ())
    return ordered


def _select_models(labels: tuple[str, ...], orm: t.Any) -> list[t.Any]:
    if not labels:
        return _installed_models(include_auto_created=False)
    chosen: list[t.Any] = []
    for label in labels:
        if "." in label:
            try:
                model = orm.registry.get_model(label)
            except LookupError as exc:
                raise click.UsageError(str(exc)) from None
            chosen.append(model)
        else:
            try:
                config = apps.get_app_config(label)
            except LookupError as exc:
                raise click.UsageError(str(exc)) from None
            chosen += [
                m
                for m in config.get_models()
                if not getattr(m._meta, "auto_created", False)
            ]
    return list(dict.fromkeys(chosen))


def _dump_model(orm: t.Any, model: t.Any, database: str) -> list[dict[str, t.Any]]:
    meta = model._meta
    m2m = [
        field
        for field in meta.many_to_many
        if getattr(field.through._meta, "auto_created", False)
    ]
    objects = []
    # Every row: a plain queryset, whatever the model's managers are called
    # or filter (Django's base manager).
    for instance in orm.QuerySet(model, database).order_by("pk"):
        fields: dict[str, t.Any] = {}
        for field in meta.fields:
            if field.primary_key:
                continue
            fields[field.name] = field.to_json(getattr(instance, field.attname))
        for field in m2m:
            keys = getattr(instance, field.name).all().values_list("pk", flat=True)
            target_pk = field.related_model._meta.pk
            fields[field.name] = sorted(target_pk.to_json(key) for key in keys)
        objects.append(
            {
                "model": meta.label,
                "pk": meta.pk.to_json(instance.pk),
                "fields": fields,
            }
        )
    return objects


@click.command()
@click.argument("labels", nargs=-1, metavar="[APP_LABEL[.ModelName]]...")
@database_option
@click.option("--indent", type=click.IntRange(0, 8), default=None, help="Indent JSON.")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="Write to this file instead of stdout.",
)
@verbosity_option
@pass_context
def dumpdata(
    obj: CommandContext,
    labels: tuple[str, ...],
    database: str,
    indent: int | None,
    output: str | None,
) -> list[dict[str, t.Any]]:
    """Write the data of apps or models as a JSON fixture.

    Models come parents first, objects by primary key; loaddata reads the
    result back identically. Returns the list of objects.
    """
    orm = _load_data_project(obj)
    check_database(database)
    models = _dependency_order(_select_models(labels, orm))
    objects = [item for model in models for item in _dump_model(orm, model, database)]
    text = json.dumps(objects, indent=indent, ensure_ascii=False)
    if output:
        tmp = f"{output}.tmp{os.getpid()}"
        try:
            pathlib.Path(tmp).write_text(text + "\n", encoding="utf-8")
            os.replace(tmp, output)
        except OSError as exc:
            raise CommandError(f"Cannot write {output}: {exc.strerror}.") from exc
        obj.echo(f"Wrote {len(objects)} object(s) to {output}.", err=True, level=2)
    else:
        click.echo(text, file=obj.stdout)
    return objects
