from __future__ import annotations

import pathlib

import pytest
from support import Server

HERE = pathlib.Path(__file__).resolve().parent
"""Where fixture_app.py lives: on the servers' PYTHONPATH."""


@pytest.fixture
def start_server(tmp_path):
    servers: list[Server] = []

    def start(args, env=None, app="fixture_app:app", ready=True):
        server = Server.serve(tmp_path, app, args, env, pythonpath=[HERE])
        servers.append(server)
        if ready:
            server.wait_ready()
        return server

    yield start
    for server in servers:
        server.kill()
