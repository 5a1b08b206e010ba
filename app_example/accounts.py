"""Who may write: people signed in to the pages, and API clients with a token.

- Pages: ``sign_in`` keeps the user's id in the signed session cookie, with a
  fingerprint of their password hash, so changing the password signs out every
  other browser; ``current_user`` reads it back.
- The JSON API: ``Authorization: Bearer <token>``; only the token's SHA-256 is
  stored (``ApiToken``). ``api_view`` marks a view whose writes need a token
  (reads stay public) and exempts it from CSRF, since no cookie authenticates
  it.
- ``/metrics`` and ``/api/audit``: a token, or a client address listed in
  ``OPS_ALLOWED_ADDRESSES`` (for a request no reverse proxy relayed).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
import re
import secrets

from werkzeug.datastructures import WWWAuthenticate
from werkzeug.exceptions import Unauthorized

from framework import csrf_exempt
from framework.conf import settings
from framework.csrf import SAFE_METHODS
from framework.csrf import rotate_token
from framework.security import check_password
from framework.security import make_password
from framework.security import password_needs_rehash

from .models import ApiToken
from .models import User

SESSION_USER = "uid"
SESSION_AUTH = "auth"
USERNAME_RE = re.compile(r"^[\w.@+-]{1,150}$")
PASSWORD_MIN = 8
TOKEN_MIN = 32

# Checked when the user does not exist, so that a wrong name takes as long as
# a wrong password.
_DUMMY_HASH = None


class AccountError(ValueError):
    """A user or token cannot be created; the message says why."""


# Users -----------------------------------------------------------------------


def validate_username(username):
    if not USERNAME_RE.match(username or ""):
        raise AccountError(
            "A username is 1 to 150 letters, digits or . @ + - _ characters."
        )


def validate_password(password):
    if len(password or "") < PASSWORD_MIN:
        raise AccountError(f"A password has at least {PASSWORD_MIN} characters.")


def create_user(username, password):
    validate_username(username)
    validate_password(password)
    if User.objects.filter(username=username).exists():
        raise AccountError(f"The user {username!r} exists already.")
    return User.objects.create(username=username, password=make_password(password))


def set_password(user, password):
    validate_password(password)
    user.password = make_password(password)
    user.save(update_fields=["password"])


def authenticate(username, password):
    """The user with these credentials, or None (in about the same time)."""
    global _DUMMY_HASH
    user = User.objects.filter(username=username).first() if username else None
    if user is None:
        if _DUMMY_HASH is None:
            _DUMMY_HASH = make_password(secrets.token_urlsafe(16))
        check_password(password or "", _DUMMY_HASH)
        return None
    if not check_password(password or "", user.password):
        return None
    if password_needs_rehash(user.password):
        set_password(user, password)
    return user


def _fingerprint(user):
    return hashlib.sha256(user.password.encode()).hexdigest()[:32]


def sign_in(request, user):
    session = request.session
    session.clear()
    rotate_token(request)
    session[SESSION_USER] = user.pk
    session[SESSION_AUTH] = _fingerprint(user)
    request._current_user = user


def sign_out(request):
    request.session.clear()
    request._current_user = None


def current_user(request):
    """The signed-in user, or None; looked up once per request."""
    if "_current_user" in request.__dict__:
        return request._current_user
    user = None
    session = request.session
    user_id = session.get(SESSION_USER)
    if isinstance(user_id, int):
        user = User.objects.filter(pk=user_id).first()
        if user is not None and not hmac.compare_digest(
            str(session.get(SESSION_AUTH, "")), _fingerprint(user)
        ):
            user = None  # the password changed since this browser signed in
    request._current_user = user
    return user


# API tokens ------------------------------------------------------------------


def hash_token(value):
    return hashlib.sha256(value.encode()).hexdigest()


def create_token(name, value=None, replace=False):
    """Store a new token named ``name``; returns its value (shown only once)."""
    if not name or len(name) > 60:
        raise AccountError("A token name is 1 to 60 characters.")
    if value is None:
        value = secrets.token_urlsafe(32)
    elif len(value) < TOKEN_MIN or not value.isprintable() or " " in value:
        raise AccountError(
            f"A token given with --token has at least {TOKEN_MIN} printable"
            " characters and no spaces."
        )
    existing = ApiToken.objects.filter(name=name).first()
    if existing is not None:
        if not replace:
            raise AccountError(
                f"A token named {name!r} exists already; pass --replace to replace it."
            )
        existing.delete()
    ApiToken.objects.create(name=name, token_hash=hash_token(value))
    return value


def bearer_token(request):
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def token_is_valid(request):
    value = bearer_token(request)
    if value is None:
        return False
    return ApiToken.objects.filter(token_hash=hash_token(value)).exists()


def _unauthorized(message):
    challenge = WWWAuthenticate("bearer", {"realm": "bookmarks"})
    return Unauthorized(message, www_authenticate=challenge)


def require_token(request):
    """Raise a 401 unless the request carries a valid bearer token."""
    if bearer_token(request) is None:
        raise _unauthorized(
            "Writing needs an API token: send 'Authorization: Bearer <token>'"
            " (create one with `framework createtoken NAME`)."
        )
    if not token_is_valid(request):
        raise _unauthorized("The API token is not valid.")


def api_view(view):
    """A JSON API view: reads are public, writes need a bearer token.

    Token-authenticated, so exempt from the CSRF check (no cookie is trusted).
    """

    @functools.wraps(view)
    def checked(request, **values):
        if request.method not in SAFE_METHODS:
            require_token(request)
        return view(request, **values)

    return csrf_exempt(checked)


# Headers a reverse proxy adds. A request that carries one was relayed, so its
# address is the proxy's (often 127.0.0.1), not the client's.
PROXY_HEADERS = ("X-Forwarded-For", "X-Real-IP", "Forwarded")


def _address_allowed(request):
    address = request.remote_addr
    if not address or any(name in request.headers for name in PROXY_HEADERS):
        return False
    try:
        client = ipaddress.ip_address(address)
    except ValueError:
        return False
    for allowed in getattr(settings, "OPS_ALLOWED_ADDRESSES", ()):
        try:
            if client in ipaddress.ip_network(allowed, strict=False):
                return True
        except ValueError:
            continue
    return False


def require_operator(request):
    """/metrics and /api/audit: a valid token, or an allowed client address.

    The address counts only for a request that came straight from the
    client: one relayed by a reverse proxy (see ``PROXY_HEADERS``) needs the
    token, since every client of a proxy on this machine looks local.
    """
    if bearer_token(request) is None and _address_allowed(request):
        return
    if not token_is_valid(request):
        raise _unauthorized(
            "This endpoint needs an API token ('Authorization: Bearer <token>')"
            " or a client address listed in OPS_ALLOWED_ADDRESSES."
        )
