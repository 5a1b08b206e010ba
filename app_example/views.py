"""The JSON API and the operations endpoints; the HTML pages are in pages.py."""

from __future__ import annotations

import csv
import io
import os
from urllib.parse import urlencode

from framework import Response
from framework import abort
from framework import metrics
from framework.conf import settings
from framework.exceptions import BadRequest
from framework.orm import ValidationError
from framework.orm import transaction

from . import services
from .accounts import api_view
from .accounts import require_operator
from .models import AuditEntry
from .models import Bookmark
from .models import Collection
from .models import SearchDocument
from .models import Tag
from .validation import clean_bookmark
from .validation import first_error
from .web import app

PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
MAX_TAG_LENGTH = 40
MAX_SEARCH_LENGTH = 200
EXPORT_CHUNK = 200


class InjectedFailure(RuntimeError):
    """Raised on purpose by /fail, so load tests can count unhandled errors."""


def _bookmarks(request, extra=0):
    """The bookmarks the query string asks for; 400 for a malformed one.

    A page of ``limit`` (at most MAX_PAGE_SIZE), newest first, older than the
    bookmark id ``before`` if given; ``extra`` more rows are fetched.
    """
    query = Bookmark.objects.order_by("-id")
    tag = request.args.get("tag", "").strip().lower()
    if len(tag) > MAX_TAG_LENGTH or "\x00" in tag:
        abort(400, f"'tag' must be a tag name of at most {MAX_TAG_LENGTH} characters.")
    if tag:
        tag_obj = Tag.objects.filter(name=tag).first()
        if tag_obj is None:
            return []
        query = tag_obj.bookmarks.order_by("-id")
    search = request.args.get("q", "").strip().lower()
    if len(search) > MAX_SEARCH_LENGTH or "\x00" in search:
        abort(400, f"'q' must be text of at most {MAX_SEARCH_LENGTH} characters.")
    if search:
        ids = SearchDocument.objects.filter(text__contains=search).values_list(
            "bookmark", flat=True
        )
        query = query.filter(pk__in=list(ids))
    before = request.args.get("before")
    if before is not None:
        # NOTE: str.isdigit() also accepts "²" and other digits int() refuses.
        if not (before.isascii() and before.isdigit()) or len(before) > 20:
            abort(400, "'before' must be a bookmark id.")
        query = query.filter(pk__lt=int(before))
    # One more than asked for: whether there is a next page.
    return list(query[: _limit(request) + extra])


def _limit(request):
    """The page size asked for, within 1..MAX_PAGE_SIZE (400 if not a number)."""
    try:
        limit = int(request.args.get("limit", PAGE_SIZE))
    except ValueError:
        abort(400, f"'limit' must be a number from 1 to {MAX_PAGE_SIZE}.")
    return min(max(limit, 1), MAX_PAGE_SIZE)


def _next_page(request, found, **cursor):
    """The URL of the page after ``found`` (None on the last page)."""
    if len(found) <= _limit(request):
        return None
    query = {**request.args.to_dict(), **cursor, "limit": _limit(request)}
    return f"{request.path}?{urlencode(query)}"


def _as_json(bookmark):
    return {
        "id": bookmark.pk,
        "url": bookmark.url,
        "title": bookmark.title,
        "notes": bookmark.notes,
        "collection": bookmark.collection.name,
        "tags": sorted(bookmark.tags.values_list("name", flat=True)),
        "created": bookmark.created.isoformat() if bookmark.created else None,
    }


def _get_bookmark(bookmark_id):
    bookmark = Bookmark.objects.filter(pk=bookmark_id).first()
    if bookmark is None:
        abort(404)
    return bookmark


# JSON API --------------------------------------------------------------------


def _error(message, status=400):
    return {"error": message}, status


def _clean(payload, partial=False):
    """Validate a bookmark; ``partial``: only the fields given (PATCH).

    The rules are validation.py's, shared with the pages' forms: POST and
    PATCH refuse unknown fields alike.
    """
    data, errors = clean_bookmark(payload, partial=partial)
    if errors:
        return None, first_error(errors)
    return data, None


@app.route("/api/bookmarks", methods=["GET", "POST"])
@api_view
def bookmarks_api(request):
    if request.method == "GET":
        try:
            found = _bookmarks(request, extra=1)
            limit = _limit(request)
        except BadRequest as exc:
            return _error(exc.description)
        page = found[:limit]
        following = _next_page(request, found, before=page[-1].pk) if page else None
        return {"bookmarks": [_as_json(b) for b in page], "next": following}
    data, problem = _clean(request.get_json())
    if problem:
        return _error(problem)
    try:
        bookmark = services.create_bookmark(data)
    except ValidationError as exc:
        # What the fields refuse (a NUL, a lone surrogate...): the client's error.
        return _error(str(exc))
    return (
        _as_json(bookmark),
        201,
        {"Location": f"/api/bookmarks/{bookmark.pk}"},
    )


@app.route("/api/bookmarks/<int:bookmark_id>", methods=["GET", "PATCH", "DELETE"])
@api_view
def bookmark_api(request, bookmark_id):
    if request.method == "DELETE":
        # Of simultaneous deletes one answers 204, the others 404.
        if not services.delete_bookmark(bookmark_id):
            abort(404)
        return Response(status=204)
    if request.method == "PATCH":
        changes, problem = _clean(request.get_json(), partial=True)
        if problem:
            return _error(problem)
        try:
            bookmark = services.patch_bookmark(bookmark_id, changes)
        except ValidationError as exc:
            # What the fields refuse (a NUL, a lone surrogate...): the client's error.
            return _error(str(exc))
        return _as_json(bookmark)
    return _as_json(_get_bookmark(bookmark_id))


@app.route("/api/tags")
def tags_api(request):
    after = request.args.get("after", "")
    if len(after) > MAX_TAG_LENGTH or "\x00" in after:
        return _error(f"'after' must be a tag name of at most {MAX_TAG_LENGTH} chars.")
    try:
        limit = _limit(request)
    except BadRequest as exc:
        return _error(exc.description)
    query = Tag.objects.order_by("name")
    if after:
        query = query.filter(name__gt=after)
    found = list(query[: limit + 1])
    page = found[:limit]
    return {
        "tags": [{"name": tag.name, "bookmarks": tag.bookmark_count} for tag in page],
        "next": _next_page(request, found, after=page[-1].name) if page else None,
    }


@app.route("/api/audit")
def audit_api(request):
    require_operator(request)
    entries = AuditEntry.objects.order_by("-id")[:50]
    return {
        "entries": [
            {
                "action": entry.action,
                "model": entry.model,
                "object_id": entry.object_id,
                "summary": entry.summary,
                "at": entry.at.isoformat() if entry.at else None,
            }
            for entry in entries
        ]
    }


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(text):
    """``text`` as a CSV cell no spreadsheet runs as a formula.

    A cell starting with ``= + - @``, a tab or a carriage return gets a
    leading ``'`` (OWASP's advice for CSV injection); nothing else changes.
    """
    if text and text.startswith(FORMULA_STARTS):
        return "'" + text
    return text


@app.route("/export.csv")
def export_csv(request):
    """Stream every bookmark as CSV, a chunk of rows at a time.

    Two queries up front (tag and collection names), then two per chunk (the
    rows and their tag links). Text cells a spreadsheet would run as a
    formula are neutralised (``_cell``).
    """
    through = Bookmark.tags.through

    def rows():
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(
            ["id", "url", "title", "notes", "collection", "tags", "created"]
        )
        tag_names = dict(Tag.objects.values_list("id", "name"))
        collections = dict(Collection.objects.values_list("id", "name"))
        last_id = 0
        while True:
            chunk = list(
                Bookmark.objects.filter(pk__gt=last_id)
                .order_by("id")
                .values_list("id", "url", "title", "notes", "collection", "created")[
                    :EXPORT_CHUNK
                ]
            )
            if not chunk:
                break
            links = through.objects.filter(
                bookmark__in=[row[0] for row in chunk]
            ).values_list("bookmark", "tag")
            tags_of: dict[int, list[str]] = {}
            for bookmark_id, tag_id in links:
                tags_of.setdefault(bookmark_id, []).append(tag_names.get(tag_id, ""))
            for bookmark_id, url, title, notes, collection_id, created in chunk:
                writer.writerow(
                    [
                        bookmark_id,
                        _cell(url),
                        _cell(title),
                        _cell(notes),
                        _cell(collections.get(collection_id, "")),
                        _cell(" ".join(sorted(tags_of.get(bookmark_id, [])))),
                        created.isoformat() if created else "",
                    ]
                )
            last_id = chunk[-1][0]
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
        if buffer.tell():  # no bookmark at all: the header alone
            yield buffer.getvalue().encode()

    return Response(
        rows(),
        mimetype="text/csv",
        headers={"Content-Disposition": 'attachment; filename="bookmarks.csv"'},
    )


# Operations ------------------------------------------------------------------


@app.route("/healthz")
def healthz(request):
    connection = transaction.get_connection()
    connection.execute("SELECT 1")
    return {"status": "ok", "pid": os.getpid()}


@app.route("/metrics")
def prometheus_metrics(request):
    """Every worker's request-signal counters (framework.metrics), for operators."""
    require_operator(request)
    return metrics.view(request)


@app.route("/fail")
def fail(request):
    if not settings.FAIL_VIEW:  # off unless a load test turns it on
        abort(404)
    raise InjectedFailure("failure injected on purpose by /fail")
