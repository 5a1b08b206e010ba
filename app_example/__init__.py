"""app_example: a small bookmarks service with tags, built on every signal.

Run it with ``framework serve`` (SQLite, created and migrated on first start)
or ``gunicorn app_example.wsgi:app``. See docs/app_example.md.
"""
