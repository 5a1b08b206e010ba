"""The application: a WSGI callable that announces every request on signals.

``App.__call__`` is the handler. On the first request of a process that no
entry point set up (plain ``gunicorn module:app``), it runs
:func:`framework.setup` first. For every request it

1. sends ``request_started(sender=type(app), environ=environ)``, first;
2. calls :attr:`App.wsgi_app` (the routing and view core, possibly wrapped
   in WSGI middleware), turning any unhandled exception into a 500 and a
   ``got_request_exception``;
3. returns a :class:`~framework.wrappers.ClosingIterable` (a list, for list
   and tuple bodies) or a :class:`~framework.wrappers.ClosingStream` (any
   other body) whose ``close()`` sends ``request_finished`` exactly once, after
   the body's own ``close()``.

If a ``BaseException`` that is not an ``Exception`` (``SystemExit`` from a
worker timeout, ``KeyboardInterrupt``) interrupts the handler before it has
an iterable to return, ``request_finished`` is sent before it propagates.
"""

from __future__ import annotations

import collections.abc as cabc
import json
import logging
import os
import re
import sys
import threading
import time
import traceback
import typing as t
import weakref

from werkzeug.datastructures import Headers
from werkzeug.exceptions import HTTPException
from werkzeug.exceptions import InternalServerError
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.routing import Map
from werkzeug.routing import Rule
from werkzeug.wrappers import Response as BaseResponse

from . import bootstrap
from . import templating
from .conf import ImproperlyConfigured
from .conf import settings
from .csrf import SAFE_METHODS
from .csrf import check_request
from .dispatch import Sentinel
from .exceptions import DisallowedHost
from .exceptions import HeaderValueError
from .exceptions import RouteError
from .routing import Router
from .sessions import save_session
from .signals import got_request_exception
from .signals import request_started
from .signals import setting_changed
from .static import StaticFiles
from .wrappers import _BODYLESS_CODES
from .wrappers import _STATUS_LINES
from .wrappers import ClosingIterable
from .wrappers import ClosingStream
from .wrappers import FinishingFile
from .wrappers import Request
from .wrappers import Response
from .wrappers import _content_type
from .wrappers import _StreamedBody
from .wrappers import _text_response

if t.TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse
    from _typeshed.wsgi import WSGIApplication
    from _typeshed.wsgi import WSGIEnvironment
    from werkzeug.routing import MapAdapter

    from .typing import ErrorHandler
    from .typing import ResponseReturnValue
    from .typing import ViewFunction
    from .typing import ViewMiddleware

__all__ = ["App"]

logger = logging.getLogger("framework.request")

F = t.TypeVar("F", bound=cabc.Callable[..., t.Any])

_SETTINGS_READ: t.Final = frozenset(
    {
        "DEBUG",
        "ALLOWED_HOSTS",
        "MAX_CONTENT_LENGTH",
        "MAX_FORM_MEMORY_SIZE",
        "MAX_FORM_PARTS",
        "MAX_FORM_FIELDS",
        "DEFAULT_CHARSET",
        "SECURITY_HEADERS",
        "CSRF_ENABLED",
    }
)
_HOST_RE: t.Final = re.compile(
    r"^([a-z0-9.-]+|\[[a-f0-9]*:[a-f0-9.:]+\])(:[0-9]+)?$", re.IGNORECASE
)
_ENVIRON: t.Final = ("environ",)
"""The arguments of request_started, as the handler sends them."""
_BAD_HEADER_CHARS: t.Final = re.compile(r"[\x00-\x1f\x7f]")
_JSON_TYPE: t.Final = "application/json"
_FAST_KINDS: t.Final[frozenset[type]] = frozenset({str, bytes, dict, list})
"""View return types the core answers without a Response object."""
_HANDLER_LINES: t.Final = {
    code: line
    for code, line in _STATUS_LINES.items()
    if code >= 200 and code not in _BODYLESS_CODES
}
"""Status code -> line, of the statuses an error handler's text is sent with."""
_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def _make_json_encode() -> cabc.Callable[[t.Any], str]:
    """Return a compact UTF-8 JSON encoder for dicts and lists."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # pragma: no cover - CPython always has the C encoder
        return _encoder.encode
    # PERF: JSONEncoder.encode builds a new C encoder on every call (about
    # 0.9 us here); this one is built once. Without a markers dict a cyclic
    # value raises RecursionError instead of ValueError: still a 500.
    iterencode = make(
        None,
        _encoder.default,
        json.encoder.c_encode_basestring,  # type: ignore[attr-defined]
        None,
        ":",
        ",",
        False,
        False,
        True,
    )

    def encode(value: t.Any) -> str:
        return "".join(iterencode(value, 0))

    return encode


_json_encode = _make_json_encode()


def _json_bytes(value: t.Any) -> bytes:
    """Encode ``value`` as compact UTF-8 JSON.

    A string holding a lone surrogate (JSON input can carry one) cannot be
    UTF-8: then non-ASCII characters are written as ``\\u`` escapes.
    """
    try:
        return _json_encode(value).encode()
    except UnicodeEncodeError:
        return json.dumps(value, separators=(",", ":")).encode()


_UNDECIDED: t.Final = Sentinel("_UNDECIDED")
_accept_choices: dict[str, bool | None] = {"": None, "*/*": None}
"""``Accept`` value -> JSON preferred (True), HTML (False), neither (None)."""


def _wants_json(request: Request) -> bool:
    """Return whether an error for ``request`` should be JSON rather than HTML.

    The ``Accept`` header decides when it prefers one of the two; when it
    does not (absent, ``*/*``), a request that sent JSON gets JSON.
    """
    # PERF: parsing Accept costs about 5 us per HTTP error; the choice
    # depends on the header's value only, so it is made once per value
    # (clients send few distinct ones; 256 are remembered).
    environ = request.environ
    accept = environ.get("HTTP_ACCEPT", "")
    choice = _accept_choices.get(accept, _UNDECIDED)
    if choice is _UNDECIDED:
        accepted = request.accept_mimetypes
        json_quality = accepted.quality(_JSON_TYPE)
        html_quality = accepted.quality("text/html")
        choice = None if json_quality == html_quality else json_quality > html_quality
        if len(_accept_choices) < 256:
            _accept_choices[accept] = choice
    if choice is not None:
        return bool(choice)
    return bool(environ.get("CONTENT_TYPE")) and bool(request.is_json)


_apps: weakref.WeakSet[App] = weakref.WeakSet()
_perf_counter = time.perf_counter
_needs_setup = True


def _setup_project() -> None:
    """Run :func:`framework.setup` unless an entry point did (first request only)."""
    global _needs_setup
    if not bootstrap.is_ready():
        bootstrap.setup()
    _needs_setup = False


def _reset_app_settings(*, setting: str, **kwargs: t.Any) -> None:
    """Make every app read the settings again after ``setting`` changed."""
    if setting in _SETTINGS_READ:
        for app in list(_apps):
            app._state = None


setting_changed.connect(_reset_app_settings, dispatch_uid="framework.app.settings")


def _host_allowed(host: str, allowed: cabc.Sequence[str]) -> bool:
    """Whether a Host header value matches ``ALLOWED_HOSTS`` (Django's rules)."""
    if not _HOST_RE.match(host):
        return False
    host = host.lower()
    if host.endswith("]"):
        domain = host
    else:
        domain = host.rsplit(":", 1)[0]
    domain = domain.removesuffix(".")
    for pattern in allowed:
        pattern = pattern.lower()
        if pattern == "*" or pattern == domain:
            return True
        if pattern.startswith(".") and (
            domain.endswith(pattern) or domain == pattern[1:]
        ):
            return True
    return False


def _check_length(length: str, limit: int) -> None:
    """Refuse a declared ``Content-Length`` over ``limit`` (an invalid one is ignored).

    :raises RequestEntityTooLarge: the body is announced as too large.
    """
    try:
        size = int(length)
    except ValueError:
        return
    if size > limit:
        raise RequestEntityTooLarge()


_error_bodies: dict[type[HTTPException], tuple[str | None, str]] = {}
_html_types: dict[str, bool] = {}
"""Content-Type value -> whether it is HTML (SECURITY_HEADERS join it)."""


def _error_response(exc: HTTPException, environ: WSGIEnvironment) -> Response:
    """Return the response of an HTTP error: werkzeug's ``exc.get_response()``.

    PERF: the error page of a werkzeug error class (``abort(404)``, a routing
    404) depends on its class only, unless an instance or subclass changes
    what werkzeug renders; that page is built once per class, and the
    response is a lean :class:`Response` with werkzeug's status, headers and
    body (tests/test_app.py compares them).
    """
    # Anything set on the instance (a description, a response, a code...)
    # changes the page: werkzeug renders it.
    if exc.response is not None or len(exc.__dict__) != 1:
        return t.cast(Response, exc.get_response(environ))
    cls = type(exc)
    cached = _error_bodies.get(cls)
    # The class's description may be changed at run time: it is the key too.
    if cached is None or cached[0] is not exc.description:
        if not (
            cls.get_response is HTTPException.get_response
            and cls.get_body is HTTPException.get_body
            and cls.get_description is HTTPException.get_description
            and cls.get_headers is HTTPException.get_headers
            and cls.name is HTTPException.name
        ):
            return t.cast(Response, exc.get_response(environ))
        cached = _error_bodies[cls] = (exc.description, exc.get_body(environ))
    return Response(cached[1], exc.code)


_PLAIN_HEADER_NAMES: t.Final = frozenset(
    {
        "Content-Type",
        "Content-Length",
        "Content-Disposition",
        "Content-Encoding",
        "Content-Language",
        "Location",
        "Set-Cookie",
        "Cache-Control",
        "ETag",
        "Expires",
        "Last-Modified",
        "Date",
        "Vary",
        "Accept-Ranges",
        "Allow",
        "Retry-After",
        "WWW-Authenticate",
    }
)
"""Header names responses often carry, spelled as werkzeug spells them."""


def _add_security_headers(state: _State, items: list[tuple[str, str]]) -> None:
    """Append to ``items`` the security headers it lacks (names case-blind)."""
    # PERF: when every name is one of the plain names (those of the usual
    # headers that are no security header, in this exact spelling), none of
    # the security headers is there: they are all appended, without the set
    # of lower-case names (about 4k instructions less for three headers).
    plain = state.plain_names
    for name, _ in items:
        if name not in plain:
            break
    else:
        items.extend(state.html_headers)
        return
    present = {name.lower() for name, _ in items}
    for name, lower, extra in state.html_headers_lower:
        if lower not in present:
            items.append((name, extra))


class _State:
    """What an app reads from the settings and builds once, per change."""

    __slots__ = (
        "router",
        "debug",
        "allowed_hosts",
        "good_hosts",
        "max_content_length",
        "charset",
        "html_type",
        "request_class",
        "handler",
        "html_headers",
        "html_headers_lower",
        "plain_names",
        "csrf_enabled",
        "csrf_exempt",
        "response_hooks",
        "fast_kinds",
        "lean_errors",
        "text_type",
        "text_extra",
    )

    router: Router
    debug: bool
    allowed_hosts: list[str]
    good_hosts: dict[str, bool]
    max_content_length: int | None
    charset: str
    html_type: str
    request_class: type[Request]
    handler: cabc.Callable[[Request], Response] | None
    html_headers: tuple[tuple[str, str], ...]
    html_headers_lower: tuple[tuple[str, str, str], ...]
    plain_names: frozenset[str]
    csrf_enabled: bool
    csrf_exempt: frozenset[str]
    response_hooks: tuple[cabc.Callable[[Request, Response], Response], ...]
    fast_kinds: frozenset[type]
    lean_errors: bool
    text_type: str
    text_extra: tuple[tuple[str, str], ...]


def _security_headers(setting: t.Any) -> tuple[tuple[str, str], ...]:
    """Return ``SECURITY_HEADERS`` as a header list (``None`` values left out).

    :raises ImproperlyConfigured: a name is empty or a name or value has a
        control character (CR, LF, NUL...), which would split the response.
    """
    headers = []
    for name, value in (setting or {}).items():
        if value is None:
            continue
        name, value = str(name), str(value)
        if not name or _BAD_HEADER_CHARS.search(f"{name}{value}"):
            raise ImproperlyConfigured(
                f"SECURITY_HEADERS: the header {name!r}: {value!r} is empty or has"
                " a control character (CR, LF, NUL...)."
            )
        headers.append((name, value))
    return tuple(headers)


class App:
    """A WSGI application: routes, views, error handlers and middleware.

    :param import_name: the name of the module defining the app, usually
        ``__name__``; templates are looked up next to it.
    :param template_folder: a folder of templates, relative to that module's
        directory (or absolute); searched before ``TEMPLATE_DIRS``.
    :param static_folder: a folder of static files (relative like
        ``template_folder``), served under ``static_url_path`` by the route
        ``static``; see :mod:`framework.static`. ``None``: no static route.
    :param static_url_path: the URL prefix of the static files.
    """

    request_class: type[Request] = Request
    """The class of the request passed to views."""

    response_class: type[Response] = Response
    """The class used to turn view return values into responses."""

    def __init__(
        self,
        import_name: str,
        template_folder: str | os.PathLike[str] | None = None,
        static_folder: str | os.PathLike[str] | None = None,
        static_url_path: str = "/static",
    ) -> None:
        self.import_name = import_name
        """The name of the module defining the app."""
        module = sys.modules.get(import_name)
        module_file = getattr(module, "__file__", None)
        self.root_path = (
            os.path.dirname(os.path.abspath(module_file))
            if module_file
            else os.getcwd()
        )
        """The directory relative paths (templates) are resolved against."""
        self.template_folder = os.path.join(
            self.root_path, "templates" if template_folder is None else template_folder
        )
        """The app's own template directory."""
        self.url_map = Map()
        """The werkzeug :class:`~werkzeug.routing.Map` of every route."""
        self.view_functions: dict[str, ViewFunction] = {}
        """Endpoint name -> view function."""
        self.error_handlers: dict[int | type[BaseException], ErrorHandler] = {}
        """HTTP status code or exception class -> error handler."""
        self.view_middleware: list[ViewMiddleware] = []
        """Per-request middleware factories, outermost first."""
        self._wsgi_app: WSGIApplication = self.dispatch
        self._direct = True
        self._state: _State | None = None
        self._lock = threading.Lock()
        self._build_adapter: MapAdapter | None = None
        self._response_hooks: list[cabc.Callable[[Request, Response], Response]] = []
        self.static: StaticFiles | None = None
        """The app's static files, if it has a ``static_folder``."""
        if static_folder is not None:
            self.static = StaticFiles(
                os.path.join(self.root_path, static_folder),
                static_url_path,
                self.response_class,
            )
            self.add_route(
                f"{self.static.url_path}/<path:filename>",
                self.static.view,
                endpoint="static",
            )
        _apps.add(self)
        templating.register_app(self)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.import_name!r}>"

    # Registration ---------------------------------------------------------

    def route(
        self,
        rule: str,
        methods: cabc.Iterable[str] | None = None,
        endpoint: str | None = None,
        **options: t.Any,
    ) -> cabc.Callable[[F], F]:
        """Register the decorated view for ``rule``.

        :param rule: a werkzeug rule, such as ``"/users/<int:id>"``.
        :param methods: allowed methods (default ``GET``); ``HEAD`` is added
            with ``GET`` and ``OPTIONS`` is answered automatically unless
            listed.
        :param endpoint: the name for :meth:`url_for`; default: the view's
            ``__name__``.
        :param options: passed on to :class:`werkzeug.routing.Rule`.
        """

        def decorator(view: F) -> F:
            self.add_route(rule, view, methods=methods, endpoint=endpoint, **options)
            return view

        return decorator

    def add_route(
        self,
        rule: str,
        view: ViewFunction,
        methods: cabc.Iterable[str] | None = None,
        endpoint: str | None = None,
        **options: t.Any,
    ) -> Rule:
        """Register ``view`` for ``rule``; see :meth:`route`.

        :returns: the new werkzeug rule.
        :raises RouteError: ``endpoint`` already names another view, or the
            rule is malformed.
        """
        if not callable(view):
            raise RouteError(f"Cannot route {rule!r} to {view!r}: it is not callable.")
        name = endpoint or view.__name__
        existing = self.view_functions.get(name)
        if existing is not None and existing is not view:
            raise RouteError(
                f"Endpoint {name!r} is already used by {existing!r}; pass"
                f" endpoint=... to route {rule!r} to {view!r}."
            )
        if isinstance(methods, str):
            raise RouteError(
                f"methods for {rule!r} must be a list such as [{methods!r}], not a"
                " string."
            )
        wanted = {m.upper() for m in (methods or ("GET",))}
        automatic_options = "OPTIONS" not in wanted
        if automatic_options:
            wanted.add("OPTIONS")
        try:
            url_rule = Rule(rule, methods=wanted, endpoint=name, **options)
            self.url_map.add(url_rule)
        except (ValueError, TypeError, LookupError) as exc:
            raise RouteError(f"Cannot add the route {rule!r}: {exc}") from exc
        url_rule.provide_automatic_options = automatic_options  # type: ignore[attr-defined]
        self.view_functions[name] = view
        self._invalidate()
        return url_rule

    def errorhandler(
        self, code_or_exception: int | type[BaseException]
    ) -> cabc.Callable[[F], F]:
        """Register the decorated ``handler(request, exc)`` for an error.

        :param code_or_exception: an HTTP status code (for ``HTTPException``s
            and, with 500, for unhandled exceptions) or an exception class
            (matched along the raised exception's MRO).
        """

        def decorator(handler: F) -> F:
            self.register_error_handler(code_or_exception, handler)
            return handler

        return decorator

    def register_error_handler(
        self, code_or_exception: int | type[BaseException], handler: ErrorHandler
    ) -> None:
        """Register ``handler(request, exc)``; see :meth:`errorhandler`.

        :raises TypeError: ``code_or_exception`` is neither an int nor an
            exception class.
        """
        if not (
            isinstance(code_or_exception, int)
            or (
                isinstance(code_or_exception, type)
                and issubclass(code_or_exception, BaseException)
            )
        ):
            raise TypeError(
                f"errorhandler() takes an HTTP status code or an exception class,"
                f" not {code_or_exception!r}."
            )
        self.error_handlers[code_or_exception] = handler

    def add_view_middleware(self, factory: ViewMiddleware) -> ViewMiddleware:
        """Add per-request middleware around the views, Django style.

        ``factory(get_response)`` is called once, when the app is built, and
        returns ``handler(request) -> response``; ``get_response(request)``
        routes, calls the view and returns a :class:`Response` (HTTP errors
        already turned into responses). Middleware added first is outermost.
        Unhandled exceptions propagate through it.

        :returns: ``factory``, so that this can be used as a decorator.
        """
        self.view_middleware.append(factory)
        self._invalidate()
        return factory

    def add_wsgi_middleware(
        self,
        middleware: cabc.Callable[..., WSGIApplication],
        *args: t.Any,
        **kwargs: t.Any,
    ) -> None:
        """Wrap :attr:`wsgi_app` in ``middleware(wsgi_app, *args, **kwargs)``.

        The request signals stay outside every middleware: request_started
        comes before it, request_finished after its iterable's ``close()``,
        which the middleware must forward.
        """
        self.wsgi_app = middleware(self.wsgi_app, *args, **kwargs)

    @property
    def wsgi_app(self) -> WSGIApplication:
        """The WSGI application inside the signal handler.

        Replace it to add WSGI middleware, as in Flask:
        ``app.wsgi_app = Middleware(app.wsgi_app)``.
        """
        return self._wsgi_app

    @wsgi_app.setter
    def wsgi_app(self, value: WSGIApplication) -> None:
        self._wsgi_app = value
        self._direct = (
            getattr(value, "__func__", None) is App.dispatch
            and getattr(value, "__self__", None) is self
        )

    def _invalidate(self) -> None:
        self._state = None
        self._build_adapter = None

    # URLs -----------------------------------------------------------------

    def url_for(
        self,
        endpoint: str,
        *,
        _request: Request | None = None,
        _external: bool = False,
        _method: str | None = None,
        _anchor: str | None = None,
        **values: t.Any,
    ) -> str:
        """Build the URL of ``endpoint`` with ``values``.

        :param _request: bind to this request (its script root and host);
            without it the URL is relative to the root, and ``_external``
            uses ``localhost``.
        :param _external: return an absolute URL with scheme and host.
        :param _method: pick the rule for this method.
        :param _anchor: append ``#anchor``.
        :raises werkzeug.routing.BuildError: no rule can build the URL.
        """
        adapter: MapAdapter | None
        if _request is not None:
            adapter = self.url_map.bind_to_environ(_request.environ)
        else:
            adapter = self._build_adapter
            if adapter is None:
                adapter = self._build_adapter = self.url_map.bind("localhost")
        url = adapter.build(endpoint, values, method=_method, force_external=_external)
        if _anchor is not None:
            url += "#" + _anchor
        return url

    def static_url(self, filename: str) -> str:
        """Return the versioned URL of a static file (``static_url()`` in templates).

        :raises RuntimeError: the app has no ``static_folder``.
        :raises FileNotFoundError: no such file in it.
        """
        if self.static is None:
            raise RuntimeError(
                f"{self!r} has no static folder; create it with"
                " App(__name__, static_folder='static')."
            )
        return self.static.url(filename)

    def iter_routes(self) -> cabc.Iterator[tuple[Rule, ViewFunction]]:
        """Yield every rule with its view, in registration order."""
        for rule in self.url_map.iter_rules():
            yield rule, self.view_functions[rule.endpoint]

    # Templates --------------------------------------------------------------

    @property
    def jinja_env(self) -> t.Any:
        """Return the app's Jinja2 environment, built on first use.

        It searches :attr:`template_folder`, then ``TEMPLATE_DIRS``, and is
        rebuilt when those settings change.
        """
        return templating.environment_for(self)

    def render_template(self, template_name: str, **context: t.Any) -> str:
        """Render a template of this app with ``context``."""
        return templating.render_with(self.jinja_env, template_name, context)

    # Building ---------------------------------------------------------------

    def _setup(self) -> _State:
        with self._lock:
            if self._state is not None:
                # Another thread built it while this one waited.
                return self._state
            state = _State()
            state.router = Router(self.url_map)
            state.debug = bool(settings.DEBUG)
            state.allowed_hosts = list(settings.ALLOWED_HOSTS)
            state.good_hosts = {}
            state.max_content_length = settings.MAX_CONTENT_LENGTH
            state.charset = settings.DEFAULT_CHARSET
            state.html_type = f"text/html; charset={state.charset}"
            state.html_headers = _security_headers(settings.SECURITY_HEADERS)
            state.html_headers_lower = tuple(
                (name, name.lower(), value) for name, value in state.html_headers
            )
            security = {lower for _, lower, _ in state.html_headers_lower}
            state.plain_names = frozenset(
                name for name in _PLAIN_HEADER_NAMES if name.lower() not in security
            )
            state.csrf_enabled = bool(settings.CSRF_ENABLED)
            state.csrf_exempt = frozenset(
                endpoint
                for endpoint, view in self.view_functions.items()
                if getattr(view, "csrf_exempt", False)
            )

            class BoundRequest(self.request_class):  # type: ignore[name-defined,misc]
                max_content_length = state.max_content_length
                max_form_memory_size = settings.MAX_FORM_MEMORY_SIZE
                max_form_parts = settings.MAX_FORM_PARTS
                max_form_fields = settings.MAX_FORM_FIELDS

            BoundRequest.app = self
            BoundRequest.__name__ = self.request_class.__name__
            BoundRequest.__qualname__ = self.request_class.__qualname__
            state.request_class = BoundRequest
            handler: cabc.Callable[[Request], Response] | None = None
            if self.view_middleware:
                handler = self._get_response
                for factory in reversed(self.view_middleware):
                    handler = factory(handler)
            state.handler = handler
            state.response_hooks = tuple(self._response_hooks)
            state.fast_kinds = frozenset() if state.response_hooks else _FAST_KINDS
            # An error handler's (text, status) is sent without a Response
            # (_handle) as Response(text, status) would be: its content type,
            # and for HTML the security headers _finish_response adds to it.
            # Not while a response hook needs a Response object, nor for a
            # subclass's own way of handling errors.
            text_type = _content_type(Response.default_mimetype)
            state.text_type = text_type or ""
            state.text_extra = ()
            if state.text_type.startswith("text/html"):
                state.text_extra = tuple(
                    (name, value)
                    for name, lower, value in state.html_headers_lower
                    if lower not in ("content-type", "content-length")
                )
            cls = type(self)
            state.lean_errors = (
                text_type is not None
                # Response.__call__ would look at these (werkzeug's path).
                and not {"location", "content-location"}.intersection(
                    name.lower() for name, _ in state.text_extra
                )
                and not state.response_hooks
                and cls.handle_exception is App.handle_exception
                and cls.make_response is App.make_response
                and cls._call_handler is App._call_handler
            )
            self._state = state
            return state

    # Handling ---------------------------------------------------------------

    def __call__(
        self, environ: WSGIEnvironment, start_response: StartResponse
    ) -> cabc.Iterable[bytes]:
        """Handle one request; see the module docstring for the signal rules."""
        closing = ClosingIterable(self, environ, _perf_counter(), start_response)
        try:
            try:
                # PERF: one global test per request. The first request of a
                # process that no entry point set up (plain ``gunicorn
                # module:app``) loads the project, so that installed apps'
                # receivers see it, request_started included.
                if _needs_setup:
                    _setup_project()
                # Every receiver runs (the ORM's too) even if one raises; the
                # first failure then makes the request an unhandled exception.
                # PERF: skipped outright when nothing is connected, as
                # request_finished is (ClosingIterable.close).
                if request_started.connected:
                    # PERF: send_robust() as it would run: its lone receiver
                    # called here, or through an emitter (dispatch.py).
                    lone = request_started._lone
                    if lone is not None:
                        try:
                            lone(
                                signal=request_started,
                                sender=type(self),
                                environ=environ,
                            )
                        except Exception as exc:
                            request_started._log_failure(lone, exc)
                            raise
                    else:
                        try:
                            emit = request_started._emitters[_ENVIRON]
                        except KeyError:
                            emit = request_started._emitter(_ENVIRON)
                        failure = emit(type(self), environ)
                        if failure is not None:
                            raise failure
                if self._direct:
                    closing.iterable = self._handle(environ, closing)
                else:
                    closing.iterable = self._wsgi_app(environ, closing.start_response)
            except Exception:
                closing.iterable = self._unhandled(environ, closing)
        except BaseException:
            # NOTE: SystemExit from a worker timeout or KeyboardInterrupt, or
            # a failure while answering 500 (the server refusing it): no
            # iterable will reach the server, so end the request now.
            closing.close()
            raise
        iterable = closing.iterable
        kind = type(iterable)
        if kind is list or kind is tuple:
            closing.extend(iterable)
            return closing
        if kind is _StreamedBody and iterable.closing is None:  # type: ignore[attr-defined]
            # PERF: a Response's streamed body goes to the server as it is,
            # adopted by the request (no ClosingStream around it). A body
            # another app adopted (an App mounted inside this one) is left to
            # it: it ends that app's request on close(), in this one's.
            # The server's close() goes straight to ClosingIterable.close, which
            # closes the body itself when the response has nothing else to
            # run on close (a lean response's close() does no more).
            iterable.closing = closing  # type: ignore[attr-defined]
            response = iterable.response  # type: ignore[attr-defined]
            closing.iterable = response if response._on_close else response.response
            iterable.close = closing.close  # type: ignore[attr-defined]
            return iterable
        wrapper = environ.get("wsgi.file_wrapper")
        if wrapper is not None and kind is wrapper:
            return self._file_response(iterable, wrapper, closing)
        return ClosingStream(closing)

    def _file_response(
        self,
        iterable: t.Any,
        wrapper: t.Any,
        closing: ClosingIterable,
    ) -> cabc.Iterable[bytes]:
        """Keep a ``wsgi.file_wrapper`` response one, so servers can sendfile.

        The new wrapper's file closes through ``closing``: the original
        wrapper's ``close()`` first, then request_finished.
        """
        filelike = getattr(iterable, "filelike", None)
        if filelike is None:
            return ClosingStream(closing)
        blksize = getattr(iterable, "blksize", 8192)
        return t.cast(
            "cabc.Iterable[bytes]", wrapper(FinishingFile(filelike, closing), blksize)
        )

    def dispatch(
        self, environ: WSGIEnvironment, start_response: StartResponse
    ) -> cabc.Iterable[bytes]:
        """Run routing, the view and error handling: the app inside the signals.

        This is the default :attr:`wsgi_app`; the handler calls it directly
        (a faster way to the same result) while no WSGI middleware wraps it.
        """
        closing = ClosingIterable(self, environ, 0.0, start_response)
        return self._handle(environ, closing)

    def _handle(
        self, environ: WSGIEnvironment, closing: ClosingIterable
    ) -> cabc.Iterable[bytes]:
        state = self._state or self._setup()
        # PERF: the request rides on ``closing`` rather than in the environ
        # ("werkzeug.request"): a new key makes a server's full environ grow
        # its table, about 2 us per request in a gunicorn worker.
        closing.request = request = state.request_class(environ, not self._direct)
        try:
            host = environ.get("HTTP_HOST") or environ.get("SERVER_NAME", "")
            if host not in state.good_hosts:
                self._check_host(state, host)
            length = environ.get("CONTENT_LENGTH")
            if length and state.max_content_length is not None:
                _check_length(length, state.max_content_length)
            if state.handler is not None:
                response = state.handler(request)
            else:
                rv = self._call_view(state, request)
                kind = type(rv)
                # NOTE: a view that used the session takes the Response path,
                # where _finish_response saves it.
                if kind in state.fast_kinds and request.loaded_session is None:
                    # PERF: common return values skip werkzeug's Response;
                    # the output equals Response's (tests/test_app.py
                    # compares them). No kind is fast while a response hook
                    # needs a Response object.
                    if kind is str or kind is bytes:
                        body = rv.encode(state.charset) if kind is str else rv
                        headers = [
                            ("Content-Type", state.html_type),
                            ("Content-Length", str(len(body))),
                            *state.html_headers,
                        ]
                    else:
                        body = _json_bytes(rv)
                        headers = [
                            ("Content-Type", _JSON_TYPE),
                            ("Content-Length", str(len(body))),
                        ]
                    closing.status = "200 OK"
                    closing.server_start_response("200 OK", headers)
                    if request.method == "HEAD":
                        return []
                    return [body]
                if kind is Response and 200 <= rv._status_code != 204:
                    # PERF: what make_response() returns for a Response.
                    response = rv
                else:
                    response = self.make_response(rv)
        except HTTPException as exc:
            response = self.handle_http_exception(request, exc)
        except Exception as exc:
            if closing.status is not None:
                # NOTE: the server refused the headers: the handler answers
                # 500 (App._unhandled, with exc_info as PEP 3333 wants), once;
                # if the server refuses that too, nothing here tries again.
                raise
            handler = self._find_handler(exc) if state.lean_errors else None
            if handler is None:
                response = self.handle_exception(request)
            else:
                # handle_exception(), its handler found: the same steps.
                answer = self._call_handler(request, handler, exc, lean=True)
                if isinstance(answer, tuple):
                    # PERF: the handler's (text, status), sent as the plain
                    # view path sends a str: what make_response(),
                    # _finish_response() and Response.__call__ make of it,
                    # without the Response (tests/test_app.py compares them).
                    text, code = answer
                    body = text.encode()
                    headers = [
                        ("Content-Type", state.text_type),
                        ("Content-Length", str(len(body))),
                        *state.text_extra,
                    ]
                    line = _HANDLER_LINES[code]
                    closing.status = line
                    closing.server_start_response(line, headers)
                    if request.method == "HEAD":
                        return []
                    return [body]
                response = answer
        # NOTE: outside the try, so that a failure from here on (saving the
        # session, a response hook, the server refusing the headers) is the
        # handler's to answer (App._unhandled): once, never through this
        # method's error handling a second time.
        response = self._finish_response(state, request, response)
        if type(response) is Response:
            # PERF: the server's own start_response, the status recorded
            # first, as ClosingIterable.start_response does (a Response
            # starts with its own status line).
            closing.status = response._status
            return response(environ, closing.server_start_response)
        return response(environ, closing.start_response)

    def _finish_response(
        self, state: _State, request: Request | None, response: Response
    ) -> Response:
        """Process the response of every request: the one place for it.

        NOTE: :meth:`_handle` passes every response it makes through here
        (view, view-middleware and HTTP error responses alike), except the
        fast ``str``/``bytes``/``dict`` path, which adds the security headers
        itself and is not taken by a view that touched the session or while a
        response hook is installed. Here the session the request used is
        saved, ``SECURITY_HEADERS`` join HTML responses, and the internal
        response hooks (``hook(request, response) -> response``) run; a
        request that left the session alone pays one attribute read. An error
        answered after the server refused the first headers
        (:meth:`_start_error`) comes without a request: it only gets the
        headers.
        """
        if request is not None and request.loaded_session is not None:
            save_session(request, request.loaded_session, response)
        if state.html_headers:
            # SECURITY_HEADERS join an HTML response that lacks them.
            headers = response.headers
            if type(headers) is Headers:
                # PERF: werkzeug's get() and setdefault() look a name up
                # case-blind through the whole list, once per call (about
                # 0.5 us each). The list is read here once for the content
                # type and, for HTML, once more for the names present; the
                # values were validated when the app was set up.
                items = headers._list
                for key, value in items:
                    if key == "Content-Type" or key.lower() == "content-type":
                        # PERF: str.startswith() parses its arguments as a
                        # tuple (about 0.9k instructions); looking up the
                        # few content types an app sends costs a tenth.
                        try:
                            html = _html_types[value]
                        except KeyError:
                            html = value.startswith("text/html")
                            if len(_html_types) < 256:
                                _html_types[value] = html
                        if html:
                            _add_security_headers(state, items)
                        break
            elif headers.get("Content-Type", "").startswith("text/html"):
                for name, value in state.html_headers:
                    headers.setdefault(name, value)
        if state.response_hooks and request is not None:
            for hook in state.response_hooks:
                response = hook(request, response)
        return response

    def _call_view(self, state: _State, request: Request) -> t.Any:
        """Route ``request`` and call its view: the one routing step.

        Both cores use it: :meth:`_handle` (no view middleware) and
        :meth:`_get_response` (the innermost ``get_response``). It sets
        ``request.endpoint`` and ``request.view_args``.

        :returns: the view's return value, or the response to an automatic
            ``OPTIONS``.
        :raises HTTPException: no rule matches (404, 405) or a redirect.
        """
        method = request.method
        rule, values = state.router.match(request.environ, method)
        if method == "OPTIONS" and getattr(rule, "provide_automatic_options", False):
            return self._options_response(state, request)
        request.endpoint = endpoint = rule.endpoint
        request.view_args = values
        # CSRF (framework.csrf): unsafe methods need the session's token.
        if (
            method not in SAFE_METHODS
            and state.csrf_enabled
            and endpoint not in state.csrf_exempt
        ):
            check_request(request)
        view = self.view_functions[endpoint]
        # PERF: a call without ** when the rule has no arguments.
        return view(request, **values) if values else view(request)

    def _get_response(self, request: Request) -> Response:
        """Route and call the view; the innermost ``get_response``."""
        state = self._state or self._setup()
        try:
            return self.make_response(self._call_view(state, request))
        except HTTPException as exc:
            return self.handle_http_exception(request, exc)

    def _check_host(self, state: _State, host: str) -> None:
        if _host_allowed(host, state.allowed_hosts):
            if len(state.good_hosts) < 256:
                state.good_hosts[host] = True
            return
        raise DisallowedHost(f"The Host header {host!r} is not in ALLOWED_HOSTS.")

    def _options_response(self, state: _State, request: Request) -> Response:
        response = self.response_class()
        response.allow.update(state.router.allowed_methods(request.environ))
        return response

    def make_response(self, rv: ResponseReturnValue) -> Response:  # noqa: C901
        """Turn a view's return value into a :class:`Response`.

        Accepted: a :class:`~werkzeug.wrappers.Response` (returned as is), a
        ``str`` or ``bytes`` body, a ``dict`` or ``list`` (JSON), an iterable
        or generator of ``bytes``/``str`` (streamed), or a tuple
        ``(body, status)``, ``(body, headers)`` or
        ``(body, status, headers)``.

        :raises TypeError: the value is none of these.
        :raises HeaderValueError: a header contains a control character (CR,
            LF, NUL, tab...: PEP 3333 allows none).
        """
        if type(rv) is tuple and len(rv) == 2:
            # PERF: (text, status), an error handler's usual answer, is what
            # the general path below makes of it, with fewer tests.
            body, code = rv
            if type(body) is str and type(code) is int and 200 <= code != 204:
                return _text_response(self.response_class, body, code)
        status: t.Any = None
        headers: t.Any = None
        if isinstance(rv, tuple):
            if len(rv) == 3:
                rv, status, headers = rv
            elif len(rv) == 2:
                if isinstance(rv[1], int | str):
                    rv, status = rv
                else:
                    rv, headers = rv
            else:
                raise TypeError(
                    "A view returned a tuple of length"
                    f" {len(rv)}; return (body, status), (body, headers) or"
                    " (body, status, headers)."
                )
        if rv is None:
            raise TypeError(
                "A view returned None; return a response, a string, bytes, a dict"
                " or list (JSON), or a tuple."
            )
        response: Response
        if isinstance(rv, Response):
            response = rv
        elif isinstance(rv, str | bytes | bytearray):
            # The status set by the constructor, as the setter would.
            response = self.response_class(rv, status)
            status = None
        elif isinstance(rv, dict | list):
            response = self.response_class(_json_bytes(rv), status, mimetype=_JSON_TYPE)
            status = None
        elif isinstance(rv, HTTPException):
            response = t.cast(Response, rv.get_response())
        elif isinstance(rv, BaseResponse):
            response = t.cast(Response, rv)
        elif isinstance(rv, cabc.Iterable):
            response = self.response_class(rv)
        else:
            raise TypeError(
                f"A view returned {type(rv).__name__}; return a response, a string,"
                " bytes, a dict or list (JSON), or a tuple."
            )
        if status is not None:
            response.status = status
        if headers:
            items = headers.items() if hasattr(headers, "items") else headers
            for name, value in items:
                if _BAD_HEADER_CHARS.search(f"{name}{value}"):
                    raise HeaderValueError(
                        f"The header {name!r} has a control character (CR, LF,"
                        f" NUL...) in its name or value {value!r}; that would"
                        " split or break the response."
                    )
                response.headers[name] = value
        code = response.status_code
        if code == 204 or code < 200:
            # A response without content must not announce a content type.
            response.headers.pop("Content-Type", None)
        return response

    def handle_http_exception(self, request: Request, exc: HTTPException) -> Response:
        """Turn an HTTP error into a response, through its error handler.

        A redirect (``RequestRedirect``) or an error without a code is
        returned as is. A failing error handler is an unhandled exception.
        """
        if exc.code is None or exc.code < 400:
            return t.cast(Response, exc.get_response(request.environ))
        handler = self.error_handlers.get(exc.code) or self._find_handler(exc)
        if handler is None:
            if _wants_json(request):
                return self._json_error(request, exc)
            return _error_response(exc, request.environ)
        try:
            return self.make_response(handler(request, exc))
        except HTTPException as other:
            # An HTTP error raised by the handler is still not an exception.
            return t.cast(Response, other.get_response(request.environ))
        except Exception:
            return self.handle_exception(request)

    def _json_error(self, request: Request, exc: HTTPException) -> Response:
        """Answer an HTTP error as ``{"error": description}`` (its headers kept)."""
        response = self.response_class(
            _json_bytes({"error": exc.description or exc.name}),
            status=exc.code,
            mimetype=_JSON_TYPE,
        )
        for name, value in exc.get_headers(request.environ):
            if name.lower() != "content-type":
                response.headers[name] = value
        return response

    def _find_handler(self, exc: BaseException) -> ErrorHandler | None:
        if not self.error_handlers:
            return None
        for cls in type(exc).__mro__:
            handler = self.error_handlers.get(cls)
            if handler is not None:
                return handler
        return None

    def handle_exception(self, request: Request | None) -> Response:
        """Turn the exception being handled into a response.

        A handler registered for its class turns it into a response (an
        HTTP error it raises becomes that error's response). Otherwise, or
        if that handler fails, it is unhandled: the error is logged on
        ``framework.request``, ``got_request_exception`` is sent and the
        response is a 500 (from the 500 handler if any) that shows the
        traceback only when ``DEBUG`` is on.
        """
        exc = sys.exception()
        assert exc is not None
        handler = (
            self._find_handler(exc) if not isinstance(exc, HTTPException) else None
        )
        if handler is not None:
            return t.cast(Response, self._call_handler(request, handler, exc))
        return self._server_error(request, exc)

    def _call_handler(
        self,
        request: Request | None,
        handler: ErrorHandler,
        exc: BaseException,
        lean: bool = False,
    ) -> Response | tuple[str, int]:
        """Return the response of ``handler`` (found for ``exc``, not an HTTP error).

        With ``lean``, an answer ``(text, status)`` that :meth:`_handle` can
        send without a :class:`Response` (the app's own response class, a
        status with a body, no session to save) is returned as it is.
        """
        try:
            rv = handler(request, exc)
            if (
                lean
                and type(rv) is tuple
                and len(rv) == 2
                and type(rv[0]) is str
                and type(rv[1]) is int
                and rv[1] in _HANDLER_LINES
                and request is not None
                and request.loaded_session is None
                and self.response_class is Response
            ):
                return t.cast("tuple[str, int]", rv)
            return self.make_response(rv)
        except HTTPException as other:
            # abort(404) in a handler of, say, LookupError: a response.
            environ = request.environ if request is not None else None
            return t.cast(Response, other.get_response(environ))
        except Exception as handler_exc:
            # A failing handler is unhandled; handlers are not searched
            # again (a handler failing with its own class would loop).
            return self._server_error(request, handler_exc)

    def _server_error(self, request: Request | None, exc: BaseException) -> Response:
        """Log ``exc``, send got_request_exception and return the 500 response."""
        self.log_exception(request, exc)
        got_request_exception.send_robust(type(self), request=request)
        server_error = InternalServerError(original_exception=exc)
        handler = self.error_handlers.get(500)
        if handler is not None:
            try:
                return self.make_response(handler(request, server_error))
            except Exception as handler_exc:
                self.log_exception(request, handler_exc)
                got_request_exception.send_robust(type(self), request=request)
        state = self._state
        if state is not None and state.debug:
            text = "".join(traceback.format_exception(exc))
            return self.response_class(text, status=500, mimetype="text/plain")
        return t.cast(Response, server_error.get_response())

    def log_exception(self, request: Request | None, exc: BaseException) -> None:
        """Log an unhandled exception with its traceback on ``framework.request``."""
        path = request.path if request is not None else "?"
        method = request.method if request is not None else "?"
        logger.error("Internal Server Error: %s %s", method, path, exc_info=exc)

    def _unhandled(
        self, environ: WSGIEnvironment, closing: ClosingIterable
    ) -> cabc.Iterable[bytes]:
        """Answer 500 for an exception raised outside the core's own handling."""
        response = self.handle_exception(closing.find_request())
        return self._start_error(environ, closing, response, sys.exception())

    def _start_error(
        self,
        environ: WSGIEnvironment,
        closing: ClosingIterable,
        response: Response,
        exc: BaseException | None,
    ) -> cabc.Iterable[bytes]:
        """Start the error ``response``, with ``exc_info`` if a status was sent."""
        exc_info: t.Any = None  # a traceback is always set on a raised exception
        if exc is not None and closing.status is not None:
            exc_info = (type(exc), exc, exc.__traceback__)
        if self._state is not None:
            response = self._finish_response(self._state, None, response)
        status = response.status
        headers = response.get_wsgi_headers(environ).to_wsgi_list()
        closing.status = status
        closing.server_start_response(status, headers, exc_info)
        return response.get_app_iter(environ)
