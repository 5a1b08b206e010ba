"""Exceptions raised by the web core.

HTTP errors are werkzeug's :class:`~werkzeug.exceptions.HTTPException`
subclasses, re-exported here; raising one from a view (or anywhere during a
request) produces its response and is never an unhandled exception. The
framework's own errors derive from :class:`FrameworkError`::

    Exception
     +-- FrameworkError
     |    +-- RouteError            a bad rule or a duplicate endpoint (at definition)
     |    +-- HeaderValueError      a control character in a header (ValueError)
     +-- ImproperlyConfigured      (framework.conf) missing or invalid settings
     +-- werkzeug HTTPException
          +-- BadRequest (400)
          |    +-- DisallowedHost      the Host header is not in ALLOWED_HOSTS
          |    +-- TooManyFieldsSent   more form or query fields than MAX_FORM_FIELDS
          +-- NotFound (404), MethodNotAllowed (405), RequestEntityTooLarge (413)...
"""

from __future__ import annotations

from werkzeug.exceptions import BadRequest
from werkzeug.exceptions import Forbidden
from werkzeug.exceptions import HTTPException
from werkzeug.exceptions import InternalServerError
from werkzeug.exceptions import MethodNotAllowed
from werkzeug.exceptions import NotFound
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.exceptions import abort

from .conf import ImproperlyConfigured

__all__ = [
    "BadRequest",
    "DisallowedHost",
    "Forbidden",
    "FrameworkError",
    "HTTPException",
    "HeaderValueError",
    "ImproperlyConfigured",
    "InternalServerError",
    "MethodNotAllowed",
    "NotFound",
    "RequestEntityTooLarge",
    "RouteError",
    "TooManyFieldsSent",
    "abort",
]


class FrameworkError(Exception):
    """Base class of the framework's own (non-HTTP) errors."""


class RouteError(FrameworkError, ValueError):
    """A route cannot be registered: bad rule, or endpoint already taken."""


class HeaderValueError(FrameworkError, ValueError):
    """A response header name or value contains a control character.

    CR, LF, NUL, tab...: PEP 3333 allows none, gunicorn refuses them; it
    would split or break the response; the handler turns it into a logged 500.
    """


class DisallowedHost(BadRequest):
    """The request's Host header is not listed in ``ALLOWED_HOSTS``."""

    description = "The Host header of the request is not allowed."


class TooManyFieldsSent(BadRequest):
    """The query string or form body has more fields than ``MAX_FORM_FIELDS``."""

    description = "The request has more form or query fields than allowed."
