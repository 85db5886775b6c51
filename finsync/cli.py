"""The ``finsync`` command line.

Every command prints tables or a progress bar, never raw log lines, and turns user mistakes
(bad config, bad arguments, unreachable database) into one clear line with a non-zero exit.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click
import sqlalchemy as sa
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn
from rich.table import Table

from finsync import __version__
from finsync.config import Config, load_config
from finsync.db import make_engine, utcnow
from finsync.errors import ConfigError, FinsyncError

if TYPE_CHECKING:
    from reports.workbook import ReportResult
    from sync.engine import ResyncResult, SyncEngine, SyncSummary, TargetSummary

console = Console()
err_console = Console(stderr=True)
DEFAULT_CONFIG = "finsync.toml"


def fail(message: str, code: int = 1) -> NoReturn:
    """Print one error line and exit."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    sys.exit(code)


def _config(ctx: click.Context) -> Config:
    path = ctx.obj["config_path"]
    return load_config(path)


@contextmanager
def friendly_errors() -> Iterator[None]:
    """Turn finsync's own errors and unreachable databases into one line, no traceback."""
    try:
        yield
    except ConfigError as exc:
        fail(str(exc), 2)
    except FinsyncError as exc:
        fail(str(exc))
    except sa.exc.OperationalError as exc:
        fail(f"database error: {exc.orig}")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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
        TextColumn("[bold]{task.description}"),
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
    help="How many failed/dead records to list with their messages.",
)
@click.pass_context
def status(ctx: click.Context, failure_limit: int) -> None:
    """Ledger counts per target, kind and status, and the records that need attention."""
    from sync.status import failures, last_checks, last_runs, ledger_counts

    with friendly_errors():
        config = _config(ctx)
        engine = make_engine(config.state_url, key="state.url")
        counts = ledger_counts(engine)
        problems = failures(engine, limit=failure_limit)
        recent = last_runs(engine, limit=5)
        checks = last_checks(engine)
        engine.dispose()
    print_status(counts, problems, recent)
    print_checks(checks)


def print_status(
    counts: list[dict[str, Any]], problems: list[dict[str, Any]], recent: list[dict[str, Any]]
) -> None:
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
                escape((run["error"] or "")[:80]),
            )
        console.print(runs_table)
    if problems:
        fail_table = Table(title="Needs attention (failed, dead)")
        for column in ("id", "target", "record", "status", "attempts", "error"):
            fail_table.add_column(column, overflow="fold")
        for row in problems:
            fail_table.add_row(
                str(row["id"]),
                row["target"],
                escape(row["label"]),
                row["status"],
                str(row["attempts"]),
                escape(row["last_error"] or ""),  # systems' messages hold [brackets]
            )
        console.print(fail_table)


# -- sync and resync ---------------------------------------------------------------------------


def _engine(ctx: click.Context) -> SyncEngine:
    from sync.engine import SyncEngine

    engine = SyncEngine(_config(ctx))
    engine.check()
    return engine


@contextmanager
def sync_progress(label: str) -> Iterator[Callable[[str, int], None]]:
    """A live progress display counting extracted and pushed records."""
    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        TextColumn("{task.fields[extracted]:,} read"),
        TextColumn("{task.fields[pushed]:,} pushed"),
        console=err_console,
    ) as bar:
        task = bar.add_task(label, total=None, extracted=0, pushed=0)
        seen = {"extracted": 0, "pushed": 0}

        def advance(event: str, n: int) -> None:
            seen[event] = seen.get(event, 0) + n
            bar.update(task, extracted=seen["extracted"], pushed=seen["pushed"])

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
    )
    for label, value in rows:
        table.add_row(label, *(f"{value(t):,}" for t in summary.targets))
    console.print(table)
    print_checks([{"name": c.name, "ok": c.ok, "detail": c.detail} for c in summary.checks])
    for t in summary.targets:
        if t.error:
            err_console.print(f"[bold red]{t.target}:[/] {t.error}", highlight=False)


def print_checks(checks: list[dict[str, Any]]) -> None:
    """The revenue-recognition checks: balanced journals, recognized within billed, deferred."""
    if not checks:
        return
    table = Table(title="Revenue checks")
    for column in ("check", "result", "detail"):
        table.add_column(column, overflow="fold")
    for check in checks:
        result = "[green]ok[/]" if check["ok"] else "[bold red]NOT OK[/]"
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
@click.option("--full", is_flag=True, help="Re-read every record, not just changes.")
@click.pass_context
def sync(
    ctx: click.Context, targets: tuple[str, ...], kinds: tuple[str, ...], dry_run: bool, full: bool
) -> None:
    """Send every new or changed billing record to the configured targets."""
    with friendly_errors():
        engine = _engine(ctx)
        try:
            with sync_progress("Syncing") as advance:
                summary = engine.sync(
                    targets=targets or None,
                    kinds=kinds or None,
                    dry_run=dry_run,
                    full=full,
                    progress=advance,
                )
        finally:
            engine.close()
    print_sync_summary(summary)
    if not summary.ok:
        sys.exit(1)


def _date(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date like 2026-10-31") from None


@cli.command()
@click.argument("records", nargs=-1)
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
    """Send records again: by ledger id or document number (RECORDS), customer, dates, status.

    The records are re-read from billing and re-mapped with the current mapping file, so a
    record fixed in billing or in the mapping goes out corrected.
    """
    from sync.engine import Selection

    selection = Selection(
        targets=targets,
        kinds=kinds,
        ledger_ids=tuple(int(r) for r in records if r.isdigit()),
        numbers=tuple(r for r in records if not r.isdigit()),
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
        engine = _engine(ctx)
        try:
            result = engine.resync(
                selection, reason=reason or "(dry run)", dry_run=dry_run, actor=actor
            )
            print_resync(result)
            if not dry_run and not no_push and result.queued:
                wanted = sorted({i.target for i in result.items if i.outcome == "queued"})
                with sync_progress("Sending") as advance:
                    for target in wanted:
                        engine.push(target, progress=advance)
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
    console.print(f"Workbook: [bold]{path}[/]")


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
    if email and not (config.report.smtp and config.report.recipients):
        raise ConfigError("report.smtp", "--email needs [report.smtp] and report.recipients")
    billing_engine = make_engine(config.billing_url, key="billing.url")
    state_engine = make_engine(config.state_url, key="state.url")
    try:
        with Progress(
            SpinnerColumn(),
            TextColumn("[bold]Building workbook[/] {task.description}"),
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
    """The workbook's totals per currency, as its Summary sheet shows them."""
    from finsync.money import quantum

    table = Table(title=f"Monthly report {result.period} ({result.entity or 'all entities'})")
    columns = ("currency", "invoiced", "credited", "collected", "tax", "recognized", "deferred")
    for column in columns:
        table.add_column(column, justify="left" if column == "currency" else "right")
    for t in result.totals:
        amounts = (t.invoiced, t.credited, t.collected, t.tax, t.recognized, t.deferred_closing)
        table.add_row(t.currency, *(f"{a.quantize(quantum(t.currency)):,}" for a in amounts))
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
    from sandbox.netsuite import serve

    serve(
        "127.0.0.1",
        port,
        concurrency_limit=concurrency,
        latency_seconds=latency,
        echo=console.print,
    )


@sandbox.command("avatax")
@click.option("--port", type=int, default=8766, show_default=True)
def sandbox_avatax(port: int) -> None:
    """A local AvaTax REST v2 on 127.0.0.1 (account 2000000001, licence demo-license-key)."""
    from finsync.demo import AVATAX_ACCOUNT, AVATAX_LICENSE
    from sandbox.avatax.server import AvaTaxSandbox

    console.print(f"AvaTax sandbox on http://127.0.0.1:{port} (Ctrl-C stops it)")
    AvaTaxSandbox(account_id=AVATAX_ACCOUNT, license_key=AVATAX_LICENSE).serve("127.0.0.1", port)


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
        fail(escape(f"Tryton did not start: {exc}"))
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
    "--erp",
    type=click.Choice(["netsuite", "tryton"]),
    default="netsuite",
    show_default=True,
    help="The ERP to book into: the NetSuite sandbox, or a real Tryton started locally.",
)
def demo(folder: Path, customers: int, serve_console: bool, transport: str, erp: str) -> None:
    """Run the whole job on embedded defaults: seed, sync, edit, sync again, workbook.

    With --serve, the sandboxes keep running afterwards and the accountants' console is served
    on http://127.0.0.1:8000 with a demo admin key, until Ctrl-C.
    """
    from billing.generator import seed_billing
    from finsync.demo import DemoSettings, demo_systems, edit_billing
    from sync.engine import SyncEngine
    from sync.migrate import upgrade
    from sync.status import failures, last_runs, ledger_counts

    settings = DemoSettings(
        folder=folder.resolve(), customers=customers, transport=transport, erp=erp
    )
    with friendly_errors(), demo_systems(settings) as config:
        console.rule("[bold]1. Billing data")
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
        console.rule(f"[bold]2. First sync: {erp_name} and AvaTax sandbox")
        engine = SyncEngine(config, actor="demo")
        try:
            upgrade(engine.state)
            engine.check()
            with sync_progress("Syncing") as advance_sync:
                first = engine.sync(progress=advance_sync)
            print_sync_summary(first)
            console.rule("[bold]3. Billing edits records; the next sync sends only those")
            edits = edit_billing(config, settings.seed)
            console.print(
                f"changed invoices {', '.join(edits.changed_invoices) or '-'}; "
                f"voided {', '.join(edits.voided_invoices) or '-'}; "
                f"renamed customers {', '.join(edits.renamed_customers) or '-'}"
            )
            with sync_progress("Syncing changes") as advance_sync:
                second = engine.sync(progress=advance_sync)
            print_sync_summary(second)
            print_status(
                ledger_counts(engine.state),
                failures(engine.state, limit=10),
                last_runs(engine.state, limit=3),
            )
        finally:
            engine.close()
        console.rule(f"[bold]4. Monthly workbook for {settings.report_period}")
        path = build_report(config, settings.report_period)
        console.print(f"\nWorkbook: [bold]{path}[/]")
        console.print(f"Config:   {settings.folder / 'finsync.toml'}")
        key = _demo_console_key(config)
        if serve_console:
            _serve_demo_console(config, key)
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


def _how_i_was_called() -> str:
    """The command as the user can type it again (``.venv/bin/finsync`` after `make demo`)."""
    called = Path(sys.argv[0])
    if called.name != "finsync" or not called.is_file():
        return "finsync"
    if called.is_absolute() and called.is_relative_to(Path.cwd()):
        return str(called.relative_to(Path.cwd()))
    return str(called)


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

    console.rule("[bold]5. The accountants' console")
    console.print(f"Console:  http://127.0.0.1:{port}/  (Ctrl-C stops it and the sandboxes)")
    console.print(f"Sign in with this demo admin key: [bold]{key}[/]", soft_wrap=True)
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
