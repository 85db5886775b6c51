"""The report's figures against totals the test computes itself from the billing tables."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime
from decimal import Decimal as D
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from billing import schema as b
from core.errors import ConfigError
from reports import build_monthly_report
from reports import monthly as m
from reports.workbook import ReportResult
from tests.report_seed import INJECTIONS, PERIOD, seed_billing, seed_ledger

START, END = date(2026, 10, 1), date(2026, 10, 31)
TZ = ZoneInfo("Europe/Berlin")


@pytest.fixture
def seeded(db_engine: sa.Engine) -> sa.Engine:
    seed_billing(db_engine)
    seed_ledger(db_engine)
    return db_engine


def _report(engine: sa.Engine, out: Path, entity: str | None = None) -> ReportResult:
    return build_monthly_report(
        engine, engine, period=PERIOD, entity=entity, out_dir=out, timezone=TZ
    )


def _all(engine: sa.Engine, table: sa.Table) -> list[sa.Row]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(table)))


def _void_day(r: sa.Row) -> date | None:
    return r.voided_at.astimezone(TZ).date() if r.voided_at is not None else None


def _expected_totals(engine: sa.Engine) -> dict[str, dict[str, D]]:
    """Per currency totals straight from the tables, with docs/accounting.md's rules."""
    out: dict[str, dict[str, D]] = defaultdict(lambda: defaultdict(D))
    invoices = {r.id: r for r in _all(engine, b.invoices)}
    for r in invoices.values():
        voided = _void_day(r)
        if START <= r.issue_date <= END and not (voided and voided <= END):
            out[r.currency]["invoiced"] += r.total
            out[r.currency]["tax"] += r.tax_total
        if r.issue_date < START and voided and START <= voided <= END:
            out[r.currency]["voided"] += r.total
    for r in _all(engine, b.credit_notes):
        if START <= r.issue_date <= END and r.status == "issued":
            out[r.currency]["credited"] += r.total
    for r in _all(engine, b.payments):
        if START <= r.received_on <= END and r.status == "succeeded":
            out[r.currency]["collected"] += r.amount
    for r in _all(engine, b.refunds):
        if START <= r.refunded_on <= END:
            out[r.currency]["refunded"] += r.amount
    lines = {r.id: r for r in _all(engine, b.invoice_lines)}
    for r in _all(engine, b.revenue_schedule_entries):
        inv = invoices[lines[r.invoice_line_id].invoice_id]
        if r.period == START:
            out[inv.currency]["recognized"] += r.amount
    return out


def test_summary_totals_match_the_billing_tables(seeded: sa.Engine, tmp_path: Path) -> None:
    result = _report(seeded, tmp_path)
    expected = _expected_totals(seeded)
    got = {t.currency: t for t in result.totals}
    assert {c for c in expected} <= set(got)
    names = ("invoiced", "tax", "voided", "credited", "collected", "refunded", "recognized")
    for cur, figures in expected.items():
        for name in names:
            assert getattr(got[cur], name) == figures[name], (cur, name)
    # The same numbers, written out by hand, so a wrong rule in both places still fails.
    usd, jpy = got["USD"], got["JPY"]
    assert [getattr(usd, n) for n in names] == [
        D("1958.13"),
        D("158.13"),
        D("600.00"),  # INV-9, issued in September, voided on 3 October
        D("120.00"),
        D("300.00"),
        D("50.00"),
        D("730.00"),  # 800.00 less INV-9's reversal of September's 50.00, less CN-1's 20.00
    ]
    assert usd.net_collected == D("250.00")
    assert [getattr(jpy, n) for n in names] == [
        D("32780"),
        D("2980"),
        D(0),
        D("5000"),
        D("10000"),
        D("3000"),
        D("4934"),  # 9,934 of INV-5, less CN-4's 5,000 on INV-8's onboarding
    ]
    assert (usd.open_receivable, usd.credit_balance) == (D("2238.13"), D("250.00"))
    assert (jpy.open_receivable, jpy.credit_balance) == (D("22780"), D("2000"))
    assert result.rows == {"invoices": 5, "credit notes": 4, "payments": 3, "refunds": 2}
    assert result.exceptions == 3
    assert result.path.name == "finsync-monthly-2026-10.xlsx"
    assert all(isinstance(t.invoiced, D) for t in result.totals)


def test_deferred_roll_forward_ties_to_the_schedule(seeded: sa.Engine) -> None:
    figures = m.build_figures(
        seeded, seeded, period=m.parse_period(PERIOD), entity=None, timezone=TZ
    )
    invoices = {r.id: r for r in _all(seeded, b.invoices)}
    lines = {r.id: r for r in _all(seeded, b.invoice_lines)}
    products = {r.id: r for r in _all(seeded, b.products)}
    future: dict[str, D] = defaultdict(D)
    for r in _all(seeded, b.revenue_schedule_entries):
        line = lines[r.invoice_line_id]
        inv = invoices[line.invoice_id]
        ratable = products[line.product_id].revenue_pattern == "ratable"
        if r.period > START and inv.issue_date <= END and ratable:
            future[inv.currency] += r.amount
    for rf in figures.roll_forward:
        assert rf.closing == rf.opening + rf.billed - rf.credited - rf.voided - rf.recognized
    closing = figures.deferred_closing()
    assert closing["USD"] == future["USD"] == D("1300.00")
    assert closing["JPY"] == future["JPY"] == D("19866")
    assert figures.later_reductions == {"JPY": D(0), "KWD": D(0), "USD": D(0)}
    usd = next(rf for rf in figures.roll_forward if rf.currency == "USD")
    # Opening: INV-2's 600 billed in August less 200 recognized, INV-9's 600 less September's
    # 50. INV-9 is voided in October; its reversals net October's recognized to -50.
    assert (usd.opening, usd.billed, usd.credited, usd.voided, usd.recognized) == (
        D("950.00"),
        D("1200.00"),
        D("100.00"),
        D("600.00"),
        D("150.00"),
    )
    # The waterfall holds the same future amounts, month by month.
    assert sum(figures.waterfall["USD"], D(0)) == D("1300.00")
    assert figures.waterfall["USD"][:3] == (D("200.00"), D("200.00"), D("100.00"))
    assert figures.waterfall_months[0] == date(2026, 11, 1)
    assert figures.waterfall["JPY"][:2] == (D("9933"), D("9933"))


def test_credits_and_voids_after_the_period_end_reconcile_the_waterfall(
    seeded: sa.Engine,
) -> None:
    # INV-1 is voided on 2 November: October still counts it; November's entries reverse it.
    with seeded.begin() as conn:
        conn.execute(
            b.invoices.update()
            .where(b.invoices.c.id == 1)
            .values(status="void", voided_at=datetime(2026, 11, 2, 9, tzinfo=UTC))
        )
        conn.execute(
            b.revenue_schedule_entries.insert(),
            [
                {
                    "id": 900 + k,
                    "invoice_line_id": 11,
                    "period": date(2026 + (10 + k) // 12, (10 + k) % 12 + 1, 1),
                    "amount": D("-100.00") - (D("100.00") if k == 0 else D(0)),
                    "status": "scheduled",
                    "updated_at": datetime(2026, 11, 2, 9, tzinfo=UTC),
                }
                for k in range(11)
            ],
        )
    figures = m.build_figures(
        seeded, seeded, period=m.parse_period(PERIOD), entity=None, timezone=TZ
    )
    # Closing at 31 October is unchanged; the schedule now holds 1,200.00 less.
    assert figures.deferred_closing()["USD"] == D("1300.00")
    assert sum(figures.waterfall["USD"], D(0)) == D("100.00")
    assert figures.later_reductions["USD"] == D("1200.00")
    aging = {(a.customer_account, a.currency): a.buckets for a in figures.aging}
    assert aging[("C-001", "USD")]["current"] == D("1850.88")


def test_ar_aging_buckets_for_known_due_dates(seeded: sa.Engine) -> None:
    figures = m.build_figures(
        seeded, seeded, period=m.parse_period(PERIOD), entity=None, timezone=TZ
    )
    aging = {(a.customer_account, a.currency): a.buckets for a in figures.aging}
    z = D(0)
    # INV-1 due Nov 4: current. INV-2 due Aug 31 (61 days): 600 - 200 paid - 100 credited; the
    # 100 applied on Nov 5 and the failed payment do not count. INV-4 is void.
    assert aging[("C-001", "USD")] == {
        "current": D("1850.88"),
        "1-30": z,
        "31-60": z,
        "61-90": D("300.00"),
        "90+": z,
    }
    # INV-3 due Oct 25 (6 days): 107.25 - 20.00 credit note.
    assert aging[(INJECTIONS[1], "USD")]["1-30"] == D("87.25")
    # INV-5 due Oct 31: current, less the 10,000 applied on Oct 20.
    assert aging[("C-002", "JPY")]["current"] == D("22780")
    # INV-6 due Sep 30 (31 days) and INV-7 due May 31 (153 days).
    assert aging[("C-003", "KWD")] == {
        "current": z,
        "1-30": z,
        "31-60": D("460.000"),
        "61-90": z,
        "90+": D("15.250"),
    }
    assert len(aging) == 4
    # Aging holds only what is owed: INV-8 (JPY) is credited beyond what is left to pay.
    assert all(v >= 0 for buckets in aging.values() for v in buckets.values())
    credit = {(c.customer_account, c.currency): c for c in figures.credit_balances}
    assert set(credit) == {("C-001", "USD"), ("C-002", "JPY")}
    # PAY-2's 300.00 is unapplied on Oct 31 (applied Nov 5); RF-1 paid 50.00 of it back.
    usd = credit[("C-001", "USD")]
    assert (usd.unapplied_cash, usd.over_credit, usd.refunded, usd.balance) == (
        D("300.00"),
        D(0),
        D("50.00"),
        D("250.00"),
    )
    # INV-8: 8,000 paid, then CN-4 credits 5,000 of it; RF-2 pays out 3,000.
    jpy = credit[("C-002", "JPY")]
    assert (jpy.over_credit, jpy.refunded, jpy.balance) == (D("5000"), D("3000"), D("2000"))


def test_invoice_voided_after_period_end_was_still_open(seeded: sa.Engine) -> None:
    with seeded.begin() as conn:
        conn.execute(
            b.invoices.update()
            .where(b.invoices.c.id == 4)
            .values(voided_at=datetime(2026, 11, 3, 10, tzinfo=UTC))
        )
    figures = m.build_figures(
        seeded, seeded, period=m.parse_period(PERIOD), entity=None, timezone=TZ
    )
    aging = {(a.customer_account, a.currency): a.buckets for a in figures.aging}
    # INV-4 (999.00, due Nov 9) was open on Oct 31 even though it is void today.
    assert aging[("C-001", "USD")]["current"] == D("1850.88") + D("999.00")


def test_document_rows_carry_ledger_state(seeded: sa.Engine) -> None:
    per = m.parse_period(PERIOD)
    tally = m.Tally("invoice")
    voids = m.Tally("invoice_void")
    rows = {
        r.number: r
        for r in m.invoice_rows(
            seeded, seeded, per, None, "netsuite", tally, voids=voids, timezone=TZ
        )
    }
    assert (rows["INV-1"].erp_id, rows["INV-1"].sync_status) == ("NS-101", "synced")
    assert (rows["INV-3"].erp_id, rows["INV-3"].sync_status) == (None, "failed")
    assert rows["INV-4"].sync_status == "not in ledger"
    assert set(rows) == {"INV-1", "INV-3", "INV-4", "INV-5", "INV-9"}
    assert (rows["INV-4"].counted_as, rows["INV-9"].counted_as) == ("void in its month", "voided")
    assert rows["INV-9"].voided_on == date(2026, 10, 3)
    assert tally.by_currency["USD"].count == 2  # the void one is listed, not counted
    assert tally.by_currency["USD"].synced_amount == D("1850.88")
    assert (voids.by_currency["USD"].amount, voids.by_currency["USD"].synced_count) == (
        D("600.00"),
        1,
    )
    ptally = m.Tally("payment")
    pays = {p.reference: p for p in m.payment_rows(seeded, seeded, per, None, "netsuite", ptally)}
    assert (pays["PAY-2"].applied, pays["PAY-2"].unapplied, pays["PAY-2"].fee) == (
        D("100.00"),
        D("200.00"),
        D("8.70"),
    )
    assert pays["PAY-2"].sync_status == "retry"
    assert ptally.by_currency["USD"].amount == D("300.00")


def test_exceptions_list_every_failed_dead_and_retry_row(seeded: sa.Engine) -> None:
    rows = list(m.exception_rows(seeded))
    assert sorted((r.label, r.status) for r in rows) == [
        ("credit note CN-1", "dead"),
        ("invoice INV-3", "failed"),
        ("payment PAY-2", "retry"),
    ]
    failed = next(r for r in rows if r.status == "failed")
    assert INJECTIONS[1] in failed.error and "mapping file" in failed.action


def test_entity_filter_keeps_one_entity(seeded: sa.Engine, tmp_path: Path) -> None:
    result = _report(seeded, tmp_path, entity="acme-jp")
    assert result.path.name == "finsync-monthly-2026-10-acme-jp.xlsx"
    assert [t.currency for t in result.totals] == ["JPY"]
    assert result.totals[0].invoiced == D("32780")
    assert result.rows == {"invoices": 1, "credit notes": 1, "payments": 1, "refunds": 1}


def test_bad_period_names_the_setting() -> None:
    with pytest.raises(ConfigError) as err:
        m.parse_period("2026-13")
    assert err.value.key == "period"
    assert m.parse_period("2024-02").end == date(2024, 2, 29)
