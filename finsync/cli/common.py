"""What every command shares: the consoles, exit codes, one-line failures, the checked
databases, the command to print again and the progress displays."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import click
import sqlalchemy as sa
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from core.errors import ConfigError, FinsyncError, first_line
from finsync.config import Config, load_config
from finsync.db import make_engine
from finsync.terminal import console_width

#: Markup is off: text from billing, config or messages is printed as it is, never as markup.
#: Styling goes through ``style=`` and ``Text`` instead.
console = Console(markup=False, width=console_width())
err_console = Console(stderr=True, markup=False, width=console_width(sys.stderr))
DEFAULT_CONFIG = "finsync.toml"


#: Exit codes (the README lists them; ``finsync sync --help`` too).
EXIT_OK = 0
EXIT_RECORDS_NEED_ATTENTION = 1
EXIT_USAGE = 2
EXIT_RUN_FAILED = 3


def fail(message: str, code: int = 1) -> NoReturn:
    """Print one error line and exit."""
    err_console.print(Text.assemble(("error:", "bold red"), " ", message), soft_wrap=True)
    sys.exit(code)


def config_of(ctx: click.Context) -> Config:
    """The configuration named by ``--config`` (or ``$FINSYNC_CONFIG``), loaded."""
    path = ctx.obj["config_path"]
    return load_config(path)


def open_state(config: Config) -> sa.Engine:
    """The state store, checked: it answers and ``finsync init`` has created it."""
    from sync.engine import check_state

    return _checked(make_engine(config.state_url, key="state.url"), check_state)


def open_billing(config: Config) -> sa.Engine:
    """The billing database, read-only, checked: it answers and holds the contract's tables."""
    from sync.engine import check_billing

    engine = make_engine(config.billing_url, key="billing.url", read_only=True)
    return _checked(engine, check_billing)


def _checked(engine: sa.Engine, check: Callable[[sa.Engine], None]) -> sa.Engine:
    try:
        check(engine)
    except BaseException:
        engine.dispose()
        raise
    return engine


@contextmanager
def friendly_errors(code: int = 1) -> Iterator[None]:
    """Turn finsync's own errors and unreachable databases into one line, no traceback.

    A configuration error exits with ``EXIT_USAGE``; any other failure with ``code``.
    """
    try:
        yield
    except ConfigError as exc:
        fail(str(exc), EXIT_USAGE)
    except FinsyncError as exc:
        fail(str(exc), code)
    except sa.exc.OperationalError as exc:
        fail(f"database error: {first_line(exc.orig)}", code)
    except sa.exc.DBAPIError as exc:
        fail(f"database error: {first_line(exc.orig)}", code)


def command_of(ctx: click.Context) -> str:
    """How to call finsync again with the same config, for the next steps it prints."""
    config_path = ctx.find_root().obj["config_path"]
    me = how_i_was_called()
    if os.environ.get("FINSYNC_CONFIG") == str(config_path):
        return me
    return f"{me} --config {config_path}"


def how_i_was_called() -> str:
    """The command as the user can type it again (``.venv/bin/finsync`` after `make demo`)."""
    called = Path(sys.argv[0])
    if called.name != "finsync" or not called.is_file():
        return "finsync"
    if called.is_absolute() and called.is_relative_to(Path.cwd()):
        return str(called.relative_to(Path.cwd()))
    return str(called)


@contextmanager
def progress_bar(label: str) -> Iterator[Callable[[int, int], None]]:
    """A progress bar driven by ``advance(done, total)`` callbacks."""
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}", style="bold", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        console=err_console,
        transient=False,
    ) as bar:
        task = bar.add_task(label, total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield advance


@contextmanager
def sync_progress(label: str, total: int | None = None) -> Iterator[Callable[[str, int], None]]:
    """A live progress display: records read from billing, and a bar of the documents sent
    against the documents due (with the time left) once the number due is known.

    The engine reports ``extracted`` and ``pushed`` counts and, before each push, ``due``:
    how many documents that push has to send. ``total`` is the number due when the caller
    already knows it.
    """
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}", style="bold", markup=False),
        TextColumn("{task.fields[extracted]:,} read"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("sent, ETA"),
        TimeRemainingColumn(),
        console=err_console,
    ) as bar:
        task = bar.add_task(label, total=total, extracted=0)
        seen = {"extracted": 0, "pushed": 0, "due": 0}

        def advance(event: str, n: int) -> None:
            seen[event] = seen.get(event, 0) + n
            due = max(seen["due"], seen["pushed"]) or total
            bar.update(task, extracted=seen["extracted"], completed=seen["pushed"], total=due)

        yield advance
