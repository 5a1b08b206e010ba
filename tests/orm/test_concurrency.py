"""Several processes or threads writing through the ORM at once.

Every row arrives; two transactions on the same rows never count, signal or
link anything twice (deletes, many-to-many changes, select_for_update).
"""

import multiprocessing
import traceback

import pytest

from framework import orm
from framework import signals

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


# Two transactions on the same rows (issue #11) ------------------------------


class Holder:
    """Run ``work`` in a thread inside ``atomic()`` and keep it open.

    The transaction commits when the test calls :meth:`commit_after` (with
    the test's own racing call): the call starts while the holder's
    transaction is open, blocks on it (PostgreSQL row locks; SQLite's
    ``BEGIN IMMEDIATE``) and runs once it has committed.
    """

    def __init__(self, work):
        import threading

        self.ready = threading.Event()
        self.release = threading.Event()
        self.errors = []
        self.result = None
        self.thread = threading.Thread(target=self._run, args=(work,))
        self.thread.start()
        assert self.ready.wait(30), self.errors

    def _run(self, work):
        try:
            with orm.atomic():
                self.result = work()
                self.ready.set()
                assert self.release.wait(30)
        except BaseException as exc:  # pragma: no cover - reported by the test
            self.errors.append(exc)
            self.ready.set()
        finally:
            orm.connections.close_all()

    def commit_after(self, call, delay=0.3):
        """Start ``call`` here, let the holder commit once it waits; return it.

        On PostgreSQL the holder commits as soon as another session waits for
        a lock (``call``, blocked on the holder's rows), so the race is run
        whatever the machine's load. SQLite's busy wait cannot be seen from
        outside: there the holder commits ``delay`` seconds later (a call
        slower to start runs after the commit, and gives the same result).
        """
        import threading

        url = orm.connections["default"].settings_dict["URL"]
        if orm.connections["default"].vendor == "sqlite":
            releaser = threading.Timer(delay, self.release.set)
        else:

            def release_when_blocked():
                try:
                    wait_for_lock_waiters(url, 1)
                except AssertionError as exc:  # pragma: no cover - reported below
                    self.errors.append(exc)
                finally:
                    self.release.set()

            releaser = threading.Thread(target=release_when_blocked)
        releaser.start()
        try:
            return call()
        finally:
            releaser.join()
            self.thread.join(30)
            assert self.errors == []

    def commit_after_call(self, call):
        """Run ``call`` here while the holder's transaction is open, then commit."""
        try:
            return call()
        finally:
            self.release.set()
            self.thread.join(30)
            assert self.errors == []


def wait_for_lock_waiters(url, count, timeout=30, unless=lambda: False):
    """Wait until ``count`` sessions of this PostgreSQL database wait for a lock.

    :param unless: stop waiting (returning) as soon as this returns True.
    """
    import time

    import psycopg

    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline and not unless():
            (waiting,) = conn.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            ).fetchone()
            if waiting >= count:
                return
            time.sleep(0.01)
        if unless():
            return
    raise AssertionError(f"no {count} session(s) waited for a lock in {timeout} s")


def _recorder(calls):
    def record(sender, *, signal, instance, **kwargs):
        calls.append((signal.name, instance.pk))

    return record


def test_delete_of_a_row_deleted_meanwhile_counts_nothing_and_signals_nothing(db):
    author = Author.objects.create(name="gone")
    Book.objects.create(title="t", author=author)
    calls = []
    record = _recorder(calls)
    with (
        signals.pre_delete.connected_to(record, sender=Author),
        signals.post_delete.connected_to(record, sender=Author),
    ):
        first = Author.objects.get(pk=author.pk)
        holder = Holder(first.delete)
        second = Author.objects.get(pk=author.pk)
        assert holder.commit_after(second.delete) == (0, {})
    assert holder.result == (2, {"ormtests.Author": 1, "ormtests.Book": 1})
    assert calls == [("pre_delete", author.pk), ("post_delete", author.pk)]


def test_delete_without_relations_counts_only_what_it_deleted(db):
    from .models import Topping

    topping = Topping.objects.create(name="ham")
    calls = []
    record = _recorder(calls)
    with signals.post_delete.connected_to(record, sender=Topping):
        holder = Holder(Topping.objects.get(pk=topping.pk).delete)
        copy = Topping.objects.get(pk=topping.pk)
        assert holder.commit_after(copy.delete) == (0, {})
    assert calls == [("post_delete", topping.pk)]


def test_queryset_delete_counts_and_signals_only_the_rows_it_deleted(db):
    kept = Author.objects.create(name="kept-1")
    taken = Author.objects.create(name="taken")
    calls = []
    record = _recorder(calls)
    with signals.post_delete.connected_to(record, sender=Author):
        holder = Holder(lambda: Author.objects.filter(pk=taken.pk).delete())
        names = Author.objects.filter(name__in=["kept-1", "taken"])
        found = holder.commit_after(names.delete)
    assert found == (1, {"ormtests.Author": 1})
    assert sorted(calls) == [("post_delete", kept.pk), ("post_delete", taken.pk)]


def test_m2m_add_of_a_link_another_transaction_added(db):
    from .models import Pizza
    from .models import Topping

    ham = Topping.objects.create(name="ham")
    pizza = Pizza.objects.create(name="p")
    seen = []

    def record(sender, *, action, pk_set, **kwargs):
        seen.append((action, set(pk_set or ())))

    holder = Holder(lambda: pizza.toppings.add(ham))
    with signals.m2m_changed.connected_to(record, sender=Pizza.toppings.through):
        # The reverse side: another owner row, so only the link itself races.
        holder.commit_after(lambda: ham.pizza_set.add(pizza))
    assert seen[-1] == ("post_add", set())
    assert Pizza.toppings.through.objects.count() == 1


def test_m2m_remove_and_clear_report_only_links_they_deleted(db):
    from .models import Pizza
    from .models import Topping

    ham, olive = Topping.objects.create(name="ham"), Topping.objects.create(name="o")
    pizza = Pizza.objects.create(name="p")
    pizza.toppings.add(ham, olive)
    seen = []

    def record(sender, *, action, pk_set, **kwargs):
        seen.append((action, pk_set))

    holder = Holder(lambda: pizza.toppings.remove(ham))
    with signals.m2m_changed.connected_to(record, sender=Pizza.toppings.through):
        holder.commit_after(lambda: ham.pizza_set.remove(pizza))
        assert seen[-1] == ("post_remove", set())
        holder = Holder(lambda: olive.pizza_set.clear())
        holder.commit_after(lambda: Pizza.objects.get(pk=pizza.pk).toppings.clear())
    assert seen[-1] == ("post_clear", set())
    assert Pizza.toppings.through.objects.count() == 0


def test_concurrent_set_of_one_instance_last_one_wins(db):
    from .models import Pizza
    from .models import Topping

    red, green, blue = (Topping.objects.create(name=n) for n in ("r", "g", "b"))
    pizza = Pizza.objects.create(name="p")
    pizza.toppings.set([red])
    holder = Holder(lambda: Pizza.objects.get(pk=pizza.pk).toppings.set([green]))
    holder.commit_after(lambda: Pizza.objects.get(pk=pizza.pk).toppings.set([blue]))
    assert [t.name for t in pizza.toppings.all()] == ["b"]


class Meeting:
    """Lets two transactions write at once unless the ORM's locks queue them.

    Each transaction arrives after its first write to ``table``: the first
    to arrive goes on once the other has arrived too (nothing serialised
    them: each now holds a row the other may want next) or waits for a lock.
    """

    def __init__(self, table):
        import threading

        self.url = orm.connections["default"].settings_dict["URL"]
        self.writes = (f"INSERT INTO {table} ", f"DELETE FROM {table} ")
        self.arrived = 0
        self.mutex = threading.Lock()

    def arrive(self):
        with self.mutex:
            self.arrived += 1
        wait_for_lock_waiters(self.url, 1, unless=lambda: self.arrived >= 2)

    def run_at_once(self, *calls):
        """Run each call in a thread, inside atomic(); return the errors."""
        import threading

        errors = []

        def run(call):
            conn = orm.connections["default"]
            conn.ensure_connection()
            conn._cursor = _ArrivingCursor(conn._cursor, self)
            try:
                with orm.atomic():
                    call()
            except Exception as exc:
                errors.append(exc)
            finally:
                orm.connections.close_all()

        threads = [threading.Thread(target=run, args=(call,)) for call in calls]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        return errors


class _ArrivingCursor:
    """A real cursor that arrives at the meeting after its first write there."""

    def __init__(self, cursor, meeting):
        self._cursor = cursor
        self._meeting = meeting
        self._arrived = False

    def execute(self, sql, params=()):
        result = self._cursor.execute(sql, params)
        if not self._arrived and sql.startswith(self._meeting.writes):
            self._arrived = True
            self._meeting.arrive()
        return result

    def __getattr__(self, name):
        return getattr(self._cursor, name)


def test_symmetrical_links_changed_from_both_ends_at_once(db):
    # a.friends.add(b) and b.friends.add(a) each write both link rows: they
    # lock both ends first (in key order), or each waits for the row the
    # other wrote (PostgreSQL: deadlock detected).
    if db.vendor == "sqlite":
        pytest.skip("row locks are PostgreSQL's; SQLite queues whole transactions")
    from .relation_models import Human

    a, b = Human.objects.create(name="a"), Human.objects.create(name="b")
    links = Human.friends.through.objects
    for method, expected in (("add", 2), ("remove", 0), ("set", 2), ("clear", 0)):

        def change(me, other, method=method):
            manager = Human.objects.get(pk=me.pk).friends
            if method == "clear":
                manager.clear()
            else:
                getattr(manager, method)([other] if method == "set" else other)

        meeting = Meeting(Human.friends.through._meta.db_table)
        errors = meeting.run_at_once(lambda: change(a, b), lambda: change(b, a))
        assert errors == []
        assert links.count() == expected


def test_deleting_both_ends_of_a_symmetrical_link_at_once(db):
    # Each delete takes the link rows of both directions: locked in key
    # order, or each waits for the row the other deleted first (deadlock).
    if db.vendor == "sqlite":
        pytest.skip("row locks are PostgreSQL's; SQLite queues whole transactions")
    from .relation_models import Human

    a, b = Human.objects.create(name="a"), Human.objects.create(name="b")
    a.friends.add(b)
    meeting = Meeting(Human.friends.through._meta.db_table)
    errors = meeting.run_at_once(
        lambda: Human.objects.get(pk=a.pk).delete(),
        lambda: Human.objects.get(pk=b.pk).delete(),
    )
    assert errors == []
    assert Human.objects.count() == 0
    assert Human.friends.through.objects.count() == 0


# select_for_update ------------------------------------------------------------


def test_select_for_update_needs_a_transaction(db):
    Author.objects.create(name="a")
    locked = Author.objects.select_for_update()
    for evaluate in (list, lambda qs: qs.first(), lambda qs: qs.exists()):
        with pytest.raises(orm.TransactionManagementError, match="outside a trans"):
            evaluate(locked)
    with orm.atomic():
        assert [a.name for a in locked] == ["a"]


def test_select_for_update_sql(db, sql_log):
    with orm.atomic():
        list(Author.objects.select_for_update().filter(name="a"))
        list(Book.objects.select_for_update(of=("self",)).filter(author__name="a"))
        Author.objects.select_for_update().count()
        list(Book.objects.select_for_update().select_related("author"))
        # Aggregates lock nothing, also over a sliced (wrapped) queryset.
        Author.objects.select_for_update()[:3].aggregate(n=orm.Count("id"))
    selects = [sql for sql, _ in sql_log if sql.lstrip().startswith("SELECT")]
    if db.vendor == "sqlite":
        assert not any("FOR UPDATE" in sql for sql in selects)
    else:
        assert selects[0].endswith("FOR UPDATE OF ormtests_author")
        # Only the model's own rows: a joined table may be the NULL side.
        assert selects[1].endswith("FOR UPDATE OF ormtests_book")
        assert "FOR UPDATE" not in selects[2]
        assert selects[3].endswith("FOR UPDATE OF ormtests_book")
        assert "FOR UPDATE" not in selects[4]


def test_delete_of_a_select_for_update_queryset_needs_no_transaction(db):
    # As in Django: delete() locks what it deletes by itself.
    author = Author.objects.create(name="a")
    Book.objects.create(title="t", author=author)
    Author.objects.create(name="kept")
    locked = Author.objects.select_for_update().select_related().filter(name="a")
    assert locked.delete() == (2, {"ormtests.Author": 1, "ormtests.Book": 1})
    assert list(Author.objects.values_list("name", flat=True)) == ["kept"]


def test_select_for_update_arguments_are_checked(db):
    with pytest.raises(ValueError, match="nowait or skip_locked, not both"):
        Author.objects.select_for_update(nowait=True, skip_locked=True)
    with pytest.raises(orm.FieldError, match="only 'self'"):
        Book.objects.select_for_update(of=("author",))


def test_select_for_update_waits_for_the_holder_and_reads_its_write(db):
    author = Author.objects.create(name="before")

    def rename():
        Author.objects.filter(pk=author.pk).update(name="after")

    holder = Holder(rename)

    def read_locked():
        with orm.atomic():
            return Author.objects.select_for_update().get(pk=author.pk).name

    assert holder.commit_after(read_locked) == "after"


def test_select_for_update_nowait_and_skip_locked(db):
    if db.vendor == "sqlite":
        pytest.skip("row locks are PostgreSQL's; SQLite queues whole transactions")
    import psycopg

    taken, free = Author.objects.create(name="t"), Author.objects.create(name="f")
    holder = Holder(
        lambda: list(Author.objects.select_for_update().filter(pk=taken.pk))
    )

    def try_both():
        with orm.atomic():
            skipped = Author.objects.select_for_update(skip_locked=True).order_by("pk")
            names = [a.name for a in skipped]
        with pytest.raises(psycopg.errors.LockNotAvailable):
            with orm.atomic():
                list(Author.objects.select_for_update(nowait=True).filter(pk=taken.pk))
        return names

    assert holder.commit_after_call(try_both) == [free.name]


def test_threads_querying_a_new_model_at_once_build_its_table_once():
    # A gthread worker's first requests: every thread asks for the table of a
    # model nobody has queried yet. Switching threads very often makes them meet.
    import sys
    import threading

    class Racer(orm.Model):
        name = orm.CharField(max_length=10)
        rank = orm.IntegerField(default=0)

        class Meta:
            app_label = "ormrace"

    errors = []
    rounds = []
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for _ in range(20):
            Racer._meta._table = None
            barrier = threading.Barrier(8)
            seen = []
            rounds.append(seen)

            def first_query(barrier=barrier, seen=seen):
                barrier.wait()
                try:
                    seen.append(Racer._meta.table)
                except Exception as exc:
                    errors.append(exc)

            threads = [threading.Thread(target=first_query) for _ in range(8)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
    finally:
        sys.setswitchinterval(interval)
        orm.registry.unregister(Racer)
    assert errors == []
    # Each round, the 8 threads got the one table built.
    assert all(len({id(table) for table in seen}) == 1 for seen in rounds)
