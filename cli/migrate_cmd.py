"""botctl migrate: status | up | down | plan | validate | baseline | repair."""

import typer

app = typer.Typer(help="Apply, roll back and inspect schema migrations.", no_args_is_help=True)
