"""app_example served by a real gunicorn on SQLite or PostgreSQL, and its database.

Used by the reliability tests (concurrency, database faults, bad input): the
``bookmarks`` fixture factory starts ``framework serve`` with the given
gunicorn arguments on a fresh database of the requested backend and gives
the test a direct connection to the same database, so what the HTTP answers
claim can be checked against the rows. :func:`app_example_in_process` sets
app_example up in the test's own process instead, for WebTest.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import pathlib
import sqlite3
import typing as t

import pytest
from support import Server
from support import create_pg_database
from support import drop_pg_database


@contextlib.contextmanager
def app_example_in_process(
    tmp_path: pathlib.Path, **overrides: t.Any
) -> t.Iterator[t.Any]:
    """Configure app_example in this process on a fresh SQLite file, migrated.

    Its settings module with ``overrides`` on top; yields its app. Settings,
    apps, connections and metrics are reset afterwards.
    """
    from app_example import settings as app_settings
    from framework import metrics
    from framework.apps import apps
    from framework.cli import call_command
    from framework.conf import settings
    from framework.orm import connections

    options = {
        name: value for name, value in vars(app_settings).items() if name.isupper()
    }
    options["DATABASES"] = {"default": f"sqlite:///{tmp_path / 'db.sqlite3'}"}
    options.update(overrides)
    settings.reset()
    settings.configure(**options)
    apps.reset()
    connections.reset()
    # NOTE: imported only now: its first import, with no SECRET_KEY set,
    # would write a key file beside the default database, in the checkout.
    import app_example.wsgi

    # What framework serve does in every worker; here, this process only.
    metrics.enable("")
    try:
        call_command(
            "migrate", app="app_example.wsgi:app", interactive=False, verbosity=0
        )
        yield app_example.wsgi.app
    finally:
        connections.reset()
        metrics.disable()
        settings.reset()
        apps.reset()


BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
"""Parametrise a test module's ``backend`` fixture with these."""


class Database:
    """A direct DB-API connection to the served database (autocommit)."""

    def __init__(self, vendor: str, url: str, path: pathlib.Path | None) -> None:
        self.vendor = vendor
        self.url = url
        self.path = path
        self.name = url.rsplit("/", 1)[1] if vendor == "postgresql" else ""

    def rows(self, sql: str, params: t.Sequence[t.Any] = ()) -> list[tuple[t.Any, ...]]:
        """Run one query (``%s`` placeholders) and return every row."""
        if self.vendor == "sqlite":
            with contextlib.closing(sqlite3.connect(self.path)) as conn:
                rows = conn.execute(sql.replace("%s", "?"), params).fetchall()
                conn.commit()
                return rows
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            return conn.execute(sql, params).fetchall()

    def tag_counts(self) -> list[tuple[str, int, int]]:
        """``(name, bookmark_count, link rows)`` of every tag."""
        return self.rows(
            "SELECT t.name, t.bookmark_count,"
            " (SELECT count(*) FROM app_example_bookmark_tags l WHERE l.tag_id = t.id)"
            " FROM app_example_tag t ORDER BY t.name"
        )


API_TOKEN = "reliability-tests-token-0123456789abcdef0123456789"
"""Registered in every served database; sent with every request (API writes)."""


class Bookmarks:
    """A served app_example and its database."""

    def __init__(self, server: Server, db: Database) -> None:
        self.server = server
        self.db = db
        # What `framework createtoken tests --token API_TOKEN` stores: the hash.
        digest = hashlib.sha256(API_TOKEN.encode()).hexdigest()
        db.rows(
            "INSERT INTO app_example_apitoken (name, token_hash, created)"
            " VALUES (%s, %s, CURRENT_TIMESTAMP) RETURNING id",
            ("tests", digest),
        )

    def call(
        self,
        method: str,
        path: str,
        payload: t.Any = None,
        headers: dict[str, str] | None = None,
        timeout: float = 30.0,
    ) -> tuple[int, t.Any]:
        """Send one request; return the status and the decoded JSON (or bytes)."""
        body = None if payload is None else json.dumps(payload).encode()
        all_headers = {"Content-Type": "application/json"} if body else {}
        all_headers["Authorization"] = f"Bearer {API_TOKEN}"
        if path.startswith("/api/"):
            all_headers["Accept"] = "application/json"
        all_headers.update(headers or {})
        status, response_headers, data = self.server.request(
            method, path, body, all_headers, timeout=timeout
        )
        if response_headers.get("Content-Type", "").startswith("application/json"):
            return status, json.loads(data)
        return status, data

    def raw(self, data: bytes, timeout: float = 30.0) -> bytes:
        """Send raw bytes on a new connection; return everything the server sent.

        The API token's ``Authorization`` header is put after the request line.
        """
        import socket

        line, crlf, rest = data.partition(b"\r\n")
        if crlf:
            auth = f"Authorization: Bearer {API_TOKEN}\r\n".encode()
            data = line + crlf + auth + rest

        with socket.create_connection(("127.0.0.1", self.server.port), timeout) as sock:
            # NOTE: a server may answer (413) and close before it has read the
            # whole request; the client then sees a reset while sending.
            with contextlib.suppress(OSError):
                sock.sendall(data)
                sock.shutdown(socket.SHUT_WR)
            chunks = []
            with contextlib.suppress(ConnectionResetError):
                while True:
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    chunks.append(chunk)
        return b"".join(chunks)


class Launcher:
    """Starts app_example servers on fresh databases; stops them and drops those."""

    def __init__(self, backend: str, directory: pathlib.Path) -> None:
        self.backend = backend
        self.directory = directory
        self.started: list[Server] = []
        self.databases: list[str] = []

    def start(
        self,
        args: t.Sequence[str] = (),
        env: dict[str, str] | None = None,
        app: str = "app_example.wsgi:app",
        pythonpath: t.Sequence[pathlib.Path] = (),
    ) -> Bookmarks:
        """Serve ``app`` (app_example or a module wrapping it) on a new database."""
        if self.backend == "sqlite":
            path = self.directory / f"bookmarks-{len(self.started)}.db"
            url = f"sqlite:///{path}"
            db = Database("sqlite", url, path)
        else:
            name, url = create_pg_database("fw_rel")
            self.databases.append(name)
            db = Database("postgresql", url, None)
        served_env = {"DATABASE_URL": url, **(env or {})}
        served = served_env["DATABASE_URL"]
        if served != url and served.startswith("sqlite:///"):
            path = pathlib.Path(served[len("sqlite:///") :])
            db = Database("sqlite", served, path)
        server = Server.serve(
            self.directory, app, ["--no-access-log", *args], served_env, pythonpath
        )
        self.started.append(server)
        server.wait_ready()
        return Bookmarks(server, db)

    def close(self) -> None:
        """Stop every server started, then drop their PostgreSQL databases."""
        for server in self.started:
            try:
                server.stop()
            except Exception:
                server.kill()
        for name in self.databases:
            drop_pg_database(name)


@pytest.fixture
def bookmarks(backend, tmp_path):
    """Start app_example: ``bookmarks(args=(...), env={...}) -> Bookmarks``.

    ``app`` and ``pythonpath`` serve another module that wraps app_example.
    """
    launcher = Launcher(backend, tmp_path)
    yield launcher.start
    launcher.close()


def failed_http(output: str) -> list[str]:
    """The lines of a server's output that report an error or a traceback."""
    return [
        line
        for line in output.splitlines()
        if "Traceback" in line or "ERROR" in line or "Internal Server Error" in line
    ]
