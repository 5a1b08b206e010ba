from __future__ import annotations

import importlib
import json

import sqlalchemy as sa

from framework.cli import main

from .conftest import forget_modules
from .conftest import framework_env
from .conftest import run_framework
from .conftest import sa_url
from .test_writer import assert_ruff_clean

MODELS_V1 = """
from framework import orm


class Note(orm.Model):
    title = orm.CharField(max_length=50)
    body = orm.TextField(null=True)
    obsolete = orm.IntegerField(null=True)


class Comment(orm.Model):
    note = orm.ForeignKey(Note, on_delete=orm.CASCADE)
    text = orm.CharField(max_length=100)
"""

MODELS_V2 = """
from framework import orm


class Note(orm.Model):
    title = orm.CharField(max_length=120, db_index=True)
    body = orm.TextField(null=True)
    rating = orm.IntegerField(default=3)
    summary = orm.CharField(max_length=200, null=True)


class Comment(orm.Model):
    note = orm.ForeignKey(Note, on_delete=orm.CASCADE)
    text = orm.CharField(max_length=100)
"""


def reload_models(name):
    forget_modules(name)
    return importlib.import_module(f"{name}.models")


def test_makemigrations_then_migrate_keeps_data(configure, runner, make_app, db_url):
    package = make_app("mknotes", {"models.py": MODELS_V1})
    configure(INSTALLED_APPS=["mknotes"], DATABASES={"default": db_url})
    # Apps without a migrations package are left alone unless named.
    result = runner.invoke(main, ["makemigrations", "--check"])
    assert (result.exit_code, result.output) == (0, "No changes detected.\n")
    result = runner.invoke(main, ["makemigrations", "mknotes"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(
        "Migrations for mknotes:\n"
        "  - Create table mknotes_note\n"
        "  - Create table mknotes_comment\n"
    )
    first = package / "migrations" / "0001_initial.py"
    assert first.is_file()
    assert runner.invoke(main, ["makemigrations", "--check"]).exit_code == 0
    result = runner.invoke(main, ["migrate", "--noinput"])
    assert result.exit_code == 0, result.output
    assert result.output == "Applied mknotes.0001_initial\n"

    models = importlib.import_module("mknotes.models")
    note = models.Note(title="Keep me", body="text", obsolete=1)
    note.save()
    models.Comment(note=note, text="hi").save()

    (package / "models.py").write_text(MODELS_V2)
    models = reload_models("mknotes")
    result = runner.invoke(main, ["makemigrations", "--check"])
    assert result.exit_code == 1
    assert "Missing migrations for: mknotes" in result.stderr
    assert sorted(p.name for p in (package / "migrations").glob("0*.py")) == [
        "0001_initial.py"
    ]
    result = runner.invoke(main, ["makemigrations", "--name", "grow_notes"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[1:6] == [
        "  - Alter column title of mknotes_note",
        "  - Add column rating to mknotes_note",
        "  - Add column summary to mknotes_note",
        "  - Remove column obsolete from mknotes_note",
        "  - Add index ix_mknotes_note_title on mknotes_note",
    ]
    second = package / "migrations" / "0002_grow_notes.py"
    source = second.read_text()
    assert 'dependencies = [\n        ("mknotes", "0001_initial"),\n    ]' in source
    assert 'migrations.Column("rating", Integer(), nullable=False, default=3)' in source
    assert_ruff_clean(package)
    result = runner.invoke(main, ["showmigrations"])
    assert result.output == "mknotes\n [X] 0001_initial\n [ ] 0002_grow_notes\n"
    result = runner.invoke(main, ["migrate", "--noinput"])
    assert result.exit_code == 0, result.output
    assert result.output == "Applied mknotes.0002_grow_notes\n"
    assert runner.invoke(main, ["makemigrations", "--check"]).exit_code == 0

    kept = models.Note.objects.get(pk=note.pk)
    assert (kept.title, kept.body, kept.rating, kept.summary) == (
        "Keep me",
        "text",
        3,
        None,
    )
    assert [c.text for c in models.Comment.objects.filter(note=kept)] == ["hi"]
    longer = models.Note(title="x" * 120, summary="s")
    longer.save()
    assert models.Note.objects.get(pk=longer.pk).rating == 3
    engine = sa.create_engine(sa_url(db_url))
    try:
        columns = [c["name"] for c in sa.inspect(engine).get_columns("mknotes_note")]
    finally:
        engine.dispose()
    assert columns == ["id", "title", "body", "rating", "summary"]


def test_makemigrations_refuses_not_null_without_default(
    configure, runner, make_app, tmp_path
):
    package = make_app("mkstrict", {"models.py": MODELS_V1})
    configure(
        INSTALLED_APPS=["mkstrict"], DATABASES={"default": f"sqlite:///{tmp_path}/d"}
    )
    assert runner.invoke(main, ["makemigrations", "mkstrict"]).exit_code == 0
    (package / "models.py").write_text(
        MODELS_V1.replace(
            "obsolete = orm.IntegerField(null=True)", "size = orm.IntegerField()"
        )
    )
    reload_models("mkstrict")
    result = runner.invoke(main, ["makemigrations"])
    assert result.exit_code == 1
    assert "Cannot add the NOT NULL column mkstrict_note.size without a default" in (
        result.stderr
    )
    result = runner.invoke(main, ["makemigrations", "nosuchapp"])
    assert result.exit_code == 2
    assert "No installed app with label 'nosuchapp'" in result.output


AUTH_MODELS = """
from framework import orm


class Person(orm.Model):
    email = orm.CharField(max_length=100, unique=True)
"""

BLOG_MODELS = """
from framework import orm
from mkauth.models import Person


class Tag(orm.Model):
    name = orm.CharField(max_length=20, db_index=True)


class Post(orm.Model):
    title = orm.CharField(max_length=50)
    author = orm.ForeignKey(Person, on_delete=orm.PROTECT)
    tags = orm.ManyToManyField(Tag)
    price = orm.DecimalField(max_digits=6, decimal_places=2, default="1.00")

    class Meta:
        unique_together = ("title", "author")
        indexes = [orm.Index(fields=["title", "price"], name="mkblog_title_price_idx")]
"""


def test_relations_constraints_and_cross_app_dependencies(
    configure, runner, make_app, db_url
):
    make_app("mkauth", {"models.py": AUTH_MODELS})
    blog = make_app("mkblog", {"models.py": BLOG_MODELS})
    configure(INSTALLED_APPS=["mkauth", "mkblog"], DATABASES={"default": db_url})
    result = runner.invoke(main, ["makemigrations", "mkauth", "mkblog"])
    assert result.exit_code == 0, result.output
    source = (blog / "migrations" / "0001_initial.py").read_text()
    assert_ruff_clean(blog)
    assert '("mkauth", "0001_initial"),' in source
    assert (
        "                migrations.Index(\n"
        '                    "mkblog_post_title_author_uniq",\n'
        '                    ("title", "author_id"),\n'
        "                    unique=True,\n"
        "                ),\n"
    ) in source
    assert runner.invoke(main, ["migrate", "--noinput"]).exit_code == 0
    result = runner.invoke(main, ["makemigrations", "--check"])
    assert (result.exit_code, result.output) == (0, "No changes detected.\n")
    blog_models = importlib.import_module("mkblog.models")
    auth_models = importlib.import_module("mkauth.models")
    person = auth_models.Person(email="a@b.c")
    person.save()
    post = blog_models.Post(title="t", author=person)
    post.save()
    tag = blog_models.Tag(name="x")
    tag.save()
    post.tags.add(tag)
    assert [t.name for t in post.tags.all()] == ["x"]
    engine = sa.create_engine(sa_url(db_url))
    try:
        inspector = sa.inspect(engine)
        indexes = {i["name"]: i for i in inspector.get_indexes("mkblog_post")}
    finally:
        engine.dispose()
    assert indexes["mkblog_post_title_author_uniq"]["unique"]
    assert indexes["mkblog_title_price_idx"]["column_names"] == ["title", "price"]


def test_empty_migration_for_data(configure, runner, make_app, tmp_path):
    package = make_app("mkdata", {"models.py": AUTH_MODELS})
    configure(
        INSTALLED_APPS=["mkdata"], DATABASES={"default": f"sqlite:///{tmp_path}/d"}
    )
    assert runner.invoke(main, ["makemigrations", "--empty"]).exit_code == 2
    result = runner.invoke(main, ["makemigrations", "mkdata", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Migrations for mkdata:\n  - Create table ")
    assert "wrote" not in result.output
    assert not (package / "migrations").exists()
    assert runner.invoke(main, ["makemigrations", "mkdata"]).exit_code == 0
    result = runner.invoke(
        main, ["makemigrations", "mkdata", "--empty", "--name", "seed"]
    )
    assert result.exit_code == 0, result.output
    source = (package / "migrations" / "0002_seed.py").read_text()
    assert source.startswith('"""Generated by framework makemigrations."""\n')
    assert '        ("mkdata", "0001_initial"),\n' in source
    assert source.endswith("\n    operations = []\n")
    result = runner.invoke(main, ["migrate", "--noinput"])
    assert result.output == "Applied mkdata.0001_initial\nApplied mkdata.0002_seed\n"


def test_app_example_migrations_match_its_models(tmp_path):
    """What CI runs: the example app has no model change without a migration."""
    env = framework_env(
        FRAMEWORK_SETTINGS_MODULE="app_example.settings",
        FRAMEWORK_DATABASES=json.dumps({"default": f"sqlite:///{tmp_path}/db"}),
    )
    result = run_framework("makemigrations", "--check", env=env)
    assert (result.returncode, result.stdout, result.stderr) == (
        0,
        "No changes detected.\n",
        "",
    )
