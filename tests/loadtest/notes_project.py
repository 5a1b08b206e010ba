"""What the load-test tests share: a small app, its scenario, running the command.

The command runs in a subprocess (it starts servers; its environment and
imports stay out of the test process), in the project directory, the way a
user runs it.
"""

from __future__ import annotations

import json
import shutil

import pytest

NOTES_APP = '''\
"""A small app: a page, a JSON route, a streamed route, a route that raises."""

from framework import App
from framework import Response
from framework import metrics

app = App(__name__)


@app.route("/")
def page(request):
    return "<h1>Notes</h1>"


@app.route("/api/notes")
def notes(request):
    return {"notes": ["first", "second"]}


@app.route("/export.csv")
def export(request):
    def rows():
        for number in range(40):
            yield f"{number},note {number}\\n".encode()

    return Response(rows(), mimetype="text/csv")


@app.route("/boom")
def boom(request):
    raise RuntimeError("raised on purpose")


@app.route("/api/notes/new", methods=["POST"])
def add_note(request):
    return {"created": request.get_json()["text"]}, 201


app.add_route("/metrics", metrics.view)
'''

NOTES_SCENARIO = """\
[values]
word = ["alpha", "beta", "gamma"]

[[request]]
name = "page"
weight = 3
path = "/"

[[request]]
name = "api"
weight = 3
path = "/api/notes"

[[request]]
name = "export"
path = "/export.csv"

[[request]]
name = "add"
weight = 2
method = "POST"
path = "/api/notes/new"
json = { text = "${word} ${unique}" }
expect = 201

[[request]]
name = "boom"
path = "/boom"
expect = 500
"""

FAULT_CONFIG = """\
from framework import signals


def post_worker_init(worker):
    # The fault: this worker's request_finished counter is gone.
    signals.request_finished.disconnect(dispatch_uid="framework.metrics")
"""

needs_wrk = pytest.mark.skipif(
    shutil.which("wrk") is None, reason="wrk is not installed (apt-get install wrk)"
)


def listing(root):
    """Every path under ``root`` (to show nothing was written there)."""
    return sorted(str(path.relative_to(root)) for path in root.rglob("*"))


class Run:
    """The outcome of one ``framework loadtest`` process."""

    def __init__(self, result, out):
        self.code = result.returncode
        self.stdout = result.stdout
        self.stderr = result.stderr
        self.out = out

    @property
    def results(self):
        return json.loads((self.out / "results.json").read_text())

    def failed_checks(self):
        return [
            check["name"] for check in self.results["checks"] if not check["passed"]
        ]
