"""Settings of app_example; every one can be overridden from the environment.

``DATABASE_URL`` replaces the default database, ``FRAMEWORK_<NAME>`` any other
setting (``FRAMEWORK_SECRET_KEY``, ...).
"""

INSTALLED_APPS = ["app_example"]

DATABASES = {"default": "sqlite:///app_example.db"}

# No key in the source. Set FRAMEWORK_SECRET_KEY (several instances must share
# one); without it, the first start writes a random key to SECRET_KEY_FILE
# (default: app_example.secret_key beside the SQLite database), mode 0600.
SECRET_KEY = ""
SECRET_KEY_FILE = ""

# The pages have no scripts, and every asset is served by the app itself.
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; object-src 'none';"
        " base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
}

# Clients allowed to read /metrics and /api/audit without an API token
# (addresses or networks). A request a reverse proxy relayed (X-Forwarded-For,
# X-Real-IP or Forwarded) needs the token whatever its address; behind a proxy
# that adds none of these, every client looks like 127.0.0.1: set it to [].
OPS_ALLOWED_ADDRESSES = ["127.0.0.1", "::1"]

# /fail raises on purpose, for load tests (framework loadtest turns it on).
FAIL_VIEW = False

# Write one JSON line per request on the "app_example.access" logger.
ACCESS_LOG_JSON = False

# Seed a few sample bookmarks on migrate when the database is empty.
SEED_SAMPLE_DATA = True

# The largest request body: the biggest bookmark (10,000 characters of notes,
# up to 4 bytes each in UTF-8, and short fields) fits; megabytes do not.
MAX_CONTENT_LENGTH = 64 * 1024
