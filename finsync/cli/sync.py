"""``finsync status``, ``finsync sync`` and ``finsync resync`` (their tables: ``tables``)."""

from __future__ import annotations

import sys
from datetime import date
from typing import TYPE_CHECKING

import click

from finsync.cli.common import (
    EXIT_RECORDS_NEED_ATTENTION,
    EXIT_RUN_FAILED,
    EXIT_USAGE,
    command_of,
    config_of,
    err_console,
    fail,
    friendly_errors,
    open_state,
    sync_progress,
)
from finsync.cli.tables import (
    print_attention,
    print_checks,
    print_matches,
    print_preview,
    print_records,
    print_resync,
    print_status,
    print_sync_summary,
)

if TYPE_CHECKING:
    from sync.engine import SyncEngine


@click.command()
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
        config = config_of(ctx)
        engine = open_state(config)
        counts = ledger_counts(engine)
        problems = attention(engine)
        recent = last_runs(engine, limit=5)
        checks = last_checks(engine)
        engine.dispose()
    print_status(counts, recent)
    print_checks(checks)
    print_attention(problems, command_of(ctx), waiting_limit=failure_limit)


# -- sync and resync ---------------------------------------------------------------------------


def _engine(ctx: click.Context, *, connectors: bool = True) -> SyncEngine:
    from sync.engine import SyncEngine

    engine = SyncEngine(config_of(ctx))
    engine.check(connectors=connectors)
    return engine


@click.command()
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
        print_attention(found, command_of(ctx))
        err_console.print(
            f"{summary.attention:,} records need attention: `finsync status` lists them "
            "(grouped by error above)",
            style="yellow",
            soft_wrap=True,
        )
        sys.exit(EXIT_RECORDS_NEED_ATTENTION)


def _date(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date like 2026-10-31") from None


@click.command()
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
