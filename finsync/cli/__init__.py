"""The ``finsync`` command line: one module per command group, each command thin.

A command parses its options, calls the engine, the service or the report builder, and prints
tables or a progress bar, never raw log lines; user mistakes (bad config, bad arguments,
unreachable database) are one clear line with a non-zero exit.

``common`` holds what commands share (consoles, exit codes, one-line failures, the checked
databases, progress displays); ``setup`` has ``init`` and ``billing seed``; ``sync`` has
``status``, ``sync`` and ``resync`` (``tables`` the tables they print); ``report``,
``sandbox``, ``demo``, ``console`` (``token`` and ``console``) and ``service`` (``serve`` and
``worker``) the rest. This package is the top
layer: it may import every other package of finsync, and nothing imports it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from core.errors import first_line
from finsync import __version__
from finsync.cli import console, demo, report, sandbox, service, setup, sync
from finsync.cli.common import (
    DEFAULT_CONFIG,
    EXIT_OK,
    EXIT_RUN_FAILED,
    EXIT_USAGE,
    fail,
)


class FinsyncCli(click.Group):
    """The command group, with every failure a user can cause printed as one line.

    Click's usage errors, finsync's own errors and anything unexpected (with FINSYNC_DEBUG=1,
    the traceback) all end the same way: ``error: ...`` on stderr and a documented exit code.
    """

    def main(
        self,
        args: Any = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        """Run the command line; exit with its code."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        try:
            code = super().main(args, "finsync", complete_var, False, **extra)
        except click.UsageError as exc:
            hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx is not None else ""
            fail(f"{exc.format_message()}{hint}", EXIT_USAGE)
        except click.ClickException as exc:
            fail(exc.format_message(), exc.exit_code)
        except click.Abort:
            fail("aborted", 1)
        except Exception as exc:
            if os.environ.get("FINSYNC_DEBUG"):
                raise
            fail(
                f"unexpected error ({type(exc).__name__}: {first_line(exc)}); this is a "
                "finsync bug: please report it with the output of the same command run with "
                "FINSYNC_DEBUG=1",
                EXIT_RUN_FAILED,
            )
        sys.exit(code if isinstance(code, int) else EXIT_OK)


@click.group(cls=FinsyncCli, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="finsync")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=lambda: os.environ.get("FINSYNC_CONFIG", DEFAULT_CONFIG),
    show_default="$FINSYNC_CONFIG or ./finsync.toml",
    help="The configuration file.",
)
@click.pass_context
def cli(ctx: click.Context, config_path: Path) -> None:
    """finsync: billing database to ERP and tax engine, with a ledger and a monthly workbook."""
    ctx.ensure_object(dict)
    ctx.obj["config_path"] = config_path


def main() -> None:
    """Console-script entry point."""
    cli(obj={})


for command in (
    setup.init,
    setup.billing,
    sync.status,
    sync.sync,
    sync.resync,
    report.report,
    sandbox.sandbox,
    demo.demo,
    service.serve,
    service.worker,
    console.token,
    console.console,
):
    cli.add_command(command)
