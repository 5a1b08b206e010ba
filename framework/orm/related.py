"""Relations: ForeignKey, ManyToManyField, their accessors, and cascading deletes.

``ForeignKey(Author, on_delete=CASCADE)`` on ``Book`` gives ``book.author``
(fetched once and cached), ``book.author_id``, and the reverse manager
``author.book_set`` (or ``related_name``). ``ManyToManyField`` gives managers
on both sides with ``add``/``remove``/``clear``/``set``, each sending
``m2m_changed`` with the through model as sender.
"""

from __future__ import annotations

import collections.abc as cabc
import contextlib
import typing as t

import sqlalchemy as sa

from framework import signals

from ..dispatch import Sentinel
from ._compiler import Q
from ._compiler import _Path
from .bulk import delete_pks
from .bulk import insert_ignoring_conflicts
from .bulk import lock_existing
from .bulk import raw_delete
from .db import DEFAULT_DB_ALIAS
from .db import compile_with_params
from .db import connections
from .exceptions import FieldError
from .exceptions import ProtectedError
from .exceptions import RestrictedError
from .fields import BigAutoField
from .fields import Field
from .models import Model
from .models import ModelBase
from .models import registry
from .query import Manager
from .query import QuerySet
from .related_loading import forget_prefetched
from .related_loading import prefetched
from .transaction import atomic

__all__ = [
    "CASCADE",
    "DO_NOTHING",
    "PROTECT",
    "RESTRICT",
    "SET",
    "SET_DEFAULT",
    "SET_NULL",
    "Collector",
    "ForeignKey",
    "ForeignObjectRel",
    "ManyToManyField",
    "ManyToManyRel",
    "OneToOneField",
    "OneToOneRel",
]


class _OnDelete:
    """An ``on_delete`` behaviour; the built-in ones are compared by identity."""

    __slots__ = ("name", "value")

    def __init__(self, name: str, value: t.Any = None) -> None:
        self.name = name
        self.value = value

    def __repr__(self) -> str:
        if self.name == "SET":
            return f"SET({self.value!r})"
        return self.name

    def value_for(self, field: ForeignKey) -> t.Any:
        """Return the key the referring rows get (SET_NULL, SET, SET_DEFAULT)."""
        if self is SET_DEFAULT:
            value = field.get_default()
        elif self.name == "SET":
            value = self.value() if callable(self.value) else self.value
        else:
            return None
        if isinstance(value, Model):
            value = value.__dict__[field.target_field.attname]
        return value


CASCADE: t.Final = _OnDelete("CASCADE")
"""Delete the rows that refer to a deleted row."""
PROTECT: t.Final = _OnDelete("PROTECT")
"""Refuse to delete a row that is referred to (:class:`ProtectedError`)."""
RESTRICT: t.Final = _OnDelete("RESTRICT")
"""Like PROTECT, unless the referring rows are deleted by the same cascade."""
SET_NULL: t.Final = _OnDelete("SET_NULL")
"""Set the referring foreign keys to NULL (needs ``null=True``)."""
SET_DEFAULT: t.Final = _OnDelete("SET_DEFAULT")
"""Set the referring foreign keys to the field's default (needs a default)."""
DO_NOTHING: t.Final = _OnDelete("DO_NOTHING")
"""Leave referring rows alone (the database constraint may then refuse)."""


def SET(value: t.Any) -> t.Any:
    """Return an ``on_delete`` that sets the referring keys to ``value``.

    :param value: an instance, a key, or a callable returning one, called
        once per deletion.
    """
    return _OnDelete("SET", value)


_ON_DELETE = (CASCADE, PROTECT, RESTRICT, SET_NULL, SET_DEFAULT, DO_NOTHING)


def _resolve_label(reference: t.Any, model: type[Model]) -> str:
    if isinstance(reference, ModelBase):
        return t.cast("type[Model]", reference)._meta.label_lower
    if not isinstance(reference, str) or not reference:
        raise FieldError(
            f"{model.__name__}: a relation needs a model class or a name such as"
            f" 'Author' or 'app_label.Author', got {reference!r}."
        )
    if reference == "self":
        return model._meta.label_lower
    if "." not in reference:
        return f"{model._meta.app_label}.{reference}".lower()
    return reference.lower()


def _format_related_name(related_name: str | None, cls: type[Model]) -> str | None:
    """Fill ``%(class)s`` and ``%(app_label)s`` (for fields of abstract models)."""
    if related_name is None or "%(" not in related_name:
        return related_name
    return related_name % {
        "class": cls.__name__.lower(),
        "app_label": cls._meta.app_label.lower(),
    }


class ForeignObjectRel:
    """The reverse side of a relation, living on the target model's ``_meta``.

    :param field: the ForeignKey or ManyToManyField.
    :param model: the model the relation points at.
    """

    is_relation: t.ClassVar[bool] = True
    many_to_one: t.ClassVar[bool] = False
    one_to_one: t.ClassVar[bool] = False
    many_to_many: t.ClassVar[bool] = False
    concrete: t.ClassVar[bool] = False
    primary_key: t.ClassVar[bool] = False

    def __init__(self, field: t.Any, model: type[Model]) -> None:
        self.field = field
        """The relation field on the other model."""
        self.model = model
        """The model this reverse relation lives on."""
        self.related_model: type[Model] = field.model
        """The model declaring the field."""
        self.hidden = bool(field.related_name and field.related_name.endswith("+"))
        source_name = field.model._meta.model_name
        self.accessor_name: str = field.related_name or f"{source_name}_set"
        """The attribute holding the reverse manager."""
        self.query_name: str = (
            field.related_query_name or field.related_name or source_name
        )
        """The name used in lookups spanning this relation."""
        self.name = self.query_name
        self.on_delete = getattr(field, "on_delete", None)

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__}: {self.related_model.__name__}.{self.field.name}>"
        )

    def subquery_plan(self) -> tuple[t.Any, t.Any, t.Any, tuple[t.Any, ...]]:
        """Return how a lookup spanning this relation becomes a subquery."""
        return self.related_model, self.field, self.field.target_field, ()


class OneToOneRel(ForeignObjectRel):
    """The reverse side of a OneToOneField: ``place.restaurant``, one instance."""

    one_to_one = True

    def __init__(self, field: t.Any, model: type[Model]) -> None:
        super().__init__(field, model)
        self.accessor_name = field.related_name or field.model._meta.model_name


class ManyToManyRel(ForeignObjectRel):
    """The reverse side of a ManyToManyField."""

    many_to_many = True

    def subquery_plan(self) -> tuple[t.Any, t.Any, t.Any, tuple[t.Any, ...]]:
        """Return how a lookup spanning this relation becomes a subquery."""
        field = self.field
        return field.through, field.target_fk, self.model._meta.pk, (field.source_fk,)


class ForeignKey(Field):
    """A many-to-one relation: the column holds the target's primary key.

    :param to: the target model, ``"self"``, ``"Model"`` or ``"app.Model"``.
    :param on_delete: CASCADE, PROTECT, RESTRICT, SET_NULL or DO_NOTHING.
    :param related_name: the reverse accessor (``"+"`` suffix: none).
    :param related_query_name: the name for lookups from the target.
    :param to_field: the target's field the key refers to (unique); its
        primary key by default.
    """

    is_relation = True
    many_to_one = True
    rel_class: t.ClassVar[type[ForeignObjectRel]] = ForeignObjectRel

    def __init__(
        self,
        to: t.Any,
        on_delete: t.Any,
        *,
        related_name: str | None = None,
        related_query_name: str | None = None,
        to_field: str | None = None,
        db_constraint: bool = True,
        **kwargs: t.Any,
    ) -> None:
        kwargs.setdefault("db_index", True)
        super().__init__(**kwargs)
        if not isinstance(on_delete, _OnDelete):
            raise FieldError(
                f"{type(self).__name__}(on_delete=...) must be one of CASCADE,"
                " PROTECT, RESTRICT, SET_NULL, SET_DEFAULT, SET(...) or DO_NOTHING"
                f" from framework.orm; got {on_delete!r}."
            )
        if on_delete is SET_NULL and not self.null:
            raise FieldError(
                f"{type(self).__name__}(on_delete=SET_NULL) needs null=True."
            )
        if on_delete is SET_DEFAULT and not self.has_default():
            raise FieldError(
                f"{type(self).__name__}(on_delete=SET_DEFAULT) needs a default."
            )
        self.to = to
        self.on_delete = on_delete
        self.related_name = related_name
        self.related_query_name = related_query_name
        self.db_constraint = db_constraint
        self.to_field = to_field
        self.related_model: type[Model] = t.cast("type[Model]", None)
        """The target model (once resolved)."""
        self.remote_field: ForeignObjectRel = t.cast(ForeignObjectRel, None)
        """The reverse relation object on the target."""

    def get_attname(self) -> str:
        """Return ``<name>_id``."""
        return f"{self.name}_id"

    @property
    def target_field(self) -> Field:
        """The target field the key refers to (``to_field``, else the primary key)."""
        if self.to_field is None:
            return self.related_model._meta.pk
        return t.cast(Field, self.related_model._meta.get_field(self.to_field))

    def contribute_to_class(self, cls: type[Model], name: str) -> None:
        """Add the field, its descriptor, and resolve the target lazily."""
        super().contribute_to_class(cls, name)
        if cls._meta.abstract:
            # Resolved on each concrete subclass (which gets a copy).
            return
        self.related_name = _format_related_name(self.related_name, cls)
        setattr(cls, name, ForwardManyToOneDescriptor(self))
        label = _resolve_label(self.to, cls)
        cls._meta.pending_relations.add(label)
        registry.lazy(label, lambda target: self._resolve(cls, label, target))

    def _resolve(self, cls: type[Model], label: str, target: type[Model]) -> None:
        self.related_model = target
        if self.to_field is not None:
            found = target._meta.field_map.get(self.to_field)
            if found is None or not found.concrete or not found.unique:
                raise FieldError(
                    f"{cls.__name__}.{self.name}: to_field={self.to_field!r} must"
                    f" name a unique field of {target.__name__}"
                    f" ({'not unique' if found is not None else 'no such field'})."
                )
        rel = self.rel_class(self, target)
        self.remote_field = rel
        target._meta.related_objects.append(rel)
        target._meta._reset_caches()
        if not rel.hidden:
            descriptor: t.Any = (
                ReverseOneToOneDescriptor(rel)
                if rel.one_to_one
                else ReverseManyToOneDescriptor(rel)
            )
            setattr(target, rel.accessor_name, descriptor)
        cls._meta.pending_relations.discard(label)
        cls._meta._reset_caches()

    def clean(self, value: t.Any) -> t.Any:
        """Check the raw key against the target's primary key field."""
        return self.target_field.clean(value)

    def can_hold(self, value: t.Any) -> bool:
        """Return whether the target's primary key can hold ``value``."""
        return self.target_field.can_hold(value)

    def _fast_check(self, var: str) -> str | None:
        """Check like the target's primary key."""
        return None if self.choices else self.target_field._fast_check(var)

    def db_converter(self, vendor: str) -> t.Any:
        """Convert like the target's primary key."""
        return self.target_field.db_converter(vendor)

    def python_converter(self, vendor: str) -> t.Any:
        """Convert like the target's primary key."""
        return self.target_field.python_converter(vendor)

    def get_db_prep_value(self, value: t.Any, vendor: str) -> t.Any:
        """Convert a key (or an instance) like the target's primary key."""
        from ._compiler import _pk_of

        target = self.target_field
        return target.get_db_prep_value(_pk_of(value, target), vendor)

    def to_python(self, value: t.Any) -> t.Any:
        """Turn a fixture's key into the Python key."""
        return self.target_field.to_python(value)

    def to_json(self, value: t.Any) -> t.Any:
        """Serialise the key like the target's primary key."""
        return self.target_field.to_json(value)

    def sa_type(self) -> t.Any:
        """Return the target primary key's column type."""
        target = self.target_field
        if isinstance(target, BigAutoField):
            # The key's SQLite variant only keeps it the rowid; a foreign key
            # column needs none.
            return sa.BigInteger()
        return target.sa_type()

    def sa_column(self) -> sa.Column[t.Any]:
        """Return the key column with a deferrable foreign key constraint."""
        target_meta = self.related_model._meta
        args: list[t.Any] = []
        if self.db_constraint:
            args.append(
                sa.ForeignKey(
                    f"{target_meta.db_table}.{self.target_field.column}",
                    deferrable=True,
                    initially="DEFERRED",
                )
            )
        return sa.Column(
            self.column,
            self.sa_type(),
            *args,
            nullable=self.null,
            unique=self.unique,
            index=self.db_index and not self.unique,
        )


class OneToOneField(ForeignKey):
    """A one-to-one relation: a unique foreign key.

    ``Restaurant.place = OneToOneField(Place, on_delete=CASCADE)`` gives
    ``restaurant.place`` and, on the target, ``place.restaurant`` (or
    ``related_name``): the one related instance, not a manager.
    """

    many_to_one = False
    one_to_one = True
    rel_class = OneToOneRel

    def __init__(self, to: t.Any, on_delete: t.Any, **kwargs: t.Any) -> None:
        kwargs["unique"] = True
        super().__init__(to, on_delete, **kwargs)


class ForwardManyToOneDescriptor:
    """``book.author``: the related instance, fetched once and cached.

    Reading an unset key of a field without ``null=True`` raises
    ``Book.author.RelatedObjectDoesNotExist`` (a subclass of the target's
    ``DoesNotExist`` and of ``AttributeError``), as in Django.
    """

    def __init__(self, field: ForeignKey) -> None:
        self.field = field

    @property
    def RelatedObjectDoesNotExist(self) -> type[Exception]:
        """The exception raised when there is no related instance."""
        return _related_does_not_exist(
            self.field.related_model, self.field.model, self.field.name
        )

    def __get__(self, instance: Model | None, owner: type) -> t.Any:
        if instance is None:
            return self
        field = self.field
        try:
            value = instance.__dict__[field.attname]
        except KeyError:  # deferred (only()/defer()): load it
            value = getattr(instance, field.attname)
        cache = instance._state.fields_cache
        cached = cache.get(field.name, _MISSING)
        if cached is not _MISSING and (
            (cached is None and value is None)
            or (
                cached is not None
                and cached.__dict__[field.target_field.attname] in (value, None)
            )
        ):
            return cached
        if value is None:
            if field.null:
                return None
            raise self.RelatedObjectDoesNotExist(
                f"{type(instance).__name__} has no {field.name}."
            )
        alias = instance._state.db or DEFAULT_DB_ALIAS
        # A plain queryset (Django's base manager): whatever the target's
        # managers are called or filter, the row the key names is found.
        rows = QuerySet(field.related_model, alias)
        if field.to_field is None:
            obj = rows.get(pk=value)
        else:
            obj = rows.get(**{field.to_field: value})
        cache[field.name] = obj
        if field.one_to_one and not field.remote_field.hidden:
            obj._state.fields_cache[field.remote_field.accessor_name] = instance
        return obj

    def __set__(self, instance: Model, value: t.Any) -> None:
        field = self.field
        if value is None:
            instance.__dict__[field.attname] = None
            instance._state.fields_cache[field.name] = None
            return
        if not isinstance(value, field.related_model):
            raise TypeError(
                f"{type(instance).__name__}.{field.name} must be a"
                f" {field.related_model.__name__} instance, got {value!r}."
                f" To set the key, assign {field.attname}."
            )
        instance.__dict__[field.attname] = value.__dict__[field.target_field.attname]
        instance._state.fields_cache[field.name] = value
        if field.one_to_one and not field.remote_field.hidden:
            value._state.fields_cache[field.remote_field.accessor_name] = instance


_DOES_NOT_EXIST: dict[tuple[type, type, str], type[Exception]] = {}


def _related_does_not_exist(
    target: type[Model], owner: t.Any, name: str
) -> type[Exception]:
    key = (target, owner, name)
    found = _DOES_NOT_EXIST.get(key)
    if found is None:
        found = type(
            "RelatedObjectDoesNotExist",
            (target.DoesNotExist, AttributeError),
            {
                "__module__": owner.__module__,
                "__qualname__": (
                    f"{owner.__qualname__}.{name}.RelatedObjectDoesNotExist"
                ),
            },
        )
        _DOES_NOT_EXIST[key] = found
    return found


class ReverseOneToOneDescriptor:
    """``place.restaurant``: the one instance whose one-to-one key points here.

    Raises ``Place.restaurant.RelatedObjectDoesNotExist`` (a subclass of
    ``Restaurant.DoesNotExist`` and ``AttributeError``) when there is none.
    Assigning an instance points its key here (save it to store that).
    """

    def __init__(self, rel: ForeignObjectRel) -> None:
        self.rel = rel

    @property
    def RelatedObjectDoesNotExist(self) -> type[Exception]:
        """The exception raised when there is no related instance."""
        return _related_does_not_exist(
            self.rel.related_model, self.rel.model, self.rel.accessor_name
        )

    def __get__(self, instance: Model | None, owner: type) -> t.Any:
        if instance is None:
            return self
        rel = self.rel
        cache = instance._state.fields_cache
        found = cache.get(rel.accessor_name, _MISSING)
        if found is _MISSING:
            key = instance.__dict__[rel.field.target_field.attname]
            found = None
            if key is not None:
                alias = instance._state.db or DEFAULT_DB_ALIAS
                found = (
                    QuerySet(rel.related_model, alias)
                    .filter(**{rel.field.attname: key})
                    .first()
                )
            if found is not None:
                found._state.fields_cache[rel.field.name] = instance
            cache[rel.accessor_name] = found
        if found is None:
            raise self.RelatedObjectDoesNotExist(
                f"{type(instance).__name__} has no {rel.accessor_name}."
            )
        return found

    def __set__(self, instance: Model, value: t.Any) -> None:
        rel = self.rel
        if value is None:
            instance._state.fields_cache[rel.accessor_name] = None
            return
        if not isinstance(value, rel.related_model):
            raise TypeError(
                f"{type(instance).__name__}.{rel.accessor_name} must be a"
                f" {rel.related_model.__name__} instance, got {value!r}."
            )
        setattr(value, rel.field.name, instance)
        instance._state.fields_cache[rel.accessor_name] = value


_MISSING: t.Final = Sentinel("_MISSING")


class ReverseManyToOneDescriptor:
    """``author.book_set``: a manager of the rows referring to the instance."""

    def __init__(self, rel: ForeignObjectRel) -> None:
        self.rel = rel

    def __get__(self, instance: Model | None, owner: type) -> t.Any:
        if instance is None:
            return self
        return RelatedManager(instance, self.rel)

    def __set__(self, instance: Model, value: t.Any) -> None:
        raise TypeError(
            f"Direct assignment to the reverse side of {self.rel!r} is not allowed;"
            f" use {self.rel.accessor_name}.set() instead."
        )


def _require_saved(instance: Model, what: str) -> None:
    if instance.pk is None:
        raise ValueError(
            f"{type(instance).__name__} instance needs a primary key before {what}"
            " can be used; save it first."
        )


class RelatedManager(Manager[t.Any]):
    """Manager of the instances whose foreign key points at one instance."""

    def __init__(self, instance: Model, rel: ForeignObjectRel) -> None:
        super().__init__()
        _require_saved(instance, f"the relation {rel.accessor_name!r}")
        self.instance = instance
        self.rel = rel
        self.field: ForeignKey = rel.field
        self.model = rel.related_model
        self.name = rel.accessor_name
        self._db = instance._state.db or DEFAULT_DB_ALIAS

    def get_queryset(self) -> QuerySet[t.Any]:
        """Return the related rows (the prefetched ones without a query)."""
        found = prefetched(self.instance, self.name)
        if found is not None:
            return _PrefetchedQuerySet(self.model, self._db, found, self._query)
        return self._query()

    def _query(self) -> QuerySet[t.Any]:
        return QuerySet(self.model, self._db).filter(**{self.field.name: self.instance})

    def create(self, **kwargs: t.Any) -> t.Any:
        """Create a related instance pointing at the owner."""
        forget_prefetched(self.instance, self.name)
        kwargs[self.field.name] = self.instance
        return QuerySet(self.model, self._db).create(**kwargs)

    def add(self, *objs: Model) -> None:
        """Point ``objs`` at the owner and save them."""
        forget_prefetched(self.instance, self.name)
        with atomic(using=self._db):
            for obj in objs:
                if not isinstance(obj, self.model):
                    raise TypeError(
                        f"{self.name}.add() expects {self.model.__name__}, got {obj!r}."
                    )
                setattr(obj, self.field.name, self.instance)
                obj.save(using=self._db)

    def remove(self, *objs: Model) -> None:
        """Set the foreign key of ``objs`` to NULL (needs ``null=True``)."""
        forget_prefetched(self.instance, self.name)
        self._check_nullable("remove")
        with atomic(using=self._db):
            for obj in objs:
                key = self.instance.__dict__[self.field.target_field.attname]
                if obj.__dict__.get(self.field.attname) != key:
                    raise ValueError(f"{obj!r} is not related to {self.instance!r}.")
                setattr(obj, self.field.name, None)
                obj.save(using=self._db)

    def clear(self) -> None:
        """Set the foreign key of every related row to NULL (needs ``null=True``)."""
        forget_prefetched(self.instance, self.name)
        self._check_nullable("clear")
        with atomic(using=self._db):
            for obj in self.get_queryset():
                setattr(obj, self.field.name, None)
                obj.save(using=self._db)

    def set(self, objs: cabc.Iterable[Model]) -> None:
        """Make ``objs`` exactly the related rows."""
        forget_prefetched(self.instance, self.name)
        objs = list(objs)
        with atomic(using=self._db):
            if self.field.null:
                keep = {obj.pk for obj in objs}
                self.remove(*[obj for obj in self.get_queryset() if obj.pk not in keep])
            self.add(*objs)

    def _check_nullable(self, action: str) -> None:
        if not self.field.null:
            raise ValueError(
                f"{self.name}.{action}() needs {self.model.__name__}.{self.field.name}"
                " to be null=True; delete the rows instead."
            )


class ManyToManyField(Field):
    """A many-to-many relation through an automatic or a custom model.

    :param to: the target model, ``"self"``, ``"Model"`` or ``"app.Model"``.
    :param through: a custom through model (or its name) with two foreign keys.
    :param through_fields: ``(source_fk_name, target_fk_name)`` on ``through``.
    :param related_name: the reverse accessor on the target.
    :param symmetrical: for a relation to ``"self"`` (where it defaults to
        True): ``a.friends.add(b)`` also makes ``a`` one of ``b.friends``,
        and there is no reverse accessor.
    """

    is_relation = True
    many_to_many = True
    concrete = False

    def __init__(
        self,
        to: t.Any,
        *,
        through: t.Any = None,
        through_fields: tuple[str, str] | None = None,
        related_name: str | None = None,
        related_query_name: str | None = None,
        symmetrical: bool | None = None,
        **kwargs: t.Any,
    ) -> None:
        super().__init__(**kwargs)
        if symmetrical is None:
            symmetrical = to == "self"
        self.symmetrical: bool = bool(symmetrical)
        """Whether links go both ways (relations to ``"self"`` only)."""
        self.to = to
        self.through_ref = through
        self.through_fields = through_fields
        self.related_name = related_name
        self.related_query_name = related_query_name
        self.related_model: type[Model] = t.cast("type[Model]", None)
        self.remote_field: ManyToManyRel = t.cast(ManyToManyRel, None)
        self.through: type[Model] = t.cast("type[Model]", None)
        """The through model (automatic or custom)."""
        self.source_fk: ForeignKey = t.cast(ForeignKey, None)
        self.target_fk: ForeignKey = t.cast(ForeignKey, None)

    @property
    def target_field(self) -> Field:
        """The target's primary key field."""
        return self.related_model._meta.pk

    def contribute_to_class(self, cls: type[Model], name: str) -> None:
        """Add the field and its descriptor; build the through model lazily."""
        super().contribute_to_class(cls, name)
        if cls._meta.abstract:
            return
        self.related_name = _format_related_name(self.related_name, cls)
        setattr(cls, name, ManyToManyDescriptor(self, reverse=False))
        label = _resolve_label(self.to, cls)
        if self.symmetrical:
            if label != cls._meta.label_lower:
                raise FieldError(
                    f"{cls.__name__}.{name}: symmetrical=True needs a relation to"
                    " 'self'."
                )
            # As in Django: the other side is the same accessor.
            self.related_name = f"{name}_rel_+"
        # The through model is built once both ends exist, after the source.
        registry.lazy(
            label,
            lambda target: registry.lazy(
                cls._meta.label_lower, lambda _: self._resolve_target(cls, target)
            ),
        )

    def _resolve_target(self, cls: type[Model], target: type[Model]) -> None:
        self.related_model = target
        if self.through_ref is None:
            self._set_through(cls, _create_through(self, cls, target))
        else:
            label = _resolve_label(self.through_ref, cls)
            registry.lazy(label, lambda through: self._set_through(cls, through))

    def _set_through(self, cls: type[Model], through: type[Model]) -> None:
        self.through = through
        fks = [f for f in through._meta.fields if isinstance(f, ForeignKey)]
        if self.through_fields:
            by_name = {f.name: f for f in fks}
            source, target = (by_name[name] for name in self.through_fields)
        else:
            sources = [
                f for f in fks if _resolve_label(f.to, through) == cls._meta.label_lower
            ]
            targets = [
                f
                for f in fks
                if _resolve_label(f.to, through) == self.related_model._meta.label_lower
            ]
            if cls is self.related_model and len(sources) == 2:
                source, target = sources
            elif len(sources) != 1 or len(targets) != 1:
                raise FieldError(
                    f"{cls.__name__}.{self.name}: the through model {through.__name__}"
                    f" needs exactly one ForeignKey to {cls.__name__} and one to"
                    f" {self.related_model.__name__}; use through_fields=(...)"
                    " to choose."
                )
            else:
                source, target = sources[0], targets[0]
        self.source_fk, self.target_fk = source, target
        rel = ManyToManyRel(self, self.related_model)
        self.remote_field = rel
        target_model = self.related_model
        target_model._meta.related_objects.append(rel)
        target_model._meta._reset_caches()
        if not rel.hidden:
            setattr(
                target_model,
                rel.accessor_name,
                ManyToManyDescriptor(self, reverse=True),
            )

    def sa_column(self) -> sa.Column[t.Any]:
        """Many-to-many fields have no column."""
        raise FieldError(f"{self!r} has no column; its rows live in the through table.")

    def value_from_object(self, obj: Model) -> t.Any:
        """Return the related primary keys (for dumpdata)."""
        return list(getattr(obj, self.name).values_list("pk", flat=True))

    def subquery_plan(self) -> tuple[t.Any, t.Any, t.Any, tuple[t.Any, ...]]:
        """Return how a lookup spanning this relation becomes a subquery."""
        return self.through, self.source_fk, self.model._meta.pk, (self.target_fk,)  # type: ignore[union-attr]


def _create_through(
    field: ManyToManyField, cls: type[Model], target: type[Model]
) -> type[Model]:
    name = f"{cls.__name__}_{field.name}"
    source_name = cls._meta.model_name
    target_name = target._meta.model_name
    if source_name == target_name:
        source_name, target_name = f"from_{source_name}", f"to_{target_name}"
    meta = type(
        "Meta",
        (),
        {
            "app_label": cls._meta.app_label,
            "db_table": f"{cls._meta.db_table}_{field.name}",
            "auto_created": True,
            "unique_together": [(source_name, target_name)],
        },
    )
    attrs = {
        "__module__": cls.__module__,
        "__qualname__": name,
        "Meta": meta,
        source_name: ForeignKey(cls, on_delete=CASCADE, related_name=f"{name}+"),
        target_name: ForeignKey(target, on_delete=CASCADE, related_name=f"{name}+"),
    }
    metaclass: t.Any = type(Model)
    return t.cast("type[Model]", metaclass(name, (Model,), attrs))


class ManyToManyDescriptor:
    """``pizza.toppings`` / ``topping.pizza_set``: a many-to-many manager."""

    def __init__(self, field: ManyToManyField, reverse: bool) -> None:
        self.field = field
        self.reverse = reverse

    @property
    def through(self) -> type[Model]:
        """The through model (``Pizza.toppings.through``)."""
        return self.field.through

    def __get__(self, instance: Model | None, owner: type) -> t.Any:
        if instance is None:
            return self
        return ManyRelatedManager(instance, self.field, self.reverse)

    def __set__(self, instance: Model, value: t.Any) -> None:
        raise TypeError(
            f"Direct assignment to {self.field.name!r} is not allowed; use"
            " .set(objs) instead."
        )


class ManyRelatedManager(Manager[t.Any]):
    """Manager of the instances linked to one instance through a through model."""

    def __init__(self, instance: Model, field: ManyToManyField, reverse: bool) -> None:
        super().__init__()
        _require_saved(instance, f"the many-to-many relation {field.name!r}")
        self.instance = instance
        self.field = field
        self.is_reverse = reverse
        self.through = field.through
        if reverse:
            self.model = t.cast("type[Model]", field.model)
            self.source_fk, self.target_fk = field.target_fk, field.source_fk
        else:
            self.model = field.related_model
            self.source_fk, self.target_fk = field.source_fk, field.target_fk
        self.name = field.remote_field.accessor_name if reverse else field.name
        self.symmetrical = field.symmetrical and not reverse
        self._db = instance._state.db or DEFAULT_DB_ALIAS

    def get_queryset(self) -> QuerySet[t.Any]:
        """Return the linked instances (the prefetched ones without a query)."""
        found = prefetched(self.instance, self.name)
        if found is not None:
            return _PrefetchedQuerySet(self.model, self._db, found, self._query)
        return self._query()

    def _query(self) -> QuerySet[t.Any]:
        qs: QuerySet[t.Any] = QuerySet(self.model, self._db)
        rel = _LinkStep(self.through, self.target_fk, self.source_fk, self.model)
        # The key names the relation and its direction: it is part of the
        # cache key of the compiled statement.
        direction = "reverse" if self.is_reverse else "forward"
        key = f"<{self.field.model.__name__}.{self.name} {direction}>"  # type: ignore[union-attr]
        path = _Path((rel,), self.source_fk.target_field, "exact", key)
        qs._where.append(("AND", False, [(path, self.instance.pk)]))
        return qs

    def _pks(self, objs: cabc.Iterable[t.Any]) -> set[t.Any]:
        pks = set()
        for obj in objs:
            if isinstance(obj, self.model):
                _require_saved(obj, f"{self.name}.add()/remove()")
                pks.add(obj.pk)
            elif hasattr(obj, "_meta"):
                raise TypeError(
                    f"{self.name} expects {self.model.__name__}, got {obj!r}."
                )
            else:
                try:
                    pks.add(self.model._meta.pk.clean(obj))
                except ValueError as exc:
                    raise TypeError(
                        f"{self.name} expects {self.model.__name__} instances or"
                        f" primary keys, got {obj!r}: {exc}"
                    ) from None
        return pks

    def _linked(self, pks: set[t.Any] | None) -> set[t.Any]:
        qs = self._links()
        if pks is not None:
            qs = qs.filter(**{f"{self.target_fk.attname}__in": list(pks)})
        return set(qs.values_list(self.target_fk.attname, flat=True))

    def _send(self, action: str, pk_set: set[t.Any] | None) -> None:
        if signals.m2m_changed.has_listeners(self.through):
            signals.m2m_changed.send(
                sender=self.through,
                instance=self.instance,
                action=action,
                reverse=self.is_reverse,
                model=self.model,
                pk_set=pk_set,
                using=self._db,
            )

    def _lock_owner(self, others: cabc.Iterable[t.Any] = ()) -> None:
        """Lock the instance's row (and, if symmetrical, the rows of ``others``).

        :param others: the keys at the other end of the links this call
            changes (symmetrical relations only).
        """
        # NOTE: concurrent writes to the links of one instance queue here
        # (PostgreSQL: FOR NO KEY UPDATE on the instance's row, held to the end
        # of the transaction; the weaker lock lets other transactions' foreign
        # key checks on the row through, which FOR UPDATE would deadlock
        # with); on SQLite BEGIN IMMEDIATE has queued them already. Reads then
        # see what the previous writer committed. A symmetrical link is two
        # rows, one written for each end: a.friends.add(b) and
        # b.friends.add(a) at once would each wait for the row the other
        # wrote first (a deadlock), so both ends are locked, in key order.
        if connections[self._db].vendor != "sqlite":
            keys = (
                {self.instance.pk, *others} if self.symmetrical else {self.instance.pk}
            )
            model = self.source_fk.related_model
            lock_existing(model, self._db, list(keys), no_key=True)

    def _linked_others(self) -> set[t.Any]:
        """Return the linked keys before locking (symmetrical relations on PostgreSQL).

        What ``clear()`` and ``set()`` unlink is known only once the rows are
        locked; the other ends linked now are locked with the instance (the
        read is repeated under the lock).
        """
        if not self.symmetrical or connections[self._db].vendor == "sqlite":
            return set()
        return self._linked(None)

    def _links(self) -> QuerySet[t.Any]:
        return QuerySet(self.through, self._db).filter(
            **{self.source_fk.attname: self.instance.pk}
        )

    def _unlink(self, pks: set[t.Any] | None) -> set[t.Any]:
        """Delete link rows (all, or those to ``pks``); return the targets unlinked."""
        links = self._links()
        if pks is not None:
            links = links.filter(**{f"{self.target_fk.attname}__in": list(pks)})
        conn = connections[self._db]
        meta = self.through._meta
        table = meta.table
        target = table.c[self.target_fk.column]
        _, _, where = links._pk_select(conn)
        stmt = table.delete().where(where).returning(target)
        sql, params = compile_with_params(stmt, conn.dialect)
        convert = self.target_fk.python_converter(conn.vendor)
        return {
            row[0] if convert is None else convert(row[0])
            for row in conn.execute(sql, params).fetchall()
        }

    def add(
        self, *objs: t.Any, through_defaults: dict[str, t.Any] | None = None
    ) -> None:
        """Link ``objs`` (instances or primary keys); linked ones are skipped.

        ``pre_add`` names the keys found unlinked, ``post_add`` those whose
        link this call really inserted: a link another transaction inserted
        meanwhile is skipped (``ON CONFLICT DO NOTHING``), never an error.
        Nothing at all (no query, no signal) happens when ``objs`` is empty.
        """
        if not objs:
            return
        forget_prefetched(self.instance, self.name)
        pks = self._pks(objs)
        with atomic(using=self._db):
            self._lock_owner(pks)
            new = pks - self._linked(pks)
            self._send("pre_add", new)
            added: set[t.Any] = set()
            if new:
                rows = [
                    self.through(
                        **{
                            self.source_fk.attname: self.instance.pk,
                            self.target_fk.attname: pk,
                            **(through_defaults or {}),
                        }
                    )
                    for pk in sorted(new, key=repr)
                ]
                added = set(
                    insert_ignoring_conflicts(
                        self.through, rows, connections[self._db], self.target_fk
                    )
                )
            if self.symmetrical:
                self._add_mirror(pks, through_defaults)
            self._send("post_add", added)

    def _add_mirror(
        self, pks: set[t.Any], through_defaults: dict[str, t.Any] | None
    ) -> None:
        """Link each of ``pks`` back to the instance (symmetrical relations).

        Silently, as in Django: the signals name the forward links only.
        """
        own = self.instance.pk
        rows = [
            self.through(
                **{
                    self.source_fk.attname: pk,
                    self.target_fk.attname: own,
                    **(through_defaults or {}),
                }
            )
            for pk in sorted(pks, key=repr)
        ]
        insert_ignoring_conflicts(
            self.through, rows, connections[self._db], self.source_fk
        )

    def _unlink_mirror(self, pks: set[t.Any] | None) -> None:
        """Delete the links back to the instance (all, or from ``pks``)."""
        links = QuerySet(self.through, self._db).filter(
            **{self.target_fk.attname: self.instance.pk}
        )
        if pks is not None:
            links = links.filter(**{f"{self.source_fk.attname}__in": list(pks)})
        raw_delete(links)

    def remove(self, *objs: t.Any) -> None:
        """Unlink ``objs``.

        ``pre_remove`` names the keys found linked, ``post_remove`` those
        whose link this call really deleted (``DELETE ... RETURNING``).
        Nothing at all (no query, no signal) happens when ``objs`` is empty.
        """
        if not objs:
            return
        forget_prefetched(self.instance, self.name)
        pks = self._pks(objs)
        with atomic(using=self._db):
            self._lock_owner(pks)
            gone = self._linked(pks)
            self._send("pre_remove", gone)
            removed = self._unlink(gone) if gone else set()
            if self.symmetrical and gone:
                self._unlink_mirror(gone)
            self._send("post_remove", removed)

    def clear(self) -> None:
        """Unlink everything.

        ``pk_set`` is None in ``pre_clear`` (as in Django) and, in
        ``post_clear``, the keys whose link this call really deleted.
        """
        forget_prefetched(self.instance, self.name)
        with atomic(using=self._db):
            self._lock_owner(self._linked_others())
            self._send("pre_clear", None)
            removed = self._unlink(None)
            if self.symmetrical:
                self._unlink_mirror(None)
            self._send("post_clear", removed)

    def set(
        self,
        objs: cabc.Iterable[t.Any],
        *,
        through_defaults: dict[str, t.Any] | None = None,
    ) -> None:
        """Make ``objs`` exactly the linked instances (remove, then add).

        Concurrent ``set()`` calls on one instance never mix: each waits
        for the one before to commit (see :meth:`add`), so the last one wins.
        """
        forget_prefetched(self.instance, self.name)
        wanted = self._pks(objs)
        with atomic(using=self._db):
            self._lock_owner(wanted | self._linked_others())
            current = self._linked(None)
            stale = current - wanted
            if stale:
                self.remove(*stale)
            missing = wanted - current
            if missing:
                self.add(*missing, through_defaults=through_defaults)

    def create(
        self, *, through_defaults: dict[str, t.Any] | None = None, **kwargs: t.Any
    ) -> t.Any:
        """Create a target instance and link it."""
        forget_prefetched(self.instance, self.name)
        with atomic(using=self._db):
            obj = QuerySet(self.model, self._db).create(**kwargs)
            self.add(obj, through_defaults=through_defaults)
        return obj


class _PrefetchedQuerySet(QuerySet[t.Any]):
    """A relation's prefetched instances; any refinement queries the database.

    # PERF: a list page reads the relation of every row: the filtered query
    # is only built when a copy is made (``filter()``, ``order_by()``...).
    """

    def __init__(
        self,
        model: type[Model],
        using: str,
        found: list[Model],
        query: cabc.Callable[[], QuerySet[t.Any]],
    ) -> None:
        super().__init__(model, using)
        self._result_cache = list(found)
        self._query = query

    def _clone(self) -> QuerySet[t.Any]:
        return self._query()._clone()


class _LinkStep:
    """A relation step from a model to its through rows (for manager queries)."""

    is_relation = True
    many_to_many = True

    def __init__(
        self, through: t.Any, own_fk: t.Any, other_fk: t.Any, model: t.Any
    ) -> None:
        self.through = through
        self.own_fk = own_fk
        self.other_fk = other_fk
        self.model = model
        self.name = "through"
        self.related_model = other_fk.related_model

    def subquery_plan(self) -> tuple[t.Any, t.Any, t.Any, tuple[t.Any, ...]]:
        return self.through, self.own_fk, self.model._meta.pk, (self.other_fk,)


# Deleting ------------------------------------------------------------


def _can_fast_delete(model: type[Model]) -> bool:
    # Rows of automatic through models are deleted silently, as in Django.
    if not model._meta.auto_created and (
        signals.pre_delete.has_listeners(model)
        or signals.post_delete.has_listeners(model)
    ):
        return False
    return not any(
        isinstance(rel.field, ForeignKey) and rel.on_delete is not DO_NOTHING
        for rel in model._meta.related_objects
    )


_COLLECT_BATCH: t.Final = 500


class Collector:
    """Gathers everything a delete takes with it, then deletes it in one go.

    :param using: the database alias.
    :param origin: the instance or queryset whose ``delete()`` started it.
    """

    def __init__(self, using: str, origin: t.Any) -> None:
        self.using = using
        self.origin = origin
        self.data: dict[type[Model], dict[t.Any, Model]] = {}
        # model -> the models whose rows must go before its rows (Django's
        # Collector.dependencies): a cascade from R to S makes R depend on S.
        self.dependencies: dict[type[Model], set[type[Model]]] = {}
        self.fast_deletes: list[QuerySet[t.Any]] = []
        self.field_updates: list[tuple[ForeignKey, t.Any, list[Model]]] = []
        self.protected: list[tuple[ForeignKey, list[Model]]] = []
        self.restricted: list[tuple[ForeignKey, list[Model]]] = []

    def collect_queryset(self, qs: QuerySet[t.Any]) -> None:
        """Collect the rows of ``qs`` (one statement when nothing depends on them)."""
        if _can_fast_delete(qs.model):
            if not qs._empty:
                # Bad filter values raise here, before the transaction opens.
                qs._pk_select(connections[self.using])
            self.fast_deletes.append(qs)
        else:
            self.collect(list(qs))

    def collect(
        self, objs: cabc.Iterable[Model], source: type[Model] | None = None
    ) -> None:
        """Collect ``objs`` and, by ``on_delete``, what refers to them.

        :param source: the model whose deletion cascades to ``objs``: its
            rows are deleted after theirs.
        """
        objs = list(objs)
        if not objs:
            return
        new: list[Model] = []
        for obj in objs:
            bucket = self.data.setdefault(type(obj), {})
            if obj.pk not in bucket:
                bucket[obj.pk] = obj
                new.append(obj)
        model = type(objs[0])
        if source is not None:
            self.dependencies.setdefault(source, set()).add(model)
        if not new:
            return
        # Batches keep every statement under the drivers' parameter limits.
        for start in range(0, len(new), _COLLECT_BATCH):
            self._collect_related(model, new[start : start + _COLLECT_BATCH])

    def _collect_related(self, model: type[Model], objs: list[Model]) -> None:
        for rel in model._meta.related_objects:
            field = rel.field
            if not isinstance(field, ForeignKey) or rel.on_delete is DO_NOTHING:
                continue
            target = field.target_field.attname
            keys = [obj.__dict__[target] for obj in objs]
            related: QuerySet[t.Any] = QuerySet(rel.related_model, self.using).filter(
                **{f"{field.attname}__in": keys}
            )
            if rel.on_delete is CASCADE:
                if _can_fast_delete(rel.related_model):
                    self.fast_deletes.append(related)
                else:
                    self.collect(list(related), source=model)
                continue
            found = list(related)
            if not found:
                continue
            if rel.on_delete is PROTECT:
                self.protected.append((field, found))
            elif rel.on_delete is RESTRICT:
                self.restricted.append((field, found))
            else:
                value = field.on_delete.value_for(field)
                self.field_updates.append((field, value, found))

    def _sort(self) -> None:
        """Order the models so that dependants go before what they refer to.

        As Django's Collector.sort(): a model comes once every model it
        depends on has come; with a cycle the collection order stays.
        """
        ordered: list[type[Model]] = []
        done: set[type[Model]] = set()
        models = list(self.data)
        while len(ordered) < len(models):
            found = False
            for model in models:
                if model in done:
                    continue
                if not self.dependencies.get(model, set()) - done:
                    ordered.append(model)
                    done.add(model)
                    found = True
            if not found:
                return
        self.data = {model: self.data[model] for model in ordered}

    def _check(self) -> None:
        if self.protected:
            objs = [obj for _, found in self.protected for obj in found]
            names = sorted({f"{f.model.__name__}.{f.name}" for f, _ in self.protected})  # type: ignore[union-attr]
            raise ProtectedError(
                f"Cannot delete {self._describe_origin()}: referenced through protected"
                f" foreign keys {', '.join(names)} by"
                f" {', '.join(repr(o) for o in objs[:10])}"
                f"{' ...' if len(objs) > 10 else ''}. Nothing was deleted.",
                objs,
            )
        blocking = [
            (field, obj)
            for field, found in self.restricted
            for obj in found
            if obj.pk not in self.data.get(type(obj), {})
            and not self._fast_deleted(obj)
        ]
        if blocking:
            names = sorted({f"{f.model.__name__}.{f.name}" for f, _ in blocking})  # type: ignore[union-attr]
            raise RestrictedError(
                f"Cannot delete {self._describe_origin()}: referenced through"
                " restricted"
                f" foreign keys {', '.join(names)} by"
                f" {', '.join(repr(o) for _, o in blocking[:10])}."
                " Nothing was deleted.",
                [obj for _, obj in blocking],
            )

    def _fast_deleted(self, obj: Model) -> bool:
        return any(
            qs.model is type(obj) and qs.filter(pk=obj.pk).exists()
            for qs in self.fast_deletes
        )

    def _describe_origin(self) -> str:
        if isinstance(self.origin, Model):
            return repr(self.origin)
        return f"some {self.origin.model.__name__} instances"

    def delete(self) -> tuple[int, dict[str, int]]:
        """Send ``pre_delete``, delete every collected row, send ``post_delete``.

        With delete receivers connected, the rows are first locked and
        re-read inside the transaction (see :func:`lock_existing`): an
        instance whose row another transaction deleted meanwhile gets no
        signal and is not counted. ``post_delete`` goes only to the rows the
        ``DELETE`` really removed.

        :returns: the number of rows deleted and a count per model label.
        """
        self._check()
        counts: dict[str, int] = {}
        conn = connections[self.using]
        signalled = self._signalled()
        simple = (
            not self.fast_deletes
            and not self.field_updates
            and len(self.data) == 1
            and not signalled
        )
        simple = simple and len(next(iter(self.data.values()))) == 1
        # Django's order: dependants first, each model's rows by primary
        # key; pre_delete in that order, post_delete model by model right
        # after its rows go, each model's rows in reverse.
        self._sort()
        with contextlib.nullcontext() if simple else atomic(using=self.using):
            if signalled:
                self._drop_vanished()
            ordered = {model: _by_pk(objs) for model, objs in self.data.items()}
            for model, objs in ordered.items():
                self._send(signals.pre_delete, model, objs)
            for qs in self._fast_delete_groups(conn.vendor):
                count = raw_delete(qs)
                if count:
                    label = qs.model._meta.label
                    counts[label] = counts.get(label, 0) + count
            self._update_fields()
            for model, objs in ordered.items():
                if not objs:
                    continue
                objs.reverse()
                pks = [obj.pk for obj in objs]
                if model in signalled:
                    gone = set(delete_pks(model, conn, pks, returning=True))
                    count = len(gone)
                    self._send(
                        signals.post_delete,
                        model,
                        [obj for obj in objs if obj.pk in gone],
                    )
                else:
                    count = delete_pks(model, conn, pks)
                if count:
                    counts[model._meta.label] = counts.get(model._meta.label, 0) + count
        for model, instances in self.data.items():
            for obj in instances.values():
                obj.__dict__[model._meta.pk.attname] = None
                obj._state.adding = True
        return sum(counts.values()), counts

    def _fast_delete_groups(self, vendor: str) -> list[QuerySet[t.Any]]:
        """Return the fast deletes, one per model, locking those reached twice.

        The rows of a model that several relations reach (the through rows of
        a many-to-many relation to ``"self"``: ``from_x IN (...)`` and
        ``to_x IN (...)``) go in one ``DELETE`` of either condition. On
        PostgreSQL they are locked first, in key order: two deletes from
        either end of one link row pair (deleting ``a`` and ``b`` at once, with
        ``a.friends`` holding ``b``) would otherwise each lock one row of the
        pair and wait for the other's.
        """
        groups: dict[type[Model], list[QuerySet[t.Any]]] = {}
        for qs in self.fast_deletes:
            if not qs._empty:
                groups.setdefault(qs.model, []).append(qs)
        found = []
        for model, group in groups.items():
            if len(group) == 1:
                found.append(group[0])
                continue
            qs = QuerySet(model, self.using)
            qs._where = [(Q.OR, False, [(Q.AND, False, list(q._where)) for q in group])]
            if vendor != "sqlite":
                list(qs.order_by("pk").select_for_update().values_list("pk", flat=True))
            found.append(qs)
        return found

    def _signalled(self) -> set[type[Model]]:
        """Return the collected models that have delete receivers."""
        return {
            model
            for model in self.data
            if not model._meta.auto_created
            and (
                signals.pre_delete.has_listeners(model)
                or signals.post_delete.has_listeners(model)
            )
        }

    def _drop_vanished(self) -> None:
        """Forget the instances whose rows are gone; lock the others' rows."""
        for model, instances in self.data.items():
            if instances:
                existing = lock_existing(model, self.using, list(instances))
                for pk in [pk for pk in instances if pk not in existing]:
                    del instances[pk]

    def _send(self, signal: t.Any, model: type[Model], objs: list[Model]) -> None:
        # Automatic through rows go silently (m2m_changed covers links).
        if not model._meta.auto_created and signal.has_listeners(model):
            for obj in objs:
                signal.send(
                    sender=model, instance=obj, using=self.using, origin=self.origin
                )

    def _update_fields(self) -> None:
        for field, value, objs in self.field_updates:
            keys = [obj.pk for obj in objs]
            for start in range(0, len(keys), _COLLECT_BATCH):
                batch = keys[start : start + _COLLECT_BATCH]
                _raw_set(
                    QuerySet(t.cast(t.Any, field.model), self.using).filter(
                        pk__in=batch
                    ),
                    field,
                    value,
                )
            for obj in objs:
                obj.__dict__[field.attname] = value


def _by_pk(instances: dict[t.Any, Model]) -> list[Model]:
    objs = list(instances.values())
    try:
        objs.sort(key=lambda obj: obj.pk)
    except TypeError:
        pass  # keys that do not compare keep the collection order
    return objs


def _raw_set(qs: QuerySet[t.Any], field: ForeignKey, value: t.Any) -> None:
    conn = connections[qs.db]
    table = qs.model._meta.table
    _, _, where = qs._pk_select(conn)
    if value is not None:
        value = field.get_db_prep_value(value, conn.vendor)
    stmt = table.update().values({field.column: value}).where(where)
    sql, params = compile_with_params(stmt, conn.dialect)
    conn.execute(sql, params)
