"""WSGI entry point: ``gunicorn app_example.wsgi:app``.

Like Django's ``wsgi.py``, it chooses the settings module unless the
environment already did.
"""

import os

os.environ.setdefault("FRAMEWORK_SETTINGS_MODULE", "app_example.settings")

from . import receivers  # noqa: F401  (connects the receivers)
from . import views  # noqa: F401  (registers the routes)
from .web import app

__all__ = ["app"]
