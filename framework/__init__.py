"""framework: a WSGI micro-framework whose spine is a signal dispatcher."""

from __future__ import annotations

import typing as t

if t.TYPE_CHECKING:
    from . import signals
    from .app import App
    from .bootstrap import setup
    from .csrf import csrf_exempt
    from .dispatch import Signal
    from .dispatch import receiver
    from .exceptions import BadRequest
    from .exceptions import DisallowedHost
    from .exceptions import FrameworkError
    from .exceptions import HeaderValueError
    from .exceptions import HTTPException
    from .exceptions import ImproperlyConfigured
    from .exceptions import MethodNotAllowed
    from .exceptions import NotFound
    from .exceptions import RouteError
    from .exceptions import TooManyFieldsSent
    from .exceptions import abort
    from .helpers import redirect
    from .helpers import send_file
    from .templating import render
    from .templating import render_template
    from .wrappers import Request
    from .wrappers import Response

# PERF: the public names are imported on first use (PEP 562), so importing a
# submodule (the pytest plugin, framework.dispatch, the ORM) does not pull in
# werkzeug and Jinja2 with the package; ``from framework import App`` imports
# what it names. tests/test_exports.py checks every name resolves.
_LAZY: t.Final[dict[str, tuple[str, str | None]]] = {
    "signals": ("framework.signals", None),
    "App": ("framework.app", "App"),
    "setup": ("framework.bootstrap", "setup"),
    "csrf_exempt": ("framework.csrf", "csrf_exempt"),
    "Signal": ("framework.dispatch", "Signal"),
    "receiver": ("framework.dispatch", "receiver"),
    "BadRequest": ("framework.exceptions", "BadRequest"),
    "DisallowedHost": ("framework.exceptions", "DisallowedHost"),
    "FrameworkError": ("framework.exceptions", "FrameworkError"),
    "HeaderValueError": ("framework.exceptions", "HeaderValueError"),
    "HTTPException": ("framework.exceptions", "HTTPException"),
    "ImproperlyConfigured": ("framework.exceptions", "ImproperlyConfigured"),
    "MethodNotAllowed": ("framework.exceptions", "MethodNotAllowed"),
    "NotFound": ("framework.exceptions", "NotFound"),
    "RouteError": ("framework.exceptions", "RouteError"),
    "TooManyFieldsSent": ("framework.exceptions", "TooManyFieldsSent"),
    "abort": ("framework.exceptions", "abort"),
    "redirect": ("framework.helpers", "redirect"),
    "send_file": ("framework.helpers", "send_file"),
    "render": ("framework.templating", "render"),
    "render_template": ("framework.templating", "render_template"),
    "Request": ("framework.wrappers", "Request"),
    "Response": ("framework.wrappers", "Response"),
}

__all__ = [
    "App",
    "BadRequest",
    "DisallowedHost",
    "FrameworkError",
    "HTTPException",
    "HeaderValueError",
    "ImproperlyConfigured",
    "MethodNotAllowed",
    "NotFound",
    "Request",
    "Response",
    "RouteError",
    "Signal",
    "TooManyFieldsSent",
    "abort",
    "csrf_exempt",
    "receiver",
    "redirect",
    "render",
    "render_template",
    "send_file",
    "setup",
    "signals",
    "url_for",
]

__version__ = "0.1.0"


def url_for(request: Request, endpoint: str, /, **values: t.Any) -> str:
    """Build the URL of ``endpoint`` for the app handling ``request``.

    A shortcut for ``request.app.url_for(endpoint, _request=request, ...)``.

    :raises RuntimeError: ``request`` was not created by an app.
    """
    app = request.app
    if app is None:
        raise RuntimeError(
            "url_for() needs a request handled by an App; call app.url_for()"
            " outside of a request."
        )
    return app.url_for(endpoint, _request=request, **values)


def __getattr__(name: str) -> t.Any:
    """Import a public name on first use and keep it (PEP 562)."""
    try:
        module_name, attribute = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'framework' has no attribute {name!r}") from None
    import importlib

    module = importlib.import_module(module_name)
    value = module if attribute is None else getattr(module, attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
