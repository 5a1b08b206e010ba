"""Errors raised by the ORM.

::

    Exception
     +-- ImproperlyConfigured        (re-exported from framework.conf)
     +-- FieldError                  unknown field or lookup, bad model definition
     +-- ValidationError             a value that cannot be saved
     +-- ObjectDoesNotExist          base of every ``Model.DoesNotExist``
     +-- MultipleObjectsReturned     base of every ``Model.MultipleObjectsReturned``
     +-- IntegrityError              wraps the driver's integrity errors
     +-- ProtectedError              a PROTECT foreign key blocks a delete
     +-- RestrictedError             a RESTRICT foreign key blocks a delete
     +-- TransactionManagementError  misuse of atomic()
"""

from __future__ import annotations

import collections.abc as cabc
import typing as t

from framework.conf import ImproperlyConfigured

__all__ = [
    "FieldError",
    "ImproperlyConfigured",
    "IntegrityError",
    "MultipleObjectsReturned",
    "ObjectDoesNotExist",
    "ProtectedError",
    "RestrictedError",
    "TransactionManagementError",
    "ValidationError",
]


class FieldError(Exception):
    """An unknown field or lookup was used, or a model is defined wrongly."""


class ObjectDoesNotExist(Exception):
    """The query matched no row; base of every ``Model.DoesNotExist``."""


class MultipleObjectsReturned(Exception):
    """The query matched more than one row; base of the per-model errors."""


class IntegrityError(Exception):
    """The database refused a write (unique, foreign key, not null).

    The driver's exception is chained as ``__cause__``.
    """


class TransactionManagementError(Exception):
    """``atomic()`` or a connection was used in a way that cannot work."""


class ValidationError(Exception):
    """One or more values cannot be saved.

    :param message: a message, or a mapping of field name to list of messages.
    """

    def __init__(self, message: str | cabc.Mapping[str, list[str]]) -> None:
        if isinstance(message, str):
            self.message_dict: dict[str, list[str]] = {}
            text = message
        else:
            self.message_dict = {name: list(msgs) for name, msgs in message.items()}
            text = "; ".join(
                f"{name}: {' '.join(msgs)}" for name, msgs in self.message_dict.items()
            )
        super().__init__(text)


class ProtectedError(IntegrityError):
    """A delete was blocked by ``on_delete=PROTECT``; nothing was deleted.

    :param message: what happened.
    :param protected_objects: the objects that protect the ones being deleted.
    """

    def __init__(self, message: str, protected_objects: cabc.Iterable[t.Any]) -> None:
        self.protected_objects = list(protected_objects)
        super().__init__(message)


class RestrictedError(IntegrityError):
    """A delete was blocked by ``on_delete=RESTRICT``; nothing was deleted.

    :param message: what happened.
    :param restricted_objects: the objects that restrict the deletion.
    """

    def __init__(self, message: str, restricted_objects: cabc.Iterable[t.Any]) -> None:
        self.restricted_objects = list(restricted_objects)
        super().__init__(message)
