"""The catalogue of every built-in signal.

``from framework import signals`` shows the whole set. Every receiver gets
``signal`` and ``sender`` besides the arguments listed in each signal's doc,
and must accept ``**kwargs``, because signals may grow new arguments.
``docs/signals.md`` is the reference table; a test keeps it in step with
this module.
"""

from __future__ import annotations

from .dispatch import DeprecatedSignal
from .dispatch import ModelSignal
from .dispatch import Signal

__all__ = [
    "class_prepared",
    "connection_created",
    "got_request_exception",
    "m2m_changed",
    "post_bulk_create",
    "post_delete",
    "post_init",
    "post_migrate",
    "post_save",
    "post_syncdb",
    "post_update",
    "pre_delete",
    "pre_init",
    "pre_migrate",
    "pre_save",
    "pre_syncdb",
    "request_finished",
    "request_started",
    "setting_changed",
    "template_rendered",
]

# Requests -------------------------------------------------------------------

request_started = Signal(
    name="request_started",
    logger="framework.request",
    args=("environ",),
    doc="""Sent by the WSGI handler first thing for every request.

It comes before the request object, routing or any middleware exists. If a
receiver raises, the request becomes an unhandled exception (a 500, with
``got_request_exception``).

:sender: the handler class, ``type(app)``.
:environ: the WSGI environ of the request.
""",
)

request_finished = Signal(
    name="request_finished",
    logger="framework.request",
    args=("environ", "status", "duration"),
    doc="""Sent by the WSGI handler once per request, when the server closes it.

It fires when the server calls ``close()`` on the response iterable, after the
wrapped iterable's own ``close()``, so after a streamed body was delivered or
abandoned. Exactly once per ``request_started``. A server that never calls
``close()`` never triggers it. Every receiver runs even if one raises; the
failures are logged on the ``framework.request`` logger.

:sender: the handler class, ``type(app)``.
:environ: the WSGI environ of the request.
:status: the integer HTTP status that was sent.
:duration: seconds (float) since ``request_started``.
""",
)

got_request_exception = Signal(
    name="got_request_exception",
    logger="framework.request",
    args=("request",),
    doc="""Sent by the WSGI handler once for every unhandled exception.

Sent for exceptions from ``request_started`` receivers, middleware, the view,
an error handler, building or starting the response (a server refusing the
headers included) or iterating a streamed body; never for HTTP errors (404,
405, 400, ...). The exception is the one being handled
(``sys.exception()``). Every receiver runs even if one raises.

:sender: the handler class, ``type(app)``.
:request: the :class:`framework.Request` (or ``None`` if none could be built).
""",
)

# Models ---------------------------------------------------------------------
# ModelSignals: ``sender`` may be a model class or a lazy "app_label.ModelName"
# (resolved once the model is registered; a label naming no model is an
# error). A save or delete through a proxy model is sent with the proxy class
# as sender: receivers connected for the concrete model do not get it.

pre_init = ModelSignal(
    name="pre_init",
    args=("args", "kwargs"),
    doc="""Sent at the start of a model's ``__init__``.

:sender: the model class.
:args: the positional arguments given to ``__init__``.
:kwargs: the keyword arguments given to ``__init__``.
""",
)

post_init = ModelSignal(
    name="post_init",
    args=("instance",),
    doc="""Sent at the end of a model's ``__init__``, also for rows loaded from a query.

:sender: the model class.
:instance: the new instance.
""",
)

pre_save = ModelSignal(
    name="pre_save",
    args=("instance", "raw", "using", "update_fields"),
    doc="""Sent by ``Model.save()`` before the row is written.

:sender: the model class (the proxy class for a proxy model); connect with
    the class or a lazy ``"app_label.ModelName"``.
:instance: the instance being saved.
:raw: True when the instance is saved exactly as given (fixture loading).
:using: the database alias.
:update_fields: a frozenset of the field names passed to ``save()``, or ``None``.
""",
)

post_save = ModelSignal(
    name="post_save",
    args=("instance", "raw", "using", "update_fields", "created"),
    doc="""Sent by ``Model.save()`` after the row is written.

:sender: the model class (the proxy class for a proxy model).
:instance: the saved instance.
:created: True when a new row was inserted.
:raw: True when the instance was saved exactly as given (fixture loading).
:using: the database alias.
:update_fields: a frozenset of the field names passed to ``save()``, or ``None``.
""",
)

pre_delete = ModelSignal(
    name="pre_delete",
    args=("instance", "using", "origin"),
    doc="""Sent for every instance deleted, before any row of the deletion goes.

Sent by ``Model.delete()`` and ``QuerySet.delete()``, cascaded children
included, in Django's order: the rows that refer to others first (deleting
R that cascades to S and T: T1, T2, S1, S2, R1), each model's by primary
key. Rows of automatic many-to-many through models go silently, as in
Django.

:sender: the model class of ``instance`` (the proxy class for a proxy model).
:instance: the instance about to be deleted.
:using: the database alias.
:origin: the instance or queryset whose ``delete()`` started the deletion.
""",
)

post_delete = ModelSignal(
    name="post_delete",
    args=("instance", "using", "origin"),
    doc="""Sent for every instance deleted, right after the rows of its model go.

In Django's order: model by model as for ``pre_delete``, each model's
instances in reverse (T2, T1, S2, S1, R1).

:sender: the model class of ``instance`` (the proxy class for a proxy model).
:instance: the deleted instance (its primary key still set).
:using: the database alias.
:origin: the instance or queryset whose ``delete()`` started the deletion.
""",
)

m2m_changed = ModelSignal(
    name="m2m_changed",
    args=("instance", "action", "reverse", "model", "pk_set", "using"),
    doc="""Sent when a many-to-many relation changes, from either side.

:sender: the through model of the relation.
:instance: the instance whose relation manager was used.
:action: ``"pre_add"``, ``"post_add"``, ``"pre_remove"``, ``"post_remove"``,
    ``"pre_clear"`` or ``"post_clear"``.
:reverse: False when the change was made from the model that declares the
    ``ManyToManyField``, True from the other side.
:model: the class of the objects added, removed or cleared.
:pk_set: the primary keys really added or removed (already linked ones are
    left out of an add), or ``None`` for a clear.
:using: the database alias.
""",
)

post_bulk_create = ModelSignal(
    name="post_bulk_create",
    args=("instances", "using"),
    doc="""Sent by ``QuerySet.bulk_create()`` after the rows are inserted.

``pre_save``/``post_save`` are not sent for bulk inserts; this is.

:sender: the model class.
:instances: the list of created instances, with primary keys set.
:using: the database alias.
""",
)

post_update = ModelSignal(
    name="post_update",
    args=("pk_set", "values", "using"),
    doc="""Sent by ``QuerySet.update()`` after the rows are updated.

The primary keys are only collected when a receiver is connected.

:sender: the model class.
:pk_set: a frozenset of the primary keys of the updated rows.
:values: a dict of the field names and values that were set.
:using: the database alias.
""",
)

class_prepared = Signal(
    name="class_prepared",
    args=(),
    doc="""Sent once a model class is defined and registered.

Sent for automatic many-to-many through models too.

:sender: the model class.
""",
)

# Management -------------------------------------------------------------------

_MIGRATE_ARGS = (
    "app",
    "app_config",
    "verbosity",
    "interactive",
    "db",
    "using",
    "plan",
    "apps",
)

pre_migrate = Signal(
    name="pre_migrate",
    args=(*_MIGRATE_ARGS, "create_models"),
    doc="""Sent by ``migrate`` for each app with models, before anything is installed.

Sent in ``INSTALLED_APPS`` order, on every run, even when nothing is pending:
receivers must be idempotent.

:sender: the app's models module.
:app: the same module.
:app_config: the app's config object.
:verbosity: the command's verbosity, 0 to 3.
:interactive: False with ``--noinput``.
:db: the database alias (also given as ``using``).
:using: the database alias.
:plan: the migrations about to run, in order, as ``(migration, backwards)``
    pairs (``backwards`` is always False: ``migrate`` only goes forwards);
    ``[]`` when nothing is pending.
:apps: the schema before the run, a ``framework.orm.migrations.ProjectState``
    (``.tables``; ``.table(name).to_sa()`` for SQLAlchemy Core queries): the
    applied migrations' tables plus the existing tables of apps without
    migrations. Not model classes (see ``docs/migrations.md``).
:create_models: for an app without migrations, every model whose table
    ``migrate`` creates from the model definitions when it is missing (the
    whole list on every run); empty for apps with migrations.
""",
)

post_migrate = Signal(
    name="post_migrate",
    args=(*_MIGRATE_ARGS, "created_models"),
    doc="""Sent by ``migrate`` and ``flush`` for each app with models, at the end.

Sent in ``INSTALLED_APPS`` order, on every run, even when nothing changed:
receivers must be idempotent.

:sender: the app's models module.
:app: the same module.
:app_config: the app's config object.
:verbosity: the command's verbosity, 0 to 3.
:interactive: False with ``--noinput``.
:db: the database alias (also given as ``using``).
:using: the database alias.
:plan: the ``(migration, False)`` pairs that ran (``[]`` when none did);
    ``None`` when sent by ``flush``.
:apps: the schema after the run (a ``ProjectState``, as for ``pre_migrate``);
    for ``flush``, the schema of the models.
:created_models: the models whose tables this run created from the model
    definitions; empty for ``flush`` and for apps with migrations.
""",
)

pre_syncdb = DeprecatedSignal("pre_syncdb", pre_migrate, removed_in="1.0")
"""Deprecated name of :data:`pre_migrate`; connecting warns."""

post_syncdb = DeprecatedSignal("post_syncdb", post_migrate, removed_in="1.0")
"""Deprecated name of :data:`post_migrate`; connecting warns."""

# Settings, templates, databases -------------------------------------------------

setting_changed = Signal(
    name="setting_changed",
    args=("setting", "value", "enter"),
    doc="""Sent by ``override_settings`` when it enters and when it exits.

:sender: the settings object's class.
:setting: the setting's name.
:value: the new value on enter, the restored value on exit (``None`` if the
    setting did not exist before).
:enter: True on enter, False on exit.
""",
)

template_rendered = Signal(
    name="template_rendered",
    args=("template", "context"),
    doc="""Sent when a template is rendered, only while test instrumentation is on.

See ``framework.testing.setup_test_environment()``.

:sender: the template.
:template: the template.
:context: the dict the template was rendered with.
""",
)

connection_created = Signal(
    name="connection_created",
    args=("connection",),
    doc="""Sent by the ORM's database wrapper for each new database connection.

:sender: the database wrapper class.
:connection: the wrapper: ``alias``, ``vendor``, ``cursor()``, and the DB-API
    connection as ``.connection``.
""",
)
