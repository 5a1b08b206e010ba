"""framework.setup() runs under every way of serving: receivers and LOGGING apply.

The fixture app ``reqcount_app`` never imports its installed app's receivers
nor calls ``framework.setup()``: under ``framework serve`` the command sets the
project up; under plain ``gunicorn`` the App does, on its first request,
before ``request_started`` is sent.
"""

from __future__ import annotations

import json
import pathlib

import pytest
from support import Server

APPS = pathlib.Path(__file__).resolve().parent.parent / "apps"


@pytest.mark.server
@pytest.mark.parametrize("how", ["serve", "gunicorn"])
def test_installed_receivers_count_requests(tmp_path, how):
    start = Server.serve if how == "serve" else Server.gunicorn
    server = start(
        tmp_path,
        "reqcount_app:app",
        ["--workers", "1"],
        env={"FRAMEWORK_SETTINGS_MODULE": "reqcount_settings"},
        pythonpath=[APPS],
    )
    try:
        server.wait_ready()
        assert server.get("/") == (200, b"ok")
        assert server.get("/") == (200, b"ok")
        status, body = server.get("/count")
        assert status == 200
        # Every request was seen, the very first one included.
        assert json.loads(body) == {"started": 3}
    finally:
        assert server.stop() == 0
    # The default LOGGING shows the app's own INFO lines.
    assert "reqcount: request 1 started: /" in server.output
    assert "reqcount: request 3 started: /count" in server.output
