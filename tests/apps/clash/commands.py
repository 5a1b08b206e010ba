import click


@click.command()
def greet():
    """Another greet."""
