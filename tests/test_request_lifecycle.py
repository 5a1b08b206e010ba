"""When request_started, got_request_exception and request_finished fire.

The app is called directly as WSGI, so the tests see exactly when close()
triggers request_finished.
"""

from __future__ import annotations

import io
import wsgiref.util
from contextlib import nullcontext

import pytest
from werkzeug.test import EnvironBuilder

from framework import App
from framework import signals
from framework.conf import override_settings
from framework.testing import ANYTHING
from framework.testing import capture
from tests.web_apps import lifecycle

REQUEST_SIGNALS = (
    signals.request_started,
    signals.got_request_exception,
    signals.request_finished,
)


@pytest.fixture
def app():
    lifecycle.EVENTS.clear()
    return lifecycle.make_app()


def call(app, path, method="GET", environ=None, **builder):
    env = EnvironBuilder(path, method=method, **builder).get_environ()
    env.update(environ or {})
    started = []

    def start_response(status, headers, exc_info=None):
        started.append((status, headers))

    result = app(env, start_response)
    return env, result, started


def test_request_finished_waits_for_close(app):
    with capture(*REQUEST_SIGNALS) as calls:
        env, result, started = call(app, "/hello")
        assert b"".join(result) == b"Hello, World!"
        assert calls.names == ["request_started"]
        result.close()
    assert calls.names == ["request_started", "request_finished"]
    calls.assert_sent_once_with(signals.request_started, sender=App, environ=env)
    finished = calls.assert_sent_once_with(
        signals.request_finished, sender=App, environ=env, status=200
    )
    assert isinstance(finished.kwargs["duration"], float)
    assert 0 <= finished.kwargs["duration"] < 5
    assert started[0][0] == "200 OK"


def test_sender_is_the_app_class():
    class MyApp(App):
        pass

    app = MyApp(__name__)
    app.add_route("/", lambda request: "ok", endpoint="index")
    with capture(*REQUEST_SIGNALS) as calls:
        _, result, _ = call(app, "/")
        result.close()
    assert [call.sender for call in calls] == [MyApp, MyApp]


def test_close_twice_sends_once(app):
    with capture(signals.request_finished) as calls:
        _, result, _ = call(app, "/hello")
        result.close()
        result.close()
    assert len(calls) == 1


def test_streamed_body_finishes_after_inner_close(app):
    seen = []

    def note(**kwargs):
        seen.append(list(lifecycle.EVENTS))

    with capture(*REQUEST_SIGNALS) as calls:
        with signals.request_finished.connected_to(note):
            _, result, started = call(app, "/stream")
            chunks = iter(result)
            assert next(chunks) == b"one,"
            assert calls.names == ["request_started"]
            result.close()
    assert seen == [["generator closed"]]
    calls.assert_sent_once_with(signals.request_finished, status=200)
    calls.assert_not_sent(signals.got_request_exception)


def test_exception_mid_stream_is_reported_and_propagates(app):
    with capture(*REQUEST_SIGNALS) as calls:
        env, result, _ = call(app, "/stream-error")
        chunks = iter(result)
        assert next(chunks) == b"start,"
        with pytest.raises(RuntimeError, match="broken stream"):
            next(chunks)
        assert calls.names == ["request_started", "got_request_exception"]
        result.close()
    assert calls.names[-1] == "request_finished"
    sent = calls.assert_sent_once_with(signals.got_request_exception, sender=App)
    assert sent.kwargs["request"].path == "/stream-error"
    calls.assert_sent_once_with(signals.request_finished, status=200)


def test_unhandled_exception_is_a_500_that_reveals_nothing(app, caplog):
    with capture(*REQUEST_SIGNALS) as calls:
        _, result, started = call(app, "/boom")
        body = b"".join(result)
        result.close()
    assert started[0][0] == "500 INTERNAL SERVER ERROR"
    assert b"secret detail" not in body
    assert b"Traceback" not in body
    assert b"RuntimeError" not in body
    assert calls.names == [
        "request_started",
        "got_request_exception",
        "request_finished",
    ]
    request = calls.assert_sent_once_with(signals.got_request_exception).kwargs[
        "request"
    ]
    assert request.path == "/boom"
    calls.assert_sent_once_with(signals.request_finished, status=500)
    record = next(r for r in caplog.records if r.name == "framework.request")
    assert record.exc_info is not None
    assert "GET /boom" in record.getMessage()


def test_debug_500_shows_the_traceback(app):
    with override_settings(DEBUG=True):
        _, result, started = call(app, "/boom")
        body = b"".join(result)
        result.close()
    assert started[0][0].startswith("500")
    assert b"RuntimeError: secret detail" in body


@pytest.mark.parametrize(
    ("path", "method", "status"),
    [
        ("/missing", "GET", 404),
        ("/hello", "POST", 405),
        ("/forbidden", "GET", 403),
        ("/dir", "GET", 308),
    ],
)
def test_http_errors_are_not_exceptions(app, path, method, status):
    with capture(*REQUEST_SIGNALS) as calls:
        _, result, started = call(app, path, method=method)
        b"".join(result)
        result.close()
    assert int(started[0][0][:3]) == status
    calls.assert_not_sent(signals.got_request_exception)
    calls.assert_sent_once_with(signals.request_finished, status=status)


def test_failing_request_started_receiver_is_a_500(app):
    def explode(**kwargs):
        raise ValueError("receiver failed")

    with capture(*REQUEST_SIGNALS) as calls:
        with signals.request_started.connected_to(explode):
            _, result, started = call(app, "/hello")
            b"".join(result)
            result.close()
    assert started[0][0].startswith("500")
    assert calls.names == [
        "request_started",
        "got_request_exception",
        "request_finished",
    ]
    request = calls.assert_sent_once_with(signals.got_request_exception).kwargs[
        "request"
    ]
    assert request.path == "/hello"


def test_every_got_request_exception_receiver_runs(app, caplog):
    def explode(**kwargs):
        raise ValueError("receiver failed")

    with capture(signals.got_request_exception) as calls:
        with signals.got_request_exception.connected_to(explode):
            with capture(signals.got_request_exception) as later:
                _, result, started = call(app, "/boom")
                b"".join(result)
                result.close()
    assert started[0][0].startswith("500")
    assert len(calls) == 1
    assert len(later) == 1
    failures = [r for r in caplog.records if r.exc_info and r.exc_info[0] is ValueError]
    assert [r.exc_info[1].args for r in failures] == [("receiver failed",)]


def test_every_request_finished_receiver_runs_and_failures_are_logged(app, caplog):
    def explode(**kwargs):
        raise ValueError("finished receiver failed")

    ran = []

    def after(**kwargs):
        ran.append(kwargs["status"])

    with signals.request_finished.connected_to(explode):
        with signals.request_finished.connected_to(after):
            _, result, _ = call(app, "/hello")
            result.close()
    assert ran == [200]
    records = [r for r in caplog.records if r.name == "framework.request"]
    assert len(records) == 1
    assert records[0].exc_info[1].args == ("finished receiver failed",)


def test_system_exit_in_the_view_still_finishes_the_request(app):
    with capture(*REQUEST_SIGNALS) as calls:
        with pytest.raises(SystemExit, match="3"):
            call(app, "/exit")
    assert calls.names == ["request_started", "request_finished"]
    calls.assert_sent_once_with(signals.request_finished, status=500)


def test_system_exit_in_a_request_started_receiver_finishes_the_request(app):
    def leave(**kwargs):
        raise SystemExit(4)

    with capture(signals.request_started, signals.request_finished) as calls:
        with signals.request_started.connected_to(leave):
            with pytest.raises(SystemExit, match="4"):
                call(app, "/hello")
    assert calls.names == ["request_started", "request_finished"]


@pytest.mark.parametrize(
    ("path", "method", "status"),
    [
        ("/hello", "HEAD", 200),
        ("/stream", "HEAD", 200),
        ("/no-content", "GET", 204),
        ("/not-modified", "GET", 304),
    ],
)
def test_bodyless_responses_finish_once(app, path, method, status):
    with capture(signals.request_finished) as calls:
        _, result, started = call(app, path, method=method)
        assert b"".join(result) == b""
        result.close()
        result.close()
    assert int(started[0][0][:3]) == status
    calls.assert_sent_once_with(signals.request_finished, status=status)


def test_file_response_through_wsgi_file_wrapper(app):
    order = []

    def note(**kwargs):
        order.append(("finished", list(lifecycle.EVENTS)))

    with signals.request_finished.connected_to(note):
        env, result, started = call(
            app, "/file", environ={"wsgi.file_wrapper": wsgiref.util.FileWrapper}
        )
        assert isinstance(result, wsgiref.util.FileWrapper)
        assert b"".join(result) == b"file body"
        assert order == []
        result.close()
        result.close()
    assert order == [("finished", ["file closed"])]


def test_wsgi_middleware_sits_inside_the_signals(app):
    events = []

    class Closing:
        def __init__(self, inner):
            self.inner = inner

        def __iter__(self):
            return iter(self.inner)

        def close(self):
            events.append("middleware close")
            close = getattr(self.inner, "close", None)
            if close is not None:
                close()

    def middleware(wsgi_app):
        def wrapped(environ, start_response):
            events.append("middleware")
            return Closing(wsgi_app(environ, start_response))

        return wrapped

    def started(**kwargs):
        events.append("request_started")

    def finished(**kwargs):
        events.append(f"request_finished {kwargs['status']}")

    app.add_wsgi_middleware(middleware)
    with signals.request_started.connected_to(started):
        with signals.request_finished.connected_to(finished):
            _, result, status = call(app, "/users/7")
            assert b"".join(result) == b'{"id":7,"name":"Ada"}'
            result.close()
    assert events == [
        "request_started",
        "middleware",
        "middleware close",
        "request_finished 200",
    ]


def test_failing_wsgi_middleware_is_an_unhandled_exception(app):
    def middleware(wsgi_app):
        def wrapped(environ, start_response):
            raise KeyError("middleware failed")

        return wrapped

    app.wsgi_app = middleware(app.wsgi_app)
    with capture(*REQUEST_SIGNALS) as calls:
        _, result, started = call(app, "/hello")
        b"".join(result)
        result.close()
    assert started[0][0].startswith("500")
    assert calls.names == [
        "request_started",
        "got_request_exception",
        "request_finished",
    ]


def test_view_middleware_wraps_views_and_sees_responses(app):
    seen = []

    def timing(get_response):
        def handler(request):
            seen.append(("before", request.path))
            response = get_response(request)
            seen.append(("after", response.status_code))
            response.headers["X-Seen"] = "1"
            return response

        return handler

    app.add_view_middleware(timing)
    with capture(*REQUEST_SIGNALS) as calls:
        _, result, started = call(app, "/users/3")
        assert b"".join(result) == b'{"id":3,"name":"Ada"}'
        result.close()
        _, result, started_missing = call(app, "/missing")
        result.close()
    assert seen == [
        ("before", "/users/3"),
        ("after", 200),
        ("before", "/missing"),
        ("after", 404),
    ]
    assert ("X-Seen", "1") in started[0][1]
    assert started_missing[0][0].startswith("404")
    calls.assert_not_sent(signals.got_request_exception)


def test_exception_through_view_middleware_is_reported_once(app):
    def passthrough(get_response):
        return get_response

    app.add_view_middleware(passthrough)
    with capture(signals.got_request_exception) as calls:
        _, result, started = call(app, "/boom")
        result.close()
    assert started[0][0].startswith("500")
    assert len(calls) == 1


def test_error_handler_replaces_the_response_without_the_signal(app):
    @app.errorhandler(404)
    def missing(request, exc):
        return f"nothing at {request.path}", 404

    @app.errorhandler(LookupError)
    def lookup(request, exc):
        return {"error": str(exc)}, 409

    @app.route("/lookup")
    def fails(request):
        raise KeyError("k")

    with capture(signals.got_request_exception) as calls:
        _, result, started = call(app, "/nowhere")
        assert b"".join(result) == b"nothing at /nowhere"
        result.close()
        _, result, started2 = call(app, "/lookup")
        assert b"".join(result) == b'{"error":"\'k\'"}'
        result.close()
    assert started[0][0].startswith("404")
    assert started2[0][0].startswith("409")
    calls.assert_not_sent()


def test_failing_error_handler_is_one_unhandled_exception(app):
    @app.errorhandler(404)
    def missing(request, exc):
        raise RuntimeError("handler failed")

    with capture(signals.got_request_exception, signals.request_finished) as calls:
        _, result, started = call(app, "/nowhere")
        b"".join(result)
        result.close()
    assert started[0][0].startswith("500")
    assert calls.names == ["got_request_exception", "request_finished"]


def test_500_handler_customises_the_error_page(app):
    @app.errorhandler(500)
    def server_error(request, exc):
        return f"sorry ({type(exc.original_exception).__name__})", 500

    with capture(signals.got_request_exception) as calls:
        _, result, started = call(app, "/boom")
        assert b"".join(result) == b"sorry (RuntimeError)"
        result.close()
    assert len(calls) == 1


def test_view_returning_none_is_a_500(app):
    with capture(signals.got_request_exception) as calls:
        _, result, started = call(app, "/none")
        result.close()
    assert started[0][0].startswith("500")
    assert len(calls) == 1


def test_orm_style_receivers_run_even_if_a_user_receiver_raises(app):
    calls = []

    def user_receiver(**kwargs):
        raise RuntimeError("user bug")

    def close_old_connections(**kwargs):
        calls.append(kwargs["sender"])

    with signals.request_finished.connected_to(user_receiver):
        with signals.request_finished.connected_to(close_old_connections):
            _, result, _ = call(app, "/hello")
            result.close()
    assert calls == [App]


def test_duration_measures_from_request_started(app):
    import time

    def slow(**kwargs):
        time.sleep(0.02)

    with capture(signals.request_finished) as calls:
        with signals.request_started.connected_to(slow):
            _, result, _ = call(app, "/hello")
            result.close()
    assert calls[0].kwargs["duration"] >= 0.02


def test_body_is_not_read_when_unneeded(app):
    stream = io.BytesIO(b"x" * 10)
    env, result, started = call(
        app, "/hello", environ={"wsgi.input": stream, "CONTENT_LENGTH": "10"}
    )
    result.close()
    assert stream.tell() == 0
    assert started[0][0] == "200 OK"
    assert started == [("200 OK", ANYTHING)]


def test_error_handler_raising_an_http_error_is_not_an_exception(app):
    @app.errorhandler(404)
    def missing(request, exc):
        from framework import abort

        abort(410)

    with capture(signals.got_request_exception, signals.request_finished) as calls:
        _, result, started = call(app, "/nowhere")
        result.close()
    assert started[0][0].startswith("410")
    assert calls.names == ["request_finished"]


def test_middleware_failing_after_start_response_replaces_the_status(app):
    def middleware(wsgi_app):
        def wrapped(environ, start_response):
            start_response("200 OK", [("Content-Type", "text/plain")])
            raise RuntimeError("after start")

        return wrapped

    app.add_wsgi_middleware(middleware)
    with capture(signals.got_request_exception, signals.request_finished) as calls:
        _, result, started = call(app, "/hello")
        result.close()
    assert [status for status, _ in started] == ["200 OK", "500 INTERNAL SERVER ERROR"]
    calls.assert_sent_once_with(signals.request_finished, status=500)


def test_failing_500_handler_falls_back_to_the_plain_500(app):
    @app.errorhandler(500)
    def server_error(request, exc):
        raise ValueError("handler broken too")

    with capture(signals.got_request_exception) as calls:
        _, result, started = call(app, "/boom")
        body = b"".join(result)
        result.close()
    assert started[0][0].startswith("500")
    assert b"handler broken" not in body
    assert len(calls) == 2


def test_file_wrapper_without_filelike_is_wrapped_normally(app):
    class Wrapper:
        def __init__(self, file, blksize=8192):
            self.file = file

        def __iter__(self):
            return iter([self.file.read()])

        def close(self):
            self.file.close()

    with capture(signals.request_finished) as calls:
        _, result, _ = call(app, "/file", environ={"wsgi.file_wrapper": Wrapper})
        assert b"".join(result) == b"file body"
        assert not isinstance(result, Wrapper)
        result.close()
    assert lifecycle.EVENTS == ["file closed"]
    assert len(calls) == 1


def test_options_and_errors_through_view_middleware(app):
    app.add_view_middleware(lambda get_response: get_response)
    _, result, started = call(app, "/hello", method="OPTIONS")
    result.close()
    allow = dict(started[0][1])["Allow"]
    assert set(allow.split(", ")) == {"HEAD", "GET", "OPTIONS"}


def test_view_returning_an_http_exception(app):
    from framework import NotFound

    app.add_route("/raise-as-value", lambda request: NotFound(), endpoint="v")
    _, result, started = call(app, "/raise-as-value")
    result.close()
    assert started[0][0].startswith("404")


def test_invalid_content_length_is_ignored(app):
    _, result, started = call(app, "/hello", environ={"CONTENT_LENGTH": "many"})
    result.close()
    assert started[0][0] == "200 OK"


def test_request_started_receivers_all_run_before_the_500(app):
    ran = []

    def explode(**kwargs):
        raise ValueError("first receiver failed")

    def close_old_connections(**kwargs):
        ran.append("orm")

    with capture(signals.got_request_exception, signals.request_finished) as calls:
        with signals.request_started.connected_to(explode):
            with signals.request_started.connected_to(close_old_connections):
                _, result, started = call(app, "/hello")
                result.close()
    assert ran == ["orm"]
    assert started[0][0].startswith("500")
    assert calls.names == ["got_request_exception", "request_finished"]


def test_settings_are_read_once_and_again_after_setting_changed(app):
    from framework.conf import settings

    _, result, _ = call(app, "/boom")
    assert b"Traceback" not in b"".join(result)
    result.close()
    saved = settings.DEBUG
    settings.DEBUG = True  # no setting_changed: the app keeps its snapshot
    try:
        _, result, _ = call(app, "/boom")
        assert b"Traceback" not in b"".join(result)
        result.close()
    finally:
        settings.DEBUG = saved
    with override_settings(DEBUG=True):
        _, result, _ = call(app, "/boom")
        assert b"Traceback" in b"".join(result)
        result.close()


def test_concurrent_requests_each_finish_once(app):
    import threading

    counts = {"started": 0, "finished": 0}
    lock = threading.Lock()

    def started(**kwargs):
        with lock:
            counts["started"] += 1

    def finished(**kwargs):
        with lock:
            counts["finished"] += 1

    errors = []

    def worker():
        try:
            for index in range(100):
                path = f"/users/{index}" if index % 2 else "/stream"
                _, result, status = call(app, path)
                b"".join(result)
                result.close()
                assert status[0][0] == "200 OK"
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    with signals.request_started.connected_to(started):
        with signals.request_finished.connected_to(finished):
            threads = [threading.Thread(target=worker) for _ in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=30)
    assert errors == []
    assert counts == {"started": 400, "finished": 400}


@pytest.mark.parametrize("middleware", [False, True])
@pytest.mark.parametrize(
    ("path", "first"), [("/hello", "200"), ("/response", "202"), ("/users/4", "200")]
)
def test_start_response_refusing_the_headers_is_one_unhandled_exception(
    app, path, first, middleware, caplog
):
    # As gunicorn does for a header it refuses: the status is recorded, then
    # start_response raises; PEP 3333 wants exc_info on the second call.
    started = []

    def start_response(status, headers, exc_info=None):
        if started and exc_info is None:
            raise AssertionError("Response headers already set!")
        started.append((status, exc_info))
        if not status.startswith("500"):
            raise ValueError("refused header")

    if middleware:
        app.add_view_middleware(lambda get_response: get_response)
    env = EnvironBuilder(path).get_environ()
    with capture(*REQUEST_SIGNALS) as calls:
        result = app(env, start_response)
        body = b"".join(result)
        result.close()
    assert [status[:3] for status, _ in started] == [first, "500"]
    assert started[1][1][0] is ValueError
    assert b"Internal Server Error" in body
    assert calls.names == [
        "request_started",
        "got_request_exception",
        "request_finished",
    ]
    calls.assert_sent_once_with(signals.request_finished, status=500)
    records = [r for r in caplog.records if r.name == "framework.request"]
    assert [r.exc_info[0] for r in records] == [ValueError]


def test_exception_mid_stream_of_a_middleware_body_still_gets_a_request(app):
    def failing_body(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])

        def generate():
            yield b"from middleware,"
            raise RuntimeError("middleware stream")

        return generate()

    app.wsgi_app = failing_body
    with capture(signals.got_request_exception, signals.request_finished) as calls:
        env, result, _ = call(app, "/anything")
        chunks = iter(result)
        assert next(chunks) == b"from middleware,"
        with pytest.raises(RuntimeError, match="middleware stream"):
            next(chunks)
        result.close()
    assert calls.names == ["got_request_exception", "request_finished"]
    request = calls[0].kwargs["request"]
    assert (request.path, request.environ) == ("/anything", env)


def test_body_close_failing_still_finishes_the_request(app):
    from framework import Response

    def generate():
        try:
            yield b"body"
        finally:
            raise OSError("close failed")

    app.add_route(
        "/bad-close", lambda request: Response(generate()), endpoint="bad_close"
    )
    with capture(signals.got_request_exception, signals.request_finished) as calls:
        _, result, _ = call(app, "/bad-close")
        chunks = iter(result)
        assert next(chunks) == b"body"
        with pytest.raises(OSError, match="close failed"):
            result.close()
        result.close()
    assert calls.names == ["request_finished"]
    calls.assert_sent_once_with(signals.request_finished, status=200)


def test_system_exit_while_answering_500_still_finishes_the_request(app):
    def explode(**kwargs):
        raise ValueError("started receiver failed")

    def timed_out(**kwargs):
        raise SystemExit(5)  # a worker timeout while reporting the error

    with capture(signals.request_finished) as calls:
        with signals.request_started.connected_to(explode):
            with signals.got_request_exception.connected_to(timed_out):
                with pytest.raises(SystemExit, match="5"):
                    call(app, "/hello")
    calls.assert_sent_once_with(signals.request_finished, status=500)


def test_server_refusing_the_500_still_finishes_the_request(app):
    def refusing(status, headers, exc_info=None):
        raise OSError(f"cannot start {status}")

    app.add_wsgi_middleware(failing_middleware)
    env = EnvironBuilder("/boom").get_environ()
    with capture(signals.got_request_exception, signals.request_finished) as calls:
        with pytest.raises(OSError, match="cannot start 500"):
            app(env, refusing)
    assert calls.names == ["got_request_exception", "request_finished"]
    calls.assert_sent_once_with(signals.request_finished, status=500)


@pytest.mark.parametrize("middleware", [False, True])
@pytest.mark.parametrize("path", ["/hello", "/response", "/stream"])
def test_a_server_refusing_every_status_gets_the_500_once(
    app, path, middleware, caplog
):
    calls = []

    def refusing(status, headers, exc_info=None):
        calls.append(status[:3])
        raise OSError(f"cannot start {status}")

    if middleware:
        app.add_view_middleware(lambda get_response: get_response)
    env = EnvironBuilder(path).get_environ()
    with capture(signals.got_request_exception, signals.request_finished) as sent:
        with pytest.raises(OSError, match="cannot start 500"):
            app(env, refusing)
    assert calls == ["202" if path == "/response" else "200", "500"]
    assert sent.names == ["got_request_exception", "request_finished"]
    sent.assert_sent_once_with(signals.request_finished, status=500)
    records = [r for r in caplog.records if r.name == "framework.request"]
    assert [str(r.exc_info[1]) for r in records] == [
        "cannot start " + ("202 ACCEPTED" if path == "/response" else "200 OK")
    ]


def failing_middleware(wsgi_app):
    def wrapped(environ, start_response):
        raise RuntimeError("middleware failed")

    return wrapped


def test_exception_class_handler_failing_is_one_unhandled_exception(app, caplog):
    @app.errorhandler(LookupError)
    def lookup(request, exc):
        raise KeyError("handler fails too")

    @app.route("/lookup-fails")
    def fails(request):
        raise KeyError("view")

    with capture(signals.got_request_exception, signals.request_finished) as calls:
        _, result, started = call(app, "/lookup-fails")
        result.close()
    assert started[0][0].startswith("500")
    assert calls.names == ["got_request_exception", "request_finished"]
    logged = [r.exc_info[1] for r in caplog.records if r.name == "framework.request"]
    assert [exc.args for exc in logged] == [("handler fails too",)]
    assert logged[0].__context__.args == ("view",)


def test_exception_class_handler_may_abort_with_an_http_error(app):
    from framework import abort

    @app.errorhandler(LookupError)
    def lookup(request, exc):
        abort(404)

    @app.route("/lookup-404")
    def missing(request):
        raise KeyError("no such row")

    with capture(signals.got_request_exception, signals.request_finished) as calls:
        _, result, started = call(app, "/lookup-404")
        assert b"Not Found" in b"".join(result)
        result.close()
    assert started[0][0].startswith("404")
    assert calls.names == ["request_finished"]


def test_middleware_failing_after_the_core_reports_the_views_request(app):
    seen = []

    @app.route("/note")
    def note(request):
        seen.append(request)
        return "noted"

    def middleware(wsgi_app):
        def wrapped(environ, start_response):
            result = wsgi_app(environ, start_response)
            getattr(result, "close", lambda: None)()
            raise RuntimeError("after the core")

        return wrapped

    app.add_wsgi_middleware(middleware)
    with capture(signals.got_request_exception, signals.request_finished) as calls:
        _, result, started = call(app, "/note")
        result.close()
    assert [status[:3] for status, _ in started] == ["200", "500"]
    assert calls[0].kwargs["request"] is seen[0]
    calls.assert_sent_once_with(signals.request_finished, status=500)


def test_got_request_exception_receivers_see_the_exception_being_handled(app):
    import sys

    seen = []

    def note(**kwargs):
        exc = sys.exception()
        seen.append((type(exc).__name__, str(exc)))

    def started_fails(**kwargs):
        if kwargs["environ"]["PATH_INFO"] == "/hello":
            raise ValueError("from request_started")

    @app.errorhandler(500)
    def server_error(request, exc):
        if request.path == "/boom":
            raise LookupError("500 handler broken")
        return "sorry", 500

    def refusing(status, headers, exc_info=None):
        if status.startswith("200"):
            raise OSError("header refused")

    with signals.got_request_exception.connected_to(note):
        with signals.request_started.connected_to(started_fails):
            for path in ("/hello", "/boom", "/none", "/stream-error", "/users/1"):
                env = EnvironBuilder(path).get_environ()
                result = app(env, refusing if path == "/users/1" else call_start)
                try:
                    b"".join(result)
                except RuntimeError:
                    pass
                result.close()
    assert seen == [
        ("ValueError", "from request_started"),
        ("RuntimeError", "secret detail"),
        ("LookupError", "500 handler broken"),
        ("TypeError", seen[3][1]),
        ("RuntimeError", "broken stream"),
        ("OSError", "header refused"),
    ]
    assert "returned None" in seen[3][1]


def call_start(status, headers, exc_info=None):
    return None


def test_the_core_adds_nothing_to_the_servers_environ(app):
    from framework import Response

    # A new key would make a server's full environ grow its table (about 2 us
    # per request in a gunicorn worker): the request rides on the response.
    seen = []

    @app.route("/see")
    def see(request):
        seen.append(request)

        def generate():
            yield b"start,"
            raise RuntimeError("broken stream")

        return Response(generate(), mimetype="text/plain")

    env = EnvironBuilder("/hello").get_environ()
    keys = set(env)
    result = app(env, lambda status, headers, exc_info=None: None)
    assert b"".join(result) == b"Hello, World!"
    result.close()
    assert set(env) == keys
    # A failure while streaming still reports the request object the view had.
    with capture(signals.got_request_exception) as calls:
        _, result, _ = call(app, "/see")
        with pytest.raises(RuntimeError, match="broken stream"):
            b"".join(result)
        result.close()
    assert calls[0].kwargs["request"] is seen[0]


def test_a_list_body_reaches_the_server_as_a_list(app):
    # The server then iterates it without calling back into Python; close()
    # still ends the request exactly once.
    with capture(signals.request_finished) as calls:
        _, result, _ = call(app, "/hello")
        assert isinstance(result, list)
        assert list(result) == [b"Hello, World!"]
        result.close()
        result.close()
    assert len(calls) == 1
    with capture(signals.request_finished) as calls:
        _, result, _ = call(app, "/stream-error")
        assert not isinstance(result, list)
        chunks = iter(result)
        assert next(chunks) == b"start,"
        with pytest.raises(RuntimeError):
            next(chunks)
        result.close()
    assert len(calls) == 1


def test_no_request_signal_is_sent_while_nothing_listens(app, monkeypatch):
    sent = []
    for signal in (signals.request_started, signals.request_finished):
        monkeypatch.setattr(signal, "send_robust", lambda *a, **k: sent.append(a))
    # Receivers other tests' modules connected (for other senders) stay out.
    with signals.request_started.muted(), signals.request_finished.muted():
        _, result, _ = call(app, "/hello")
        assert b"".join(result) == b"Hello, World!"
        result.close()
    assert sent == []


# The request signals' sends (request_started, request_finished) call exactly
# the receivers send_robust() would, whatever kind they are.


def _request(app, path="/hello", **options):
    _, result, started = call(app, path, **options)
    b"".join(result)
    result.close()
    return started[0][0]


def test_request_receivers_for_one_sender_and_async_ones_are_called(app):
    ran = []

    class OtherApp(App):
        pass

    def for_app(sender, **kwargs):
        ran.append(("app", kwargs["status"]))

    def for_other(sender, **kwargs):
        ran.append(("other", kwargs["status"]))

    async def later(sender, **kwargs):
        ran.append(("async", kwargs["status"]))

    finished = signals.request_finished
    with finished.connected_to(for_app, sender=App):
        with finished.connected_to(for_other, sender=OtherApp):
            with finished.connected_to(later):
                assert _request(app) == "200 OK"
    assert ran == [("app", 200), ("async", 200)]


def test_a_receiver_connected_or_collected_between_requests_is_seen(app):
    import gc

    ran = []

    def make_receiver(name):
        def receiver(sender, **kwargs):
            ran.append(name)

        return receiver

    kept = make_receiver("kept")
    passing = make_receiver("passing")
    signals.request_started.connect(kept)
    try:
        assert _request(app) == "200 OK"
        signals.request_started.connect(passing)
        assert _request(app) == "200 OK"
        del passing
        gc.collect()
        assert _request(app) == "200 OK"
    finally:
        signals.request_started.disconnect(kept)
    assert _request(app) == "200 OK"
    assert ran == ["kept", "kept", "passing", "kept"]


def test_many_request_receivers_run_in_priority_order(app):
    ran = []

    def make_receiver(number):
        def receiver(sender, **kwargs):
            ran.append(number)

        return receiver

    receivers = [make_receiver(number) for number in range(30)]
    for number, receiver in enumerate(receivers):
        signals.request_finished.connect(receiver, weak=False, priority=number % 3)
    try:
        assert _request(app) == "200 OK"
    finally:
        for receiver in receivers:
            signals.request_finished.disconnect(receiver)
    expected = sorted(range(30), key=lambda number: (-(number % 3), number))
    assert ran == expected


@pytest.mark.parametrize(
    ("line", "status"),
    [("299 Fine By Us", 299), ("404 NOT FOUND", 404), ("oops", 500), ("", 500)],
)
def test_request_finished_reads_any_status_line(app, line, status):
    def rewrite(environ, start_response):
        def start(_status, headers, exc_info=None):
            return start_response(line, headers, exc_info)

        return app.dispatch(environ, start)

    app.wsgi_app = rewrite
    with capture(signals.request_finished) as calls:
        _request(app)
    calls.assert_sent_once_with(signals.request_finished, status=status)


@pytest.mark.parametrize(
    "path", ["/inner/stream", "/inner/stream-error", "/inner/hello"]
)
def test_an_app_mounted_in_another_finishes_both_requests(app, path):
    from werkzeug.middleware.dispatcher import DispatcherMiddleware

    class OuterApp(App):
        pass

    outer = OuterApp(__name__)
    outer.add_wsgi_middleware(DispatcherMiddleware, {"/inner": app})
    with capture(*REQUEST_SIGNALS) as calls:
        _, result, _ = call(outer, path)
        chunks = []
        with pytest.raises(RuntimeError) if "error" in path else nullcontext():
            for chunk in result:
                chunks.append(chunk)
        result.close()
        result.close()
    assert [call.sender for call in calls.calls_of(signals.request_started)] == [
        OuterApp,
        App,
    ]
    # Each app ends its own request: the mounted one first, as its body
    # closes inside the outer one's.
    finished = calls.calls_of(signals.request_finished)
    assert [call.sender for call in finished] == [App, OuterApp]
    # A failure while streaming goes through both: each app reports it.
    reported = calls.calls_of(signals.got_request_exception)
    assert [call.sender for call in reported] == (
        [App, OuterApp] if "error" in path else []
    )
    if path == "/inner/stream":
        assert lifecycle.EVENTS == ["generator closed"]


@pytest.mark.parametrize("one_sender", [False, True])
def test_the_first_request_started_failure_is_the_500s_every_one_logged(
    app, caplog, one_sender
):
    """The generated send and send_robust() (a receiver for one sender) agree."""

    def first(**kwargs):
        raise ValueError("first")

    def second(**kwargs):
        raise KeyError("second")

    def other(**kwargs):
        raise AssertionError("a receiver for another sender ran")

    # A receiver for another sender makes the app's send send_robust() itself.
    started_signal = signals.request_started
    for_another = (
        started_signal.connected_to(other, sender=object())
        if one_sender
        else nullcontext()
    )
    with capture(signals.got_request_exception) as calls:
        with started_signal.connected_to(first), started_signal.connected_to(second):
            with for_another:
                _, result, started = call(app, "/hello")
                result.close()
    assert started[0][0].startswith("500")
    assert len(calls) == 1
    logged = [r.exc_info[1] for r in caplog.records if r.exc_info]
    # Each receiver's failure, then the unhandled exception: the first one.
    assert [type(exc) for exc in logged] == [ValueError, KeyError, ValueError]
    assert logged[2] is logged[0]


@pytest.mark.parametrize("for_one_sender", [False, True])
def test_a_request_started_receiver_returning_an_exception_is_not_a_failure(
    app, for_one_sender
):
    # A receiver for one sender takes send_robust()'s path, the others the
    # generated one: both treat a returned value as a response, never a failure.
    def returns_an_exception(sender, **kwargs):
        return ValueError("a value, not a failure")

    sender = App if for_one_sender else None
    with signals.request_started.connected_to(returns_an_exception, sender=sender):
        assert _request(app) == "200 OK"


@pytest.mark.parametrize("weak", [False, True], ids=["strong", "weak"])
@pytest.mark.parametrize("path", ["/hello", "/stream"])
def test_a_lone_request_receiver_gets_what_send_robust_gives(app, weak, path):
    # One strongly held receiver is called by the request path itself, any
    # other set through an emitter (dispatch.py): the two must not differ.
    calls = []

    def started(**kwargs):
        calls.append(("started", kwargs))

    def finished(**kwargs):
        calls.append(("finished", kwargs))

    signals.request_started.connect(started, weak=weak)
    signals.request_finished.connect(finished, weak=weak)
    try:
        environ, result, _ = call(app, path)
        b"".join(result)
        result.close()
    finally:
        signals.request_started.disconnect(started)
        signals.request_finished.disconnect(finished)
    assert [name for name, _ in calls] == ["started", "finished"]
    assert calls[0][1] == {
        "signal": signals.request_started,
        "sender": type(app),
        "environ": environ,
    }
    sent = calls[1][1]
    assert set(sent) == {"signal", "sender", "environ", "status", "duration"}
    assert (sent["signal"], sent["sender"], sent["environ"], sent["status"]) == (
        signals.request_finished,
        type(app),
        environ,
        200,
    )
    assert 0 < sent["duration"] < 60
    assert _request(app, path) == "200 OK"
    assert len(calls) == 2  # disconnected: not called again


@pytest.mark.parametrize("weak", [False, True], ids=["strong", "weak"])
def test_a_lone_failing_request_receiver_is_logged_once(app, weak, caplog):
    def explode_started(**kwargs):
        raise ValueError("started failed")

    def explode_finished(**kwargs):
        raise ValueError("finished failed")

    with capture(signals.got_request_exception) as calls:
        signals.request_started.connect(explode_started, weak=weak)
        try:
            assert _request(app).startswith("500")
        finally:
            signals.request_started.disconnect(explode_started)
        calls.assert_sent_once_with(signals.got_request_exception)
        signals.request_finished.connect(explode_finished, weak=weak)
        try:
            assert _request(app) == "200 OK"
            assert _request(app, "/stream") == "200 OK"
        finally:
            signals.request_finished.disconnect(explode_finished)
    failures = [
        record.exc_info[1].args
        for record in caplog.records
        if record.exc_info and isinstance(record.exc_info[1], ValueError)
    ]
    assert failures.count(("started failed",)) == 2  # the receiver's, the 500's
    assert failures.count(("finished failed",)) == 2
    named = [r for r in caplog.records if "explode_" in r.getMessage()]
    assert len(named) == 3
