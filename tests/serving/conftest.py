from __future__ import annotations

import pytest
from servers import Server


@pytest.fixture
def start_server(tmp_path):
    servers: list[Server] = []

    def start(args, env=None, app="fixture_app:app", ready=True):
        server = Server(tmp_path, app, args, env or {})
        servers.append(server)
        if ready:
            server.wait_ready()
        return server

    yield start
    for server in servers:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait(5)
        if not server.log_file.closed:
            server.log_file.close()
