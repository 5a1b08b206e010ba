"""The bookmarks service's models.

A model with an ``audit_fields`` tuple is audited: its saves and deletes go to
the audit log, and an update records which of those fields changed. The
``class_prepared`` receiver below collects such models as they are defined;
receivers.py connects the audit receivers for each.
"""

from framework import orm
from framework import receiver
from framework import signals

MAX_NOTES = 10_000
"""Longest ``notes`` a bookmark keeps (each list answer carries them)."""

AUDITED = []
"""The audited models, in definition order (filled by ``register_audited``)."""


@receiver(signals.class_prepared)
def register_audited(sender, **kwargs):
    if "audit_fields" in sender.__dict__:
        AUDITED.append(sender)


class Collection(orm.Model):
    audit_fields = ("name",)

    name = orm.CharField(max_length=60, unique=True)
    created = orm.DateTimeField(auto_now_add=True)


class Tag(orm.Model):
    audit_fields = ("name",)

    name = orm.CharField(max_length=40, unique=True)
    # Kept up to date by the m2m_changed receiver (receivers.count_tags).
    bookmark_count = orm.IntegerField(default=0)


class Bookmark(orm.Model):
    audit_fields = ("url", "title", "notes")

    url = orm.CharField(max_length=500)
    title = orm.CharField(max_length=200)
    notes = orm.TextField(default="", max_length=MAX_NOTES)
    collection = orm.ForeignKey(
        Collection, on_delete=orm.CASCADE, related_name="bookmarks"
    )
    tags = orm.ManyToManyField(Tag, related_name="bookmarks")
    created = orm.DateTimeField(auto_now_add=True)


class SearchDocument(orm.Model):
    """The search index: one row per bookmark, refreshed after each commit."""

    bookmark = orm.ForeignKey(
        Bookmark, on_delete=orm.CASCADE, related_name="search_documents"
    )
    text = orm.TextField(default="")


class AuditEntry(orm.Model):
    """Every save and delete of a bookmark, collection or tag."""

    action = orm.CharField(max_length=10)
    model = orm.CharField(max_length=40)
    object_id = orm.IntegerField()
    summary = orm.CharField(max_length=200, default="")
    at = orm.DateTimeField(auto_now_add=True)
