"""WSGI entry point: ``gunicorn app_example.wsgi:app``.

Like Django's ``wsgi.py``, it chooses the settings module unless the
environment already did, then runs ``framework.setup()``, which imports the
installed apps with their models and receivers (app_example's receivers
module among them). Without a configured ``SECRET_KEY`` it uses the one kept
beside the database, creating it on the first start (``web.py``).
"""

import os

os.environ.setdefault("FRAMEWORK_SETTINGS_MODULE", "app_example.settings")

import framework

framework.setup()

from . import pages  # noqa: E402,F401  (registers the pages)
from . import views  # noqa: E402,F401  (registers the routes)
from .web import app  # noqa: E402
from .web import ensure_secret_key  # noqa: E402

ensure_secret_key()

__all__ = ["app"]
