"""Create the tables of app_example: collection, tag, bookmark (and its tags),
search document and audit entry."""

from __future__ import annotations

from sqlalchemy import DateTime
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy import Text

from framework.orm import migrations


class Migration(migrations.Migration):
    dependencies = []

    operations = [
        migrations.CreateTable(
            "app_example_collection",
            [
                migrations.Column(
                    "id", Integer(), primary_key=True, autoincrement=True
                ),
                migrations.Column(
                    "name", String(length=60), nullable=False, unique=True
                ),
                migrations.Column("created", DateTime(timezone=True), nullable=False),
            ],
        ),
        migrations.CreateTable(
            "app_example_tag",
            [
                migrations.Column(
                    "id", Integer(), primary_key=True, autoincrement=True
                ),
                migrations.Column(
                    "name", String(length=40), nullable=False, unique=True
                ),
                migrations.Column("bookmark_count", Integer(), nullable=False),
            ],
        ),
        migrations.CreateTable(
            "app_example_bookmark",
            [
                migrations.Column(
                    "id", Integer(), primary_key=True, autoincrement=True
                ),
                migrations.Column("url", String(length=500), nullable=False),
                migrations.Column("title", String(length=200), nullable=False),
                migrations.Column("notes", Text(), nullable=False),
                migrations.Column(
                    "collection_id",
                    Integer(),
                    nullable=False,
                    foreign_key="app_example_collection.id",
                ),
                migrations.Column("created", DateTime(timezone=True), nullable=False),
            ],
            indexes=[
                migrations.Index(
                    "ix_app_example_bookmark_collection_id", ("collection_id",)
                ),
            ],
        ),
        migrations.CreateTable(
            "app_example_bookmark_tags",
            [
                migrations.Column(
                    "id", Integer(), primary_key=True, autoincrement=True
                ),
                migrations.Column(
                    "bookmark_id",
                    Integer(),
                    nullable=False,
                    foreign_key="app_example_bookmark.id",
                ),
                migrations.Column(
                    "tag_id",
                    Integer(),
                    nullable=False,
                    foreign_key="app_example_tag.id",
                ),
            ],
            indexes=[
                migrations.Index(
                    "app_example_bookmark_tags_bookmark_tag_uniq",
                    ("bookmark_id", "tag_id"),
                    unique=True,
                ),
                migrations.Index(
                    "ix_app_example_bookmark_tags_bookmark_id", ("bookmark_id",)
                ),
                migrations.Index("ix_app_example_bookmark_tags_tag_id", ("tag_id",)),
            ],
        ),
        migrations.CreateTable(
            "app_example_searchdocument",
            [
                migrations.Column(
                    "id", Integer(), primary_key=True, autoincrement=True
                ),
                migrations.Column(
                    "bookmark_id",
                    Integer(),
                    nullable=False,
                    foreign_key="app_example_bookmark.id",
                ),
                migrations.Column("text", Text(), nullable=False),
            ],
            indexes=[
                migrations.Index(
                    "ix_app_example_searchdocument_bookmark_id", ("bookmark_id",)
                ),
            ],
        ),
        migrations.CreateTable(
            "app_example_auditentry",
            [
                migrations.Column(
                    "id", Integer(), primary_key=True, autoincrement=True
                ),
                migrations.Column("action", String(length=10), nullable=False),
                migrations.Column("model", String(length=40), nullable=False),
                migrations.Column("object_id", Integer(), nullable=False),
                migrations.Column("summary", String(length=200), nullable=False),
                migrations.Column("at", DateTime(timezone=True), nullable=False),
            ],
        ),
    ]
