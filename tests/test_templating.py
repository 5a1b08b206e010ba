"""Templates: autoescaping, search paths, template_rendered, reloading on settings."""

from __future__ import annotations

import jinja2
import pytest

from framework import App
from framework import render
from framework import render_template
from framework import signals
from framework import templating
from framework.conf import override_settings
from framework.testing import capture
from framework.testing import setup_test_environment
from framework.testing import teardown_test_environment


@pytest.fixture
def app(tmp_path):
    folder = tmp_path / "app_templates"
    folder.mkdir()
    (folder / "page.html").write_text("<p>{{ text }}</p>")
    (folder / "page.txt").write_text("{{ text }}")
    return App(__name__, template_folder=str(folder))


def test_html_is_autoescaped_text_is_not(app):
    assert app.render_template("page.html", text="<b>") == "<p>&lt;b&gt;</p>"
    assert app.render_template("page.txt", text="<b>") == "<b>"


def test_template_dirs_setting_is_searched_and_reloaded(app, tmp_path):
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "extra.html").write_text("extra {{ n }}")
    with pytest.raises(jinja2.TemplateNotFound, match="extra.html"):
        app.render_template("extra.html", n=1)
    with override_settings(TEMPLATE_DIRS=[extra]):
        assert app.render_template("extra.html", n=1) == "extra 1"
        assert render_template("extra.html", n=2) == "extra 2"
    with pytest.raises(jinja2.TemplateNotFound, match="extra.html"):
        app.render_template("extra.html", n=1)


def test_auto_reload_follows_the_setting(app):
    assert app.jinja_env.auto_reload is False
    with override_settings(TEMPLATES_AUTO_RELOAD=True):
        assert app.jinja_env.auto_reload is True
    assert app.jinja_env.auto_reload is False


def test_environment_is_built_once_per_app(app):
    assert app.jinja_env is app.jinja_env
    assert App(__name__).jinja_env is not app.jinja_env


def test_shared_environment_finds_app_folders(app):
    assert render_template("page.html", text="&") == "<p>&amp;</p>"
    response = render("page.html", {"text": "hi"}, status=201, headers={"X-T": "1"})
    assert (response.status_code, response.mimetype) == (201, "text/html")
    assert response.get_data(as_text=True) == "<p>hi</p>"
    assert response.headers["X-T"] == "1"
    assert render("page.txt", {"text": "x"}, app=app).get_data() == b"x"


def test_template_rendered_is_sent_while_instrumented(app):
    # The pytest plugin turned instrumentation on for this session.
    with capture(signals.template_rendered) as calls:
        app.render_template("page.html", text="a")
    call = calls.assert_sent_once_with(signals.template_rendered)
    assert call.sender is call.kwargs["template"]
    assert call.kwargs["template"].name == "page.html"
    assert call.kwargs["context"] == {"text": "a"}


def test_template_rendered_is_not_sent_without_instrumentation(app):
    saved = templating._render
    templating.set_instrumentation(False)
    try:
        with capture(signals.template_rendered) as calls:
            app.render_template("page.html", text="a")
        assert len(calls) == 0
        assert templating._render is templating._plain_render
    finally:
        templating._render = saved


def test_setup_and_teardown_nest(app):
    saved = templating._render
    templating.set_instrumentation(False)
    try:
        setup_test_environment()
        setup_test_environment()
        teardown_test_environment()
        assert templating._render is templating._instrumented_render
        teardown_test_environment()
    finally:
        templating._render = saved
