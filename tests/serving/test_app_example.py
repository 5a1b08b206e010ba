from __future__ import annotations

import pathlib
import time

import pytest
from bookmarks_server import app_example_in_process
from support import prometheus_samples

from framework import signals
from framework.cli import call_command
from framework.orm import connections
from framework.orm import transaction
from framework.testing import TestApp
from framework.testing import capture

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent


@pytest.fixture
def bookmarks(tmp_path):
    key = "app-example-tests-0123456789-0123456789"
    with app_example_in_process(tmp_path, SECRET_KEY=key, FAIL_VIEW=True) as app:
        from app_example.accounts import create_token

        # An API client: the API's writes, /metrics and /api/audit need a token.
        token = create_token("tests")
        yield TestApp(app, extra_environ={"HTTP_AUTHORIZATION": f"Bearer {token}"})


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
        assert (
            'python</a> <span class="count">2 bookmarks' in bookmarks.get("/tags").text
        )
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
    assert lines[0] == "id,url,title,notes,collection,tags,created"
    assert len(lines) == 1 + 3 + 5
    calls.assert_sent_once_with(signals.request_finished, status=200)


def test_fail_reports_the_error_and_metrics_count_signals(bookmarks):
    with capture(signals.got_request_exception) as calls:
        bookmarks.get("/fail", status=500)
    assert len(calls) == 1
    bookmarks.get("/healthz")
    values = prometheus_samples(bookmarks.get("/metrics").text)
    # The /metrics request itself has started but not finished yet.
    assert values['framework_signals_total{signal="got_request_exception"}'] == 1
    started = values['framework_signals_total{signal="request_started"}']
    finished = values['framework_signals_total{signal="request_finished"}']
    assert started == finished + 1
    assert values["framework_workers"] == 1


def test_healthz_and_no_benchmark_endpoints(bookmarks):
    assert bookmarks.get("/healthz").json["status"] == "ok"
    # /hello and /users/<id> are bench/e2e.py's, not the bookmarks service's.
    bookmarks.get("/hello", status=404)
    bookmarks.get("/users/42", status=404)


def test_connection_created_sets_up_sqlite(bookmarks):
    with capture(signals.connection_created) as calls:
        connections.reset()
        bookmarks.get("/healthz")
    assert len(calls) == 1
    cursor = transaction.get_connection().execute("PRAGMA temp_store")
    assert cursor.fetchone()[0] == 2


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
            bookmarks.get("/bookmarks/1")
    (record,) = [r for r in caplog.records if r.name == "app_example.access"]
    line = json.loads(record.getMessage())
    assert line["path"] == "/bookmarks/1"
    assert line["status"] == 200
    assert line["method"] == "GET"
    assert line["duration_ms"] >= 0
    assert 0 <= time.time() - line["started_at"] < 60


def test_the_request_receivers_add_nothing_to_the_environ(bookmarks):
    response = bookmarks.get("/healthz")
    assert response.request.environ.get("PATH_INFO") == "/healthz"
    assert not [key for key in response.request.environ if "app_example" in key]
    assert "werkzeug.request" not in response.request.environ


def test_patch_audits_the_changed_fields_and_recounts_tags(bookmarks):
    from app_example.models import Bookmark

    created = _create(bookmarks, title="Falcon", tags=["python", "web"]).json
    with capture(signals.post_init, signals.post_save, sender=Bookmark) as calls:
        changed = bookmarks.patch_json(
            f"/api/bookmarks/{created['id']}",
            {"title": "Falcon framework", "notes": "fast", "tags": ["python", "api"]},
        ).json
    # post_init remembered the values as loaded, post_save diffed them.
    assert calls.names[:2] == ["post_init", "post_save"]
    calls.assert_sent_once_with(signals.post_save, created=False)
    assert (changed["title"], changed["notes"]) == ("Falcon framework", "fast")
    assert changed["tags"] == ["api", "python"]
    entries = [
        (e["action"], e["model"], e["summary"])
        for e in bookmarks.get("/api/audit").json["entries"][:2]
    ]
    # The new tag was created (and audited) after the bookmark's update.
    assert entries == [
        ("create", "tag", "api"),
        ("update", "bookmark", "title, notes changed: Falcon framework"),
    ]
    counts = _tag_counts(bookmarks)
    assert (counts["python"], counts["web"], counts["api"]) == (3, 2, 1)
    # Re-indexed after the commit: new notes and new tag are searchable.
    for words in ("fast", "api"):
        found = bookmarks.get("/api/bookmarks", {"q": words}).json["bookmarks"]
        assert [b["id"] for b in found] == [created["id"]]


@pytest.mark.parametrize(
    "payload, message",
    [
        ({"id": 5}, "'id'"),
        ({"url": "mailto:x"}, "'url'"),
        ({"title": " "}, "'title'"),
    ],
)
def test_invalid_patches_are_refused(bookmarks, payload, message):
    response = bookmarks.patch_json("/api/bookmarks/1", payload, status=400)
    assert message in response.json["error"]
    assert bookmarks.get("/api/bookmarks/1").json["title"] == "PEP 3333: WSGI"


def test_class_prepared_chose_the_audited_models(bookmarks):
    from app_example import models

    assert models.AUDITED == [models.Collection, models.Tag, models.Bookmark]
    for model in models.AUDITED:
        assert signals.post_save.has_listeners(model)
    assert not signals.post_save.has_listeners(models.AuditEntry)
    bookmarks.post_json(
        "/api/bookmarks",
        {"url": "https://x.test/", "title": "x", "collection": "later"},
        status=201,
    )
    actions = [
        (e["action"], e["model"], e["summary"])
        for e in bookmarks.get("/api/audit").json["entries"][:2]
    ]
    assert actions == [("create", "bookmark", "x"), ("create", "collection", "later")]


def test_metrics_is_prometheus_text_with_every_counted_signal(bookmarks):
    bookmarks.get("/")
    bookmarks.get("/fail", status=500)
    response = bookmarks.get("/metrics")
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    values = prometheus_samples(response.text)
    pid = bookmarks.get("/healthz").json["pid"]

    def count(signal):
        return values[
            f'framework_worker_signals_total{{signal="{signal}",worker="{pid}"}}'
        ]

    # Counted before /metrics answered: /, /fail and /metrics itself started;
    # / and the 500 page of /fail rendered a template.
    assert count("request_started") == 3
    assert count("request_finished") == 2
    assert count("got_request_exception") == 1
    # app_example counts two more signals (framework.metrics.count).
    assert count("template_rendered") == 2
    assert count("connection_created") >= 1
    count_key = f'framework_worker_request_duration_seconds_count{{worker="{pid}"}}'
    assert values[count_key] == 2
    assert values["framework_request_duration_seconds_count"] == 2
    assert values["framework_workers"] == 1
    assert values["framework_metrics_shared"] == 0
