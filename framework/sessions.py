"""Signed-cookie sessions: ``request.session``.

A session is a small dict kept in the visitor's browser, in one cookie signed
with ``SECRET_KEY`` by itsdangerous (HMAC-SHA256 with a timestamp, the scheme
Flask uses). Nothing is stored on the server, so any worker of any instance can
read it. The cookie is readable by its owner (base64 JSON): put no secret in
it, only identifiers.

- Loading is lazy: :attr:`framework.Request.session` reads the cookie the first
  time a view (or a template helper) uses it; a request that never touches it
  pays nothing.
- A cookie that fails its signature, is older than ``SESSION_COOKIE_AGE``, or
  does not hold a JSON object is an empty session, never an error.
- The cookie is written only when the session was modified (and deleted when
  it was emptied); ``Vary: Cookie`` is added whenever it was read. Flags:
  ``HttpOnly``, ``SameSite`` (``SESSION_COOKIE_SAMESITE``, ``Lax``), ``Secure``
  when the request came over HTTPS or ``SESSION_COOKIE_SECURE`` is on, and
  ``Max-Age`` (``SESSION_COOKIE_AGE``).
- Key rotation: the session is signed with ``SECRET_KEY``; cookies signed with
  any key of ``SECRET_KEY_FALLBACKS`` are still accepted (and re-signed with
  the new key when next saved). Drop an old key from the list once every
  session signed with it has expired.

Values must be JSON serializable (str, int, float, bool, None, lists and dicts
of them); saving anything else is a ``TypeError`` (a 500).
"""

from __future__ import annotations

import collections.abc as cabc
import hashlib
import threading
import typing as t

from .conf import ImproperlyConfigured
from .conf import settings
from .signals import setting_changed

if t.TYPE_CHECKING:
    from itsdangerous import URLSafeTimedSerializer

    from .wrappers import Request
    from .wrappers import Response

__all__ = ["SESSION_SETTINGS", "Session", "load_session", "save_session"]

SESSION_SETTINGS: t.Final = frozenset(
    {
        "SECRET_KEY",
        "SECRET_KEY_FALLBACKS",
        "SESSION_COOKIE_NAME",
        "SESSION_COOKIE_AGE",
        "SESSION_COOKIE_DOMAIN",
        "SESSION_COOKIE_PATH",
        "SESSION_COOKIE_SAMESITE",
        "SESSION_COOKIE_SECURE",
    }
)
"""The settings sessions read; a change (``override_settings``) is seen at once."""

_SALT: t.Final = "framework.sessions"


class Session(dict[str, t.Any]):
    """The data of one visitor's session: a dict that knows whether it changed.

    Every mutating method marks it :attr:`modified`; a change inside a
    mutable value (``session["cart"].append(x)``) does not, so set
    ``session.modified = True`` after one, as in Flask.

    :param data: the loaded data.
    :param new: whether no valid cookie was sent (a fresh session).
    """

    __slots__ = ("modified", "new")

    def __init__(
        self, data: cabc.Mapping[str, t.Any] | None = None, new: bool = True
    ) -> None:
        super().__init__(data or {})
        self.modified = False
        """Whether the session must be written back to its cookie."""
        self.new = new
        """Whether the request brought no valid session cookie."""

    def __repr__(self) -> str:
        return f"<Session {dict.__repr__(self)}{' modified' if self.modified else ''}>"

    def __setitem__(self, key: str, value: t.Any) -> None:
        self.modified = True
        super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        self.modified = True
        super().__delitem__(key)

    def clear(self) -> None:
        """Remove everything (signing out); the cookie is then deleted."""
        self.modified = True
        super().clear()

    def pop(self, key: str, *default: t.Any) -> t.Any:
        """Remove ``key`` and return its value (or ``default``)."""
        self.modified = True
        return super().pop(key, *default)

    def popitem(self) -> tuple[str, t.Any]:
        """Remove and return the last item."""
        self.modified = True
        return super().popitem()

    def setdefault(self, key: str, default: t.Any = None) -> t.Any:
        """Return ``self[key]``, setting it to ``default`` first if missing."""
        if key not in self:
            self.modified = True
        return super().setdefault(key, default)

    def update(self, *args: t.Any, **kwargs: t.Any) -> None:
        """Update from a mapping or pairs, like :meth:`dict.update`."""
        self.modified = True
        super().update(*args, **kwargs)

    def __ior__(self, other: t.Any) -> t.Self:  # type: ignore[override,misc]
        # NOTE: dict's |= does not go through update().
        self.modified = True
        return super().__ior__(other)


class _Config:
    """What sessions read from the settings, built once per change."""

    __slots__ = (
        "serializer",
        "name",
        "max_age",
        "domain",
        "path",
        "samesite",
        "secure",
    )

    def __init__(self) -> None:
        key = settings.SECRET_KEY
        fallbacks = list(getattr(settings, "SECRET_KEY_FALLBACKS", None) or ())
        self.serializer: URLSafeTimedSerializer | None = None
        if key:
            from itsdangerous import URLSafeTimedSerializer

            # itsdangerous signs with the last key and verifies with any.
            self.serializer = URLSafeTimedSerializer(
                [*fallbacks, key],
                salt=_SALT,
                signer_kwargs={
                    "key_derivation": "hmac",
                    "digest_method": hashlib.sha256,
                },
            )
        self.name: str = settings.SESSION_COOKIE_NAME
        self.max_age: int = int(settings.SESSION_COOKIE_AGE)
        self.domain: str | None = settings.SESSION_COOKIE_DOMAIN or None
        self.path: str = settings.SESSION_COOKIE_PATH or "/"
        samesite = settings.SESSION_COOKIE_SAMESITE
        self.samesite: str | None = str(samesite).capitalize() if samesite else None
        self.secure = bool(settings.SESSION_COOKIE_SECURE)


_config: _Config | None = None
_lock = threading.Lock()


def _get_config() -> _Config:
    global _config
    config = _config
    if config is None:
        with _lock:
            if _config is None:
                _config = _Config()
            config = _config
    return config


def _reset_config(*, setting: str, **kwargs: t.Any) -> None:
    """Read the session settings again after one of them changed."""
    global _config
    if setting in SESSION_SETTINGS:
        _config = None


setting_changed.connect(_reset_config, dispatch_uid="framework.sessions.settings")


def load_session(request: Request) -> Session:
    """Read the session from the request's cookie; what ``request.session`` calls.

    :returns: the session, empty (and :attr:`Session.new`) when there is no
        cookie, when it fails its signature or has expired, when it does not
        hold a JSON object, or when ``SECRET_KEY`` is empty (nothing can be
        trusted then).
    """
    config = _get_config()
    raw = request.cookies.get(config.name)
    if not raw or config.serializer is None:
        return Session()
    from itsdangerous import BadData

    try:
        data = config.serializer.loads(raw, max_age=config.max_age)
    except BadData:  # a bad or expired signature, or a payload that is not JSON
        return Session()
    if not isinstance(data, dict):
        return Session()
    return Session(data, new=False)


def save_session(request: Request, session: Session, response: Response) -> None:
    """Write ``session`` into ``response``'s cookie if it changed.

    A session emptied by the view deletes the cookie. ``Vary: Cookie`` is
    added in every case: the response depended on the cookie.

    :raises ImproperlyConfigured: the session changed but ``SECRET_KEY`` is
        empty, so it cannot be signed.
    :raises TypeError: a value is not JSON serializable.
    """
    response.vary.add("Cookie")
    if not session.modified:
        return
    config = _get_config()
    secure = config.secure or request.scheme == "https"
    if not session:
        if not session.new:
            response.delete_cookie(
                config.name,
                path=config.path,
                domain=config.domain,
                secure=secure,
                httponly=True,
                samesite=config.samesite,
            )
        return
    # NOTE: a session that cannot be saved is marked saved before the error
    # propagates: the 500 response made for the error must not fail again.
    if config.serializer is None:
        session.modified = False
        raise ImproperlyConfigured(
            "The session cannot be saved: SECRET_KEY is empty. Set SECRET_KEY in"
            " the settings module or the FRAMEWORK_SECRET_KEY environment variable"
            ' (python -c "import secrets; print(secrets.token_urlsafe(50))" makes'
            " one)."
        )
    try:
        value = config.serializer.dumps(dict(session))
    except Exception:
        session.modified = False
        raise
    response.set_cookie(
        config.name,
        value,
        max_age=config.max_age,
        path=config.path,
        domain=config.domain,
        secure=secure,
        httponly=True,
        samesite=config.samesite,
    )
