"""``framework loadtest``: load test app_example under gunicorn, with accounting.

The harness lives in ``bench/loadtest.py`` of a source checkout (it drives
app_example, which is not part of the installed package); this command finds
it next to the working directory or the installed project and runs it. See
``docs/loadtest.md``.
"""

from __future__ import annotations

import importlib
import pathlib
import sys
import types

import click

__all__ = ["loadtest"]


def _harness() -> types.ModuleType:
    candidates = [pathlib.Path.cwd(), pathlib.Path(__file__).resolve().parents[2]]
    for root in candidates:
        if (root / "bench" / "loadtest.py").is_file():
            if str(root) not in sys.path:
                sys.path.insert(0, str(root))
            return importlib.import_module("bench.loadtest")
    raise click.ClickException(
        "bench/loadtest.py was not found: run framework loadtest from a source"
        " checkout of the project (it drives app_example)."
    )


@click.command()
@click.option(
    "--worker-class",
    type=click.Choice(["sync", "gthread"]),
    default="sync",
    show_default=True,
    help="gunicorn worker class.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Workers per instance (default: connections + 1 for sync, 2 for gthread).",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=4,
    show_default=True,
    help="Threads per gthread worker.",
)
@click.option(
    "--database",
    type=click.Choice(["sqlite", "postgres"]),
    default="sqlite",
    show_default=True,
    help="A fresh SQLite file, or a fresh database on 127.0.0.1:5432.",
)
@click.option(
    "--requests",
    type=click.IntRange(min=1),
    default=2000,
    show_default=True,
    help="Total requests (rounded down to whole phases and connections).",
)
@click.option(
    "--connections",
    type=click.IntRange(min=1),
    default=4,
    show_default=True,
    help="Concurrent connections, over every instance.",
)
@click.option(
    "--phases",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="Progress is reported after each phase.",
)
@click.option(
    "--instances",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="gunicorn masters on separate ports sharing the database (scale-out).",
)
@click.option(
    "--generator",
    type=click.Choice(["auto", "wrk", "locust", "python"]),
    default="auto",
    show_default=True,
    help="Load generator: wrk, else locust (loadtest extra), else a Python client.",
)
@click.option(
    "-c",
    "--config",
    "config_file",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="A gunicorn configuration file for the servers (settings, hooks).",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default="loadtest-results",
    show_default=True,
    help="Directory for results.json, latency.png and the server logs.",
)
@click.option("--no-chart", is_flag=True, help="Do not draw latency.png.")
def loadtest(
    worker_class: str,
    workers: int | None,
    threads: int,
    database: str,
    requests: int,
    connections: int,
    phases: int,
    instances: int,
    generator: str,
    config_file: str | None,
    out: str,
    no_chart: bool,
) -> None:
    """Load test app_example under gunicorn and check the signal accounting.

    Exits with status 1 when the accounting does not balance.
    """
    harness = _harness()
    try:
        result = harness.run(
            worker_class=worker_class,
            workers=workers,
            threads=threads,
            database=database,
            requests=requests,
            connections=connections,
            phases=phases,
            instances=instances,
            generator=generator,
            config_file=config_file,
            out_dir=out,
            chart=not no_chart,
            echo=click.echo,
        )
    except (RuntimeError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    if not result["balanced"]:
        raise click.exceptions.Exit(1)
