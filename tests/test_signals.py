"""The catalogue: every built-in signal named, documented and in docs/signals.md.

Run ``python scripts/gen_signals_doc.py`` to regenerate docs/signals.md.
"""

from __future__ import annotations

import pathlib
import subprocess
import sys
import warnings

import pytest

from framework import dispatch
from framework import signals

ROOT = pathlib.Path(__file__).parent.parent
DOC_PATH = ROOT / "docs" / "signals.md"
SCRIPT = ROOT / "scripts" / "gen_signals_doc.py"

MIGRATE_ARGS = {
    "app",
    "app_config",
    "verbosity",
    "interactive",
    "db",
    "using",
    "plan",
    "apps",
}

CATALOGUE = {
    "request_started": {"environ"},
    "request_finished": {"environ", "status", "duration"},
    "got_request_exception": {"request"},
    "pre_init": {"args", "kwargs"},
    "post_init": {"instance"},
    "pre_save": {"instance", "raw", "using", "update_fields"},
    "post_save": {"instance", "raw", "using", "update_fields", "created"},
    "pre_delete": {"instance", "using", "origin"},
    "post_delete": {"instance", "using", "origin"},
    "m2m_changed": {"instance", "action", "reverse", "model", "pk_set", "using"},
    "post_bulk_create": {"instances", "using"},
    "post_update": {"pk_set", "values", "using"},
    "class_prepared": set(),
    "pre_migrate": MIGRATE_ARGS | {"create_models"},
    "post_migrate": MIGRATE_ARGS | {"created_models"},
    "setting_changed": {"setting", "value", "enter"},
    "template_rendered": {"template", "context"},
    "connection_created": {"connection"},
}


def catalogue_signals():
    return {
        name: value
        for name, value in vars(signals).items()
        if isinstance(value, dispatch.Signal)
    }


def test_catalogue_matches_the_design():
    found = catalogue_signals()
    assert set(found) == set(CATALOGUE)
    for name, args in CATALOGUE.items():
        sig = found[name]
        assert sig.name == name
        assert sig.args == args, name
        assert repr(sig) == f"<Signal {name!r}>"


def test_every_signal_documents_sender_and_each_argument():
    for name, sig in catalogue_signals().items():
        doc = sig.__doc__ or ""
        assert doc.split("\n", 1)[0].startswith("Sent"), name
        assert ":sender:" in doc, name
        for arg in sig.args or ():
            assert f":{arg}:" in doc, f"{name} does not document {arg}"


def test_all_lists_every_signal():
    assert sorted(signals.__all__) == signals.__all__
    assert set(signals.__all__) == set(CATALOGUE) | {"pre_syncdb", "post_syncdb"}


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (signals.pre_syncdb, signals.pre_migrate),
        (signals.post_syncdb, signals.post_migrate),
    ],
)
def test_syncdb_names_are_deprecated_aliases(old, new):
    calls = []

    def legacy(sender, **kwargs):
        calls.append(kwargs["signal"])

    with pytest.warns(
        DeprecationWarning, match=rf"{old.name} signal is deprecated"
    ) as rec:
        old.connect(legacy)
    assert rec[0].filename == __file__
    try:
        new.send(None, **{arg: None for arg in new.args})
    finally:
        assert new.disconnect(legacy)
    assert calls == [new]


def test_accessing_deprecated_names_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert signals.pre_syncdb.target is signals.pre_migrate


def test_reference_page_is_in_step_with_the_catalogue():
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--stdout"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == DOC_PATH.read_text(), (
        "docs/signals.md is stale: run python scripts/gen_signals_doc.py"
    )
    for name in CATALOGUE:
        assert f"## `{name}`" in result.stdout
