"""The writes: add, change and delete a bookmark, for the pages and the JSON API.

They take data checked by ``validation.clean_bookmark``. A change or a delete
locks the bookmark row, and changing tags locks every tag whose count may
change, in key order, so concurrent writers wait instead of deadlocking; of
simultaneous deletes one deletes and the others find nothing.
"""

from __future__ import annotations

from framework import NotFound
from framework import abort
from framework.orm import transaction

from .models import Bookmark
from .models import Collection
from .models import Tag


def _locked_bookmark(bookmark_id, no_key=False):
    """The bookmark, locked until the transaction ends (404 if there is none)."""
    locked = Bookmark.objects.select_for_update(no_key=no_key)
    bookmark = locked.filter(pk=bookmark_id).first()
    if bookmark is None:
        abort(404)
    return bookmark


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


def patch_bookmark(bookmark_id, changes):
    """Apply ``changes`` (the fields given); raises NotFound (404) if it is gone."""
    changes = dict(changes)
    tag_names = changes.pop("tags", None)
    with transaction.atomic():
        # no_key: the row is changed, never deleted, so other requests may
        # still insert rows that refer to it meanwhile.
        bookmark = _locked_bookmark(bookmark_id, no_key=True)
        if "collection" in changes:
            name = changes["collection"]
            changes["collection"] = Collection.objects.get_or_create(name=name)[0]
        for name, value in changes.items():
            setattr(bookmark, name, value)
        if changes:
            bookmark.save(update_fields=sorted(changes))
        if tag_names is not None:
            tags = _tags(tag_names)
            # Lock every tag whose count may change, in key order, so two
            # requests changing the same tags wait for each other instead of
            # deadlocking.
            current = set(bookmark.tags.values_list("pk", flat=True))
            touched = current | {tag.pk for tag in tags}
            list(
                Tag.objects.select_for_update(no_key=True)
                .filter(pk__in=touched)
                .order_by("pk")
            )
            bookmark.tags.set(tags)
    return bookmark


def update_bookmark(bookmark_id, changes):
    """Apply ``changes`` as the API's PATCH does; returns None if it is gone."""
    try:
        return patch_bookmark(bookmark_id, changes)
    except NotFound:
        return None


def delete_bookmark(bookmark_id):
    """Delete the bookmark; returns whether this call deleted it.

    The row is locked first, so that of simultaneous deletes one deletes it
    and the others, which wait for it, find nothing.
    """
    with transaction.atomic():
        bookmark = Bookmark.objects.select_for_update().filter(pk=bookmark_id).first()
        if bookmark is None:
            return False
        deleted, _ = bookmark.delete()
    return bool(deleted)
