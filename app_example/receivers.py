"""Receivers doing app_example's real work; framework.setup() imports them.

- request_finished: a structured (JSON) access log (the request counters are
  framework.metrics', which every worker of ``framework serve`` connects);
- got_request_exception: error reporting (a structured error line);
- class_prepared (in models.py) picks the audited models; post_init remembers
  their audited fields as loaded, post_save / post_delete write the audit log
  (an update names the fields that changed);
- m2m_changed: the tag counts;
- post_save / m2m_changed with on_commit=True: the search index, refreshed
  only once the data is committed;
- pre_delete: unlinks a bookmark's tags first, so the counts stay right;
- connection_created: per-connection set-up (SQLite pragmas, PostgreSQL
  application_name);
- connection_created and template_rendered are also counted for /metrics
  (framework.metrics.count).
"""

from __future__ import annotations

import json
import logging
import sys
import time

from framework import metrics
from framework import receiver
from framework import signals
from framework.conf import settings
from framework.orm import transaction

from .models import AUDITED
from .models import AuditEntry
from .models import Bookmark
from .models import SearchDocument
from .models import Tag
from .web import BookmarksApp

access_logger = logging.getLogger("app_example.access")
error_logger = logging.getLogger("app_example.errors")

Through = Bookmark.tags.through

# Shown on /metrics beside the request signals, per worker.
metrics.count(signals.connection_created)
metrics.count(signals.template_rendered)


# Requests ------------------------------------------------------------------


@receiver(signals.request_finished, sender=BookmarksApp)
def time_and_log_request(sender, *, environ, status, duration, **kwargs):
    if getattr(settings, "ACCESS_LOG_JSON", False):
        access_logger.info(
            json.dumps(
                {
                    "event": "request",
                    "method": environ.get("REQUEST_METHOD"),
                    "path": environ.get("PATH_INFO"),
                    "status": status,
                    "duration_ms": round(duration * 1000, 3),
                    # Derived, not stored in the environ at request_started:
                    # a new environ key costs every request, logged or not.
                    "started_at": time.time() - duration,
                    "remote_addr": environ.get("REMOTE_ADDR"),
                }
            )
        )


@receiver(signals.got_request_exception, sender=BookmarksApp)
def report_error(sender, *, request, **kwargs):
    exc = sys.exc_info()[1]
    error_logger.error(
        json.dumps(
            {
                "event": "unhandled_exception",
                "method": request.method,
                "path": request.path,
                "error": type(exc).__name__ if exc is not None else None,
                "message": str(exc) if exc is not None else None,
            }
        )
    )


# Audit log -----------------------------------------------------------------


def _summary(instance):
    if isinstance(instance, Bookmark):
        return instance.title[:200]
    return instance.name[:200]


def _audited_values(instance):
    return {name: getattr(instance, name) for name in type(instance).audit_fields}


def remember_loaded_values(sender, *, instance, **kwargs):
    instance._audit_loaded = _audited_values(instance)


def audit_save(sender, *, instance, created, using, **kwargs):
    summary = _summary(instance)
    current = _audited_values(instance)
    if not created:
        loaded = getattr(instance, "_audit_loaded", {})
        changed = [name for name, value in current.items() if loaded.get(name) != value]
        summary = f"{', '.join(changed) or 'nothing'} changed: {summary}"
    instance._audit_loaded = current
    AuditEntry.objects.using(using).create(
        action="create" if created else "update",
        model=sender._meta.model_name,
        object_id=instance.pk,
        summary=summary[:200],
    )


def audit_delete(sender, *, instance, using, **kwargs):
    AuditEntry.objects.using(using).create(
        action="delete",
        model=sender._meta.model_name,
        object_id=instance.pk,
        summary=_summary(instance),
    )


for _model in AUDITED:
    signals.post_init.connect(remember_loaded_values, sender=_model)
    signals.post_save.connect(audit_save, sender=_model)
    signals.post_delete.connect(audit_delete, sender=_model)


# Tag counts ----------------------------------------------------------------


def _bump_tags(using, tag_ids, delta):
    if not tag_ids or not delta:
        return
    connection = transaction.get_connection(using)
    mark = "?" if connection.vendor == "sqlite" else "%s"
    table = Tag._meta.db_table
    # An atomic increment in SQL: concurrent workers never lose an update.
    connection.execute(
        f"UPDATE {table} SET bookmark_count = bookmark_count + {mark}"
        f" WHERE id IN ({', '.join([mark] * len(tag_ids))})",
        [delta, *sorted(tag_ids)],
    )


@receiver(signals.pre_delete, sender=Bookmark)
def unlink_tags_before_delete(sender, *, instance, **kwargs):
    instance.tags.clear()


@receiver(signals.m2m_changed, sender=Through)
def count_tags(sender, *, instance, action, reverse, pk_set, using, **kwargs):
    # pk_set of the post_ actions holds the links really inserted or deleted
    # (post_clear's too), so a link another request changed first is never
    # counted twice.
    delta = {"post_add": 1, "post_remove": -1, "post_clear": -1}.get(action)
    if delta is None or not pk_set:
        return
    if reverse:
        _bump_tags(using, {instance.pk}, delta * len(pk_set))
    else:
        _bump_tags(using, set(pk_set), delta)


# Search index (after commit) -------------------------------------------------


def refresh_search_document(bookmark_id, using="default"):
    bookmark = Bookmark.objects.using(using).filter(pk=bookmark_id).first()
    if bookmark is None:
        return
    tags = " ".join(sorted(bookmark.tags.values_list("name", flat=True)))
    text = f"{bookmark.title} {bookmark.url} {bookmark.notes} {tags}".lower()
    SearchDocument.objects.using(using).update_or_create(
        bookmark=bookmark, defaults={"text": text}
    )


@receiver(signals.post_save, sender=Bookmark, on_commit=True)
def index_bookmark(sender, *, instance, using, raw, **kwargs):
    refresh_search_document(instance.pk, using)


@receiver(signals.m2m_changed, sender=Through, on_commit=True)
def reindex_tagged_bookmarks(sender, *, instance, action, reverse, pk_set, **kwargs):
    if not action.startswith("post_"):
        return
    using = kwargs["using"]
    if not reverse:
        refresh_search_document(instance.pk, using)
    else:
        for bookmark_id in sorted(pk_set or ()):
            refresh_search_document(bookmark_id, using)


# Connections -----------------------------------------------------------------


@receiver(signals.connection_created)
def set_up_connection(sender, *, connection, **kwargs):
    if "app_example" not in getattr(settings, "INSTALLED_APPS", ()):
        return
    cursor = connection.cursor()
    if connection.vendor == "sqlite":
        cursor.execute("PRAGMA temp_store = MEMORY")
    elif connection.vendor == "postgresql":
        cursor.execute("SET application_name = 'app_example'")
