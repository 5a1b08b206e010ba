"""Declarative models: ``class Pizza(orm.Model): name = orm.CharField(max_length=50)``.

A model class gets a ``_meta`` (:class:`Options`) describing its fields and
table, a manager as ``objects``, and its own ``DoesNotExist`` and
``MultipleObjectsReturned``. Instances send ``pre_init``/``post_init``,
``pre_save``/``post_save`` and ``pre_delete``/``post_delete`` with the model
class as sender.
"""

from __future__ import annotations

import collections.abc as cabc
import copy
import threading
import typing as t

import sqlalchemy as sa

from framework import signals

from . import fields as _fields
from ._saving import _check_update_fields
from ._saving import _saver
from .bulk import delete_pks as _delete_pks
from .db import DEFAULT_DB_ALIAS
from .db import connections
from .exceptions import FieldError
from .exceptions import IntegrityError
from .exceptions import MultipleObjectsReturned
from .exceptions import ObjectDoesNotExist

if t.TYPE_CHECKING:
    from ._saving import _Saver
    from .query import Manager
    from .related import ForeignObjectRel

__all__ = ["Model", "ModelState", "Options", "Registry", "registry"]

_pre_init = signals.pre_init
_post_init = signals.post_init
_pre_save = signals.pre_save
_post_save = signals.post_save
_pre_delete = signals.pre_delete
_post_delete = signals.post_delete

_META_OPTIONS = frozenset(
    {
        "abstract",
        "app_label",
        "db_table",
        "ordering",
        "unique_together",
        "indexes",
        "constraints",
        "verbose_name",
        "verbose_name_plural",
        "auto_created",
        "proxy",
    }
)


class Registry:
    """Every model class, by ``"app_label.modelname"``, in definition order."""

    def __init__(self) -> None:
        self._models: dict[str, type[Model]] = {}
        self._pending: dict[str, list[cabc.Callable[[type[Model]], None]]] = {}
        # label -> what waits for it through lazy_model_operation (receivers).
        self._lazy_waiting: dict[str, list[str]] = {}
        self._ready = False
        self._lock = threading.RLock()
        self._metadata = sa.MetaData()

    @property
    def ready(self) -> bool:
        """Whether every model is known: lazy labels of unknown models are errors.

        For :data:`registry`, true once ``framework.apps.apps.populate()``
        imported the installed apps' models (for the current
        ``INSTALLED_APPS``); for another registry, after :meth:`set_ready`.
        """
        if self._ready:
            return True
        if self is not registry:
            return False
        from framework.apps import apps

        return apps.ready

    def set_ready(self) -> None:
        """Declare every model registered, and check the waiting lazy labels.

        :raises LookupError: naming a label that something waits for and
            that no registered model has.
        """
        self._ready = True
        self.check_lazy_references()

    def check_lazy_references(self) -> None:
        """Raise for lazy model labels still waiting for a model.

        :raises LookupError: naming each label and what waits for it.
        """
        with self._lock:
            waiting = {key: list(whats) for key, whats in self._lazy_waiting.items()}
        if waiting:
            details = "; ".join(
                f"{key!r} (for {', '.join(whats)})" for key, whats in waiting.items()
            )
            raise LookupError(
                f"No model for the lazy reference(s) {details}. Known models:"
                f" {self._known()}. Fix the 'app_label.ModelName' strings."
            )

    def _known(self) -> str:
        return ", ".join(m._meta.label for m in self._models.values()) or "none"

    def lazy_model_operation(
        self,
        function: cabc.Callable[[type[Model]], t.Any],
        label: str,
        what: str = "a lazy reference",
    ) -> None:
        """Call ``function(model)`` for ``"app_label.ModelName"`` once it exists.

        At once if the model is registered; otherwise when it is, unless
        the registry is :attr:`ready`: then the label names no model.

        :param what: what waits, for the error message.
        :raises LookupError: the registry is ready and has no such model.
        """
        key = label.lower()
        with self._lock:
            model = self._models.get(key)
            if model is None:
                if self.ready:
                    raise LookupError(
                        f"{what}: no model {label!r}; known models: {self._known()}."
                    )
                self._lazy_waiting.setdefault(key, []).append(what)

                def run(model: type[Model]) -> None:
                    with self._lock:
                        whats = self._lazy_waiting.get(key, [])
                        if what in whats:
                            whats.remove(what)
                        if not whats:
                            self._lazy_waiting.pop(key, None)
                    function(model)

                self._pending.setdefault(key, []).append(run)
                return
        function(model)

    @property
    def metadata(self) -> sa.MetaData:
        """The SQLAlchemy MetaData holding every model's table."""
        for model in list(self._models.values()):
            if not model._meta.pending_relations:
                model._meta.table  # noqa: B018 -- builds the table on first use
        return self._metadata

    def register(self, model: type[Model]) -> None:
        """Add ``model``; a model redefined in the same module replaces the old."""
        key = model._meta.label_lower
        with self._lock:
            old = self._models.get(key)
            if old is not None:
                if (old.__module__, old.__qualname__) != (
                    model.__module__,
                    model.__qualname__,
                ):
                    raise FieldError(
                        f"Conflicting models {old.__module__}.{old.__qualname__} and"
                        f" {model.__module__}.{model.__qualname__}: both are"
                        f" {model._meta.label!r}. Rename one, or give it another"
                        " Meta.app_label."
                    )
                old_table = old._meta._table
                if old_table is not None and old_table.name in self._metadata.tables:
                    self._metadata.remove(old_table)
                del self._models[key]
            self._models[key] = model

    def resolve_pending(self, model: type[Model]) -> None:
        """Run the callbacks waiting for ``model`` (after its class_prepared)."""
        with self._lock:
            waiting = self._pending.pop(model._meta.label_lower, [])
        for callback in waiting:
            callback(model)

    def lazy(self, label: str, callback: cabc.Callable[[type[Model]], None]) -> None:
        """Call ``callback(model)`` once the model ``label`` exists (maybe now)."""
        key = label.lower()
        with self._lock:
            model = self._models.get(key)
            if model is None:
                self._pending.setdefault(key, []).append(callback)
                return
        callback(model)

    def get_models(
        self, app_label: str | None = None, include_proxies: bool = False
    ) -> list[type[Model]]:
        """Return the models (auto-created through models included) in order.

        :param include_proxies: also return proxy models (which have no
            table of their own).
        """
        models = list(self._models.values())
        if app_label is not None:
            models = [m for m in models if m._meta.app_label == app_label]
        if not include_proxies:
            models = [m for m in models if not m._meta.proxy]
        return models

    def get_model(self, label: str, model_name: str | None = None) -> type[Model]:
        """Return the model ``"app_label.ModelName"`` (model name case-insensitive).

        :raises LookupError: no such model.
        """
        if model_name is not None:
            label = f"{label}.{model_name}"
        app_label, _, name = label.rpartition(".")
        key = f"{app_label}.{name.lower()}"
        try:
            return self._models[key]
        except KeyError:
            raise LookupError(
                f"No model {label!r}; known models: {self._known()}."
            ) from None

    def unregister(self, model: type[Model]) -> None:
        """Forget ``model`` (tests that define throw-away models use this)."""
        with self._lock:
            if self._models.get(model._meta.label_lower) is model:
                del self._models[model._meta.label_lower]
                table = model._meta._table
                if table is not None and table.name in self._metadata.tables:
                    self._metadata.remove(table)


registry = Registry()
"""The model registry: ``get_models()``, ``get_model()``, ``metadata``."""


class Options:
    """The ``_meta`` of a model: its fields, table and naming."""

    def __init__(self, meta: t.Any, model: type[Model]) -> None:
        self.model = model
        self.object_name = model.__name__
        """The class name."""
        self.model_name = model.__name__.lower()
        """The lower-case class name."""
        self.abstract: bool = bool(vars(meta).get("abstract")) if meta else False
        self.app_label: str = getattr(meta, "app_label", None) or _app_label_for(
            model.__module__
        )
        self.db_table: str = (
            getattr(meta, "db_table", None) or f"{self.app_label}_{self.model_name}"
        )
        self.ordering: list[str] = list(getattr(meta, "ordering", None) or [])
        self.unique_together: list[tuple[str, ...]] = [
            tuple(group) for group in _normalize_together(meta)
        ]
        self.indexes: list[t.Any] = list(getattr(meta, "indexes", None) or [])
        self.constraints: list[t.Any] = list(getattr(meta, "constraints", None) or [])
        self.auto_created: bool = bool(getattr(meta, "auto_created", False))
        """True for the automatic through model of a ManyToManyField."""
        self.verbose_name: str = getattr(meta, "verbose_name", None) or self.model_name
        self.fields: list[_fields.Field] = []
        """The concrete fields, primary key first."""
        self.many_to_many: list[t.Any] = []
        """The ManyToManyFields declared on this model."""
        self.related_objects: list[ForeignObjectRel] = []
        """Reverse relations: foreign keys and many-to-many fields pointing here."""
        self.pk: _fields.Field | t.Any = None
        """The primary key field."""
        self.pending_relations: set[str] = set()
        self.proxy: bool = bool(vars(meta).get("proxy")) if meta else False
        """True for a proxy model: the table of its concrete model, its own class."""
        self.proxy_for_model: type[Model] | None = None
        """The model a proxy model stands for (maybe itself a proxy)."""
        self.concrete_model: type[Model] = model
        """The model whose table holds the rows (the model itself, unless proxy)."""
        self.proxies: list[type[Model]] = []
        """The proxy models of this model."""
        self._table: sa.Table | None = None
        self._reset_caches()
        if meta is not None:
            unknown = sorted(
                name
                for name in vars(meta)
                if not name.startswith("_") and name not in _META_OPTIONS
            )
            if unknown:
                raise FieldError(
                    f"{model.__name__}.Meta has unknown option(s) {', '.join(unknown)};"
                    f" valid: {', '.join(sorted(_META_OPTIONS))}."
                )

    def __repr__(self) -> str:
        return f"<Options for {self.object_name}>"

    @property
    def label(self) -> str:
        """``"app_label.ClassName"``."""
        return f"{self.app_label}.{self.object_name}"

    @property
    def label_lower(self) -> str:
        """``"app_label.modelname"``."""
        return f"{self.app_label}.{self.model_name}"

    @property
    def concrete_fields(self) -> list[_fields.Field]:
        """The same as :attr:`fields`."""
        return self.fields

    def add_field(self, field: _fields.Field) -> None:
        """Add ``field`` (called by ``Field.contribute_to_class``)."""
        if field.many_to_many:
            self.many_to_many.append(field)
        elif field.primary_key:
            if self.pk is not None:
                raise FieldError(
                    f"{self.object_name} has two primary keys: {self.pk.name!r} and"
                    f" {field.name!r}."
                )
            self.pk = field
            self.fields.insert(0, field)
        else:
            self.fields.append(field)
        self._reset_caches()

    def _reset_caches(self) -> None:
        for proxy in getattr(self, "proxies", ()):
            proxy._meta._reset_caches()
        self._field_map: dict[str, t.Any] | None = None
        self._sql_cache: dict[t.Hashable, t.Any] = {}
        self._query_cache: dict[t.Hashable, t.Any] = {}
        self._path_cache: dict[str, t.Any] = {}
        self._default_ordering: tuple[t.Any, ...] | None = None
        self._saver: _Saver | None = None
        self._init_cache: tuple[t.Any, ...] | None = None

    @property
    def field_map(self) -> dict[str, t.Any]:
        """Field lookup by name and attname (reverse relations by query name)."""
        if self._field_map is None:
            found: dict[str, t.Any] = {}
            for rel in self.related_objects:
                found[rel.query_name] = rel
            for field in [*self.fields, *self.many_to_many]:
                found[field.attname] = field
                found[field.name] = field
            self._field_map = found
        return self._field_map

    def get_field(self, name: str) -> t.Any:
        """Return the field called ``name`` (reverse relations included).

        :raises FieldError: no such field; the message lists the valid names.
        """
        try:
            return self.field_map[name]
        except KeyError:
            raise FieldError(
                f"{self.object_name} has no field named {name!r}. Choices are:"
                f" {', '.join(self.field_names())}."
            ) from None

    def field_names(self) -> list[str]:
        """Return every name usable in queries, sorted (hidden relations left out)."""
        names = {f.name for f in self.fields} | {f.name for f in self.many_to_many}
        names |= {rel.query_name for rel in self.related_objects if not rel.hidden}
        return sorted(names | {"pk"})

    @property
    def table(self) -> sa.Table:
        """The SQLAlchemy Table of the model, on ``registry.metadata``."""
        if self._table is None:
            if self.proxy:
                return self.concrete_model._meta.table
            # NOTE: the threads of a gthread worker may run a model's first
            # queries at once, and building the table changes the shared
            # MetaData: one builds it (framework loadtest found the race).
            with registry._lock:
                if self._table is None:
                    self._table = self._build_table()
        return self._table

    def _setup_proxy(self, parent: type[Model]) -> None:
        """Share the fields, table and relations of the model ``parent``."""
        base = parent._meta
        self.proxy_for_model = parent
        self.concrete_model = base.concrete_model
        self.db_table = base.db_table
        self.fields = base.fields
        self.many_to_many = base.many_to_many
        self.related_objects = base.related_objects
        self.pk = base.pk
        self.pending_relations = base.pending_relations
        if not self.ordering:
            self.ordering = list(base.ordering)
        base.proxies.append(self.model)
        self._reset_caches()

    def _build_table(self) -> sa.Table:
        if self.pending_relations:
            raise FieldError(
                f"{self.label} refers to {', '.join(sorted(self.pending_relations))},"
                " which is not defined yet; define or import that model first."
            )
        metadata = registry._metadata
        if self.db_table in metadata.tables:
            metadata.remove(metadata.tables[self.db_table])
        args: list[t.Any] = [field.sa_column() for field in self.fields]
        by_name = {f.name: f for f in self.fields}
        for group in self.unique_together:
            args.append(
                sa.UniqueConstraint(
                    *(by_name[name].column for name in group),
                    name=_constraint_name(self.db_table, group, "uniq"),
                )
            )
        for item in [*self.constraints, *self.indexes]:
            args.append(item.to_sa(self))
        # SQLite reuses the largest deleted rowid without AUTOINCREMENT: a
        # deleted row's URL (and audit trail) would name the next row.
        autoincrement = isinstance(self.pk, _fields.AutoField)
        return sa.Table(
            self.db_table, metadata, *args, sqlite_autoincrement=autoincrement
        )

    # Hot-path caches --------------------------------------------------------

    def init_cache(self) -> tuple[t.Any, ...]:
        """Return the data ``Model.__init__`` uses, built once."""
        cache = self._init_cache
        if cache is None:
            consts: dict[str, t.Any] = {}
            callables: list[tuple[str, str, t.Any]] = []
            for field in self.fields:
                default = field.default
                if callable(default):
                    consts[field.attname] = None
                    callables.append((field.attname, field.name, default))
                else:
                    consts[field.attname] = (
                        field.implicit_default()
                        if default is _fields.NOT_PROVIDED
                        else default
                    )
            attnames = frozenset(f.attname for f in self.fields)
            positional = tuple(f.attname for f in self.fields)
            cache = (consts, tuple(callables), attnames, positional)
            self._init_cache = cache
        return cache


def _normalize_together(meta: t.Any) -> list[t.Any]:
    value = getattr(meta, "unique_together", None) or []
    if value and isinstance(value[0], str):
        return [value]
    return list(value)


def _constraint_name(table: str, columns: cabc.Iterable[str], suffix: str) -> str:
    name = f"{table}_{'_'.join(columns)}_{suffix}"
    if len(name) > 60:
        import hashlib

        digest = hashlib.sha1(name.encode()).hexdigest()[:8]
        name = f"{name[:50]}_{digest}"
    return name


def _app_label_for(module: str) -> str:
    parts = module.split(".")
    if len(parts) >= 2 and parts[-1] == "models":
        return parts[-2]
    return parts[-1]


class ModelState:
    """Per-instance bookkeeping: whether it is unsaved and which database it is in."""

    __slots__ = ("adding", "db", "fields_cache")

    def __init__(self, adding: bool = True, db: str | None = None) -> None:
        self.adding = adding
        """True until the instance is saved or loaded."""
        self.db = db
        """The alias of the database the instance came from or went to."""
        self.fields_cache: dict[str, t.Any] = {}
        """Related objects fetched through forward foreign keys."""

    def __reduce__(self) -> tuple[t.Any, ...]:
        return (ModelState, (self.adding, self.db))


class ModelBase(type):
    """Metaclass of :class:`Model`: builds ``_meta`` and registers the class."""

    def __new__(
        mcs,
        name: str,
        bases: tuple[type, ...],
        attrs: dict[str, t.Any],
        **kwargs: t.Any,
    ) -> ModelBase:
        parents: list[t.Any] = [b for b in bases if isinstance(b, ModelBase)]
        if not parents:
            return super().__new__(mcs, name, bases, attrs, **kwargs)
        meta = attrs.pop("Meta", None)
        contributable = {
            key: value
            for key, value in attrs.items()
            if not isinstance(value, type) and hasattr(value, "contribute_to_class")
        }
        plain = {k: v for k, v in attrs.items() if k not in contributable}
        cls = t.cast(type["Model"], super().__new__(mcs, name, bases, plain, **kwargs))
        if meta is None:
            meta = _inherited_meta(parents)
        cls._meta = Options(meta, cls)
        module = attrs.get("__module__", "")
        if not cls._meta.abstract:
            cls.DoesNotExist = _subclass_exception(  # type: ignore[assignment]
                "DoesNotExist", parents, ObjectDoesNotExist, cls, module
            )
            cls.MultipleObjectsReturned = _subclass_exception(  # type: ignore[assignment]
                "MultipleObjectsReturned", parents, MultipleObjectsReturned, cls, module
            )
        if cls._meta.proxy:
            _check_proxy(cls, meta, parents, contributable)
        for parent in parents:
            if parent is Model or cls._meta.proxy:
                continue
            if not parent._meta.abstract:
                raise FieldError(
                    f"{name} subclasses the concrete model {parent.__name__}:"
                    " multi-table inheritance is not supported. Make"
                    f" {parent.__name__} abstract (Meta.abstract = True), give"
                    f" {name} a OneToOneField to {parent.__name__}, or make it a"
                    " proxy model (Meta.proxy = True) if it adds no fields."
                )
            for field in [*parent._meta.fields, *parent._meta.many_to_many]:
                if field.auto_created or field.name in contributable:
                    continue
                copy.copy(field).contribute_to_class(cls, field.name)
        has_manager = False
        for key, value in contributable.items():
            if key == "pk":
                raise FieldError(f"{name}: 'pk' is reserved; name the field 'id'.")
            if isinstance(value, _fields.Field):
                value.check_definition()
            else:
                has_manager = True
            value.contribute_to_class(cls, key)
        if cls._meta.abstract:
            if meta is not None:
                cls.Meta = meta  # type: ignore[attr-defined]
            return cls
        _prepare(cls, has_manager)
        return cls


def _check_proxy(
    cls: type[Model],
    meta: t.Any,
    parents: list[t.Any],
    contributable: dict[str, t.Any],
) -> None:
    concrete = [p for p in parents if p is not Model and not p._meta.abstract]
    if len(concrete) != 1:
        raise FieldError(
            f"Proxy model {cls.__name__} needs exactly one non-abstract model"
            f" base class; it has {len(concrete)}."
        )
    fields = sorted(k for k, v in contributable.items() if isinstance(v, _fields.Field))
    if fields:
        raise FieldError(
            f"Proxy model {cls.__name__} declares the field(s) {', '.join(fields)};"
            " a proxy uses its model's table and cannot add fields."
        )
    for option in ("db_table", "abstract"):
        if option in vars(meta):
            raise FieldError(f"Proxy model {cls.__name__} cannot set Meta.{option}.")
    cls._meta._setup_proxy(concrete[0])


def _inherited_meta(parents: list[ModelBase]) -> t.Any:
    for parent in parents:
        options = getattr(parent, "_meta", None)
        if options is not None and options.abstract:
            inherited = type("Meta", (), {})
            if options.ordering:
                inherited.ordering = list(options.ordering)  # type: ignore[attr-defined]
            return inherited
    return None


def _subclass_exception(
    name: str,
    parents: list[ModelBase],
    base: type[Exception],
    cls: type,
    module: str,
) -> type[Exception]:
    bases = tuple(
        getattr(parent, name)
        for parent in parents
        if hasattr(parent, name) and not parent._meta.abstract  # type: ignore[attr-defined]
    ) or (base,)
    return type(
        name,
        bases,
        {"__module__": module, "__qualname__": f"{cls.__qualname__}.{name}"},
    )


def _prepare(cls: type[Model], has_manager: bool) -> None:
    from .query import Manager

    opts = cls._meta
    if opts.pk is None:
        auto = _fields.AutoField(primary_key=True)
        auto.auto_created = True
        auto.contribute_to_class(cls, "id")
    if not has_manager and "objects" not in cls.__dict__:
        Manager[t.Any]().contribute_to_class(cls, "objects")
    names = [f.name for f in opts.fields] + [f.name for f in opts.many_to_many]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise FieldError(f"{cls.__name__} defines {', '.join(duplicates)} twice.")
    registry.register(cls)
    signals.class_prepared.send(sender=cls)
    registry.resolve_pending(cls)


class _PKDescriptor:
    """``instance.pk``: the primary key value, whatever the field is called."""

    def __get__(self, instance: Model | None, owner: type) -> t.Any:
        if instance is None:
            return self
        return instance.__dict__[instance._meta.pk.attname]

    def __set__(self, instance: Model, value: t.Any) -> None:
        instance.__dict__[instance._meta.pk.attname] = value


class Model(metaclass=ModelBase):
    """Base class of every model.

    Keyword arguments set fields by name (``author=obj`` or ``author_id=3``);
    positional arguments set fields in :attr:`Options.fields` order.
    """

    _meta: t.ClassVar[Options]
    objects: t.ClassVar[Manager[t.Any]]
    DoesNotExist: t.ClassVar[type[ObjectDoesNotExist]]
    MultipleObjectsReturned: t.ClassVar[type[MultipleObjectsReturned]]
    _state: ModelState

    pk = _PKDescriptor()

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        cls = self.__class__
        # PERF: the signal check is an attribute test when nobody listens.
        if _pre_init.connected:
            _pre_init.send(sender=cls, args=args, kwargs=kwargs)
        consts, callables, attnames, positional = (
            cls._meta._init_cache or cls._meta.init_cache()
        )
        d = self.__dict__
        d.update(consts)
        d["_state"] = ModelState()
        if args:
            if len(args) > len(positional):
                raise IndexError(
                    f"{cls.__name__}() takes at most {len(positional)} positional"
                    f" values, got {len(args)}."
                )
            d.update(zip(positional, args, strict=False))
        for attname, name, default in callables:
            if attname not in kwargs and name not in kwargs:
                d[attname] = default()
        if kwargs:
            if kwargs.keys() <= attnames:
                d.update(kwargs)
            else:
                for key, value in kwargs.items():
                    if key in attnames:
                        d[key] = value
                    else:
                        self._set_named(key, value)
        if _post_init.connected:
            _post_init.send(sender=cls, instance=self)

    def _set_named(self, key: str, value: t.Any) -> None:
        cls = self.__class__
        if key == "pk":
            self.__dict__[cls._meta.pk.attname] = value
            return
        field = cls._meta.field_map.get(key)
        if field is not None and field.is_relation and not field.many_to_many:
            setattr(self, key, value)
            return
        if isinstance(getattr(cls, key, None), property):
            setattr(self, key, value)
            return
        if field is not None and field.many_to_many:
            raise TypeError(
                f"{cls.__name__}() cannot set the many-to-many field {key!r}; save"
                f" the instance, then use instance.{key}.set(...)."
            )
        raise TypeError(
            f"{cls.__name__}() got an unexpected keyword argument {key!r}. Fields:"
            f" {', '.join(f.name for f in cls._meta.fields)}."
        )

    @classmethod
    def from_db(cls, db: str, values: cabc.Sequence[t.Any]) -> t.Any:
        """Build an instance from a row (values in :attr:`Options.fields` order)."""
        new = cls.__new__(cls)
        if _pre_init.connected:
            _pre_init.send(sender=cls, args=tuple(values), kwargs={})
        d = new.__dict__
        d.update(zip(cls._meta.init_cache()[3], values, strict=True))
        d["_state"] = ModelState(False, db)
        if _post_init.connected:
            _post_init.send(sender=cls, instance=new)
        return new

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {self}>"

    def __str__(self) -> str:
        return f"{type(self).__name__} object ({self.pk})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Model):
            return NotImplemented
        if (
            type(self) is not type(other)
            and self._meta.concrete_model is not other._meta.concrete_model
        ):
            return False
        if self.pk is None:
            return self is other
        return bool(self.pk == other.pk)

    def __hash__(self) -> int:
        if self.pk is None:
            raise TypeError("Model instances without a primary key are unhashable.")
        return hash((self._meta.concrete_model, self.pk))

    def __getstate__(self) -> dict[str, t.Any]:
        state = dict(self.__dict__)
        state["_state"] = ModelState(self._state.adding, self._state.db)
        return state

    # Saving -------------------------------------------------------------------

    def save(
        self,
        using: str | None = None,
        update_fields: cabc.Iterable[str] | None = None,
        raw: bool = False,
        force_insert: bool = False,
    ) -> None:
        """Insert or update the row, sending ``pre_save`` and ``post_save``.

        :param using: the database alias; by default the instance's or
            ``"default"``.
        :param update_fields: save only these fields (an UPDATE, never an insert).
        :param raw: save the values exactly as given, primary key included
            (fixture loading); receivers see ``raw=True``.
        :param force_insert: always INSERT.
        :raises ValidationError: a value cannot be saved; nothing is written.
        """
        cls = self.__class__
        meta = cls._meta
        d = self.__dict__
        state = d["_state"]
        alias = using or state.db or DEFAULT_DB_ALIAS
        fields_set: frozenset[str] | None = None
        if update_fields is not None:
            fields_set = _check_update_fields(meta, update_fields)
            if not fields_set:
                return
        elif (
            not state.adding
            and not d.keys() >= (meta._init_cache or meta.init_cache())[2]
        ):
            # Deferred fields (defer()/only()): save the loaded ones, as Django.
            fields_set = self._loaded_update_fields(alias, force_insert)
        if _pre_save.connected:
            _pre_save.send(
                sender=cls,
                instance=self,
                raw=raw,
                using=alias,
                update_fields=fields_set,
            )
        if state.fields_cache:
            self._prepare_related()
        saver = meta._saver or _saver(meta)
        try:
            # PERF: this thread's wrapper without the handler's method call.
            conn = connections._local.wrappers[alias]
        except (AttributeError, KeyError):
            conn = connections[alias]
        pk_value = d[saver.pk_attname]
        if pk_value is None and fields_set is not None:
            raise ValueError(
                f"Cannot save {cls.__name__} with update_fields before it has a"
                " primary key; save it once without update_fields."
            )
        if pk_value is None:
            # PERF: the common insert goes straight to the generated function.
            inserter = saver.plain_inserters.get(conn.vendor)
            if inserter is None:
                inserter = saver._build_inserter(conn, not saver.auto_pk)
                saver.plain_inserters[conn.vendor] = inserter
            inserter(self, d, conn, raw)
            created = True
        elif force_insert or (state.adding and saver.pk_has_default):
            saver.insert(self, conn, raw)
            created = True
        elif not saver.update(self, conn, fields_set, raw):
            if fields_set is not None:
                raise IntegrityError(
                    f"Cannot save {cls.__name__} with update_fields: no row has"
                    f" primary key {pk_value!r}."
                )
            saver.insert(self, conn, raw)
            created = True
        else:
            created = False
        state.adding = False
        state.db = alias
        if _post_save.connected:
            _post_save.send(
                sender=cls,
                instance=self,
                raw=raw,
                using=alias,
                update_fields=fields_set,
                created=created,
            )

    save.alters_data = True  # type: ignore[attr-defined]

    def _loaded_update_fields(
        self, alias: str, force_insert: bool
    ) -> frozenset[str] | None:
        deferred = self.get_deferred_fields()
        if force_insert or alias != self._state.db:
            for attname in deferred:
                getattr(self, attname)  # loads it
            return None
        pk = self._meta.pk
        return (
            frozenset(
                f.attname
                for f in self._meta.fields
                if f is not pk and f.attname not in deferred
            )
            or None
        )

    def get_deferred_fields(self) -> set[str]:
        """Return the attnames of the fields not loaded yet (``defer()``/``only()``)."""
        data = self.__dict__
        return {f.attname for f in self._meta.fields if f.attname not in data}

    def _prepare_related(self) -> None:
        cache = self._state.fields_cache
        if not cache:
            return
        for name, obj in cache.items():
            if obj is None:
                continue
            field = self._meta.field_map[name]
            if obj.pk is None:
                raise ValueError(
                    f"save() prohibited: {type(self).__name__}.{name} refers to an"
                    f" unsaved {type(obj).__name__}; save it first."
                )
            if self.__dict__.get(field.attname) is None:
                self.__dict__[field.attname] = getattr(obj, field.target_field.attname)

    def clean_fields(self, exclude: cabc.Iterable[str] = ()) -> None:
        """Check every value as ``save()`` does.

        :raises ValidationError: listing every bad value by field name.
        """
        saver = _saver(self._meta)
        # auto_now fields get their value when saved.
        unset = {
            f.name for f in saver.pre_save_fields if self.__dict__[f.attname] is None
        }
        saver.clean(self, self._meta.fields, frozenset(exclude) | unset)

    def full_clean(self) -> None:
        """Check every value as ``save()`` does (alias of :meth:`clean_fields`)."""
        self.clean_fields()

    def delete(self, using: str | None = None) -> tuple[int, dict[str, int]]:
        """Delete the row and, by ``on_delete``, its dependants.

        Sends ``pre_delete`` for every instance before any row goes and
        ``post_delete`` for each afterwards, with ``origin=self``. A row that
        is already gone (another request deleted it since this instance was
        loaded) gets neither signal and counts 0: ``delete()[0]`` says
        whether this call really deleted it.

        :returns: the number of rows deleted and a count per model label.
        :raises ProtectedError: a PROTECT foreign key blocks it; nothing goes.
        """
        cls = type(self)
        meta = cls._meta
        pk = self.__dict__[meta.pk.attname]
        if pk is None:
            raise ValueError(
                f"{cls.__name__} object can't be deleted because its"
                f" {meta.pk.attname} attribute is None."
            )
        alias = using or self._state.db or DEFAULT_DB_ALIAS
        if not meta.related_objects and not (
            (_pre_delete.connected and _pre_delete.has_listeners(cls))
            or (_post_delete.connected and _post_delete.has_listeners(cls))
        ):
            # PERF: nothing can refer to this row and nobody listens: one
            # cached DELETE, no collector, no transaction.
            count = _delete_pks(cls, connections[alias], [pk])
            self.__dict__[meta.pk.attname] = None
            self._state.adding = True
            return count, ({meta.label: count} if count else {})
        from .related import Collector

        collector = Collector(alias, origin=self)
        collector.collect([self])
        return collector.delete()

    delete.alters_data = True  # type: ignore[attr-defined]

    def refresh_from_db(
        self, using: str | None = None, fields: cabc.Iterable[str] | None = None
    ) -> None:
        """Reload the fields from the database (one query).

        :param fields: reload only these (names or attnames); by default every
            loaded field (deferred ones stay deferred, as in Django). Empty:
            nothing to reload, no query.
        """
        if fields is not None:
            fields = list(fields)
            if not fields:
                return
        cls = type(self)
        meta = cls._meta
        alias = using or self._state.db or DEFAULT_DB_ALIAS
        from .query import QuerySet

        if fields is None and not self.get_deferred_fields():
            fresh = QuerySet(cls, alias).get(pk=self.pk)
            for field in meta.fields:
                self.__dict__[field.attname] = fresh.__dict__[field.attname]
            self._state.fields_cache.clear()
            self._state.db = alias
            return
        if fields is None:
            names = [f.attname for f in meta.fields if f.attname in self.__dict__]
        else:
            names = [meta.get_field(name).attname for name in fields]
        fresh = QuerySet(cls, alias).only(*names).get(pk=self.pk)
        for name in names:
            self.__dict__[name] = fresh.__dict__[name]
            field = meta.get_field(name)
            self._state.fields_cache.pop(field.name, None)
        self._state.db = alias
