"""Settings of app_example; every one can be overridden from the environment.

``DATABASE_URL`` replaces the default database, ``FRAMEWORK_<NAME>`` any other
setting (``FRAMEWORK_SECRET_KEY``, ...).
"""

INSTALLED_APPS = ["app_example"]

DATABASES = {"default": "sqlite:///app_example.db"}

SECRET_KEY = "dev-only-insecure-key-set-FRAMEWORK_SECRET_KEY-in-production"

# Write one JSON line per request on the "app_example.access" logger.
ACCESS_LOG_JSON = False

# Seed a few sample bookmarks on migrate when the database is empty.
SEED_SAMPLE_DATA = True

# The largest request body: the biggest bookmark (10,000 characters of notes,
# up to 4 bytes each in UTF-8, and short fields) fits; megabytes do not.
MAX_CONTENT_LENGTH = 64 * 1024
