"""Users who sign in to the pages, and hashed API tokens."""

from __future__ import annotations

from sqlalchemy import DateTime
from sqlalchemy import Integer
from sqlalchemy import String

from framework.orm import migrations


class Migration(migrations.Migration):
    """The operations of this migration and what must run before."""

    dependencies = [
        ("app_example", "0001_initial"),
    ]

    operations = [
        migrations.CreateTable(
            "app_example_user",
            [
                migrations.Column(
                    "id",
                    Integer(),
                    primary_key=True,
                    autoincrement=True,
                ),
                migrations.Column(
                    "username",
                    String(length=150),
                    nullable=False,
                    unique=True,
                ),
                migrations.Column("password", String(length=200), nullable=False),
                migrations.Column("created", DateTime(timezone=True), nullable=False),
            ],
        ),
        migrations.CreateTable(
            "app_example_apitoken",
            [
                migrations.Column(
                    "id",
                    Integer(),
                    primary_key=True,
                    autoincrement=True,
                ),
                migrations.Column(
                    "name",
                    String(length=60),
                    nullable=False,
                    unique=True,
                ),
                migrations.Column(
                    "token_hash",
                    String(length=64),
                    nullable=False,
                    unique=True,
                ),
                migrations.Column("created", DateTime(timezone=True), nullable=False),
            ],
        ),
    ]
