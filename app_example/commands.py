"""app_example's own commands: ``framework createuser`` and ``framework createtoken``.

Found by the framework in this module of an installed app (see docs/cli.md).
"""

from __future__ import annotations

import sys

import click

from framework.cli import CommandError
from framework.cli import pass_context


@click.command()
@click.argument("username")
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from the first line of standard input (scripts).",
)
@pass_context
def createuser(obj, username, password_stdin):
    """Create a user who can sign in to the pages and change bookmarks."""
    obj.load_project(require_app=True)
    from .accounts import AccountError
    from .accounts import create_user

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt(
            f"Password for {username}", hide_input=True, confirmation_prompt=True
        )
    try:
        create_user(username, password)
    except AccountError as exc:
        raise CommandError(str(exc)) from None
    obj.echo(f"Created the user {username!r}.", err=True)


@click.command()
@click.argument("name")
@click.option(
    "--token",
    "value",
    default=None,
    metavar="VALUE",
    help="Register this value (at least 32 characters) instead of a random one.",
)
@click.option("--replace", is_flag=True, help="Replace a token of the same name.")
@pass_context
def createtoken(obj, name, value, replace):
    """Create an API token for the JSON API's writes and print it.

    Only its hash is stored: the token is shown this once. Clients send it
    as 'Authorization: Bearer <token>'.
    """
    obj.load_project(require_app=True)
    from .accounts import AccountError
    from .accounts import create_token

    try:
        token = create_token(name, value, replace=replace)
    except AccountError as exc:
        raise CommandError(str(exc)) from None
    obj.echo(token, level=0)
    obj.echo(
        f"Created the API token {name!r}; it is shown only this once.",
        err=True,
    )
