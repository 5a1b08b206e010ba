"""The writes behind the pages' forms: add, change and delete a bookmark.

They take data checked by ``validation.clean_bookmark`` and use the same
transactions and locks as the JSON API's views (views.py; a change is the
API's own ``_patch``): a change or a delete locks the bookmark row, and
changing tags locks every tag whose count may change, in key order, so
concurrent writers wait instead of deadlocking.
"""

from __future__ import annotations

from framework import NotFound
from framework.orm import transaction

from .models import Bookmark
from .models import Collection
from .models import Tag
from .views import _patch


def _locked(bookmark_id):
    return Bookmark.objects.select_for_update().filter(pk=bookmark_id).first()


def _tags(names):
    return [Tag.objects.get_or_create(name=name)[0] for name in names]


def create_bookmark(data):
    with transaction.atomic():
        collection, _ = Collection.objects.get_or_create(name=data["collection"])
        bookmark = Bookmark.objects.create(
            url=data["url"],
            title=data["title"],
            notes=data["notes"],
            collection=collection,
        )
        tags = _tags(data["tags"])
        if tags:
            bookmark.tags.add(*tags)
    return bookmark


def update_bookmark(bookmark_id, changes):
    """Apply ``changes`` as the API's PATCH does; returns None if it is gone."""
    try:
        return _patch(bookmark_id, dict(changes))
    except NotFound:
        return None


def delete_bookmark(bookmark_id):
    """Delete the bookmark; returns whether this call deleted it."""
    with transaction.atomic():
        bookmark = _locked(bookmark_id)
        if bookmark is None:
            return False
        deleted, _ = bookmark.delete()
    return bool(deleted)
