"""The test kit: a WebTest client, signal recorders and settings overrides.

- :class:`TestApp`: WebTest's ``TestApp`` with its WSGI lint on (WebTest is
  imported on first use, so loading the pytest plugin stays cheap);
- :func:`capture`: record the sends of some signals, in order, with
  assert-helpers;
- :func:`mute`: disconnect every receiver of some signals for a block, then
  restore them in their order;
- :func:`connected_to`: connect a receiver for a block;
- :func:`capture_queries` / :func:`assert_num_queries`: record or count the
  SQL statements the ORM runs in a block (the ORM is imported only then);
- :class:`override_settings` (from :mod:`framework.conf`);
- :func:`setup_test_environment` / :func:`teardown_test_environment`: turn
  test instrumentation (``template_rendered``) on and off. The pytest plugin
  (:mod:`framework.testing.pytest_plugin`) does this for the whole session.
"""

from __future__ import annotations

import collections.abc as cabc
import contextlib
import dataclasses
import threading
import typing as t
import warnings

if t.TYPE_CHECKING:
    from webtest import TestApp as TestApp

    from ..conf import override_settings as override_settings
    from ..dispatch import Signal

__all__ = [
    "ANYTHING",
    "Call",
    "QueryLog",
    "SignalCapture",
    "TestApp",
    "assert_num_queries",
    "capture",
    "capture_queries",
    "connected_to",
    "mute",
    "override_settings",
    "setup_test_environment",
    "teardown_test_environment",
]


class _Anything:
    """Compares equal to everything; a wildcard in assert-helpers."""

    def __eq__(self, other: object) -> bool:
        return True

    def __ne__(self, other: object) -> bool:
        return False

    def __hash__(self) -> int:
        return 0

    def __repr__(self) -> str:
        return "ANYTHING"


ANYTHING: t.Final = _Anything()
"""A value equal to anything, for the assert-helpers' keyword arguments."""


@dataclasses.dataclass(frozen=True)
class Call:
    """One recorded send."""

    signal: Signal
    """The signal that was sent."""
    sender: t.Any
    """The sender."""
    kwargs: dict[str, t.Any]
    """The keyword arguments of the send (without ``signal`` and ``sender``)."""

    @property
    def name(self) -> str | None:
        """The signal's name."""
        return self.signal.name


class SignalCapture:
    """Record every send of some signals, in order; a context manager.

    :param signals: the signals to record.
    :param sender: record only sends from this sender (``None``: any).
    """

    def __init__(self, *signals: Signal, sender: t.Any = None) -> None:
        if not signals:
            raise TypeError("capture() needs at least one signal to record.")
        self.signals = signals
        """The recorded signals."""
        self.sender = sender
        """The sender filter."""
        self.calls: list[Call] = []
        """Every recorded send, in order."""
        self._lock = threading.Lock()
        self._active = False
        # NOTE: one bound method object for connect and disconnect: the
        # dispatcher compares receivers by identity.
        self._receiver = self._record

    def _record(self, signal: Signal, sender: t.Any, **kwargs: t.Any) -> None:
        with self._lock:
            self.calls.append(Call(signal, sender, kwargs))

    def start(self) -> SignalCapture:
        """Connect the recorder to every signal.

        :raises RuntimeError: the capture is already recording.
        """
        if self._active:
            raise RuntimeError(f"{self!r} is already recording.")
        for signal in self.signals:
            signal.connect(self._receiver, sender=self.sender, weak=False)
        self._active = True
        return self

    def stop(self) -> None:
        """Disconnect the recorder; the recorded calls stay."""
        if not self._active:
            return
        for signal in self.signals:
            signal.disconnect(self._receiver, sender=self.sender)
        self._active = False

    def __enter__(self) -> SignalCapture:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        names = ", ".join(str(signal.name) for signal in self.signals)
        return f"<SignalCapture of {names}: {len(self.calls)} calls>"

    def __len__(self) -> int:
        return len(self.calls)

    def __iter__(self) -> cabc.Iterator[Call]:
        return iter(list(self.calls))

    def __getitem__(self, index: int) -> Call:
        return self.calls[index]

    def clear(self) -> None:
        """Forget the recorded calls."""
        with self._lock:
            self.calls.clear()

    @property
    def names(self) -> list[str | None]:
        """The names of the recorded signals, in send order."""
        return [call.signal.name for call in self.calls]

    def calls_of(self, signal: Signal) -> list[Call]:
        """Return the recorded sends of ``signal``, in order."""
        return [call for call in self.calls if call.signal is signal]

    def _describe(self) -> str:
        if not self.calls:
            return "nothing was sent"
        lines = [
            f"  {call.name}(sender={call.sender!r}, {sorted(call.kwargs)})"
            for call in self.calls
        ]
        return "sent:\n" + "\n".join(lines)

    def assert_sent(
        self, signal: Signal, sender: t.Any = ANYTHING, **kwargs: t.Any
    ) -> Call:
        """Assert ``signal`` was sent at least once with these arguments.

        Only the given keyword arguments are compared; :data:`ANYTHING`
        matches any value.

        :returns: the first matching call.
        :raises AssertionError: no send matched.
        """
        for call in self.calls_of(signal):
            if self._matches(call, sender, kwargs):
                return call
        raise AssertionError(
            f"{signal!r} was not sent with sender={sender!r} and {kwargs!r};"
            f" {self._describe()}"
        )

    def assert_sent_once_with(
        self, signal: Signal, sender: t.Any = ANYTHING, **kwargs: t.Any
    ) -> Call:
        """Assert ``signal`` was sent exactly once, with these arguments.

        :returns: that call.
        :raises AssertionError: it was not sent, sent more than once, or
            with other arguments.
        """
        calls = self.calls_of(signal)
        if len(calls) != 1:
            raise AssertionError(
                f"{signal!r} was sent {len(calls)} times, expected once;"
                f" {self._describe()}"
            )
        if not self._matches(calls[0], sender, kwargs):
            raise AssertionError(
                f"{signal!r} was sent with sender={calls[0].sender!r} and"
                f" {calls[0].kwargs!r}, expected sender={sender!r} and {kwargs!r}."
            )
        return calls[0]

    def assert_not_sent(self, signal: Signal | None = None) -> None:
        """Assert ``signal`` (or, without it, any recorded signal) was not sent.

        :raises AssertionError: it was sent.
        """
        calls = self.calls if signal is None else self.calls_of(signal)
        if calls:
            what = "no signal to be" if signal is None else f"{signal!r} not to be"
            raise AssertionError(f"expected {what} sent; {self._describe()}")

    @staticmethod
    def _matches(call: Call, sender: t.Any, kwargs: dict[str, t.Any]) -> bool:
        if not (sender is ANYTHING or call.sender is sender or call.sender == sender):
            return False
        for name, value in kwargs.items():
            if name not in call.kwargs or not (value == call.kwargs[name]):
                return False
        return True


def capture(*signals: Signal, sender: t.Any = None) -> SignalCapture:
    """Return a recorder of ``signals``; use it as a context manager.

    >>> with capture(signals.request_started, signals.request_finished) as calls:
    ...     client.get("/")
    >>> calls.names
    ['request_started', 'request_finished']
    """
    return SignalCapture(*signals, sender=sender)


@contextlib.contextmanager
def mute(*signals: Signal) -> cabc.Iterator[None]:
    """Disconnect every receiver of ``signals`` for a ``with`` block.

    On exit the original receivers come back in their original order, and
    receivers connected inside the block are dropped.
    """
    with contextlib.ExitStack() as stack:
        for signal in signals:
            stack.enter_context(signal.muted())
        yield


def connected_to(
    signal: Signal, receiver: cabc.Callable[..., t.Any], sender: t.Any = None
) -> contextlib.AbstractContextManager[cabc.Callable[..., t.Any]]:
    """Connect ``receiver`` to ``signal`` (strongly) for a ``with`` block."""
    return signal.connected_to(receiver, sender=sender)


_TRANSACTION_CONTROL: t.Final = ("BEGIN", "COMMIT", "ROLLBACK", "END")


class QueryLog:
    """The SQL statements a :func:`capture_queries` block ran, in order."""

    def __init__(self, statements: list[tuple[str, t.Any]]) -> None:
        self.statements = statements
        """``(sql, params)`` of every statement, transaction control included."""

    @property
    def queries(self) -> list[str]:
        """The SQL of each statement but ``BEGIN``/``COMMIT``/``ROLLBACK``.

        Savepoints count, as in Django's ``assertNumQueries``; opening and
        ending the outer transaction does not.
        """
        return [
            sql
            for sql, _params in self.statements
            if not (
                sql.lstrip().upper().startswith(_TRANSACTION_CONTROL)
                and "SAVEPOINT" not in sql.upper()
            )
        ]

    def __len__(self) -> int:
        return len(self.queries)

    def __repr__(self) -> str:
        return f"<QueryLog: {len(self)} queries>"


@contextlib.contextmanager
def capture_queries(using: str = "default") -> cabc.Iterator[QueryLog]:
    """Record the SQL statements run on the database ``using`` in a block.

    >>> with capture_queries() as log:
    ...     list(Book.objects.select_related("author"))
    >>> len(log)
    1
    """
    from ..orm import connections

    with connections[using].capture_queries() as statements:
        yield QueryLog(statements)


@contextlib.contextmanager
def assert_num_queries(count: int, using: str = "default") -> cabc.Iterator[QueryLog]:
    """Assert that a ``with`` block runs exactly ``count`` queries.

    Counted as :attr:`QueryLog.queries` counts them (savepoints yes, the outer
    ``BEGIN``/``COMMIT`` no).

    :raises AssertionError: another number ran; the message lists them.
    """
    with capture_queries(using) as log:
        yield log
    if len(log) != count:
        listing = "\n".join(
            f"  {index}. {sql}" for index, sql in enumerate(log.queries, 1)
        )
        raise AssertionError(
            f"{len(log)} queries ran on {using!r}, expected {count}:\n{listing}"
        )


_environment_depth = 0
_environment_lock = threading.Lock()


def setup_test_environment() -> None:
    """Turn test instrumentation on: ``template_rendered`` is sent.

    Calls nest: instrumentation stays on until each call is matched by
    :func:`teardown_test_environment`.
    """
    global _environment_depth
    with _environment_lock:
        _environment_depth += 1
        from .. import templating

        templating.set_instrumentation(True)


def teardown_test_environment() -> None:
    """Undo one :func:`setup_test_environment`."""
    global _environment_depth
    with _environment_lock:
        _environment_depth = max(0, _environment_depth - 1)
        if _environment_depth == 0:
            from .. import templating

            templating.set_instrumentation(False)


def _make_test_app_class() -> type[t.Any]:
    with warnings.catch_warnings():
        # NOTE: WebOb imports the deprecated cgi module on Python 3.11/3.12;
        # the warning is WebOb's, and would fail runs with warnings as errors.
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            import webtest
        except ModuleNotFoundError as exc:
            raise ModuleNotFoundError(
                f"TestApp (and the pytest plugin's client fixture) needs WebTest,"
                f" which is not installed ({exc}): pip install 'framework[test]'",
                name=exc.name,
            ) from exc

    class TestApp(webtest.TestApp):  # type: ignore[misc]
        """WebTest's ``TestApp`` with its WSGI lint on (the default)."""

        def __init__(self, app: t.Any, *args: t.Any, **kwargs: t.Any) -> None:
            kwargs.setdefault("lint", True)
            super().__init__(app, *args, **kwargs)

    TestApp.__module__ = __name__
    return TestApp


def __getattr__(name: str) -> t.Any:
    # PERF: WebTest and the settings machinery are imported on first use, so
    # loading the pytest plugin (a submodule) costs nothing up front.
    if name == "TestApp":
        cls = _make_test_app_class()
        globals()["TestApp"] = cls
        return cls
    if name == "override_settings":
        from ..conf import override_settings

        globals()["override_settings"] = override_settings
        return override_settings
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
