"""Scenario files: read, checked with file and line, compiled for the generators."""

from __future__ import annotations

import http.server
import json
import pathlib
import threading

import pytest

from framework import App
from framework.loadtest import LoadTestError
from framework.loadtest import ScenarioError
from framework.loadtest import default_scenario
from framework.loadtest import load_scenario
from framework.loadtest._plan import compile_plan
from framework.loadtest._plan import split
from framework.loadtest.prepare import run_setup
from framework.loadtest.scenario import parse_template
from framework.loadtest.scenario import render
from framework.loadtest.wrk import lua_literal

ROOT = pathlib.Path(__file__).resolve().parents[2]

COMPLETE = """
name = "shop"

[values]
sku = ["a 1", "b/2", "c\\"3"]

[defaults]
headers = { Accept = "application/json" }

[server]
env = { FRAMEWORK_FAIL_VIEW = "1" }
prepare = [["framework", "createtoken", "--name", "load"]]

[metrics]
path = "/internal/metrics"
headers = { Authorization = "Bearer ops-token" }

[[setup]]
method = "post"
path = "/api/tokens"
json = { name = "load-${unique}" }
expect = 201
capture = { token = "json:token", session = "cookie:sid" }

[[request]]
name = "search"
weight = 3
path = "/search?q=${sku}"

[[request]]
name = "buy"
method = "POST"
path = "/cart/${sku}"
headers = { Authorization = "Bearer ${token}" }
json = { sku = "${sku}", id = "${unique}", price = 3 }
expect = [201, 409]

[[request]]
name = "crash"
path = "/fail"
expect = 500

[[request]]
name = "teapot"
path = "/teapot"
body = "costs $$5"
expect = "any"
raises = false
"""


def write(tmp_path, text, name="scenario.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_complete_scenario_is_read(tmp_path):
    scenario = load_scenario(write(tmp_path, COMPLETE))
    assert [request.name for request in scenario.requests] == [
        "search",
        "buy",
        "crash",
        "teapot",
    ]
    search, buy, crash, teapot = scenario.requests
    assert (search.method, search.weight, search.expect) == ("GET", 3, {200})
    assert search.path == ["/search?q=", ("sku", "path")]
    assert dict(search.headers) == {"Accept": ["application/json"]}
    assert buy.expect == {201, 409}
    assert dict(buy.headers)["Content-Type"] == ["application/json"]
    assert buy.placeholders == {"sku", "token", "unique"}
    assert crash.expect == {500} and crash.raises
    assert teapot.expect is None and not teapot.raises
    assert teapot.body == ["costs $5"]
    (setup,) = scenario.setup
    assert setup.method == "POST"
    assert setup.capture == {"token": "json:token", "session": "cookie:sid"}
    assert scenario.values == {"sku": ["a 1", "b/2", 'c"3']}
    assert scenario.server_env == {"FRAMEWORK_FAIL_VIEW": "1"}
    assert scenario.prepare == [["framework", "createtoken", "--name", "load"]]
    assert scenario.metrics_path == "/internal/metrics"
    assert scenario.metrics_headers == {"Authorization": "Bearer ops-token"}


def test_values_are_encoded_for_where_they_go(tmp_path):
    scenario = load_scenario(write(tmp_path, COMPLETE))
    buy = scenario.by_name()["buy"]
    values = {"sku": 'c"3', "unique": "lt1-0-1-9", "token": "t0k"}
    assert render(buy.path, values) == "/cart/c%223"
    body = json.loads(render(buy.body, values))
    assert body == {"sku": 'c"3', "id": "lt1-0-1-9", "price": 3}
    assert render(dict(buy.headers)["Authorization"], values) == "Bearer t0k"


def test_the_plan_is_plain_data_with_constants_written_in(tmp_path):
    scenario = load_scenario(write(tmp_path, COMPLETE))
    plan = compile_plan(scenario, {"token": "t0k"}, "lt9")
    buy = plan.requests[1]
    assert buy["headers"][1] == ["Authorization", ["Bearer t0k"]]
    assert buy["path"] == ["/cart/", [0, 1]]  # list 0, encoded for a path
    assert buy["unique"] and not plan.requests[0]["unique"]
    # In a path: percent-encoded, but for / (a value may be a sub-path).
    assert plan.values[0][1] == ["a%201", "b/2", "c%223"]
    assert [request["upto"] for request in plan.requests] == [3, 4, 5, 6]
    assert plan.total_weight == 6
    json.dumps(plan.requests)  # what the Locust file embeds
    assert lua_literal(plan.requests[0]).startswith('{["name"] = "search"')


def test_lua_literals_escape_everything_that_could_break_out(tmp_path):
    assert lua_literal('a"b\\c\n]]é') == '"a\\034b\\092c\\010]]\\195\\169"'
    assert lua_literal([1, None, True, 2.5]) == "{1, nil, true, 2.5}"


def test_split_shares_whole_numbers():
    assert split(10, 3) == [4, 3, 3]
    assert sum(split(1001, 7)) == 1001


@pytest.mark.parametrize(
    "text, line, message",
    [
        ('[[request]]\npath = "/"\nmethd = "GET"\n', 3, "unknown key 'methd'"),
        ('[[request]]\npath = "/"\nexpect = [200,\n', 3, "TOML syntax"),
        ('[[request]]\npath = "x"\n', 2, "path must be a string starting with '/'"),
        ("[[request]]\nweight = 2\n", 1, "(it is missing)"),
        ('[[request]]\npath = "/"\nweight = 0\n', 3, "weight must be a whole number"),
        ('[[request]]\npath = "/"\nmethod = "BREW"\n', 3, "method 'BREW' is not"),
        ('[[request]]\npath = "/"\nexpect = 999\n', 3, "expect must be a status"),
        ('[[request]]\npath = "/a b"\n', 2, "has a space"),
        ('[[request]]\npath = "/${nope}"\n', 1, "uses ${nope}"),
        ('[[request]]\npath = "/$x"\n', 2, "a lone '$'"),
        ('[[request]]\npath = "/"\nbody = "x"\njson = {}\n', 4, "not both"),
        (
            '[[request]]\nname = "a"\npath = "/"\n\n'
            '[[request]]\nname = "a"\npath = "/b"\n',
            6,
            "the name 'a' is already used",
        ),
        ('[server]\nenv = { X = 1 }\n[[request]]\npath = "/"\n', 2, "must be a string"),
        (
            '[server]\nprepare = ["ls"]\n[[request]]\npath = "/"\n',
            2,
            "list of commands",
        ),
        ('server = "x"\n[[request]]\npath = "/"\n', 1, "[server] must be a table"),
        ('[metrics]\npth = "/m"\n', 2, "unknown key 'pth' in [metrics]"),
        ("[defaults]\nheader = {}\n", 2, "unknown key 'header' in [defaults]"),
        ('[values]\ntag = []\n[[request]]\npath = "/"\n', 2, "non-empty list"),
        ('[values]\nunique = ["x"]\n[[request]]\npath = "/"\n', 2, "cannot be a"),
        ('[[setup]]\npath = "/"\ncapture = { t = "body" }\n', 3, "capture t = 'body'"),
        ('tittle = "x"\n[[request]]\npath = "/"\n', 1, "unknown key 'tittle'"),
        ('name = "no requests"\n', 1, "no [[request]] table"),
        (
            '[[request]]\npath = "/"\nheaders = { "a b" = "x" }\n',
            3,
            "not a header name",
        ),
        (
            '[[request]]\npath = "/"\nheaders = { X = "a\\r\\nY: b" }\n',
            3,
            "X = 'a\\r\\nY: b' has a control character",
        ),
        ('[metrics]\nheaders = { X = "a\\nb" }\n', 2, "has a control character"),
        ('[server]\nenv = { A = "a\\u0000" }\n', 2, "has a control character"),
        ('[[request]]\npath = "/a\\u0001"\n', 2, "a control character"),
        ('[[request]]\npath = "/"\njson = { a = nan }\n', 3, "cannot be sent as JSON"),
        ('[[request]]\npath = "/"\njson = { d = 2024-01-02 }\n', 3, "type date"),
        (
            '[metrics]\nheaders = { Authorization = "Bearer ${token}" }\n'
            '[[request]]\npath = "/"\n',
            2,
            "sent as written, before any set-up request",
        ),
    ],
)
def test_mistakes_are_reported_with_the_file_and_line(tmp_path, text, line, message):
    path = write(tmp_path, text)
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    assert str(caught.value).startswith(f"{path}:{line}: "), str(caught.value)
    assert message in str(caught.value)


def test_unreadable_files_are_reported(tmp_path):
    with pytest.raises(ScenarioError, match="cannot read it"):
        load_scenario(tmp_path / "missing.toml")
    (tmp_path / "latin.toml").write_bytes(b'name = "caf\xe9"\n')
    with pytest.raises(ScenarioError, match=r"latin.toml:1: the file is not UTF-8"):
        load_scenario(tmp_path / "latin.toml")


def test_templates_split_into_literals_and_placeholders():
    assert parse_template("/a/${x}/b$$/${unique}", "path") == [
        "/a/",
        ("x", "path"),
        "/b$/",
        ("unique", "path"),
    ]
    with pytest.raises(ValueError, match="not a placeholder name"):
        parse_template("${1x}", "raw")


def test_the_default_scenario_is_every_get_route_without_parameters():
    app = App(__name__)
    for rule in ("/", "/about", "/items/<int:item>", "/static/<path:name>"):
        app.add_route(rule, lambda request, **kwargs: "", endpoint=rule)
    app.add_route("/submit", lambda request: "", methods=["POST"], endpoint="post")
    scenario = default_scenario(app)
    assert [request.name for request in scenario.requests] == ["/", "/about"]
    assert all(request.expect is None for request in scenario.requests)
    assert scenario.default


def test_an_app_without_such_routes_needs_a_scenario():
    with pytest.raises(ScenarioError, match="no GET route without parameters"):
        default_scenario(App(__name__))
    with pytest.raises(ScenarioError, match="has no URL map"):
        default_scenario(lambda environ, start_response: [])


def test_app_examples_scenario_is_valid():
    scenario = load_scenario(ROOT / "app_example" / "loadtest.toml")
    names = {request.name: request for request in scenario.requests}
    assert names["write"].expect == {201} and "unique" in names["write"].placeholders
    assert names["fail"].expect == {500}


def test_set_up_requests_send_what_http_client_cannot_or_say_why(tmp_path):
    paths = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            paths.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}"
    try:
        # A path's UTF-8 goes percent-encoded, as Locust sends it.
        scenario = load_scenario(
            write(tmp_path, '[[setup]]\npath = "/café"\n[[request]]\npath = "/"\n')
        )
        assert run_setup(scenario, url, "lt1", 5.0, lambda line: None) == ({}, 1)
        assert paths == ["/caf%C3%A9"]
        # A header value beyond latin-1 is one line, not a UnicodeEncodeError.
        scenario = load_scenario(
            write(
                tmp_path,
                '[[setup]]\npath = "/"\nheaders = { X = "5 €" }\n'
                '[[request]]\npath = "/"\n',
            )
        )
        with pytest.raises(LoadTestError, match=r"set-up request 1 \(GET /\) cannot"):
            run_setup(scenario, url, "lt1", 5.0, lambda line: None)
        assert paths == ["/caf%C3%A9"]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
