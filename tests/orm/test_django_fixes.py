"""The fixes Django's own test modules found: text defaults, fixture floats,
m2m no-op signals (see also test_relation_kinds for the cascade order)."""

from __future__ import annotations

import json

import pytest

from framework import signals
from framework.cli import CommandError
from framework.cli import call_command

from .models import Author
from .models import Everything
from .models import Pizza
from .models import Topping
from .test_signals import recording

STAMPS = {"created": "2024-01-02T03:04:05", "updated": "2024-01-02T03:04:05"}


def test_unset_text_fields_default_to_the_empty_string(db):
    author = Author()
    assert author.name == "" and author.email is None  # email is null=True
    author.save()
    assert Author.objects.get(pk=author.pk).name == ""
    assert Everything().body is None and Everything().code is None
    assert Author._meta.get_field("name").get_default() == ""


@pytest.mark.parametrize("raw", ["1.25", 1.25, 1, "-3e2"])
def test_loaddata_accepts_numeric_strings_for_float_fields(db, tmp_path, raw):
    path = tmp_path / "floats.json"
    item = {"model": "ormtests.everything", "pk": 5, "fields": {"ratio": raw, **STAMPS}}
    path.write_text(json.dumps([item]))
    call_command("loaddata", str(path), verbosity=0)
    assert Everything.objects.get(pk=5).ratio == float(raw)


def test_loaddata_refuses_a_non_numeric_float(db, tmp_path):
    path = tmp_path / "floats.json"
    item = {
        "model": "ormtests.everything",
        "pk": 5,
        "fields": {"ratio": "heavy", **STAMPS},
    }
    path.write_text(json.dumps([item]))
    with pytest.raises(CommandError, match="bad value 'heavy' for field 'ratio'"):
        call_command("loaddata", str(path), verbosity=0)
    assert not Everything.objects.exists()


def test_m2m_add_and_remove_with_nothing_to_change_send_empty_pk_sets(db):
    """What docs/orm.md says: the pair is sent, with pk_set=set()."""
    pizza = Pizza.objects.create(name="p")
    ham = Topping.objects.create(name="ham")
    olive = Topping.objects.create(name="olive")
    pizza.toppings.add(ham)
    with recording(signals.m2m_changed, sender=Pizza.toppings.through) as calls:
        pizza.toppings.add(ham)
        pizza.toppings.remove(olive)
        pizza.toppings.add()
        pizza.toppings.remove()
    assert [(c[2]["action"], c[2]["pk_set"]) for c in calls] == [
        ("pre_add", set()),
        ("post_add", set()),
        ("pre_remove", set()),
        ("post_remove", set()),
    ]
