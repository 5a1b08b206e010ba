"""Jinja2 templates: per-app environments, ``render_template`` and ``render``.

Each :class:`~framework.App` gets its own environment on first use, searching
the app's ``template_folder`` and then ``TEMPLATE_DIRS``. The module-level
:func:`render_template` and :func:`render` use a shared environment that
searches ``TEMPLATE_DIRS`` and then the template folder of every app, in the
order the apps were created. Autoescaping is on for ``.html``, ``.htm`` and
``.xml`` templates. Environments are rebuilt when ``TEMPLATE_DIRS`` or
``TEMPLATES_AUTO_RELOAD`` change (``setting_changed``).

Every environment has the globals ``csrf_input()`` (a hidden form field with
the CSRF token) and ``csrf_token()``, which need ``request`` in the context
(``render(..., request=request)`` puts it there); an app's own environment
also has ``static_url(filename)`` (:meth:`framework.App.static_url`).

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
from .csrf import get_token
from .signals import setting_changed
from .signals import template_rendered

if t.TYPE_CHECKING:
    import jinja2
    import jinja2.runtime
    import markupsafe

    from .app import App
    from .wrappers import Request
    from .wrappers import Response

__all__ = [
    "csrf_input",
    "csrf_token",
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


def _context_request(context: jinja2.runtime.Context, helper: str) -> Request:
    request = context.get("request")
    if request is None:
        raise RuntimeError(
            f"{helper}() needs the request: render the template with"
            f" render(..., request=request) or pass request=request in its context."
        )
    return t.cast("Request", request)


def csrf_token(context: jinja2.runtime.Context) -> str:
    """Template helper: the CSRF token of the request being rendered."""
    return get_token(_context_request(context, "csrf_token"))


def csrf_input(context: jinja2.runtime.Context) -> markupsafe.Markup:
    """Template helper: a hidden form field holding the CSRF token."""
    import markupsafe

    token = get_token(_context_request(context, "csrf_input"))
    return markupsafe.Markup('<input type="hidden" name="{}" value="{}">').format(
        settings.CSRF_FIELD_NAME, token
    )


def _make_environment(
    search_path: list[str], app: App | None = None
) -> jinja2.Environment:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(search_path),
        autoescape=jinja2.select_autoescape(("html", "htm", "xml")),
        auto_reload=bool(settings.TEMPLATES_AUTO_RELOAD),
    )
    env.globals["csrf_token"] = jinja2.pass_context(csrf_token)
    env.globals["csrf_input"] = jinja2.pass_context(csrf_input)
    if app is not None:
        env.globals["static_url"] = app.static_url
    return env


def _template_dirs() -> list[str]:
    return [os.fspath(path) for path in settings.TEMPLATE_DIRS]


def environment_for(app: App) -> jinja2.Environment:
    """Return ``app``'s environment, building it on first use."""
    env = _app_envs.get(app)
    if env is None:
        with _lock:
            env = _app_envs.get(app)
            if env is None:
                env = _make_environment([app.template_folder, *_template_dirs()], app)
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
    request: Request | None = None,
) -> Response:
    """Render a template into an HTML :class:`~framework.Response`.

    :param app: render with this app's environment instead of the shared
        one; default: ``request.app`` when a request is given.
    :param request: the request being answered: the template sees it as
        ``request``, and ``csrf_input()`` / ``csrf_token()`` work.
    """
    from .wrappers import Response

    data = dict(context or {})
    if request is not None:
        data.setdefault("request", request)
        if app is None:
            app = request.app
    env = environment_for(app) if app is not None else get_environment()
    body = render_with(env, template_name, data)
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
