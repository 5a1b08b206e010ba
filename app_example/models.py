"""The bookmarks service's models."""

from framework import orm


class Collection(orm.Model):
    name = orm.CharField(max_length=60, unique=True)
    created = orm.DateTimeField(auto_now_add=True)


class Tag(orm.Model):
    name = orm.CharField(max_length=40, unique=True)
    # Kept up to date by the m2m_changed receiver (receivers.count_tags).
    bookmark_count = orm.IntegerField(default=0)


class Bookmark(orm.Model):
    url = orm.CharField(max_length=500)
    title = orm.CharField(max_length=200)
    notes = orm.TextField(default="")
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
