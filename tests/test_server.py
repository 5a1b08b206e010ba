"""Server-side request signals under a real gunicorn on 127.0.0.1."""

from __future__ import annotations

import http.client
import socket
import time

import pytest
from support import ROOT
from support import Server

pytestmark = pytest.mark.server


class SignalServer:
    """gunicorn serving tests/web_apps/served.py; its receivers log to a file."""

    def __init__(self, tmp_path, timeout):
        self.signal_log = tmp_path / "signals.log"
        self.signal_log.touch()
        self.server = Server.gunicorn(
            tmp_path,
            "tests.web_apps.served:app",
            ["--workers", "1", "--timeout", str(timeout), "--graceful-timeout", "1"],
            env={"WEB_APPS_SIGNAL_LOG": str(self.signal_log)},
            cwd=ROOT,
            clean=True,
        )
        self.port = self.server.port
        self.output = self.server.log_path
        self.process = self.server.process
        try:
            self.server.wait_ready()
        except AssertionError:
            self.stop()
            raise

    def stop(self):
        self.server.stop()

    def lines(self):
        return self.signal_log.read_text().splitlines()

    def wait_for(self, line, timeout=30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lines = self.lines()
            if line in lines:
                return lines
            time.sleep(0.02)
        raise AssertionError(
            f"{line!r} never logged; got {self.lines()}\n{self.output.read_text()}"
        )

    def get(self, path, timeout=10):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = SignalServer(tmp_path_factory.mktemp("gunicorn"), timeout=2)
    yield server
    server.stop()


def test_plain_request(server):
    assert server.get("/hello") == (200, b"Hello, World!")
    lines = server.wait_for("finished /hello 200")
    assert lines.index("started /hello") < lines.index("finished /hello 200")


def test_streamed_body_finishes_after_delivery(server):
    status, body = server.get("/stream")
    assert (status, body) == (200, b"chunk0;chunk1;chunk2;chunk3;chunk4;")
    lines = server.wait_for("finished /stream 200")
    assert lines.index("generator closed /stream") < lines.index("finished /stream 200")
    assert lines.count("finished /stream 200") == 1


def test_client_disconnect_mid_stream(server):
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    sock.sendall(b"GET /endless HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert sock.recv(1024).startswith(b"HTTP/1.1 200")
    sock.setsockopt(
        socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
    )
    sock.close()
    lines = server.wait_for("finished /endless 200")
    assert "endless ran out /endless" not in lines
    assert lines.index("generator closed /endless") < lines.index(
        "finished /endless 200"
    )


def test_exception_mid_stream_truncates_and_finishes(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("GET", "/stream-error")
    response = conn.getresponse()
    assert response.status == 200
    with pytest.raises(http.client.IncompleteRead, match="8 bytes read") as info:
        response.read()
    assert info.value.partial == b"partial;"
    conn.close()
    lines = server.wait_for("finished /stream-error 200")
    assert lines.count("exception /stream-error") == 1
    assert lines.index("exception /stream-error") < lines.index(
        "finished /stream-error 200"
    )


def test_file_response(server):
    assert server.get("/file") == (200, b"file body")
    lines = server.wait_for("finished /file 200")
    assert lines.index("file closed /file") < lines.index("finished /file 200")


def test_disk_file_response_through_the_servers_file_wrapper(server):
    source = (ROOT / "tests" / "web_apps" / "served.py").read_bytes()
    assert server.get("/disk-file") == (200, source)
    lines = server.wait_for("finished /disk-file 200")
    assert lines.index("disk file closed /disk-file") < lines.index(
        "finished /disk-file 200"
    )


def test_header_the_server_refuses_is_one_logged_500(server):
    status, _ = server.get("/refused-header")
    assert status == 500
    lines = server.wait_for("finished /refused-header 500")
    assert lines.count("exception /refused-header") == 1
    output = server.output.read_text()
    assert "InvalidResponseHeader" in output
    assert "already set" not in output


def test_worker_timeout_still_finishes_the_request(server):
    # Runs after the other requests but the last test: the timeout replaces
    # the worker.
    # gunicorn answers the aborted request with its own 500 page.
    status, body = server.get("/sleep", timeout=15)
    assert status == 500
    assert b"woke up" not in body
    lines = server.wait_for("finished /sleep 500")
    assert lines.count("started /sleep") == 1
    assert lines.count("finished /sleep 500") == 1
    assert "WORKER TIMEOUT" in server.output.read_text()


def test_worker_timeout_mid_stream_finishes_the_request(server):
    # After the previous test: gunicorn has replaced the timed-out worker.
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=15)
    conn.request("GET", "/slow-stream")
    response = conn.getresponse()
    assert response.status == 200
    with pytest.raises(http.client.IncompleteRead, match="6 bytes read") as info:
        response.read()
    assert info.value.partial == b"first;"
    conn.close()
    lines = server.wait_for("finished /slow-stream 200")
    assert lines.count("started /slow-stream") == 1
    assert lines.count("finished /slow-stream 200") == 1
    assert "exception /slow-stream" not in lines
    assert lines.index("generator closed /slow-stream") < lines.index(
        "finished /slow-stream 200"
    )
