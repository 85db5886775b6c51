"""``finsync report monthly``: the monthly finance workbook, built, recorded and e-mailed."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.progress import Progress, SpinnerColumn, TextColumn
from rich.table import Table
from rich.text import Text

from core.errors import ConfigError
from finsync.cli.common import (
    config_of,
    console,
    err_console,
    fail,
    friendly_errors,
    open_billing,
    open_state,
)
from finsync.config import Config
from finsync.db import utcnow

if TYPE_CHECKING:
    from reports.workbook import ReportResult


@click.group()
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
        config = config_of(ctx)
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
