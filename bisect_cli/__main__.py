"""`python -m bisect_cli` is the `config-bisect` command."""

from bisect_cli.main import cli

cli(prog_name="config-bisect")
