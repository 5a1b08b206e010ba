"""Several processes writing through the ORM at once: every row arrives."""

import multiprocessing
import traceback

from framework import orm

from .models import Author
from .models import Book

WORKERS = 4
ROWS = 40


def write_rows(worker, out_path):
    try:
        for i in range(ROWS):
            if i % 2:
                # Read, then write, in one transaction: the pattern that fails
                # with "database is locked" under deferred SQLite transactions.
                with orm.atomic():
                    Author.objects.filter(name__startswith=f"w{worker}-").count()
                    author = Author.objects.create(name=f"w{worker}-{i}")
                    Book.objects.create(title="t", author=author)
            else:
                Author.objects.create(name=f"w{worker}-{i}")
        orm.connections.close_all()
        with open(out_path, "w") as out:
            out.write("ok")
    except BaseException:
        with open(out_path, "w") as out:
            out.write(traceback.format_exc())


def test_processes_write_concurrently(db, tmp_path):
    orm.connections.close_all()
    context = multiprocessing.get_context("fork")
    outputs = [tmp_path / f"worker{n}.txt" for n in range(WORKERS)]
    processes = [
        context.Process(target=write_rows, args=(n, str(outputs[n])))
        for n in range(WORKERS)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(60)
        assert process.exitcode == 0
    assert [path.read_text() for path in outputs] == ["ok"] * WORKERS
    names = set(Author.objects.values_list("name", flat=True))
    assert names == {f"w{w}-{i}" for w in range(WORKERS) for i in range(ROWS)}
    assert Book.objects.count() == WORKERS * ROWS // 2


def test_threads_write_concurrently(db):
    import threading

    errors = []

    def work(worker):
        try:
            for i in range(25):
                with orm.atomic():
                    Author.objects.filter(name__startswith=f"t{worker}-").count()
                    Author.objects.create(name=f"t{worker}-{i}")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            orm.connections.close_all()

    threads = [threading.Thread(target=work, args=(n,)) for n in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert Author.objects.count() == WORKERS * 25
