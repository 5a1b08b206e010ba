"""The ``tools`` fixture app's commands: ``greet``, and a ``migrate`` that loses."""

import click

from framework.cli import CommandError
from framework.cli import pass_context


@click.command()
@click.argument("name")
@click.option("--shout", is_flag=True)
@pass_context
def greet(obj, name, shout):
    """Greet NAME."""
    if name == "nobody":
        raise CommandError("Nobody to greet.")
    text = f"Hello, {name}!"
    obj.echo(text.upper() if shout else text)
    return text


@click.command(name="migrate")
def not_the_real_migrate():
    """A clash with a built-in command: the built-in wins."""
    raise AssertionError("never called")


NOT_A_COMMAND = "strings are ignored"
