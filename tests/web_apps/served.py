"""The app tests/test_server.py runs under a real gunicorn.

Its receivers append one line per signal to the file named by the
WEB_APPS_SIGNAL_LOG environment variable, so the test can see server-side
signals.
"""

from __future__ import annotations

import io
import os
import time

from werkzeug.utils import send_file

from framework import App
from framework import Response
from framework import signals

LOG_PATH = os.environ.get("WEB_APPS_SIGNAL_LOG", os.devnull)


def log(line):
    with open(LOG_PATH, "a") as out:
        out.write(line + "\n")


def note_started(sender, environ, **kwargs):
    log(f"started {environ['PATH_INFO']}")


def note_exception(sender, request, **kwargs):
    log(f"exception {request.path}")


def note_finished(sender, environ, status, duration, **kwargs):
    log(f"finished {environ['PATH_INFO']} {status}")


signals.request_started.connect(note_started)
signals.got_request_exception.connect(note_exception)
signals.request_finished.connect(note_finished)

app = App(__name__)


@app.route("/hello")
def hello(request):
    return "Hello, World!"


@app.route("/stream")
def stream(request):
    def generate():
        try:
            for index in range(5):
                time.sleep(0.01)
                yield f"chunk{index};".encode()
        finally:
            log("generator closed /stream")

    return Response(generate(), mimetype="text/plain")


@app.route("/endless")
def endless(request):
    def generate():
        try:
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                yield b"x" * 65536
                time.sleep(0.005)
            log("endless ran out /endless")
        finally:
            log("generator closed /endless")

    return Response(generate(), mimetype="application/octet-stream")


@app.route("/stream-error")
def stream_error(request):
    def generate():
        yield b"partial;"
        raise RuntimeError("mid-stream failure")

    return Response(generate(), mimetype="text/plain")


@app.route("/file")
def file(request):
    class Tracked(io.BytesIO):
        def close(self):
            log("file closed /file")
            super().close()

    return send_file(Tracked(b"file body"), request.environ, mimetype="text/plain")


@app.route("/disk-file")
def disk_file(request):
    class Tracked(io.FileIO):
        def close(self):
            if not self.closed:
                log("disk file closed /disk-file")
            super().close()

    return send_file(Tracked(__file__), request.environ, mimetype="text/plain")


@app.route("/refused-header")
def refused_header(request):
    response = Response("x")
    response.headers["X-Ctl"] = "a\x01b"  # werkzeug lets it in, gunicorn refuses
    return response


@app.route("/slow-stream")
def slow_stream(request):
    def generate():
        try:
            yield b"first;"
            time.sleep(30)
            yield b"never"
        finally:
            log("generator closed /slow-stream")

    return Response(generate(), mimetype="text/plain")


@app.route("/sleep")
def sleep(request):
    time.sleep(30)
    return "woke up"
