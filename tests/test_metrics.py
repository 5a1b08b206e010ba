"""framework.metrics: per-worker request-signal counters in shared files.

In process through WebTest, in real child processes (forked, and ``python
-c``), and in real gunicorn workers (recycled, killed) through ``framework
serve``.
"""

from __future__ import annotations

import json
import logging
import os
import pathlib
import signal
import stat
import subprocess
import sys
import threading
import time

import pytest
from support import ROOT
from support import Server
from support import prometheus_samples

from framework import App
from framework import Response
from framework import metrics
from framework import signals
from framework.metrics import RETIRED
from framework.metrics import MetricsDirectoryError
from framework.testing import TestApp

SERVING = ROOT / "tests" / "serving"


# The receivers metrics.enable() connects: the compiled ones (where the
# extension was built, as the README's install builds it) and the Python ones
# (a package built without a C compiler), which must count alike.
RECEIVERS = [
    pytest.param(
        {"compiled": True},
        id="compiled",
        marks=pytest.mark.skipif(
            not metrics.COMPILED, reason="the C extension was not built"
        ),
    ),
    pytest.param({"compiled": False, "threads": True}, id="locked"),
    pytest.param({"compiled": False, "threads": False}, id="unlocked"),
]


@pytest.fixture(params=RECEIVERS)
def receivers(request):
    """The options of metrics.enable() that choose its receivers."""
    return request.param


@pytest.fixture
def counting(receivers):
    """Count in this process's memory for the test, then stop counting."""
    counters = metrics.enable("", **receivers)
    yield counters
    metrics.disable()


@pytest.fixture
def app():
    app = App(__name__)

    @app.route("/")
    def index(request):
        return "hello"

    @app.route("/stream")
    def stream(request):
        return Response((f"{n}\n".encode() for n in range(3)), mimetype="text/plain")

    @app.route("/boom")
    def boom(request):
        raise RuntimeError("on purpose")

    @app.route("/slow")
    def slow(request):
        time.sleep(0.02)
        return "slow"

    app.add_route("/metrics", metrics.view)
    return app


@pytest.fixture
def quiet_errors():
    logger = logging.getLogger("framework")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    yield
    logger.setLevel(level)


def test_request_signals_and_durations_are_counted(counting, app, quiet_errors):
    client = TestApp(app)
    for _ in range(3):
        client.get("/")
    assert client.get("/stream").text == "0\n1\n2\n"
    client.get("/boom", status=500)
    client.get("/slow")
    snapshot = counting.snapshot()
    assert snapshot.request_started == snapshot.request_finished == 6
    assert snapshot.got_request_exception == 1
    assert sum(snapshot.buckets) == 6
    assert snapshot.max_seconds >= 0.02
    assert 0.02 <= snapshot.percentile(1.0) <= snapshot.max_seconds
    assert snapshot.percentile(0.5) < 0.02
    assert 0 < snapshot.duration_seconds < 1


def test_percentiles_interpolate_within_a_bucket():
    bounds = metrics.BUCKET_BOUNDS
    one_ms = bounds.index(0.001)
    buckets = [0] * (len(bounds) + 1)
    buckets[one_ms] = 10  # ten requests between 0.9 ms and 1 ms
    snapshot = metrics.Snapshot(buckets=tuple(buckets), max_ns=1_000_000)
    assert snapshot.percentile(0.5) == pytest.approx(0.00095)
    assert snapshot.percentile(1.0) == pytest.approx(0.001)
    assert metrics.Snapshot().percentile(0.99) == 0.0


def test_neighbouring_buckets_are_at_most_17_percent_apart():
    bounds = metrics.BUCKET_BOUNDS
    assert bounds == tuple(sorted(bounds))
    assert bounds[0] == 1e-5 and bounds[-1] == 100.0
    assert max(b / a for a, b in zip(bounds, bounds[1:], strict=False)) < 1.17
    assert set(metrics.EXPOSED_BOUNDS) <= set(bounds)


def test_threads_lose_no_count(counting):
    def hammer():
        for _ in range(2000):
            signals.request_started.send(App, environ={})
            signals.request_finished.send(App, environ={}, status=200, duration=1e-4)

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    snapshot = counting.snapshot()
    assert snapshot.request_started == snapshot.request_finished == 8000
    assert sum(snapshot.buckets) == 8000


@pytest.mark.parametrize("duration", [float("nan"), -0.5, float("inf"), 1e300], ids=str)
def test_an_impossible_duration_is_refused_and_counts_nothing(receivers, duration):
    counters = metrics.enable("", **receivers)
    try:
        signals.request_finished.send(App, environ={}, status=200, duration=0.25)
        responses = signals.request_finished.send_robust(
            App, environ={}, status=200, duration=duration
        )
        (counter,) = [
            info.receiver
            for info in signals.request_finished.connections()
            if info.dispatch_uid == "framework.metrics"
        ]
        (failure,) = [answer for receiver, answer in responses if receiver is counter]
        assert isinstance(failure, ValueError)
        assert "impossible duration" in str(failure)
        snapshot = counters.snapshot()
    finally:
        metrics.disable()
    assert snapshot.request_finished == 1
    assert (snapshot.duration_ns, snapshot.max_ns) == (250_000_000, 250_000_000)


def test_the_compiled_and_python_receivers_count_alike():
    """Every bucket's edges, and what lies between, land in the same bucket."""
    if not metrics.COMPILED:
        pytest.skip("the C extension was not built")
    bounds = metrics.BUCKET_BOUNDS
    durations = [0.0, 5e-324, 1e-6, 99.999, 100.0, 100.5, 3600.0, 1e8]
    for bound in bounds:
        durations += [bound, bound * (1 - 1e-12), bound * (1 + 1e-12)]
    durations.append(7)  # an int, as a custom sender might send
    found = {}
    for compiled in (True, False):
        counters = metrics.enable("", compiled=compiled)
        try:
            for duration in durations:
                signals.request_started.send(App, environ={})
                signals.request_finished.send(
                    App, environ={}, status=200, duration=duration
                )
            signals.got_request_exception.send(App, request=None)
            found[compiled] = counters.snapshot()
        finally:
            metrics.disable()
    assert found[True] == found[False]
    assert found[True].request_finished == len(durations)
    assert found[True].got_request_exception == 1
    assert found[True].max_ns == 1e8 * 1e9
    # Every bucket got a duration: the boundaries were all tested.
    assert all(found[True].buckets)


def test_the_compiled_receivers_refuse_a_send_without_duration():
    if not metrics.COMPILED:
        pytest.skip("the C extension was not built")
    counters = metrics.enable("", compiled=True)
    try:
        (counter,) = [
            info.receiver
            for info in signals.request_finished.connections()
            if info.dispatch_uid == "framework.metrics"
        ]
        with pytest.raises(TypeError, match="'duration'"):
            counter(signal=signals.request_finished, sender=App, status=200)
        with pytest.raises(TypeError, match="must be real number"):
            counter(sender=App, duration="0.5")
        assert counters.snapshot().request_finished == 0
    finally:
        metrics.disable()


def test_the_receivers_can_be_disconnected_by_their_dispatch_uid(counting):
    assert metrics.enabled()
    assert signals.request_finished.disconnect(dispatch_uid="framework.metrics")
    signals.request_started.send(App, environ={})
    signals.request_finished.send(App, environ={}, status=200, duration=0.001)
    snapshot = counting.snapshot()
    assert (snapshot.request_started, snapshot.request_finished) == (1, 0)


def test_disable_disconnects_everything_it_connected(receivers, tmp_path):
    before = metrics.enable("", **receivers)
    signals.request_started.send(App, environ={})
    assert metrics.enabled()
    metrics.disable()
    assert not metrics.enabled()
    assert metrics.current() is None
    # Counting again opens new counters: nothing reaches the closed ones.
    after = metrics.enable(tmp_path, **receivers)
    try:
        signals.request_started.send(App, environ={})
        signals.request_started.send(App, environ={})
    finally:
        metrics.disable()
    assert after is not before
    assert metrics.read(tmp_path)[str(os.getpid())].request_started == 2
    with pytest.raises(ValueError, match="released"):
        before.slots[1]


def test_extra_signals_are_counted_and_named(counting, tmp_path):
    name = metrics.count(signals.setting_changed, "settings_changed")
    assert metrics.count(signals.setting_changed, "settings_changed") == name
    try:
        signals.setting_changed.send(None, setting="X", value=1, enter=True)
        signals.setting_changed.send(None, setting="X", value=1, enter=False)
        assert counting.snapshot().counters["settings_changed"] == 2
        text = metrics.prometheus_text()
        values = prometheus_samples(text)
        assert values['framework_signals_total{signal="settings_changed"}'] == 2
    finally:
        signals.setting_changed.disconnect(
            dispatch_uid=("framework.metrics", "settings_changed")
        )


def _run(code, env=None):
    """Run ``code`` in a fresh Python process; return what it printed."""
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout


COUNT_THEN_ENABLE = """
import os
from framework import metrics, signals
change = lambda: signals.setting_changed.send(None, setting="X", value=1, enter=True)
metrics.count(signals.setting_changed, "settings_changed")
change()  # an extra counter opens the counters before enable()
metrics.enable()  # framework serve's post_worker_init
signals.request_started.send(None, environ={})
change()
metrics.enable()  # a configuration file's post_worker_init, as docs/metrics.md has
change()
print(os.getpid())
"""


def test_enable_after_count_keeps_the_process_one_worker_with_all_its_numbers(
    tmp_path,
):
    pid = _run(COUNT_THEN_ENABLE, {metrics.DIRECTORY_VARIABLE: str(tmp_path)})
    found = metrics.read(tmp_path)
    assert set(found) == {pid.strip()}  # not also a "retired" worker: it is alive
    summed = metrics.total(found.values())
    assert summed.processes == 1
    assert summed.counters == {"settings_changed": 3}
    assert summed.request_started == 1


def test_enable_keeps_what_was_counted_in_memory(tmp_path):
    code = (
        "from framework import metrics, signals;"
        " metrics.count(signals.setting_changed, 'settings_changed');"
        " change = lambda: signals.setting_changed.send(None, setting='X',"
        " value=1, enter=True);"
        " change();"
        " print(metrics.enable('').snapshot().counters['settings_changed']);"
        " change();"
        f" metrics.enable({str(tmp_path)!r});"
        " change()"
    )
    env = {metrics.DIRECTORY_VARIABLE: ""}
    assert _run(code, env) == "1\n"
    (snapshot,) = metrics.read(tmp_path).values()
    assert snapshot.counters == {"settings_changed": 3}


@pytest.mark.parametrize("name", ["", "has space", "request_started", "x" * 33])
def test_extra_counter_names_are_checked(name):
    with pytest.raises(ValueError, match="Cannot count"):
        metrics.count(signals.setting_changed, name or "-")


def test_at_most_16_extra_signals_are_counted():
    code = (
        "from framework import metrics, signals\n"
        "for number in range(16):\n"
        "    metrics.count(signals.setting_changed, f'extra_{number}')\n"
        "metrics.count(signals.setting_changed, 'extra_0')  # again: no new one\n"
        "try:\n"
        "    metrics.count(signals.setting_changed, 'extra_16')\n"
        "except ValueError as exc:\n"
        "    print(exc)\n"
    )
    printed = _run(code, {metrics.DIRECTORY_VARIABLE: ""})
    assert printed == "At most 16 extra counters can be counted.\n"


def test_the_exposition_is_strict_prometheus_text_and_reads_back(counting, app):
    client = TestApp(app)
    for path in ("/", "/", "/slow"):
        client.get(path)
    response = client.get("/metrics")
    assert response.headers["Content-Type"] == metrics.CONTENT_TYPE
    values = prometheus_samples(response.text)
    pid = os.getpid()
    # The /metrics request has started, not finished.
    assert values['framework_signals_total{signal="request_started"}'] == 4
    assert values['framework_signals_total{signal="request_finished"}'] == 3
    worker = (
        f'framework_worker_signals_total{{signal="request_started",worker="{pid}"}}'
    )
    assert values[worker] == 4
    assert values['framework_request_duration_seconds_bucket{le="+Inf"}'] == 3
    assert values['framework_request_duration_seconds_bucket{le="0.0001"}'] <= 3
    assert values["framework_metrics_shared"] == 0
    buckets = [key for key in values if key.endswith('"}') and "_bucket" in key]
    assert len(buckets) == len(metrics.EXPOSED_BOUNDS) + 1
    everything = client.get("/metrics?buckets=all").text
    snapshot, shared = metrics.parse(everything)
    assert not shared
    own = counting.snapshot()  # now with the second /metrics request ended too
    assert sum(snapshot.buckets) == snapshot.request_finished == 4
    assert own.request_finished == 5
    assert all(a <= b for a, b in zip(snapshot.buckets, own.buckets, strict=True))
    assert sum(b - a for a, b in zip(snapshot.buckets, own.buckets, strict=True)) == 1


def test_parse_refuses_other_text():
    with pytest.raises(ValueError, match="^no framework_signals_total$"):
        metrics.parse("# just a comment\nother_metric 1\n")


def _exposed():
    """Real /metrics text (every bucket) of a process that served two requests."""
    buckets = [0] * (len(metrics.BUCKET_BOUNDS) + 1)
    buckets[metrics.BUCKET_BOUNDS.index(0.001)] = 2
    snapshot = metrics.Snapshot(
        request_started=3,
        request_finished=2,
        duration_ns=1_900_000,
        max_ns=1_000_000,
        buckets=tuple(buckets),
        counters={"connection_created": 1},
    )
    return metrics.prometheus_text({"7": snapshot}, shared=True, all_buckets=True)


STARTED = 'framework_signals_total{signal="request_started"}'
BUCKET = "framework_request_duration_seconds_bucket"


def _with(line, replacing=None):
    """The real text with ``line`` added, or put in place of the line starting
    with ``replacing``."""
    lines = _exposed().splitlines()
    if replacing is None:
        lines.append(line)
    else:
        (index,) = [i for i, old in enumerate(lines) if old.startswith(replacing)]
        lines[index] = line
    return "\n".join(lines) + "\n"


MALFORMED_METRICS = {
    # Missing or unexpected labels.
    "bucket without le": (_with(f"{BUCKET} 5"), "without its le label"),
    "signal without label": (
        _with("framework_signals_total 5"),
        "without its signal label",
    ),
    "extra label": (
        _with('framework_signals_total{signal="x",worker="1"} 5'),
        "unexpected labels worker",
    ),
    "malformed labels": (
        _with('framework_signals_total{signal="x" worker="1"} 5'),
        "malformed labels",
    ),
    # Numbers too large for a counter (or for an integer at all).
    "huge count": (_with(f"{STARTED} 1e400", STARTED), "not a whole number"),
    "Inf count": (_with(f"{STARTED} +Inf", STARTED), "not a whole number"),
    "count past 64 bits": (
        _with(f"{STARTED} 18446744073709551616", STARTED),
        "out of range",
    ),
    "many digits": (_with(f"{STARTED} {'9' * 5000}", STARTED), "out of range"),
    "huge workers": (
        _with("framework_workers 1e400", "framework_workers"),
        "not a whole number",
    ),
    "huge sum": (
        _with(
            "framework_request_duration_seconds_sum 1e300",
            "framework_request_duration_seconds_sum",
        ),
        "seconds is out of range",
    ),
    "Inf max": (
        _with(
            "framework_request_duration_max_seconds +Inf",
            "framework_request_duration_max_seconds",
        ),
        "seconds is out of range",
    ),
    # NaN.
    "NaN count": (_with(f"{STARTED} NaN", STARTED), "not a whole number"),
    "NaN sum": (
        _with(
            "framework_request_duration_seconds_sum NaN",
            "framework_request_duration_seconds_sum",
        ),
        "seconds is out of range",
    ),
    "NaN bound": (_with(f'{BUCKET}{{le="NaN"}} 2'), "the bucket bound le='NaN'"),
    "-Inf bound": (_with(f'{BUCKET}{{le="-Inf"}} 0'), "the bucket bound le='-Inf'"),
    "NaN shared": (
        _with("framework_metrics_shared NaN", "framework_metrics_shared"),
        "framework_metrics_shared is NaN, not 0 or 1",
    ),
    # Negative or fractional counts, a histogram that counts down.
    "negative count": (_with(f"{STARTED} -5", STARTED), "out of range"),
    "negative workers": (
        _with("framework_workers -1", "framework_workers"),
        "out of range",
    ),
    "negative sum": (
        _with(
            "framework_request_duration_seconds_sum -1.5",
            "framework_request_duration_seconds_sum",
        ),
        "seconds is out of range",
    ),
    "fractional count": (_with(f"{STARTED} 2.5", STARTED), "not a whole number"),
    "histogram counting down": (
        _with(f'{BUCKET}{{le="+Inf"}} 1', f'{BUCKET}{{le="+Inf"}}'),
        "falls from 2 to 1",
    ),
    "not a number": (_with(f"{STARTED} 0x10", STARTED), "'0x10' is not a number"),
    "garbage value": (_with(f"{STARTED} many", STARTED), "'many' is not a number"),
    "no value": (_with(STARTED, STARTED), "a malformed framework_signals_total sample"),
    # The same series twice.
    "signal twice": (_with(f"{STARTED} 9"), "request_started twice"),
    "bucket twice": (_with(f'{BUCKET}{{le="1e-4"}} 0'), "le=1e-4 twice"),
    "workers twice": (_with("framework_workers 3"), "framework_workers twice"),
    # Label values: bad escapes, names no counter can have.
    "bad escape": (
        _with('framework_signals_total{signal="a\\q"} 1'),
        "the escape \\\\q",
    ),
    "escaped name": (
        _with('framework_signals_total{signal="a\\"b"} 1'),
        "is not a name",
    ),
    "too many extras": (
        _with(
            "\n".join(
                f'framework_signals_total{{signal="extra_{n}"}} 1' for n in range(16)
            )
        ),
        "more than 16 extra signals",
    ),
}


@pytest.mark.parametrize(
    ("text", "match"), MALFORMED_METRICS.values(), ids=MALFORMED_METRICS.keys()
)
def test_parse_refuses_malformed_samples_of_its_families(text, match):
    with pytest.raises(ValueError, match=match):
        metrics.parse(text)


def test_parse_skips_what_it_does_not_read_and_takes_valid_variants():
    text = (
        _exposed()
        + "# another exporter's families, and lines that are no samples\n"
        + 'other_total{path="a\\"}"} 1e400\n'
        + "other_gauge NaN\n"
        + "this is not a sample at all\n"
        + 'framework_worker_signals_total{signal="request_started",worker="x"} -1\n'
    ).replace(
        f"{STARTED} 3",
        'framework_signals_total{ signal = "request_started" , } 3.0e0 1700000000',
    )
    snapshot, shared = metrics.parse(text)
    assert shared
    assert snapshot.request_started == 3
    assert snapshot.request_finished == sum(snapshot.buckets) == 2
    assert snapshot.buckets[metrics.BUCKET_BOUNDS.index(0.001)] == 2
    assert snapshot.counters == {"connection_created": 1}
    assert (snapshot.duration_ns, snapshot.max_ns) == (1_900_000, 1_000_000)
    assert snapshot.processes == 1


# Files ------------------------------------------------------------------------


def _mode(path):
    return stat.S_IMODE(path.lstat().st_mode)


def test_files_are_private_to_their_user(tmp_path):
    directory = tmp_path / "counters"
    counters = metrics.WorkerCounters(directory)
    try:
        assert _mode(directory) == 0o700
        files = list(directory.iterdir())
        assert sorted(path.name for path in files) == [
            ".lock",
            f"worker-{os.getpid()}.counters",
        ]
        assert all(_mode(path) == 0o600 for path in files)
    finally:
        counters.close()


def test_a_directory_others_can_use_is_refused(tmp_path):
    directory = tmp_path / "open"
    directory.mkdir(mode=0o755)
    directory.chmod(0o755)
    with pytest.raises(MetricsDirectoryError, match="mode 0755"):
        metrics.WorkerCounters(directory)
    with pytest.raises(MetricsDirectoryError, match="mode 0755"):
        metrics.read(directory)


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
def test_a_directory_of_another_user_is_refused(tmp_path):
    directory = tmp_path / "theirs"
    directory.mkdir(mode=0o700)
    os.chown(directory, 4321, 4321)
    with pytest.raises(MetricsDirectoryError, match="belongs to uid 4321"):
        metrics.check_directory(directory)


def test_symbolic_links_are_refused(tmp_path):
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    link = tmp_path / "link"
    link.symlink_to(real)
    with pytest.raises(MetricsDirectoryError, match="symbolic links are refused"):
        metrics.WorkerCounters(link)
    # A planted worker file that links elsewhere is never read nor written.
    target = tmp_path / "precious"
    target.write_bytes(b"x" * metrics.SIZE)
    (real / "worker-1.counters").symlink_to(target)
    (real / "retired.counters").symlink_to(target)
    assert metrics.read(real) == {}
    metrics.retire_exited(real)  # pid 1 lives: nothing to retire
    assert target.read_bytes() == b"x" * metrics.SIZE


def test_files_that_are_not_counters_are_not_trusted(tmp_path):
    directory = tmp_path / "counters"
    metrics.check_directory(directory)
    (directory / "worker-1.counters").write_bytes(b"\x01" * metrics.SIZE)
    (directory / "worker-2.counters").write_bytes(b"short")
    (directory / "retired.counters").write_bytes(b"\xff" * (metrics.SIZE + 24))
    (directory / "worker-../x.counters").parent.mkdir(exist_ok=True)
    assert metrics.read(directory) == {}


def _count_in_a_child(directory, started, finished, duration=0.5):
    """Count in a real process that then exits; return its pid."""
    code = (
        "from framework import metrics, signals;"
        f" metrics.enable({str(directory)!r});"
        " start = lambda: signals.request_started.send(None, environ={});"
        f" [start() for _ in range({started})];"
        f" [signals.request_finished.send(None, environ={{}}, status=200,"
        f" duration={duration}) for _ in range({finished})];"
        " import os; print(os.getpid())"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return int(result.stdout)


def test_exited_processes_are_retired_into_one_total(tmp_path):
    first = _count_in_a_child(tmp_path, started=3, finished=3)
    second = _count_in_a_child(tmp_path, started=5, finished=4)
    # The second child retired the first when it started counting.
    assert not (tmp_path / f"worker-{first}.counters").exists()
    before = metrics.read(tmp_path)
    assert set(before) == {RETIRED, str(second)}
    assert before[RETIRED].request_started == 3
    assert before[RETIRED].processes == 1

    counters = metrics.WorkerCounters(tmp_path)  # this process: retires the second
    try:
        after = metrics.read(tmp_path)
        assert set(after) == {RETIRED, str(counters.pid)}
        retired = after[RETIRED]
        assert (retired.request_started, retired.request_finished) == (8, 7)
        assert retired.duration_seconds == pytest.approx(3.5)
        assert sum(retired.buckets) == 7
        assert retired.processes == 2
        names = sorted(path.name for path in tmp_path.iterdir())
        assert names == [".lock", "retired.counters", f"worker-{counters.pid}.counters"]
        # Nothing left to retire: a second pass changes nothing.
        assert metrics.retire_exited(tmp_path) == 0
        assert metrics.read(tmp_path) == after
    finally:
        counters.close()


def test_a_retirement_cut_short_is_finished_without_counting_twice(tmp_path):
    pid = _count_in_a_child(tmp_path, started=2, finished=2)
    worker = (tmp_path / f"worker-{pid}.counters").read_bytes()
    assert metrics.retire_exited(tmp_path) == 1
    retired = (tmp_path / "retired.counters").read_bytes()
    # As a crash between adding the sums and removing the worker's file leaves
    # it: the file back, the retired file naming its pid as pending.
    (tmp_path / f"worker-{pid}.counters").write_bytes(worker)
    pending = retired[: metrics.SIZE + 8] + (1).to_bytes(8, "little")
    pending += pid.to_bytes(8, "little")
    (tmp_path / "retired.counters").write_bytes(pending)
    assert set(metrics.read(tmp_path)) == {RETIRED}  # never counted twice
    metrics.retire_exited(tmp_path)
    found = metrics.read(tmp_path)
    assert set(found) == {RETIRED}
    assert found[RETIRED].request_started == 2
    assert found[RETIRED].processes == 1
    assert not (tmp_path / f"worker-{pid}.counters").exists()


def test_a_file_of_the_first_layout_is_retired_with_its_numbers(tmp_path):
    # Written by an earlier release (durations in integer nanoseconds), left
    # by a worker that has exited: an upgrade loses none of its numbers.
    import array

    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    pid = int(dead.stdout)
    slots = array.array("Q", bytes(metrics.SIZE))
    slots[0] = int.from_bytes(b"FWMTRC01", "little")
    slots[1] = 5  # request_started
    slots[3] = 1  # got_request_exception
    slots[4] = 2_500_000_000  # duration sum: 2.5 s
    slots[5] = 2_000_000_000  # the longest: 2 s
    slots[6 + metrics.BUCKET_BOUNDS.index(0.5)] = 4
    (tmp_path / f"worker-{pid}.counters").write_bytes(slots.tobytes())
    tmp_path.chmod(0o700)

    assert metrics.retire_exited(tmp_path) == 1
    retired = metrics.read(tmp_path)[RETIRED]
    assert (retired.request_started, retired.request_finished) == (5, 4)
    assert retired.got_request_exception == 1
    assert (retired.duration_ns, retired.max_ns) == (2_500_000_000, 2_000_000_000)
    stored = array.array("d", (tmp_path / "retired.counters").read_bytes()[:48])
    assert stored[4:6].tolist() == [2.5, 2.0]  # written in today's layout


def test_a_forked_child_counts_in_a_file_of_its_own(tmp_path, receivers):
    metrics.enable(tmp_path, **receivers)
    try:
        signals.request_started.send(None, environ={})
        pid = os.fork()
        if pid == 0:  # the child: counts twice, then leaves without cleaning up
            signals.request_started.send(None, environ={})
            signals.request_started.send(None, environ={})
            os._exit(0)
        os.waitpid(pid, 0)
        found = metrics.read(tmp_path)
        assert found[str(os.getpid())].request_started == 1
        assert found[str(pid)].request_started == 2
    finally:
        metrics.disable()


def test_the_retired_totals_are_shown_under_one_label(tmp_path):
    _count_in_a_child(tmp_path, started=4, finished=4)
    metrics.retire_exited(tmp_path)
    values = prometheus_samples(
        metrics.prometheus_text(metrics.read(tmp_path), shared=True)
    )
    key = 'framework_worker_signals_total{signal="request_started",worker="retired"}'
    assert values[key] == 4
    assert (
        values['framework_worker_request_duration_seconds_count{worker="retired"}'] == 4
    )
    assert values["framework_workers"] == 1
    assert values["framework_metrics_shared"] == 1


# Real gunicorn workers -----------------------------------------------------------


def _serve(tmp_path, args, env):
    return Server.serve(
        tmp_path, "fixture_app:app", ["--no-access-log", *args], env, [SERVING]
    ).wait_ready()


def _started(server):
    status, body = server.get("/metrics")
    assert status == 200
    values = prometheus_samples(body.decode())
    return values, values['framework_signals_total{signal="request_started"}']


@pytest.mark.server
def test_served_workers_share_their_counters_through_a_directory_of_their_own(
    tmp_path,
):
    temporary = tmp_path / "tmp"  # where framework serve makes the directory
    temporary.mkdir()
    server = _serve(tmp_path, ["-w", "2"], {"TMPDIR": str(temporary)})
    try:
        (directory,) = temporary.glob("framework-metrics-*")
        assert _mode(directory) == 0o700
        _wait_for(lambda: len(metrics.read(directory)) == 2)  # both workers count
        for _ in range(10):
            assert server.get("/hello")[0] == 200
        # One worker is busy with a slow request; the other answers /metrics,
        # and its sum holds the busy worker's request too.
        slow: list[tuple[int, bytes]] = []
        client = threading.Thread(
            target=lambda: slow.append(server.get("/slow?ms=1500"))
        )
        client.start()
        _wait_for(
            lambda: (
                metrics.total(metrics.read(directory).values()).request_started == 11
            )
        )
        values, started = _started(server)
        client.join(30)
        busy = slow[0][1].decode().strip().removeprefix("pid=")
        assert started == 12  # 10, the slow one, and this one
        assert values["framework_workers"] == 2
        assert values["framework_metrics_shared"] == 1
        busy_key = (
            'framework_worker_signals_total{signal="request_started",worker="%s"}'
        )
        assert values[busy_key % busy] >= 1
        assert _started(server)[1] == 13
    finally:
        assert server.stop() == 0
    # framework serve made the directory and removed it on exit.
    assert not directory.exists()


def _wait_for(condition, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "never happened"
        time.sleep(0.05)


@pytest.mark.server
def test_recycled_and_killed_workers_keep_their_counts(tmp_path):
    directory = tmp_path / "counters"
    server = _serve(
        tmp_path,
        ["-w", "2", "--max-requests", "5"],
        {"FRAMEWORK_METRICS_DIR": str(directory)},
    )
    try:
        for _ in range(12):
            assert server.get("/hello")[0] == 200
        # The client has its answer a moment before the worker closes the
        # response (request_finished): kill only once the books are even.
        _wait_for(
            lambda: (
                metrics.total(metrics.read(directory).values()).request_finished == 12
            )
        )
        children = pathlib.Path(
            f"/proc/{server.process.pid}/task/{server.process.pid}/children"
        )
        for _attempt in range(50):  # a worker being recycled may just be gone
            killed = int(children.read_text().split()[0])
            try:
                os.kill(killed, signal.SIGKILL)  # no chance to write anything
                break
            except ProcessLookupError:
                time.sleep(0.1)
        # The worker that replaces it retires its file as it starts counting.
        _wait_for(lambda: str(killed) not in metrics.read(directory))
        for _ in range(6):
            assert server.get("/hello")[0] == 200
    finally:
        assert server.stop() == 0
    assert _mode(directory) == 0o700
    found = metrics.read(directory)
    summed = metrics.total(found.values())
    assert summed.request_started == summed.request_finished == 18
    assert sum(summed.buckets) == 18
    assert summed.processes >= 4  # recycled and killed workers included
    assert str(killed) not in found  # retired by a worker that came after it


COUNTED_APP = """
import os

os.environ.setdefault("FRAMEWORK_SETTINGS_MODULE", "counted_settings")

from framework import App, metrics, signals

metrics.count(signals.connection_created)
app = App(__name__)
app.add_route("/metrics", metrics.view)
"""


@pytest.mark.server
def test_the_migration_child_leaves_nothing_in_the_counters_directory(tmp_path):
    # framework serve migrates in a child forked from the master; migrating
    # connects to the database (connection_created, which the app counts).
    (tmp_path / "counted_app.py").write_text(COUNTED_APP)
    (tmp_path / "counted_settings.py").write_text(
        'INSTALLED_APPS = ["tests.apps.journal"]\n'
    )
    directory = tmp_path / "counters"
    server = Server.serve(
        tmp_path,
        "counted_app:app",
        ["--no-access-log", "-w", "1"],
        {metrics.DIRECTORY_VARIABLE: str(directory)},
        [tmp_path],
    ).wait_ready()
    try:
        assert (tmp_path / "db.sqlite3").exists()  # it did migrate
        _wait_for(lambda: len(metrics.read(directory)) >= 1)
        values, started = _started(server)
    finally:
        assert server.stop() == 0
    assert started == 1
    assert values["framework_workers"] == 1
    assert values['framework_signals_total{signal="connection_created"}'] == 0
    assert RETIRED not in metrics.read(directory)


@pytest.mark.server
def test_serve_refuses_an_unsafe_counters_directory_in_one_line(tmp_path):
    directory = tmp_path / "shared"
    directory.mkdir()
    directory.chmod(0o777)
    server = Server.serve(
        tmp_path,
        "fixture_app:app",
        ["--no-migrate"],
        {"FRAMEWORK_METRICS_DIR": str(directory)},
        [SERVING],
    )
    assert server.process.wait(60) == 1
    server.stop()
    lines = server.output.strip().splitlines()
    assert lines == [
        f"Error: Refusing the metrics directory {str(directory)!r}: other users may"
        " use it (mode 0777). Use a directory of its own, with mode 0700 (created"
        " so when missing)."
    ]


@pytest.mark.server
def test_metrics_can_be_switched_off(tmp_path):
    server = _serve(tmp_path, ["-w", "1"], {"FRAMEWORK_METRICS": "off"})
    try:
        server.get("/hello")
        values, started = _started(server)
    finally:
        server.stop()
    assert started == 0
    assert values["framework_metrics_shared"] == 0


def test_results_are_json_friendly():
    snapshot = metrics.total([metrics.Snapshot(request_started=2)] * 2)
    assert json.loads(json.dumps(snapshot.request_started)) == 4
    assert snapshot.processes == 2
