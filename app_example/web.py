"""The application object; its class is the sender of the request signals."""

import os

from framework import App
from framework.conf import ImproperlyConfigured
from framework.conf import settings
from framework.security import load_or_create_secret_key


class BookmarksApp(App):
    """app_example's app.

    A subclass of its own so that receivers can be connected for it alone:
    the request signals are sent with ``sender=type(app)``.
    """


app = BookmarksApp(__name__, static_folder="static")

KEY_FILE_NAME = "app_example.secret_key"


def secret_key_file():
    """Where the generated key lives: SECRET_KEY_FILE, else beside the database."""
    configured = getattr(settings, "SECRET_KEY_FILE", "")
    if configured:
        return configured
    default = settings.DATABASES.get("default", "")
    url = default.get("URL", "") if isinstance(default, dict) else default
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        directory = os.path.dirname(url[len("sqlite:///") :])
        return os.path.join(directory, KEY_FILE_NAME)
    return KEY_FILE_NAME


def ensure_secret_key():
    """Use the configured SECRET_KEY, or one kept in a file made on first start."""
    if settings.SECRET_KEY:
        return
    path = secret_key_file()
    try:
        settings.SECRET_KEY = load_or_create_secret_key(path)
    except OSError as exc:
        raise ImproperlyConfigured(
            f"No SECRET_KEY is set and the key file {path} cannot be created"
            f" ({exc.strerror}); set FRAMEWORK_SECRET_KEY, or FRAMEWORK_SECRET_KEY_FILE"
            " to a writable place."
        ) from exc
