from __future__ import annotations

import os
import pathlib

import pytest

from framework import dispatch
from framework import signals as catalogue

TESTS_DIR = pathlib.Path(__file__).parent
FIXTURE_APPS_DIRS = (TESTS_DIR / "apps", TESTS_DIR / "web_apps")


BUILT_IN_SIGNALS = [
    value for value in vars(catalogue).values() if isinstance(value, dispatch.Signal)
]


def _test_receivers() -> set[tuple[int, int]]:
    """Receivers of built-in signals connected from test modules (not fixture apps)."""
    found = set()
    for signal in BUILT_IN_SIGNALS:
        for info in signal.connections():
            location = info.location or ""
            path = pathlib.Path(location.rsplit(":", 1)[0])
            if TESTS_DIR in path.parents and not any(
                apps in path.parents for apps in FIXTURE_APPS_DIRS
            ):
                found.add((id(signal), id(info.receiver)))
    return found


@pytest.fixture(autouse=True)
def _receiver_leak_detector():
    """Fail the test that leaves one of its receivers connected."""
    before = _test_receivers()
    yield
    leaked = _test_receivers() - before
    if leaked:
        names = []
        for signal in BUILT_IN_SIGNALS:
            for info in signal.connections():
                if (id(signal), id(info.receiver)) in leaked:
                    names.append(f"{info.name} on {signal!r}")
                    sender = None if info.sender is dispatch.ANY else info.sender
                    signal.disconnect(
                        info.receiver, sender=sender, dispatch_uid=info.dispatch_uid
                    )
        pytest.fail(f"test left receivers connected: {', '.join(names)}")


@pytest.fixture(autouse=True)
def _reset_os_environ():
    """Undo changes a test makes to os.environ."""
    saved = dict(os.environ)
    yield
    if os.environ != saved:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(scope="session")
def installed_framework(tmp_path_factory):
    """The wheel installed in a fresh virtualenv (see ``support.InstalledFramework``).

    Built once per session, shared by every test of an installed-package promise.
    """
    from support import install_framework

    return install_framework(tmp_path_factory.mktemp("installed"))
