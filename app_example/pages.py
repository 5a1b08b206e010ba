"""The HTML pages: browse and search for anyone; add, edit, delete once signed in.

Every form is a POST protected by the framework's CSRF check (``csrf_input()``
in the templates); a valid POST redirects (303) to the page that shows the
result, an invalid one shows the form again with an error next to each field
(422). Errors are pages too: 404, 403 (a form without its CSRF token) and 500
have templates of their own, and the JSON API's errors are JSON (see
``http_error``).
"""

from __future__ import annotations

import math
import urllib.parse

from framework import HTTPException
from framework import abort
from framework import redirect
from framework import render

from . import accounts
from . import services
from .models import Bookmark
from .models import SearchDocument
from .models import Tag
from .validation import NON_FIELD
from .validation import clean_bookmark
from .validation import split_tags
from .views import MAX_SEARCH_LENGTH
from .views import MAX_TAG_LENGTH
from .web import app

PAGE_SIZE = 20
MESSAGES = "_messages"


# Helpers ---------------------------------------------------------------------


def flash(request, message):
    """Show ``message`` on the next page this browser sees."""
    messages = list(request.session.get(MESSAGES, []))[-4:]
    request.session[MESSAGES] = [*messages, message]


def _pop_messages(request):
    if MESSAGES not in request.session:
        return []
    messages = request.session.pop(MESSAGES)
    if not isinstance(messages, list):
        return []
    return [message for message in messages if isinstance(message, str)]


def page(request, template, context=None, status=200):
    data = {
        "user": accounts.current_user(request),
        "messages": _pop_messages(request),
        "show_account": True,
    }
    data.update(context or {})
    return render(template, data, status=status, request=request)


def see_other(location):
    return redirect(location, code=303)


def _local(target):
    """``target`` if it is a path on this site, else "/" (no open redirect).

    Browsers (and werkzeug's ``Location`` header) drop tabs and newlines
    from a URL and read a backslash as a slash, so ``/<TAB>/evil.example``
    and ``/\\evil.example`` lead off the site: a control character anywhere
    refuses the target.
    """
    if (
        isinstance(target, str)
        and target.startswith("/")
        and not target.startswith(("//", "/\\"))
        and not any(char < " " or char == "\x7f" for char in target)
    ):
        return target
    return "/"


def _signed_in(request):
    user = accounts.current_user(request)
    if user is None:
        location = request.full_path if request.query_string else request.path
        abort(see_other("/signin?" + urllib.parse.urlencode({"next": location})))
    return user


def _rows(bookmarks):
    """Bookmarks (loaded with ``_loaded``) as template rows."""
    return [
        {
            "id": bookmark.pk,
            "url": bookmark.url,
            "host": urllib.parse.urlsplit(bookmark.url).hostname or bookmark.url,
            "title": bookmark.title,
            "notes": bookmark.notes,
            "collection": bookmark.collection.name,
            "tags": sorted(tag.name for tag in bookmark.tags.all()),
            "created": bookmark.created,
        }
        for bookmark in bookmarks
    ]


def _loaded(query):
    """``query`` with collections joined and tags prefetched: 2 queries in all."""
    return query.select_related("collection").prefetch_related("tags")


def _bookmark(bookmark_id):
    bookmark = _loaded(Bookmark.objects.filter(pk=bookmark_id)).first()
    if bookmark is None:
        abort(404)
    return bookmark


# Browsing --------------------------------------------------------------------


def _heading(q, tag):
    if q and tag:
        return f"Search results for “{q}” tagged “{tag}”"
    if q:
        return f"Search results for “{q}”"
    if tag:
        return f"Bookmarks tagged “{tag}”"
    return "Latest bookmarks"


def _empty_text(q, tag):
    if q and tag:
        return f"No bookmarks tagged “{tag}” match “{q}”."
    if q:
        return f"No bookmarks match “{q}”."
    if tag:
        return f"No bookmarks are tagged “{tag}”."
    return "No bookmarks yet."


def _page_url(q, tag, number):
    query = {
        name: value
        for name, value in (("q", q), ("tag", tag), ("page", number))
        if value and not (name == "page" and number == 1)
    }
    return "/?" + urllib.parse.urlencode(query) if query else "/"


def _query_text(request, name, limit):
    """A search word or tag from the query string; 400 as the API answers it."""
    value = request.args.get(name, "").strip()
    if name == "tag":
        value = value.lower()  # measured after lower-casing, as tags are
    if len(value) > limit or "\x00" in value:
        abort(400, f"'{name}' must be text of at most {limit} characters.")
    return value


@app.route("/")
def index(request):
    q = _query_text(request, "q", MAX_SEARCH_LENGTH)
    tag = _query_text(request, "tag", MAX_TAG_LENGTH)
    try:
        number = int(request.args.get("page", "1"))
    except ValueError:
        abort(404)
    if number < 1:
        abort(404)
    query = Bookmark.objects.order_by("-id")
    if tag:
        tag_obj = Tag.objects.filter(name=tag).first()
        query = tag_obj.bookmarks.order_by("-id") if tag_obj is not None else None
    if q and query is not None:
        ids = SearchDocument.objects.filter(text__contains=q.lower()).values_list(
            "bookmark", flat=True
        )
        query = query.filter(pk__in=sorted(set(ids)))
    total = query.count() if query is not None else 0
    pages = max(1, math.ceil(total / PAGE_SIZE))
    if number > pages:
        abort(404)
    start = (number - 1) * PAGE_SIZE
    bookmarks = list(_loaded(query)[start : start + PAGE_SIZE]) if total else []
    return page(
        request,
        "index.html",
        {
            "q": q,
            "tag": tag,
            "heading": _heading(q, tag),
            "empty_text": _empty_text(q, tag),
            "filtered": bool(q or tag),
            "bookmarks": _rows(bookmarks),
            "total": total,
            "number": number,
            "pages": pages,
            "newer_url": _page_url(q, tag, number - 1) if number > 1 else None,
            "older_url": _page_url(q, tag, number + 1) if number < pages else None,
        },
    )


@app.route("/bookmarks/<int:bookmark_id>")
def bookmark_page(request, bookmark_id):
    (row,) = _rows([_bookmark(bookmark_id)])
    return page(request, "bookmark.html", {"bookmark": row})


@app.route("/tags")
def tags_page(request):
    tags = list(Tag.objects.order_by("name"))
    return page(request, "tags.html", {"tags": tags})


@app.route("/favicon.ico")
def favicon(request):
    return app.static.view(request, "favicon.ico")


# Writing ---------------------------------------------------------------------


def _form_payload(form, with_collection):
    payload = {
        "url": form.get("url", ""),
        "title": form.get("title", ""),
        "notes": form.get("notes", "").replace("\r\n", "\n"),
        "tags": split_tags(form.get("tags", "")),
    }
    if with_collection:
        payload["collection"] = form.get("collection", "") or "inbox"
    return payload


def _form_page(request, template, values, errors, bookmark=None, status=200):
    return page(
        request,
        template,
        {
            "values": values,
            "errors": errors,
            "form_error": errors.get(NON_FIELD),
            "bookmark": bookmark,
        },
        status=status,
    )


def _values_of(payload):
    return {**payload, "tags": " ".join(payload.get("tags", []))}


@app.route("/bookmarks/new", methods=["GET", "POST"])
def new_bookmark(request):
    _signed_in(request)
    if request.method == "GET":
        values = {"url": request.args.get("url", ""), "title": "", "notes": ""}
        return _form_page(request, "bookmark_form.html", {**values, "tags": ""}, {})
    payload = _form_payload(request.form, with_collection=True)
    data, errors = clean_bookmark(payload)
    if errors:
        return _form_page(
            request, "bookmark_form.html", _values_of(payload), errors, status=422
        )
    bookmark = services.create_bookmark(data)
    flash(request, f"Added “{bookmark.title}”.")
    return see_other(f"/bookmarks/{bookmark.pk}")


@app.route("/bookmarks/<int:bookmark_id>/edit", methods=["GET", "POST"])
def edit_bookmark(request, bookmark_id):
    _signed_in(request)
    (row,) = _rows([_bookmark(bookmark_id)])
    if request.method == "GET":
        return _form_page(request, "bookmark_form.html", _values_of(row), {}, row)
    payload = _form_payload(request.form, with_collection=False)
    changes, errors = clean_bookmark(payload, partial=True)
    if errors:
        return _form_page(
            request, "bookmark_form.html", _values_of(payload), errors, row, 422
        )
    bookmark = services.update_bookmark(bookmark_id, changes)
    if bookmark is None:
        abort(404)
    flash(request, f"Saved “{bookmark.title}”.")
    return see_other(f"/bookmarks/{bookmark.pk}")


@app.route("/bookmarks/<int:bookmark_id>/delete", methods=["GET", "POST"])
def delete_bookmark(request, bookmark_id):
    _signed_in(request)
    (row,) = _rows([_bookmark(bookmark_id)])
    if request.method == "GET":
        return page(request, "bookmark_delete.html", {"bookmark": row})
    if services.delete_bookmark(bookmark_id):
        flash(request, f"Deleted “{row['title']}”.")
    return see_other("/")


# Signing in ------------------------------------------------------------------


@app.route("/signin", methods=["GET", "POST"])
def signin(request):
    target = _local(request.values.get("next", "/"))
    if request.method == "GET":
        if accounts.current_user(request) is not None:
            return see_other(target)
        return page(request, "signin.html", {"next": target, "username": ""})
    username = request.form.get("username", "").strip()
    user = accounts.authenticate(username, request.form.get("password", ""))
    if user is None:
        return page(
            request,
            "signin.html",
            {
                "next": target,
                "username": username,
                "error": "Wrong username or password.",
            },
            status=422,
        )
    accounts.sign_in(request, user)
    flash(request, f"Signed in as {user.username}.")
    return see_other(target)


@app.route("/signout", methods=["POST"])
def signout(request):
    accounts.sign_out(request)
    flash(request, "Signed out.")
    return see_other("/")


# Errors ----------------------------------------------------------------------


def _json_error(exc, status):
    headers = [
        (name, value)
        for name, value in exc.get_headers()
        if name.lower() != "content-type"
    ]
    return {"error": exc.description or exc.name}, status, headers


_ERROR_PAGES = {
    403: ("This form could not be sent", None),
    404: (
        "Page not found",
        "There is nothing at this address: the bookmark may have been deleted,"
        " or the link is mistyped.",
    ),
    405: ("Not allowed here", "This page cannot be used that way."),
}


@app.errorhandler(HTTPException)
def http_error(request, exc):
    """Every HTTP error: JSON under /api/, a page elsewhere."""
    if request is not None and request.path.startswith("/api/"):
        return _json_error(exc, exc.code)
    title, message = _ERROR_PAGES.get(exc.code, (exc.name, None))
    return render(
        "error.html",
        {
            "code": exc.code,
            "title": title,
            "message": message or exc.description,
            "show_account": False,
        },
        status=exc.code,
        headers=dict(
            (name, value)
            for name, value in exc.get_headers()
            if name.lower() != "content-type"
        ),
        app=app,
    )


@app.errorhandler(500)
def server_error(request, exc):
    """The 500 page: no database, no session, nothing that could fail again."""
    if request is not None and request.path.startswith("/api/"):
        return {"error": "Internal server error."}, 500
    return render(
        "error.html",
        {
            "code": 500,
            "title": "Something went wrong",
            "message": "The server could not answer this request. It has been"
            " logged; try again in a moment.",
            "show_account": False,
        },
        status=500,
        app=app,
    )
