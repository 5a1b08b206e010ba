"""``makemigrations``: compare the models with the history, write what differs.

:func:`state_from_models` describes the tables the models want;
:func:`detect_changes` lists the operations that turn the history's state
into it; :func:`write_migration` renders them as the app's next migration
module. Renamed columns look like a removal plus an addition: write a
``RenameColumn`` by hand to keep the data.
"""

from __future__ import annotations

import collections.abc as cabc
import datetime
import decimal
import importlib.util
import pathlib
import re
import sys
import textwrap
import typing as t

from .loader import MIGRATION_NAME
from .loader import MigrationError
from .operations import AddColumn
from .operations import AddIndex
from .operations import AlterColumn
from .operations import CreateTable
from .operations import DropTable
from .operations import Operation
from .operations import RemoveColumn
from .operations import RemoveIndex
from .state import NOT_PROVIDED
from .state import Column
from .state import Index
from .state import ProjectState
from .state import TableState
from .state import render_type
from .state import state_from_tables
from .state import type_names

__all__ = [
    "detect_changes",
    "render_migration",
    "state_from_models",
    "suggest_name",
    "write_migration",
]

_LITERALS = (bool, int, float, str, decimal.Decimal)


def state_from_models(models: cabc.Iterable[t.Any]) -> ProjectState:
    """Describe the tables of ``models``, with literal defaults kept.

    A field's default becomes the column's ``default`` (used to fill
    existing rows when the column is added) when it is a literal value.
    """
    models = list(models)
    state = state_from_tables(model._meta.table for model in models)
    for model in models:
        table = state.tables[model._meta.db_table]
        for field in model._meta.fields:
            default = getattr(field, "default", NOT_PROVIDED)
            if isinstance(default, _LITERALS) and field.column in table.columns:
                column = table.columns[field.column]
                table.columns[field.column] = column.with_changes(default=default)
    return state


def _table_order(names: list[str], state: ProjectState) -> list[str]:
    wanted = set(names)
    order: list[str] = []

    def visit(name: str, seen: tuple[str, ...]) -> None:
        if name in order or name in seen:
            return
        for column in state.tables[name].columns.values():
            target = (column.foreign_key or "").rpartition(".")[0]
            if target in wanted and target != name:
                visit(target, (*seen, name))
        order.append(name)

    for name in names:
        visit(name, ())
    return order


def _table_changes(name: str, old: TableState, table: TableState) -> list[Operation]:
    operations: list[Operation] = []
    for index_name, index in old.indexes.items():
        if table.indexes.get(index_name) != index:
            operations.append(RemoveIndex(name, index_name))
    for col_name, column in table.columns.items():
        previous = old.columns.get(col_name)
        if previous is None:
            if not (column.nullable or column.primary_key) and (
                column.default is NOT_PROVIDED
            ):
                raise MigrationError(
                    f"Cannot add the NOT NULL column {name}.{col_name} without a"
                    " default for the existing rows: give the field a literal"
                    " default or null=True, or write the migration by hand."
                )
            operations.append(AddColumn(name, column))
        elif previous != column:
            # Keep the default only to fill NULLs when NOT NULL is added.
            if not (previous.nullable and not column.nullable):
                column = column.with_changes(default=NOT_PROVIDED)
            operations.append(AlterColumn(name, col_name, column))
    for col_name in old.columns:
        if col_name not in table.columns:
            operations.append(RemoveColumn(name, col_name))
    for index_name, index in table.indexes.items():
        if old.indexes.get(index_name) != index:
            operations.append(AddIndex(name, index))
    return operations


def detect_changes(history: ProjectState, models: ProjectState) -> list[Operation]:
    """Return the operations that turn ``history`` into ``models``.

    :raises MigrationError: a NOT NULL column without a literal default would
        be added to an existing table.
    """
    operations: list[Operation] = []
    new_tables = [name for name in models.tables if name not in history.tables]
    for name in _table_order(new_tables, models):
        table = models.tables[name]
        operations.append(
            CreateTable(
                name,
                [
                    col.with_changes(default=NOT_PROVIDED)
                    for col in table.columns.values()
                ],
                list(table.indexes.values()),
            )
        )
    for name, table in models.tables.items():
        old = history.tables.get(name)
        if old is not None:
            operations += _table_changes(name, old, table)
    dropped = [name for name in history.tables if name not in models.tables]
    for name in reversed(_table_order(dropped, history)):
        operations.append(DropTable(name))
    return operations


def suggest_name(operations: cabc.Sequence[Operation], first: bool) -> str:
    """Return a module name suffix describing ``operations``."""
    if first:
        return "initial"
    if len(operations) == 1:
        words = re.sub(r"[^0-9a-zA-Z]+", "_", operations[0].describe()).lower()
        words = words.replace("_to_", "_").replace("_from_", "_")
        return words.strip("_")[:50]
    now = datetime.datetime.now(datetime.UTC)
    return f"auto_{now:%Y%m%d_%H%M}"


def _str(value: str) -> str:
    if '"' not in value and "\\" not in value and value.isprintable():
        return f'"{value}"'
    return repr(value)


WIDTH = 88
"""The longest line the writer produces (ruff's and black's default)."""


def _fits(text: str, used: int) -> bool:
    # ``used``: columns already taken on the line; one more for the comma.
    return "\n" not in text and used + len(text) + 1 <= WIDTH


def _str_lines(value: str, indent: int, used: int) -> str:
    """Render a string literal, split into implicit concatenation if too long."""
    literal = _str(value)
    if _fits(literal, indent + used):
        return literal
    room = max(WIDTH - indent - 4, 20)
    chunks: list[str] = []
    rest = value
    while rest:
        size = len(rest)
        while size > 1 and len(_str(rest[:size])) > room:
            size -= 1
        chunks.append(_str(rest[:size]))
        rest = rest[size:]
    pad = " " * indent
    inner = "".join(f"{pad}    {chunk}\n" for chunk in chunks)
    return f"(\n{inner}{pad})"


def _call(func: str, parts: list[str], indent: int, used: int) -> str:
    """Render a call on one line if it fits, else one argument per line."""
    line = f"{func}({', '.join(parts)})"
    if _fits(line, indent + used):
        return line
    pad = " " * indent
    inner = "".join(f"{pad}    {part},\n" for part in parts)
    return f"{func}(\n{inner}{pad})"


def _docstring(description: str) -> str:
    """Return the module docstring, wrapped to :data:`WIDTH` columns."""
    summary = "Generated by framework makemigrations."
    text = description.replace("\\", "\\\\").replace('"""', '\\"""')
    if not text:
        return f'"""{summary}"""'
    if len(text) + 6 <= WIDTH:
        return f'"""{text}"""'
    body = textwrap.fill(
        text, width=WIDTH, break_long_words=True, break_on_hyphens=False
    )
    return f'"""{summary}\n\n{body}\n"""'


_STDLIB = frozenset(sys.stdlib_module_names)


def _section(module: str) -> int:
    """Return the isort section of ``module``: stdlib, third party, first party."""
    top = module.partition(".")[0]
    if top in _STDLIB:
        return 0
    if top == "framework":
        return 2
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        spec = None
    origin = (spec.origin or "") if spec is not None else ""
    installed = any(part in origin for part in ("site-packages", "dist-packages"))
    return 1 if installed else 2


def _name_key(name: str) -> tuple[int, str, str]:
    # isort's order-by-type: CONSTANTS, then Classes, then variables.
    kind = 0 if name.isupper() and len(name) > 1 else 1 if name[:1].isupper() else 2
    return (kind, name.lower(), name)


class _Renderer:
    def __init__(self) -> None:
        self.imports: dict[str, set[str]] = {}

    def value(self, value: t.Any, indent: int, used: int = 0) -> str:
        """Render ``value`` for a line indented by ``indent`` (``used`` taken)."""
        pad = " " * indent
        if isinstance(value, Column):
            return self.column(value, indent, used)
        if isinstance(value, Index):
            names = [self.value(col, indent + 8) for col in value.columns]
            if len(names) == 1 and _fits(f"({names[0]},)", indent + 4):
                columns = f"({names[0]},)"
            else:
                columns = _call("", names, indent + 4, 0)
            parts = [self.value(value.name, indent + 4), columns]
            if value.unique:
                parts.append("unique=True")
            return _call("migrations.Index", parts, indent, used)
        if isinstance(value, list):
            if not value:
                return "[]"
            inner = "".join(
                f"{pad}    {self.value(item, indent + 4)},\n" for item in value
            )
            return f"[\n{inner}{pad}]"
        if isinstance(value, decimal.Decimal):
            self.imports.setdefault("decimal", set())
            return f'decimal.Decimal("{value}")'
        if callable(value):
            module = getattr(value, "__module__", None)
            name = getattr(value, "__qualname__", None)
            if not module or not name or "<" in name:
                raise MigrationError(
                    f"Cannot write {value!r} into a migration: use a module-level"
                    " function."
                )
            self.imports.setdefault(module, set())
            return f"{module}.{name}"
        if isinstance(value, str):
            return _str_lines(value, indent, used)
        return repr(value)

    def keyword(self, key: str, value: t.Any, indent: int) -> str:
        """Render ``key=value`` as an argument on a line indented by ``indent``."""
        return f"{key}={self.value(value, indent, len(key) + 1)}"

    def column(self, column: Column, indent: int, used: int) -> str:
        """Render a :class:`Column` call."""
        for name, module in type_names(column.type).items():
            self.imports.setdefault(module, set()).add(name)
        inner = indent + 4
        parts = [self.value(column.name, inner), render_type(column.type)]
        if not column.nullable and not column.primary_key:
            parts.append("nullable=False")
        for flag in ("primary_key", "unique", "autoincrement"):
            if getattr(column, flag):
                parts.append(f"{flag}=True")
        if column.foreign_key:
            parts.append(self.keyword("foreign_key", column.foreign_key, inner))
        if column.on_delete:
            parts.append(self.keyword("on_delete", column.on_delete, inner))
        if column.default is not NOT_PROVIDED:
            parts.append(self.keyword("default", column.default, inner))
        return _call("migrations.Column", parts, indent, used)

    def operation(self, operation: Operation) -> str:
        """Render one operation as an item of the ``operations`` list."""
        args, kwargs = operation.deconstruct()
        parts = [self.value(arg, 12) for arg in args]
        parts += [self.keyword(key, value, 12) for key, value in kwargs.items()]
        inner = "".join(f"            {part},\n" for part in parts)
        return f"        migrations.{type(operation).__name__}(\n{inner}        ),\n"

    def import_lines(self) -> list[str]:
        """Return the import block, in sections as isort sorts them."""
        self.imports.setdefault("framework.orm", set()).add("migrations")
        sections: dict[int, list[str]] = {}
        for module in sorted(self.imports, key=lambda m: (m.lower(), m)):
            if not self.imports[module]:
                sections.setdefault(_section(module), []).append(f"import {module}")
        for module in sorted(self.imports, key=lambda m: (m.lower(), m)):
            for name in sorted(self.imports[module], key=_name_key):
                sections.setdefault(_section(module), []).append(
                    f"from {module} import {name}"
                )
        lines: list[str] = []
        for number in sorted(sections):
            lines += [*sections[number], ""]
        return lines


def render_migration(
    operations: cabc.Sequence[Operation],
    dependencies: cabc.Sequence[tuple[str, str]],
    description: str = "",
) -> str:
    """Return the Python source of a migration module.

    The module passes ``ruff check`` with the project's settings: lines of at
    most :data:`WIDTH` columns, imports sorted one per line, docstrings.
    """
    renderer = _Renderer()
    body = "".join(renderer.operation(operation) for operation in operations)
    lines = [_docstring(description), "", "from __future__ import annotations", ""]
    lines += renderer.import_lines()
    lines += ["", "class Migration(migrations.Migration):"]
    lines.append('    """The operations of this migration and what must run before."""')
    lines.append("")
    pairs = [
        [_str_lines(app, 12, 0), _str_lines(name, 12, 0)] for app, name in dependencies
    ]
    deps = "".join(f"        {_call('', pair, 8, 0)},\n" for pair in pairs)
    lines.append(
        f"    dependencies = [\n{deps}    ]" if deps else "    dependencies = []"
    )
    lines.append("")
    lines.append(f"    operations = [\n{body}    ]" if body else "    operations = []")
    return "\n".join(lines) + "\n"


def write_migration(
    directory: pathlib.Path,
    operations: cabc.Sequence[Operation],
    dependencies: cabc.Sequence[tuple[str, str]],
    name: str | None = None,
) -> pathlib.Path:
    """Write the next numbered migration module into ``directory``.

    Creates the package (``__init__.py``, with a docstring) if needed.

    :returns: the path of the new file.
    """
    directory.mkdir(parents=True, exist_ok=True)
    init = directory / "__init__.py"
    if not init.exists():
        init.write_text(f'"""Migrations of the {directory.parent.name} app."""\n')
    numbers = [
        int(match.group(1))
        for path in directory.glob("*.py")
        if (match := MIGRATION_NAME.match(path.stem))
    ]
    number = max(numbers, default=0) + 1
    suffix = name or suggest_name(operations, first=number == 1)
    path = directory / f"{number:04d}_{suffix}.py"
    description = "; ".join(op.describe() for op in operations)
    path.write_text(
        render_migration(
            operations, dependencies, f"{description}." if description else ""
        )
    )
    return path
