"""Jinja2 templates: per-app environments, ``render_template`` and ``render``.

Each :class:`~framework.App` gets its own environment on first use, searching
the app's ``template_folder`` and then ``TEMPLATE_DIRS``. The module-level
:func:`render_template` and :func:`render` use a shared environment that
searches ``TEMPLATE_DIRS`` and then the template folder of every app, in the
order the apps were created. Autoescaping is on for ``.html``, ``.htm`` and
``.xml`` templates. Environments are rebuilt when ``TEMPLATE_DIRS`` or
``TEMPLATES_AUTO_RELOAD`` change (``setting_changed``).

``template_rendered`` is sent only while test instrumentation is on
(:func:`framework.testing.setup_test_environment`): the render function is
swapped, so rendering costs nothing extra otherwise. Jinja2 is imported on
first use, not with this module.
"""

from __future__ import annotations

import collections.abc as cabc
import os
import threading
import typing as t
import weakref

from .conf import settings
from .signals import setting_changed
from .signals import template_rendered

if t.TYPE_CHECKING:
    import jinja2

    from .app import App
    from .wrappers import Response

__all__ = [
    "environment_for",
    "get_environment",
    "render",
    "render_template",
    "render_with",
    "set_instrumentation",
]

_TEMPLATE_SETTINGS: t.Final = frozenset({"TEMPLATE_DIRS", "TEMPLATES_AUTO_RELOAD"})
_lock = threading.Lock()
_app_envs: weakref.WeakKeyDictionary[App, jinja2.Environment] = (
    weakref.WeakKeyDictionary()
)
_app_folders: list[weakref.ref[App]] = []
_shared: list[jinja2.Environment] = []


def _make_environment(search_path: list[str]) -> jinja2.Environment:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(search_path),
        autoescape=jinja2.select_autoescape(("html", "htm", "xml")),
        auto_reload=bool(settings.TEMPLATES_AUTO_RELOAD),
    )


def _template_dirs() -> list[str]:
    return [os.fspath(path) for path in settings.TEMPLATE_DIRS]


def environment_for(app: App) -> jinja2.Environment:
    """Return ``app``'s environment, building it on first use."""
    env = _app_envs.get(app)
    if env is None:
        with _lock:
            env = _app_envs.get(app)
            if env is None:
                env = _make_environment([app.template_folder, *_template_dirs()])
                _app_envs[app] = env
    return env


def register_app(app: App) -> None:
    """Add ``app``'s template folder to the shared environment's search path."""
    with _lock:
        _app_folders[:] = [ref for ref in _app_folders if ref() is not None]
        _app_folders.append(weakref.ref(app))
        _shared.clear()


def get_environment() -> jinja2.Environment:
    """Return the shared environment, building it on first use."""
    if _shared:
        return _shared[0]
    with _lock:
        if not _shared:
            apps = [ref() for ref in _app_folders]
            folders = [app.template_folder for app in apps if app is not None]
            _shared.append(_make_environment([*_template_dirs(), *folders]))
        return _shared[0]


def _plain_render(template: jinja2.Template, context: dict[str, t.Any]) -> str:
    return template.render(context)


def _instrumented_render(template: jinja2.Template, context: dict[str, t.Any]) -> str:
    template_rendered.send(template, template=template, context=context)
    return template.render(context)


_render = _plain_render


def set_instrumentation(enabled: bool) -> None:
    """Send ``template_rendered`` on every render (tests), or stop sending it."""
    global _render
    _render = _instrumented_render if enabled else _plain_render


def render_with(
    env: jinja2.Environment, template_name: str, context: dict[str, t.Any]
) -> str:
    """Render ``template_name`` from ``env`` with ``context``."""
    return _render(env.get_template(template_name), context)


def render_template(template_name: str, /, **context: t.Any) -> str:
    """Render a template from the shared environment.

    :raises jinja2.TemplateNotFound: no search path holds the template.
    """
    return render_with(get_environment(), template_name, context)


def render(
    template_name: str,
    context: cabc.Mapping[str, t.Any] | None = None,
    status: int = 200,
    headers: cabc.Mapping[str, str] | None = None,
    *,
    app: App | None = None,
) -> Response:
    """Render a template into an HTML :class:`~framework.Response`.

    :param app: render with this app's environment (``request.app``)
        instead of the shared one.
    """
    from .wrappers import Response

    env = environment_for(app) if app is not None else get_environment()
    body = render_with(env, template_name, dict(context or {}))
    return Response(body, status=status, headers=headers)


def _reset_environments(*, setting: str, **kwargs: t.Any) -> None:
    """Forget every environment when a template setting changes."""
    if setting in _TEMPLATE_SETTINGS:
        with _lock:
            _app_envs.clear()
            _shared.clear()


setting_changed.connect(
    _reset_environments, dispatch_uid="framework.templating.environments"
)
