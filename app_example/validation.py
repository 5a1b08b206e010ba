"""One set of rules for a bookmark, for the JSON API (POST and PATCH) and the forms.

``clean_bookmark(payload)`` checks a whole bookmark (POST, the add form);
``clean_bookmark(payload, partial=True)`` checks only the fields given (PATCH,
the edit form). Both refuse unknown fields, and both measure lengths after
normalising (stripped title and URL, lower-cased tags).
"""

from __future__ import annotations

import re
import urllib.parse

from .models import MAX_NOTES

URL_MAX = 500
TITLE_MAX = 200
NOTES_MAX = MAX_NOTES
TAG_MAX = 40
MAX_TAGS = 10
COLLECTION_MAX = 60
DEFAULT_COLLECTION = "inbox"

FIELDS = ("url", "title", "notes", "tags", "collection")
"""The fields of a bookmark a client may send."""

NON_FIELD = "__all__"
"""The key of an error that belongs to no single field."""

_TAG_SPLIT = re.compile(r"[,\s]+")


def split_tags(text):
    """Tags typed in a form: separated by commas or spaces."""
    return [part for part in _TAG_SPLIT.split(text or "") if part]


def _url(value):
    if not isinstance(value, str) or not value.strip():
        return None, "Enter the address, starting with http:// or https://."
    url = value.strip()
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None, "Enter an http:// or https:// address."
    if len(url) > URL_MAX:
        return None, f"The address is longer than {URL_MAX} characters."
    return url, None


def _title(value):
    if not isinstance(value, str) or not value.strip():
        return None, "Enter a title."
    title = value.strip()
    if len(title) > TITLE_MAX:
        return None, f"The title is longer than {TITLE_MAX} characters."
    return title, None


def _notes(value):
    if not isinstance(value, str):
        return None, "Notes must be text."
    if len(value) > NOTES_MAX:
        return None, f"The notes are longer than {NOTES_MAX} characters."
    return value, None


def _tags(value):
    if not isinstance(value, list) or not all(isinstance(tag, str) for tag in value):
        return None, "Tags must be a list of words."
    tags = sorted({tag.strip().lower() for tag in value if tag.strip()})
    too_long = [tag for tag in tags if len(tag) > TAG_MAX]
    if too_long:
        return None, f"A tag is at most {TAG_MAX} characters: {too_long[0][:50]!r}."
    if len(tags) > MAX_TAGS:
        return None, f"At most {MAX_TAGS} tags."
    return tags, None


def _collection(value):
    if not isinstance(value, str) or not value.strip():
        return None, "The collection must be a name."
    name = value.strip()
    if len(name) > COLLECTION_MAX:
        return None, f"A collection name is at most {COLLECTION_MAX} characters."
    return name, None


_CLEANERS = {
    "url": _url,
    "title": _title,
    "notes": _notes,
    "tags": _tags,
    "collection": _collection,
}
_DEFAULTS = {"notes": "", "tags": [], "collection": DEFAULT_COLLECTION}


def _has_nul(value):
    if isinstance(value, str):
        return "\x00" in value
    return isinstance(value, list) and any(_has_nul(item) for item in value)


def clean_bookmark(payload, *, partial=False):
    """Validate a bookmark.

    Returns ``(data, errors)``: the normalised values by field, and a message
    by field name (``NON_FIELD`` for the payload as a whole); ``errors`` is
    empty when the payload is valid.
    """
    if not isinstance(payload, dict):
        return {}, {NON_FIELD: "The body must be a JSON object."}
    errors = {}
    unknown = sorted(str(name) for name in payload if name not in _CLEANERS)
    if unknown:
        errors[NON_FIELD] = (
            f"Unknown field(s) {', '.join(map(repr, unknown))}; a bookmark has"
            f" {', '.join(map(repr, FIELDS))}."
        )
    data = {}
    for name, cleaner in _CLEANERS.items():
        if name in payload:
            value = payload[name]
        elif partial:
            continue
        elif name in _DEFAULTS:
            value = _DEFAULTS[name]
        else:
            value = None
        if _has_nul(value):
            errors[name] = "A NUL character (\\x00) cannot be stored."
            continue
        cleaned, problem = cleaner(value)
        if problem:
            errors[name] = problem
        else:
            data[name] = cleaned
    return data, errors


def first_error(errors):
    """One message for an API client: the first problem, naming its field."""
    for name, message in errors.items():
        if name == NON_FIELD:
            return message
        return f"{name!r}: {message}"
    return ""
