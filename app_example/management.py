"""Management hooks: seed data after ``migrate`` (post_migrate).

``migrate`` imports this module before sending anything. The receiver is
idempotent, as post_migrate receivers must be: every run of ``migrate``
sends the signal, and only what is missing gets created.
"""

from __future__ import annotations

from framework import receiver
from framework import signals
from framework.conf import settings
from framework.orm import transaction

from . import models

DEFAULT_COLLECTION = "inbox"
DEFAULT_TAGS = ("python", "web", "databases", "reading")
SAMPLES = (
    ("https://peps.python.org/pep-3333/", "PEP 3333: WSGI", ("python", "web")),
    ("https://www.sqlite.org/wal.html", "SQLite write-ahead logging", ("databases",)),
    ("https://docs.gunicorn.org/", "Gunicorn documentation", ("python", "web")),
)


@receiver(signals.post_migrate, sender=models)
def seed_data(sender, *, using, **kwargs):
    with transaction.atomic(using=using):
        inbox, _ = models.Collection.objects.using(using).get_or_create(
            name=DEFAULT_COLLECTION
        )
        tags = {
            name: models.Tag.objects.using(using).get_or_create(name=name)[0]
            for name in DEFAULT_TAGS
        }
        if not getattr(settings, "SEED_SAMPLE_DATA", True):
            return
        if models.Bookmark.objects.using(using).exists():
            return
        for url, title, tag_names in SAMPLES:
            bookmark = models.Bookmark.objects.using(using).create(
                url=url, title=title, collection=inbox
            )
            bookmark.tags.add(*(tags[name] for name in tag_names))
