"""Cross-site request forgery (CSRF) protection for HTML forms.

On by default (``CSRF_ENABLED``): a request with an unsafe method (anything
but ``GET``, ``HEAD``, ``OPTIONS`` and ``TRACE``) reaches its view only if it
carries the token of the visitor's session, in the form field ``csrf_token``
(``CSRF_FIELD_NAME``) or the header ``X-CSRF-Token`` (``CSRF_HEADER_NAME``, for
scripts). Otherwise the view is not called: the answer is a 403
(:class:`CSRFError`, a :class:`~werkzeug.exceptions.Forbidden`, which an
``errorhandler(403)`` may render), and a warning names the reason on the
``framework.security.csrf`` logger.

The secret lives in the session (:mod:`framework.sessions`), so the check needs
``SECRET_KEY``. Templates put the token in a form with ``{{ csrf_input() }}``
(or ``{{ csrf_token() }}`` for the bare value) when rendered with
``render(..., request=request)``. Each rendering gives a different string (the
secret XOR a fresh random mask, as Django does), so a compressed HTTPS response
never repeats the secret byte for byte (the BREACH attack).

Views that are not driven by a browser's cookies, such as a JSON API
authenticated with a bearer token, opt out with :func:`csrf_exempt`.
"""

from __future__ import annotations

import collections.abc as cabc
import hmac
import logging
import secrets
import typing as t

from werkzeug.exceptions import Forbidden

from .conf import settings

if t.TYPE_CHECKING:
    from .wrappers import Request

__all__ = [
    "CSRFError",
    "SAFE_METHODS",
    "SESSION_KEY",
    "check_request",
    "csrf_exempt",
    "get_token",
    "rotate_token",
]

logger = logging.getLogger("framework.security.csrf")

SAFE_METHODS: t.Final = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
"""Methods that must not change anything, hence are never checked."""

SESSION_KEY: t.Final = "_csrf"
"""Where the secret is kept in the session."""

_SECRET_BYTES: t.Final = 32

F = t.TypeVar("F", bound=cabc.Callable[..., t.Any])


class CSRFError(Forbidden):
    """A request with an unsafe method lacked the session's CSRF token (403)."""

    description = (
        "This form has expired or was not sent from this site. Go back, reload"
        " the page and send the form again."
    )

    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason
        """Why the request was refused, for logs and error handlers."""


def csrf_exempt(view: F) -> F:
    """Mark ``view`` as not checked for a CSRF token (token-authenticated APIs).

    Above or below ``@app.route`` alike: the mark is read when the app builds
    its state (at its first request, and after every new route).
    """
    view.csrf_exempt = True  # type: ignore[attr-defined]
    return view


def _secret(request: Request, create: bool) -> bytes | None:
    stored = request.session.get(SESSION_KEY)
    if isinstance(stored, str) and len(stored) == 2 * _SECRET_BYTES:
        try:
            return bytes.fromhex(stored)
        except ValueError:
            pass
    if not create:
        return None
    secret = secrets.token_bytes(_SECRET_BYTES)
    request.session[SESSION_KEY] = secret.hex()
    return secret


def get_token(request: Request) -> str:
    """Return a token for a form or a script of this visitor.

    Makes the session's secret on first use (the session is then saved). Every
    call returns a different string; all of them are valid until the secret
    changes (:func:`rotate_token`, or the session is cleared).
    """
    secret = _secret(request, create=True)
    assert secret is not None
    mask = secrets.token_bytes(_SECRET_BYTES)
    return (mask + bytes(a ^ b for a, b in zip(secret, mask, strict=True))).hex()


def rotate_token(request: Request) -> None:
    """Forget the session's secret: tokens handed out before stop working.

    Call it when the visitor signs in, so a token planted before the sign-in
    is worthless after it.
    """
    request.session.pop(SESSION_KEY, None)


def _unmask(token: str) -> bytes | None:
    if len(token) != 4 * _SECRET_BYTES:
        return None
    try:
        raw = bytes.fromhex(token)
    except ValueError:
        return None
    if len(raw) != 2 * _SECRET_BYTES:  # fromhex() skips whitespace
        return None
    mask, masked = raw[:_SECRET_BYTES], raw[_SECRET_BYTES:]
    return bytes(a ^ b for a, b in zip(masked, mask, strict=True))


def check_request(request: Request) -> None:
    """Refuse ``request`` unless it carries the session's token.

    The app calls it before the view for unsafe methods (see the module
    docstring); call it yourself in a view marked :func:`csrf_exempt` that
    sometimes needs it. The header is looked at first, then the form body.

    :raises CSRFError: the token is missing or does not match.
    """
    token = request.headers.get(settings.CSRF_HEADER_NAME)
    if token is None:
        token = request.form.get(settings.CSRF_FIELD_NAME)
    if not token:
        reason = "CSRF token missing"
    else:
        secret = _secret(request, create=False)
        given = _unmask(token)
        if secret is None:
            reason = "CSRF session missing or expired"
        elif given is not None and hmac.compare_digest(given, secret):
            return
        else:
            reason = "CSRF token incorrect"
    path = request.path
    if not path.isprintable():  # a %0A in the URL must not forge a log line
        path = path.encode("unicode_escape").decode("ascii")
    logger.warning("Forbidden (%s): %s %s", reason, request.method, path)
    raise CSRFError(reason)
