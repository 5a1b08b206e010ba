"""Never run: mypy checks that the public dispatcher API keeps its types."""

from __future__ import annotations

import typing as t

from framework import signals
from framework.dispatch import ConnectionInfo
from framework.dispatch import Signal
from framework.dispatch import receiver

order_paid = Signal(
    name="order_paid", doc="Sent when an order is paid.", args=("order",)
)


@receiver(order_paid, priority=10)
def notify(sender: object, **kwargs: t.Any) -> str:
    return "sent"


@receiver([signals.post_save, signals.post_delete], weak=False, dispatch_uid="audit")
def audit(sender: type, **kwargs: t.Any) -> None:
    return None


# The decorators return the function itself, with its own signature.
text: str = notify(None)
nothing: None = audit(object)

responses: list[tuple[t.Callable[..., t.Any], t.Any]] = order_paid.send(None, order=1)
infos: list[ConnectionInfo] = order_paid.connections()
disconnected: bool = order_paid.disconnect(notify)
listening: bool = order_paid.has_listeners(None)
with order_paid.connected_to(notify):
    pass
