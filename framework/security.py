"""Secret keys and password hashes.

- :func:`check_secret_key`: ``framework serve`` refuses to start outside
  ``DEBUG`` when ``SECRET_KEY`` is empty or a well-known placeholder; the error
  says how to set one.
- :func:`load_or_create_secret_key`: a random key kept in a file (mode 0600),
  created on first use; for an app that must run with no set-up (app_example).
- :func:`make_password` / :func:`check_password`: password hashes with the
  standard library's :func:`hashlib.scrypt` (memory-hard; the parameters and
  salt are stored in the hash, so they can be raised later without breaking
  stored hashes; :func:`password_needs_rehash` tells when).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import secrets
import typing as t

from .conf import ImproperlyConfigured
from .conf import settings

__all__ = [
    "PLACEHOLDER_SECRET_KEYS",
    "SCRYPT_PARAMETERS",
    "check_password",
    "check_secret_key",
    "load_or_create_secret_key",
    "make_password",
    "new_secret_key",
    "password_needs_rehash",
]

PLACEHOLDER_SECRET_KEYS: t.Final = frozenset(
    {
        "change-me",
        "changeme",
        "change_me",
        "secret",
        "secret-key",
        "secret_key",
        "secretkey",
        "your-secret-key",
        "your-secret-key-here",
        "replace-me",
        "dev",
        "development",
        "test",
        "insecure",
        "not-secret",
        "dev-only-insecure-key-set-FRAMEWORK_SECRET_KEY-in-production",
    }
)
"""Keys found in examples and tutorials, refused like an empty one (lower-cased)."""

_HOW_TO_SET = (
    "Set a long random SECRET_KEY in the settings module or in the"
    " FRAMEWORK_SECRET_KEY environment variable, for example"
    " FRAMEWORK_SECRET_KEY=\"$(python3 -c 'import secrets;"
    " print(secrets.token_urlsafe(50))')\". Keep it out of the source; set"
    " DEBUG only on a development machine."
)


def new_secret_key() -> str:
    """Return a new random key (50 URL-safe characters, 300 bits)."""
    return secrets.token_urlsafe(38)[:50]


def check_secret_key() -> None:
    """Refuse to serve with an empty or placeholder ``SECRET_KEY`` unless ``DEBUG``.

    Sessions and CSRF tokens are signed with the key: anyone who knows it
    can forge them.

    :raises ImproperlyConfigured: the key is unusable; the message says how
        to set one.
    """
    if settings.DEBUG:
        return
    key = settings.SECRET_KEY
    if not isinstance(key, str) or not key.strip():
        raise ImproperlyConfigured(f"SECRET_KEY is empty. {_HOW_TO_SET}")
    if key.strip().lower() in PLACEHOLDER_SECRET_KEYS:
        raise ImproperlyConfigured(
            f"SECRET_KEY is a well-known placeholder ({key!r}). {_HOW_TO_SET}"
        )


def load_or_create_secret_key(path: str | os.PathLike[str]) -> str:
    """Return the key stored in ``path``, creating the file with a new key first.

    The file is written whole to a temporary name (mode 0600, readable by
    its owner only) and then linked into place, which fails if the file
    appeared meanwhile: processes starting together (gunicorn workers) all
    end up with the one key that won. A missing folder is created 0700.

    :raises ImproperlyConfigured: the file exists but holds no key, or is
        readable by others (then fix its mode: ``chmod 600 PATH``).
    """
    path = os.fspath(path)
    try:
        return _read_key(path)
    except FileNotFoundError:
        pass
    directory = os.path.dirname(os.path.abspath(path))
    # A missing folder is made private (0700), as a SQLite database's is.
    os.makedirs(directory, mode=0o700, exist_ok=True)
    temporary = f"{path}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as file:
            file.write(new_secret_key() + "\n")
            file.flush()
            os.fsync(file.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        os.unlink(temporary)
    return _read_key(path)


def _read_key(path: str) -> str:
    with open(path) as file:
        mode = os.fstat(file.fileno()).st_mode
        key = file.read().strip()
    if mode & 0o077:
        raise ImproperlyConfigured(
            f"The secret key file {path} can be read by other users (mode"
            f" {mode & 0o777:o}); run chmod 600 {path}."
        )
    if not key:
        raise ImproperlyConfigured(
            f"The secret key file {path} is empty; delete it to get a new key."
        )
    return key


# Passwords -----------------------------------------------------------------

SCRYPT_PARAMETERS: t.Final = {"n": 2**14, "r": 8, "p": 5}
"""The cost of new hashes: N=2**14, r=8, p=5, one of OWASP's settings (16 MiB).

About 0.2 s of one core per hash; Django's scrypt hasher takes p=1.
"""

_ALGORITHM: t.Final = "scrypt"
_SALT_BYTES: t.Final = 16
_KEY_BYTES: t.Final = 32
_MAX_MEMORY: t.Final = 256 * 1024 * 1024


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode(),
        salt=salt,
        n=n,
        r=r,
        p=p,
        maxmem=_MAX_MEMORY,
        dklen=_KEY_BYTES,
    )


def make_password(password: str) -> str:
    """Hash ``password`` with scrypt and a random salt.

    :returns: ``"scrypt$n$r$p$salt$hash"`` (salt and hash in base64), to be
        stored; :func:`check_password` verifies a password against it.
    """
    n, r, p = SCRYPT_PARAMETERS["n"], SCRYPT_PARAMETERS["r"], SCRYPT_PARAMETERS["p"]
    salt = secrets.token_bytes(_SALT_BYTES)
    digest = _scrypt(password, salt, n, r, p)
    return f"{_ALGORITHM}${n}${r}${p}${_b64(salt)}${_b64(digest)}"


def _parse(encoded: str) -> tuple[int, int, int, bytes, bytes] | None:
    parts = encoded.split("$")
    if len(parts) != 6 or parts[0] != _ALGORITHM:
        return None
    try:
        n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt, digest = _unb64(parts[4]), _unb64(parts[5])
    except ValueError:
        return None
    if n < 2 or n & (n - 1) or not 0 < r <= 64 or not 0 < p <= 64:
        return None
    if 128 * n * r > _MAX_MEMORY:
        return None
    return n, r, p, salt, digest


def check_password(password: str, encoded: str) -> bool:
    """Whether ``password`` matches the hash ``encoded`` (constant-time compare).

    A malformed or unknown hash never matches.
    """
    parsed = _parse(encoded) if isinstance(encoded, str) else None
    if parsed is None:
        return False
    n, r, p, salt, digest = parsed
    return hmac.compare_digest(_scrypt(password, salt, n, r, p), digest)


def password_needs_rehash(encoded: str) -> bool:
    """Whether ``encoded`` was made with other parameters than today's."""
    parsed = _parse(encoded)
    if parsed is None:
        return True
    n, r, p = parsed[:3]
    return (n, r, p) != (
        SCRYPT_PARAMETERS["n"],
        SCRYPT_PARAMETERS["r"],
        SCRYPT_PARAMETERS["p"],
    )
