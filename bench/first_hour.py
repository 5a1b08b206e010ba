"""A new user's first minutes, timed: from ``pip install`` to a page and green tests.

Run: ``python bench/first_hour.py [--runs N]``

Builds the wheel of this checkout once, then, for each run, in a new
temporary directory and a fresh virtualenv (pip's cache and mirror as
configured, no network beyond them):

1. ``python -m venv`` and ``pip install 'framework[orm,test]'`` (the wheel);
2. ``framework new mysite``;
3. ``python -m pytest`` in the project (must pass);
4. ``framework serve`` on a free port on 127.0.0.1, until ``/`` answers 200.

Prints each step's seconds and the totals from the start of ``pip install``
(the venv included) to green tests and to the first page. Every process
writes to a file; the server is stopped with SIGTERM.
"""

from __future__ import annotations

import argparse
import pathlib
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parent.parent


def run(argv, cwd, log, env=None):
    with open(log, "ab") as out:
        subprocess.run(
            argv,
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            check=True,
            timeout=900,
        )


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def venv_env(venv):
    import os

    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("FRAMEWORK_") and key not in ("PYTHONPATH", "VIRTUAL_ENV")
    }
    env["PATH"] = f"{venv / 'bin'}:{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(venv)
    return env


def one_run(wheel, work):
    log = work / "steps.log"
    venv = work / "venv"
    env = venv_env(venv)
    times = {}
    start = time.monotonic()
    run([sys.executable, "-m", "venv", str(venv)], work, log)
    pip = str(venv / "bin" / "pip")
    run([pip, "install", "--quiet", f"{wheel}[orm,test]"], work, log)
    times["venv + pip install"] = time.monotonic() - start
    mark = time.monotonic()
    run([str(venv / "bin" / "framework"), "new", "mysite"], work, log, env)
    times["framework new"] = time.monotonic() - mark
    project = work / "mysite"
    mark = time.monotonic()
    run([str(venv / "bin" / "python"), "-m", "pytest", "-q"], project, log, env)
    times["python -m pytest (green)"] = time.monotonic() - mark
    tests_done = time.monotonic() - start
    port = free_port()
    mark = time.monotonic()
    with open(work / "serve.log", "wb") as out:
        server = subprocess.Popen(
            [str(venv / "bin" / "framework"), "serve", "--bind", f"127.0.0.1:{port}"],
            cwd=project,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                url = f"http://127.0.0.1:{port}/"
                with urllib.request.urlopen(url, timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.05)
        times["framework serve (first page)"] = time.monotonic() - mark
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)
    times["total: pip install -> green tests"] = tests_done
    times["total: pip install -> green tests -> first page"] = time.monotonic() - start
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="first-hour-") as tmp:
        dist = pathlib.Path(tmp) / "dist"
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps"]
            + ["--wheel-dir", str(dist), str(ROOT)],
            check=True,
            stdout=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        )
        (wheel,) = dist.glob("framework-*.whl")
        results = []
        for number in range(args.runs):
            work = pathlib.Path(tmp) / f"run{number}"
            work.mkdir()
            results.append(one_run(wheel, work))
    print(f"{'step':<50} {'median s':>9} {'min s':>7}  ({args.runs} run(s))")
    for step in results[0]:
        values = [result[step] for result in results]
        print(f"{step:<50} {statistics.median(values):>9.1f} {min(values):>7.1f}")


if __name__ == "__main__":
    main()
