"""Settings: ``from framework.conf import settings``.

Settings are read lazily, on first use, from three places, later ones winning:

1. the documented defaults below (:data:`DEFAULTS`);
2. the module named by the ``FRAMEWORK_SETTINGS_MODULE`` environment variable
   (its upper-case names), or the options given to ``settings.configure()``;
3. the environment, for deployment: ``FRAMEWORK_<NAME>`` for any setting
   (parsed as JSON when it looks like JSON, booleans as ``1/0/true/false``,
   lists as comma-separated text), and ``DATABASE_URL`` for the default
   database.

``override_settings`` changes settings temporarily and sends
``setting_changed`` on enter and on exit, so caches can react.
"""

from __future__ import annotations

import collections.abc as cabc
import copy
import functools
import importlib
import inspect
import json
import os
import threading
import typing as t

from .dispatch import Sentinel
from .signals import setting_changed

__all__ = [
    "DEFAULTS",
    "ImproperlyConfigured",
    "Settings",
    "active_overrides",
    "override_settings",
    "settings",
]

ENVIRONMENT_VARIABLE = "FRAMEWORK_SETTINGS_MODULE"
"""The environment variable naming the settings module."""

ENV_PREFIX = "FRAMEWORK_"
"""Prefix of the environment variables that override single settings."""

DEFAULTS: dict[str, t.Any] = {
    "DEBUG": False,
    "SECRET_KEY": "",
    "ALLOWED_HOSTS": ["localhost", "127.0.0.1", "[::1]"],
    "MAX_CONTENT_LENGTH": 2_621_440,
    "MAX_FORM_MEMORY_SIZE": 2_621_440,
    "MAX_FORM_PARTS": 1000,
    "MAX_FORM_FIELDS": 1000,
    "DEFAULT_CHARSET": "utf-8",
    "TEMPLATE_DIRS": [],
    "TEMPLATES_AUTO_RELOAD": False,
    "INSTALLED_APPS": [],
    "DATABASES": {"default": "sqlite:///db.sqlite3"},
    "TIME_ZONE": "UTC",
    "USE_TZ": True,
    "LOGGING": {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "framework": {
                "format": "[%(asctime)s] [%(process)d] [%(levelname)s] %(name)s:"
                " %(message)s",
            },
        },
        "handlers": {
            "console": {"class": "logging.StreamHandler", "formatter": "framework"},
        },
        "root": {"handlers": ["console"], "level": "INFO"},
        # Libraries that log every statement or step at INFO: warnings only.
        "loggers": {
            "sqlalchemy": {"level": "WARNING"},
            "alembic": {"level": "WARNING"},
        },
    },
}
"""The documented default of every built-in setting.

- ``DEBUG``: show tracebacks in 500 responses and enable debug tooling.
- ``SECRET_KEY``: key for signing; set it in production.
- ``ALLOWED_HOSTS``: host names the app answers (``"*"`` for any,
  ``".example.com"`` for a domain and its subdomains); others get a 400.
- ``MAX_CONTENT_LENGTH``: largest request body in bytes (413 above it).
- ``MAX_FORM_MEMORY_SIZE``: largest non-file form field in bytes.
- ``MAX_FORM_PARTS``: most parts in a multipart body.
- ``MAX_FORM_FIELDS``: most fields in a form body or a query string (400).
- ``DEFAULT_CHARSET``: charset of text responses.
- ``TEMPLATE_DIRS``: extra directories searched for templates.
- ``TEMPLATES_AUTO_RELOAD``: re-read templates that changed on disk.
- ``INSTALLED_APPS``: app packages (models, migrations, management modules).
- ``DATABASES``: alias -> URL string or dict with ``"URL"`` and options.
- ``TIME_ZONE`` / ``USE_TZ``: time zone of aware datetimes.
- ``LOGGING``: a :func:`logging.config.dictConfig` dictionary applied once per
  process by :func:`framework.setup` (``None``: leave logging alone). The
  default writes INFO and above of every logger but SQLAlchemy's and Alembic's
  (warnings only) to stderr, so an app's own ``log.info`` shows.
"""


class ImproperlyConfigured(Exception):
    """The settings are missing or invalid."""


_MISSING: t.Final = Sentinel("_MISSING")


def _parse_env(name: str, raw: str, default: t.Any) -> t.Any:
    text = raw.strip()
    if isinstance(default, bool):
        lowered = text.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off", ""):
            return False
        raise ImproperlyConfigured(
            f"{ENV_PREFIX}{name}={raw!r} is not a boolean; use 1/0 or true/false."
        )
    if isinstance(default, int | float) and not text:
        raise ImproperlyConfigured(
            f"{ENV_PREFIX}{name} is empty; give a number (or null for no limit)."
        )
    if text[:1] in ("[", "{", '"') or isinstance(default, int | float):
        try:
            return json.loads(text)
        except ValueError as exc:
            if not isinstance(default, list):
                raise ImproperlyConfigured(
                    f"{ENV_PREFIX}{name}={raw!r} is not valid JSON: {exc}"
                ) from None
    if isinstance(default, list):
        return [item.strip() for item in text.split(",") if item.strip()]
    return raw


class Settings:
    """The resolved settings: attribute access to upper-case names."""

    def __init__(self, options: cabc.Mapping[str, t.Any], source: str) -> None:
        self._source = source
        for name, value in DEFAULTS.items():
            setattr(self, name, copy.deepcopy(value))
        for name, value in options.items():
            if not name.isupper():
                continue
            setattr(self, name, value)
        for key, raw in os.environ.items():
            if key.startswith(ENV_PREFIX) and key != ENVIRONMENT_VARIABLE:
                name = key[len(ENV_PREFIX) :]
                if name.isupper():
                    setattr(self, name, _parse_env(name, raw, getattr(self, name, "")))
        database_url = os.environ.get("DATABASE_URL")
        if database_url:
            databases: dict[str, t.Any] = dict(vars(self)["DATABASES"])
            current = databases.get("default")
            if isinstance(current, dict):
                databases["default"] = {**current, "URL": database_url}
            else:
                databases["default"] = database_url
            self.DATABASES = databases

    def __repr__(self) -> str:
        return f"<Settings from {self._source}>"

    if t.TYPE_CHECKING:

        def __getattr__(self, name: str) -> t.Any: ...


class LazySettings:
    """The ``settings`` object: resolves the settings on first attribute access."""

    def __init__(self) -> None:
        self._wrapped: Settings | None = None
        self._lock = threading.Lock()

    def _setup(self) -> Settings:
        with self._lock:
            if self._wrapped is None:
                module_name = os.environ.get(ENVIRONMENT_VARIABLE)
                options: dict[str, t.Any] = {}
                source = "defaults"
                if module_name:
                    try:
                        module = importlib.import_module(module_name)
                    except ImportError as exc:
                        raise ImproperlyConfigured(
                            f"Cannot import the settings module {module_name!r} named"
                            f" by {ENVIRONMENT_VARIABLE}: {exc}"
                        ) from exc
                    options = vars(module)
                    source = module_name
                self._wrapped = Settings(options, source)
            return self._wrapped

    def __getattr__(self, name: str) -> t.Any:
        wrapped = self._wrapped or self._setup()
        try:
            return getattr(wrapped, name)
        except AttributeError:
            raise AttributeError(
                f"There is no setting {name!r}; define it in your settings module or"
                " pass it to settings.configure()."
            ) from None

    def __setattr__(self, name: str, value: t.Any) -> None:
        if name.startswith("_"):
            object.__setattr__(self, name, value)
        else:
            setattr(self._wrapped or self._setup(), name, value)

    def __dir__(self) -> list[str]:
        return sorted(n for n in vars(self._wrapped or self._setup()) if n.isupper())

    @property
    def configured(self) -> bool:
        """Whether the settings have been resolved already."""
        return self._wrapped is not None

    def configure(self, **options: t.Any) -> None:
        """Resolve the settings from ``options`` instead of a settings module.

        :raises ImproperlyConfigured: the settings were already resolved.
        """
        with self._lock:
            if self._wrapped is not None:
                raise ImproperlyConfigured(
                    "Settings are already configured; call settings.configure() once,"
                    " before anything reads a setting."
                )
            bad = sorted(name for name in options if not name.isupper())
            if bad:
                raise ImproperlyConfigured(
                    f"Setting names must be upper case, got {', '.join(bad)}."
                )
            self._wrapped = Settings(options, "settings.configure()")

    def reset(self) -> None:
        """Forget the resolved settings; the next access resolves them again."""
        with self._lock:
            self._wrapped = None


settings = LazySettings()
"""The settings of the running project."""


class override_settings:
    """Override settings temporarily: a context manager and a decorator.

    Decorates functions (sync, async or generators) and classes: every ``test*`` method,
    inherited ones too, and ``setUp``/``tearDown``/``setup_method``/
    ``teardown_method`` see the override. A decorated subclass's options win
    over its decorated base's; a decorated method's win over its class's.
    Sends ``setting_changed`` for each setting on enter (``enter=True``, the
    new value) and on exit (``enter=False``, the restored value, ``None`` if
    the setting did not exist).
    """

    def __init__(self, **options: t.Any) -> None:
        self.options = options
        self._saved: list[dict[str, t.Any]] = []

    def __enter__(self) -> override_settings:
        global _active
        wrapped = settings._wrapped or settings._setup()
        saved = {name: getattr(wrapped, name, _MISSING) for name in self.options}
        self._saved.append(saved)
        _active += 1
        for name, value in self.options.items():
            setattr(wrapped, name, value)
        errors = _send_setting_changed(self.options, enter=True)
        if errors:
            self.__exit__(None, None, None)
            raise errors[0]
        return self

    def __exit__(self, *exc_info: object) -> None:
        global _active
        wrapped = settings._wrapped or settings._setup()
        saved = self._saved.pop()
        _active -= 1
        for name, value in saved.items():
            if value is _MISSING:
                delattr(wrapped, name)
            else:
                setattr(wrapped, name, value)
        restored = {
            name: None if value is _MISSING else value for name, value in saved.items()
        }
        errors = _send_setting_changed(restored, enter=False)
        if errors and exc_info[0] is None:
            raise errors[0]

    def __call__(self, target: t.Any) -> t.Any:
        """Decorate a function, coroutine function or test class."""
        if isinstance(target, type):
            return self._decorate_class(target)
        if inspect.iscoroutinefunction(target):

            @functools.wraps(target)
            async def async_inner(*args: t.Any, **kwargs: t.Any) -> t.Any:
                with override_settings(**self.options):
                    return await target(*args, **kwargs)

            return async_inner
        if inspect.isgeneratorfunction(target):
            # A generator (a pytest fixture with yield) runs after the call
            # returns: the override must last while it runs.
            @functools.wraps(target)
            def generator_inner(*args: t.Any, **kwargs: t.Any) -> t.Any:
                with override_settings(**self.options):
                    return (yield from target(*args, **kwargs))

            return generator_inner

        @functools.wraps(target)
        def inner(*args: t.Any, **kwargs: t.Any) -> t.Any:
            with override_settings(**self.options):
                return target(*args, **kwargs)

        return inner

    def _decorate_class(self, cls: type) -> type:
        # The options live on the class, merged over a decorated base's, and
        # each method reads them from the instance's class when it runs: an
        # inherited test sees its subclass's overrides, which win.
        options = {**getattr(cls, "_overridden_settings", {}), **self.options}
        type.__setattr__(cls, "_overridden_settings", options)
        for name in dir(cls):
            if not (name.startswith("test") or name in _CLASS_HOOKS):
                continue
            method = inspect.getattr_static(cls, name)
            if inspect.isfunction(method) and not hasattr(method, "_override_class"):
                setattr(cls, name, _override_method(method))
        return cls


_active = 0


def active_overrides() -> int:
    """Return how many ``override_settings`` blocks are active right now."""
    return _active


def _send_setting_changed(
    values: cabc.Mapping[str, t.Any], enter: bool
) -> list[Exception]:
    """Send ``setting_changed`` for each setting; return the receivers' errors."""
    return [
        response
        for name, value in values.items()
        for _receiver, response in setting_changed.send_robust(
            Settings, setting=name, value=value, enter=enter
        )
        if isinstance(response, Exception)
    ]


_CLASS_HOOKS: t.Final = frozenset(
    {"setUp", "tearDown", "setup_method", "teardown_method"}
)


def _override_method(method: cabc.Callable[..., t.Any]) -> cabc.Callable[..., t.Any]:
    """Wrap a test method in its class's ``override_settings`` options."""
    # NOTE: the wrappers take ``*args`` (no named ``self``) because pytest
    # passes ``method`` to setup_method/teardown_method only when the
    # function's code takes more than the bound instance.
    wrapper: t.Any
    if inspect.iscoroutinefunction(method):

        @functools.wraps(method)
        async def wrapper(*args: t.Any, **kwargs: t.Any) -> t.Any:
            with override_settings(**type(args[0])._overridden_settings):
                return await method(*args, **kwargs)

    elif getattr(getattr(method, "__code__", None), "co_argcount", 0) == 1:

        @functools.wraps(method)
        def wrapper(self: t.Any) -> t.Any:
            with override_settings(**type(self)._overridden_settings):
                return method(self)

    else:

        @functools.wraps(method)
        def wrapper(*args: t.Any, **kwargs: t.Any) -> t.Any:
            with override_settings(**type(args[0])._overridden_settings):
                return method(*args, **kwargs)

    wrapper._override_class = True
    return t.cast("cabc.Callable[..., t.Any]", wrapper)
