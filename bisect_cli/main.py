"""Entry point: a click group whose commands are imported only when used.

`config-bisect ORIG START` (no command name) means `config-bisect diff ORIG START`.
"""

from __future__ import annotations

import importlib
import sys

import click

from common.errors import UserError

# command name -> "module:attribute"; modules are imported lazily so that `--help` and the
# diff stay fast and do not import TensorFlow, scipy or Sisyphus.
LAZY_COMMANDS: dict[str, str] = {
    "diff": "bisect_cli.diff_cmd:diff",
    "hybrids": "bisect_cli.hybrids_cmd:hybrids",
    "run": "bisect_cli.run_cmd:run",
    "submit": "bisect_cli.submit_cmd:submit",
    "env": "bisect_cli.env_cmd:env",
    "curves": "bisect_cli.curves_cmd:curves",
    "simulate": "bisect_cli.simulate_cmd:simulate",
    "plan": "bisect_cli.plan_cmd:plan",
    "status": "bisect_cli.status_cmd:status",
    "report": "bisect_cli.report_cmd:report",
}
DEFAULT_COMMAND = "diff"


class BisectGroup(click.Group):
    """Lazy subcommands, a default command, and one-line errors for `UserError`."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(LAZY_COMMANDS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in LAZY_COMMANDS:
            module_name, attr = LAZY_COMMANDS[cmd_name].split(":")
            return getattr(importlib.import_module(module_name), attr)
        return super().get_command(ctx, cmd_name)

    def resolve_command(self, ctx: click.Context, args: list[str]):
        if args and args[0] not in self.list_commands(ctx) and not args[0].startswith("-"):
            args = [DEFAULT_COMMAND, *args]
        return super().resolve_command(ctx, args)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except UserError as exc:
            if (ctx.obj or {}).get("debug"):
                raise
            click.echo(f"config-bisect: error: {exc}", err=True)
            sys.exit(2)
        except (click.exceptions.Exit, click.ClickException, click.Abort, KeyboardInterrupt):
            raise
        except Exception as exc:
            if (ctx.obj or {}).get("debug"):
                raise
            click.echo(f"config-bisect: internal error: {type(exc).__name__}: {exc} (run with --debug)",
                       err=True)
            sys.exit(1)


@click.group(cls=BisectGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Find which differences between two RETURNN configs explain a WER gap.

    `config-bisect ORIG START` lists the knob diffs (same as `config-bisect diff ORIG START`).
    """
    ctx.obj = {"debug": debug}
