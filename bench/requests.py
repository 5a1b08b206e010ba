"""In-process cost per request: framework against its peers.

Each app serves ``GET /hello`` (13 bytes of text) and ``GET /users/<int:id>``
(a small JSON object). A request is: copy a prepared WSGI environ, call the
app, consume the body, call ``close()``. The apps take turns in every round
(so a change of load hits them alike) and the best round of each is printed,
in microseconds per request.

    python bench/requests.py [--rounds 5] [--number 20000] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import json
import sys
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
    """framework.metrics' counters, as a sync worker of ``framework serve`` has them."""

    def __enter__(self) -> None:
        import tempfile

        from framework import metrics

        self.directory = tempfile.TemporaryDirectory(prefix="bench-metrics-")
        metrics.enable(self.directory.name + "/counters", threads=False)

    def __exit__(self, *exc_info: t.Any) -> None:
        from framework import metrics

        metrics.disable()
        self.directory.cleanup()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--number", type=int, default=20000)
    parser.add_argument("--only", nargs="*", default=None)
    options = parser.parse_args(argv)

    makers: list[tuple[str, t.Callable[[], t.Any]]] = [
        ("bare WSGI (floor)", bare_app),
        ("framework", framework_app),
        ("framework, 1 receiver each", framework_app),
        ("framework + metrics counters", framework_app),
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
            counting = Counters() if "counters" in name else contextlib.nullcontext()
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
    if base and counted:
        # The target: the counters cost at most 1 us per request in process.
        extra = [ours - plain for ours, plain in zip(counted, base, strict=True)]
        print(
            "framework.metrics counters: +"
            + " / +".join(f"{us:.2f} us" for us in extra)
            + " per request ("
            + " / ".join(f"{c / b:.2f}x" for c, b in zip(counted, base, strict=True))
            + " the framework row)"
            + (
                "; of which the counting itself (over 1 no-op receiver each): +"
                + " / +".join(
                    f"{c - r:.2f} us" for c, r in zip(counted, receivers, strict=True)
                )
                if receivers
                else ""
            )
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
