"""Django's sender semantics for model signals: lazy "app_label.Model" senders
(with apps=) and proxy models as senders, on both databases."""

from __future__ import annotations

import pytest

from framework import orm
from framework import signals
from framework.apps import apps

from .models import Author
from .models import Pizza
from .models import Topping
from .relation_models import Chain
from .relation_models import Place
from .relation_models import Restaurant
from .test_signals import Recorder
from .test_signals import recording


@pytest.fixture
def dynamic():
    made = []
    yield made
    for model in made:
        orm.registry.unregister(model)


# Lazy senders -------------------------------------------------------------


def test_string_sender_of_a_registered_model(db):
    recorder = Recorder()
    signals.post_save.connect(recorder, sender="ormtests.Author", weak=False)
    try:
        author = Author.objects.create(name="Ann")
        Topping.objects.create(name="ham")
    finally:
        assert signals.post_save.disconnect(recorder, sender="ormtests.author")
    assert [(c[1], c[2]["instance"]) for c in recorder.calls] == [(Author, author)]
    Author.objects.create(name="Bob")
    assert len(recorder.calls) == 1


def test_string_sender_connected_before_the_model_exists(db, dynamic):
    apps.reset()  # not ready: models may still come
    recorder = Recorder()
    signals.pre_init.connect(recorder, sender="ormdynamic.Later", weak=False)
    assert not signals.pre_init.has_listeners(None)

    class Later(orm.Model):
        name = orm.CharField(max_length=10)

        class Meta:
            app_label = "ormdynamic"

    dynamic.append(Later)
    Later(name="x")
    assert recorder.calls == [
        ("pre_init", Later, {"args": (), "kwargs": {"name": "x"}})
    ]
    signals.pre_init.disconnect(recorder, sender=Later)


def test_m2m_changed_with_the_through_model_label(db):
    recorder = Recorder()
    signals.m2m_changed.connect(recorder, sender="ormtests.Pizza_toppings", weak=False)
    try:
        pizza = Pizza.objects.create(name="p")
        pizza.toppings.add(Topping.objects.create(name="ham"))
    finally:
        signals.m2m_changed.disconnect(recorder, sender=Pizza.toppings.through)
    assert [c[2]["action"] for c in recorder.calls] == ["pre_add", "post_add"]
    assert recorder.calls[0][1] is Pizza.toppings.through


def test_unknown_label_is_an_error_at_connect_when_apps_are_ready(db):
    recorder = Recorder()
    apps.populate([])
    try:
        with pytest.raises(LookupError, match="no model 'ormtests.Nope'"):
            signals.post_save.connect(recorder, sender="ormtests.Nope", weak=False)
    finally:
        apps.reset()
    assert not signals.post_save.has_listeners(Author)


def test_unknown_label_is_an_error_when_apps_become_ready(db, dynamic):
    def receiver_of_ghosts(sender, **kwargs):
        pass

    apps.reset()
    signals.post_delete.connect(
        receiver_of_ghosts, sender="ormdynamic.Ghost", weak=False
    )
    try:
        with pytest.raises(
            LookupError, match=r"'ormdynamic.ghost' \(for .*receiver_of_ghosts"
        ):
            apps.populate([])
    finally:
        apps.reset()

    class Ghost(orm.Model):
        class Meta:
            app_label = "ormdynamic"

    # Defining it lets the waiting connection happen: nothing is left behind.
    dynamic.append(Ghost)
    assert signals.post_delete.disconnect(receiver_of_ghosts, sender=Ghost)
    orm.registry.check_lazy_references()


def test_apps_argument_names_the_registry_that_resolves_the_label(db):
    registry = orm.Registry()
    recorder = Recorder()
    signals.post_save.connect(
        recorder, sender="ormtests.Author", weak=False, apps=registry
    )
    Author.objects.create(name="not yet")
    assert recorder.calls == []
    with pytest.raises(LookupError, match="'ormtests.author' \\(for .*Recorder"):
        registry.set_ready()
    registry.register(Author)
    registry.resolve_pending(Author)
    try:
        Author.objects.create(name="now")
    finally:
        signals.post_save.disconnect(recorder, sender=Author)
    assert [c[2]["instance"].name for c in recorder.calls] == ["now"]
    with pytest.raises(LookupError, match="no model 'ormtests.Other'"):
        signals.post_save.connect(recorder, sender="ormtests.Other", apps=registry)


def test_string_senders_are_checked(db):
    with pytest.raises(ValueError, match="'app_label.ModelName', got 'Author'"):
        signals.post_save.connect(Recorder(), sender="Author", weak=False)
    with pytest.raises(TypeError, match="must be callable"):
        signals.post_save.connect("nope", sender="ormtests.Author")


# Proxy models -------------------------------------------------------------


def test_proxy_model_shares_the_table_with_its_own_behaviour(db):
    Place.objects.create(name="a")
    Chain.objects.create(name="b")
    assert [p.name for p in Chain.objects.all()] == ["b", "a"]
    assert all(type(p) is Chain for p in Chain.objects.all())
    assert Chain.objects.get(name="a").describe() == "chain a"
    assert Place.objects.get(name="b") == Chain.objects.get(name="b")
    assert Chain._meta.db_table == Place._meta.db_table
    assert Chain._meta.proxy and Chain._meta.concrete_model is Place
    assert Chain not in orm.registry.get_models()
    assert Chain in orm.registry.get_models(include_proxies=True)
    with pytest.raises(Place.DoesNotExist):
        Chain.objects.get(name="zzz")


def test_proxy_saves_and_deletes_send_with_the_proxy_as_sender(db):
    with (
        recording(
            signals.pre_save, signals.post_save, signals.post_init, sender=Place
        ) as concrete,
        recording(
            signals.pre_save, signals.post_save, signals.post_init, sender=Chain
        ) as proxy,
    ):
        chain = Chain(name="c")
        chain.save()
        Chain.objects.get(pk=chain.pk)
    assert concrete == []
    assert [(c[0], c[1]) for c in proxy] == [
        ("post_init", Chain),
        ("pre_save", Chain),
        ("post_save", Chain),
        ("post_init", Chain),
    ]
    Restaurant.objects.create(place=chain, name="r")
    with (
        recording(signals.pre_delete, signals.post_delete, sender=Place) as concrete,
        recording(signals.pre_delete, signals.post_delete, sender=Chain) as proxy,
        recording(signals.pre_delete, sender=Restaurant) as cascaded,
    ):
        assert chain.delete()[1] == {
            "ormtests_rel.Chain": 1,
            "ormtests_rel.Restaurant": 1,
        }
    assert concrete == []
    assert [c[0] for c in proxy] == ["pre_delete", "post_delete"]
    assert [c[2]["instance"].name for c in cascaded] == ["r"]
    Place.objects.create(name="p")
    with recording(signals.pre_delete, sender=Chain) as proxy:
        Chain.objects.filter(name="p").delete()
    assert [c[2]["instance"].name for c in proxy] == ["p"]
    assert not Place.objects.exists()


def test_proxy_definitions_are_checked():
    with pytest.raises(orm.FieldError, match="Proxy model Bad1 declares the field"):

        class Bad1(Place):
            extra = orm.IntegerField()

            class Meta:
                proxy = True
                app_label = "ormdynamic"

    with pytest.raises(orm.FieldError, match="exactly one non-abstract model"):

        class Bad2(orm.Model):
            class Meta:
                proxy = True
                app_label = "ormdynamic"

    with pytest.raises(orm.FieldError, match="multi-table inheritance .*OneToOne"):

        class Bad3(Place):
            class Meta:
                app_label = "ormdynamic"


def test_string_senders_wait_for_the_model_registry():
    """Connected before the ORM is imported: handed over, in order, when it is."""
    from framework import dispatch

    seen = []

    def probe_receiver(sender, **kwargs):
        seen.append(sender)

    signal = dispatch.ModelSignal(name="probe")
    previous = dispatch.set_model_registry(None)
    try:
        signal.connect(probe_receiver, sender="ormtests.Author", weak=False)
        assert not signal.disconnect(probe_receiver, sender="ormtests.Author")
        signal.connect(probe_receiver, sender="ormtests.Author", weak=False)
        assert dispatch.pending_model_senders() == ["ormtests.Author"] * 3
        assert not signal.has_listeners(Author)
    finally:
        assert dispatch.set_model_registry(previous) is None
    assert dispatch.pending_model_senders() == []
    signal.send(sender=Author)
    assert seen == [Author]
    assert signal.disconnect(probe_receiver, sender="ormtests.Author")
    assert not signal.has_listeners(Author)
