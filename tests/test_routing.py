"""The fast router gives werkzeug's answers; routes register and build URLs."""

from __future__ import annotations

import pytest
from werkzeug.exceptions import HTTPException
from werkzeug.routing import BaseConverter
from werkzeug.routing import Map
from werkzeug.routing import RequestRedirect
from werkzeug.routing import Rule
from werkzeug.test import EnvironBuilder

from framework import App
from framework import RouteError
from framework.routing import Router


class EvenConverter(BaseConverter):
    regex = r"\d+"

    def to_python(self, value):
        from werkzeug.routing import ValidationError

        number = int(value)
        if number % 2:
            raise ValidationError()
        return number


def rules():
    methods = {"GET", "OPTIONS"}
    return [
        Rule("/", endpoint="index", methods=methods),
        Rule("/hello", endpoint="hello", methods=methods),
        Rule("/hello", endpoint="hello_post", methods={"POST"}),
        Rule("/users/<int:id>", endpoint="user", methods=methods),
        Rule("/users/me", endpoint="me", methods=methods),
        Rule("/users/<name>", endpoint="user_by_name", methods=methods),
        Rule("/users/<int:id>/posts/", endpoint="posts", methods=methods),
        Rule("/users/<int:id>/edit", endpoint="edit", methods={"POST"}),
        Rule("/docs/", endpoint="docs", methods=methods),
        Rule("/docs/<page>", endpoint="doc", methods=methods),
        Rule("/<section>/about", endpoint="about", methods=methods),
        Rule("/static/<path:filename>", endpoint="static", methods=methods),
        Rule("/even/<even:n>", endpoint="even", methods=methods),
        Rule("/fixed/<int(fixed_digits=3):n>", endpoint="fixed", methods=methods),
        Rule("/range/<int(min=1, max=9):n>", endpoint="range", methods=methods),
        Rule("/float/<float:x>", endpoint="float", methods=methods),
        Rule("/uuid/<uuid:u>", endpoint="uuid", methods=methods),
        Rule("/any/<any(a, b):choice>", endpoint="any", methods=methods),
        Rule("/page/", endpoint="page", defaults={"n": 1}, methods=methods),
        Rule("/page/<int:n>", endpoint="page", methods=methods),
        Rule("/old", endpoint="old", redirect_to="/hello", methods=methods),
        Rule("/files/<name>.<ext>", endpoint="file", methods=methods),
        Rule("/files/<name>.txt", endpoint="txt", methods=methods),
        Rule("/shop/<item>", endpoint="item", methods=methods),
        Rule("/shop/special/", endpoint="special", methods=methods),
        Rule("/blog/<slug>", endpoint="post", methods=methods),
        Rule("/blog/<int:year>/", endpoint="year", methods=methods),
    ]


PATHS = [
    "/",
    "",
    "/hello",
    "/hello/",
    "//hello",
    "/users/42",
    "/users/042",
    "/users/me",
    "/users/ada",
    "/users/42/posts",
    "/users/42/posts/",
    "/users/42/edit",
    "/users//42",
    "/users/",
    "/users",
    "/docs",
    "/docs/",
    "/docs/intro",
    "/docs/intro/",
    "/x/about",
    "/users/about",
    "/static/css/site.css",
    "/static/",
    "/even/4",
    "/even/5",
    "/fixed/123",
    "/fixed/12",
    "/range/5",
    "/range/10",
    "/float/1.5",
    "/float/1",
    "/uuid/6f1d2b3e-1c2d-4e5f-8a9b-0c1d2e3f4a5b",
    "/uuid/nope",
    "/any/a",
    "/any/c",
    "/page/1",
    "/page/2",
    "/page/",
    "/old",
    "/loose",
    "/loose/",
    "/files/a.txt",
    "/files/a.md",
    "/caf\xc3\xa9",
    "/\xff",
    "/users/%zz",
    "/nowhere",
    "/shop/special",
    "/shop/special/",
    "/shop/other",
    "/blog/2020",
    "/blog/2020/",
    "/blog/hello",
]
METHODS = ["GET", "HEAD", "POST", "OPTIONS", "DELETE"]


def outcome(match, env, method):
    try:
        rule, values = match(env, method)
    except RequestRedirect as exc:
        return ("redirect", exc.new_url)
    except HTTPException as exc:
        return ("error", exc.code, sorted(getattr(exc, "valid_methods", None) or []))
    return ("match", rule.endpoint, values)


def environ(path, method):
    env = EnvironBuilder("/", method=method).get_environ()
    env["PATH_INFO"] = path
    return env


@pytest.mark.parametrize("strict", [True, False], ids=["strict", "loose-rule"])
def test_fast_router_matches_werkzeug(strict):
    url_map = Map(rules(), converters={"even": EvenConverter})
    if not strict:
        url_map.add(Rule("/loose", endpoint="loose", strict_slashes=False))
    router = Router(url_map)
    assert router.enabled is strict
    for path in PATHS:
        for method in METHODS:
            env = environ(path, method)
            fast = outcome(router.match, env, method)
            slow = outcome(router.slow_match, env, method)
            assert fast == slow, (path, method)


def test_fast_path_is_used_for_plain_rules():
    url_map = Map(rules(), converters={"even": EvenConverter})
    router = Router(url_map)
    assert router.enabled
    # Unambiguous rules answer without werkzeug's matcher.
    router.slow_match = None
    assert router.match(environ("/hello", "GET"), "GET")[0].endpoint == "hello"
    rule, values = router.match(environ("/users/42/edit", "POST"), "POST")
    assert (rule.endpoint, values) == ("edit", {"id": 42})
    rule, values = router.match(environ("/float/1.5", "GET"), "GET")
    assert (rule.endpoint, values) == ("float", {"x": 1.5})
    rule, values = router.match(environ("/blog/hello", "GET"), "GET")
    assert (rule.endpoint, values) == ("post", {"slug": "hello"})


def test_host_matching_disables_the_fast_path():
    url_map = Map([Rule("/", endpoint="a", host="example.com")], host_matching=True)
    assert not Router(url_map).enabled


def test_route_registration_and_errors():
    app = App(__name__)

    @app.route("/a", methods=["GET", "POST"])
    def a(request):
        return "a"

    rule = next(app.url_map.iter_rules())
    assert rule.methods == {"GET", "HEAD", "POST", "OPTIONS"}
    assert app.view_functions["a"] is a
    assert [(r.rule, view) for r, view in app.iter_routes()] == [("/a", a)]

    def other(request):
        return "b"

    other.__name__ = "a"
    with pytest.raises(RouteError, match="Endpoint 'a' is already used"):
        app.add_route("/b", other)
    with pytest.raises(RouteError, match="must be a list"):
        app.add_route("/c", other, methods="GET", endpoint="c")
    with pytest.raises(RouteError, match="malformed"):
        app.add_route("/<int:bad", other, endpoint="d")
    with pytest.raises(RouteError, match="not callable"):
        app.add_route("/e", "nope", endpoint="e")


def test_url_for_builds_with_werkzeug():
    app = App(__name__)
    app.add_route("/users/<int:id>", lambda request, id: "", endpoint="user")
    app.add_route("/", lambda request: "", endpoint="index")
    assert app.url_for("user", id=3) == "/users/3"
    assert app.url_for("user", id=3, q="x y") == "/users/3?q=x+y"
    assert app.url_for("index", _anchor="top") == "/#top"
    assert app.url_for("user", id=3, _external=True) == "http://localhost/users/3"
    from framework import Request

    request = Request(
        EnvironBuilder("/", base_url="https://example.org/mount").get_environ()
    )
    assert app.url_for("user", id=1, _request=request) == "/mount/users/1"
    from werkzeug.routing import BuildError

    with pytest.raises(BuildError, match="nowhere"):
        app.url_for("nowhere")


def test_url_for_shortcut_uses_the_request_app():
    from framework import url_for
    from framework.testing import TestApp

    app = App(__name__)

    @app.route("/users/<int:id>")
    def user(request, id):
        return url_for(request, "user", id=id + 1)

    assert TestApp(app).get("/users/1").text == "/users/2"


def test_routes_added_after_the_first_request_are_served():
    from framework.testing import TestApp

    app = App(__name__)
    app.add_route("/one", lambda request: "1", endpoint="one")
    client = TestApp(app)
    assert client.get("/one").text == "1"
    app.add_route("/two", lambda request: "2", endpoint="two")
    assert client.get("/two").text == "2"


def test_listed_options_goes_to_the_view():
    app = App(__name__)

    @app.route("/cors", methods=["GET", "OPTIONS"])
    def cors(request):
        return "", 204, {"Access-Control-Allow-Origin": "*"}

    env = EnvironBuilder("/cors", method="OPTIONS").get_environ()
    started = []
    result = app(env, lambda status, headers, exc_info=None: started.append(headers))
    result.close()
    assert ("Access-Control-Allow-Origin", "*") in started[0]
