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
import functools
import io
import json
import logging
import time
import typing as t

from werkzeug.datastructures import EnvironHeaders
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import BadRequest
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wrappers import Request as _WerkzeugRequest
from werkzeug.wrappers import Response as _WerkzeugResponse

from .exceptions import TooManyFieldsSent
from .sessions import Session
from .sessions import load_session
from .signals import got_request_exception
from .signals import request_finished

if t.TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse
    from _typeshed.wsgi import WSGIEnvironment

    from .app import App

__all__ = ["ClosingIterable", "ClosingStream", "FinishingFile", "Request", "Response"]

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

    def __init__(
        self,
        environ: WSGIEnvironment,
        populate_request: bool = True,
        shallow: bool = False,
    ) -> None:
        # PERF: werkzeug's __init__ computes server, paths, query string and
        # headers eagerly (about 2 us); they are computed on first use below,
        # with werkzeug's own expressions (tests/test_app.py compares them).
        self.environ = environ
        self.shallow = shallow
        self.method = environ.get("REQUEST_METHOD", "GET").upper()
        # PERF: an instance attribute, so the app's "was the session used?"
        # check is the cheapest attribute read there is (bench/requests.py).
        self.loaded_session: Session | None = None
        if populate_request and not shallow:
            environ["werkzeug.request"] = self

    @functools.cached_property
    def scheme(self) -> str:  # type: ignore[override]
        """The URL scheme, such as ``http`` or ``https``."""
        return t.cast(str, self.environ.get("wsgi.url_scheme", "http"))

    @functools.cached_property
    def server(self) -> tuple[str, int | None] | None:  # type: ignore[override]
        """The server address, ``(host, port)``, or ``None`` if unknown."""
        name = self.environ.get("SERVER_NAME")
        if name is None:
            return None
        try:
            port: int | None = int(self.environ["SERVER_PORT"])
        except (KeyError, TypeError, ValueError):
            port = None  # a unix socket
        return name, port

    @functools.cached_property
    def root_path(self) -> str:  # type: ignore[override]
        """The prefix the application is mounted under, without trailing slash."""
        raw = self.environ.get("SCRIPT_NAME") or ""
        return _decode_wsgi(raw).rstrip("/")

    @functools.cached_property
    def path(self) -> str:  # type: ignore[override]
        """The path after :attr:`root_path`, used for routing."""
        raw = self.environ.get("PATH_INFO") or ""
        return "/" + _decode_wsgi(raw).lstrip("/")

    @functools.cached_property
    def query_string(self) -> bytes:  # type: ignore[override]
        """The raw query string."""
        return t.cast(str, self.environ.get("QUERY_STRING", "")).encode("latin1")

    @functools.cached_property
    def headers(self) -> EnvironHeaders:  # type: ignore[override]
        """The request headers."""
        return EnvironHeaders(self.environ)

    @functools.cached_property
    def remote_addr(self) -> str | None:  # type: ignore[override]
        """The client's address."""
        return t.cast("str | None", self.environ.get("REMOTE_ADDR"))

    @functools.cached_property
    def args(self) -> MultiDict[str, str]:
        """The parsed query string.

        :raises TooManyFieldsSent: more fields than ``MAX_FORM_FIELDS``.
        :raises BadRequest: the raw query string is not UTF-8 (a server
            passed bytes through undecoded; percent-escapes are fine).
        """
        limit = self.max_form_fields
        if limit is not None and self.query_string.count(b"&") >= limit:
            # Count the real fields only when the cheap bound is exceeded.
            fields = [p for p in self.query_string.split(b"&") if p]
            if len(fields) > limit:
                raise TooManyFieldsSent()
        try:
            return super().args
        except UnicodeDecodeError:
            raise BadRequest("The query string is not valid UTF-8.") from None

    @functools.cached_property
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

    def _load_form_data(self) -> None:
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

    def on_json_loading_failed(self, e: ValueError | None) -> t.Any:
        """Raise a 400 that says why the body is not the JSON the view asked for.

        :raises BadRequest: always.
        """
        if e is None:
            return super().on_json_loading_failed(e)
        raise BadRequest(f"The request body is not valid JSON: {e}") from e


class Response(_WerkzeugResponse):
    """A response: werkzeug's, with ``text/html`` as the default mimetype."""

    default_mimetype = "text/html"


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
        try:
            yield from self.iterable
        except Exception:
            got_request_exception.send_robust(
                type(self.app), request=self.find_request()
            )
            logger.error(
                "Error while streaming the response to %s",
                self.environ.get("PATH_INFO"),
                exc_info=True,
            )
            raise

    def close(self) -> None:
        """Close the wrapped iterable, then send ``request_finished`` once."""
        if self.closed:
            return
        self.closed = True
        iterable = self.iterable
        if type(iterable) is not list:  # PERF: a list has nothing to close
            close = getattr(iterable, "close", None)
            if close is not None:
                try:
                    close()
                finally:
                    self.finish()
                return
        if request_finished.connected:
            self.finish()

    def finish(self) -> None:
        """Send ``request_finished``; log any receiver failure, never raise."""
        # PERF: nothing to compute when nothing is connected; the public
        # guard is an attribute read, has_listeners() costs 0.5 us per
        # request once any receiver is connected (bench/requests.py).
        if not request_finished.connected:
            return
        status = self.status
        try:
            code = int(status[:3]) if status else 500
        except ValueError:
            code = 500
        # Receiver failures are logged on framework.request by the signal.
        request_finished.send_robust(
            type(self.app),
            environ=self.environ,
            status=code,
            duration=time.perf_counter() - self.started,
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

    It streams the body through :meth:`ClosingIterable.stream` and closes the
    request with it.
    """

    __slots__ = ("closing",)

    def __init__(self, closing: ClosingIterable) -> None:
        self.closing = closing

    def __iter__(self) -> cabc.Iterator[bytes]:
        return self.closing.stream()

    def close(self) -> None:
        """Close the body, then send ``request_finished`` once."""
        self.closing.close()


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
