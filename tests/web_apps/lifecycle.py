"""A fixture app with one view per response kind and failure mode.

Its POST views are ``csrf_exempt``: these tests are about the request's life,
CSRF has tests of its own (tests/test_csrf.py).
"""

from __future__ import annotations

import io
import typing as t

from werkzeug.utils import send_file

from framework import App
from framework import Response
from framework import abort
from framework import csrf_exempt

EVENTS: list[str] = []
"""Views append what happened (generator closed, file closed...)."""


def make_app() -> App:  # noqa: C901
    app = App(__name__)

    @app.route("/hello")
    def hello(request):
        return "Hello, World!"

    @app.route("/bytes")
    def raw(request):
        return b"\x00bytes"

    @app.route("/users/<int:user_id>")
    def user(request, user_id):
        return {"id": user_id, "name": "Ada"}

    @app.route("/list")
    def items(request):
        return [1, "two", None]

    @app.route("/created", methods=["POST"])
    @csrf_exempt
    def created(request):
        return "made", 201, {"X-Made": "yes"}

    @app.route("/response")
    def response(request):
        return Response("custom", status=202, mimetype="text/plain")

    @app.route("/stream")
    def stream(request):
        def generate():
            try:
                yield b"one,"
                yield b"two,"
                yield b"three"
            finally:
                EVENTS.append("generator closed")

        return Response(generate(), mimetype="text/plain")

    @app.route("/stream-error")
    def stream_error(request):
        def generate():
            yield b"start,"
            raise RuntimeError("broken stream")

        return Response(generate(), mimetype="text/plain")

    @app.route("/boom")
    def boom(request):
        raise RuntimeError("secret detail")

    @app.route("/exit")
    def leave(request):
        raise SystemExit(3)

    @app.route("/forbidden")
    def forbidden(request):
        abort(403)

    @app.route("/no-content")
    def no_content(request):
        return "", 204

    @app.route("/not-modified")
    def not_modified(request):
        return Response(status=304)

    @app.route("/file")
    def file(request):
        class Tracked(io.BytesIO):
            def close(self):
                EVENTS.append("file closed")
                super().close()

        return send_file(
            Tracked(b"file body"),
            request.environ,
            mimetype="text/plain",
            download_name="f.txt",
        )

    @app.route("/split-header")
    def split_header(request):
        return "x", 200, {"X-Evil": "a\r\nSet-Cookie: owned=1"}

    @app.route("/split-header-direct")
    def split_header_direct(request):
        response = Response("x")
        response.headers["X-Evil"] = "a\nb"
        return response

    @app.route("/control-header")
    def control_header(request):
        return "x", 200, {"X-Ctl": "a\x01b"}

    @app.route("/tab-header")
    def tab_header(request):
        return "x", 200, {"X-Ctl": "a\tb"}

    @app.route("/json", methods=["POST"])
    @csrf_exempt
    def echo_json(request):
        return {"got": request.get_json()}

    @app.route("/form", methods=["POST"])
    @csrf_exempt
    def form(request):
        return {"fields": len(request.form)}

    @app.route("/query")
    def query(request):
        return {"fields": len(request.args)}

    @app.route("/none")
    def none(request):
        return None

    @app.route("/dir/")
    def directory(request):
        return "dir"

    @app.route("/items/<name>", methods=["GET", "POST"])
    @csrf_exempt
    def item(request, name):
        return t.cast(str, name)

    @app.route("/template")
    def template(request):
        return app.render_template("hello.html", name="<b>Ada</b>")

    return app
