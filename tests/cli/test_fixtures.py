from __future__ import annotations

import io
import json

import pytest

from framework import signals
from framework.apps import apps
from framework.cli import CommandError
from framework.cli import call_command
from framework.cli import main

from .test_migrate import APPS
from .test_migrate import recording


@pytest.fixture
def migrated(configure, db_url):
    configure(INSTALLED_APPS=APPS, DATABASES={"default": db_url})
    call_command("migrate", interactive=False, verbosity=0)


def counts():
    from tests.apps.journal.models import Entry
    from tests.apps.library.models import Author
    from tests.apps.library.models import Book
    from tests.apps.library.models import Tag

    return {m.__name__: m.objects.count() for m in (Author, Book, Tag, Entry)}


def test_loaddata_saves_raw_in_one_go(migrated, runner):
    from tests.apps.library.models import Book

    with recording(signals.pre_save, signals.post_save, signals.m2m_changed) as calls:
        result = runner.invoke(main, ["loaddata", "library_sample"])
    assert result.exit_code == 0, result.output
    assert result.output == "Installed 5 object(s) from 1 fixture(s).\n"
    saves = [(name, kw["raw"]) for name, _, kw in calls if name != "m2m_changed"]
    m2m = [
        (kw["action"], kw["pk_set"]) for name, _, kw in calls if name == "m2m_changed"
    ]
    assert m2m == [("pre_add", {2, 3}), ("post_add", {2, 3})]
    assert saves == [(n, True) for _ in range(5) for n in ("pre_save", "post_save")]
    book = Book.objects.get(pk=10)
    assert (book.title, str(book.price), book.author.name) == (
        "Dune",
        "9.99",
        "Frank Herbert",
    )
    assert book.extra == {"isbn": "0441013597", "tags": ["sf"]}
    assert sorted(tag.label for tag in book.tags.all()) == ["classic", "sf"]
    assert counts() == {"Author": 1, "Book": 1, "Tag": 3, "Entry": 1}
    # Sequences moved past the loaded keys.
    from tests.apps.library.models import Author

    new = Author(name="Someone")
    new.save()
    assert new.pk == 4


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (
            {"model": "library.Nope", "pk": 1, "fields": {}},
            "unknown model 'library.Nope'",
        ),
        (
            {"model": "library.Tag", "pk": 9, "fields": {"colour": "red"}},
            "library.Tag has no field 'colour'",
        ),
        (
            {
                "model": "library.Book",
                "pk": 9,
                "fields": {"title": "x", "author": 3, "price": "cheap"},
            },
            "bad value 'cheap' for field 'price'",
        ),
        (
            {"model": "library.Book", "pk": 9, "fields": {"title": "x", "author": 404}},
            "field 'author' refers to library.Author pk=404, which does not exist",
        ),
        (
            {
                "model": "library.Book",
                "pk": 9,
                "fields": {"title": "x", "author": 3, "tags": [77]},
            },
            "field 'tags' refers to library.Tag pk=77, which does not exist",
        ),
        (
            {"model": "library.Tag", "pk": 9, "fields": {"label": "x" * 21}},
            "field 'label': is 21 characters long",
        ),
        (["not", "an object"], "not an object with a 'model' key"),
        ({"model": "library.Tag", "fields": [1]}, "'fields' must be an object"),
        (
            {"model": "library.Book", "fields": {"title": "x", "author": 3, "tags": 5}},
            "field 'tags' must be a list of keys",
        ),
        (
            {"model": "library.Tag", "pk": "nine", "fields": {"label": "x"}},
            "bad value 'nine' for the primary key",
        ),
        (
            {"model": "library.Tag", "pk": 9, "fields": {"label": None}},
            "\\(library.Tag pk=9\\): ValidationError",
        ),
    ],
)
def test_a_bad_fixture_writes_nothing(migrated, tmp_path, bad, message):
    good = tmp_path / "good.json"
    good.write_text(
        json.dumps([{"model": "library.Author", "pk": 3, "fields": {"name": "A"}}])
    )
    broken = tmp_path / "broken.json"
    broken.write_text(
        json.dumps(
            [{"model": "journal.Entry", "pk": 1, "fields": {"headline": "h"}}, bad]
        )
    )
    before = counts()
    with pytest.raises(
        CommandError, match=f"broken.json: object #2\\b.*{message}"
    ) as info:
        call_command("loaddata", str(good), str(broken), verbosity=0)
    assert str(info.value).endswith("Nothing was loaded.")
    assert counts() == before


def test_unreadable_fixture_and_missing_name(migrated, tmp_path):
    path = tmp_path / "x.json"
    path.write_text("{not json")
    with pytest.raises(CommandError, match="x.json: cannot read the fixture"):
        call_command("loaddata", str(path))
    with pytest.raises(CommandError, match="No fixture named 'nothing_here'"):
        call_command("loaddata", "nothing_here")
    path.write_text('{"model": "library.Tag"}')
    with pytest.raises(CommandError, match="x.json: a fixture must be a JSON list"):
        call_command("loaddata", str(path))


def test_loaddata_very_verbose_names_each_object(migrated):
    out = io.StringIO()
    call_command("loaddata", "library_sample", verbosity=3, stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0] == (
        "Loaded object #1 (library.Book pk=10) from "
        + str(apps.get_app_config("library").path)
        + "/fixtures/library_sample.json"
    )
    assert len(lines) == 6


def test_dumpdata_round_trip(migrated, runner, tmp_path):
    call_command("loaddata", "library_sample", verbosity=0)
    first = tmp_path / "first.json"
    result = runner.invoke(main, ["dumpdata", "--indent", "2", "-o", str(first)])
    assert result.exit_code == 0, result.output
    data = json.loads(first.read_text())
    assert [item["model"] for item in data] == [
        "library.Author",
        "library.Tag",
        "library.Tag",
        "library.Tag",
        "library.Book",
        "journal.Entry",
    ]
    assert data[4] == {
        "model": "library.Book",
        "pk": 10,
        "fields": {
            "title": "Dune",
            "author": 3,
            "price": "9.99",
            "extra": {"isbn": "0441013597", "tags": ["sf"]},
            "tags": [2, 3],
        },
    }
    call_command("flush", interactive=False, verbosity=0)
    assert counts() == {"Author": 0, "Book": 0, "Tag": 1, "Entry": 0}
    call_command("loaddata", str(first), verbosity=0)
    again = io.StringIO()
    assert call_command("dumpdata", verbosity=0, stdout=again) == data
    assert json.loads(again.getvalue()) == data
    only = runner.invoke(main, ["dumpdata", "library.Author", "journal"])
    assert [item["model"] for item in json.loads(only.output)] == [
        "library.Author",
        "journal.Entry",
    ]
    assert runner.invoke(main, ["dumpdata", "library.Nope"]).exit_code == 2
