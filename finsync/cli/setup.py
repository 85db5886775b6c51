"""``finsync init`` (the state store) and ``finsync billing seed`` (demo billing data)."""

from __future__ import annotations

from datetime import date

import click
from rich.table import Table

from finsync.cli.common import config_of, console, fail, friendly_errors, progress_bar
from finsync.db import make_engine


@click.command()
@click.pass_context
def init(ctx: click.Context) -> None:
    """Create or upgrade the state store (ledger, cursors, runs, audit log). Idempotent."""
    from sync.migrate import upgrade

    with friendly_errors():
        config = config_of(ctx)
        engine = make_engine(config.state_url, key="state.url")
        before, after = upgrade(engine)
        engine.dispose()
    if before == after:
        console.print(f"State store already at revision {after}; nothing to do.")
    else:
        console.print(f"State store upgraded from {before or 'empty'} to revision {after}.")


# -- billing -----------------------------------------------------------------------------------


@click.group()
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
