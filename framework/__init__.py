"""framework: a WSGI micro-framework whose spine is a signal dispatcher."""

from __future__ import annotations

import typing as t

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
