"""Receivers connected the way a project would: in the app's management module."""

from framework import signals

CALLS: list[tuple[str, dict]] = []


def record_post_migrate(sender, **kwargs):
    CALLS.append(("post_migrate", {"sender": sender, **kwargs}))


signals.post_migrate.connect(
    record_post_migrate, dispatch_uid="hooks.record_post_migrate", priority=5
)
