"""Transactions: ``atomic()`` (nested blocks are savepoints) and ``on_commit()``.

::

    with transaction.atomic():
        order.save()
        transaction.on_commit(lambda: send_receipt(order.pk))

A block that raises rolls back everything it did; the outermost block commits,
then runs the ``on_commit`` callbacks registered inside it (callbacks of a
savepoint that rolled back are dropped). Receivers connected with
``on_commit=True`` ride on the same mechanism.
"""

from __future__ import annotations

import collections.abc as cabc
import contextlib
import functools
import logging
import typing as t

from .db import DEFAULT_DB_ALIAS
from .db import connections
from .exceptions import TransactionManagementError

__all__ = ["Atomic", "atomic", "get_connection", "on_commit", "savepoint_hook"]

logger = logging.getLogger("framework.orm")

F = t.TypeVar("F", bound=cabc.Callable[..., t.Any])


def get_connection(using: str | None = None) -> t.Any:
    """Return this thread's wrapper for ``using`` (default ``"default"``)."""
    return connections[using or DEFAULT_DB_ALIAS]


class Atomic(contextlib.ContextDecorator):
    """Context manager and decorator opening a transaction or a savepoint.

    :param using: the database alias.
    :param savepoint: create a savepoint when nested (otherwise an error in
        the inner block rolls back the whole transaction).
    :param durable: refuse to run nested inside another ``atomic()``.
    """

    def __init__(self, using: str | None, savepoint: bool, durable: bool) -> None:
        self.using = using
        self.savepoint = savepoint
        self.durable = durable

    def __enter__(self) -> Atomic:
        conn = connections[self.using or DEFAULT_DB_ALIAS]
        if not conn.in_atomic_block:
            if conn.in_transaction():
                raise TransactionManagementError(
                    f"A transaction opened outside atomic() is still open on"
                    f" {conn.alias!r}; commit or roll it back first."
                )
            conn.begin()
            conn.in_atomic_block = True
            conn.needs_rollback = False
            conn.savepoint_ids = []
            conn.run_on_commit = []
        elif self.durable:
            raise TransactionManagementError(
                "A durable atomic() block cannot be nested inside another atomic()."
            )
        else:
            conn.savepoint_ids.append(conn.savepoint() if self.savepoint else None)
        return self

    def __exit__(self, exc_type: t.Any, exc: t.Any, tb: t.Any) -> None:
        conn = connections[self.using or DEFAULT_DB_ALIAS]
        if not conn.in_atomic_block:
            return
        if conn.savepoint_ids:
            sid = conn.savepoint_ids.pop()
            if exc_type is None and not conn.needs_rollback:
                if sid is not None:
                    conn.savepoint_commit(sid)
            elif sid is not None:
                conn.savepoint_rollback(sid)
                conn.needs_rollback = False
            else:
                conn.needs_rollback = True
            return
        conn.in_atomic_block = False
        callbacks = conn.run_on_commit
        conn.run_on_commit = []
        if exc_type is not None or conn.needs_rollback:
            conn.needs_rollback = False
            try:
                conn.rollback()
            except conn._errors:
                logger.warning("Rollback failed on %r", conn.alias, exc_info=True)
                conn.close_physically()
            return
        try:
            conn.commit()
        except BaseException:
            with contextlib.suppress(Exception):
                conn.rollback()
            raise
        _run_callbacks(callbacks)


def _run_callbacks(
    callbacks: list[tuple[set[str | None], cabc.Callable[[], t.Any], bool]],
) -> None:
    for _sids, func, robust in callbacks:
        _call(func, robust)


def _call(func: cabc.Callable[[], t.Any], robust: bool) -> None:
    if not robust:
        func()
        return
    try:
        func()
    except Exception:
        logger.exception("Error calling on_commit callback %r", func)


@t.overload
def atomic(using: F) -> F: ...


@t.overload
def atomic(
    using: str | None = None, savepoint: bool = True, durable: bool = False
) -> Atomic: ...


def atomic(using: t.Any = None, savepoint: bool = True, durable: bool = False) -> t.Any:
    """Run a block or a function inside a transaction (a savepoint when nested).

    Use as ``with atomic():``, ``@atomic`` or ``@atomic(using="other")``.
    """
    if callable(using):
        func = using
        return functools.wraps(func)(Atomic(None, savepoint, durable)(func))
    return Atomic(using, savepoint, durable)


def on_commit(
    func: cabc.Callable[[], t.Any], using: str | None = None, robust: bool = False
) -> None:
    """Call ``func`` once the current transaction commits; at once outside one.

    The call is dropped if the transaction, or the savepoint it was registered
    in, rolls back.

    :param robust: log an exception raised by ``func`` instead of propagating.
    """
    conn = connections[using or DEFAULT_DB_ALIAS]
    if conn.in_atomic_block:
        conn.run_on_commit.append((set(conn.savepoint_ids), func, robust))
    else:
        _call(func, robust)


def savepoint_hook(callback: cabc.Callable[[], t.Any], named: dict[str, t.Any]) -> bool:
    """Defer a receiver connected with ``on_commit=True`` (the dispatcher's hook).

    :returns: True when a transaction is open on the send's ``using`` alias
        (the callback then runs after its commit), False otherwise.
    """
    alias = named.get("using")
    if not isinstance(alias, str):
        alias = DEFAULT_DB_ALIAS
    conn = connections.get_if_exists(alias)
    if conn is None or not conn.in_atomic_block:
        return False
    conn.run_on_commit.append((set(conn.savepoint_ids), callback, False))
    return True
