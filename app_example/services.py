"""The writes behind the pages' forms: add, change and delete a bookmark.

They take data checked by ``validation.clean_bookmark`` and use the same
transactions and locks as the JSON API's views (views.py): a change or a
delete locks the bookmark row, and changing tags locks every tag whose count
may change, in key order, so concurrent writers wait instead of deadlocking.
"""

from __future__ import annotations

from framework.orm import transaction

from .models import Bookmark
from .models import Collection
from .models import Tag


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
    """Apply ``changes``; returns the bookmark, or None if it is gone."""
    changes = dict(changes)
    tag_names = changes.pop("tags", None)
    with transaction.atomic():
        bookmark = _locked(bookmark_id)
        if bookmark is None:
            return None
        if "collection" in changes:
            name = changes.pop("collection")
            bookmark.collection = Collection.objects.get_or_create(name=name)[0]
            changes["collection"] = bookmark.collection
        for name, value in changes.items():
            setattr(bookmark, name, value)
        if changes:
            bookmark.save(update_fields=sorted(changes))
        if tag_names is not None:
            tags = _tags(tag_names)
            current = set(bookmark.tags.values_list("pk", flat=True))
            touched = current | {tag.pk for tag in tags}
            list(Tag.objects.select_for_update().filter(pk__in=touched).order_by("pk"))
            bookmark.tags.set(tags)
    return bookmark


def delete_bookmark(bookmark_id):
    """Delete the bookmark; returns whether this call deleted it."""
    with transaction.atomic():
        bookmark = _locked(bookmark_id)
        if bookmark is None:
            return False
        deleted, _ = bookmark.delete()
    return bool(deleted)
