"""In-process cost per request: framework against its peers.

Each app serves ``GET /hello`` (13 bytes of text) and ``GET /users/<int:id>``
(a small JSON object). A request is: copy a prepared WSGI environ, call the
app, consume the body, call ``close()``. The apps take turns in every round
(so a change of load hits them alike) and the best round of each is printed,
in microseconds per request.

Then every common request/response pattern (:data:`PATTERNS`: an explicit
``Response``, headers and a cookie, a redirect, a generator body, query
arguments, a form POST, ``send_file``, an error handler, ``abort(404)``, plus
the ``str`` and ``dict`` views above) is measured the same way for the
framework, Falcon and Flask, each with its own idiomatic view (in CPU time
of the process), and printed with the framework's ratio to each.

    python bench/requests.py [--rounds 5] [--number 20000] [--only NAME ...]
                             [--patterns-only] [--no-patterns]
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import json
import os
import statistics
import sys
import tempfile
import time
import types
import typing as t

HELLO = "Hello, World!"


def make_environ(path: str) -> dict[str, t.Any]:
    return {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "localhost",
        "HTTP_ACCEPT": "*/*",
        "HTTP_USER_AGENT": "bench",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }


def user_data(user_id: int) -> dict[str, t.Any]:
    return {"id": user_id, "name": "Ada", "email": "ada@example.com"}


# Apps ------------------------------------------------------------------------


def bare_app() -> t.Any:
    hello = HELLO.encode()

    def app(environ: dict[str, t.Any], start_response: t.Any) -> list[bytes]:
        path = environ["PATH_INFO"]
        if path == "/hello":
            body = hello
            ctype = "text/plain; charset=utf-8"
        elif path.startswith("/users/"):
            body = json.dumps(user_data(int(path[7:]))).encode()
            ctype = "application/json"
        else:
            start_response("404 Not Found", [("Content-Length", "0")])
            return []
        start_response(
            "200 OK", [("Content-Type", ctype), ("Content-Length", str(len(body)))]
        )
        return [body]

    return app


def framework_app() -> t.Any:
    from framework import App

    app = App("bench")

    @app.route("/hello")
    def hello(request: t.Any) -> str:
        return HELLO

    @app.route("/users/<int:user_id>")
    def user(request: t.Any, user_id: int) -> dict[str, t.Any]:
        return user_data(user_id)

    return app


def falcon_app() -> t.Any:
    import falcon

    class Hello:
        def on_get(self, req: t.Any, resp: t.Any) -> None:
            resp.content_type = falcon.MEDIA_TEXT
            resp.text = HELLO

    class User:
        def on_get(self, req: t.Any, resp: t.Any, user_id: int) -> None:
            resp.media = user_data(user_id)

    app = falcon.App()
    app.add_route("/hello", Hello())
    app.add_route("/users/{user_id:int}", User())
    return app


def bottle_app() -> t.Any:
    import bottle

    app = bottle.Bottle()

    @app.get("/hello")
    def hello() -> str:
        return HELLO

    @app.get("/users/<user_id:int>")
    def user(user_id: int) -> dict[str, t.Any]:
        return user_data(user_id)

    return app


def flask_app() -> t.Any:
    import flask

    app = flask.Flask("bench")

    @app.get("/hello")
    def hello() -> str:
        return HELLO

    @app.get("/users/<int:user_id>")
    def user(user_id: int) -> dict[str, t.Any]:
        return user_data(user_id)

    return app


def django_app() -> t.Any:
    import django
    from django.conf import settings

    urls = types.ModuleType("bench_django_urls")
    sys.modules[urls.__name__] = urls
    settings.configure(
        DEBUG=False,
        SECRET_KEY="bench",
        ROOT_URLCONF=urls.__name__,
        ALLOWED_HOSTS=["localhost"],
        MIDDLEWARE=[],
        INSTALLED_APPS=[],
        USE_TZ=True,
    )
    django.setup()
    from django.core.wsgi import get_wsgi_application
    from django.http import HttpResponse
    from django.http import JsonResponse
    from django.urls import path

    def hello(request: t.Any) -> t.Any:
        return HttpResponse(HELLO, content_type="text/plain")

    def user(request: t.Any, user_id: int) -> t.Any:
        return JsonResponse(user_data(user_id))

    urls.urlpatterns = [  # type: ignore[attr-defined]
        path("hello", hello),
        path("users/<int:user_id>", user),
    ]
    return get_wsgi_application()


# Patterns: what real views do --------------------------------------------------


class Pattern(t.NamedTuple):
    """One request of the pattern table and the status every app answers."""

    name: str
    path: str
    status: str
    method: str = "GET"
    query: str = ""
    body: bytes = b""
    content_type: str = ""


FORM_BODY = b"name=Ada&email=ada%40example.com"
PATTERNS = [
    Pattern("return str", "/p/str", "200"),
    Pattern("return dict (JSON)", "/p/dict", "200"),
    Pattern("Response(text, mimetype)", "/p/response", "200"),
    Pattern("+ header + set_cookie", "/p/cookie", "200"),
    Pattern("redirect('/x')", "/p/redirect", "302"),
    Pattern("Response(generator)", "/p/stream", "200"),
    Pattern("request.args.get x2", "/p/args", "200", query="q=books&page=2"),
    Pattern(
        "request.form.get (POST)",
        "/p/form",
        "200",
        method="POST",
        body=FORM_BODY,
        content_type="application/x-www-form-urlencoded",
    ),
    Pattern("send_file (1 KiB)", "/p/file", "200"),
    Pattern("error handler response", "/p/handled", "409"),
    Pattern("abort(404)", "/p/abort", "404"),
]
"""Rows of the pattern table, in order."""

_FILE_DIR = tempfile.mkdtemp(prefix="bench-requests-")
SEND_FILE = os.path.join(_FILE_DIR, "data.txt")
with open(SEND_FILE, "wb") as _file:
    _file.write(b"x" * 1024)


class Conflict(Exception):
    """Raised by the error-handler views; each app turns it into a 409."""


def chunks() -> t.Iterator[bytes]:
    yield b"Hello, "
    yield b"World"
    yield b"!"


def framework_patterns() -> t.Any:
    from framework import App
    from framework import Response
    from framework import abort
    from framework import csrf_exempt
    from framework import redirect
    from framework import send_file

    app = App("bench")
    route = app.route

    route("/p/str", endpoint="str")(lambda request: HELLO)
    route("/p/dict", endpoint="dict")(lambda request: user_data(42))

    @route("/p/response")
    def response(request: t.Any) -> t.Any:
        return Response(HELLO, mimetype="text/plain")

    @route("/p/cookie")
    def cookie(request: t.Any) -> t.Any:
        response = Response(HELLO, mimetype="text/plain")
        response.headers["X-Frame-Options"] = "DENY"
        response.set_cookie("session", "abc", secure=True, httponly=True)
        return response

    route("/p/redirect", endpoint="redirect")(lambda request: redirect("/x"))

    @route("/p/stream")
    def stream(request: t.Any) -> t.Any:
        return Response(chunks(), mimetype="text/plain")

    @route("/p/args")
    def args(request: t.Any) -> str:
        return f"{request.args.get('q')} {request.args.get('page')}"

    @route("/p/form", methods=["POST"])
    @csrf_exempt  # the peers' views check no CSRF token either
    def form(request: t.Any) -> str:
        return f"{request.form.get('name')}"

    @route("/p/file")
    def file(request: t.Any) -> t.Any:
        return send_file(request, SEND_FILE)

    @route("/p/handled")
    def handled(request: t.Any) -> t.Any:
        raise Conflict()

    @app.errorhandler(Conflict)
    def conflict(request: t.Any, exc: Exception) -> t.Any:
        return "conflict", 409

    @route("/p/abort")
    def aborted(request: t.Any) -> t.Any:
        abort(404)

    return app


def falcon_patterns() -> t.Any:
    import falcon

    def text(resp: t.Any) -> None:
        resp.content_type = falcon.MEDIA_TEXT
        resp.text = HELLO

    class Str:
        def on_get(self, req: t.Any, resp: t.Any) -> None:
            resp.content_type = falcon.MEDIA_HTML
            resp.text = HELLO

    class Dict:
        def on_get(self, req: t.Any, resp: t.Any) -> None:
            resp.media = user_data(42)

    class Text:
        def on_get(self, req: t.Any, resp: t.Any) -> None:
            text(resp)

    class Cookie:
        def on_get(self, req: t.Any, resp: t.Any) -> None:
            text(resp)
            resp.set_header("X-Frame-Options", "DENY")
            resp.set_cookie("session", "abc")  # secure, http_only by default

    class Redirect:
        def on_get(self, req: t.Any, resp: t.Any) -> None:
            raise falcon.HTTPFound("/x")

    class Stream:
        def on_get(self, req: t.Any, resp: t.Any) -> None:
            resp.content_type = falcon.MEDIA_TEXT
            resp.stream = chunks()

    class Args:
        def on_get(self, req: t.Any, resp: t.Any) -> None:
            resp.content_type = falcon.MEDIA_HTML
            resp.text = f"{req.get_param('q')} {req.get_param('page')}"

    class Form:
        def on_post(self, req: t.Any, resp: t.Any) -> None:
            resp.content_type = falcon.MEDIA_HTML
            resp.text = f"{req.get_media().get('name')}"

    class File:
        def on_get(self, req: t.Any, resp: t.Any) -> None:
            resp.content_type = falcon.MEDIA_TEXT
            resp.set_stream(open(SEND_FILE, "rb"), os.path.getsize(SEND_FILE))

    class Handled:
        def on_get(self, req: t.Any, resp: t.Any) -> None:
            raise Conflict()

    def conflict(req: t.Any, resp: t.Any, ex: Exception, params: t.Any) -> None:
        resp.status = falcon.HTTP_409
        resp.content_type = falcon.MEDIA_HTML
        resp.text = "conflict"

    class Abort:
        def on_get(self, req: t.Any, resp: t.Any) -> None:
            raise falcon.HTTPNotFound()

    app = falcon.App()
    for path, resource in [
        ("/p/str", Str()),
        ("/p/dict", Dict()),
        ("/p/response", Text()),
        ("/p/cookie", Cookie()),
        ("/p/redirect", Redirect()),
        ("/p/stream", Stream()),
        ("/p/args", Args()),
        ("/p/form", Form()),
        ("/p/file", File()),
        ("/p/handled", Handled()),
        ("/p/abort", Abort()),
    ]:
        app.add_route(path, resource)
    app.add_error_handler(Conflict, conflict)
    return app


def flask_patterns() -> t.Any:
    import flask

    app = flask.Flask("bench")
    app.get("/p/str", endpoint="str")(lambda: HELLO)
    app.get("/p/dict", endpoint="dict")(lambda: user_data(42))

    @app.get("/p/response")
    def response() -> t.Any:
        return flask.Response(HELLO, mimetype="text/plain")

    @app.get("/p/cookie")
    def cookie() -> t.Any:
        response = flask.Response(HELLO, mimetype="text/plain")
        response.headers["X-Frame-Options"] = "DENY"
        response.set_cookie("session", "abc", secure=True, httponly=True)
        return response

    app.get("/p/redirect", endpoint="redirect")(lambda: flask.redirect("/x"))

    @app.get("/p/stream")
    def stream() -> t.Any:
        return flask.Response(chunks(), mimetype="text/plain")

    @app.get("/p/args")
    def args() -> str:
        request = flask.request
        return f"{request.args.get('q')} {request.args.get('page')}"

    @app.post("/p/form")
    def form() -> str:
        return f"{flask.request.form.get('name')}"

    @app.get("/p/file")
    def file() -> t.Any:
        return flask.send_file(SEND_FILE)

    @app.get("/p/handled")
    def handled() -> t.Any:
        raise Conflict()

    @app.errorhandler(Conflict)
    def conflict(exc: Exception) -> t.Any:
        return "conflict", 409

    @app.get("/p/abort")
    def aborted() -> t.Any:
        flask.abort(404)

    return app


PATTERN_APPS: list[tuple[str, t.Callable[[], t.Any]]] = [
    ("framework", framework_patterns),
    ("falcon", falcon_patterns),
    ("flask", flask_patterns),
]


def pattern_environ(pattern: Pattern) -> dict[str, t.Any]:
    environ = make_environ(pattern.path)
    environ["REQUEST_METHOD"] = pattern.method
    environ["QUERY_STRING"] = pattern.query
    if pattern.body:
        environ["CONTENT_TYPE"] = pattern.content_type
        environ["CONTENT_LENGTH"] = str(len(pattern.body))
    return environ


def run_pattern(app: t.Any, pattern: Pattern, number: int) -> float:
    """Return the mean cost of ``number`` requests of ``pattern``, in seconds.

    A fresh environ per request (and a fresh body stream for a POST: each
    app reads it), as in :func:`per_request`.
    """
    environ = pattern_environ(pattern)
    body = pattern.body
    bytes_io = io.BytesIO
    gc.collect()
    # CPU time of this process, not wall time: the time other processes
    # take on a shared machine is left out (the rows are compared in ratios).
    started = time.process_time()
    for _ in range(number):
        env = environ.copy()
        if body:
            env["wsgi.input"] = bytes_io(body)
        result = app(env, start_response)
        for _chunk in result:
            pass
        if hasattr(result, "close"):
            result.close()
    return (time.process_time() - started) / number


def check_pattern(name: str, app: t.Any, pattern: Pattern) -> None:
    statuses: list[str] = []
    env = pattern_environ(pattern)
    env["wsgi.input"] = io.BytesIO(pattern.body)
    result = app(env, lambda status, headers, exc_info=None: statuses.append(status))
    try:
        b"".join(result)
    finally:
        if hasattr(result, "close"):
            result.close()
    if not statuses or not statuses[-1].startswith(pattern.status):
        raise SystemExit(f"{name} answered {statuses} for {pattern.name}")


def run_patterns(rounds: int, number: int) -> dict[str, dict[str, float]]:
    """Measure every pattern for every app; return the best µs of each."""
    apps = [(name, maker()) for name, maker in PATTERN_APPS]
    for name, app in apps:
        for pattern in PATTERNS:
            check_pattern(name, app, pattern)
    best = {name: {p.name: float("inf") for p in PATTERNS} for name, _ in apps}
    for round_number in range(rounds):
        for pattern in PATTERNS:
            for name, app in apps:
                cost = run_pattern(app, pattern, number) * 1e6
                best[name][pattern.name] = min(best[name][pattern.name], cost)
        print(f"  patterns round {round_number + 1}/{rounds} done", file=sys.stderr)
    return best


def pattern_table(best: dict[str, dict[str, float]]) -> str:
    """Format µs per request and the framework's ratios to Falcon and Flask."""
    lines = [
        "| pattern | framework us | falcon us | flask us | / falcon | / flask |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for pattern in PATTERNS:
        ours, falcon, flask = (
            best[name][pattern.name] for name in ("framework", "falcon", "flask")
        )
        lines.append(
            f"| {pattern.name} | {ours:.2f} | {falcon:.2f} | {flask:.2f}"
            f" | {ours / falcon:.2f}x | {ours / flask:.2f}x |"
        )
    worst = max(best["framework"][p.name] / best["falcon"][p.name] for p in PATTERNS)
    verdict = "met" if worst <= 1.0 else "MISSED"
    lines.append(f"target every pattern <= 1.0x falcon: {verdict} (worst {worst:.2f}x)")
    return "\n".join(lines)


# Measuring -------------------------------------------------------------------


def start_response(status: str, headers: t.Any, exc_info: t.Any = None) -> t.Any:
    return None


def check(app: t.Any, path: str) -> bytes:
    statuses = []

    def recording(status: str, headers: t.Any, exc_info: t.Any = None) -> None:
        statuses.append(status)

    result = app(make_environ(path), recording)
    try:
        body = b"".join(result)
    finally:
        if hasattr(result, "close"):
            result.close()
    if not statuses or not statuses[0].startswith("200"):
        raise SystemExit(f"{app!r} answered {statuses} for {path}")
    return body


def per_request(app: t.Any, environ: dict[str, t.Any], number: int) -> float:
    """Return the mean cost of ``number`` requests, in seconds."""
    gc.collect()
    started = time.perf_counter()
    for _ in range(number):
        result = app(environ.copy(), start_response)
        for _chunk in result:
            pass
        if hasattr(result, "close"):
            result.close()
    return (time.perf_counter() - started) / number


def paired_counter_cost(
    app: t.Any, environ: dict[str, t.Any], rounds: int, number: int
) -> float:
    """Return what the counters add to a request, in seconds, measured in pairs.

    Each round measures the app without, with, with and without the counters
    (ABBA: a load that rises or falls through the round cancels out) and
    takes the difference; the median over the rounds is the cost. The
    difference of two best-of rows (the table) carries the noise of both.
    """
    differences = []
    for _ in range(rounds):
        times = []
        for counted in (False, True, True, False):
            with Counters() if counted else contextlib.nullcontext():
                times.append(per_request(app, environ, number))
        differences.append((times[1] + times[2] - times[0] - times[3]) / 2)
    return statistics.median(differences)


def connect_one_receiver_each() -> list[tuple[t.Any, t.Any]]:
    from framework import signals

    def note(**kwargs: t.Any) -> None:
        return None

    connected = []
    for signal in (
        signals.request_started,
        signals.request_finished,
        signals.got_request_exception,
    ):
        signal.connect(note, weak=False)
        connected.append((signal, note))
    return connected


class Counters:
    """framework.metrics' counters, as a sync worker of ``framework serve`` has them.

    :param compiled: ``False``: the Python receivers, as a package built
        without a C compiler has them.
    """

    def __init__(self, compiled: bool = True) -> None:
        self.compiled = compiled

    def __enter__(self) -> None:
        import tempfile

        from framework import metrics

        self.directory = tempfile.TemporaryDirectory(prefix="bench-metrics-")
        metrics.enable(
            self.directory.name + "/counters", threads=False, compiled=self.compiled
        )

    def __exit__(self, *exc_info: t.Any) -> None:
        from framework import metrics

        metrics.disable()
        self.directory.cleanup()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--number", type=int, default=20000)
    parser.add_argument("--only", nargs="*", default=None)
    parser.add_argument("--patterns-only", action="store_true")
    parser.add_argument("--no-patterns", action="store_true")
    options = parser.parse_args(argv)
    if not options.patterns_only:
        main_table(options)
    if not options.no_patterns:
        best = run_patterns(options.rounds, options.number // 2)
        print()
        print(
            f"Patterns: CPU us per request, best of {options.rounds} x"
            f" {options.number // 2} (Python {sys.version.split()[0]})"
        )
        print(pattern_table(best))


def main_table(options: argparse.Namespace) -> None:
    """Measure /hello and /users/42 for every app; print the table."""

    makers: list[tuple[str, t.Callable[[], t.Any]]] = [
        ("bare WSGI (floor)", bare_app),
        ("framework", framework_app),
        ("framework, 1 receiver each", framework_app),
        ("framework + metrics counters", framework_app),
        ("framework + counters in Python", framework_app),
        ("falcon", falcon_app),
        ("bottle", bottle_app),
        ("flask", flask_app),
        ("django", django_app),
    ]
    apps = []
    for name, maker in makers:
        if options.only and not any(part in name for part in options.only):
            continue
        app = maker()
        check(app, "/hello")
        check(app, "/users/42")
        apps.append((name, app))
    paths = ("/hello", "/users/42")
    environs = {path: make_environ(path) for path in paths}
    best = {name: {path: float("inf") for path in paths} for name, _ in apps}
    # The contenders take turns in every round, so a change of load on the
    # machine hits them alike; the best round of each counts.
    for round_number in range(options.rounds):
        for name, app in apps:
            connected = connect_one_receiver_each() if "receiver" in name else []
            counting: t.Any = contextlib.nullcontext()
            if "counters" in name:
                counting = Counters(compiled="Python" not in name)
            try:
                with counting:
                    for path in paths:
                        cost = per_request(app, environs[path], options.number)
                        best[name][path] = min(best[name][path], cost)
            finally:
                for signal, receiver in connected:
                    signal.disconnect(receiver)
        print(f"  round {round_number + 1}/{options.rounds} done", file=sys.stderr)
    rows = [
        (name, best[name]["/hello"] * 1e6, best[name]["/users/42"] * 1e6)
        for name, _ in apps
    ]

    measured = {name: (hello, users) for name, hello, users in rows}
    base = measured.get("framework")
    print(f"{'app':<28} {'/hello us':>10} {'/users/42 us':>13}  vs framework")
    for name, hello, users in rows:
        ratio = ""
        if base:
            ratio = f"{hello / base[0]:.2f}x / {users / base[1]:.2f}x"
        print(f"{name:<28} {hello:>10.2f} {users:>13.2f}  {ratio}")
    print(
        f"Python {sys.version.split()[0]}, best of {options.rounds} x {options.number}"
    )
    counted = measured.get("framework + metrics counters")
    receivers = measured.get("framework, 1 receiver each")
    from framework import metrics

    if not metrics.COMPILED:
        print("framework.metrics: the C extension was not built: Python receivers")
    if base and counted:
        # The target: the counters cost at most 1 us per request in process.
        extra = [ours - plain for ours, plain in zip(counted, base, strict=True)]
        print(
            "framework.metrics counters: "
            + " / ".join(f"{us:+.2f} us" for us in extra)
            + " per request ("
            + " / ".join(f"{c / b:.2f}x" for c, b in zip(counted, base, strict=True))
            + " the framework row)"
            + (
                "; over 1 no-op Python receiver each: "
                + " / ".join(
                    f"{c - r:+.2f} us" for c, r in zip(counted, receivers, strict=True)
                )
                if receivers
                else ""
            )
        )
        app = dict(apps)["framework + metrics counters"]
        paired = [
            paired_counter_cost(app, environs[path], options.rounds, options.number)
            for path in paths
        ]
        print(
            "framework.metrics counters, paired (median of"
            f" {options.rounds} rounds without/with/with/without): "
            + " / ".join(f"{cost * 1e6:+.2f} us" for cost in paired)
            + " per request"
        )
    if base and {"falcon", "bottle", "flask"} <= measured.keys():
        falcon, bottle, flask = (
            measured[name] for name in ("falcon", "bottle", "flask")
        )
        checks = [
            (
                "<= falcon",
                all(ours <= theirs for ours, theirs in zip(base, falcon, strict=True)),
            ),
            (
                "< bottle",
                all(ours < theirs for ours, theirs in zip(base, bottle, strict=True)),
            ),
            (
                "<= flask / 4",
                all(
                    ours <= theirs / 4 for ours, theirs in zip(base, flask, strict=True)
                ),
            ),
        ]
        verdicts = [f"{what}: {'met' if ok else 'MISSED'}" for what, ok in checks]
        print("targets (framework row): " + ", ".join(verdicts))


if __name__ == "__main__":
    main()
