"""An app whose view fails, for ``run`` with and without the debugger."""

from framework import App

app = App(__name__)


@app.route("/")
def index(request):
    return "fine"


@app.route("/boom")
def boom(request):
    raise RuntimeError("kaboom from a view")
