"""``framework new NAME``: a new project that serves and passes its tests at once.

Like ``django-admin startproject``: it copies the project template shipped in
the package (``framework/project_template/``) into ``./NAME``. Every file of
the template ends in ``-tpl``, so that no tool takes it for code of the
framework; the copy drops the suffix, turns a leading ``dot-`` into ``.``,
renames the ``project_name`` directory to ``NAME``, and replaces
``{{ project_name }}``, ``{{ secret_key }}`` and ``{{ docs_url }}`` in the
text.

The project it creates::

    NAME/
        README.md          the two commands: serve it, test it
        pyproject.toml     dependencies; the pytest plugin's configuration
        Dockerfile         the production image (framework serve)
        wheels/            framework's wheel, for the image (README.md there)
        wsgi.py            the entry point: settings, framework.setup(), app
        NAME/              the app package, the only installed app
            settings.py    INSTALLED_APPS, DATABASES (SQLite), LOGGING, ...
            models.py      one model (Note)
            views.py       the App and its views (a page, a JSON API)
            receivers.py   receivers, imported by framework.setup()
            migrations/    0001_initial.py
            templates/     index.html
        tests/             pytest, with the db and client fixtures
"""

from __future__ import annotations

import importlib.util
import keyword
import os
import pathlib
import secrets
import sys

import click

from . import DOCS_URL
from . import CommandContext
from . import pass_context
from . import verbosity_option

__all__ = ["TEMPLATE_DIR", "check_name", "create_project", "new"]

TEMPLATE_DIR = pathlib.Path(__file__).resolve().parent.parent / "project_template"
"""The project template shipped in the package."""

_SUFFIX = "-tpl"
_PACKAGE_PLACEHOLDER = "project_name"
_TAKEN = frozenset({"tests", "wheels", "wsgi"})
"""Names of the project's own top-level files and directories, beside the package."""


def check_name(name: str) -> None:
    """Refuse a project name that cannot be the name of its package.

    :raises click.BadParameter: not an identifier, a keyword, the name of one
        of the project's own top-level files (``wsgi``, ``tests``, ``wheels``),
        or the name of a module Python already finds (``json``, ``framework``).
    """
    if not name.isidentifier() or keyword.iskeyword(name):
        raise click.BadParameter(
            f"{name!r} is not a valid project name: it becomes the name of the"
            " project's Python package, so it must be an identifier (letters,"
            " digits and underscores, not starting with a digit), such as"
            " 'mysite'.",
            param_hint="NAME",
        )
    if name in _TAKEN:
        raise click.BadParameter(
            f"{name!r} is taken: the project's package sits beside its own"
            " wsgi.py, tests/ and wheels/, and would clash with them. Choose"
            " another name.",
            param_hint="NAME",
        )
    if name in sys.stdlib_module_names or _importable(name):
        raise click.BadParameter(
            f"{name!r} is the name of a module Python already finds; the"
            " project's package would hide it (or be hidden). Choose another"
            " name.",
            param_hint="NAME",
        )


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def create_project(name: str, directory: pathlib.Path) -> list[pathlib.Path]:
    """Write the project ``name`` into ``directory``, which must not exist.

    :returns: the files written, in order.
    :raises FileExistsError: ``directory`` exists.
    """
    directory.mkdir(parents=True, exist_ok=False)
    values = {
        "{{ project_name }}": name,
        "{{ secret_key }}": secrets.token_urlsafe(32),
        "{{ docs_url }}": DOCS_URL,
    }
    written = []
    for source in sorted(TEMPLATE_DIR.rglob(f"*{_SUFFIX}")):
        parts = list(source.relative_to(TEMPLATE_DIR).parts)
        parts = [name if part == _PACKAGE_PLACEHOLDER else part for part in parts]
        filename = parts[-1][: -len(_SUFFIX)]
        if filename.startswith("dot-"):
            filename = "." + filename[len("dot-") :]
        target = directory.joinpath(*parts[:-1], filename)
        target.parent.mkdir(parents=True, exist_ok=True)
        text = source.read_text(encoding="utf-8")
        for placeholder, value in values.items():
            text = text.replace(placeholder, value)
        target.write_text(text, encoding="utf-8")
        written.append(target)
    return written


@click.command()
@click.argument("name")
@verbosity_option
@pass_context
def new(obj: CommandContext, name: str) -> pathlib.Path:
    """Create the project NAME in ./NAME: an app, settings, tests, a Dockerfile.

    NAME becomes the name of the project's Python package. Returns the
    project's directory.
    """
    directory = pathlib.Path(os.getcwd()) / name
    if directory.exists() or directory.is_symlink():
        raise click.UsageError(
            f"{directory} already exists; framework new never overwrites anything."
            " Choose another name, or remove it first."
        )
    check_name(name)
    files = create_project(name, directory)
    obj.echo(f"Created the project {name} in {directory} ({len(files)} files).")
    obj.echo(
        f"Next:\n  cd {name}\n  pip install -e '.[test]'   # if not installed yet\n"
        "  framework serve            # http://127.0.0.1:8000/\n"
        "  python -m pytest           # its tests"
    )
    return directory
