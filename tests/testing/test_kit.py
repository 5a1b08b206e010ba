"""framework.testing: capture, mute, connected_to, TestApp."""

from __future__ import annotations

import pytest

from framework import App
from framework import Signal
from framework import signals
from framework.testing import ANYTHING
from framework.testing import TestApp
from framework.testing import capture
from framework.testing import connected_to
from framework.testing import mute


def test_capture_records_sends_in_order():
    first = Signal("first")
    second = Signal("second")
    sender = object()
    with capture(first, second) as calls:
        first.send(sender, a=1)
        second.send(None, b=2)
        first.send(sender, a=3)
    first.send(sender, a=4)
    assert len(calls) == 3
    assert calls.names == ["first", "second", "first"]
    assert [call.kwargs for call in calls] == [{"a": 1}, {"b": 2}, {"a": 3}]
    assert calls[1].sender is None
    assert calls[0].name == "first"
    assert [call.kwargs["a"] for call in calls.calls_of(first)] == [1, 3]
    calls.assert_sent(first, sender=sender, a=3)
    calls.assert_sent_once_with(second, b=2)
    calls.assert_sent_once_with(second, sender=None, b=ANYTHING)
    calls.clear()
    calls.assert_not_sent()
    assert "0 calls" in repr(calls)
    with pytest.raises(AssertionError, match="sent 0 times.*; nothing was sent"):
        calls.assert_sent_once_with(first)


def test_capture_filters_by_sender():
    signal = Signal("filtered")
    wanted = object()
    with capture(signal, sender=wanted) as calls:
        signal.send(object())
        signal.send(wanted, x=1)
    assert [call.kwargs for call in calls] == [{"x": 1}]


def test_capture_assertions_explain_what_was_sent():
    signal = Signal("explained")
    other = Signal("other")
    with capture(signal, other) as calls:
        signal.send("s", x=1)
        signal.send("s", x=2)
    with pytest.raises(AssertionError, match="sent 2 times, expected once"):
        calls.assert_sent_once_with(signal)
    with pytest.raises(AssertionError, match="was not sent with"):
        calls.assert_sent(signal, x=3)
    with pytest.raises(AssertionError, match="expected no signal to be sent"):
        calls.assert_not_sent()
    with pytest.raises(
        AssertionError, match="expected <.*explained.*> not to be sent; sent:"
    ):
        calls.assert_not_sent(signal)
    calls.assert_not_sent(other)
    with capture(signal) as once:
        signal.send("s", x=1)
    with pytest.raises(AssertionError, match="expected sender='t'"):
        once.assert_sent_once_with(signal, sender="t")


def test_capture_start_stop_rules():
    signal = Signal("rules")
    with pytest.raises(TypeError, match="at least one signal"):
        capture()
    recorder = capture(signal).start()
    with pytest.raises(RuntimeError, match="already recording"):
        recorder.start()
    recorder.stop()
    recorder.stop()
    signal.send(None)
    assert len(recorder) == 0


def test_mute_restores_receivers_in_order():
    signal = Signal("muted")
    order = []

    def one(**kwargs):
        order.append(1)

    def two(**kwargs):
        order.append(2)

    def inside(**kwargs):
        order.append("inside")

    signal.connect(one)
    signal.connect(two)
    try:
        with mute(signal, signals.request_started):
            signal.send(None)
            signal.connect(inside)
            signal.send(None)
        assert order == ["inside"]
        signal.send(None)
        assert order == ["inside", 1, 2]
    finally:
        signal.disconnect(one)
        signal.disconnect(two)


def test_connected_to_is_temporary():
    signal = Signal("temporary")
    seen = []

    def note(**kwargs):
        seen.append(kwargs["sender"])

    with connected_to(signal, note, sender="a"):
        signal.send("a")
        signal.send("b")
    signal.send("a")
    assert seen == ["a"]


def test_test_app_lints_the_app():
    def broken(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return ["not bytes"]

    client = TestApp(broken)
    assert client.lint is True
    with pytest.raises(AssertionError, match="bytes"):
        client.get("/")


def test_test_app_drives_an_app_with_signals():
    app = App(__name__)
    app.add_route("/", lambda request: "home", endpoint="home")
    with capture(signals.request_started, signals.request_finished) as calls:
        assert TestApp(app).get("/").text == "home"
    assert calls.names == ["request_started", "request_finished"]


def test_anything():
    assert ANYTHING == 3
    assert not (ANYTHING != 3)
    assert repr(ANYTHING) == "ANYTHING"
    assert hash(ANYTHING) == 0


def test_mute_restores_priorities_senders_and_uids():
    signal = Signal("muted in detail")
    sender = object()
    order = []

    def low(**kwargs):
        order.append("low")

    def high(**kwargs):
        order.append("high")

    def for_sender(**kwargs):
        order.append("for sender")

    signal.connect(low)
    signal.connect(for_sender, sender=sender, dispatch_uid="uid")
    signal.connect(high, priority=10, weak=False)
    before = [
        (info.receiver, info.sender, info.priority, info.weak, info.dispatch_uid)
        for info in signal.connections()
    ]
    signal.send(sender)
    assert order == ["high", "low", "for sender"]
    try:
        with mute(signal):
            assert signal.connections() == []
            assert not signal.has_listeners(sender)
            assert signal.disconnect(dispatch_uid="uid", sender=sender) is False
            signal.connect(low, priority=99)
            signal.send(sender)
        after = [
            (info.receiver, info.sender, info.priority, info.weak, info.dispatch_uid)
            for info in signal.connections()
        ]
        assert after == before
        order.clear()
        signal.send(sender)
        assert order == ["high", "low", "for sender"]
    finally:
        signal.disconnect(low)
        signal.disconnect(high)
        signal.disconnect(dispatch_uid="uid", sender=sender)
