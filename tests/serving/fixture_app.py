"""A tiny WSGI app for the serving tests: counts request starts and finishes.

Each worker appends "started <path>" / "finished <path>" lines to
``$FIXTURE_LOG_DIR/<pid>.log`` so a test can check, after the server stopped,
that every request that started also finished.
"""

from __future__ import annotations

import os
import time
import urllib.parse

LOG_DIR = os.environ.get("FIXTURE_LOG_DIR", "")


def _log(line: str) -> None:
    if LOG_DIR:
        with open(os.path.join(LOG_DIR, f"{os.getpid()}.log"), "a") as file:
            file.write(line + "\n")


class _Body:
    def __init__(self, path: str, chunks: list[bytes]) -> None:
        self.path = path
        self.chunks = chunks

    def __iter__(self):
        return iter(self.chunks)

    def close(self) -> None:
        _log(f"finished {self.path}")


def app(environ, start_response):
    path = environ["PATH_INFO"]
    _log(f"started {path}")
    query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
    if path == "/slow":
        time.sleep(int(query.get("ms", ["500"])[0]) / 1000)
    body = f"pid={os.getpid()}\n".encode()
    start_response(
        "200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
    )
    return _Body(path, [body])
