"""The ``framework`` command: ``framework [OPTIONS] COMMAND [ARGS]...``.

Global options (before the command name):

- ``--app`` (env ``FRAMEWORK_APP``): the application, ``module:attr``,
  ``module:factory()`` or ``path/to/file.py[:attr]``. Without it: ``wsgi.py``,
  else ``app.py``, in the working directory; else, in a source checkout of
  framework, :data:`DEFAULT_APP` (see :func:`find_app_spec`).
- ``--settings MODULE``: sets ``FRAMEWORK_SETTINGS_MODULE``.
- ``--traceback``: show the full traceback of a failure.
- ``-v/--verbosity 0..3``: 0 silent, 1 normal, 2 verbose, 3 very verbose (and
  tracebacks). Every command also accepts ``-v`` after its name.

Subcommands are loaded lazily from :data:`COMMANDS`; a command whose module is
not installed is simply not listed. An installed app adds its own from its
``commands`` module (:mod:`framework.cli.appcommands`). Exit codes: 0 success,
1 failure (one line ``Error: ...`` on stderr, no traceback unless asked for),
2 misuse.

From Python, :func:`call_command` runs any subcommand and returns its result.
"""

from __future__ import annotations

import collections.abc as cabc
import contextlib
import importlib
import importlib.util
import io
import os
import sys
import traceback
import typing as t

import click

from .. import bootstrap
from ..conf import ENVIRONMENT_VARIABLE
from ..conf import settings
from ..exceptions import FrameworkError

if t.TYPE_CHECKING:
    from ..app import App

__all__ = [
    "COMMANDS",
    "CommandContext",
    "CommandError",
    "CommandUsageError",
    "DEFAULT_APP",
    "DOCS_URL",
    "call_command",
    "database_option",
    "error_message",
    "find_app_spec",
    "load_app",
    "main",
    "noinput_option",
    "pass_context",
    "verbosity_option",
]

DEFAULT_APP = "app_example.wsgi:app"
"""The last resort of :func:`find_app_spec`: the example app of a source checkout.

``app_example`` is not in the wheel: an installed ``framework`` never finds it
unless a checkout is on ``sys.path``.
"""

DOCS_URL = "https://framework.readthedocs.io/"
"""Where the documentation (built from ``docs/`` with MkDocs) is published."""

NO_APP_MESSAGE = (
    "No application found: no --app, no FRAMEWORK_APP, and neither wsgi.py nor"
    " app.py in {cwd}. Point at your app with --app module:app, --app"
    " path/to/app.py[:app] or FRAMEWORK_APP=module:app, run the command in the"
    " directory of your wsgi.py or app.py, or create a project with"
    " 'framework new NAME'."
)
"""The usage error of a command that needs an application and finds none."""

NO_PROJECT_MESSAGE = (
    "No project configured: no settings module (--settings mysite.settings or"
    " FRAMEWORK_SETTINGS_MODULE=mysite.settings) and no app (--app, FRAMEWORK_APP,"
    " or wsgi.py / app.py in {cwd}), so there are no installed apps to work on."
    " Run the command in your project's directory, point at it with --settings"
    " or --app, or create a project with 'framework new NAME'."
)
"""The usage error of a command that needs a project and finds none."""

COMMANDS: dict[str, str] = {
    "dumpdata": "framework.cli.data:dumpdata",
    "flush": "framework.cli.data:flush",
    "loaddata": "framework.cli.data:loaddata",
    "loadtest": "framework.cli.loadtest:loadtest",
    "makemigrations": "framework.cli.migrations:makemigrations",
    "migrate": "framework.cli.migrations:migrate",
    "new": "framework.cli.project:new",
    "routes": "framework.cli.introspect:routes",
    "run": "framework.cli.develop:run",
    "serve": "framework.cli.serve:serve",
    "shell": "framework.cli.develop:shell",
    "showmigrations": "framework.cli.migrations:showmigrations",
    "signals": "framework.cli.introspect:signals",
}
"""Command name -> ``"module:attribute"`` of its :class:`click.Command`."""


class CommandError(FrameworkError, click.ClickException):
    """A command failed; the message says why and, if possible, how to fix it.

    Raised by commands (exit code 1, the message on stderr) and by
    :func:`call_command` for any failure (a usage error is the subclass
    :class:`CommandUsageError`, exit code 2).
    """


class CommandUsageError(CommandError):
    """A command was called wrongly (exit code 2), from :func:`call_command`."""

    exit_code = 2


class CommandContext:
    """What every command shares: the global options and the loaded project.

    Commands receive it with the :data:`pass_context` decorator.

    :param stdout: where commands write their output (default: ``sys.stdout``).
    :param stderr: where commands write diagnostics (default: ``sys.stderr``).
    """

    def __init__(
        self,
        stdout: t.IO[str] | None = None,
        stderr: t.IO[str] | None = None,
    ) -> None:
        named = os.environ.get("FRAMEWORK_APP")
        self.app_spec: str = named or find_app_spec()
        """The application: named, discovered, or :data:`DEFAULT_APP`."""
        self.app_explicit = bool(named)
        """Whether the app was named (option or environment), not defaulted."""
        self.traceback = False
        """Whether failures show their traceback (``--traceback``)."""
        self.verbosity = 1
        """0 silent, 1 normal, 2 verbose, 3 very verbose."""
        self.stdout = stdout
        """Output stream, or ``None`` for ``sys.stdout``."""
        self.stderr = stderr
        """Diagnostic stream, or ``None`` for ``sys.stderr``."""
        self._app: App | None = None
        self._project_loaded = False

    @property
    def show_traceback(self) -> bool:
        """Whether a failure should show its traceback (``--traceback``, ``-v 3``)."""
        return self.traceback or self.verbosity >= 3

    @property
    def interactive_output(self) -> bool:
        """Whether the output goes to a terminal (progress bars, colours)."""
        stream = self.stdout if self.stdout is not None else sys.stdout
        isatty = getattr(stream, "isatty", None)
        return bool(isatty and isatty())

    def echo(self, message: str = "", level: int = 1, err: bool = False) -> None:
        """Write ``message`` if the verbosity is at least ``level``.

        :param err: write to the diagnostic stream instead of the output.
        """
        if self.verbosity >= level:
            click.echo(message, file=self.stderr if err else self.stdout, err=err)

    def load_app(self) -> App:
        """Import and return the application named by ``--app`` (cached).

        :raises CommandUsageError: no app was named and none was found.
        :raises CommandError: the app cannot be imported.
        """
        if self._app is None:
            self.check_app()
            self._app = load_app(self.app_spec)
        return self._app

    def check_app(self) -> None:
        """Fail unless an app was named or found (without importing it).

        :raises CommandUsageError: no app was named, no ``wsgi.py`` or
            ``app.py`` is in the working directory, and there is no
            :data:`DEFAULT_APP`; the message says how to point at one.
        """
        if (
            not self.app_explicit
            and self.app_spec == DEFAULT_APP
            and not self._default_app_exists()
        ):
            raise CommandUsageError(NO_APP_MESSAGE.format(cwd=os.getcwd()))

    def _default_app_exists(self) -> bool:
        """Whether the app found without being named can be imported."""
        if self.app_spec.partition(":")[0].endswith(".py"):
            return True  # a file found in the working directory
        module_name = self.app_spec.partition(":")[0]
        cwd = os.getcwd()
        if cwd not in sys.path:
            sys.path.insert(0, cwd)
        with contextlib.suppress(ImportError, ValueError):
            return importlib.util.find_spec(module_name) is not None
        return False

    def _wants_found_app(self) -> bool:
        """Whether an app that was not named should be loaded with the project.

        :data:`DEFAULT_APP` is a last resort for a process without settings
        yet; where the settings are in use already (``call_command`` from
        code, in tests), importing the checkout's example app would change
        them under the caller.
        """
        if self.app_spec == DEFAULT_APP and settings.configured:
            return False
        return self._default_app_exists()

    def load_project(
        self, require_app: bool = False, require_project: bool = False
    ) -> App | None:
        """Load the app (if it can be found), then run :func:`framework.setup`.

        The app is imported first because its module may choose the settings.
        A missing *default* app is skipped unless ``require_app``; an app named
        with ``--app`` or ``FRAMEWORK_APP`` must load. ``framework.setup()``
        applies ``LOGGING`` and imports every installed app's modules
        (``models``, ``management``, ``receivers``).

        :param require_project: fail when there is no project at all (no app
            found and no installed apps), as the database commands do.
        :returns: the application, or ``None`` when there is none.
        :raises CommandUsageError: an app or project is required and missing.
        :raises CommandError: the app or an installed app cannot be loaded.
        """
        app: App | None = None
        if require_app or self.app_explicit or self._wants_found_app():
            app = self.load_app()
        if not self._project_loaded:
            bootstrap.setup()
            self._project_loaded = True
        if require_project and not settings.INSTALLED_APPS:
            if app is None and not os.environ.get(ENVIRONMENT_VARIABLE):
                raise CommandUsageError(NO_PROJECT_MESSAGE.format(cwd=os.getcwd()))
            source = settings._setup()._source
            if source == "defaults":
                raise CommandUsageError(
                    f"INSTALLED_APPS is empty: the app {self.app_spec} names no"
                    f" settings module ({ENVIRONMENT_VARIABLE}), so the default"
                    " settings are in use, and there is no app to work on. Put"
                    " INSTALLED_APPS in a settings module and name it with"
                    " --settings MODULE or FRAMEWORK_SETTINGS_MODULE (a project"
                    " made by 'framework new NAME' has one)."
                )
            raise CommandUsageError(
                f"INSTALLED_APPS is empty (settings: {source}): there is no app"
                " to work on. List your app packages in INSTALLED_APPS."
            )
        return app


pass_context = click.make_pass_decorator(CommandContext, ensure=True)
"""Decorator passing the :class:`CommandContext` as a command's first argument."""


def find_app_spec(directory: str | None = None) -> str:
    """Return the application to use when none is named.

    In this order: ``wsgi.py``, then ``app.py``, in ``directory`` (default: the
    working directory); else :data:`DEFAULT_APP` (which exists only in a
    source checkout of framework; commands that need an app then say how to
    name one).
    """
    return bootstrap.discover_app(directory) or DEFAULT_APP


def load_app(spec: str | None = None) -> App:
    """Import the application named by ``spec``.

    The working directory is put on ``sys.path`` first, so that a project
    in the working directory is found by the installed ``framework`` script.

    :param spec: ``"module:attr"``, ``"module:factory()"`` (a factory called
        without arguments) or ``"path/to/file.py[:attr]"``; without ``attr``,
        the module's ``app`` or ``application`` (or its ``create_app()``). ``None``
        means ``FRAMEWORK_APP``, else :func:`find_app_spec`.
    :returns: the application object.
    :raises CommandError: the module, file or attribute does not exist, or
        the module fails to import.
    """
    if spec is None:
        spec = os.environ.get("FRAMEWORK_APP") or find_app_spec()
    try:
        return t.cast("App", bootstrap.import_app(spec))
    except bootstrap.AppNotFoundError as exc:
        raise CommandError(
            f"{exc} Pass --app module:attr (or path/to/app.py) or set FRAMEWORK_APP."
        ) from exc


def error_message(exc: BaseException) -> str:
    """Return ``"Type: message"`` of ``exc`` on one line.

    A database error is told by its driver's exception, without the SQL
    statement and the link SQLAlchemy adds (``--traceback`` shows them).

    :param exc: the exception.
    :returns: its class name and message, whitespace collapsed to spaces.
    """
    orig = getattr(exc, "orig", None)
    if isinstance(orig, BaseException):
        exc = orig
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def verbosity_option(func: cabc.Callable[..., t.Any]) -> cabc.Callable[..., t.Any]:
    """Add ``-v/--verbosity 0..3`` to a command; it overrides the global one."""

    def set_verbosity(ctx: click.Context, param: click.Parameter, value: t.Any) -> None:
        if value is not None:
            ctx.ensure_object(CommandContext).verbosity = value

    return click.option(
        "-v",
        "--verbosity",
        type=click.IntRange(0, 3),
        default=None,
        expose_value=False,
        is_eager=True,
        callback=set_verbosity,
        help="0 silent, 1 normal, 2 verbose, 3 very verbose (with tracebacks).",
    )(func)


def database_option(func: cabc.Callable[..., t.Any]) -> cabc.Callable[..., t.Any]:
    """Add ``--database ALIAS`` (default ``default``) as the ``database`` argument."""
    return click.option(
        "--database",
        default="default",
        show_default=True,
        help="The database alias (a key of DATABASES).",
    )(func)


def noinput_option(func: cabc.Callable[..., t.Any]) -> cabc.Callable[..., t.Any]:
    """Add ``--noinput/--no-input`` as the boolean ``interactive`` argument."""
    return click.option(
        "--noinput",
        "--no-input",
        "interactive",
        is_flag=True,
        flag_value=False,
        default=True,
        help="Never prompt; answer yes.",
    )(func)


def _load_command(name: str) -> click.Command | None:
    target = COMMANDS.get(name)
    if target is None:
        return None
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            return None
        raise
    command = getattr(module, attr)
    if not isinstance(command, click.Command):
        raise TypeError(f"{target} is not a click command.")
    return command


def _name_app(ctx: click.Context, spec: str | None) -> str | None:
    if spec:
        obj = ctx.ensure_object(CommandContext)
        obj.app_spec, obj.app_explicit = spec, True
    return spec


def _app_commands(obj: CommandContext, quiet: bool = False) -> dict[str, t.Any]:
    from .appcommands import app_commands

    return app_commands(obj, quiet=quiet)


def _command_available(name: str) -> bool:
    module_name = COMMANDS[name].partition(":")[0]
    try:
        return importlib.util.find_spec(module_name) is not None
    except ImportError:
        return False


class FrameworkGroup(click.Group):
    """The ``framework`` group: lazy subcommands, one-line errors."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Return the built-in commands' names, and a named app's apps' own."""
        names = set(super().list_commands(ctx))
        names.update(name for name in COMMANDS if _command_available(name))
        obj = ctx.ensure_object(CommandContext)
        if obj.app_explicit:  # NOTE: the default app is not imported for --help
            names.update(_app_commands(obj, quiet=True))
        return sorted(names)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """Import and return the command ``cmd_name``, or ``None``."""
        command = super().get_command(ctx, cmd_name)
        if command is None:
            command = _load_command(cmd_name)
        if command is None:  # an installed app's (framework.cli.appcommands)
            command = _app_commands(ctx.ensure_object(CommandContext)).get(cmd_name)
        return command

    def invoke(self, ctx: click.Context) -> t.Any:
        """Run the subcommand; turn unexpected errors into one-line failures."""
        try:
            return super().invoke(ctx)
        except click.ClickException as exc:
            obj = ctx.find_object(CommandContext)
            cause = exc.__cause__
            if obj is not None and obj.show_traceback and cause is not None:
                # The one-line message follows the traceback asked for.
                text = "".join(traceback.format_exception(cause))
                click.echo(text, file=obj.stderr, err=True, nl=False)
            raise
        except (click.exceptions.Exit, click.Abort):
            raise
        except BrokenPipeError:
            # The reader went away (`framework signals | head`): stop quietly,
            # and keep Python from complaining again when it flushes stdout.
            with contextlib.suppress(OSError, ValueError, io.UnsupportedOperation):
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
            raise click.exceptions.Exit(1) from None
        except Exception as exc:
            obj = ctx.find_object(CommandContext)
            if obj is not None and obj.show_traceback:
                raise
            raise CommandError(error_message(exc)) from exc


@click.group(
    cls=FrameworkGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog=f"Documentation: {DOCS_URL}",
)
@click.option(
    "--app",
    "app_spec",
    envvar="FRAMEWORK_APP",
    default=None,
    metavar="APP",
    is_eager=True,  # before --help, which lists the named app's own commands
    callback=lambda ctx, param, value: _name_app(ctx, value),
    help=(
        "The application: MODULE:ATTR, MODULE:FACTORY() or PATH.py[:ATTR] (env"
        " FRAMEWORK_APP; default: wsgi.py, else app.py, in the current directory)."
    ),
)
@click.option(
    "--settings",
    "settings_module",
    default=None,
    metavar="MODULE",
    help=f"The settings module (sets {ENVIRONMENT_VARIABLE}).",
)
@click.option("--traceback", is_flag=True, help="Show tracebacks of failures.")
@click.option(
    "-v",
    "--verbosity",
    type=click.IntRange(0, 3),
    default=1,
    show_default=True,
    help="0 silent, 1 normal, 2 verbose, 3 very verbose (with tracebacks).",
)
@click.version_option(package_name="framework", prog_name="framework")
@click.pass_context
def main(
    ctx: click.Context,
    app_spec: str | None,
    settings_module: str | None,
    traceback: bool,
    verbosity: int,
) -> None:
    """Manage a framework project: run it, inspect it, migrate its database."""
    obj = ctx.ensure_object(CommandContext)
    if app_spec:
        obj.app_spec = app_spec
        obj.app_explicit = True
    obj.traceback = traceback
    obj.verbosity = verbosity
    if settings_module and os.environ.get(ENVIRONMENT_VARIABLE) != settings_module:
        os.environ[ENVIRONMENT_VARIABLE] = settings_module
        settings.reset()


def _option_argv(command: click.Command, options: dict[str, t.Any]) -> list[str]:
    params = {param.name: param for param in command.params if param.name}
    argv: list[str] = []
    positional: list[str] = []
    for key, value in options.items():
        param = params[key]
        if isinstance(param, click.Argument):
            values = value if isinstance(value, list | tuple) else [value]
            positional.extend(map(str, values))
            continue
        assert isinstance(param, click.Option)
        long_opts = [opt for opt in param.opts if opt.startswith("--")]
        opt = long_opts[0] if long_opts else param.opts[0]
        if param.is_flag:
            # The "on" value may be falsy (--noinput sets interactive=False);
            # Click leaves it unset for plain boolean flags.
            on_value = param.flag_value
            if not isinstance(on_value, bool | str | int):
                on_value = True
            if value == on_value:
                argv.append(opt)
            elif param.secondary_opts:
                argv.append(param.secondary_opts[0])
        elif param.multiple:
            for item in value:
                argv.extend([opt, str(item)])
        else:
            argv.extend([opt, str(value)])
    if positional:
        argv.extend(["--", *positional])
    return argv


def call_command(
    name: str,
    *args: t.Any,
    stdout: t.IO[str] | None = None,
    stderr: t.IO[str] | None = None,
    **options: t.Any,
) -> t.Any:
    """Run the subcommand ``name`` from Python and return its result.

    Positional ``args`` are passed as command-line words; ``options`` use the
    parameter names of the command (``interactive=False`` for ``--noinput``,
    ``verbosity=0``, ``database="other"``). The global options ``app``,
    ``settings`` and ``traceback`` are accepted too (``None`` means unset).

    :param stdout: a text stream for the command's output (default stdout).
    :param stderr: a text stream for diagnostics (default stderr).
    :returns: what the command returns (documented per command).
    :raises CommandError: the command failed or was misused (``exit_code``
        1 or 2); the original exception is its ``__cause__``.
    """
    command = _load_command(name)
    if command is None:
        finder = CommandContext()
        if options.get("app"):
            finder.app_spec, finder.app_explicit = options["app"], True
        command = _app_commands(finder).get(name)
    if command is None:
        raise CommandError(
            f"Unknown command {name!r}; available: {', '.join(_available())}."
        )
    global_argv: list[str] = []
    own = {param.name for param in command.params}
    for key in ("app", "settings", "traceback", "verbosity"):
        if key in options and key not in own:
            value = options.pop(key)
            if key == "traceback":
                if value:
                    global_argv.append("--traceback")
            elif value is not None:
                global_argv.extend([f"--{key}", str(value)])
    unknown = sorted(set(options) - own)
    if unknown:
        raise CommandError(
            f"Unknown option(s) {', '.join(unknown)} for command {name!r}; it"
            f" accepts {', '.join(sorted(n for n in own if n))}."
        )
    argv = [*global_argv, name, *map(str, args), *_option_argv(command, options)]
    obj = CommandContext(stdout=stdout, stderr=stderr)
    try:
        result = main.main(
            args=argv, prog_name="framework", standalone_mode=False, obj=obj
        )
    except CommandError:
        raise
    except click.UsageError as exc:
        raise CommandUsageError(exc.format_message()) from exc
    except click.ClickException as exc:
        raise CommandError(exc.format_message()) from exc
    except click.Abort as exc:
        raise CommandError(f"Command {name!r} was aborted.") from exc
    except Exception as exc:
        raise CommandError(error_message(exc)) from exc
    return result


def _available() -> list[str]:
    return sorted(name for name in COMMANDS if _command_available(name))
