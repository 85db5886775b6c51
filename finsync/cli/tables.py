"""The tables the ledger commands print: ledger counts and runs, what needs attention, a
sync's summary and revenue checks, a dry run's documents, a re-sync and where records stand."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rich.table import Table
from rich.text import Text

from finsync.cli.common import console, err_console

if TYPE_CHECKING:
    from sync.engine import ResyncResult, SyncSummary, TargetSummary
    from sync.status import Attention


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
