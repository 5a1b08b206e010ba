"""``framework run`` (development server) and ``framework shell``."""

from __future__ import annotations

import code
import contextlib
import importlib
import sys
import traceback
import typing as t

import click

from .. import signals as catalogue
from ..apps import apps
from ..conf import settings
from . import CommandContext
from . import CommandError
from . import CommandUsageError
from . import error_message
from . import pass_context
from . import verbosity_option

__all__ = ["debuggable", "failed_app", "run", "shell"]

HOST = "127.0.0.1"
"""The development server only ever listens on the loopback interface."""


@click.command()
@click.option(
    "-p",
    "--port",
    type=click.IntRange(0, 65535),
    default=5000,
    show_default=True,
    help="TCP port on 127.0.0.1 (0 picks a free one).",
)
@click.option(
    "--debug",
    is_flag=True,
    help="Development mode: DEBUG on, the reloader and the interactive debugger.",
)
@click.option(
    "--reload/--no-reload",
    default=None,
    help="Restart when code changes (default: on).",
)
@click.option(
    "--debugger/--no-debugger",
    default=None,
    help="Werkzeug's interactive debugger (default: on when DEBUG is on).",
)
@click.option("--threaded/--no-threaded", default=True, help="One thread per request.")
@verbosity_option
@pass_context
def run(
    obj: CommandContext,
    port: int,
    debug: bool,
    reload: bool | None,
    debugger: bool | None,
    threaded: bool,
) -> None:
    """Run the development server on 127.0.0.1 (never in production).

    The interactive debugger runs arbitrary code for whoever reaches it, so
    it is refused unless DEBUG is on (--debug turns it on). Use 'framework
    serve' in production.
    """
    use_reloader = True if reload is None else reload
    from werkzeug.serving import is_running_from_reloader
    from werkzeug.serving import run_simple

    serving = not use_reloader or is_running_from_reloader()
    app: t.Any = None
    failure: Exception | None = None
    try:
        obj.load_project(require_app=True)
        app = obj.load_app()
        if debug:
            settings.DEBUG = True
        debug_on = bool(settings.DEBUG)
    except CommandUsageError:
        raise
    except Exception as exc:
        if not (use_reloader and serving):
            raise
        # NOTE: the reloader's child, after a change: a mistake in the code
        # just saved (a syntax error) must not stop the server. It answers
        # with the error, and the reloader restarts it on the next change.
        failure = exc
        debug_on = debug or _debug_setting()
    if debugger and not debug_on and failure is None:
        raise CommandError(
            "Refusing to start the interactive debugger with DEBUG off: it lets"
            " anyone who reaches the server run code. Set DEBUG=True or use --debug"
            " (development only), or drop --debugger."
        )
    use_debugger = debug_on if debugger is None else debugger
    if failure is not None:
        app = failed_app(failure, obj, use_debugger)
    elif serving:
        # NOTE: in the process that serves; the reloader's watcher process
        # would only say it twice.
        from .migrations import warn_unapplied

        warn_unapplied(stream=obj.stderr)
    run_simple(
        HOST,
        port,
        debuggable(app) if use_debugger and failure is None else app,
        use_reloader=use_reloader,
        # NOTE: werkzeug's watchdog reloader (chosen whenever watchdog is
        # installed; MkDocs brings it) matches "*.py" against paths relative
        # to each watched directory with watchdog 7, so it misses every
        # change below the top level, the project's package included. The
        # stat reloader sees them all.
        reloader_type="stat",
        use_debugger=use_debugger,
        use_evalex=use_debugger,
        threaded=threaded,
    )


def _debug_setting() -> bool:
    """Return ``settings.DEBUG``, or ``False`` when the settings cannot be read."""
    try:
        return bool(settings.DEBUG)
    except Exception:
        return False


def failed_app(exc: Exception, obj: CommandContext, debugger: bool) -> t.Any:
    """Return the WSGI app ``run`` serves while the project fails to load.

    The traceback goes to stderr once. Every request then gets a 500 that
    names the error, or, with the debugger on, the error itself raised for
    werkzeug's debugger to show.

    :param exc: what loading the project raised.
    :param debugger: raise ``exc`` on each request instead of answering.
    """
    message = (
        f"The app failed to load: {error_message(exc)}. Fix the code and save"
        " it: the development server restarts by itself."
    )
    details = "".join(traceback.format_exception(exc))
    click.echo(f"{details}Error: {message}", file=obj.stderr, err=True)

    def failing_app(environ: t.Any, start_response: t.Any) -> list[bytes]:
        if debugger:
            raise exc
        body = f"{message}\n".encode()
        start_response(
            "500 Internal Server Error",
            [
                ("Content-Type", "text/plain; charset=utf-8"),
                ("Content-Length", str(len(body))),
            ],
        )
        return [body]

    return failing_app


_EXCEPTION_KEY = "framework.cli.run.exception"


def _remember_exception(
    signal: t.Any, sender: t.Any, request: t.Any = None, **kwargs: t.Any
) -> None:
    exc = sys.exception()
    environ = getattr(request, "environ", None)
    if exc is not None and isinstance(environ, dict):
        environ[_EXCEPTION_KEY] = exc


def debuggable(app: t.Any) -> t.Any:
    """Let werkzeug's interactive debugger see the app's unhandled exceptions.

    The app turns an unhandled exception into a 500 response (after sending
    ``got_request_exception``), so the debugger around it would never see
    one. A ``got_request_exception`` receiver keeps the exception in the
    request's environ; the returned WSGI app closes the 500 response and
    raises it again, for the debugger to show.

    :param app: the WSGI application.
    :returns: the application to wrap in werkzeug's ``DebuggedApplication``.
    """
    catalogue.got_request_exception.connect(
        _remember_exception, weak=False, dispatch_uid=_EXCEPTION_KEY
    )

    def debugged_app(environ: t.Any, start_response: t.Any) -> t.Any:
        # The app's start_response waits until the app has returned: the
        # debugger must be able to send its own 500 page instead.
        pending: list[tuple[t.Any, ...]] = []
        server_write: list[t.Any] = []
        returned = False

        def write(data: bytes) -> None:
            if not server_write:
                server_write.append(start_response(*pending[-1]))
            server_write[0](data)

        def deferred_start_response(*args: t.Any) -> t.Any:
            if returned:
                return start_response(*args)
            pending.append(args)
            return write

        iterable = app(environ, deferred_start_response)
        returned = True
        exc = environ.pop(_EXCEPTION_KEY, None)
        if exc is not None:
            close = getattr(iterable, "close", None)
            if close is not None:
                close()
            raise exc
        if pending and not server_write:
            start_response(*pending[-1])
        return iterable

    return debugged_app


def _namespace(app: t.Any) -> dict[str, t.Any]:
    namespace: dict[str, t.Any] = {
        "app": app,
        "apps": apps,
        "settings": settings,
        "signals": catalogue,
    }
    configs = apps.get_app_configs()
    if any(config.models_module is not None for config in configs):
        namespace["orm"] = importlib.import_module("framework.orm")
        for config in configs:
            for model in config.get_models():
                if not getattr(model._meta, "auto_created", False):
                    namespace.setdefault(model.__name__, model)
    return namespace


@click.command()
@click.option("-c", "--command", default=None, help="Run this code instead.")
@verbosity_option
@pass_context
def shell(obj: CommandContext, command: str | None) -> None:
    """Open a Python shell with the app, settings, signals and models loaded.

    With -c, or with code piped on stdin, runs it and exits.
    """
    app = obj.load_project()
    namespace = _namespace(app)
    if command is None and not sys.stdin.isatty():
        command = sys.stdin.read()
    if command is not None:
        code_object = compile(command, "<shell>", "exec")
        with contextlib.redirect_stdout(obj.stdout or sys.stdout):
            exec(code_object, namespace)
        return
    names = ", ".join(sorted(name for name in namespace if not name.startswith("_")))
    code.interact(banner=f"framework shell; loaded: {names}", local=namespace)
