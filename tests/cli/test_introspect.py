from __future__ import annotations

import contextlib
import io
import json

from framework import signals
from framework.cli import call_command
from framework.cli import main
from framework.cli.introspect import describe_signals
from framework.dispatch import Signal

from .conftest import framework_env
from .conftest import run_framework

HERE = "tests/cli/test_introspect.py"


class Sender:
    pass


def audit(sender, **kwargs):
    pass


async def notify(sender, **kwargs):
    pass


@contextlib.contextmanager
def connected():
    signals.post_save.connect(
        audit, sender=Sender, dispatch_uid=("audit", 1), priority=3
    )
    signals.post_save.connect(notify, weak=False, on_commit=True)
    signals.setting_changed.connect(audit, sender=signals)
    try:
        yield
    finally:
        signals.post_save.disconnect(sender=Sender, dispatch_uid=("audit", 1))
        signals.post_save.disconnect(notify)
        signals.setting_changed.disconnect(audit, sender=signals)


def test_describe_receivers():
    with connected():
        described = {item["name"]: item for item in describe_signals()}
    post_save = described["post_save"]
    assert post_save["args"] == ["created", "instance", "raw", "update_fields", "using"]
    assert post_save["doc"] == "Sent by ``Model.save()`` after the row is written."
    mine = [r for r in post_save["receivers"] if r["name"].startswith(__name__)]
    assert mine == [
        {
            "name": f"{__name__}.audit",
            "location": f"{HERE}:{audit.__code__.co_firstlineno}",
            "sender": f"{__name__}.Sender",
            "weak": True,
            "dispatch_uid": "('audit', 1)",
            "priority": 3,
            "async": False,
            "on_commit": False,
        },
        {
            "name": f"{__name__}.notify",
            "location": f"{HERE}:{notify.__code__.co_firstlineno}",
            "sender": None,
            "weak": False,
            "dispatch_uid": None,
            "priority": 0,
            "async": True,
            "on_commit": True,
        },
    ]
    [setting] = [
        r
        for r in described["setting_changed"]["receivers"]
        if r["name"].endswith("audit")
    ]
    assert setting["sender"] == "module framework.signals"


def test_signals_text_listing(runner, configure):
    configure(INSTALLED_APPS=["tests.apps.hooks"])
    with connected():
        result = runner.invoke(main, ["signals", "post_save", "post_migrate"])
    assert result.exit_code == 0, result.output
    text = result.output
    # Other receivers (the ORM's, other tests' apps) may be listed around ours.
    assert text.startswith("post_save(created, instance, raw, update_fields, using)\n")
    audit_line = f"{HERE}:{audit.__code__.co_firstlineno}"
    notify_line = f"{HERE}:{notify.__code__.co_firstlineno}"
    assert (
        f"  - {__name__}.audit  [weak, sync, priority=3,"
        " dispatch_uid=\"('audit', 1)\"]\n"
        f"    from {__name__}.Sender; {audit_line}\n"
    ) in text
    assert (
        f"  - {__name__}.notify  [strong, async, on_commit]\n"
        f"    from any sender; {notify_line}\n"
    ) in text
    assert (
        "post_migrate(app, app_config, apps, created_models, db, interactive, plan,"
        " using, verbosity)  (deprecated aliases: post_syncdb)\n"
    ) in text
    assert "tests.apps.hooks.management.record_post_migrate" in text


def test_signals_json_lists_management_receivers(runner, configure):
    configure(INSTALLED_APPS=["tests.apps.hooks", "tests.apps.library"])
    result = runner.invoke(main, ["signals", "--json", "--connected"])
    assert result.exit_code == 0, result.output
    data = {item["name"]: item for item in json.loads(result.output)}
    names = {r["name"]: r for r in data["post_migrate"]["receivers"]}
    assert names["tests.apps.library.management.seed_default_tag"]["sender"] == (
        "module tests.apps.library.models"
    )
    assert names["tests.apps.hooks.management.record_post_migrate"]["priority"] == 5
    assert all(item["receivers"] for item in data.values())


def test_signals_verbose_shows_docs_and_empty_signals(configure):
    configure()
    probe = Signal(name="mgmt_probe", args=("x",), doc="A probe.\n\nLonger text.")
    out = io.StringIO()
    call_command("signals", "mgmt_probe", verbosity=2, stdout=out)
    assert out.getvalue() == "mgmt_probe(x)\n  A probe.\n  (no receivers)\n"
    out = io.StringIO()
    call_command("signals", "mgmt_probe", stdout=out)
    assert out.getvalue() == "mgmt_probe(x)\n"
    del probe


def test_location_and_uid_rendering(tmp_path):
    from framework.cli import introspect

    assert introspect._short_location(None) is None
    assert introspect._short_location("nowhere") == "nowhere"
    assert introspect._short_location("/elsewhere/x.py:3") == "/elsewhere/x.py:3"
    assert introspect._uid_value(None) is None
    assert introspect._uid_value(7) == 7
    assert introspect._uid_value(frozenset({1})) == "frozenset({1})"
    assert introspect._sender_text(3) == "3"


def test_signals_json_in_a_fresh_process_loads_every_module(tmp_path):
    """A new process shows what a worker connects: app, models, receivers..."""
    files = {
        "proj.py": (
            "from framework import App, signals\n\n"
            "app = App(__name__)\n\n\n"
            "def on_start(sender, **kwargs):\n    pass\n\n\n"
            "signals.request_started.connect(on_start, weak=False)\n"
        ),
        "shop/__init__.py": "",
        "shop/models.py": (
            "from framework import orm, signals\n\n\n"
            "class Item(orm.Model):\n    name = orm.CharField(max_length=10)\n\n\n"
            "def on_init(sender, **kwargs):\n    pass\n\n\n"
            "signals.post_init.connect(on_init, sender=Item)\n"
        ),
        "shop/receivers.py": (
            "from framework import signals\n\nfrom . import models\n\n\n"
            "def on_save(sender, **kwargs):\n    pass\n\n\n"
            "signals.post_save.connect(on_save, sender=models.Item, priority=2)\n"
        ),
        "shop/management.py": (
            "from framework import signals\n\nfrom . import models\n\n\n"
            "def on_migrate(sender, **kwargs):\n    pass\n\n\n"
            "signals.post_migrate.connect(on_migrate, sender=models,"
            " dispatch_uid='shop.on_migrate')\n"
        ),
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(text)
    env = framework_env(
        FRAMEWORK_APP="proj:app",
        FRAMEWORK_INSTALLED_APPS='["shop"]',
        FRAMEWORK_DATABASES=json.dumps({"default": f"sqlite:///{tmp_path}/db"}),
    )
    result = run_framework("signals", "--json", "--connected", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    found = {
        (item["name"], r["name"]): r
        for item in json.loads(result.stdout)
        for r in item["receivers"]
    }
    assert found[("request_started", "proj.on_start")]["location"] == "proj.py:6"
    assert found[("request_started", "proj.on_start")]["weak"] is False
    assert found[("post_init", "shop.models.on_init")]["sender"] == "shop.models.Item"
    assert found[("post_save", "shop.receivers.on_save")]["priority"] == 2
    assert found[("post_save", "shop.receivers.on_save")]["location"] == (
        "shop/receivers.py:6"
    )
    assert found[("post_migrate", "shop.management.on_migrate")] == {
        "name": "shop.management.on_migrate",
        "location": "shop/management.py:6",
        "sender": "module shop.models",
        "weak": True,
        "dispatch_uid": "shop.on_migrate",
        "priority": 0,
        "async": False,
        "on_commit": False,
    }
