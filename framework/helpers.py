"""Views' helpers that build responses: :func:`redirect`, :func:`send_file`.

They are werkzeug's, building a :class:`~framework.wrappers.Response` (which
takes the lean paths); :func:`send_file` takes the request explicitly (views
get no thread-local request).
"""

from __future__ import annotations

import functools
import os
import time
import typing as t

from markupsafe import escape
from werkzeug.exceptions import BadRequest
from werkzeug.http import http_date
from werkzeug.urls import iri_to_uri
from werkzeug.utils import redirect as _werkzeug_redirect
from werkzeug.utils import send_file as _werkzeug_send_file
from werkzeug.wsgi import FileWrapper

from .wrappers import _STATUS_LINES
from .wrappers import Response
from .wrappers import Response as _Response
from .wrappers import _built_response

if t.TYPE_CHECKING:
    import datetime

    from _typeshed.wsgi import WSGIEnvironment
    from werkzeug.wrappers import Response as WerkzeugResponse

    from .wrappers import Request

__all__ = ["redirect", "send_file"]

_CONDITIONAL_KEYS: t.Final = (
    "HTTP_RANGE",
    "HTTP_IF_RANGE",
    "HTTP_IF_MATCH",
    "HTTP_IF_NONE_MATCH",
    "HTTP_IF_MODIFIED_SINCE",
    "HTTP_IF_UNMODIFIED_SINCE",
)
_CACHE_LIMIT: t.Final = 256
_READ_AT_ONCE: t.Final = 64 * 1024
"""Largest file sent as one block when the server has no ``wsgi.file_wrapper``."""

_FileKey = tuple[str, float, int, "str | None", bool, "str | None"]
_sent_headers: dict[_FileKey, tuple[list[tuple[str, str]], int]] = {}
"""File (path, mtime, size) and options -> werkzeug's headers, index of Date."""

_now: list[t.Any] = [0, ""]


class _FileBlocks(FileWrapper):
    """werkzeug's ``FileWrapper`` (what ``wrap_file`` uses without a server's).

    PERF: iterated by a C iterator over ``file.read(buffer_size)`` until it
    returns ``b""``, the blocks FileWrapper's ``__next__`` yields, without a
    Python call and a StopIteration per block.
    """

    def __iter__(self) -> t.Iterator[bytes]:  # type: ignore[override]
        return iter(functools.partial(self.file.read, self.buffer_size), b"")


_absolute_paths: dict[str, str] = {}


def _absolute(path: str) -> str:
    """Return ``os.path.abspath(path)``; absolute paths are normalised once."""
    if not path.startswith("/"):
        return os.path.abspath(path)  # relative to the working directory
    absolute = _absolute_paths.get(path)
    if absolute is None:
        absolute = os.path.abspath(path)
        if len(_absolute_paths) < _CACHE_LIMIT:
            _absolute_paths[path] = absolute
    return absolute


def _http_date_now() -> str:
    """Return ``http_date()`` (the current second), formatted once a second."""
    second = int(time.time())
    if _now[0] != second:
        _now[:] = [second, http_date(second)]
    return t.cast(str, _now[1])


_MARK: t.Final = "\x00"
_REDIRECT_PAGE: t.Final = _werkzeug_redirect(_MARK).get_data(as_text=True)
"""werkzeug's redirect page, with a NUL where the (escaped) location goes."""
_HTML_TYPE: t.Final = "text/html; charset=utf-8"
"""The ``Content-Type`` of werkzeug's redirect (``mimetype="text/html"``)."""
_redirect_pages: dict[str, tuple[bytes, str]] = {}
"""Location -> its redirect page, encoded, and the page's length."""


def redirect(
    location: str, code: int = 302, Response: type[WerkzeugResponse] | None = None
) -> Response:
    """Return a response that redirects the client to ``location``.

    werkzeug's :func:`~werkzeug.utils.redirect` (same body, headers and
    status), building a :class:`~framework.wrappers.Response` by default.

    :param location: the URL to redirect to (an IRI is made a URI).
    :param code: the status: 301, 302, 303, 305, 307 or 308.
    :param Response: the response class to build instead.
    :raises BadRequest: ``location`` is no URL a response can carry (a line
        break, an unclosed IPv6 host, a port out of range): it is often the
        client's (``?next=...``), and a 400 says so where werkzeug's
        ``ValueError`` would be a 500.
    """
    if Response is not None or type(location) is not str:
        if isinstance(location, str):
            _check_location(location)
        cls = _Response if Response is None else Response
        return t.cast(_Response, _werkzeug_redirect(location, code, cls))
    # PERF: werkzeug's page with the location put in (once per location),
    # in the response Response(page, code) makes, and the Location header
    # appended as Headers.set() appends a new one, once checked as set()
    # checks it (tests/test_helpers.py compares).
    page = _redirect_pages.get(location)
    if page is None:
        _check_location(location)
        body = _REDIRECT_PAGE.replace(_MARK, escape(location)).encode()
        page = (body, str(len(body)))
        if len(_redirect_pages) < _CACHE_LIMIT:
            _redirect_pages[location] = page
    if type(code) is not int or code not in _STATUS_LINES:
        response = _Response(page[0], code)
        response.headers._list.append(("Location", location))
        return response
    headers = [
        ("Content-Type", _HTML_TYPE),
        ("Content-Length", page[1]),
        ("Location", location),
    ]
    return _built_response(_Response, [page[0]], headers, code, False)


def _check_location(location: str) -> None:
    """Raise BadRequest unless a response can carry ``location``."""
    if "\r" in location or "\n" in location:
        problem = "has a line break"
    else:
        try:
            iri_to_uri(location)  # what the response does with it
            return
        except ValueError as exc:
            problem = f"cannot be read as a URL ({exc})"
    raise BadRequest(f"The redirect target {problem}.")


def send_file(
    request: Request | WSGIEnvironment,
    path_or_file: os.PathLike[str] | str | t.IO[bytes],
    mimetype: str | None = None,
    as_attachment: bool = False,
    download_name: str | None = None,
    conditional: bool = True,
    etag: bool | str = True,
    last_modified: datetime.datetime | int | float | None = None,
    max_age: None | int | t.Callable[[str | None], int | None] = None,
    use_x_sendfile: bool = False,
) -> Response:
    """Send a file: werkzeug's :func:`~werkzeug.utils.send_file`, faster.

    The options are werkzeug's: the type is guessed from the file name,
    ``ETag``, ``Last-Modified`` and ``Cache-Control: no-cache`` are set, and
    conditional (``If-None-Match``, ``If-Modified-Since``...) and range
    requests are answered (304, 206, 416). Never pass a path that comes from
    the client: use :func:`werkzeug.utils.safe_join` first.

    :param request: the request (or its WSGI environ).
    :param path_or_file: a path, or a file object opened in binary mode.
    :returns: a :class:`~framework.wrappers.Response` streaming the file
        (through the server's ``wsgi.file_wrapper`` if it has one).
    :raises FileNotFoundError: the path does not exist (a 500: check first
        and ``abort(404)`` if the path may be missing).
    """
    environ = request if isinstance(request, dict) else request.environ
    # PERF: werkzeug computes the same headers for every request of an
    # unchanged file (type guess, ETag, Last-Modified, Cache-Control), through
    # its generic header and cache-control machinery: about 40 us. A plain
    # GET or HEAD of a path with the default options reuses the headers
    # werkzeug made for the same file (same path, mtime and size) the first
    # time, with a new Date; anything else is werkzeug's path
    # (tests/test_helpers.py compares the two).
    key: _FileKey | None = None
    if (
        isinstance(path_or_file, str)
        and conditional
        and etag is True
        and last_modified is None
        and max_age is None
        and not use_x_sendfile
        and environ.get("REQUEST_METHOD") in ("GET", "HEAD")
        and environ.keys().isdisjoint(_CONDITIONAL_KEYS)
    ):
        path = _absolute(path_or_file)
        stat = os.stat(path)
        key = (
            path,
            stat.st_mtime,
            stat.st_size,
            mimetype,
            as_attachment,
            download_name,
        )
        cached = _sent_headers.get(key)
        if cached is not None:
            headers, date_index = cached
            headers = headers.copy()
            headers[date_index] = ("Date", _http_date_now())
            wrapper = environ.get("wsgi.file_wrapper")
            if wrapper is None and stat.st_size <= _READ_AT_ONCE:
                # PERF: without a server's file wrapper (no sendfile), a
                # small file is read now: a list body, and no open file.
                with open(path, "rb") as file:
                    return _built_response(_Response, [file.read()], headers)
            file = open(path, "rb")  # closed with the response
            return _built_response(
                _Response, (wrapper or _FileBlocks)(file, 8192), headers
            )
    response = t.cast(
        Response,
        _werkzeug_send_file(
            path_or_file,
            environ,
            mimetype=mimetype,
            as_attachment=as_attachment,
            download_name=download_name,
            conditional=conditional,
            etag=etag,
            last_modified=last_modified,
            max_age=max_age,
            use_x_sendfile=use_x_sendfile,
            response_class=Response,
        ),
    )
    if key is not None:
        # Remember werkzeug's headers for this file (a 200: no range asked).
        headers = list(response.headers)
        names = [name for name, _ in headers]
        if response.status_code == 200 and names.count("Date") == 1:
            if len(_sent_headers) >= _CACHE_LIMIT:
                _sent_headers.clear()
            _sent_headers[key] = (headers, names.index("Date"))
    return response
