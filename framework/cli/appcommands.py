"""Commands of installed apps: ``framework NAME`` for an app's own ``commands`` module.

An installed app (a package of ``INSTALLED_APPS``) may have a ``commands``
module; every :class:`click.Command` defined at its top level becomes a
subcommand of ``framework``, under the command's own name. The built-in
commands win a clash of names; two apps defining the same name is an error.
The project is loaded (the app imported, so its settings are chosen) before
the apps are looked at, the way every command loads it.

A command reads what it needs through :data:`framework.cli.pass_context` like
a built-in one, and calls ``obj.load_project()`` before touching models.
"""

from __future__ import annotations

import importlib
import importlib.util
import typing as t

import click

from ..conf import ImproperlyConfigured
from ..conf import settings

if t.TYPE_CHECKING:
    from . import CommandContext

__all__ = ["COMMANDS_MODULE", "app_commands"]

COMMANDS_MODULE = "commands"
"""The name of the module an installed app puts its commands in."""


def _find(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ImportError:
        return False


def app_commands(obj: CommandContext, quiet: bool = False) -> dict[str, click.Command]:
    """Return the commands of every installed app, by name (cached on ``obj``).

    :param obj: the command context (its app is loaded first).
    :param quiet: return ``{}`` instead of raising when the project cannot
        be loaded (listing commands in ``--help`` must not fail).
    :raises CommandError: the project cannot be loaded, or two apps define
        a command of the same name.
    """
    from . import CommandError

    cached: dict[str, click.Command] | None = getattr(obj, "_app_commands", None)
    if cached is not None:
        return cached
    try:
        obj.load_project()
        names = list(getattr(settings, "INSTALLED_APPS", None) or ())
    except (CommandError, ImproperlyConfigured, ImportError):
        if quiet:
            return {}
        raise
    found: dict[str, click.Command] = {}
    owners: dict[str, str] = {}
    for app_name in names:
        module_name = f"{app_name}.{COMMANDS_MODULE}"
        if not isinstance(app_name, str) or not _find(module_name):
            continue
        module = importlib.import_module(module_name)
        for value in vars(module).values():
            if not isinstance(value, click.Command) or not value.name:
                continue
            if value.name in found and found[value.name] is not value:
                raise CommandError(
                    f"Two installed apps define the command {value.name!r}:"
                    f" {owners[value.name]} and {module_name}."
                )
            found[value.name] = value
            owners[value.name] = module_name
    obj._app_commands = found  # type: ignore[attr-defined]
    return found
