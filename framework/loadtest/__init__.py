"""Load testing with signal accounting, for any app: ``framework loadtest``.

:func:`run` starts the app under gunicorn (or takes running deployments with
``--url``), drives a scenario through it with wrk or Locust, and then checks
the books: every request the generator completed has exactly one
``request_started`` and one ``request_finished`` on the server that took it,
``got_request_exception`` matches the 5xx answers the scenario expects, no
status is unexpected, no socket failed, and the app's own ``--check`` passes.
The counters are :mod:`framework.metrics`, which every worker of
``framework serve`` connects. See ``docs/loadtest.md``.

This subpackage never imports ``bench/`` or ``app_example/`` (they are not part
of the installed package), nor Locust (it runs in processes of its own).
"""

from __future__ import annotations

from .run import LoadTestError
from .run import Options
from .run import UsageError
from .run import run
from .scenario import RequestSpec
from .scenario import Scenario
from .scenario import ScenarioError
from .scenario import default_scenario
from .scenario import load_scenario

__all__ = [
    "LoadTestError",
    "Options",
    "RequestSpec",
    "Scenario",
    "ScenarioError",
    "UsageError",
    "default_scenario",
    "load_scenario",
    "run",
]
