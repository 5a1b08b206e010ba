"""ORM benchmark: framework.orm against raw sqlite3, SQLAlchemy Core, peewee, Django.

Run: ``python bench/orm.py`` (needs the ``bench`` extra). Every contender gets
its own SQLite file in a temporary directory, with the same settings (WAL,
synchronous=NORMAL) and the same table ``item(id, name varchar(50), score int
indexed)``, whose ``id`` is ``AUTOINCREMENT`` (never reused: what framework.orm
and Django create; each insert also updates ``sqlite_sequence``) but for
peewee, which does not ask for it. The ORMs have a ``pre_save`` and a
``post_save`` receiver connected for the model (peewee through
``playhouse.signals``); raw sqlite3 and SQLAlchemy Core have no signals and
are the floor.

Cases (microseconds per operation, best of ``--repeat`` runs):

- ``save, one transaction``: build an instance and save it, N inside one
  transaction (raw: ``INSERT`` + ``lastrowid``);
- ``save, autocommit``: the same, each save committing on its own;
- ``get(pk=...)``: fetch one row by primary key into an object;
- ``filter (10 rows)``: ``score = k AND name LIKE 'n%'`` returning 10 objects;
- ``list page (100 rows, FK + m2m)``: 100 books with their author (a join:
  ``select_related``, SQLAlchemy ORM's ``joinedload``) and their three tags
  (one more query: ``prefetch_related``, ``selectinload``, peewee's
  ``prefetch``), read into objects; raw sqlite3 and SQLAlchemy Core run the
  same two queries by hand;
- ``annotate(Count) listing (100 rows)``: the same 100 books, each with the
  number of its tags (``annotate(n=Count("tags"))``; SQLAlchemy ORM, peewee,
  raw sqlite3 and Core: ``LEFT JOIN`` + ``GROUP BY``), read into objects;
- ``F() update``: ``filter(pk=k).update(score=F("score") + 1)``, each
  committing on its own (one ``UPDATE ... SET score = score + ?``).

SQLAlchemy ORM runs the last three cases only.

"framework fastest ORM?" compares framework.orm with the ORMs (SQLAlchemy
ORM, peewee, Django); raw sqlite3 and SQLAlchemy Core build no model
objects and are the floor.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import sqlite3
import sys
import tempfile
import time
import typing as t

PRAGMAS = ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL")
READ_ROWS = 1000
CASES: dict[str, tuple[str, int]] = {
    "save, one transaction": ("save_tx", 5000),
    "save, autocommit": ("save_auto", 1000),
    "get(pk=...)": ("get", 5000),
    "filter (10 rows)": ("filter", 2000),
    "list page (100 rows, FK + m2m)": ("list_page", 300),
    "annotate(Count) listing (100 rows)": ("annotate_count", 300),
    "F() update": ("f_update", 1000),
}
"""Each case: the :class:`Contender` method that runs it and its count at scale 1."""


def receiver(*args: t.Any, **kwargs: t.Any) -> None:
    """A receiver that does nothing (the cost measured is the dispatch)."""


def per_operation(func: t.Callable[[int], t.Any], n: int) -> float:
    """Return the time per operation of ``func(n)`` in microseconds."""
    gc.collect()
    start = time.perf_counter()
    func(n)
    return (time.perf_counter() - start) / n * 1e6


PAGE_ROWS = 100
PAGE_TAGS = 3


def fill_list_page(path: str) -> None:
    """Fill author/tag/book/book_tags: 100 books of 10 authors, 3 tags each."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN")
    for name in ("book_tags", "book", "author", "tag"):
        conn.execute(f"DELETE FROM {name}")
    conn.executemany(
        "INSERT INTO author (id, name) VALUES (?, ?)",
        [(i, f"author {i}") for i in range(1, 11)],
    )
    conn.executemany(
        "INSERT INTO tag (id, name) VALUES (?, ?)",
        [(i, f"tag {i}") for i in range(1, 21)],
    )
    conn.executemany(
        "INSERT INTO book (id, title, author_id) VALUES (?, ?, ?)",
        [(i, f"book {i}", 1 + i % 10) for i in range(1, PAGE_ROWS + 1)],
    )
    conn.executemany(
        "INSERT INTO book_tags (book_id, tag_id) VALUES (?, ?)",
        [
            (i, 1 + (i + step) % 20)
            for i in range(1, PAGE_ROWS + 1)
            for step in (0, 7, 13)
        ],
    )
    conn.execute("COMMIT")
    conn.close()


def check_counts(rows: list[tuple[str, int]]) -> None:
    """Assert that the listing holds every book with its three tags counted."""
    assert len(rows) == PAGE_ROWS
    assert rows[0] == ("book 1", PAGE_TAGS)
    assert all(n == PAGE_TAGS for _, n in rows)


def check_page(page: list[tuple[str, str, list[str]]]) -> None:
    """Assert that a page holds every book, its author and its three tags."""
    assert len(page) == PAGE_ROWS
    assert page[0][:2] == ("book 1", "author 2")
    assert all(len(tags) == PAGE_TAGS for _, _, tags in page)


def fill_for_reads(path: str) -> None:
    """Replace the rows with READ_ROWS rows: score = i % 100, name = 'n<i>'."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN")
    conn.execute("DELETE FROM item")
    conn.executemany(
        "INSERT INTO item (id, name, score) VALUES (?, ?, ?)",
        [(i, f"n{i}", i % 100) for i in range(1, READ_ROWS + 1)],
    )
    conn.execute("COMMIT")
    conn.close()


class Contender:
    """One library under test."""

    name = ""

    def __init__(self, directory: str) -> None:
        self.path = os.path.join(directory, f"{self.name.split()[0].lower()}.db")

    def save_tx(self, n: int) -> None:
        raise NotImplementedError

    def save_auto(self, n: int) -> None:
        raise NotImplementedError

    def get(self, n: int) -> None:
        raise NotImplementedError

    def filter(self, n: int) -> None:
        raise NotImplementedError

    def list_page(self, n: int) -> None:
        raise NotImplementedError

    def annotate_count(self, n: int) -> None:
        raise NotImplementedError

    def f_update(self, n: int) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Release connections."""


def _pks(n: int) -> list[int]:
    rng = random.Random(n)
    return [rng.randint(1, READ_ROWS) for _ in range(n)]


class RawSQLite(Contender):
    name = "sqlite3 (raw)"

    def __init__(self, directory: str) -> None:
        super().__init__(directory)
        self.conn = sqlite3.connect(self.path, isolation_level=None)
        for pragma in PRAGMAS:
            self.conn.execute(pragma)
        self.conn.execute(
            "CREATE TABLE item (id INTEGER PRIMARY KEY AUTOINCREMENT,"
            " name VARCHAR(50) NOT NULL, score INTEGER NOT NULL)"
        )
        self.conn.execute("CREATE INDEX item_score ON item (score)")
        self.conn.executescript(
            "CREATE TABLE author (id INTEGER PRIMARY KEY, name VARCHAR(50) NOT NULL);"
            "CREATE TABLE tag (id INTEGER PRIMARY KEY, name VARCHAR(50) NOT NULL);"
            "CREATE TABLE book (id INTEGER PRIMARY KEY, title VARCHAR(50) NOT NULL,"
            " author_id INTEGER NOT NULL REFERENCES author (id));"
            "CREATE INDEX book_author ON book (author_id);"
            "CREATE TABLE book_tags (id INTEGER PRIMARY KEY,"
            " book_id INTEGER NOT NULL REFERENCES book (id),"
            " tag_id INTEGER NOT NULL REFERENCES tag (id));"
            "CREATE INDEX book_tags_book ON book_tags (book_id);"
        )

    def save_tx(self, n: int) -> None:
        execute = self.conn.execute
        execute("BEGIN")
        for i in range(n):
            execute("INSERT INTO item (name, score) VALUES (?, ?)", ("x", i)).lastrowid  # noqa: B018
        execute("COMMIT")

    def save_auto(self, n: int) -> None:
        execute = self.conn.execute
        for i in range(n):
            execute("INSERT INTO item (name, score) VALUES (?, ?)", ("x", i)).lastrowid  # noqa: B018

    def get(self, n: int) -> None:
        execute = self.conn.execute
        for pk in _pks(n):
            execute("SELECT id, name, score FROM item WHERE id = ?", (pk,)).fetchone()

    def filter(self, n: int) -> None:
        execute = self.conn.execute
        for i in range(n):
            rows = execute(
                "SELECT id, name, score FROM item WHERE score = ? AND name LIKE ?"
                " ESCAPE '/'",
                (i % 100, "n%"),
            ).fetchall()
            assert len(rows) == 10

    def list_page(self, n: int) -> None:
        execute = self.conn.execute
        for _ in range(n):
            books = execute(
                "SELECT b.id, b.title, b.author_id, a.id, a.name FROM book b"
                " JOIN author a ON a.id = b.author_id ORDER BY b.id"
            ).fetchall()
            ids = [row[0] for row in books]
            tags: dict[int, list[str]] = {}
            for book_id, _, name in execute(
                "SELECT bt.book_id, t.id, t.name FROM tag t JOIN book_tags bt"
                f" ON bt.tag_id = t.id WHERE bt.book_id IN ({','.join('?' * len(ids))})"
                " ORDER BY bt.id",
                ids,
            ):
                tags.setdefault(book_id, []).append(name)
            check_page([(row[1], row[4], tags[row[0]]) for row in books])

    def annotate_count(self, n: int) -> None:
        execute = self.conn.execute
        for _ in range(n):
            rows = execute(
                "SELECT b.id, b.title, b.author_id, COUNT(bt.tag_id) FROM book b"
                " LEFT JOIN book_tags bt ON bt.book_id = b.id GROUP BY b.id"
                " ORDER BY b.id"
            ).fetchall()
            check_counts([(row[1], row[3]) for row in rows])

    def f_update(self, n: int) -> None:
        execute = self.conn.execute
        for pk in _pks(n):
            execute("UPDATE item SET score = score + ? WHERE id = ?", (1, pk))

    def close(self) -> None:
        self.conn.close()


class SQLAlchemyCore(Contender):
    name = "SQLAlchemy Core"

    def __init__(self, directory: str) -> None:
        super().__init__(directory)
        import sqlalchemy as sa

        self.sa = sa
        self.engine = sa.create_engine(f"sqlite:///{self.path}")

        @sa.event.listens_for(self.engine, "connect")
        def set_pragmas(dbapi_connection: t.Any, record: t.Any) -> None:
            for pragma in PRAGMAS:
                dbapi_connection.execute(pragma)

        metadata = sa.MetaData()
        self.table = sa.Table(
            "item",
            metadata,
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("name", sa.String(50), nullable=False),
            sa.Column("score", sa.Integer, nullable=False, index=True),
            sqlite_autoincrement=True,
        )
        self.author = sa.Table(
            "author",
            metadata,
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("name", sa.String(50), nullable=False),
        )
        self.tag = sa.Table(
            "tag",
            metadata,
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("name", sa.String(50), nullable=False),
        )
        self.book = sa.Table(
            "book",
            metadata,
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("title", sa.String(50), nullable=False),
            sa.Column("author_id", sa.ForeignKey("author.id"), index=True),
        )
        self.book_tags = sa.Table(
            "book_tags",
            metadata,
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("book_id", sa.ForeignKey("book.id"), index=True),
            sa.Column("tag_id", sa.ForeignKey("tag.id")),
        )
        metadata.create_all(self.engine)
        self.conn = self.engine.connect()
        self.conn.commit()

    def save_tx(self, n: int) -> None:
        insert = self.table.insert()
        with self.conn.begin():
            for i in range(n):
                result = self.conn.execute(insert, {"name": "x", "score": i})
                result.inserted_primary_key  # noqa: B018

    def save_auto(self, n: int) -> None:
        insert = self.table.insert()
        for i in range(n):
            self.conn.execute(insert, {"name": "x", "score": i}).inserted_primary_key  # noqa: B018
            self.conn.commit()

    def get(self, n: int) -> None:
        table = self.table
        for pk in _pks(n):
            self.conn.execute(self.sa.select(table).where(table.c.id == pk)).first()
        self.conn.commit()

    def filter(self, n: int) -> None:
        table = self.table
        for i in range(n):
            stmt = self.sa.select(table).where(
                table.c.score == i % 100, table.c.name.startswith("n")
            )
            rows = self.conn.execute(stmt).all()
            assert len(rows) == 10
        self.conn.commit()

    def list_page(self, n: int) -> None:
        sa, book, author, tag, link = (
            self.sa,
            self.book,
            self.author,
            self.tag,
            self.book_tags,
        )
        books_stmt = (
            sa.select(book.c.id, book.c.title, author.c.name)
            .join_from(book, author)
            .order_by(book.c.id)
        )
        for _ in range(n):
            books = self.conn.execute(books_stmt).all()
            tags: dict[int, list[str]] = {}
            stmt = (
                sa.select(link.c.book_id, tag.c.id, tag.c.name)
                .join_from(tag, link)
                .where(link.c.book_id.in_([row[0] for row in books]))
                .order_by(link.c.id)
            )
            for book_id, _, name in self.conn.execute(stmt):
                tags.setdefault(book_id, []).append(name)
            check_page([(row[1], row[2], tags[row[0]]) for row in books])
        self.conn.commit()

    def annotate_count(self, n: int) -> None:
        sa, book, link = self.sa, self.book, self.book_tags
        for _ in range(n):
            stmt = (
                sa.select(book, sa.func.count(link.c.tag_id))
                .outerjoin(link, link.c.book_id == book.c.id)
                .group_by(book.c.id)
                .order_by(book.c.id)
            )
            rows = self.conn.execute(stmt).all()
            check_counts([(row[1], row[3]) for row in rows])
        self.conn.commit()

    def f_update(self, n: int) -> None:
        table = self.table
        for pk in _pks(n):
            stmt = table.update().where(table.c.id == pk)
            self.conn.execute(stmt.values(score=table.c.score + 1))
            self.conn.commit()

    def close(self) -> None:
        self.conn.close()
        self.engine.dispose()


class SQLAlchemyORM(Contender):
    """The SQLAlchemy ORM: the list page (joinedload + selectinload), the
    annotate listing and the F() update.
    """

    name = "SQLAlchemy ORM"
    cases = ("list_page", "annotate_count", "f_update")

    def __init__(self, directory: str) -> None:
        super().__init__(directory)
        import sqlalchemy as sa
        from sqlalchemy import orm as sa_orm

        self.sa, self.sa_orm = sa, sa_orm
        self.engine = sa.create_engine(f"sqlite:///{self.path}")

        @sa.event.listens_for(self.engine, "connect")
        def set_pragmas(dbapi_connection: t.Any, record: t.Any) -> None:
            for pragma in PRAGMAS:
                dbapi_connection.execute(pragma)

        class Base(sa_orm.DeclarativeBase):
            pass

        book_tags = sa.Table(
            "book_tags",
            Base.metadata,
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("book_id", sa.ForeignKey("book.id"), index=True),
            sa.Column("tag_id", sa.ForeignKey("tag.id")),
        )

        # No Mapped[] annotations: this module's annotations are strings.
        class Author(Base):
            __tablename__ = "author"
            id = sa_orm.mapped_column(sa.Integer, primary_key=True)
            name = sa_orm.mapped_column(sa.String(50))

        class Tag(Base):
            __tablename__ = "tag"
            id = sa_orm.mapped_column(sa.Integer, primary_key=True)
            name = sa_orm.mapped_column(sa.String(50))

        class Book(Base):
            __tablename__ = "book"
            id = sa_orm.mapped_column(sa.Integer, primary_key=True)
            title = sa_orm.mapped_column(sa.String(50))
            author_id = sa_orm.mapped_column(sa.ForeignKey("author.id"), index=True)
            author = sa_orm.relationship(Author)
            tags = sa_orm.relationship(
                Tag, secondary=book_tags, order_by=book_tags.c.id
            )

        class Item(Base):
            __tablename__ = "item"
            id = sa_orm.mapped_column(sa.Integer, primary_key=True)
            name = sa_orm.mapped_column(sa.String(50))
            score = sa_orm.mapped_column(sa.Integer, index=True)

        Base.metadata.create_all(self.engine)
        self.Book = Book
        self.Item = Item
        self.book_tags = book_tags
        self.session = sa_orm.Session(self.engine)

    def list_page(self, n: int) -> None:
        sa, sa_orm, book = self.sa, self.sa_orm, self.Book
        stmt = (
            sa.select(book)
            .options(sa_orm.joinedload(book.author), sa_orm.selectinload(book.tags))
            .order_by(book.id)
        )
        for _ in range(n):
            # A new session per page: no identity map carried over.
            with sa_orm.Session(self.engine) as session:
                page = [
                    (b.title, b.author.name, [t.name for t in b.tags])
                    for b in session.scalars(stmt)
                ]
            check_page(page)

    def annotate_count(self, n: int) -> None:
        sa, sa_orm, book, link = self.sa, self.sa_orm, self.Book, self.book_tags
        stmt = (
            sa.select(book, sa.func.count(link.c.tag_id).label("n"))
            .outerjoin(link, link.c.book_id == book.id)
            .group_by(book.id)
            .order_by(book.id)
        )
        for _ in range(n):
            with sa_orm.Session(self.engine) as session:
                rows = [(b.title, count) for b, count in session.execute(stmt)]
            check_counts(rows)

    def f_update(self, n: int) -> None:
        sa, item, session = self.sa, self.Item, self.session
        for pk in _pks(n):
            stmt = sa.update(item).where(item.id == pk)
            session.execute(stmt.values(score=item.score + 1))
            session.commit()

    def close(self) -> None:
        self.session.close()
        self.engine.dispose()


class Peewee(Contender):
    name = "peewee"

    def __init__(self, directory: str) -> None:
        super().__init__(directory)
        import peewee
        from playhouse import signals

        self.db = peewee.SqliteDatabase(
            self.path, pragmas={"journal_mode": "wal", "synchronous": "normal"}
        )

        class Item(signals.Model):  # type: ignore[misc]
            name = peewee.CharField(max_length=50)
            score = peewee.IntegerField(index=True)

            class Meta:
                database = self.db
                table_name = "item"

        class Author(peewee.Model):
            name = peewee.CharField(max_length=50)

            class Meta:
                database = self.db
                table_name = "author"

        class Tag(peewee.Model):
            name = peewee.CharField(max_length=50)

            class Meta:
                database = self.db
                table_name = "tag"

        class Book(peewee.Model):
            title = peewee.CharField(max_length=50)
            author = peewee.ForeignKeyField(Author, backref="books")

            class Meta:
                database = self.db
                table_name = "book"

        class BookTag(peewee.Model):
            book = peewee.ForeignKeyField(Book, backref="book_tags")
            tag = peewee.ForeignKeyField(Tag)

            class Meta:
                database = self.db
                table_name = "book_tags"

        self.peewee = peewee
        self.Item = Item
        self.page_models = (Author, Tag, Book, BookTag)
        self.db.connect()
        self.db.create_tables([Item, Author, Tag, Book, BookTag])
        signals.pre_save.connect(receiver, sender=Item)
        signals.post_save.connect(receiver, sender=Item)

    def save_tx(self, n: int) -> None:
        item = self.Item
        with self.db.atomic():
            for i in range(n):
                item(name="x", score=i).save()

    def save_auto(self, n: int) -> None:
        item = self.Item
        for i in range(n):
            item(name="x", score=i).save()

    def get(self, n: int) -> None:
        item = self.Item
        for pk in _pks(n):
            item.get_by_id(pk)

    def filter(self, n: int) -> None:
        item = self.Item
        for i in range(n):
            rows = list(
                item.select().where((item.score == i % 100) & item.name.startswith("n"))
            )
            assert len(rows) == 10

    def list_page(self, n: int) -> None:
        author, tag, book, book_tag = self.page_models
        prefetch = self.peewee.prefetch
        for _ in range(n):
            books = book.select(book, author).join(author).order_by(book.id)
            tags = book_tag.select(book_tag, tag).join(tag).order_by(book_tag.id)
            check_page(
                [
                    (b.title, b.author.name, [bt.tag.name for bt in b.book_tags])
                    for b in prefetch(books, tags)
                ]
            )

    def annotate_count(self, n: int) -> None:
        peewee = self.peewee
        _, _, book, book_tag = self.page_models
        for _ in range(n):
            books = (
                book.select(book, peewee.fn.COUNT(book_tag.id).alias("n"))
                .join(book_tag, peewee.JOIN.LEFT_OUTER)
                .group_by(book.id)
                .order_by(book.id)
            )
            check_counts([(b.title, b.n) for b in books])

    def f_update(self, n: int) -> None:
        item = self.Item
        for pk in _pks(n):
            item.update(score=item.score + 1).where(item.id == pk).execute()

    def close(self) -> None:
        self.db.close()


class DjangoStyle(Contender):
    """Django and framework.orm share the manager API: the same loops."""

    Item: t.Any
    transaction: t.Any
    expressions: t.Any
    """The module with F and Count."""

    def save_tx(self, n: int) -> None:
        item = self.Item
        with self.transaction.atomic():
            for i in range(n):
                item(name="x", score=i).save()

    def save_auto(self, n: int) -> None:
        item = self.Item
        for i in range(n):
            item(name="x", score=i).save()

    def get(self, n: int) -> None:
        objects = self.Item.objects
        for pk in _pks(n):
            objects.get(pk=pk)

    def filter(self, n: int) -> None:
        objects = self.Item.objects
        for i in range(n):
            rows = list(objects.filter(score=i % 100, name__startswith="n"))
            assert len(rows) == 10

    def list_page(self, n: int) -> None:
        objects = self.Book.objects
        for _ in range(n):
            qs = objects.select_related("author").prefetch_related("tags")
            check_page(
                [(b.title, b.author.name, [t.name for t in b.tags.all()]) for b in qs]
            )

    def annotate_count(self, n: int) -> None:
        objects, count = self.Book.objects, self.expressions.Count
        for _ in range(n):
            # order_by(): Django leaves Meta.ordering out of GROUP BY queries.
            qs = objects.annotate(n=count("tags")).order_by("id")
            check_counts([(b.title, b.n) for b in qs])

    def f_update(self, n: int) -> None:
        objects, f = self.Item.objects, self.expressions.F
        for pk in _pks(n):
            objects.filter(pk=pk).update(score=f("score") + 1)


class Django(DjangoStyle):
    name = "Django ORM"

    def __init__(self, directory: str) -> None:
        super().__init__(directory)
        import django
        from django.conf import settings

        # An installed app for the models: Django finds reverse relations
        # (which prefetch_related needs) only on installed apps' models.
        package = os.path.join(directory, "django_bench")
        os.makedirs(package, exist_ok=True)
        open(os.path.join(package, "__init__.py"), "w").close()
        sys.path.insert(0, directory)
        settings.configure(
            DATABASES={
                "default": {
                    "ENGINE": "django.db.backends.sqlite3",
                    "NAME": self.path,
                    "OPTIONS": {"init_command": ";".join(PRAGMAS)},
                }
            },
            INSTALLED_APPS=["django_bench"],
            USE_TZ=True,
            DEFAULT_AUTO_FIELD="django.db.models.AutoField",
        )
        django.setup()
        from django.db import connection
        from django.db import models
        from django.db import transaction
        from django.db.models import signals

        self.expressions = models

        class Item(models.Model):
            name = models.CharField(max_length=50)
            score = models.IntegerField(db_index=True)

            class Meta:
                app_label = "django_bench"
                db_table = "item"

        class Author(models.Model):
            name = models.CharField(max_length=50)

            class Meta:
                app_label = "django_bench"
                db_table = "author"

        class Tag(models.Model):
            name = models.CharField(max_length=50)

            class Meta:
                app_label = "django_bench"
                db_table = "tag"

        class Book(models.Model):
            title = models.CharField(max_length=50)
            author = models.ForeignKey(Author, on_delete=models.CASCADE)
            tags = models.ManyToManyField(Tag, db_table="book_tags")

            class Meta:
                app_label = "django_bench"
                db_table = "book"
                ordering = ["id"]

        with connection.schema_editor() as editor:
            for model in (Item, Author, Tag, Book):
                editor.create_model(model)
        self.Book = Book
        signals.pre_save.connect(receiver, sender=Item)
        signals.post_save.connect(receiver, sender=Item)
        self.Item = Item
        self.transaction = transaction
        self.connection = connection

    def close(self) -> None:
        self.connection.close()


class Framework(DjangoStyle):
    name = "framework.orm"

    def __init__(self, directory: str) -> None:
        super().__init__(directory)
        from framework.conf import settings

        settings.configure(DATABASES={"default": f"sqlite:///{self.path}"})
        from framework import orm
        from framework import signals

        class Item(orm.Model):
            name = orm.CharField(max_length=50)
            score = orm.IntegerField(db_index=True)

            class Meta:
                app_label = "bench"
                db_table = "item"

        class Author(orm.Model):
            name = orm.CharField(max_length=50)

            class Meta:
                app_label = "bench"
                db_table = "author"

        class Tag(orm.Model):
            name = orm.CharField(max_length=50)

            class Meta:
                app_label = "bench"
                db_table = "tag"

        class Book(orm.Model):
            title = orm.CharField(max_length=50)
            author = orm.ForeignKey(Author, on_delete=orm.CASCADE)
            tags = orm.ManyToManyField(Tag)

            class Meta:
                app_label = "bench"
                db_table = "book"
                ordering = ["id"]

        orm.create_tables([Item, Author, Tag, Book, Book.tags.through])
        self.Book = Book
        signals.pre_save.connect(receiver, sender=Item)
        signals.post_save.connect(receiver, sender=Item)
        self.Item = Item
        self.orm = orm
        self.expressions = orm
        self.transaction = orm.transaction

    def close(self) -> None:
        self.orm.connections.close_all()


CONTENDERS = (RawSQLite, SQLAlchemyCore, SQLAlchemyORM, Peewee, Django, Framework)


def run(scale: float, repeat: int) -> dict[str, dict[str, float]]:
    """Run every case for every contender; return µs per operation.

    The contenders take turns within each round, so that a change in the
    machine's load during the run affects them alike; the best round counts.
    """
    results: dict[str, dict[str, float]] = {c.name: {} for c in CONTENDERS}
    with tempfile.TemporaryDirectory() as directory:
        contenders = [contender_class(directory) for contender_class in CONTENDERS]
        for case, (method, count) in CASES.items():
            if case == "get(pk=...)":
                for contender in contenders:
                    fill_for_reads(contender.path)
            if method in ("list_page", "annotate_count"):
                for contender in contenders:
                    fill_list_page(contender.path)
            for _ in range(repeat):
                for contender in contenders:
                    if method not in getattr(contender, "cases", (method,)):
                        continue
                    func = getattr(contender, method)
                    value = per_operation(func, int(count * scale))
                    previous = results[contender.name].get(case)
                    if previous is None or value < previous:
                        results[contender.name][case] = value
        for contender in contenders:
            contender.close()
    return results


def table(results: dict[str, dict[str, float]]) -> str:
    """Format the results: µs per operation and the ratio to raw sqlite3."""
    names = [c.name for c in CONTENDERS]
    floor = results[RawSQLite.name]
    header = ["case", *names, "framework / raw", "framework fastest ORM?"]
    rows = [header]
    for case in CASES:
        row = [case]
        for name in names:
            value = results[name].get(case)
            if value is None:
                row.append("—")
                continue
            row.append(f"{value:8.2f} ({value / floor[case]:.1f}x)")
        ours = results[Framework.name][case]
        # The ORMs: raw sqlite3 and SQLAlchemy Core build no objects.
        peers = [
            results[n][case]
            for n in names
            if n not in (RawSQLite.name, SQLAlchemyCore.name, Framework.name)
            and case in results[n]
        ]
        row.append(f"{ours / floor[case]:.2f}x")
        row.append("yes" if ours < min(peers) else "NO")
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = []
    for index, row in enumerate(rows):
        lines.append(
            "| "
            + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True))
            + " |"
        )
        if index == 0:
            lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the counts")
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs per case (best kept)"
    )
    args = parser.parse_args(argv)
    results = run(args.scale, args.repeat)
    print(
        f"Python {sys.version.split()[0]}, SQLite {sqlite3.sqlite_version};"
        " microseconds per operation (ratio to raw sqlite3)"
    )
    print(table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
