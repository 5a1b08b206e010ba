"""makemigrations/migrate for one-to-ones, to_field keys, SET_DEFAULT keys,
self many-to-many and proxies; ``migrate --check``; the plan and apps of
pre_migrate/post_migrate, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from framework import orm
from framework import signals
from framework.cli import CommandError
from framework.cli import call_command
from framework.cli import main
from framework.orm.migrations import ProjectState

from .test_migrate import recording

MODELS = """
from framework import orm


class Place(orm.Model):
    name = orm.CharField(max_length=50)


class Restaurant(orm.Model):
    place = orm.OneToOneField(Place, on_delete=orm.CASCADE)


class Country(orm.Model):
    code = orm.CharField(max_length=2, unique=True)


class City(orm.Model):
    country = orm.ForeignKey(Country, on_delete=orm.CASCADE, to_field="code")
    keeper = orm.ForeignKey(
        Place, on_delete=orm.SET_DEFAULT, null=True, default=None, related_name="+"
    )


class Human(orm.Model):
    friends = orm.ManyToManyField("self")


class Chain(Place):
    class Meta:
        proxy = True
"""


def test_new_relation_kinds_migrate_and_check(configure, runner, make_app, db_url):
    package = make_app("mkrel", {"models.py": MODELS})
    configure(INSTALLED_APPS=["mkrel"], DATABASES={"default": db_url})
    result = runner.invoke(main, ["makemigrations", "mkrel"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[1:6] == [
        "  - Create table mkrel_place",
        "  - Create table mkrel_restaurant",
        "  - Create table mkrel_country",
        "  - Create table mkrel_city",
        "  - Create table mkrel_human",
    ]
    assert "mkrel_chain" not in result.output  # a proxy has no table
    source = (package / "migrations" / "0001_initial.py").read_text()
    assert 'foreign_key="mkrel_country.code"' in source
    assert 'foreign_key="mkrel_place.id"' in source
    # migrate --check: exit 1 and name the migration until it is applied.
    result = runner.invoke(main, ["migrate", "--check"])
    assert result.exit_code == 1
    assert "unapplied migrations: mkrel.0001_initial" in result.output
    with recording(signals.pre_migrate, signals.post_migrate) as calls:
        with pytest.raises(CommandError, match="not up to date"):
            call_command("migrate", check_unapplied=True, verbosity=0)
        assert calls == []  # a check sends nothing, applies nothing
        call_command("migrate", interactive=False, verbosity=0)
    pre, post = (kwargs for _, _, kwargs in calls)
    assert [(str(m), back) for m, back in pre["plan"]] == [
        ("mkrel.0001_initial", False)
    ]
    assert post["plan"] == pre["plan"]
    assert isinstance(pre["apps"], ProjectState) and pre["apps"].tables == {}
    assert set(post["apps"].tables) == {
        "mkrel_place",
        "mkrel_restaurant",
        "mkrel_country",
        "mkrel_city",
        "mkrel_human",
        "mkrel_human_friends",
    }
    assert runner.invoke(main, ["migrate", "--check"]).exit_code == 0
    assert runner.invoke(main, ["makemigrations", "--check"]).exit_code == 0
    # The schema works as the models say.
    from mkrel.models import Chain
    from mkrel.models import City
    from mkrel.models import Country
    from mkrel.models import Human
    from mkrel.models import Place
    from mkrel.models import Restaurant

    place = Place.objects.create(name="p")
    Restaurant.objects.create(place=place)
    with pytest.raises(orm.IntegrityError):
        with orm.atomic():
            Restaurant.objects.create(place=place)
    fr = Country.objects.create(code="FR")
    City.objects.create(country=fr, keeper=place)
    with pytest.raises(orm.IntegrityError):
        with orm.atomic():
            City.objects.create(country_id="XX")
    a, b = Human.objects.create(), Human.objects.create()
    a.friends.add(b)
    assert list(b.friends.all()) == [a]
    assert Chain.objects.get().name == "p"
    Chain.objects.get().delete()
    assert City.objects.get().keeper_id is None
    assert not Restaurant.objects.exists()
    with recording(signals.pre_migrate) as calls:
        call_command("migrate", interactive=False, verbosity=0)
    assert calls[0][2]["plan"] == [] and calls[0][2]["apps"] == post["apps"]


def test_migrate_check_counts_missing_tables_of_apps_without_migrations(
    configure, runner, db_url
):
    from .test_migrate import APPS

    configure(INSTALLED_APPS=APPS, DATABASES={"default": db_url})
    result = runner.invoke(main, ["migrate", "--check", "--plan"])
    assert result.exit_code == 1
    assert "Apply journal.0001_initial" in result.output  # --plan still lists
    assert "tables to create for: library.Author" in result.output
    assert "unapplied migrations: journal.0001_initial" in result.output
    call_command("migrate", interactive=False, verbosity=0)
    result = runner.invoke(main, ["migrate", "--check"])
    assert (result.exit_code, result.output) == (0, "")
