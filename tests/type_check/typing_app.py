"""Never run: mypy checks that the web API's decorators keep view types."""

from __future__ import annotations

from framework import App
from framework import Request
from framework import Response

app = App(__name__)


@app.route("/hello")
def hello(request: Request) -> str:
    return "Hello"


@app.route("/users/<int:user_id>", methods=["GET", "POST"], endpoint="user")
def user(request: Request, user_id: int) -> dict[str, int]:
    return {"id": user_id}


@app.errorhandler(404)
def not_found(request: Request, exc: Exception) -> tuple[str, int]:
    return "missing", 404


# The decorators return the view itself, with its own signature.
text: str = hello(Request({}))
data: dict[str, int] = user(Request({}), 1)
url: str = app.url_for("user", user_id=1)
response: Response = app.make_response("body")
