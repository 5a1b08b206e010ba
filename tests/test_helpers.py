"""framework.helpers: redirect and send_file give werkzeug's responses."""

from __future__ import annotations

import io
import os
import wsgiref.util
from http import HTTPStatus

import pytest
from markupsafe import Markup
from werkzeug.http import parse_date
from werkzeug.test import EnvironBuilder
from werkzeug.utils import redirect as werkzeug_redirect
from werkzeug.utils import send_file as werkzeug_send_file
from werkzeug.wrappers import Response as WerkzeugResponse

from framework import App
from framework import BadRequest
from framework import Response
from framework import redirect
from framework import send_file
from framework.testing import TestApp


def run(response, environ):
    """Call a response as WSGI: (status, headers, body); closes it."""
    started = []
    result = response(environ, lambda s, h, e=None: started.append((s, h)))
    try:
        body = b"".join(result)
    finally:
        if hasattr(result, "close"):
            result.close()
    return started[0][0], started[0][1], body


def generic(response):
    """The response called through werkzeug's generic WSGI call."""
    return lambda environ, start: WerkzeugResponse.__call__(response, environ, start)


@pytest.mark.parametrize(
    ("location", "code"),
    [
        ("/x", 302),
        ("https://example.com/a?b=c", 301),
        ("/caf\xe9 <&>\"'", 303),
        ("", 307),
        ("//other.example/p", 308),
        ("/x", 399),
        ("/x", 599),
        ("/x", "302 FOUND"),
        ("/x", HTTPStatus.SEE_OTHER),
        (Markup("/m<a>"), 302),
    ],
    ids=repr,
)
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_redirect_is_werkzeugs_with_framework_response(location, code, method):
    environ = EnvironBuilder("/from", method=method).get_environ()
    # The first redirect to a location makes its page, the next ones reuse it.
    for _ in range(2):
        ours = redirect(location, code)
        theirs = werkzeug_redirect(location, code)
        assert type(ours) is Response
        assert (ours.status, ours.status_code, ours.headers.to_wsgi_list()) == (
            theirs.status,
            theirs.status_code,
            theirs.headers.to_wsgi_list(),
        )
        assert ours.get_data() == theirs.get_data()
        assert ours.direct_passthrough is theirs.direct_passthrough is False
        assert run(ours, dict(environ)) == run(theirs, dict(environ))
        assert run(ours, dict(environ)) == run(generic(ours), dict(environ))


BAD_TARGETS = [
    ("/a\r\nSet-Cookie: x=1", "line break"),
    ("/a\nb", "line break"),
    ("http://[::1/next", "cannot be read as a URL"),
    ("http://example.com:99999/", "cannot be read as a URL"),
]


@pytest.mark.parametrize(("location", "problem"), BAD_TARGETS)
@pytest.mark.parametrize("cls", [None, WerkzeugResponse], ids=["ours", "werkzeug"])
def test_redirect_to_what_no_response_can_carry_is_a_bad_request(
    location, problem, cls
):
    with pytest.raises(ValueError):  # werkzeug's own: a 500 in a view
        werkzeug_redirect(location).get_wsgi_headers(EnvironBuilder().get_environ())
    with pytest.raises(BadRequest, match=problem):
        redirect(location, Response=cls)


@pytest.mark.parametrize(("location", "problem"), BAD_TARGETS)
def test_a_clients_bad_next_url_is_a_400_not_a_500(location, problem):
    app = App(__name__)

    @app.route("/login")
    def login(request):
        return redirect(request.args.get("next", "/"))

    client = TestApp(app)
    response = client.get("/login", {"next": location}, status=400)
    assert problem in response.text
    assert "Location" not in response.headers
    assert client.get("/login", {"next": "/home"}, status=302).location.endswith(
        "/home"
    )


def test_redirect_takes_another_class():
    assert type(redirect("/x", Response=WerkzeugResponse)) is WerkzeugResponse


@pytest.fixture
def files(tmp_path):
    paths = {}
    for name, data in [
        ("page.html", b"<p>hi</p>"),
        ("data.bin", os.urandom(3000)),
        ("big.bin", os.urandom(100_000)),  # streamed in blocks, not read at once
        ("empty.txt", b""),
        ("caf\xe9.tar.gz", b"archive"),
        ("noextension", b"?"),
    ]:
        path = tmp_path / name
        path.write_bytes(data)
        paths[name] = str(path)
    return paths


OPTIONS = [
    {},
    {"mimetype": "text/csv"},
    {"as_attachment": True},
    {"download_name": "r\xe9port.pdf", "as_attachment": True},
    {"download_name": "plain.txt"},
]


def without_date(started):
    status, headers, body = started
    return status, [(k, "<date>" if k == "Date" else v) for k, v in headers], body


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("options", OPTIONS, ids=repr)
def test_repeated_send_file_matches_werkzeug(files, options, method):
    for path in files.values():
        environ = EnvironBuilder("/", method=method).get_environ()
        first = send_file(dict(environ), path, **options)  # werkzeug's, remembered
        second = send_file(dict(environ), path, **options)  # the reused headers
        theirs = werkzeug_send_file(
            path, dict(environ), response_class=Response, **options
        )
        expected = without_date(run(generic(theirs), dict(environ)))
        assert without_date(run(first, dict(environ))) == expected
        assert without_date(run(second, dict(environ))) == expected
        dates = [v for k, v in second.headers if k == "Date"]
        assert len(dates) == 1 and parse_date(dates[0]) is not None


def test_changed_file_gets_new_headers(files):
    path = files["page.html"]
    environ = EnvironBuilder("/").get_environ()
    old = send_file(environ, path)
    old.close()
    with open(path, "wb") as file:
        file.write(b"<p>longer now</p>")
    os.utime(path, (1_000_000_000, 1_000_000_000))
    new = send_file(environ, path)
    assert new.content_length == 17
    assert new.headers["ETag"] != old.headers["ETag"]
    assert run(new, environ)[2] == b"<p>longer now</p>"


@pytest.mark.parametrize(
    "headers",
    [
        {"Range": "bytes=0-3"},
        {"If-None-Match": "*"},
        {"If-Modified-Since": "Sun, 06 Nov 2094 08:49:37 GMT"},
    ],
    ids=repr,
)
def test_conditional_requests_are_werkzeugs(files, headers):
    path = files["data.bin"]
    send_file(EnvironBuilder("/").get_environ(), path).close()
    environ = EnvironBuilder("/", headers=headers).get_environ()
    ours = run(send_file(dict(environ), path), dict(environ))
    theirs = run(
        generic(werkzeug_send_file(path, dict(environ), response_class=Response)),
        dict(environ),
    )
    assert without_date(ours) == without_date(theirs)
    assert ours[0][:3] in ("206", "304")


def test_other_options_and_file_objects_are_werkzeugs(files):
    environ = EnvironBuilder("/").get_environ()
    response = send_file(environ, files["page.html"], max_age=60)
    assert response.headers["Cache-Control"] == "public, max-age=60"
    response.close()
    response = send_file(
        environ, io.BytesIO(b"in memory"), mimetype="text/plain", etag="abc"
    )
    assert run(response, environ)[2] == b"in memory"
    assert response.headers["ETag"] == '"abc"'


def test_send_file_from_a_view_keeps_sendfile(files, tmp_path):
    app = App(__name__)
    app.add_route("/f", lambda request: send_file(request, files["page.html"]))
    for _ in range(2):  # werkzeug's headers, then the reused ones
        environ = EnvironBuilder("/f").get_environ()
        wsgiref.util.setup_testing_defaults(environ)
        environ["wsgi.file_wrapper"] = wsgiref.util.FileWrapper
        started = []
        result = app(environ, lambda s, h, e=None, seen=started: seen.append(s))
        assert isinstance(result, wsgiref.util.FileWrapper)
        assert b"".join(result) == b"<p>hi</p>"
        result.close()
        assert started == ["200 OK"]
    assert TestApp(app).get("/f").body == b"<p>hi</p>"


def test_missing_file_raises(tmp_path):
    with pytest.raises(FileNotFoundError):
        send_file(EnvironBuilder("/").get_environ(), str(tmp_path / "nope"))
