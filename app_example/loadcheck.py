"""The database side of app_example's load test: ``--check ...loadcheck:check``.

``framework loadtest`` calls :func:`check` with its results once the servers
have stopped. The servers ran in ``results["server"]["cwd"]`` with
``results["server"]["env"]`` added to their environment (which this process
has too while the check runs: ``results.json`` hides passwords), so the
database they wrote is found the way they found it: ``DATABASE_URL``, else the
default SQLite file of ``app_example.settings`` (a relative path, in their
working directory).
"""

from __future__ import annotations

import collections
import contextlib
import os
import sqlite3

from . import settings

WRITE = "write"
"""The scenario's request that creates a bookmark with a ``${unique}`` title."""


def database_url(results):
    url = results["server"]["env"].get("DATABASE_URL", "")
    if not url or "<hidden>" in url:  # a password: this process has the URL
        url = os.environ.get("DATABASE_URL", settings.DATABASES["default"])
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        path = url[len("sqlite:///") :]
        url = "sqlite:///" + os.path.join(results["server"]["cwd"], path)
    return url


def query(url, sql, params=()):
    if url.startswith("sqlite:"):
        with contextlib.closing(sqlite3.connect(url[len("sqlite:///") :])) as db:
            return db.execute(sql.replace("%s", "?"), params).fetchall()
    import psycopg

    with psycopg.connect(url) as db:
        return db.execute(sql, params).fetchall()


def check(results):
    """Return the failed checks: every acknowledged write there once, counts right."""
    url = database_url(results)
    written = results["acknowledged"].get(WRITE, [])
    prefix = results["unique_prefix"]
    rows = query(
        url,
        "SELECT title FROM app_example_bookmark WHERE title LIKE %s",
        (prefix + "-%",),
    )
    found = collections.Counter(title for (title,) in rows)
    failed = []
    missing = sorted(set(written) - set(found))
    if missing:
        failed.append(
            f"{len(missing)} acknowledged writes are not in the database:"
            f" {', '.join(missing[:5])}"
        )
    duplicated = sorted(title for title, count in found.items() if count > 1)
    if duplicated:
        failed.append(f"written more than once: {', '.join(duplicated[:5])}")
    unknown = sorted(set(found) - set(written))
    if unknown:
        failed.append(
            f"{len(unknown)} rows no acknowledged write made: {', '.join(unknown[:5])}"
        )
    tags = query(
        url,
        "SELECT t.name, t.bookmark_count, (SELECT COUNT(*) FROM"
        " app_example_bookmark_tags l WHERE l.tag_id = t.id) FROM app_example_tag t",
    )
    wrong = [
        f"{name}: {kept} kept, {linked} linked"
        for name, kept, linked in tags
        if kept != linked
    ]
    if wrong:
        failed.append("tag counts (m2m_changed) do not match: " + "; ".join(wrong))
    ((bookmarks,),) = query(url, "SELECT COUNT(*) FROM app_example_bookmark")
    ((indexed,),) = query(
        url, "SELECT COUNT(DISTINCT bookmark_id) FROM app_example_searchdocument"
    )
    if indexed != bookmarks:
        failed.append(
            f"{bookmarks - indexed} of {bookmarks} bookmarks have no search document"
            " (on_commit receiver)"
        )
    return failed
