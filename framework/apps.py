"""Installed apps: the packages listed in ``INSTALLED_APPS``.

Each app is a package. It may have:

- a ``models`` module (its models, through the ORM);
- a ``migrations`` package (numbered migration modules, see
  ``docs/migrations.md``); apps with models but without it get their tables
  created straight from the models by ``migrate``;
- a ``management`` module, imported by every management command before it
  sends anything: the place for ``pre_migrate``/``post_migrate`` receivers;
- a ``receivers`` module, imported with ``management``: signal receivers the
  running app needs.

:data:`apps` is the registry; :meth:`Apps.populate` fills it from
``settings.INSTALLED_APPS``, and :func:`framework.setup` calls it and
:meth:`Apps.import_modules` in every process that serves or tests the project.
This module does not import the ORM until a model is asked for.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import threading
import types
import typing as t

from . import dispatch
from .conf import ImproperlyConfigured
from .conf import settings

__all__ = ["AppConfig", "Apps", "apps"]

_EXTRA_MODULES = ("management", "receivers")


def _find(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


class AppConfig:
    """One installed app.

    :param name: the app package's dotted path, as listed in ``INSTALLED_APPS``.
    :param module: the imported package.
    """

    def __init__(self, name: str, module: types.ModuleType) -> None:
        self.name = name
        """The package's dotted path."""
        self.module = module
        """The package."""
        self.label = name.rpartition(".")[2]
        """The short name models use as ``_meta.app_label`` (last dotted part)."""
        file = getattr(module, "__file__", None)
        paths = list(getattr(module, "__path__", []))
        self.path = os.path.dirname(file) if file else (paths[0] if paths else "")
        """The package's directory."""
        self.models_module: types.ModuleType | None = None
        """The ``models`` module, once imported, or ``None`` if there is none."""
        self.migrations_module = f"{name}.migrations"
        """The dotted name of the app's migrations package (it may not exist)."""
        self.management_module: types.ModuleType | None = None
        """The ``management`` module, once imported, or ``None``."""

    def __repr__(self) -> str:
        return f"<AppConfig {self.label!r} ({self.name})>"

    @property
    def has_migrations(self) -> bool:
        """Whether the app has a ``migrations`` package."""
        return _find(self.migrations_module)

    def import_models(self) -> types.ModuleType | None:
        """Import the app's ``models`` module if it has one, and return it."""
        if self.models_module is None and _find(f"{self.name}.models"):
            self.models_module = importlib.import_module(f"{self.name}.models")
        return self.models_module

    def import_modules(self) -> None:
        """Import the app's ``management`` and ``receivers`` modules, if any."""
        for suffix in _EXTRA_MODULES:
            full_name = f"{self.name}.{suffix}"
            if _find(full_name):
                module = importlib.import_module(full_name)
                if suffix == "management":
                    self.management_module = module

    def get_models(self) -> list[t.Any]:
        """Return the app's models in definition order, through models included."""
        if self.models_module is None:
            return []
        orm: t.Any = importlib.import_module("framework.orm")
        return list(orm.registry.get_models(app_label=self.label))


class Apps:
    """The registry of installed apps, in ``INSTALLED_APPS`` order."""

    def __init__(self) -> None:
        self._configs: dict[str, AppConfig] = {}
        self._names: tuple[str, ...] | None = None
        self._explicit = False
        self._lock = threading.RLock()

    @property
    def ready(self) -> bool:
        """Whether :meth:`populate` ran for the current ``INSTALLED_APPS``."""
        return self._names is not None and not self._stale(self._names)

    def _stale(self, names: tuple[str, ...]) -> bool:
        if names != self._names:
            return True
        return any(
            sys.modules.get(config.name) is not config.module
            or (
                config.models_module is not None
                and sys.modules.get(config.models_module.__name__)
                is not config.models_module
            )
            for config in self._configs.values()
        )

    def populate(self, installed_apps: t.Iterable[str] | None = None) -> None:
        """Import every installed app and its ``models`` module.

        Runs again when ``INSTALLED_APPS`` changed or an app module was
        re-imported since the last call; otherwise it does nothing.

        :param installed_apps: the app names (default
            ``settings.INSTALLED_APPS``).
        :raises ImproperlyConfigured: an app cannot be imported or two apps
            share a label.
        """
        names = tuple(
            settings.INSTALLED_APPS if installed_apps is None else installed_apps
        )
        self._explicit = installed_apps is not None
        with self._lock:
            if not self._stale(names):
                return
            configs: dict[str, AppConfig] = {}
            for name in names:
                if not isinstance(name, str):
                    raise ImproperlyConfigured(
                        f"INSTALLED_APPS entries must be dotted package names, got"
                        f" {name!r}."
                    )
                try:
                    module = importlib.import_module(name)
                except ImportError as exc:
                    raise ImproperlyConfigured(
                        f"Cannot import the installed app {name!r}: {exc}. Check"
                        " INSTALLED_APPS."
                    ) from exc
                config = AppConfig(name, module)
                if config.label in configs:
                    raise ImproperlyConfigured(
                        f"Two installed apps have the label {config.label!r}:"
                        f" {configs[config.label].name!r} and {name!r}."
                    )
                configs[config.label] = config
            for config in configs.values():
                config.import_models()
            self._configs = configs
            self._names = names
        self._check_lazy_senders()

    def _check_lazy_senders(self) -> None:
        # Every installed model is imported now: a lazy "app_label.Model"
        # sender still waiting names no model (see dispatch.ModelSignal).
        if "framework.orm" not in sys.modules and not dispatch.pending_model_senders():
            return
        orm: t.Any = importlib.import_module("framework.orm")
        orm.registry.check_lazy_references()

    def import_modules(self) -> None:
        """Import each app's ``management`` and ``receivers`` modules."""
        with self._lock:
            for config in self._configs.values():
                config.import_modules()

    def _ensure(self) -> None:
        if not (self._explicit and self._names is not None):
            self.populate()

    def get_app_configs(self) -> list[AppConfig]:
        """Return the installed apps, in ``INSTALLED_APPS`` order.

        Populates the registry from the settings first, unless it was
        populated with an explicit list.
        """
        self._ensure()
        return list(self._configs.values())

    def get_app_config(self, label: str) -> AppConfig:
        """Return the installed app with this label.

        :raises LookupError: no installed app has that label.
        """
        self._ensure()
        try:
            return self._configs[label]
        except KeyError:
            raise LookupError(
                f"No installed app with label {label!r}; installed:"
                f" {', '.join(self._configs) or 'none'}."
            ) from None

    def reset(self) -> None:
        """Forget the registry; the next use populates it again."""
        with self._lock:
            self._configs = {}
            self._names = None
            self._explicit = False


apps = Apps()
"""The registry of installed apps."""
