"""WSGI entry point: ``gunicorn app_example.wsgi:app``.

Like Django's ``wsgi.py``, it chooses the settings module unless the
environment already did, then runs ``framework.setup()``, which imports the
installed apps with their models and receivers (app_example's receivers
module among them).
"""

import os

os.environ.setdefault("FRAMEWORK_SETTINGS_MODULE", "app_example.settings")

import framework

framework.setup()

from . import views  # noqa: E402,F401  (registers the routes)
from .web import app  # noqa: E402

__all__ = ["app"]
