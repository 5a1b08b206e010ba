"""A bare WSGI callable, for commands that only need something to load."""


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


def broken_factory():
    raise RuntimeError("the factory exploded")


not_callable = 42
