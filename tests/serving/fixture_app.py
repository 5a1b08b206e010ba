"""A tiny framework app for the serving tests: logs its request signals.

Receivers of request_started / request_finished append "started <path>" /
"finished <path> <status>" lines to ``$FIXTURE_LOG_DIR/<pid>.log``, so a test
can check, after the server stopped, that every request that started also
finished, receivers included. ``/metrics`` is framework.metrics' view.
"""

from __future__ import annotations

import os
import time

from framework import App
from framework import metrics
from framework import receiver
from framework import signals

LOG_DIR = os.environ.get("FIXTURE_LOG_DIR", "")

app = App(__name__)


def _log(line: str) -> None:
    if LOG_DIR:
        with open(os.path.join(LOG_DIR, f"{os.getpid()}.log"), "a") as file:
            file.write(line + "\n")


@receiver(signals.request_started, sender=App)
def log_started(sender, *, environ, **kwargs):
    _log(f"started {environ['PATH_INFO']}")


@receiver(signals.request_finished, sender=App)
def log_finished(sender, *, environ, status, **kwargs):
    _log(f"finished {environ['PATH_INFO']} {status}")


@app.route("/")
@app.route("/hello")
def hello(request):
    return f"pid={os.getpid()}\n"


@app.route("/slow")
def slow(request):
    time.sleep(int(request.args.get("ms", "500")) / 1000)
    return f"pid={os.getpid()}\n"


app.add_route("/metrics", metrics.view)
