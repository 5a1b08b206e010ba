"""``--url`` books: what a deployment's ``/metrics`` says, read before and after.

A stand-in deployment (the standard library's HTTP server, on 127.0.0.1)
answers ``/metrics`` with the texts each test gives, in order.
"""

from __future__ import annotations

import http.server
import threading

import pytest

from framework import metrics
from framework.loadtest.servers import RemoteInstance


class Deployment:
    """Answers ``GET /metrics`` with the next of ``bodies`` (the last repeats)."""

    def __init__(self, bodies):
        self.bodies = list(bodies)
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = (
                    owner.bodies.pop(0) if len(owner.bodies) > 1 else owner.bodies[0]
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", metrics.CONTENT_TYPE)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


@pytest.fixture
def deployment():
    made = []

    def make(*bodies):
        made.append(Deployment(bodies))
        return made[-1]

    yield make
    for server in made:
        server.close()


def exposition(requests, durations):
    """``/metrics`` of a server that counted ``requests`` with these durations."""
    slots = [0] * (len(metrics.BUCKET_BOUNDS) + 1)
    for duration in durations:
        index = sum(1 for bound in metrics.BUCKET_BOUNDS if bound < duration)
        slots[index] += 1
    snapshot = metrics.Snapshot(
        request_started=requests,
        request_finished=requests,
        duration_ns=round(sum(durations) * 1e9),
        max_ns=round(max(durations, default=0) * 1e9),
        buckets=tuple(slots),
    )
    return metrics.prometheus_text({"1": snapshot}, shared=True, all_buckets=True)


def test_the_books_are_the_difference_and_the_longest_request_is_the_runs(
    deployment,
):
    # Before the run: one slow request long ago (5 s). During it: 50 fast
    # ones, and the first read itself (counted once it finished).
    old = [5.0] + [0.002] * 9
    during = [0.001] * 50
    server = deployment(
        exposition(10, old), exposition(10 + 50 + 1, [*old, *during, 0.0005])
    )
    remote = RemoteInstance(0, server.url, "/metrics", {}, timeout=10)
    remote.start()
    books = remote.books()
    assert (books.request_started, books.request_finished) == (50, 50)
    # Not the server's lifetime maximum: at most the top of the run's bucket.
    assert books.server.max_seconds <= 0.0011
    assert 0.0009 <= books.server.percentile(0.99) <= 0.0011


def test_a_longer_request_during_the_run_is_its_maximum(deployment):
    old = [0.002] * 10
    during = [0.001] * 20 + [0.75]
    server = deployment(exposition(10, old), exposition(10 + 21 + 1, old + during))
    remote = RemoteInstance(0, server.url, "/metrics", {}, timeout=10)
    remote.start()
    assert remote.books().server.max_seconds == pytest.approx(0.75)


ODD_METRICS = [
    # A bucket without its le label, a count too large for an integer.
    (
        'framework_signals_total{signal="request_started"} 1\n'
        "framework_request_duration_seconds_bucket 5\n",
        "line 2: framework_request_duration_seconds_bucket without its le label",
    ),
    (
        'framework_signals_total{signal="request_started"} +Inf\n',
        "line 1: the count +Inf is not a whole number",
    ),
    ("some_other_exporter_total 3\n", "no framework_signals_total"),
]


@pytest.mark.parametrize(("body", "reason"), ODD_METRICS)
def test_metrics_that_are_not_framework_metrics_are_one_usage_line(
    deployment, project, loadtest, body, reason
):
    server = deployment(body)
    run = loadtest("--url", server.url, cwd=project, out=False)
    assert run.code == 2, run.stdout + run.stderr
    assert run.stderr == (
        f"Error: --url {server.url}: {server.url}/metrics is not"
        f" framework.metrics' Prometheus text ({reason}).\n"
    )
