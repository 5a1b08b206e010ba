"""Dispatcher speed against Django's and blinker's signals, side by side.

Run: ``pip install -e '.[bench]' && python bench/dispatch.py``

Each case is timed the same way for every dispatcher (best of several
repeats of a timed loop) and reported in nanoseconds per operation, with the
ratio to the faster peer. The floor calls the same receivers directly with
the same keyword arguments, in a plain loop.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import timeit

import blinker
import django
import django.dispatch
from django.conf import settings as django_settings

from framework.dispatch import Signal

if not django_settings.configured:
    django_settings.configure()
    django.setup()


def make_receiver():
    def receiver(sender, **kwargs):
        return None

    return receiver


class Dispatcher:
    """Adapter: the same operations on each library (Django's API by default)."""

    name = ""

    def new(self):
        raise NotImplementedError

    def connect(self, sig, func, sender=None):
        sig.connect(func, sender=sender)

    def disconnect(self, sig, func, sender=None):
        sig.disconnect(func, sender=sender)

    def send_stmt(self):
        return "sig.send(sender, value=1)"

    def robust_stmt(self):
        return "sig.send_robust(sender, value=1)"


class Ours(Dispatcher):
    name = "framework"

    def new(self):
        return Signal(name="bench")


class Django(Dispatcher):
    name = "django"

    def new(self):
        return django.dispatch.Signal(use_caching=True)


class Blinker(Dispatcher):
    name = "blinker"

    def new(self):
        return blinker.Signal()

    def connect(self, sig, func, sender=None):
        sig.connect(func, sender=blinker.ANY if sender is None else sender)

    def disconnect(self, sig, func, sender=None):
        sig.disconnect(func, sender=blinker.ANY if sender is None else sender)

    def robust_stmt(self):
        # blinker has no send_robust; the closest is a send wrapped per receiver
        return None


DISPATCHERS = [Ours(), Django(), Blinker()]


def best(stmt, namespace, number, repeat):
    timer = timeit.Timer(stmt, globals=namespace)
    gc.collect()
    return min(timer.repeat(repeat=repeat, number=number)) / number * 1e9


def case_send(dispatcher, count, number, repeat):
    sig = dispatcher.new()
    receivers = [make_receiver() for _ in range(count)]
    for func in receivers:
        dispatcher.connect(sig, func)

    class Sender:
        pass

    namespace = {"sig": sig, "sender": Sender}
    return best(dispatcher.send_stmt(), namespace, number, repeat)


def case_filtered(dispatcher, number, repeat):
    sig = dispatcher.new()
    senders = [type(f"Sender{i}", (), {}) for i in range(100)]
    receivers = [make_receiver() for _ in senders]
    for func, sender in zip(receivers, senders, strict=True):
        dispatcher.connect(sig, func, sender=sender)
    namespace = {"sig": sig, "sender": senders[42]}
    return best(dispatcher.send_stmt(), namespace, number, repeat)


def case_robust(dispatcher, number, repeat):
    stmt = dispatcher.robust_stmt()
    if stmt is None:
        return None
    sig = dispatcher.new()
    func = make_receiver()
    dispatcher.connect(sig, func)

    class Sender:
        pass

    return best(stmt, {"sig": sig, "sender": Sender}, number, repeat)


def case_connect_disconnect(dispatcher, number, repeat):
    sig = dispatcher.new()
    func = make_receiver()
    namespace = {"d": dispatcher, "sig": sig, "func": func}
    return best(
        "d.connect(sig, func); d.disconnect(sig, func)", namespace, number, repeat
    )


def floor(count, number, repeat, collect=True):
    receivers = tuple(make_receiver() for _ in range(count))
    namespace = {"receivers": receivers, "sig": object(), "sender": object()}
    if collect:
        stmt = "[(r, r(signal=sig, sender=sender, value=1)) for r in receivers]"
    else:
        stmt = "for r in receivers: r(signal=sig, sender=sender, value=1)"
    return best(stmt, namespace, number, repeat)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    number, repeat = (20_000, 3) if args.quick else (200_000, 7)

    cases = {
        "send, 0 receivers": lambda d: case_send(d, 0, number, repeat),
        "send, 1 receiver": lambda d: case_send(d, 1, number, repeat),
        "send, 10 receivers": lambda d: case_send(d, 10, number // 4, repeat),
        "send, sender-filtered (100)": lambda d: case_filtered(d, number, repeat),
        "send_robust, 1 receiver": lambda d: case_robust(d, number, repeat),
        "connect + disconnect": lambda d: case_connect_disconnect(
            d, number // 10, repeat
        ),
    }
    floors = {
        "send, 0 receivers": floor(0, number, repeat),
        "send, 1 receiver": floor(1, number, repeat),
        "send, 10 receivers": floor(10, number // 4, repeat),
        "send, sender-filtered (100)": floor(1, number, repeat),
        "send_robust, 1 receiver": floor(1, number, repeat),
    }
    calls_only = {
        "send, 1 receiver": floor(1, number, repeat, collect=False),
        "send, 10 receivers": floor(10, number // 4, repeat, collect=False),
    }
    results = {}
    header = f"{'case':30} {'floor':>8}" + "".join(f"{d.name:>11}" for d in DISPATCHERS)
    print(f"Python {sys.version.split()[0]}, ns per operation (best of {repeat})")
    print(header + f"{'vs peer':>10}{'vs floor':>10}")
    for case, run in cases.items():
        row = {d.name: run(d) for d in DISPATCHERS}
        row["floor"] = floors.get(case)
        results[case] = row
        peers = [row[n] for n in ("django", "blinker") if row[n] is not None]
        ours = row["framework"]
        vs_peer = min(peers) / ours
        vs_floor = ours / row["floor"] if row["floor"] else None
        cells = "".join(
            f"{row[d.name]:>11.0f}" if row[d.name] is not None else f"{'n/a':>11}"
            for d in DISPATCHERS
        )
        floor_cell = f"{row['floor']:>8.0f}" if row["floor"] is not None else f"{'':>8}"
        floor_ratio = f"{vs_floor:>9.2f}x" if vs_floor else f"{'':>10}"
        print(f"{case:30} {floor_cell}{cells}{vs_peer:>9.2f}x{floor_ratio}")
    print(
        "vs peer: how many times faster than the faster peer;"
        " vs floor: our cost / direct calls collecting the responses"
    )
    for case, cost in calls_only.items():
        ours = results[case]["framework"]
        results[case]["calls only"] = cost
        print(f"{case}: direct calls only {cost:.0f} ns, ours {ours / cost:.2f}x that")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)


if __name__ == "__main__":
    main()
