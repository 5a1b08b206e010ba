"""``framework serve``: run the application under gunicorn, in process.

The command builds a :class:`framework.serving.GunicornApplication` (gunicorn's
own application API, no shell-out). The common settings have options of their
own; any other gunicorn option may follow them and is parsed by gunicorn's own
argument parser, so ``framework serve --keep-alive 5 --preload`` works as
``gunicorn --keep-alive 5 --preload`` does.

Before forking the workers, the database is migrated (unless ``--no-migrate``,
which warns about unapplied migrations instead), so the first start of a fresh
project creates and migrates its SQLite database. ``migrate`` runs in a child
forked from the master: the master never holds a database connection to hand
down, nor the migration machinery's memory.

The project is set up (:func:`framework.setup`) in the master when it imports
the app, else in each worker. With ``--reload`` the master never imports the
app (every worker imports it afresh, so a reload serves the new code). After
a clean shutdown the master closes the SQLite databases once more, so that
their ``-wal`` and ``-shm`` files go away.
"""

from __future__ import annotations

import collections.abc as cabc
import contextlib
import importlib
import json
import os
import sys
import traceback
import typing as t

import click
from gunicorn.errors import HaltServer

from framework import metrics
from framework.cli import CommandContext
from framework.cli import CommandError
from framework.cli import CommandUsageError
from framework.cli import error_message
from framework.cli import load_app
from framework.cli import pass_context
from framework.cli import verbosity_option
from framework.metrics import MetricsDirectoryError
from framework.serving import GunicornApplication
from framework.serving import prepare_metrics_directory

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


def migrate_before_fork(app_spec: str, verbosity: int = 1, load: bool = False) -> bool:
    """Migrate the default database before the workers start, in a child process.

    Only apps that use the ORM (``INSTALLED_APPS`` set, the ``orm`` extra
    installed) are migrated. ``migrate`` runs in a child forked from the
    master, so everything it needs (the migration machinery, Alembic, their
    imports: about 14 MiB) and the connections it opens go away with the child,
    and the workers forked next inherit neither. The child has the master's
    settings, environment and imported app, so it migrates exactly what the
    workers will serve.

    :param app_spec: the application, for ``migrate``'s ``--app``.
    :param verbosity: passed to ``migrate``.
    :param load: import the app in the child (the master has not: ``--reload``).
    :returns: whether ``migrate`` ran.
    :raises CommandError: ``migrate`` failed (its message, as if run here).
    """

    def migrate() -> bool:
        if load:
            _load_project(app_spec)
        if not _uses_orm():
            return False
        from framework.cli import call_command

        call_command("migrate", app=app_spec, interactive=False, verbosity=verbosity)
        return True

    if not load and not _uses_orm():
        return False
    return bool(run_in_child(migrate, "migrate"))


def warn_unapplied_migrations(app_spec: str) -> None:
    """Say on stderr, from a child process, which migrations are not applied.

    What ``serve --no-migrate`` runs before starting the workers: the master
    stays free of the app, the ORM and any connection.
    """

    def check() -> None:
        _load_project(app_spec)
        if _uses_orm():
            from framework.cli.migrations import warn_unapplied

            warn_unapplied()

    run_in_child(check, "the migration check")


def _load_project(app_spec: str) -> None:
    from framework import bootstrap

    load_app(app_spec)
    bootstrap.setup()


def run_in_child(work: cabc.Callable[[], t.Any], what: str) -> t.Any:
    """Run ``work`` in a child forked from this process and return its JSON result.

    A failure in the child is raised here as the :class:`CommandError` (or
    :class:`CommandUsageError`) it was; the connections the child opened are
    closed before it exits.

    :param what: names the work in the error when the child dies.
    """
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: work, report the outcome through the pipe, exit
        os.close(reader)
        _count_nothing_shared()
        status = 0
        try:
            result = work()
            os.write(writer, json.dumps({"result": result}).encode())
        except click.ClickException as exc:  # what call_command raises
            status = exc.exit_code
            _report_failure(writer, status, exc.format_message(), exc.__cause__)
        except BaseException as exc:
            status = 1
            _report_failure(writer, status, error_message(exc), exc)
        finally:
            _close_databases()
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    stream.flush()
            os._exit(status)
    os.close(writer)
    with os.fdopen(reader, "rb") as pipe:
        report_bytes = pipe.read()
    _, wait_status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(wait_status)
    report = json.loads(report_bytes) if report_bytes else {}
    if "message" in report:
        error_class = CommandUsageError if report["exit_code"] == 2 else CommandError
        raise error_class(report["message"])
    if code != 0 or "result" not in report:
        raise CommandError(f"{what} failed in its child process (exit status {code}).")
    return report["result"]


def _count_nothing_shared() -> None:
    """In a child of the master: keep out of the workers' counters directory.

    The child serves nothing, but what it does (migrating connects to the
    database) may send signals that :func:`framework.metrics.count` counts;
    counted there, ``/metrics`` would show one more process, and its signals.
    Anything it counts now stays in its own memory.
    """
    os.environ.pop(metrics.DIRECTORY_VARIABLE, None)
    metrics.disable()


def _close_databases(checkpoint: bool = False) -> None:
    """Close this process's database connections, if the ORM is in use.

    :param checkpoint: also let SQLite fold the write-ahead log of each file
        database back in and delete its ``-wal`` and ``-shm`` files (when no
        other process has it open): the master does, after its workers exit.
    """
    orm = sys.modules.get("framework.orm")
    if orm is None:
        return
    with contextlib.suppress(Exception):
        if checkpoint:
            orm.db.release_sqlite_files()
        else:
            orm.connections.reset()


def _report_failure(
    writer: int, status: int, message: str, cause: BaseException | None
) -> None:
    """In the child: hand the failure to the master, which reports it.

    The traceback, when ``--traceback`` asked for one, is printed here, where
    it happened.
    """
    ctx = click.get_current_context(silent=True)
    obj = ctx.find_object(CommandContext) if ctx is not None else None
    if obj is not None and obj.show_traceback and cause is not None:
        click.echo("".join(traceback.format_exception(cause)), err=True, nl=False)
    os.write(writer, json.dumps({"exit_code": status, "message": message}).encode())


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
        loader=_load_in_worker,
        access_log=not no_access_log,
    )
    # The app module may choose the settings (app_example/wsgi.py does), so
    # it is imported in the environment the workers get (--chdir, --env,
    # --pythonpath) before anything reads the settings.
    server.prepare_environment()
    obj.check_app()
    reload = bool(server.cfg.reload)
    if reload and server.cfg.preload_app:
        obj.echo(
            "Warning: --reload cannot reload code the master imported (--preload):"
            " workers restart with the old code. Drop --preload to reload.",
            err=True,
        )
    if reload and not server.cfg.preload_app:
        # NOTE: the master must not import the app: every worker it forks
        # would inherit the old modules, and a reload would change nothing.
        if no_migrate:
            warn_unapplied_migrations(obj.app_spec)
        else:
            migrate_before_fork(
                obj.app_spec, verbosity=min(obj.verbosity, 1), load=True
            )
    elif no_migrate:
        warn_unapplied_migrations(obj.app_spec)
    else:
        obj.load_project(require_app=True)
        server.application = obj.load_app()
        migrate_before_fork(obj.app_spec, verbosity=min(obj.verbosity, 1))
    try:
        prepare_metrics_directory()  # the workers' shared counters
    except MetricsDirectoryError as exc:
        raise CommandError(str(exc)) from None
    master = os.getpid()
    try:
        server.run()
    except HaltServer as exc:
        # NOTE: gunicorn lets this escape its arbiter when a second worker
        # fails to boot while it halts for the first; the workers' errors are
        # in the log above, so one line and gunicorn's exit status suffice.
        obj.echo(f"Error: {exc.reason}", err=True)
        raise click.exceptions.Exit(exc.exit_status) from None
    finally:
        if os.getpid() == master:  # workers unwind through here too
            _close_databases(checkpoint=True)


def _load_in_worker(spec: str) -> t.Any:
    """Import the app in a worker and set the project up (``framework.setup()``)."""
    from framework import bootstrap

    application = load_app(spec)
    bootstrap.setup()
    return application
