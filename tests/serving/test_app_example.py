from __future__ import annotations

import pytest

from framework import signals
from framework.apps import apps
from framework.cli import call_command
from framework.conf import settings
from framework.orm import connections
from framework.orm import transaction
from framework.testing import TestApp
from framework.testing import capture


@pytest.fixture
def bookmarks(tmp_path):
    import app_example.wsgi
    from app_example import metrics
    from app_example import settings as app_settings

    options = {
        name: value for name, value in vars(app_settings).items() if name.isupper()
    }
    options["DATABASES"] = {"default": f"sqlite:///{tmp_path / 'db.sqlite3'}"}
    settings.reset()
    settings.configure(**options)
    apps.reset()
    connections.reset()
    metrics.reset()
    call_command("migrate", app="app_example.wsgi:app", interactive=False, verbosity=0)
    yield TestApp(app_example.wsgi.app)
    connections.reset()
    metrics.reset()
    settings.reset()
    apps.reset()


def _create(client, title="Falcon docs", tags=("python", "web"), status=201):
    return client.post_json(
        "/api/bookmarks",
        {"url": "https://falcon.readthedocs.io/", "title": title, "tags": list(tags)},
        status=status,
    )


def _tag_counts(client):
    return {
        tag["name"]: tag["bookmarks"] for tag in client.get("/api/tags").json["tags"]
    }


def test_migrate_seeds_sample_data_once(bookmarks):
    first = bookmarks.get("/api/bookmarks").json["bookmarks"]
    assert [b["title"] for b in first] == [
        "Gunicorn documentation",
        "SQLite write-ahead logging",
        "PEP 3333: WSGI",
    ]
    call_command("migrate", app="app_example.wsgi:app", interactive=False, verbosity=0)
    assert len(bookmarks.get("/api/bookmarks").json["bookmarks"]) == 3
    assert _tag_counts(bookmarks) == {
        "databases": 1,
        "python": 2,
        "reading": 0,
        "web": 2,
    }


def test_pages_render_templates(bookmarks):
    with capture(signals.template_rendered) as calls:
        index = bookmarks.get("/")
        assert "PEP 3333: WSGI" in index.text
        assert bookmarks.get("/bookmarks/1").html.h1.text == "PEP 3333: WSGI"
        assert "python</a> (2)" in bookmarks.get("/tags").text
    names = [call.kwargs["template"].name for call in calls]
    assert names == ["index.html", "bookmark.html", "tags.html"]
    assert bookmarks.get("/bookmarks/999", status=404).status_int == 404


def test_create_audits_counts_tags_and_indexes_after_commit(bookmarks):
    from app_example.models import AuditEntry
    from app_example.models import Bookmark

    with capture(signals.post_save, signals.m2m_changed, sender=None) as calls:
        response = _create(bookmarks, tags=["Python", "falcon"])
    assert response.headers["Location"] == f"/api/bookmarks/{response.json['id']}"
    assert response.json["tags"] == ["falcon", "python"]
    saved = [c.kwargs["instance"] for c in calls.calls_of(signals.post_save)]
    assert [type(obj).__name__ for obj in saved if obj.__class__ is Bookmark] == [
        "Bookmark"
    ]
    calls.assert_sent(signals.m2m_changed, action="post_add")
    assert _tag_counts(bookmarks)["python"] == 3
    assert _tag_counts(bookmarks)["falcon"] == 1
    entry = AuditEntry.objects.order_by("-id").filter(model="bookmark").first()
    assert (entry.action, entry.object_id) == ("create", response.json["id"])
    found = bookmarks.get("/api/bookmarks", {"q": "FALCON"}).json["bookmarks"]
    assert [b["id"] for b in found] == [response.json["id"]]


def test_search_index_skips_rolled_back_writes(bookmarks):
    from app_example.models import Bookmark
    from app_example.models import Collection
    from app_example.models import SearchDocument

    before = SearchDocument.objects.count()
    with pytest.raises(RuntimeError, match="abort"):
        with transaction.atomic():
            Bookmark.objects.create(
                url="https://x.test/",
                title="never",
                collection=Collection.objects.get(name="inbox"),
            )
            assert SearchDocument.objects.count() == before
            raise RuntimeError("abort")
    assert SearchDocument.objects.count() == before
    assert not Bookmark.objects.filter(title="never").exists()


def test_delete_uncounts_tags_and_audits(bookmarks):
    created = _create(bookmarks).json
    bookmarks.delete(f"/api/bookmarks/{created['id']}", status=204)
    assert _tag_counts(bookmarks) == {
        "databases": 1,
        "python": 2,
        "reading": 0,
        "web": 2,
    }
    entries = bookmarks.get("/api/audit").json["entries"]
    assert (entries[0]["action"], entries[0]["object_id"]) == ("delete", created["id"])
    bookmarks.get(f"/api/bookmarks/{created['id']}", status=404)


def test_removing_a_tag_from_the_tag_side_updates_its_count(bookmarks):
    from app_example.models import Tag

    python = Tag.objects.get(name="python")
    python.bookmarks.clear()
    assert _tag_counts(bookmarks)["python"] == 0
    assert "python" not in bookmarks.get("/api/bookmarks/1").json["tags"]


@pytest.mark.parametrize(
    "payload, message",
    [
        ({"url": "ftp://x", "title": "t"}, "'url'"),
        ({"url": "https://x", "title": ""}, "'title'"),
        ({"url": "https://x", "title": "t", "tags": "python"}, "'tags'"),
        ([1, 2], "JSON object"),
    ],
)
def test_invalid_bookmarks_are_refused(bookmarks, payload, message):
    response = bookmarks.post_json("/api/bookmarks", payload, status=400)
    assert message in response.json["error"]


def test_export_is_streamed_csv_and_finishes_after_the_body(bookmarks):
    for index in range(5):
        _create(bookmarks, title=f"bookmark {index}")
    with capture(signals.request_finished) as calls:
        response = bookmarks.get("/export.csv")
    assert response.content_type == "text/csv"
    lines = response.text.splitlines()
    assert lines[0] == "id,url,title,collection,tags,created"
    assert len(lines) == 1 + 3 + 5
    calls.assert_sent_once_with(signals.request_finished, status=200)


def test_fail_reports_the_error_and_metrics_count_signals(bookmarks):
    with capture(signals.got_request_exception) as calls:
        bookmarks.get("/fail", status=500)
    assert len(calls) == 1
    bookmarks.get("/hello")
    text = bookmarks.get("/metrics").text
    metric = {
        line.split("{")[0] + line.split('signal="')[1].split('"')[0]: line.split()[-1]
        for line in text.splitlines()
        if line.startswith("app_example_signals_total")
    }
    # The /metrics request itself has started but not finished yet.
    assert metric["app_example_signals_totalgot_request_exception"] == "1"
    started = int(metric["app_example_signals_totalrequest_started"])
    finished = int(metric["app_example_signals_totalrequest_finished"])
    assert started == finished + 1
    assert "app_example_workers 1" in text


def test_healthz_hello_and_users(bookmarks):
    assert bookmarks.get("/healthz").json["status"] == "ok"
    assert bookmarks.get("/hello").text == "Hello, World!"
    assert bookmarks.get("/users/42").json == {"id": 42, "name": "user42"}
    bookmarks.get("/users/x", status=404)


def test_connection_created_sets_up_sqlite(bookmarks):
    with capture(signals.connection_created) as calls:
        connections.reset()
        bookmarks.get("/healthz")
    assert len(calls) == 1
    cursor = transaction.get_connection().execute("PRAGMA temp_store")
    assert cursor.fetchone()[0] == 2


def test_counters_in_a_directory_are_summed_over_processes(tmp_path):
    from app_example import metrics

    counters = metrics.WorkerCounters(str(tmp_path))
    for _ in range(3):
        counters.increment(0)
    counters.increment(1)
    counters.add_duration(0.25)
    (tmp_path / "worker-1.counters").write_bytes(bytes(metrics.SIZE))
    found = metrics.read_all(str(tmp_path))
    assert found[counters.pid]["request_started"] == 3
    assert found[counters.pid]["duration_seconds"] == 0.25
    assert found[1]["request_finished"] == 0


def test_adding_from_the_tag_side_counts_and_reindexes(bookmarks):
    from app_example.models import Bookmark
    from app_example.models import SearchDocument
    from app_example.models import Tag

    reading = Tag.objects.get(name="reading")
    reading.bookmarks.add(*Bookmark.objects.filter(pk__in=[1, 2]))
    assert _tag_counts(bookmarks)["reading"] == 2
    text = SearchDocument.objects.get(bookmark=Bookmark.objects.get(pk=2)).text
    assert "reading" in text


def test_structured_access_log(bookmarks, caplog):
    import json

    from framework.conf import override_settings

    with override_settings(ACCESS_LOG_JSON=True):
        with caplog.at_level("INFO", logger="app_example.access"):
            bookmarks.get("/users/7")
    (record,) = [r for r in caplog.records if r.name == "app_example.access"]
    line = json.loads(record.getMessage())
    assert line["path"] == "/users/7"
    assert line["status"] == 200
    assert line["method"] == "GET"
    assert line["duration_ms"] >= 0
