"""``framework loadtest``: load test the app under gunicorn, with signal accounting.

A thin command over :func:`framework.loadtest.run`; see ``docs/loadtest.md``.
Exit status 0 when the books balance, 1 when they do not (or the run could not
finish), 2 for a usage error (bad option, scenario, app, ``--url`` or
``--check``), always with one line of explanation and no traceback.
"""

from __future__ import annotations

import typing as t

import click

from ..loadtest import LoadTestError
from ..loadtest import Options
from ..loadtest import UsageError
from ..loadtest import run
from . import CommandContext
from . import CommandError
from . import CommandUsageError
from . import pass_context
from . import verbosity_option

__all__ = ["loadtest"]


def _parse_env(
    ctx: click.Context, param: click.Parameter, value: tuple[str, ...]
) -> dict[str, str]:
    env = {}
    for item in value:
        name, sep, text = item.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{item!r}: give NAME=VALUE.")
        env[name] = text
    return env


@click.command()
@click.option(
    "--scenario",
    type=click.Path(dir_okay=False),
    default=None,
    help="A scenario file (TOML). Default: every GET route without parameters.",
)
@click.option(
    "--locustfile",
    type=click.Path(dir_okay=False),
    default=None,
    help="Your own locustfile instead of a scenario (implies --generator locust).",
)
@click.option(
    "-n",
    "--requests",
    type=click.IntRange(min=1),
    default=None,
    help="Requests in all (default 1000 unless --duration).",
)
@click.option(
    "-d",
    "--duration",
    type=click.FloatRange(min=0.1),
    default=None,
    help="Seconds of load, instead of a number of requests.",
)
@click.option(
    "-c",
    "--connections",
    type=click.IntRange(min=1),
    default=4,
    show_default=True,
    help="Concurrent connections, over every instance.",
)
@click.option(
    "-w",
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="gunicorn workers per instance (default: connections + 1 for sync, 2 for"
    " gthread).",
)
@click.option(
    "-k",
    "--worker-class",
    type=click.Choice(["sync", "gthread"]),
    default=None,
    help="gunicorn worker class (default sync).",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    help="Threads per gthread worker (default 4).",
)
@click.option(
    "--generator",
    type=click.Choice(["wrk", "locust"]),
    default=None,
    help="Load generator (default: wrk if installed, else locust).",
)
@click.option(
    "--locust-workers",
    type=click.IntRange(min=0),
    default=0,
    help="Local Locust worker processes under a headless master (distributed mode).",
)
@click.option(
    "--locust-remote-workers",
    type=click.IntRange(min=0),
    default=0,
    help="Locust workers the master waits for from other hosts (needs --url).",
)
@click.option(
    "--locust-master-port",
    type=click.IntRange(min=1, max=65535),
    default=None,
    help="The Locust master's port (default: a free one).",
)
@click.option(
    "--url",
    "urls",
    multiple=True,
    help="Load a running deployment (repeat for several instances); its books"
    " are read from its /metrics.",
)
@click.option(
    "--instances",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="gunicorn masters to start, on separate ports.",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="A gunicorn configuration file for the servers (settings, hooks).",
)
@click.option(
    "--env",
    "env",
    multiple=True,
    callback=_parse_env,
    metavar="NAME=VALUE",
    help="Environment of the servers (repeatable; after the scenario's).",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default=None,
    help="Directory for results.json, report.html and the logs.",
)
@click.option(
    "--check",
    default=None,
    metavar="MODULE:FUNCTION",
    help="Called with the results after the servers stop; returns failed checks.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=10.0,
    show_default=True,
    help="Seconds a request may take.",
)
@verbosity_option
@pass_context
def loadtest(
    obj: CommandContext,
    scenario: str | None,
    locustfile: str | None,
    requests: int | None,
    duration: float | None,
    connections: int,
    workers: int | None,
    worker_class: str | None,
    threads: int | None,
    generator: str | None,
    locust_workers: int,
    locust_remote_workers: int,
    locust_master_port: int | None,
    urls: tuple[str, ...],
    instances: int,
    config_file: str | None,
    env: dict[str, str],
    out: str | None,
    check: str | None,
    timeout: float,
) -> dict[str, t.Any]:
    """Load test the app under gunicorn and check the signal accounting.

    Starts --instances gunicorn masters (framework serve) on free 127.0.0.1
    ports, or takes running deployments with --url, drives the scenario with
    wrk or Locust, then checks that every request the generator completed got
    one request_started and one request_finished on its server. Exit status 0
    when the books balance, 1 when they do not, 2 for a usage error. Returns
    the results.
    """
    options = Options(
        app_spec=obj.app_spec,
        scenario=scenario,
        locustfile=locustfile,
        requests=requests,
        duration=duration,
        connections=connections,
        workers=workers,
        worker_class=worker_class,
        threads=threads,
        generator=generator,
        locust_workers=locust_workers,
        locust_remote_workers=locust_remote_workers,
        locust_master_port=locust_master_port,
        urls=list(urls),
        instances=instances,
        config_file=config_file,
        out=out,
        check=check,
        env=env,
        timeout=timeout,
    )

    def echo(message: str) -> None:
        obj.echo(message)

    def load(spec: str) -> t.Any:
        # The CLI's own loading: a missing app says how to name one (and
        # not that the example app, the last resort, cannot be imported).
        try:
            obj.check_app()
        except CommandUsageError as exc:
            raise UsageError(exc.message) from None
        return obj.load_app()

    try:
        results = run(
            options,
            echo=echo,
            live=obj.interactive_output and obj.verbosity >= 1,
            load_app=load,
        )
    except UsageError as exc:
        raise CommandUsageError(str(exc)) from None
    except LoadTestError as exc:
        raise CommandError(str(exc)) from None
    if not results["balanced"]:
        raise click.exceptions.Exit(1)
    return results
