"""The application object; its class is the sender of the request signals."""

from framework import App


class BookmarksApp(App):
    """app_example's app.

    A subclass of its own so that receivers can be connected for it alone:
    the request signals are sent with ``sender=type(app)``.
    """


app = BookmarksApp(__name__)
