"""Request and response objects, and the iterable that ends a request.

:class:`Request` and :class:`Response` are werkzeug's, subclassed. The
request computes its URL parts on first use instead of in ``__init__``
(werkzeug's eager ``__init__`` alone costs more than a whole fast request),
and applies the size and field limits from the settings.

:class:`ClosingIterable` is what the handler returns to the server: it
iterates the real body, reports an exception raised while iterating with
``got_request_exception``, and sends ``request_finished`` exactly once when
the server calls ``close()``, after the wrapped iterable's own ``close()``.
"""

from __future__ import annotations

import collections.abc as cabc
import io
import json
import logging
import time
import types
import typing as t
from urllib.parse import parse_qsl

from werkzeug.datastructures import Authorization
from werkzeug.datastructures import EnvironHeaders
from werkzeug.datastructures import Headers
from werkzeug.datastructures import ImmutableMultiDict
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import BadRequest
from werkzeug.exceptions import ClientDisconnected
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.urls import iri_to_uri
from werkzeug.utils import get_content_type
from werkzeug.wrappers import Request as _WerkzeugRequest
from werkzeug.wrappers import Response as _WerkzeugResponse

from .exceptions import TooManyFieldsSent
from .sessions import Session
from .sessions import load_session
from .signals import got_request_exception
from .signals import request_finished

if t.TYPE_CHECKING:
    from http import HTTPStatus

    from _typeshed.wsgi import StartResponse
    from _typeshed.wsgi import WSGIEnvironment

    from .app import App

__all__ = [
    "ClosingIterable",
    "ClosingStream",
    "FinishingFile",
    "Request",
    "Response",
]

logger = logging.getLogger("framework.request")


def _decode_wsgi(value: str) -> str:
    """Decode a WSGI (latin-1 tunnelled) string as UTF-8, like werkzeug."""
    return value.encode("latin1").decode(errors="replace")


class _CappedStream(io.RawIOBase):
    """A chunked body: a 413 past ``limit`` bytes, a 400 if it is malformed.

    The server decodes the chunks while the body is read; a bad chunk size,
    a missing terminator or a body cut off by the client surfaces as the
    server's own exception (gunicorn's ``InvalidChunkSize``, ``NoMoreData``,
    ...): that is the client's error, a :class:`BadRequest`, not a 500.
    """

    def __init__(self, stream: t.IO[bytes], limit: int | None) -> None:
        self._stream = stream
        self._left = limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: t.Any) -> int:
        left = self._left
        size = len(buffer) if left is None else min(len(buffer), left + 1)
        try:
            data = self._stream.read(size)
        except Exception as exc:
            raise BadRequest(
                f"The request body could not be read: {type(exc).__name__}"
                f"{': ' if str(exc) else ''}{exc}"
            ) from exc
        if left is not None:
            if len(data) > left:
                raise RequestEntityTooLarge()
            self._left = left - len(data)
        buffer[: len(data)] = data
        return len(data)


class _RequestJSON:
    """The ``json`` module as request bodies use it: nesting errors are bad input."""

    dumps = staticmethod(json.dumps)

    @staticmethod
    def loads(data: str | bytes, **kwargs: t.Any) -> t.Any:
        """Parse ``data`` like :func:`json.loads`.

        :raises ValueError: the JSON is malformed or nested too deeply to
            parse (a ``RecursionError`` from the parser).
        """
        try:
            return json.loads(data, **kwargs)
        except RecursionError:
            raise ValueError("it is nested too deeply") from None


_T = t.TypeVar("_T")


class _lazy(t.Generic[_T]):
    """``functools.cached_property`` without its lock (Python 3.11 takes one).

    PERF: a request attribute read for the first time costs half as much
    (about 0.25 us instead of 0.5 us on 3.11); later reads find the value
    in the instance ``__dict__``, as with ``cached_property``. A request is
    used by one thread: the lock protected nothing.
    """

    def __init__(self, func: cabc.Callable[[t.Any], _T]) -> None:
        self.func = func
        self.name = func.__name__
        self.__doc__ = func.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @t.overload
    def __get__(self, obj: None, owner: type | None = None) -> _lazy[_T]: ...

    @t.overload
    def __get__(self, obj: object, owner: type | None = None) -> _T: ...

    def __get__(self, obj: object | None, owner: type | None = None) -> t.Any:
        if obj is None:
            return self
        value = obj.__dict__[self.name] = self.func(obj)
        return value


_METHODS: t.Final = {
    method: method
    for method in (
        "GET",
        "HEAD",
        "POST",
        "PUT",
        "PATCH",
        "DELETE",
        "OPTIONS",
        "TRACE",
        "CONNECT",
    )
}
"""Request methods already in upper case, each mapped to itself."""
_FORM_TYPE: t.Final = "application/x-www-form-urlencoded"
_PLAIN_FORM_LIMIT: t.Final = 64 * 1024
"""Largest urlencoded body the plain form path reads (werkzeug parses larger)."""


_HEX_DIGITS: t.Final = "0123456789ABCDEFabcdef"
_HEX_BYTES: t.Final = {
    high + low: int(high + low, 16) for high in _HEX_DIGITS for low in _HEX_DIGITS
}


_HEX_ASCII: t.Final = {
    pair: chr(code) for pair, code in _HEX_BYTES.items() if code < 128
}


def _unquote(text: str) -> str:
    """Return ``urllib.parse.unquote(text, errors="werkzeug.url_quote")``.

    PERF: for ASCII ``text`` only, about three times as fast: ``%xx``
    escapes become bytes, anything else stays, and the bytes are decoded as
    UTF-8 with werkzeug's error handler (invalid bytes are quoted again).
    Escapes of ASCII characters only (``%40``) need no decoding at all.
    """
    first, *rest = text.split("%")
    parts = [first]
    for chunk in rest:
        char = _HEX_ASCII.get(chunk[:2])
        if char is None:
            break
        parts.append(char)
        parts.append(chunk[2:])
    else:
        return "".join(parts)
    out = bytearray(first, "ascii")
    for chunk in rest:
        code = _HEX_BYTES.get(chunk[:2])
        if code is None:
            out += b"%"
            out += chunk.encode("ascii")
        else:
            out.append(code)
            out += chunk[2:].encode("ascii")
    return out.decode("utf-8", "werkzeug.url_quote")


_PLAIN_MULTIDICTS: t.Final = frozenset({MultiDict, ImmutableMultiDict})
"""Classes whose instances are their dict of lists (MultiDict's __init__)."""
_dict_new: t.Final = dict.__new__
_dict_init: t.Final = dict.__init__
"""PERF: ``dict.__new__`` / ``dict.__init__`` (what those classes' ``__new__``
is and their ``__init__`` ends in), looked up once rather than per request."""


def _parse_ascii(text: str, cls: type[MultiDict[str, str]]) -> MultiDict[str, str]:
    """Parse an ASCII query string (``a=1&b=%40+c``) into a ``cls``.

    The result of ``cls(parse_qsl(text, keep_blank_values=True,
    errors="werkzeug.url_quote"))``, werkzeug's parsing.
    """
    values: dict[str, list[str]] = {}
    escaped = "%" in text or "+" in text
    for part in text.split("&"):
        if not part:
            continue
        key, _, value = part.partition("=")
        if escaped:
            if "%" in key or "+" in key:
                key = _unquote(key.replace("+", " "))
            if "%" in value or "+" in value:
                value = _unquote(value.replace("+", " "))
        found = values.get(key)
        if found is None:
            values[key] = [value]
        else:
            found.append(value)
    if cls not in _PLAIN_MULTIDICTS:
        return cls([(key, value) for key, items in values.items() for value in items])
    # MultiDict.__init__ builds this very dict of lists from the pairs.
    multi = _dict_new(cls)
    _dict_init(multi, values)
    return multi


class Request(_WerkzeugRequest):
    """The request passed to every view: werkzeug's, with lazy URL parts.

    Besides werkzeug's API it carries :attr:`app`, :attr:`endpoint`,
    :attr:`view_args` and the lazy :attr:`session`, and enforces
    ``MAX_FORM_FIELDS`` on :attr:`args` and :attr:`form` (a 400
    :class:`~framework.exceptions.TooManyFieldsSent`).
    """

    max_form_fields: int | None = None
    """Most fields allowed in the query string or a form body (``None``: any)."""

    json_module = _RequestJSON  # type: ignore[assignment]
    """Parses JSON bodies; JSON nested too deeply is malformed (a 400)."""

    app: App | None = None
    """The application handling the request."""

    endpoint: str | None = None
    """The endpoint of the matched route, once routing has run."""

    view_args: dict[str, t.Any] | None = None
    """The values captured by the matched route, once routing has run."""

    shallow: bool = False
    """Whether reading the body is refused (werkzeug's ``shallow``)."""

    def __init__(
        self,
        environ: WSGIEnvironment,
        populate_request: bool = True,
        shallow: bool = False,
    ) -> None:
        # PERF: werkzeug's __init__ computes server, paths, query string and
        # headers eagerly (about 2 us); they are computed on first use below,
        # with werkzeug's own expressions (tests/test_wrappers.py compares
        # them). ``shallow`` is the class's False unless given.
        self.environ = environ
        method = environ.get("REQUEST_METHOD", "GET")
        # PERF: a usual method is its own upper case: the constant string
        # (its hash known) instead of a new one that routing hashes again.
        self.method = _METHODS.get(method) or method.upper()
        # PERF: an instance attribute, so the app's "was the session used?"
        # check is the cheapest attribute read there is (bench/requests.py).
        self.loaded_session: Session | None = None
        if shallow:
            self.shallow = True
        elif populate_request:
            environ["werkzeug.request"] = self

    @_lazy
    def scheme(self) -> str:
        """The URL scheme, such as ``http`` or ``https``."""
        return t.cast(str, self.environ.get("wsgi.url_scheme", "http"))

    @_lazy
    def server(self) -> tuple[str, int | None] | None:
        """The server address, ``(host, port)``, or ``None`` if unknown."""
        name = self.environ.get("SERVER_NAME")
        if name is None:
            return None
        try:
            port: int | None = int(self.environ["SERVER_PORT"])
        except (KeyError, TypeError, ValueError):
            port = None  # a unix socket
        return name, port

    @_lazy
    def root_path(self) -> str:
        """The prefix the application is mounted under, without trailing slash."""
        raw = self.environ.get("SCRIPT_NAME") or ""
        return _decode_wsgi(raw).rstrip("/")

    @_lazy
    def path(self) -> str:
        """The path after :attr:`root_path`, used for routing."""
        raw = self.environ.get("PATH_INFO") or ""
        return "/" + _decode_wsgi(raw).lstrip("/")

    @_lazy
    def query_string(self) -> bytes:
        """The raw query string."""
        return t.cast(str, self.environ.get("QUERY_STRING", "")).encode("latin1")

    @_lazy
    def headers(self) -> EnvironHeaders:  # type: ignore[override]
        """The request headers."""
        return EnvironHeaders(self.environ)

    @_lazy
    def remote_addr(self) -> str | None:
        """The client's address."""
        return t.cast("str | None", self.environ.get("REMOTE_ADDR"))

    @_lazy
    def authorization(self) -> Authorization | None:
        """The parsed ``Authorization`` header, or ``None`` if absent or malformed.

        werkzeug's, except that ``Basic`` credentials with a character outside
        ASCII (a server passes header bytes as latin-1) are malformed, as
        other invalid base64 is, instead of a ``ValueError`` (a 500).
        """
        try:
            return Authorization.from_header(self.environ.get("HTTP_AUTHORIZATION"))
        except ValueError:
            return None

    @_lazy
    def args(self) -> MultiDict[str, str]:
        """The parsed query string.

        :raises TooManyFieldsSent: more fields than ``MAX_FORM_FIELDS``.
        :raises BadRequest: the raw query string is not UTF-8 (a server
            passed bytes through undecoded; percent-escapes are fine).
        """
        # PERF: the environ's str itself, unless query_string (its latin-1
        # bytes) was computed or set.
        raw = self.__dict__.get("query_string")
        if raw is None:
            text: str = self.environ.get("QUERY_STRING", "")
        else:
            text = raw.decode("latin1")
        limit = self.max_form_fields
        # PERF: str.count() parses its arguments as a tuple; a text shorter
        # than the limit cannot have that many "&".
        if limit is not None and len(text) >= limit and text.count("&") >= limit:
            # Count the real fields only when the cheap bound is exceeded.
            fields = [p for p in text.split("&") if p]
            if len(fields) > limit:
                raise TooManyFieldsSent()
        # PERF: werkzeug's parse_qsl + MultiDict cost about 3 us; an ASCII
        # query string is split directly, with the same result.
        if text.isascii():
            return _parse_ascii(text, self.parameter_storage_class)
        try:
            return super().args
        except UnicodeDecodeError:
            raise BadRequest("The query string is not valid UTF-8.") from None

    @_lazy
    def stream(self) -> t.IO[bytes]:
        """The body stream, limited to ``max_content_length`` bytes.

        Unlike werkzeug's, a body without ``Content-Length`` (chunked, with
        ``wsgi.input_terminated``) that goes past the limit raises a 413
        instead of being cut silently, and one the server cannot decode
        (a bad chunk, cut off by the client) raises a 400.
        """
        if (
            not self.shallow
            and self.content_length is None
            and "wsgi.input_terminated" in self.environ
        ):
            stream = _CappedStream(self.environ["wsgi.input"], self.max_content_length)
            return t.cast(t.IO[bytes], stream)
        return super().stream

    @_lazy
    def form(self) -> MultiDict[str, str]:  # type: ignore[override]
        """The form fields of a urlencoded or multipart body.

        :raises TooManyFieldsSent: more fields than ``MAX_FORM_FIELDS``.
        """
        # PERF: werkzeug's cached_property is a data descriptor (a Python
        # call on every read); this one is stored in the instance dict. A
        # plain urlencoded body is parsed straight away.
        if not self._load_plain_form():
            self._load_form_data()
        return t.cast("MultiDict[str, str]", self.__dict__["form"])

    def _load_form_data(self) -> None:
        if "form" not in self.__dict__ and not self._load_plain_form():
            super()._load_form_data()
        limit = self.max_form_fields
        if limit is not None and "form" in self.__dict__:
            count = len(self.__dict__["form"]) + len(self.__dict__.get("files", ()))
            if count > limit:
                raise TooManyFieldsSent()

    loaded_session: Session | None = None
    """The session once something read :attr:`session`; ``None`` until then."""

    @property
    def session(self) -> Session:
        """The visitor's session, a dict kept in a signed cookie.

        Read on first use (a request that never uses it pays nothing) and
        saved with the response when it was modified; see
        :mod:`framework.sessions`.
        """
        session = self.loaded_session
        if session is None:
            session = self.loaded_session = load_session(self)
        return session

    def _load_plain_form(self) -> bool:
        """Parse a small urlencoded body as werkzeug would; ``False``: not done.

        PERF: werkzeug's form parsing (content type parsing, a parser object,
        a limited stream, parse_qsl) costs about 10 us. A body declared
        ``application/x-www-form-urlencoded`` exactly, with a valid
        ``Content-Length`` within the limits, whose stream nothing has read,
        is read here and parsed like :attr:`args`; werkzeug's parser takes the
        rest (tests/test_wrappers.py compares the two). Afterwards
        :attr:`stream` is consumed, as after werkzeug's parsing.
        """
        environ = self.environ
        d = self.__dict__
        if (
            environ.get("CONTENT_TYPE") != _FORM_TYPE
            or self.shallow
            or "stream" in d
            or d.get("_cached_data") is not None  # get_data() ran
            or "HTTP_TRANSFER_ENCODING" in environ
        ):
            return False
        declared = environ.get("CONTENT_LENGTH", "")
        if not (declared.isascii() and declared.isdigit()):
            return False
        length = int(declared)
        limit = self.max_content_length
        if length > _PLAIN_FORM_LIMIT or (limit is not None and length > limit):
            return False
        data = environ["wsgi.input"].read(length) if length else b""
        if len(data) < length and "wsgi.input_terminated" not in environ:
            raise ClientDisconnected()
        cls = self.parameter_storage_class
        if data.isascii():
            form = _parse_ascii(data.decode("ascii"), cls)
        else:
            try:
                text = data.decode()
            except UnicodeDecodeError:
                form = cls()
            else:
                form = cls(
                    parse_qsl(text, keep_blank_values=True, errors="werkzeug.url_quote")
                )
        # An empty MultiDict is a bare instance: its __init__ adds nothing.
        files = _dict_new(cls) if cls in _PLAIN_MULTIDICTS else cls()
        d["stream"], d["form"], d["files"] = io.BytesIO(), form, files
        fields = self.max_form_fields
        if fields is not None and len(form) > fields:
            raise TooManyFieldsSent()
        return True

    def on_json_loading_failed(self, e: ValueError | None) -> t.Any:
        """Raise a 400 that says why the body is not the JSON the view asked for.

        :raises BadRequest: always.
        """
        if e is None:
            return super().on_json_loading_failed(e)
        raise BadRequest(f"The request body is not valid JSON: {e}") from e


_STATUS_LINES: t.Final = {
    code: f"{code} {name.upper()}" for code, name in HTTP_STATUS_CODES.items()
}
"""Status code -> status line, as werkzeug's ``Response.status`` setter makes it."""

_CACHE_LIMIT: t.Final = 256
_BUFFER_TYPES: t.Final = (str, bytes, bytearray)
"""Body types (and their subclasses) werkzeug's ``Response`` buffers."""
_ITERABLE_KINDS: t.Final = frozenset({types.GeneratorType, list, tuple})
"""Body types that are none of :data:`_BUFFER_TYPES`: streamed or iterated."""
_new_headers: t.Final = Headers.__new__
"""PERF: ``Headers.__new__``, looked up once (it is ``object.__new__``)."""
_BODYLESS_CODES: t.Final = frozenset((*range(100, 200), 204, 304))
"""Statuses whose responses werkzeug sends without a body (its own path)."""
_STATUS_CODES: t.Final = {line: code for code, line in _STATUS_LINES.items()}
"""Status line -> status code, for the status lines werkzeug makes."""
_FINISHED_ARGS: t.Final = ("environ", "status", "duration")
"""The arguments of request_finished, as the request sends them."""
_perf_counter: t.Final = time.perf_counter


def _status_code(status: str | None) -> int:
    """Return the code of a status line no werkzeug response made (500: none)."""
    try:
        return int(status[:3]) if status else 500
    except ValueError:
        return 500


_content_types: dict[str, str] = {}
_uris: dict[str, str] = {}

_ORDINARY_HEADERS: t.Final = frozenset(
    {
        "Content-Type",
        "Set-Cookie",
        "Cache-Control",
        "ETag",
        "Last-Modified",
        "Date",
        "Vary",
        "X-Frame-Options",
        "X-Content-Type-Options",
        "Referrer-Policy",
        "Content-Security-Policy",
        "Strict-Transport-Security",
        "Content-Disposition",
        "Accept-Ranges",
        "Allow",
    }
)
"""Header names that werkzeug's ``get_wsgi_headers`` passes through unchanged."""


def _content_type(mimetype: str) -> str | None:
    """Return the ``Content-Type`` werkzeug makes of ``mimetype``, or ``None``.

    ``None`` when the value would be refused (a newline): werkzeug's own path
    then raises its error.
    """
    content_type = _content_types.get(mimetype)
    if content_type is None:
        content_type = get_content_type(mimetype, "utf-8")
        if "\r" in content_type or "\n" in content_type:
            return None
        if len(_content_types) < _CACHE_LIMIT:
            _content_types[mimetype] = content_type
    return content_type


def _same_uri(location: str) -> bool:
    """Whether werkzeug leaves a ``Location`` value as it is (``iri_to_uri``)."""
    uri = _uris.get(location)
    if uri is None:
        uri = iri_to_uri(location)
        if len(_uris) < _CACHE_LIMIT:
            _uris[location] = uri
    return uri == location


def _lean_flags(cls: type[_WerkzeugResponse]) -> tuple[bool, bool]:
    """Return whether ``cls`` may take the lean ``__init__`` and ``__call__``.

    Only when it keeps every werkzeug method those replace: a subclass that
    overrides one of them gets werkzeug's generic path.
    """
    base = _WerkzeugResponse
    lean_init = (
        cls.set_data is base.set_data
        and cls.status is base.status
        and cls._clean_status is base._clean_status
        and cls.automatically_set_content_length is True
    )
    lean_call = (
        cls.get_wsgi_headers is base.get_wsgi_headers
        and cls.get_app_iter is base.get_app_iter
        and cls.get_wsgi_response is base.get_wsgi_response
        and cls.iter_encoded is base.iter_encoded
        and cls.close is Response.close
        and cls.status is base.status
        and cls.status_code is base.status_code
    )
    return lean_init, lean_call


class Response(_WerkzeugResponse):
    """A response: werkzeug's, with ``text/html`` as the default mimetype.

    The whole werkzeug API is there (``headers``, ``set_cookie``, ``status``,
    ``mimetype``, ``data``, ...). Building one from a ``str`` or ``bytes``
    body and calling it as a WSGI application take lean paths that give
    werkzeug's result (tests/test_wrappers.py compares them).
    """

    default_mimetype = "text/html"

    # This class keeps every werkzeug method the lean paths stand in for;
    # each subclass is checked again (__init_subclass__).
    _lean_init: t.ClassVar[bool] = True
    _lean_call: t.ClassVar[bool] = True
    _lean_build: t.ClassVar[bool] = True
    """Whether an instance may be built without calling ``__init__`` at all
    (:func:`_built_response`): the lean ``__init__`` is this class's own."""

    def __init_subclass__(cls, **kwargs: t.Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._lean_init, cls._lean_call = _lean_flags(cls)
        cls._lean_build = cls._lean_init and cls.__init__ is Response.__init__

    def __init__(
        self,
        response: cabc.Iterable[bytes] | bytes | cabc.Iterable[str] | str | None = None,
        status: int | str | HTTPStatus | None = None,
        headers: t.Any = None,
        mimetype: str | None = None,
        content_type: str | None = None,
        direct_passthrough: bool = False,
    ) -> None:
        # PERF: werkzeug's __init__ validates two headers through Headers'
        # generic methods and parses the status (about 2 us). Without
        # headers or content_type, with an int status, this sets the same
        # attributes to the same values directly.
        if headers is None and content_type is None and self._lean_init:
            if mimetype is None:
                mimetype = self.default_mimetype
            if status is None:
                status = self.default_status
            if type(status) is int and type(mimetype) is str:
                line: str | None
                ctype: str | None
                try:
                    # PERF: subscripts, not get() calls; a miss is rare.
                    line = _STATUS_LINES[status]
                    ctype = _content_types[mimetype]
                except KeyError:
                    line = _STATUS_LINES.get(status)
                    ctype = _content_type(mimetype)
                if line is not None and ctype is not None:
                    kind: t.Any = type(response)
                    # PERF: a streamed body (the kind tested first) has one
                    # header; a str or bytes one is buffered.
                    if kind in _ITERABLE_KINDS:
                        items = [("Content-Type", ctype)]
                    elif kind is str or kind is bytes:
                        body: t.Any = response
                        if kind is str:
                            body = body.encode()
                        response = [body]
                        items = [
                            ("Content-Type", ctype),
                            ("Content-Length", str(len(body))),
                        ]
                    elif response is None:
                        response = []
                        items = [("Content-Type", ctype)]
                    elif isinstance(response, _BUFFER_TYPES):
                        items = []  # a subclass such as Markup: werkzeug's path
                    else:
                        items = [("Content-Type", ctype)]
                    if items:
                        # Headers() with its list set: what Headers.__init__
                        # does, without the call.
                        new_headers = _new_headers(Headers)
                        new_headers._list = items
                        self.headers = new_headers
                        self._status = line
                        self._status_code = status
                        self.direct_passthrough = direct_passthrough
                        self._on_close = []
                        self.response = response  # type: ignore[assignment]
                        return
        super().__init__(
            response, status, headers, mimetype, content_type, direct_passthrough
        )

    def close(self) -> None:
        """Close the body (if it has ``close()``), then run :meth:`call_on_close`'s.

        werkzeug's, with one attribute lookup instead of two.
        """
        close = getattr(self.response, "close", None)
        if close is not None:
            close()
        for func in self._on_close:
            func()

    def __call__(
        self, environ: WSGIEnvironment, start_response: StartResponse
    ) -> cabc.Iterable[bytes]:
        """Process this response as a WSGI application (werkzeug's result).

        :param environ: the WSGI environment.
        :param start_response: the server's ``start_response``.
        :returns: the body iterable: a list for a buffered body.
        """
        # PERF: werkzeug copies the headers into a new Headers, scans them,
        # and wraps the body in a generator and a ClosingIterator (about
        # 3 us). For the common responses (no special status, headers that
        # werkzeug passes unchanged, a body of bytes) the result is the
        # same: the header list as is (plus Content-Length for a buffered
        # body), and the buffered body list itself.
        headers = self.headers
        if (
            self._status_code in _BODYLESS_CODES
            or type(headers) is not Headers
            or not self._lean_call
        ):
            return super().__call__(environ, start_response)
        # The headers are werkzeug's own class (checked above): its list is
        # copied directly, without the iterator and length protocols.
        items = headers._list.copy()
        has_length: bool | None = False
        location = None
        for key, value in items:
            if key in _ORDINARY_HEADERS:
                continue
            if key == "Content-Length":
                has_length = True
            elif (
                key == "Location"
                and location is None
                and not self.autocorrect_location_header
                and _same_uri(value)
            ):
                # PERF: a redirect's Location, as werkzeug leaves it, is
                # passed here, without _scan_headers' second look at the list.
                location = value
            else:
                has_length = self._scan_headers(items)
                if has_length is None:
                    return super().__call__(environ, start_response)
                break
        # Typed as returned: the kind tests below stand for isinstance()
        # (PERF: no t.cast call).
        body: cabc.Iterable[bytes] = self.response  # type: ignore[assignment]
        kind = type(body)
        if kind is list:
            if self._on_close:
                return super().__call__(environ, start_response)
            for chunk in body:
                if type(chunk) is not bytes:
                    return super().__call__(environ, start_response)
            if not has_length and self.automatically_set_content_length:
                items.append(("Content-Length", str(sum(map(len, body)))))
            start_response(self._status, items)
            if environ["REQUEST_METHOD"] == "HEAD":
                return []
            return body
        if kind is tuple or environ["REQUEST_METHOD"] == "HEAD":
            return super().__call__(environ, start_response)
        start_response(self._status, items)
        if self.direct_passthrough:
            return body
        # PERF: a class without __init__ or __new__ of its own is made
        # faster by calling it than by its __new__.
        streamed = _StreamedBody()
        streamed.response = self
        streamed.closing = None
        streamed.close = self.close
        return streamed

    def _scan_headers(self, items: list[tuple[str, str]]) -> bool | None:
        """Return whether ``items`` has a Content-Length; ``None``: not lean.

        Not lean: a header werkzeug would rewrite (a ``Location`` that is not
        a plain URI or is to be made absolute, ``Content-Location``).
        """
        has_length = False
        location = None
        for key, value in items:
            if key in _ORDINARY_HEADERS:
                continue
            if key == "Content-Length":
                has_length = True
                continue
            lower = key.lower()
            if lower == "content-length":
                has_length = True
            elif lower == "location" and key == "Location" and location is None:
                location = value
            elif lower == "location" or lower == "content-location":
                return None
        if location is not None and (
            self.autocorrect_location_header or not _same_uri(location)
        ):
            return None
        return has_length


def _built_response(
    cls: type[Response],
    body: t.Any,
    headers: list[tuple[str, str]],
    code: int = 200,
    passthrough: bool = True,
) -> Response:
    """Return a ``cls`` with ``body``, status ``code`` and the header list ``headers``.

    PERF: what the lean ``__init__`` sets, attribute by attribute, without
    the call (for ``helpers.send_file``, which passes its body through, and
    the app's ``(text, status)`` answers). ``cls`` takes the lean paths and
    keeps :class:`Response`'s ``__init__`` (``_lean_build``), and ``code``
    is a status werkzeug knows: the caller checked.
    """
    response = cls.__new__(cls)
    new_headers = _new_headers(Headers)
    new_headers._list = headers
    response.headers = new_headers
    response._status = _STATUS_LINES[code]
    response._status_code = code
    response.direct_passthrough = passthrough
    response._on_close = []
    response.response = body
    return response


def _text_response(cls: type[Response], text: str, code: int) -> Response:
    """Return ``cls(text, code)``: built directly when ``cls`` takes the lean path."""
    content_type = _content_types.get(cls.default_mimetype)
    if content_type is None or code not in _STATUS_LINES or not cls._lean_build:
        return cls(text, code)
    body = text.encode()
    headers = [("Content-Type", content_type), ("Content-Length", str(len(body)))]
    return _built_response(cls, [body], headers, code, passthrough=False)


def _encoded(chunk: t.Any) -> t.Any:
    """Return a ``str`` chunk encoded as UTF-8, anything else as it is."""
    return chunk.encode() if isinstance(chunk, str) else chunk


class _StreamedBody:
    """The body of a streamed response: encodes ``str`` chunks, closes the response.

    What werkzeug's ``ClosingIterator`` around ``iter_encoded()`` does, in
    one object. The app's handler adopts it (sets :attr:`closing`): then it
    reports a failure while streaming and ends the request on close().
    """

    # Made by Response.__call__ alone, attribute by attribute (PERF: no
    # __init__ call): ``response``, the response whose body this is;
    # ``closing``, the request this body ends once the handler adopted it
    # (else None); ``close``, the response's close() (its body's close()
    # and call_on_close), which the handler replaces with the request's.
    __slots__ = ("response", "closing", "close")

    response: Response
    closing: ClosingIterable | None
    close: cabc.Callable[[], None]

    def __iter__(self) -> cabc.Iterator[bytes]:
        try:
            for chunk in self.response.response:
                yield chunk if type(chunk) is bytes else _encoded(chunk)
        except Exception:
            # Adopted before the server iterates, if at all (App.__call__).
            closing = self.closing
            if closing is not None:
                closing.report_stream_failure()
            raise


class ClosingIterable(list[bytes]):
    """The response handed to the server; ends the request on close().

    It is created by the handler before anything else of the request runs
    and records the status passed to ``start_response``. ``close()`` closes
    the wrapped iterable first, then sends ``request_finished`` once.

    It is a list: a list or tuple body (the common case) is copied into it, so
    the server iterates it at C speed. Any other body reaches the server as a
    :class:`ClosingStream` around it, which reports a failure while streaming.
    """

    __slots__ = (
        "app",
        "environ",
        "started",
        "server_start_response",
        "status",
        "iterable",
        "closed",
        "request",
    )

    def __init__(
        self,
        app: App,
        environ: WSGIEnvironment,
        started: float,
        server_start_response: StartResponse,
    ) -> None:
        self.app = app
        """The application that handled the request."""
        self.environ = environ
        """The WSGI environ."""
        self.started = started
        """``time.perf_counter()`` when request_started was sent."""
        self.server_start_response = server_start_response
        """The server's ``start_response``."""
        self.status: str | None = None
        """The status line passed to ``start_response`` (last call wins)."""
        self.iterable: cabc.Iterable[bytes] = ()
        """The body iterable returned by the wrapped WSGI application."""
        self.closed = False
        """Whether ``close()`` has run."""
        self.request: Request | None = None
        """The request object the core built, once it has."""

    def find_request(self) -> Request:
        """Return the request the core built, or a new one if it built none.

        The core may not have run (a WSGI middleware answered or failed
        first): receivers of an unhandled exception still get a request.
        Building one reads nothing (its parts are lazy), so it cannot fail.
        """
        request = self.request
        if request is None:
            request = self.environ.get("werkzeug.request")
        if request is None:
            request = self.app.request_class(self.environ)
        return request

    def stream(self) -> cabc.Iterator[bytes]:
        """Iterate a body that is not a list; a failure is reported and re-raised."""
        return iter(ClosingStream(self))

    def report_stream_failure(self) -> None:
        """Report the exception being handled, raised while streaming the body."""
        got_request_exception.send_robust(type(self.app), request=self.find_request())
        logger.error(
            "Error while streaming the response to %s",
            self.environ.get("PATH_INFO"),
            exc_info=True,
        )

    def close(self) -> None:
        """Close the wrapped iterable, then send ``request_finished`` once.

        The signal is sent even when the iterable's ``close()`` raises (the
        exception then propagates); a receiver's failure is logged, never
        raised. This is the one place that sends ``request_finished``.
        """
        if self.closed:
            return
        self.closed = True
        try:
            iterable = self.iterable
            if type(iterable) is not list:  # PERF: a list has nothing to close
                close = getattr(iterable, "close", None)
                if close is not None:
                    close()
        finally:
            # PERF: nothing to compute when nothing is connected; the public
            # guard is an attribute read, has_listeners() costs 0.5 us per
            # request once any receiver is connected (bench/requests.py).
            # The send is inline, not a method: a call costs as much time
            # as the counters' compiled receivers (bench/requests.py).
            if request_finished.connected:
                status = self.status
                try:
                    code = _STATUS_CODES[status]  # type: ignore[index]
                except KeyError:  # a status line werkzeug does not make
                    code = _status_code(status)
                # Receiver failures are logged on framework.request by the
                # signal. PERF: send_robust() as it would run: its lone
                # receiver called here, or through an emitter (dispatch.py).
                lone = request_finished._lone
                if lone is not None:
                    try:
                        lone(
                            signal=request_finished,
                            sender=type(self.app),
                            environ=self.environ,
                            status=code,
                            duration=_perf_counter() - self.started,
                        )
                    except Exception as exc:
                        request_finished._log_failure(lone, exc)
                else:
                    try:
                        emit = request_finished._emitters[_FINISHED_ARGS]
                    except KeyError:
                        emit = request_finished._emitter(_FINISHED_ARGS)
                    emit(
                        type(self.app),
                        self.environ,
                        code,
                        _perf_counter() - self.started,
                    )

    def start_response(
        self,
        status: str,
        headers: list[tuple[str, str]],
        exc_info: t.Any = None,
    ) -> t.Any:
        """Record ``status`` and pass the call on to the server's start_response."""
        self.status = status
        return self.server_start_response(status, headers, exc_info)


class ClosingStream:
    """What the server gets for a body that is not a list or a tuple.

    It streams the body, reporting a failure (:meth:`ClosingIterable.stream`),
    and closes the request with it.
    """

    __slots__ = ("closing", "close")

    def __init__(self, closing: ClosingIterable) -> None:
        self.closing = closing
        # PERF: the server's close() goes straight to ClosingIterable.close.
        self.close = closing.close
        """Close the body, then send ``request_finished`` once."""

    def __iter__(self) -> cabc.Iterator[bytes]:
        closing = self.closing
        try:
            yield from closing.iterable
        except Exception:
            closing.report_stream_failure()
            raise


class FinishingFile:
    """A file whose ``close()`` ends the request; the rest is the file's.

    Handed to a server's ``wsgi.file_wrapper`` so the server can still use
    ``sendfile`` (through ``fileno()``) on a file response.
    """

    __slots__ = ("_file", "_closing")

    def __init__(self, file: t.Any, closing: ClosingIterable) -> None:
        self._file = file
        self._closing = closing

    def __getattr__(self, name: str) -> t.Any:
        return getattr(self._file, name)

    def close(self) -> None:
        """Close the original response (and file), then send request_finished."""
        self._closing.close()
