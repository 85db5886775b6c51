"""The revenue checks of `finsync status` on billing data, following docs/accounting.md."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal as D
from pathlib import Path
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from billing import schema as b
from billing.generator import apply_edits, seed_billing
from mappings.tables import load_mapping_file
from reports.monthly import find_left_out
from sync import state
from sync.revrec_checks import revrec_checks
from tests import report_seed
from tests.independent_billing import build_independent_billing

MAPPING = Path(__file__).resolve().parents[1] / "mapping.example.toml"


def _checks(engine: sa.Engine) -> dict[str, tuple[bool, str]]:
    return {c.name: (c.ok, c.detail) for c in revrec_checks(engine, engine)}


def test_voids_after_the_close_keep_every_check_ok(db_engine: sa.Engine) -> None:
    # The demo's story: twelve months recognized to 31 October, then billing voids open
    # invoices on 2 November, some of whose revenue October already recognized.
    seed_billing(db_engine, customers=12, months=12, seed=7, start=date(2025, 11, 1))
    state.metadata.create_all(db_engine)
    edits = apply_edits(db_engine, seed=3, at=datetime(2026, 11, 2, 9, tzinfo=UTC), count=6)
    assert edits.voided_invoices
    with db_engine.connect() as conn:
        rse, li, inv = b.revenue_schedule_entries, b.invoice_lines, b.invoices
        voided_recognized = conn.execute(
            sa.select(sa.func.count())
            .select_from(rse.join(li, li.c.id == rse.c.invoice_line_id))
            .join(inv, inv.c.id == li.c.invoice_id)
            .where(inv.c.status == "void", rse.c.status == "recognized", rse.c.amount > 0)
        ).scalar_one()
    assert voided_recognized > 0  # voided invoices whose earlier revenue stays recognized
    checks = _checks(db_engine)
    assert all(ok for ok, _ in checks.values()), checks
    assert "at the close 2026-10-31" in checks["deferred revenue at the close is not negative"][1]


def test_negative_deferred_revenue_fails_its_check(db_engine: sa.Engine) -> None:
    report_seed.seed_billing(db_engine)
    state.metadata.create_all(db_engine)
    assert all(ok for ok, _ in _checks(db_engine).values())
    # INV-7's 15.250 KWD support line is recognized twice: 20.000 more than was billed.
    with db_engine.begin() as conn:
        conn.execute(
            b.revenue_schedule_entries.insert().values(
                id=999,
                invoice_line_id=71,
                period=date(2026, 6, 1),
                amount=D("20.000"),
                status="recognized",
                recognized_on=date(2026, 6, 30),
                updated_at=report_seed.T0,
            )
        )
    checks = _checks(db_engine)
    ok, detail = checks["deferred revenue at the close is not negative"]
    assert not ok
    assert detail == "acme-kw KWD: deferred -20.000 = billed 15.250 - recognized 35.250"
    ok, detail = checks["recognized to date within billed"]
    assert not ok and "invoice INV-7 line 1" in detail


def test_checks_leave_out_what_validation_rejected(db_engine: sa.Engine) -> None:
    # The independent dataset holds broken invoices (a ratable line with a reversed service
    # period and no schedule, among others): with validation's verdicts they are left out.
    build_independent_billing(db_engine)
    state.metadata.create_all(db_engine)
    left_out = find_left_out(db_engine, load_mapping_file(MAPPING))
    checks = revrec_checks(
        db_engine,
        db_engine,
        left_out.ids("revenue_entry"),
        excluded_invoices=left_out.ids("invoice"),
        timezone=ZoneInfo("America/New_York"),
    )
    assert all(c.ok for c in checks), checks
    deferred = next(c for c in checks if c.name.startswith("deferred revenue"))
    # The builder's own figures: deferred at the close of November, at the currency's scale.
    assert "acme-kw KWD 12.345" in deferred.detail and "acme-jp JPY 0," in deferred.detail
    everything = revrec_checks(db_engine, db_engine, timezone=ZoneInfo("America/New_York"))
    assert not all(c.ok for c in everything)  # the broken records, counted, do not add up
