"""Setting a project up: ``framework.setup()``, and finding the application.

:func:`setup` is the one set-up step of a process, like ``django.setup()``. It

1. resolves the settings (``FRAMEWORK_SETTINGS_MODULE``; see :mod:`framework.conf`),
   refusing to go on with defaults read too early (see :func:`setup`);
2. applies the ``LOGGING`` setting (a :func:`logging.config.dictConfig`
   dictionary), once per process;
3. imports every installed app with its ``models``, ``management`` and
   ``receivers`` modules (:meth:`framework.apps.Apps.populate`), so that every
   receiver is connected before the first request.

Every entry point runs it: the ``framework`` commands, ``framework serve`` in
the master and in each worker that imports the app, the pytest plugin, an
app's ``wsgi.py`` (for plain ``gunicorn module:app``) and, as a last resort,
the :class:`~framework.App` itself on its first request. Calling it again is
cheap and does nothing new unless ``INSTALLED_APPS`` changed.

The application finders (:func:`import_app`, :func:`discover_app`) are the
ones the command line and the pytest plugin share: ``module:attr``,
``module:factory()``, ``path/to/file.py[:attr]``, and ``wsgi.py`` / ``app.py``
found in a directory.

This module imports neither the ORM nor anything above the web core; the
ORM is imported only if an installed app's models use it.
"""

from __future__ import annotations

import copy
import importlib
import os
import sys
import threading
import types
import typing as t

from .conf import ENVIRONMENT_VARIABLE
from .conf import ImproperlyConfigured
from .conf import active_overrides
from .conf import settings

__all__ = [
    "APP_FILES",
    "AppNotFoundError",
    "configure_logging",
    "discover_app",
    "import_app",
    "is_ready",
    "leave_logging_alone",
    "setup",
]

APP_FILES: t.Final = ("wsgi.py", "app.py")
"""The files looked for, in this order, when no application is named."""

_APP_NAMES: t.Final = ("app", "application")
_FACTORY_NAMES: t.Final = ("create_app", "make_app")

_lock = threading.RLock()
_ready = False
_logging_done = False


class AppNotFoundError(ImproperlyConfigured):
    """The application named (or looked for) does not exist."""


def is_ready() -> bool:
    """Return whether :func:`setup` completed in this process."""
    return _ready


def setup() -> None:
    """Load the project: settings, ``LOGGING``, installed apps, models, receivers.

    Safe to call more than once, and from several threads: logging is
    configured once per process, and the apps are imported again only when
    ``INSTALLED_APPS`` changed.

    Settings read before ``FRAMEWORK_SETTINGS_MODULE`` was set (by code that
    ran before the app's ``wsgi.py`` chose its settings module) are the
    defaults: they are read again from the module, unless an
    ``override_settings`` is active on them, which would then silently run
    the project on default settings; that, and settings already read from
    another module, raise :class:`~framework.ImproperlyConfigured`.

    :raises ImproperlyConfigured: the settings cannot be used, or an
        installed app cannot be imported.
    """
    global _ready, _logging_done
    with _lock:
        _check_settings_source()
        if not _logging_done:
            configure_logging(settings.LOGGING)
            _logging_done = True
        from .apps import apps

        apps.populate()
        apps.import_modules()
        _ready = True


def _check_settings_source() -> None:
    wanted = os.environ.get(ENVIRONMENT_VARIABLE)
    wrapped = settings._wrapped
    if not wanted or wrapped is None:
        return
    source = wrapped._source
    if source in (wanted, "settings.configure()"):
        return
    if source == "defaults" and not active_overrides():
        # Read too early (before the app chose its settings module), and
        # nothing holds on to them: read them again, from the module.
        settings.reset()
        return
    reason = (
        "an override_settings() is active on them"
        if source == "defaults"
        else f"they were read from {source!r} first"
    )
    raise ImproperlyConfigured(
        f"{ENVIRONMENT_VARIABLE} names {wanted!r}, but the settings in use are"
        f" {'the defaults' if source == 'defaults' else repr(source)}: {reason}."
        f" Set {ENVIRONMENT_VARIABLE} before anything reads a setting: in tests,"
        f' framework_settings = "{wanted}" under [tool.pytest.ini_options] (the'
        " pytest plugin then loads them at start-up, before your override);"
        " elsewhere, before importing the app."
    )


def configure_logging(config: t.Mapping[str, t.Any] | None) -> None:
    """Apply a ``LOGGING`` setting with :func:`logging.config.dictConfig`.

    ``None`` or an empty dict leaves logging alone. Unlike ``dictConfig``,
    ``disable_existing_loggers`` defaults to ``False``, so that the loggers of
    gunicorn and of the framework keep working.

    :raises ImproperlyConfigured: ``config`` is not a valid dictionary.
    """
    if not config:
        return
    if not isinstance(config, dict):
        raise ImproperlyConfigured(
            f"LOGGING must be a logging.config.dictConfig dictionary (or None);"
            f" got {type(config).__name__}."
        )
    # PERF: logging.config (and logging.handlers, socketserver, queue...) is
    # imported here, not with the module: ``import framework`` stays as cheap.
    import logging.config

    config = copy.deepcopy(config)
    config.setdefault("version", 1)
    config.setdefault("disable_existing_loggers", False)
    try:
        logging.config.dictConfig(config)
    except (ValueError, TypeError, AttributeError, ImportError) as exc:
        raise ImproperlyConfigured(f"The LOGGING setting is invalid: {exc}") from exc


def leave_logging_alone() -> None:
    """Make :func:`setup` skip ``LOGGING`` in this process.

    For a test runner that configures logging itself: the pytest plugin calls
    it when no project is configured for the session.
    """
    global _logging_done
    _logging_done = True


# Finding the application -----------------------------------------------------


def _split_spec(spec: str) -> tuple[str, str | None]:
    """Split ``target[:attr]``; a target ending in ``.py`` is a file path."""
    spec = spec.strip()
    for marker in (".py:", ".py"):
        head, found, tail = spec.partition(marker)
        if found and (marker == ".py:" or not tail):
            return head + ".py", (tail or None)
    target, _, attr = spec.partition(":")
    return target, (attr or None)


def _module_for_path(path: str, base_dir: str) -> str:
    """Return the dotted module name of a ``.py`` file and put its root on sys.path.

    The name walks up through directories holding an ``__init__.py``, as
    Flask's ``--app path/to/app.py`` does.
    """
    full = os.path.abspath(os.path.join(base_dir, path))
    if not os.path.isfile(full):
        raise AppNotFoundError(
            f"No such file {path!r} (looked in {os.path.dirname(full)})."
        )
    directory, filename = os.path.split(full)
    parts = [filename[: -len(".py")]]
    if parts[0] == "__init__":
        parts = []
    while os.path.isfile(os.path.join(directory, "__init__.py")):
        directory, package = os.path.split(directory)
        parts.insert(0, package)
    if not parts or not all(part.isidentifier() for part in parts):
        raise AppNotFoundError(
            f"Cannot import {path!r}: {'.'.join(parts) or filename!r} is not a"
            " module name."
        )
    if directory not in sys.path:
        sys.path.insert(0, directory)
    return ".".join(parts)


def import_app(spec: str, base_dir: str | None = None) -> t.Any:
    """Import and return the WSGI application named by ``spec``.

    :param spec: ``module:attr``, ``module:factory()`` (called without
        arguments), ``path/to/file.py`` or ``path/to/file.py:attr``. Without
        ``attr``, the module's ``app`` or ``application`` is used, else its
        ``create_app()`` or ``make_app()`` factory is called.
    :param base_dir: the directory relative paths and top-level modules are
        found in (default: the working directory), put first on
        :data:`sys.path`.
    :returns: the application.
    :raises AppNotFoundError: the module, file or attribute does not exist,
        or is not a WSGI application.
    """
    base = os.path.abspath(base_dir or os.getcwd())
    target, attr = _split_spec(spec)
    if not target:
        raise AppNotFoundError(
            f"Invalid app {spec!r}: use 'module:attribute' or 'path/to/app.py'."
        )
    if target.endswith(".py"):
        module_name = _module_for_path(target, base)
    else:
        module_name = target
        if base not in sys.path:
            sys.path.insert(0, base)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if module_name == missing or module_name.startswith(f"{missing}."):
            raise AppNotFoundError(
                f"Cannot import the app module {module_name!r} ({spec!r}): no such"
                " module."
            ) from exc
        raise
    obj = _find_app_in(module, attr, spec)
    if not callable(obj):
        raise AppNotFoundError(f"{spec!r} is {obj!r}, not a WSGI application.")
    return obj


def _find_app_in(module: types.ModuleType, attr: str | None, spec: str) -> t.Any:
    if attr is not None:
        call = attr.endswith("()")
        name = attr[:-2] if call else attr
        if not name.isidentifier():
            raise AppNotFoundError(
                f"Invalid attribute {attr!r} in {spec!r}: use a name or 'factory()'."
            )
        try:
            obj = getattr(module, name)
        except AttributeError:
            raise AppNotFoundError(
                f"Module {module.__name__!r} has no attribute {name!r} ({spec!r})."
            ) from None
        return obj() if call else obj
    for name in _APP_NAMES:
        if hasattr(module, name):
            return getattr(module, name)
    for name in _FACTORY_NAMES:
        factory = getattr(module, name, None)
        if callable(factory):
            return factory()
    raise AppNotFoundError(
        f"Module {module.__name__!r} ({spec!r}) has none of"
        f" {', '.join(_APP_NAMES + tuple(n + '()' for n in _FACTORY_NAMES))}: name"
        f" the application, as in '{spec}:name'."
    )


def discover_app(directory: str | None = None) -> str | None:
    """Return the first of :data:`APP_FILES` present in ``directory``, or ``None``.

    :param directory: where to look (default: the working directory).
    """
    base = directory or os.getcwd()
    for name in APP_FILES:
        if os.path.isfile(os.path.join(base, name)):
            return name
    return None
