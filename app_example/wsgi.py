"""WSGI entry point: ``gunicorn app_example.wsgi:app``.

Like Django's ``wsgi.py``, it chooses the settings module unless the
environment already did. Without a configured ``SECRET_KEY`` it uses the one
kept beside the database, creating it on the first start (``web.py``).
"""

import os

os.environ.setdefault("FRAMEWORK_SETTINGS_MODULE", "app_example.settings")

from . import pages  # noqa: F401  (registers the pages)
from . import receivers  # noqa: F401  (connects the receivers)
from . import views  # noqa: F401  (registers the routes)
from .web import app
from .web import ensure_secret_key

ensure_secret_key()

__all__ = ["app"]
