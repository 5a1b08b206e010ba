"""Bad input: one clear line, exit 2 (or 1 for a failed --check), nothing written.

Each case runs the command as a user would, in a project directory, and checks
that the directory is left as it was: no run against another app, no database
or bytecode written there.
"""

from __future__ import annotations

import pytest
from notes_project import listing
from notes_project import needs_wrk

CASES = [
    (("--app", "nosuch.wsgi:app"), (), "cannot load the app 'nosuch.wsgi:app'"),
    (("--app", "notes:nothere"), (), "Module 'notes' has no attribute 'nothere'"),
    (("--app", "broken:app"), (), "cannot load the app 'broken:app': RuntimeError"),
    ((), ("--scenario", "bad.toml"), "bad.toml:3: unknown key 'methd'"),
    ((), ("--scenario", "syntax.toml"), "syntax.toml:2: TOML syntax"),
    ((), ("--scenario", "missing.toml"), "missing.toml: cannot read it"),
    ((), ("--url", "http://127.0.0.1:9"), "--url http://127.0.0.1:9: cannot reach"),
    ((), ("--url", "ftp://x"), "is not an http:// or https:// URL"),
    ((), ("--url", "http://127.0.0.1:9/app"), "give the server's root"),
    ((), ("--url", "http://127.0.0.1:http"), "is not a URL (Port could not be"),
    ((), ("--url", "http://[::1"), "is not a URL (Invalid IPv6 URL)"),
    ((), ("--url", "http://me:pw@127.0.0.1:9"), "without user:password@"),
    (
        (),
        ("--url", "http://127.0.0.1:9", "--url", "http://127.0.0.1:9/"),
        "--url http://127.0.0.1:9 is given twice",
    ),
    ((), ("-w", "2", "-c", "2"), "sync workers (2) must outnumber the connections"),
    ((), ("--instances", "2", "-c", "4", "-w", "2"), "sync workers (2) must outnumber"),
    ((), ("--check", "nosuch:check"), "--check 'nosuch:check': cannot import"),
    ((), ("--check", "notes:missing"), "notes has no function 'missing'"),
    ((), ("--check", "notes"), "give module:function"),
    ((), ("-n", "10", "-d", "1"), "give --requests or --duration, not both"),
    ((), ("--url", "http://127.0.0.1:9", "-w", "3"), "--workers configure the servers"),
    ((), ("-n", "2", "-c", "4"), "--requests 2 is fewer than --connections 4"),
    ((), ("--threads", "2"), "--threads needs --worker-class gthread"),
    ((), ("--config", "nosuch.conf.py"), "--config 'nosuch.conf.py': no such file"),
    # A run replaces its own files in --out (locustfile.py, results.json, ...):
    # a directory it did not make, the project here, is never used.
    ((), ("--out", "."), "--out '.' holds files that no load test wrote"),
    (
        (),
        ("--locustfile", "x.py", "--generator", "wrk"),
        "runs with --generator locust",
    ),
]


@pytest.mark.parametrize("before, after, message", CASES)
def test_bad_input_is_one_line_and_exit_2(project, loadtest, before, after, message):
    (project / "broken.py").write_text("raise RuntimeError('broken on import')\n")
    (project / "bad.toml").write_text('[[request]]\npath = "/"\nmethd = "GET"\n')
    (project / "syntax.toml").write_text('[[request]]\npath = "/\n')
    app = "notes:app"
    if before:
        app = before[1]
    files = listing(project)
    run = loadtest(*after, app=app, cwd=project, out=False)
    assert run.code == 2, (run.stdout, run.stderr)
    assert run.stderr.count("\n") == 1, run.stderr
    assert run.stderr.startswith("Error: ") and message in run.stderr, run.stderr
    assert "Traceback" not in run.stdout + run.stderr
    assert run.stdout == ""
    assert listing(project) == files


@pytest.mark.server
@needs_wrk
def test_a_check_that_raises_fails_the_run_in_one_line(project, loadtest):
    (project / "mycheck.py").write_text("def check(results):\n    return 1 / 0\n")
    files = listing(project)
    run = loadtest("-n", "40", "-c", "2", "--check", "mycheck:check", cwd=project)
    assert run.code == 1, run.stdout + run.stderr
    failed = [line for line in run.stdout.splitlines() if "FAIL" in line]
    assert failed == [
        "  FAIL  --check mycheck:check: raised ZeroDivisionError: division by zero"
    ]
    assert "Traceback" not in run.stdout + run.stderr
    assert run.failed_checks() == ["--check mycheck:check"]
    assert listing(project) == files


@pytest.mark.server
@needs_wrk
def test_a_check_reports_what_failed(project, loadtest):
    (project / "mycheck.py").write_text(
        "def check(results):\n"
        "    added = results['acknowledged']['add']\n"
        "    return [f'{len(added)} notes were never stored']\n"
    )
    run = loadtest(
        "-n",
        "60",
        "-c",
        "2",
        "--scenario",
        "scenario.toml",
        "--check",
        "mycheck:check",
        cwd=project,
    )
    assert run.code == 1
    (failed,) = [c for c in run.results["checks"] if not c["passed"]]
    assert failed["name"] == "--check mycheck:check"
    assert failed["detail"].endswith("notes were never stored")
    assert int(failed["detail"].split()[0]) == run.results["requests"]["add"]["count"]
