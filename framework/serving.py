"""Serve a WSGI application with gunicorn, in process, through its application API.

:class:`GunicornApplication` is what ``framework serve`` runs. It is an ordinary
gunicorn application (a :class:`gunicorn.app.base.Application`), so every gunicorn
setting works, read from the same places and with the same precedence as the
``gunicorn`` command, lowest first:

1. the framework's defaults (:func:`default_options`): bind ``127.0.0.1:8000``,
   ``WEB_CONCURRENCY`` or ``2 * cores + 1`` sync workers, access log on stdout,
   no control socket (gunicorn 24+);
2. a gunicorn configuration file: the one given with ``config_file``, else the
   one named by ``--config`` in ``GUNICORN_CMD_ARGS``, else ``./gunicorn.conf.py``
   when it exists;
3. ``GUNICORN_CMD_ARGS`` from the environment;
4. the options given to the constructor (the command line of ``framework serve``).

Outside ``DEBUG``, serving refuses to start with an empty or placeholder
``SECRET_KEY`` (:func:`framework.security.check_secret_key`): the master when
it holds the application, otherwise each worker as it imports it (gunicorn then
stops, "Worker failed to boot").

Worker lifecycle: database connections are never shared between processes.
:mod:`framework.orm`, when it is imported at all, registers an
``os.register_at_fork`` hook that makes a child forget (without closing) every
connection it inherited, and checks the process id before using one; and
``framework serve`` migrates in a child process, so the master never connects.
Nothing here imports the ORM, so a web-only app never pays for SQLAlchemy.

Request-signal counters (:mod:`framework.metrics`): every worker connects them
in its ``post_worker_init`` hook, before any hook of the configuration file runs,
so any app has them without a line of code, and a ``/metrics`` view
(:func:`framework.metrics.view`) shows every worker's numbers whichever worker
answers. They are kept in ``FRAMEWORK_METRICS_DIR`` when it is set; otherwise the
master makes a directory of its own for them (mode 0700, removed when it
exits). ``FRAMEWORK_METRICS=off`` leaves them out.

Worker memory: when the application is imported in the master (``framework
serve`` always does unless ``--no-migrate``; ``--preload`` does too), the master
runs a full collection, hands the freed heap back to the system
(:func:`trim_heap`) and then runs :func:`gc.freeze` before the workers are
forked, as the :mod:`gc` documentation advises: the garbage collector of a worker
then never walks (and so never writes to) the objects it inherited, and their
pages stay shared with the master instead of being copied into every worker.
"""

from __future__ import annotations

import atexit
import collections.abc as cabc
import gc
import os
import shutil
import sys
import tempfile
import typing as t

from gunicorn.app.base import Application
from gunicorn.errors import HaltServer

from . import metrics
from .security import check_secret_key

if t.TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

__all__ = [
    "DEFAULT_BIND",
    "DEFAULT_CONFIG_FILE",
    "GunicornApplication",
    "default_options",
    "default_workers",
    "enable_worker_metrics",
    "freeze_heap",
    "metrics_enabled",
    "prepare_metrics_directory",
    "trim_heap",
]

DEFAULT_BIND = "127.0.0.1:8000"
"""Where ``framework serve`` listens unless told otherwise: loopback only."""

DEFAULT_CONFIG_FILE = "gunicorn.conf.py"
"""The configuration file read from the working directory when it exists."""


def default_workers() -> int:
    """Return the default number of worker processes.

    ``WEB_CONCURRENCY`` from the environment when set (as gunicorn and most
    platforms do), otherwise ``2 * cores + 1``, gunicorn's own rule of thumb for
    sync workers that spend part of their time waiting on the database.

    :returns: the worker count, at least 1.
    """
    raw = os.environ.get("WEB_CONCURRENCY", "").strip()
    if raw:
        return max(1, int(raw))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 0
    return 2 * (cores or os.cpu_count() or 1) + 1


def default_options() -> dict[str, t.Any]:
    """Return the framework's defaults for gunicorn settings.

    :returns: gunicorn setting names mapped to values.
    """
    return {
        "bind": [DEFAULT_BIND],
        "workers": default_workers(),
        "worker_class": "sync",
        "accesslog": "-",
        # Off unless asked for: by default every master on a host would share
        # one control socket path (~/.gunicorn/gunicorn.ctl), and several
        # instances side by side is how ``framework serve`` scales out.
        "control_socket_disable": True,
    }


class GunicornApplication(Application):  # type: ignore[misc]
    """A gunicorn application serving a WSGI callable or an ``module:attr`` spec.

    :param app: the WSGI callable, or a spec that ``loader`` resolves in each
        worker (so the master stays free of the application unless preloaded).
    :param options: gunicorn settings by name (``"workers"``, ``"bind"``, ...);
        ``None`` values are ignored, so unset command line options fall through.
    :param config_file: a gunicorn configuration file to read.
    :param loader: resolves ``app`` when it is a string; defaults to
        :func:`gunicorn.util.import_app`.
    :param access_log: ``False`` turns the access log off, whatever the
        configuration file says.
    """

    def __init__(
        self,
        app: WSGIApplication | str,
        options: cabc.Mapping[str, t.Any] | None = None,
        *,
        config_file: str | None = None,
        loader: cabc.Callable[[str], WSGIApplication] | None = None,
        access_log: bool = True,
    ) -> None:
        self.application = app
        self.options = {
            name: value for name, value in (options or {}).items() if value is not None
        }
        self.config_file = config_file
        self.loader = loader
        self.access_log = access_log
        self._arbiter: t.Any = None
        super().__init__(usage="framework serve", prog="framework serve")

    def load_config(self) -> None:
        """Resolve the settings in the documented order of precedence."""
        for name, value in default_options().items():
            if name in self.cfg.settings:
                self.cfg.set(name, value)
        parser = self.cfg.parser()
        env_args = parser.parse_args(self.cfg.get_cmd_args_from_env())
        config_file = self.config_file or env_args.config
        if not config_file and os.path.exists(DEFAULT_CONFIG_FILE):
            config_file = DEFAULT_CONFIG_FILE
        if config_file:
            self.load_config_from_file(config_file)
        for name, value in vars(env_args).items():
            if value is not None and name not in ("args", "config"):
                self.cfg.set(name.lower(), value)
        for name, value in self.options.items():
            key = name.lower()
            if key not in self.cfg.settings:
                raise ValueError(f"{name!r} is not a gunicorn setting.")
            self.cfg.set(key, value)
        if not self.access_log:
            self.cfg.set("accesslog", None)
        self._chain_hooks()
        self.chdir()

    def _chain_hooks(self) -> None:
        """Run the framework's hooks before the configuration file's."""
        configured = self.cfg.post_worker_init
        configured_on_starting = self.cfg.on_starting

        def post_worker_init(worker: t.Any) -> None:
            enable_worker_metrics(worker)
            configured(worker)

        def on_starting(arbiter: t.Any) -> None:
            self._arbiter = arbiter
            configured_on_starting(arbiter)

        self.cfg.set("post_worker_init", post_worker_init)
        self.cfg.set("on_starting", on_starting)

    def prepare_environment(self) -> None:
        """Apply the settings that shape the process, as the master will.

        ``--chdir`` is applied as the configuration is read; this adds
        ``--env`` (``raw_env``) to ``os.environ`` and ``--pythonpath`` to
        :data:`sys.path`, which gunicorn itself does only once it runs. Call it
        before importing the application in this process (``framework serve``
        does, to migrate first), so that the import sees what the workers see.
        """
        os.environ.update(self.cfg.env)
        for path in reversed((self.cfg.pythonpath or "").split(",")):
            if path.strip():
                absolute = os.path.abspath(path.strip())
                if absolute not in sys.path:
                    sys.path.insert(0, absolute)

    def load(self) -> WSGIApplication:
        """Return the WSGI callable, importing it in the worker if given as a spec."""
        if not isinstance(self.application, str):
            return self.application
        if self.loader is not None:
            application = self.loader(self.application)
        else:
            from gunicorn.util import import_app

            application = t.cast("WSGIApplication", import_app(self.application))
        check_secret_key()
        if not self.cfg.preload_app:  # in a worker: hand back what importing freed
            gc.collect()
            trim_heap()
        return application

    def wsgi(self) -> WSGIApplication:
        """Return the WSGI callable; loaded in the master (preload), freeze the heap.

        :returns: the application.
        """
        # With preload_app the master loads first (workers then inherit the
        # callable); without it, only workers ever load. An application
        # object given was frozen by run() already.
        in_master = (
            self.cfg.preload_app
            and self.callable is None
            and isinstance(self.application, str)
        )
        application = t.cast("WSGIApplication", super().wsgi())
        if in_master:
            freeze_heap()
        return application

    def run(self) -> None:
        """Run the gunicorn master; an application object given is frozen first.

        The workers' counters directory is checked (or made) first, so a
        directory that is not safe to use stops the master with one message
        instead of every worker failing to boot.

        :raises ImproperlyConfigured: an application object was given and
            ``SECRET_KEY`` is unusable (:func:`framework.security.check_secret_key`;
            an application given as a spec is checked where it is imported).
        :raises gunicorn.errors.HaltServer: workers failed to boot and gunicorn
            could not halt by itself; every worker has been stopped first.
        """
        prepare_metrics_directory()
        if not isinstance(self.application, str):
            check_secret_key()
            freeze_heap()
        try:
            super().run()
        except HaltServer:
            # NOTE: gunicorn lets HaltServer escape its halt when a second
            # worker fails to boot while the master stops the others, and
            # the stop is cut short: the workers still booting would outlive
            # the master. Each failed stop has reaped one of them, so
            # stopping again until it completes ends.
            _stop_workers(self._arbiter)
            raise


def _stop_workers(arbiter: t.Any) -> None:
    """Stop an arbiter's workers, past the boot failures that cut a stop short."""
    if arbiter is None:
        return
    for _attempt in range(len(arbiter.WORKERS) + 1):
        try:
            arbiter.stop()
            return
        except HaltServer:
            continue


def metrics_enabled() -> bool:
    """Return whether workers count the request signals (``FRAMEWORK_METRICS``)."""
    switch = os.environ.get(metrics.SWITCH_VARIABLE, "").strip().lower()
    return switch not in ("off", "0", "false", "no")


def prepare_metrics_directory() -> str | None:
    """Give the workers about to be forked a shared counters directory.

    ``FRAMEWORK_METRICS_DIR`` when set (checked, created with mode 0700 when
    missing); otherwise a new temporary directory, exported in that variable
    for the workers and removed when this process exits.

    :returns: the directory, or ``None`` when the counters are switched off.
    :raises framework.metrics.MetricsDirectoryError: the directory is not safe.
    """
    if not metrics_enabled():
        return None
    directory = os.environ.get(metrics.DIRECTORY_VARIABLE, "")
    if directory:
        metrics.check_directory(directory)
        return directory
    directory = tempfile.mkdtemp(prefix="framework-metrics-")
    os.environ[metrics.DIRECTORY_VARIABLE] = directory
    owner = os.getpid()

    def remove() -> None:
        # NOTE: forked workers inherit atexit handlers; only the master that
        # made the directory removes it.
        if os.getpid() == owner:
            shutil.rmtree(directory, ignore_errors=True)

    atexit.register(remove)
    return directory


def enable_worker_metrics(worker: t.Any) -> None:
    """Connect the request-signal counters in a gunicorn worker.

    The framework's ``post_worker_init`` hook calls it. A sync worker serves
    one request at a time, so its counters skip their lock.

    :param worker: the gunicorn worker.
    """
    if not metrics_enabled():
        return
    from gunicorn.workers.sync import SyncWorker

    metrics.enable(threads=not isinstance(worker, SyncWorker))


def freeze_heap() -> None:
    """Collect garbage, then move every object the collector tracks out of its reach.

    Called in the master before the workers are forked: a worker's collections
    then never touch the inherited objects, so copy-on-write keeps their pages
    shared (see :func:`gc.freeze`). In between, the heap memory that importing
    the application freed is handed back to the system (:func:`trim_heap`), so no
    worker starts out with it.
    """
    gc.collect()
    trim_heap()
    gc.freeze()


def trim_heap() -> None:
    """Return the C heap's free memory to the system (glibc's ``malloc_trim``).

    Importing an application frees a lot of memory (compiler and importer
    temporaries) that the C allocator otherwise keeps: about 1.6 MiB after
    importing app_example. A no-op where the C library has no ``malloc_trim``.
    """
    global _malloc_trim
    if _malloc_trim is None:
        _malloc_trim = _find_malloc_trim()
    _malloc_trim(0)


def _find_malloc_trim() -> cabc.Callable[[int], int]:
    try:
        import ctypes

        return t.cast("cabc.Callable[[int], int]", ctypes.CDLL(None).malloc_trim)
    except (ImportError, OSError, AttributeError):  # not glibc
        return lambda pad: 0


_malloc_trim: cabc.Callable[[int], int] | None = None
