"""The optional ORM: models, querysets, relations and transactions on the dispatcher.

``from framework import orm`` (needs the ``orm`` extra). Importing it connects
the ORM's own receivers to ``request_started``/``request_finished`` (closing
stale connections, rolling back forgotten transactions) and to
``setting_changed`` (re-reading ``DATABASES``), and installs the dispatcher's
on-commit hook so receivers connected with ``on_commit=True`` wait for the
current transaction to commit.
"""

from __future__ import annotations

try:
    import sqlalchemy as _sqlalchemy  # noqa: F401
except ModuleNotFoundError as exc:
    if exc.name != "sqlalchemy":
        raise
    raise ModuleNotFoundError(
        "framework.orm needs SQLAlchemy, which is not installed: pip install"
        " 'framework[orm]' (and 'framework[postgres]' for PostgreSQL).",
        name="sqlalchemy",
    ) from None

from framework import dispatch
from framework import signals

from . import transaction
from ._loading import DEFERRED
from .constraints import Index
from .constraints import UniqueConstraint
from .db import DEFAULT_DB_ALIAS
from .db import DatabaseWrapper
from .db import close_old_connections
from .db import connections
from .db import reset_connections
from .exceptions import FieldError
from .exceptions import ImproperlyConfigured
from .exceptions import IntegrityError
from .exceptions import MultipleObjectsReturned
from .exceptions import ObjectDoesNotExist
from .exceptions import ProtectedError
from .exceptions import RestrictedError
from .exceptions import TransactionManagementError
from .exceptions import ValidationError
from .expressions import Aggregate
from .expressions import Avg
from .expressions import Count
from .expressions import Exists
from .expressions import ExpressionWrapper
from .expressions import F
from .expressions import Max
from .expressions import Min
from .expressions import OuterRef
from .expressions import Subquery
from .expressions import Sum
from .expressions import Value
from .fields import NOT_PROVIDED
from .fields import AutoField
from .fields import BigAutoField
from .fields import BigIntegerField
from .fields import BooleanField
from .fields import CharField
from .fields import DateField
from .fields import DateTimeField
from .fields import DecimalField
from .fields import Field
from .fields import FloatField
from .fields import IntegerField
from .fields import JSONField
from .fields import TextField
from .fields import UUIDField
from .models import Model
from .models import Registry
from .models import registry
from .query import Manager
from .query import Q
from .query import QuerySet
from .related import CASCADE
from .related import DO_NOTHING
from .related import PROTECT
from .related import RESTRICT
from .related import SET
from .related import SET_DEFAULT
from .related import SET_NULL
from .related import ForeignKey
from .related import ManyToManyField
from .related import OneToOneField
from .related_loading import prefetch_related_objects
from .schema import create_tables
from .schema import drop_tables
from .schema import flush_tables
from .schema import reset_sequences
from .transaction import atomic
from .transaction import on_commit

__all__ = [
    "CASCADE",
    "DEFAULT_DB_ALIAS",
    "DEFERRED",
    "DO_NOTHING",
    "NOT_PROVIDED",
    "PROTECT",
    "RESTRICT",
    "SET",
    "SET_DEFAULT",
    "SET_NULL",
    "Aggregate",
    "AutoField",
    "Avg",
    "BigAutoField",
    "BigIntegerField",
    "BooleanField",
    "CharField",
    "Count",
    "DatabaseWrapper",
    "DateField",
    "DateTimeField",
    "DecimalField",
    "DoesNotExist",
    "Exists",
    "ExpressionWrapper",
    "F",
    "Field",
    "FieldError",
    "FloatField",
    "ForeignKey",
    "ImproperlyConfigured",
    "Index",
    "IntegerField",
    "IntegrityError",
    "JSONField",
    "Manager",
    "ManyToManyField",
    "Max",
    "Min",
    "Model",
    "MultipleObjectsReturned",
    "ObjectDoesNotExist",
    "OneToOneField",
    "OuterRef",
    "ProtectedError",
    "Q",
    "QuerySet",
    "Registry",
    "RestrictedError",
    "Subquery",
    "Sum",
    "TextField",
    "TransactionManagementError",
    "UUIDField",
    "UniqueConstraint",
    "ValidationError",
    "Value",
    "atomic",
    "close_old_connections",
    "connections",
    "create_tables",
    "drop_tables",
    "flush_tables",
    "on_commit",
    "prefetch_related_objects",
    "registry",
    "reset_sequences",
    "transaction",
]

DoesNotExist = ObjectDoesNotExist
"""Alias of :class:`ObjectDoesNotExist`, the base of every ``Model.DoesNotExist``."""

dispatch.set_on_commit_hook(transaction.savepoint_hook)
dispatch.set_model_registry(registry)
# NOTE: first on request_started, so that the user's receivers find healthy
# connections; last on request_finished, after the user's receivers may have
# used the database (the handler sends request_finished robustly).
signals.request_started.connect(
    close_old_connections,
    weak=False,
    dispatch_uid="framework.orm.close_old_connections",
    priority=1000,
)
signals.request_finished.connect(
    close_old_connections,
    weak=False,
    dispatch_uid="framework.orm.close_old_connections",
    priority=-1000,
)
signals.setting_changed.connect(
    reset_connections, weak=False, dispatch_uid="framework.orm.reset_connections"
)
