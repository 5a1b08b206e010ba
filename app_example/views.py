"""Pages (Jinja2) and the JSON API of the bookmarks service."""

from __future__ import annotations

import csv
import io
import os

from framework import Response
from framework import abort
from framework import render
from framework.orm import transaction

from . import metrics
from .models import AuditEntry
from .models import Bookmark
from .models import Collection
from .models import SearchDocument
from .models import Tag
from .web import app

PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
MAX_TAGS = 10
EXPORT_CHUNK = 200


class InjectedFailure(RuntimeError):
    """Raised on purpose by /fail, so load tests can count unhandled errors."""


def _bookmarks(request):
    query = Bookmark.objects.order_by("-id")
    tag = request.args.get("tag")
    if tag:
        tag_obj = Tag.objects.filter(name=tag).first()
        if tag_obj is None:
            return []
        query = tag_obj.bookmarks.order_by("-id")
    search = request.args.get("q", "").strip().lower()
    if search:
        ids = SearchDocument.objects.filter(text__contains=search).values_list(
            "bookmark", flat=True
        )
        query = query.filter(pk__in=list(ids))
    try:
        limit = min(int(request.args.get("limit", PAGE_SIZE)), MAX_PAGE_SIZE)
    except ValueError:
        abort(400)
    return list(query[: max(limit, 0)])


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


# Pages -----------------------------------------------------------------------


@app.route("/")
def index(request):
    bookmarks = _bookmarks(request)
    return render(
        "index.html",
        {
            "bookmarks": [_as_json(b) for b in bookmarks],
            "tag": request.args.get("tag", ""),
            "q": request.args.get("q", ""),
        },
        app=request.app,
    )


@app.route("/bookmarks/<int:bookmark_id>")
def bookmark_page(request, bookmark_id):
    bookmark = _as_json(_get_bookmark(bookmark_id))
    return render("bookmark.html", {"bookmark": bookmark}, app=request.app)


@app.route("/tags")
def tags_page(request):
    tags = list(Tag.objects.order_by("name"))
    return render("tags.html", {"tags": tags}, app=request.app)


# JSON API --------------------------------------------------------------------


def _error(message, status=400):
    return {"error": message}, status


def _clean(payload, partial=False):
    """Validate a bookmark; ``partial``: only the fields given (PATCH)."""
    if not isinstance(payload, dict):
        return None, "The body must be a JSON object."
    given = set(payload)
    if partial:
        unknown = sorted(given - {"url", "title", "notes", "tags"})
        if unknown:
            return None, f"Cannot change {', '.join(map(repr, unknown))}."
        payload = {"url": "https://-", "title": "-", **payload}
    url = payload.get("url")
    title = payload.get("title")
    tags = payload.get("tags", [])
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        return None, "'url' must be an http:// or https:// URL."
    if len(url) > 500:
        return None, "'url' is longer than 500 characters."
    if not isinstance(title, str) or not title.strip() or len(title) > 200:
        return None, "'title' must be a non-empty string of at most 200 characters."
    if (
        not isinstance(tags, list)
        or len(tags) > MAX_TAGS
        or not all(isinstance(tag, str) and 0 < len(tag) <= 40 for tag in tags)
    ):
        return None, f"'tags' must be a list of at most {MAX_TAGS} short strings."
    notes = payload.get("notes", "")
    if not isinstance(notes, str):
        return None, "'notes' must be a string."
    collection = payload.get("collection", "inbox")
    if not isinstance(collection, str) or not 0 < len(collection) <= 60:
        return None, "'collection' must be a short string."
    data = {
        "url": url,
        "title": title.strip(),
        "notes": notes,
        "tags": sorted({tag.strip().lower() for tag in tags if tag.strip()}),
        "collection": collection,
    }
    if partial:
        data = {name: value for name, value in data.items() if name in given}
    return data, None


@app.route("/api/bookmarks", methods=["GET", "POST"])
def bookmarks_api(request):
    if request.method == "GET":
        return {"bookmarks": [_as_json(b) for b in _bookmarks(request)]}
    data, problem = _clean(request.get_json())
    if problem:
        return _error(problem)
    with transaction.atomic():
        collection, _ = Collection.objects.get_or_create(name=data["collection"])
        bookmark = Bookmark.objects.create(
            url=data["url"],
            title=data["title"],
            notes=data["notes"],
            collection=collection,
        )
        tags = [Tag.objects.get_or_create(name=name)[0] for name in data["tags"]]
        if tags:
            bookmark.tags.add(*tags)
    return (
        _as_json(bookmark),
        201,
        {"Location": f"/api/bookmarks/{bookmark.pk}"},
    )


@app.route("/api/bookmarks/<int:bookmark_id>", methods=["GET", "PATCH", "DELETE"])
def bookmark_api(request, bookmark_id):
    if request.method == "DELETE":
        with transaction.atomic():
            # Locked, so that of simultaneous deletes one answers 204 and
            # the others, which wait for it, find nothing: 404.
            bookmark = _locked_bookmark(bookmark_id)
            deleted, _ = bookmark.delete()
        if not deleted:
            abort(404)
        return Response(status=204)
    if request.method == "PATCH":
        changes, problem = _clean(request.get_json(), partial=True)
        if problem:
            return _error(problem)
        tag_names = changes.pop("tags", None)
        with transaction.atomic():
            bookmark = _locked_bookmark(bookmark_id)
            for name, value in changes.items():
                setattr(bookmark, name, value)
            if changes:
                bookmark.save(update_fields=sorted(changes))
            if tag_names is not None:
                tags = [Tag.objects.get_or_create(name=name)[0] for name in tag_names]
                # Lock every tag whose count may change, in key order, so two
                # requests changing the same tags wait for each other instead
                # of deadlocking.
                current = set(bookmark.tags.values_list("pk", flat=True))
                touched = current | {tag.pk for tag in tags}
                list(
                    Tag.objects.select_for_update()
                    .filter(pk__in=touched)
                    .order_by("pk")
                )
                bookmark.tags.set(tags)
        return _as_json(bookmark)
    return _as_json(_get_bookmark(bookmark_id))


def _locked_bookmark(bookmark_id):
    """The bookmark, locked until the transaction ends (404 if there is none)."""
    bookmark = Bookmark.objects.select_for_update().filter(pk=bookmark_id).first()
    if bookmark is None:
        abort(404)
    return bookmark


@app.route("/api/tags")
def tags_api(request):
    return {
        "tags": [
            {"name": tag.name, "bookmarks": tag.bookmark_count}
            for tag in Tag.objects.order_by("name")
        ]
    }


@app.route("/api/audit")
def audit_api(request):
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


@app.route("/export.csv")
def export_csv(request):
    """Stream every bookmark as CSV, a chunk of rows at a time.

    Two queries up front (tag and collection names), then two per chunk (the
    rows and their tag links).
    """
    through = Bookmark.tags.through

    def rows():
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["id", "url", "title", "collection", "tags", "created"])
        tag_names = dict(Tag.objects.values_list("id", "name"))
        collections = dict(Collection.objects.values_list("id", "name"))
        last_id = 0
        while True:
            chunk = list(
                Bookmark.objects.filter(pk__gt=last_id)
                .order_by("id")
                .values_list("id", "url", "title", "collection", "created")[
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
            for bookmark_id, url, title, collection_id, created in chunk:
                writer.writerow(
                    [
                        bookmark_id,
                        url,
                        title,
                        collections.get(collection_id, ""),
                        " ".join(sorted(tags_of.get(bookmark_id, []))),
                        created.isoformat() if created else "",
                    ]
                )
            last_id = chunk[-1][0]
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()

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
    return Response(metrics.prometheus_text(), mimetype="text/plain; version=0.0.4")


@app.route("/fail")
def fail(request):
    raise InjectedFailure("failure injected on purpose by /fail")


# Fixed endpoints of the end-to-end benchmark (bench/e2e.py) -------------------------


@app.route("/hello")
def hello(request):
    return "Hello, World!"


@app.route("/users/<int:user_id>")
def user(request, user_id):
    return {"id": user_id, "name": f"user{user_id}"}
