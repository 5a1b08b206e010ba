"""Seeds a default tag after every migrate and flush (idempotent, as it must be)."""

from framework import signals

from . import models


def seed_default_tag(sender, app_config, using, **kwargs):
    if not models.Tag.objects.using(using).filter(label="general").exists():
        models.Tag(label="general").save(using=using)


signals.post_migrate.connect(
    seed_default_tag, sender=models, dispatch_uid="library.seed_default_tag"
)
