"""The ``finsync`` command line.

Every command prints tables or a progress bar, never raw log lines, and turns user mistakes
(bad config, bad arguments, unreachable database) into one clear line with a non-zero exit.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

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
from rich.table import Table
from rich.text import Text

from core.errors import ConfigError, FinsyncError
from finsync import __version__
from finsync.config import Config, load_config
from finsync.db import make_engine, utcnow
from finsync.terminal import console_width

if TYPE_CHECKING:
    from finsync.demo import DemoSettings
    from reports.workbook import ReportResult
    from sync.engine import ResyncResult, SyncEngine, SyncSummary, TargetSummary
    from sync.status import Attention

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


def _config(ctx: click.Context) -> Config:
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
        fail(f"database error: {_first_line(exc.orig)}", code)
    except sa.exc.DBAPIError as exc:
        fail(f"database error: {_first_line(exc.orig)}", code)


def _first_line(error: BaseException | None) -> str:
    text = str(error) if error is not None else "unknown"
    return text.strip().splitlines()[0] if text.strip() else type(error).__name__


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
                f"unexpected error ({type(exc).__name__}: {_first_line(exc)}); this is a "
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


# -- init --------------------------------------------------------------------------------------


@cli.command()
@click.pass_context
def init(ctx: click.Context) -> None:
    """Create or upgrade the state store (ledger, cursors, runs, audit log). Idempotent."""
    from sync.migrate import upgrade

    with friendly_errors():
        config = _config(ctx)
        engine = make_engine(config.state_url, key="state.url")
        before, after = upgrade(engine)
        engine.dispose()
    if before == after:
        console.print(f"State store already at revision {after}; nothing to do.")
    else:
        console.print(f"State store upgraded from {before or 'empty'} to revision {after}.")


# -- billing -----------------------------------------------------------------------------------


@cli.group()
def billing() -> None:
    """The billing source database (demo data)."""


def _month(value: str) -> date:
    try:
        year, month = value.split("-")
        return date(int(year), int(month), 1)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a month like 2025-11") from None


@billing.command("seed")
@click.option(
    "--db",
    "db_url",
    required=True,
    help="Billing database URL (sqlite:///... or postgresql://...).",
)
@click.option("--customers", type=click.IntRange(1), default=200, show_default=True)
@click.option("--months", type=click.IntRange(1, 120), default=12, show_default=True)
@click.option(
    "--seed",
    "seed",
    type=int,
    default=42,
    show_default=True,
    help="Random seed: the same seed gives identical data.",
)
@click.option("--start", default="2025-11", show_default=True, help="First month (YYYY-MM).")
@click.option("--replace", is_flag=True, help="Empty the billing tables first.")
def billing_seed(
    db_url: str, customers: int, months: int, seed: int, start: str, replace: bool
) -> None:
    """Fill a billing database with deterministic, realistic demo data (hard cases included)."""
    from billing.generator import seed_billing

    start_date = _month(start)
    with friendly_errors():
        engine = make_engine(db_url, key="--db")
        with progress_bar("Seeding billing data") as advance:
            try:
                summary = seed_billing(
                    engine,
                    customers=customers,
                    months=months,
                    seed=seed,
                    start=start_date,
                    replace=replace,
                    progress=advance,
                )
            except ValueError as exc:
                fail(str(exc))
        engine.dispose()
    table = Table(title=f"Billing data seeded (seed {seed})")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, count in summary.rows():
        table.add_row(name, f"{count:,}")
    console.print(table)


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


# -- status ------------------------------------------------------------------------------------


@cli.command()
@click.option(
    "--failures",
    "failure_limit",
    type=int,
    default=20,
    show_default=True,
    help="How many records waiting behind failed ones to name (the rest are counted).",
)
@click.pass_context
def status(ctx: click.Context, failure_limit: int) -> None:
    """Ledger counts per target, kind and status, and the records that need attention."""
    from sync.status import attention, last_checks, last_runs, ledger_counts

    with friendly_errors():
        config = _config(ctx)
        engine = open_state(config)
        counts = ledger_counts(engine)
        problems = attention(engine)
        recent = last_runs(engine, limit=5)
        checks = last_checks(engine)
        engine.dispose()
    print_status(counts, recent)
    print_checks(checks)
    print_attention(problems, _command(ctx), waiting_limit=failure_limit)


def print_status(counts: list[dict[str, Any]], recent: list[dict[str, Any]]) -> None:
    """Render the status tables."""
    from sync.state import STATUSES

    shown = [s for s in STATUSES if any(row.get(s) for row in counts)] or ["synced"]
    table = Table(title="Ledger")
    for column in ("target", "kind", *shown, "total"):
        table.add_column(column, justify="left" if column in ("target", "kind") else "right")
    for row in counts:
        table.add_row(
            row["target"],
            row["kind"],
            *[f"{row.get(s, 0):,}" for s in shown],
            f"{row['total']:,}",
        )
    if not counts:
        table.add_row("(empty)", "", *["" for _ in shown], "0")
    console.print(table)
    if recent:
        runs_table = Table(title="Recent runs")
        for column in ("run", "kind", "target", "status", "started", "finished", "error"):
            runs_table.add_column(column)
        for run in recent:
            runs_table.add_row(
                str(run["id"]),
                run["kind"],
                run["target"] or "",
                run["status"],
                f"{run['started_at']:%Y-%m-%d %H:%M:%S}",
                f"{run['finished_at']:%H:%M:%S}" if run["finished_at"] else "",
                (run["error"] or "")[:80],
            )
        console.print(runs_table)


def _command(ctx: click.Context) -> str:
    """How to call finsync again with the same config, for the next steps it prints."""
    config_path = ctx.find_root().obj["config_path"]
    me = _how_i_was_called()
    if os.environ.get("FINSYNC_CONFIG") == str(config_path):
        return me
    return f"{me} --config {config_path}"


def print_attention(found: Attention, command: str, *, waiting_limit: int = 20) -> None:
    """Failed, dead and retrying records grouped by error (the first ten named, the rest
    counted) with the next command to run, and the records waiting behind them."""
    from sync.status import NAMED_PER_GROUP

    for group in found.groups:
        style = "yellow" if group.status == "retry" else "bold red"
        console.print(
            Text.assemble((f"{group.count:,} {group.status}", style), ": ", group.error),
            soft_wrap=True,
        )
        for name in group.named:
            console.print(f"    {name}", soft_wrap=True)
        if group.count > NAMED_PER_GROUP:
            console.print(f"    ... and {group.count - NAMED_PER_GROUP:,} more")
        console.print(Text.assemble("  next: ", group.next_step(command)), soft_wrap=True)
    if found.waiting:
        console.print(
            Text.assemble(
                (f"{len(found.waiting):,} waiting", "yellow"),
                " behind records that have not synced (sent by themselves once those sync):",
            ),
            soft_wrap=True,
        )
        for item in found.waiting[:waiting_limit]:
            console.print(f"    {item.label} ({item.target}): {item.waiting_for}", soft_wrap=True)
        if len(found.waiting) > waiting_limit:
            console.print(f"    ... and {len(found.waiting) - waiting_limit:,} more")


# -- sync and resync ---------------------------------------------------------------------------


def _engine(ctx: click.Context, *, connectors: bool = True) -> SyncEngine:
    from sync.engine import SyncEngine

    engine = SyncEngine(_config(ctx))
    engine.check(connectors=connectors)
    return engine


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


def print_sync_summary(summary: SyncSummary) -> None:
    """The summary of a sync: one row per outcome, one column per target."""
    title = (
        "Sync summary (dry run: nothing written or sent)"
        if summary.dry_run
        else f"Sync summary (run {summary.run_id})"
    )
    table = Table(title=title)
    table.add_column("")
    for t in summary.targets:
        table.add_column(t.target, justify="right")
    rows: tuple[tuple[str, Callable[[TargetSummary], int]], ...] = (
        ("new in billing", lambda t: t.extracted.new),
        ("changed in billing", lambda t: t.extracted.changed),
        ("unchanged (skipped)", lambda t: t.extracted.unchanged),
        ("mapping failed", lambda t: t.extracted.failed),
        ("sent", lambda t: t.pushed.sent),
        ("  created", lambda t: t.pushed.created),
        ("  updated", lambda t: t.pushed.updated),
        ("  found after timeout", lambda t: t.pushed.recovered),
        ("  failed", lambda t: t.pushed.failed),
        ("  retrying", lambda t: t.pushed.retrying),
        ("  dead", lambda t: t.pushed.dead),
        ("requests retried", lambda t: t.pushed.retried_requests),
    )
    for label, value in rows:
        table.add_row(label, *(f"{value(t):,}" for t in summary.targets))
    console.print(table)
    print_checks([{"name": c.name, "ok": c.ok, "detail": c.detail} for c in summary.checks])
    for t in summary.targets:
        if t.error:
            err_console.print(Text.assemble((f"{t.target}:", "bold red"), " ", t.error))


def print_checks(checks: list[dict[str, Any]]) -> None:
    """The revenue-recognition checks: balanced journals, recognized within billed, deferred."""
    if not checks:
        return
    table = Table(title="Revenue checks")
    for column in ("check", "result", "detail"):
        table.add_column(column, overflow="fold")
    for check in checks:
        result = Text("ok", style="green") if check["ok"] else Text("NOT OK", style="bold red")
        table.add_row(check["name"], result, check["detail"])
    console.print(table)


@cli.command()
@click.option("--target", "targets", multiple=True, help="Only this target (repeatable).")
@click.option(
    "--kind",
    "kinds",
    multiple=True,
    type=click.Choice(["customer", "invoice", "credit_note", "payment", "refund", "revenue"]),
    help="Only this kind (repeatable).",
)
@click.option("--dry-run", is_flag=True, help="Map and compare, write and send nothing.")
@click.option(
    "--show",
    is_flag=True,
    help="With --dry-run: list every document that would be sent or would fail.",
)
@click.option("--full", is_flag=True, help="Re-read every record, not just changes.")
@click.pass_context
def sync(
    ctx: click.Context,
    targets: tuple[str, ...],
    kinds: tuple[str, ...],
    dry_run: bool,
    show: bool,
    full: bool,
) -> None:
    """Send every new or changed billing record to the configured targets.

    \b
    Exit codes:
      0  every record is synced
      1  the run finished, but records failed, went dead, wait for a retry, or wait
         behind one of those (`finsync status` lists them)
      2  the configuration or the command line is wrong (the line printed names it)
      3  the run itself failed: a target could not be reached or refused the
         credentials, or a database could not be used
    """
    from sync.status import attention

    if show and not dry_run:
        fail("--show lists what a dry run would send: use it with --dry-run", EXIT_USAGE)
    with friendly_errors(EXIT_RUN_FAILED):
        engine = _engine(ctx)
        try:
            engine.target_names(targets or None)  # an unknown --target fails before any work
            with sync_progress("Syncing") as advance:
                summary = engine.sync(
                    targets=targets or None,
                    kinds=kinds or None,
                    dry_run=dry_run,
                    full=full,
                    progress=advance,
                )
            found = attention(engine.state, engine.target_names(targets or None))
        finally:
            engine.close()
    print_sync_summary(summary)
    if show:
        print_preview(summary.preview)
    if not summary.ok:
        sys.exit(EXIT_RUN_FAILED)
    if summary.attention:
        print_attention(found, _command(ctx))
        err_console.print(
            f"{summary.attention:,} records need attention: `finsync status` lists them "
            "(grouped by error above)",
            style="yellow",
            soft_wrap=True,
        )
        sys.exit(EXIT_RECORDS_NEED_ATTENTION)


def print_preview(preview: list[dict[str, Any]]) -> None:
    """A dry run's documents: those that would be sent, then those that would fail."""
    sent = [p for p in preview if p["status"] != "failed"]
    failing = [p for p in preview if p["status"] == "failed"]
    table = Table(title=f"Would be sent ({len(sent):,})")
    for column in ("target", "record", "as"):
        table.add_column(column, overflow="fold")
    for item in sent:
        how = "already in the target" if item["status"] == "synced" else "sent"
        table.add_row(item["target"], item["label"], how)
    if not sent:
        table.add_row("(nothing)", "", "")
    console.print(table)
    if failing:
        fail_table = Table(title=f"Would fail ({len(failing):,})")
        for column in ("target", "record", "error"):
            fail_table.add_column(column, overflow="fold")
        for item in failing:
            fail_table.add_row(item["target"], item["label"], item["last_error"] or "")
        console.print(fail_table)


def _date(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date like 2026-10-31") from None


@cli.command()
@click.argument("records", nargs=-1)
@click.option(
    "--id",
    "by_id",
    is_flag=True,
    help="RECORDS are ledger ids (the console shows them), not document numbers.",
)
@click.option("--target", "targets", multiple=True, help="Only this target (repeatable).")
@click.option("--kind", "kinds", multiple=True, help="Only this kind (repeatable).")
@click.option("--customer", help="Every record of this customer account number.")
@click.option("--from", "date_from", help="Documents dated on or after (YYYY-MM-DD).")
@click.option("--to", "date_to", help="Documents dated on or before (YYYY-MM-DD).")
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice(["failed", "dead", "retry", "pending", "synced"]),
    help="Only records in this status (repeatable).",
)
@click.option("--reason", help="Why: recorded in the audit log. Required unless --dry-run.")
@click.option("--actor", help="Who asks (default: the user running the command).")
@click.option(
    "--dry-run", is_flag=True, help="Show what would be sent and how it differs from the last send."
)
@click.option("--no-push", is_flag=True, help="Only queue; the next sync sends.")
@click.pass_context
def resync(
    ctx: click.Context,
    records: tuple[str, ...],
    by_id: bool,
    targets: tuple[str, ...],
    kinds: tuple[str, ...],
    customer: str | None,
    date_from: str | None,
    date_to: str | None,
    statuses: tuple[str, ...],
    reason: str | None,
    actor: str | None,
    dry_run: bool,
    no_push: bool,
) -> None:
    """Send records again: by document number (RECORDS: invoice, credit note, payment, refund
    or customer account numbers; ledger ids with --id), customer, dates, status.

    The records are re-read from billing and re-mapped with the current mapping file, so a
    record fixed in billing or in the mapping goes out corrected. It prints which ledger rows
    each number matched.
    """
    from sync.engine import Selection

    if by_id and not all(r.isdigit() for r in records):
        wrong = next(r for r in records if not r.isdigit())
        fail(f"--id takes ledger ids (whole numbers), not {wrong!r}", EXIT_USAGE)
    selection = Selection(
        targets=targets,
        kinds=kinds,
        ledger_ids=tuple(int(r) for r in records) if by_id else (),
        numbers=() if by_id else records,
        customer=customer,
        date_from=_date(date_from),
        date_to=_date(date_to),
        statuses=statuses,
    )
    if selection.is_empty():
        fail(
            "say what to re-sync: record ids or numbers, --customer, --from/--to, --kind or "
            "--status (e.g. --status failed)"
        )
    if not dry_run and not (reason and reason.strip()):
        fail(
            "--reason is required: say why these records are sent again (it goes in the audit log)"
        )
    with friendly_errors():
        engine = _engine(ctx, connectors=not no_push)  # queueing needs no target up
        try:
            result = engine.resync(
                selection, reason=reason or "(dry run)", dry_run=dry_run, actor=actor
            )
            print_resync(result)
            print_matches(records, by_id, result)
            if not result.items and records:
                fail(
                    "no ledger record matches: check the document numbers (ledger ids need "
                    "--id) and the filters",
                    EXIT_RECORDS_NEED_ATTENTION,
                )
            if not dry_run and not no_push and result.queued:
                with sync_progress("Sending", total=result.queued) as advance:
                    engine.push_resync(result, progress=advance)
                from sync.status import ledger_rows

                print_records(ledger_rows(engine.state, [i.ledger_id for i in result.items]))
        finally:
            engine.close()


def print_resync(result: ResyncResult) -> None:
    """What a re-sync selected and queued, with the differences from the last send."""
    table = Table(
        title=(
            "Re-sync preview (dry run: nothing queued)"
            if result.dry_run
            else f"Re-sync queued (audit entry {result.audit_id})"
        )
    )
    for column in ("id", "target", "record", "was", "outcome", "differences from last send"):
        table.add_column(column, overflow="fold")
    for item in result.items:
        changes = "\n".join(str(c) for c in item.changes[:12])
        if len(item.changes) > 12:
            changes += f"\n... {len(item.changes) - 12} more"
        table.add_row(
            str(item.ledger_id),
            item.target,
            item.label,
            item.status_before,
            item.outcome,
            item.message or changes or "(no change)",
        )
    console.print(table)
    console.print(
        f"{result.queued} of {len(result.items)} selected records "
        f"{'would be' if result.dry_run else 'were'} queued."
    )


def print_matches(records: tuple[str, ...], by_id: bool, result: ResyncResult) -> None:
    """Which ledger rows each document number (or id) on the command line matched."""
    from sync.status import document_number

    for asked in records:
        if by_id:
            hits = [i for i in result.items if str(i.ledger_id) == asked]
        else:
            hits = [i for i in result.items if document_number(i.label) == asked.strip()]
        if hits:
            rows = ", ".join(f"{i.label} in {i.target} (ledger row {i.ledger_id})" for i in hits)
            console.print(f"{asked} matched {rows}", soft_wrap=True)
        else:
            hint = "" if by_id else " (a ledger id needs --id)"
            console.print(
                Text.assemble((f"{asked} matched nothing", "yellow"), hint), soft_wrap=True
            )


def print_records(rows: list[dict[str, Any]]) -> None:
    """Ledger rows after a push: where each record stands now."""
    table = Table(title="Where they stand now")
    for column in ("id", "target", "record", "status", "ERP id", "error"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            str(row["id"]),
            row["target"],
            row["label"],
            row["status"],
            row["internal_id"] or "",
            row["last_error"] or "",
        )
    console.print(table)


# -- report ------------------------------------------------------------------------------------


@cli.group()
def report() -> None:
    """Finance reports."""


@report.command("monthly")
@click.option("--period", required=True, help="The month, YYYY-MM (e.g. 2026-10).")
@click.option("--entity", help="Only this billing entity.")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the workbook (default: [report] out_dir).",
)
@click.option("--email", is_flag=True, help="Also e-mail it to [report] recipients.")
@click.pass_context
def report_monthly(
    ctx: click.Context, period: str, entity: str | None, out_dir: Path | None, email: bool
) -> None:
    """Build the monthly finance workbook (and e-mail it)."""
    with friendly_errors():
        config = _config(ctx)
        path = build_report(config, period, entity=entity, out_dir=out_dir, email=email)
    console.print(Text.assemble("Workbook: ", (str(path), "bold")))


def build_report(
    config: Config,
    period: str,
    *,
    entity: str | None = None,
    out_dir: Path | None = None,
    email: bool = False,
) -> Path:
    """Build one monthly workbook with a progress display, record it, e-mail it if asked."""
    from reports.delivery import deliver_report
    from reports.monthly import parse_period
    from reports.workbook import build_configured_report, record_workbook

    parse_period(period)  # ConfigError naming the period
    if entity is not None:
        from mappings.tables import load_mapping_file

        known = sorted(load_mapping_file(config.mapping_file).entities)
        if entity not in known:
            raise ConfigError(
                "--entity",
                f"{entity!r} is not a billing entity of the mapping file: use one of "
                f"{', '.join(known)}",
            )
    if email and not (config.report.smtp and config.report.recipients):
        raise ConfigError("report.smtp", "--email needs [report.smtp] and report.recipients")
    billing_engine = open_billing(config)
    state_engine = open_state(config)
    try:
        with Progress(
            SpinnerColumn(),
            TextColumn("Building workbook {task.description}", markup=False),
            console=err_console,
            transient=True,
        ) as bar:
            task = bar.add_task("", total=None)

            def advance(stage: str, rows: int) -> None:
                bar.update(task, description=f"{stage}: {rows:,} rows")

            result = build_configured_report(
                config,
                billing_engine,
                state_engine,
                period,
                entity=entity,
                out_dir=out_dir,
                progress=advance,
            )
        with state_engine.begin() as conn:
            record_workbook(conn, result, built_at=utcnow())
    finally:
        billing_engine.dispose()
        state_engine.dispose()
    print_report_summary(result)
    if email:
        delivery = deliver_report(result, config.report)
        if not delivery.ok:
            fail(f"the workbook was written to {result.path} but e-mail failed: {delivery.error}")
        console.print(f"E-mailed to {', '.join(config.report.recipients)}.")
    return Path(result.path)


def print_report_summary(result: ReportResult) -> None:
    """The workbook's figures per currency, as its Summary sheet shows them."""
    from core.money import quantum
    from reports.workbook import SUMMARY_FIGURES

    table = Table(title=f"Monthly report {result.period} ({result.entity or 'all entities'})")
    table.add_column("figure")
    for t in result.totals:
        table.add_column(t.currency, justify="right")
    for label, attr in SUMMARY_FIGURES:
        table.add_row(
            label,
            *(f"{getattr(t, attr).quantize(quantum(t.currency)):,}" for t in result.totals),
        )
    console.print(table)
    console.print(f"Sync exceptions needing attention: {result.exceptions}")


# -- sandboxes and demo ----------------------------------------------------------------------


@cli.group()
def sandbox() -> None:
    """Run a local vendor sandbox alone, for manual trials."""


@sandbox.command("netsuite")
@click.option("--port", type=int, default=8088, show_default=True)
@click.option("--concurrency", type=int, default=5, show_default=True)
@click.option(
    "--latency", type=float, default=0.0, show_default=True, help="Seconds added to every request."
)
def sandbox_netsuite(port: int, concurrency: int, latency: float) -> None:
    """A local NetSuite (SuiteTalk SOAP and REST) on 127.0.0.1, with the demo credentials."""
    from finsync.demo import sandbox_secrets
    from sandbox.netsuite import serve

    secrets = sandbox_secrets()

    def echo(line: str) -> None:
        if not line.strip().startswith("credentials:"):
            console.print(line, soft_wrap=True)
            return
        console.print("  credentials (public, this sandbox only; `finsync demo` writes them too):")
        for label, variable in (
            ("consumer key", "FINSYNC_DEMO_NS_CONSUMER_KEY"),
            ("consumer secret", "FINSYNC_DEMO_NS_CONSUMER_SECRET"),
            ("token id", "FINSYNC_DEMO_NS_TOKEN_ID"),
            ("token secret", "FINSYNC_DEMO_NS_TOKEN_SECRET"),
        ):
            console.print(f"    {label + ':':17}{secrets[variable]}", soft_wrap=True)
        console.print("  Ctrl-C stops it")

    _listening(
        port,
        lambda: serve(
            "127.0.0.1",
            port,
            concurrency_limit=concurrency,
            latency_seconds=latency,
            echo=echo,
        ),
    )


def _listening(port: int, run: Callable[[], None]) -> None:
    """Run a server; a port already taken is one line naming it."""
    try:
        run()
    except OSError as exc:
        fail(f"cannot listen on 127.0.0.1:{port} ({exc.strerror}): pick another --port")


@sandbox.command("avatax")
@click.option("--port", type=int, default=8766, show_default=True)
def sandbox_avatax(port: int) -> None:
    """A local AvaTax REST v2 on 127.0.0.1 (account 2000000001, licence demo-license-key)."""
    from finsync.demo import AVATAX_ACCOUNT, AVATAX_LICENSE
    from sandbox.avatax.server import AvaTaxSandbox

    console.print(f"AvaTax sandbox on http://127.0.0.1:{port} (Ctrl-C stops it)")
    console.print("  credentials (public, this sandbox only; `finsync demo` writes them too):")
    console.print(f"    account id:  {AVATAX_ACCOUNT}")
    console.print(f"    license key: {AVATAX_LICENSE}")
    sandbox = AvaTaxSandbox(account_id=AVATAX_ACCOUNT, license_key=AVATAX_LICENSE)
    _listening(port, lambda: sandbox.serve("127.0.0.1", port))


@sandbox.command("tryton")
@click.option("--port", type=int, default=8010, show_default=True)
@click.option(
    "--dir",
    "folder",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".finsync/tryton"),
    show_default=True,
    help="Where the template database is cached and the server's copy lives (fresh each start).",
)
def sandbox_tryton(port: int, folder: Path) -> None:
    """A real Tryton ERP (trytond 8.2) on 127.0.0.1: five companies, charts, fiscal years."""
    from sandbox.tryton import (
        ADMIN_LOGIN,
        ADMIN_PASSWORD,
        DATABASE,
        TrytonServer,
        TrytonStartError,
        ensure_template,
    )

    folder = folder.resolve()
    console.print("Preparing the Tryton database (about 20 s the first time, cached after)")
    try:
        template = ensure_template(folder / "cache")
        server = TrytonServer(template, folder / "server", port=port).start()
    except TrytonStartError as exc:
        fail(f"Tryton did not start: {exc}")
    console.print(
        f"Tryton on {server.url} (JSON-RPC {server.rpc_url}); database {DATABASE}, "
        f"user {ADMIN_LOGIN}, password {ADMIN_PASSWORD} (local trials only). Ctrl-C stops it.",
        soft_wrap=True,
    )
    try:
        server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


@cli.command()
@click.option(
    "--dir",
    "folder",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".finsync/demo"),
    show_default=True,
    help="Where the demo keeps its databases, config and workbook (recreated).",
)
@click.option("--customers", type=click.IntRange(1, 5000), default=40, show_default=True)
@click.option(
    "--serve",
    "serve_console",
    is_flag=True,
    help="Afterwards keep the sandboxes running and serve the accountants' console.",
)
@click.option(
    "--transport",
    type=click.Choice(["soap", "rest"]),
    default="soap",
    show_default=True,
    help="How to talk to the NetSuite sandbox.",
)
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=8000,
    show_default=True,
    help="With --serve: the console's port.",
)
@click.option("--netsuite-port", type=click.IntRange(1, 65535), default=8088, show_default=True)
@click.option("--avatax-port", type=click.IntRange(1, 65535), default=8766, show_default=True)
@click.option(
    "--service-port",
    type=click.IntRange(1, 65535),
    default=8080,
    show_default=True,
    help="Where `finsync serve` on the demo's config serves /health and the console.",
)
@click.option(
    "--erp",
    type=click.Choice(["netsuite", "tryton"]),
    default="netsuite",
    show_default=True,
    help="The ERP to book into: the NetSuite sandbox, or a real Tryton started locally.",
)
def demo(
    folder: Path,
    customers: int,
    serve_console: bool,
    transport: str,
    port: int,
    netsuite_port: int,
    avatax_port: int,
    service_port: int,
    erp: str,
) -> None:
    """Run the whole job on embedded defaults: seed, sync, edit, sync again, workbook.

    The sandboxes listen on --netsuite-port and --avatax-port; the demo's config points at
    them and reads their credentials from files beside it, so after the demo every command of
    the README works on it once `finsync sandbox netsuite` and `finsync sandbox avatax` run
    again. With --serve, the sandboxes keep running afterwards and the accountants' console is
    served on http://127.0.0.1:PORT with a demo admin key, until Ctrl-C.
    """
    from billing.generator import seed_billing
    from finsync.demo import DemoSettings, edit_billing
    from sync.engine import SyncEngine
    from sync.migrate import upgrade
    from sync.status import attention, last_runs, ledger_counts

    settings = DemoSettings(
        folder=folder.resolve(),
        customers=customers,
        transport=transport,
        netsuite_port=netsuite_port,
        avatax_port=avatax_port,
        service_port=service_port,
        erp=erp,
    )
    with friendly_errors(), _demo_systems(settings) as config:
        console.rule(Text("1. Billing data", style="bold"))
        billing_engine = make_engine(config.billing_url)
        with progress_bar("Seeding billing data") as advance:
            seeded = seed_billing(
                billing_engine,
                customers=settings.customers,
                months=settings.months,
                seed=settings.seed,
                start=settings.start,
                progress=advance,
            )
        billing_engine.dispose()
        console.print("  ".join(f"{name} {count:,}" for name, count in seeded.rows()))
        erp_name = "Tryton" if erp == "tryton" else f"NetSuite sandbox ({transport.upper()})"
        console.rule(Text(f"2. First sync: {erp_name} and AvaTax sandbox", style="bold"))
        engine = SyncEngine(config, actor="demo")
        try:
            upgrade(engine.state)
            engine.check()
            with sync_progress("Syncing") as advance_sync:
                first = engine.sync(progress=advance_sync)
            print_sync_summary(first)
            console.rule(
                Text("3. Billing edits records; the next sync sends only those", style="bold")
            )
            edits = edit_billing(config, settings.seed)
            console.print(
                f"changed invoices {', '.join(edits.changed_invoices) or '-'}; "
                f"voided {', '.join(edits.voided_invoices) or '-'}; "
                f"renamed customers {', '.join(edits.renamed_customers) or '-'}"
            )
            with sync_progress("Syncing changes") as advance_sync:
                second = engine.sync(progress=advance_sync)
            print_sync_summary(second)
            print_status(ledger_counts(engine.state), last_runs(engine.state, limit=3))
            print_attention(attention(engine.state), "finsync")
        finally:
            engine.close()
        console.rule(Text(f"4. Monthly workbook for {settings.report_period}", style="bold"))
        path = build_report(config, settings.report_period)
        console.print(Text.assemble("\nWorkbook: ", (str(path), "bold")))
        console.print(f"Config:   {settings.folder / 'finsync.toml'}")
        key = _demo_console_key(config)
        if serve_console:
            _serve_demo_console(config, key, port)
    if not serve_console:
        config_path = settings.folder / "finsync.toml"
        me = _how_i_was_called()
        console.print(
            f"Console:  `{me} --config {config_path} console`, then http://127.0.0.1:8000/ "
            f"(or `{me} demo --serve`, which keeps the sandboxes running as well)",
            soft_wrap=True,
        )
        console.print(f"Demo admin key for the console: {key}", soft_wrap=True)
        console.print(f"Status:   `{me} --config {config_path} status`", soft_wrap=True)
        console.print(
            f"The sandboxes have stopped; for the README's commands start them again with "
            f"`{me} sandbox netsuite --port {netsuite_port} &` and "
            f"`{me} sandbox avatax --port {avatax_port} &`",
            soft_wrap=True,
        )


def _how_i_was_called() -> str:
    """The command as the user can type it again (``.venv/bin/finsync`` after `make demo`)."""
    called = Path(sys.argv[0])
    if called.name != "finsync" or not called.is_file():
        return "finsync"
    if called.is_absolute() and called.is_relative_to(Path.cwd()):
        return str(called.relative_to(Path.cwd()))
    return str(called)


@contextmanager
def _demo_systems(settings: DemoSettings) -> Iterator[Config]:
    """The demo's systems on their ports and its config; a port already taken is one line
    naming it."""
    from finsync.demo import demo_systems

    with ExitStack() as stack:
        try:
            config = stack.enter_context(demo_systems(settings))
        except OSError as exc:
            fail(
                f"cannot start the demo's sandboxes on 127.0.0.1:{settings.netsuite_port} and "
                f":{settings.avatax_port} ({exc.strerror}): stop what uses them or pass "
                "--netsuite-port and --avatax-port"
            )
        yield config


def _demo_console_key(config: Config) -> str:
    """A fresh admin API key of the demo's console (shown once, stored hashed)."""
    from api.auth import create_token

    state = make_engine(config.state_url)
    try:
        created = create_token(
            state, name="demo-admin", role="admin", created_by="demo", now=utcnow()
        )
    finally:
        state.dispose()
    return created.token


def _serve_demo_console(config: Config, key: str, port: int = 8000) -> None:
    """Serve the console on the demo's state store until Ctrl-C (the sandboxes keep running)."""
    import uvicorn

    from api.app import create_app

    console.rule(Text("5. The accountants' console", style="bold"))
    console.print(f"Console:  http://127.0.0.1:{port}/  (Ctrl-C stops it and the sandboxes)")
    console.print(
        Text.assemble("Sign in with this demo admin key: ", (key, "bold")), soft_wrap=True
    )
    uvicorn.run(create_app(config), host="127.0.0.1", port=port, log_level="warning")


def main() -> None:
    """Console-script entry point."""
    cli(obj={})


# -- commands defined beside their subsystems ---------------------------------------------------
# `finsync serve` and `finsync worker` (finsync/service.py); `finsync token` and
# `finsync console` (api/cli.py).

from api.cli import console as console_command  # noqa: E402
from api.cli import token  # noqa: E402
from finsync.service import serve, worker  # noqa: E402

cli.add_command(serve)
cli.add_command(worker)
cli.add_command(token)
cli.add_command(console_command)
