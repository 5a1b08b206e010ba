"""``framework serve``: run the application under gunicorn, in process.

The command builds a :class:`framework.serving.GunicornApplication` (gunicorn's
own application API, no shell-out). The common settings have options of their
own; any other gunicorn option may follow them and is parsed by gunicorn's own
argument parser, so ``framework serve --keep-alive 5 --preload`` works as
``gunicorn --keep-alive 5 --preload`` does.

Before forking the workers, the master migrates the database (unless
``--no-migrate``), so the first start of a fresh checkout creates and migrates
its SQLite database; it then drops its own connections so that no worker
inherits one.
"""

from __future__ import annotations

import importlib
import typing as t

import click

from framework.cli import CommandContext
from framework.cli import load_app
from framework.cli import pass_context
from framework.cli import verbosity_option
from framework.serving import GunicornApplication

__all__ = ["serve"]


def _uses_orm() -> bool:
    from framework.conf import settings

    if not getattr(settings, "INSTALLED_APPS", None):
        return False
    try:
        importlib.import_module("framework.orm")
    except ImportError:
        return False
    return True


def migrate_before_fork(app_spec: str, verbosity: int = 1) -> bool:
    """Migrate the default database in the master, then close its connections.

    Only apps that use the ORM (``INSTALLED_APPS`` set, the ``orm`` extra
    installed) are migrated. The master's connections are closed for real
    afterwards, so the workers forked next inherit none.

    :param app_spec: the application, for ``migrate``'s ``--app``.
    :param verbosity: passed to ``migrate``.
    :returns: whether ``migrate`` ran.
    """
    if not _uses_orm():
        return False
    from framework.cli import call_command

    call_command("migrate", app=app_spec, interactive=False, verbosity=verbosity)
    orm = importlib.import_module("framework.orm")
    orm.connections.reset()
    return True


def parse_gunicorn_args(args: t.Sequence[str]) -> dict[str, t.Any]:
    """Parse gunicorn command line options into settings.

    :param args: options as the ``gunicorn`` command takes them.
    :returns: the settings given, by name.
    :raises click.UsageError: an option gunicorn does not know, or a stray
        positional argument.
    """
    if not args:
        return {}
    from gunicorn.config import Config

    parser = Config(usage="framework serve").parser()
    try:
        namespace, unknown = parser.parse_known_args(list(args))
    except SystemExit as exc:
        raise click.UsageError(f"bad gunicorn option in {' '.join(args)}") from exc
    if unknown or namespace.args:
        stray = " ".join([*unknown, *namespace.args])
        raise click.UsageError(
            f"unknown option or argument {stray!r}; see `gunicorn --help` for the"
            " options framework serve passes through."
        )
    return {
        name: value
        for name, value in vars(namespace).items()
        if value is not None and name != "args"
    }


@click.command(
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": True}
)
@click.option(
    "-b",
    "--bind",
    multiple=True,
    help="Address to listen on, HOST:PORT or unix:PATH (default 127.0.0.1:8000).",
)
@click.option(
    "-w",
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Worker processes (default: $WEB_CONCURRENCY, else 2 * cores + 1).",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    help="Threads per worker; more than 1 selects the gthread worker.",
)
@click.option(
    "-k",
    "--worker-class",
    default=None,
    help="Worker class: sync (default) or gthread, or any gunicorn worker.",
)
@click.option("-t", "--timeout", type=int, default=None, help="Worker timeout, s.")
@click.option(
    "--graceful-timeout",
    type=int,
    default=None,
    help="Seconds in-flight requests get to finish after SIGTERM.",
)
@click.option(
    "--max-requests",
    type=int,
    default=None,
    help="Recycle a worker after this many requests.",
)
@click.option(
    "-c",
    "--config",
    "config_file",
    default=None,
    help="A gunicorn configuration file (default: ./gunicorn.conf.py if present).",
)
@click.option(
    "--access-logfile",
    default=None,
    help="Access log file; '-' is stdout (the default).",
)
@click.option("--no-access-log", is_flag=True, help="Do not write an access log.")
@click.option(
    "--no-migrate",
    is_flag=True,
    help="Do not migrate the database before starting the workers.",
)
@click.argument("gunicorn_args", nargs=-1, type=click.UNPROCESSED)
@verbosity_option
@pass_context
def serve(
    obj: CommandContext,
    bind: tuple[str, ...],
    workers: int | None,
    threads: int | None,
    worker_class: str | None,
    timeout: int | None,
    graceful_timeout: int | None,
    max_requests: int | None,
    config_file: str | None,
    access_logfile: str | None,
    no_access_log: bool,
    no_migrate: bool,
    gunicorn_args: tuple[str, ...],
) -> None:
    """Serve the application with gunicorn.

    Any other gunicorn option may be given too (for example --keep-alive 5,
    --preload, --max-requests-jitter 50); a ./gunicorn.conf.py is read when it
    exists. The database is migrated before the workers start (the app is
    then imported in the master, as with --preload); --no-migrate skips it.
    """
    options = parse_gunicorn_args(gunicorn_args)
    options.update(
        {
            "bind": list(bind) or None,
            "workers": workers,
            "threads": threads,
            "worker_class": worker_class,
            "timeout": timeout,
            "graceful_timeout": graceful_timeout,
            "max_requests": max_requests,
            "accesslog": access_logfile,
        }
    )
    server = GunicornApplication(
        obj.app_spec,
        options,
        config_file=config_file,
        loader=load_app,
        access_log=not no_access_log,
    )
    if not no_migrate:
        # The app module may choose the settings (app_example/wsgi.py does),
        # so it is imported before migrating, in the environment the workers
        # get (--chdir, --env, --pythonpath); the workers inherit it.
        server.prepare_environment()
        server.application = obj.load_app()
        migrate_before_fork(obj.app_spec, verbosity=min(obj.verbosity, 1))
    server.run()
