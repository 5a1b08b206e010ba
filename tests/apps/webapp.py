"""A small framework.App for ``routes`` and ``run``."""

from framework import App

app = App(__name__)


@app.route("/")
def index(request):
    return "hello from webapp"


@app.route("/items/<int:item_id>", methods=["GET", "POST"])
def item(request, item_id):
    return {"id": item_id}


@app.route("/about", endpoint="about_page")
def about(request):
    return "about"
