"""Create table journal_entry."""

from __future__ import annotations

from sqlalchemy import Boolean
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy import Text

from framework.orm import migrations


class Migration(migrations.Migration):
    dependencies = []

    operations = [
        migrations.CreateTable(
            "journal_entry",
            [
                migrations.Column(
                    "id", Integer(), primary_key=True, autoincrement=True
                ),
                migrations.Column("headline", String(length=80), nullable=False),
                migrations.Column("body", Text(), nullable=False),
                migrations.Column("published", Boolean(), nullable=False),
            ],
        ),
    ]
