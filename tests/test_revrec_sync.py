"""Revenue journals end to end: seeded billing -> sync -> the NetSuite sandbox's general ledger.

Runs on SQLite and PostgreSQL (billing and state in the same database), over SOAP.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import pytest
import sqlalchemy as sa

from billing import schema as b
from billing.generator import seed_billing
from finsync.config import load_config
from finsync.db import make_engine
from mappings.tables import load_mapping_file
from sandbox.netsuite import NetSuiteSandbox
from sync.engine import Selection, SyncEngine
from sync.migrate import upgrade
from sync.revrec import recognized_totals
from sync.revrec_checks import revrec_checks
from sync.state import ledger
from tests.engine_support import REPO, Clock
from tests.netsuite_sandbox_helpers import soap

D = Decimal
START = date(2026, 1, 1)  # six months seeded: 2026-01 .. 2026-06 are recognized


@pytest.fixture
def sandbox():
    with NetSuiteSandbox().start() as sb:
        yield sb


def build(tmp_path, db_url, sb, *, policy: str | None = None, now=None) -> SyncEngine:
    policy_line = f'closed_period_policy = "{policy}"' if policy else ""
    config = tmp_path / "finsync.toml"
    config.write_text(f"""
[billing]
url = "{db_url}"

[state]
url = "{db_url}"

[mapping]
file = "{REPO / "mapping.example.toml"}"

[company]
timezone = "America/Los_Angeles"

[targets.ns]
system = "netsuite"
{policy_line}
""")
    clock = Clock(now or datetime(2026, 7, 6, 16, 0, tzinfo=UTC))
    loaded = load_config(config)
    engine = SyncEngine(
        loaded,
        billing=make_engine(loaded.billing_url),  # the test writes billing; finsync only reads
        clock=clock,
        actor="test",
        connectors={"ns": soap(sb)},
    )
    upgrade(engine.state)
    seed_billing(engine.billing, customers=4, months=6, seed=11, start=START)
    return engine


def expected_gl(engine: SyncEngine) -> dict[tuple[str, str], Decimal]:
    """Debit - credit per (period, account) as billing's schedules say, computed here."""
    t = load_mapping_file(REPO / "mapping.example.toml")
    rse, li, p = b.revenue_schedule_entries, b.invoice_lines, b.products
    query = (
        sa.select(rse.c.period, p.c.product_family, rse.c.amount)
        .select_from(
            rse.join(li, li.c.id == rse.c.invoice_line_id).join(p, p.c.id == li.c.product_id)
        )
        .where(rse.c.status == "recognized", p.c.revenue_pattern == "ratable")
    )
    out: dict[tuple[str, str], Decimal] = {}
    with engine.billing.connect() as conn:
        for period, family, amount in conn.execute(query):
            accounts = t.product_families[family]
            for account, sign in (
                (accounts.deferred_revenue_account, 1),
                (accounts.revenue_account, -1),
            ):
                key = (f"{period:%Y-%m}", account)
                out[key] = out.get(key, D(0)) + sign * amount
    return {k: v for k, v in out.items() if v}


def nonzero(balances):
    return {k: v for k, v in balances.items() if v}


def ledger_rows(engine: SyncEngine) -> dict[str, dict]:
    with engine.state.connect() as conn:
        rows = conn.execute(sa.select(ledger).where(ledger.c.kind == "revenue")).mappings()
        return {r["source_id"]: dict(r) for r in rows}


def test_general_ledger_matches_billing_schedules_after_a_full_sync(tmp_path, db_url, sandbox):
    engine = build(tmp_path, db_url, sandbox)
    try:
        summary = engine.sync()
        assert summary.ok
        expected = expected_gl(engine)
        assert expected  # the seed recognizes ratable revenue
        assert nonzero(sandbox.gl_balances()) == expected
        rows = ledger_rows(engine)
        assert {r["status"] for r in rows.values()} == {"synced"}
        assert len(rows) == sandbox.count("journalEntry")
        assert all(s.count(":") == 2 for s in rows)  # no adjustments on a first sync
        for journal in sandbox.records("journalEntry"):
            debits = sum((li.get("debit", D(0)) for li in journal["lineList"]), D(0))
            credits = sum((li.get("credit", D(0)) for li in journal["lineList"]), D(0))
            assert debits == credits
        checks = {c.name: c for c in revrec_checks(engine.billing, engine.state)}
        assert all(c.ok for c in checks.values()), checks

        # a second sync with nothing changed sends nothing
        again = engine.sync()
        ns = again.targets[0]
        assert (ns.extracted.new, ns.extracted.changed, ns.pushed.sent) == (0, 0, 0)

        # an accountant re-syncs one journal: sent again as an update, the ledger is unchanged
        resync = engine.resync(
            Selection(kinds=("revenue",), numbers=("finsync:je:2026-02:acme-us:USD",)), reason="x"
        )
        assert [(i.label, i.outcome) for i in resync.items] == [
            ("revenue journal 2026-02 acme-us USD", "queued")
        ]
        pushed = engine.push("ns")
        assert (pushed.sent, pushed.updated) == (1, 1)
        assert sandbox.count("journalEntry") == len(rows)
        assert nonzero(sandbox.gl_balances()) == expected
    finally:
        engine.close()


def test_closed_period_with_next_open_lands_in_the_next_open_period(tmp_path, db_url, sandbox):
    engine = build(tmp_path, db_url, sandbox, policy="next_open")
    try:
        sandbox.close_period(date(2026, 3, 15))
        assert engine.sync().ok
        expected = expected_gl(engine)
        moved: dict[tuple[str, str], Decimal] = {}
        for (period, account), amount in expected.items():
            key = ("2026-04" if period == "2026-03" else period, account)
            moved[key] = moved.get(key, D(0)) + amount
        assert nonzero(sandbox.gl_balances()) == nonzero(moved)
        march = sandbox.get("journalEntry", "finsync:je:2026-03:acme-us:USD")
        assert march is not None
        assert "2026-03 is closed; posted in Apr 2026" in march["memo"]
        assert march["tranDate"] == date(2026, 3, 31)
    finally:
        engine.close()


def test_closed_period_with_fail_quarantines_the_journal(tmp_path, db_url, sandbox):
    engine = build(tmp_path, db_url, sandbox, policy="fail")
    try:
        sandbox.close_period(date(2026, 3, 1))
        summary = engine.sync()
        rows = ledger_rows(engine)
        march = {s: r for s, r in rows.items() if s.startswith("2026-03:")}
        assert march and {r["status"] for r in march.values()} == {"failed"}
        for row in march.values():
            assert "accounting period Mar 2026 is closed in NetSuite" in row["last_error"]
            assert 'closed_period_policy = "next_open"' in row["last_error"]
        others = [r["status"] for s, r in rows.items() if not s.startswith("2026-03:")]
        assert others and set(others) == {"synced"}
        assert summary.targets[0].extracted.failed == len(march)
        assert not any(p == "2026-03" for p, _ in nonzero(sandbox.gl_balances()))
        posted = {c.name: c for c in revrec_checks(engine.billing, engine.state)}
        assert not posted["posted revenue = recognized revenue"].ok
        retry = engine.resync(
            Selection(kinds=("revenue",), statuses=("failed",)), reason="period still closed"
        )
        assert {i.outcome for i in retry.items} == {"mapping failed"}
        assert all("Mar 2026 is closed" in (i.message or "") for i in retry.items)

        # once the period is reopened, the next sync posts it
        sandbox.open_period(date(2026, 3, 1))
        assert engine.sync().ok
        assert {r["status"] for r in ledger_rows(engine).values()} == {"synced"}
        assert nonzero(sandbox.gl_balances()) == expected_gl(engine)
    finally:
        engine.close()


def test_edit_after_posting_and_close_posts_an_adjustment_in_the_open_period(
    tmp_path, db_url, sandbox
):
    engine = build(tmp_path, db_url, sandbox)
    try:
        assert engine.sync().ok
        february_before = nonzero(sandbox.gl_balances("2026-02"))
        sandbox.close_period(date(2026, 2, 1))
        rse = b.revenue_schedule_entries
        with engine.billing.begin() as conn:
            # billing revises one USD line: 5.00 more, all recognized in February (the line,
            # its invoice and its schedule change together, as the billing contract requires)
            entry_id, amount, line_id, invoice_id = conn.execute(
                sa.select(rse.c.id, rse.c.amount, rse.c.invoice_line_id, b.invoices.c.id)
                .select_from(
                    rse.join(b.invoice_lines, b.invoice_lines.c.id == rse.c.invoice_line_id)
                    .join(b.invoices, b.invoices.c.id == b.invoice_lines.c.invoice_id)
                    .join(b.products, b.products.c.id == b.invoice_lines.c.product_id)
                )
                .where(
                    rse.c.period == date(2026, 2, 1),
                    rse.c.status == "recognized",
                    b.products.c.revenue_pattern == "ratable",
                    b.invoices.c.currency == "USD",
                )
                .order_by(rse.c.id)
                .limit(1)
            ).one()
            conn.execute(
                rse.update()
                .where(rse.c.id == entry_id)
                .values(amount=amount + D("5.00"), updated_at=datetime(2026, 7, 10, tzinfo=UTC))
            )
            li, inv = b.invoice_lines, b.invoices
            net, rate, tax = conn.execute(
                sa.select(li.c.amount, li.c.tax_rate, li.c.tax_amount).where(li.c.id == line_id)
            ).one()
            new_tax = ((net + D("5.00")) * rate).quantize(D("0.01"), rounding=ROUND_HALF_UP)
            conn.execute(
                li.update()
                .where(li.c.id == line_id)
                .values(
                    amount=net + D("5.00"),
                    unit_price=(li.c.amount + D("5.00") + li.c.discount) / li.c.quantity,
                    tax_amount=new_tax,
                )
            )
            invoice = conn.execute(sa.select(inv).where(inv.c.id == invoice_id)).one()
            conn.execute(
                inv.update()
                .where(inv.c.id == invoice_id)
                .values(
                    subtotal=invoice.subtotal + D("5.00"),
                    tax_total=invoice.tax_total + new_tax - tax,
                    total=invoice.total + D("5.00") + new_tax - tax,
                )
            )
        february_journal = sandbox.get("journalEntry", "finsync:je:2026-02:acme-us:USD")
        engine.clock.now = datetime(2026, 7, 10, 16, 0, tzinfo=UTC)

        summary = engine.sync()

        assert summary.ok
        rows = ledger_rows(engine)
        adjustment = rows["2026-02:acme-us:USD:adj:2026-07"]
        assert adjustment["status"] == "synced"
        # the closed February entry is untouched in NetSuite and in its period
        assert sandbox.get("journalEntry", "finsync:je:2026-02:acme-us:USD") == february_journal
        assert nonzero(sandbox.gl_balances("2026-02")) == february_before
        # the difference is in July, the open period
        expected = expected_gl(engine)
        july = nonzero(sandbox.gl_balances("2026-07"))
        assert july == {("2026-07", "2500"): D("5.00"), ("2026-07", "4000"): D("-5.00")} or (
            july == {("2026-07", "2530"): D("5.00"), ("2026-07", "4300"): D("-5.00")}
        )
        # over all periods, the ledger holds what billing recognized
        totals: dict[str, Decimal] = {}
        for (_, account), amount in sandbox.gl_balances().items():
            totals[account] = totals.get(account, D(0)) + amount
        want: dict[str, Decimal] = {}
        for (_, account), amount in expected.items():
            want[account] = want.get(account, D(0)) + amount
        assert nonzero(totals) == nonzero(want)
        payload = json.loads(adjustment["payload"])
        assert payload["memo"] == "Adjustment in 2026-07 of revenue recognition 2026-02 acme-us USD"
        checks = {c.name: c for c in revrec_checks(engine.billing, engine.state)}
        assert checks["posted revenue = recognized revenue"].ok
        assert checks["journal entries balance"].ok
    finally:
        engine.close()


def test_recognized_totals_are_exact_and_narrow_to_periods(db_engine):
    seed_billing(db_engine, customers=6, months=4, seed=5, start=date(2027, 1, 1))
    with db_engine.connect() as conn:
        everything = recognized_totals(conn)
        february = recognized_totals(conn, {date(2027, 2, 1)})
        rows = conn.execute(
            sa.select(b.revenue_schedule_entries.c.amount, b.invoices.c.currency)
            .select_from(
                b.revenue_schedule_entries.join(
                    b.invoice_lines,
                    b.invoice_lines.c.id == b.revenue_schedule_entries.c.invoice_line_id,
                )
                .join(b.invoices, b.invoices.c.id == b.invoice_lines.c.invoice_id)
                .join(b.products, b.products.c.id == b.invoice_lines.c.product_id)
            )
            .where(
                b.revenue_schedule_entries.c.status == "recognized",
                b.products.c.revenue_pattern == "ratable",
            )
        ).all()
    by_currency: dict[str, Decimal] = {}
    for amount, currency in rows:
        by_currency[currency] = by_currency.get(currency, D(0)) + amount
    summed: dict[str, Decimal] = {}
    for total in everything:
        assert isinstance(total.amount, Decimal)
        summed[total.key.currency] = summed.get(total.key.currency, D(0)) + total.amount
    assert summed == by_currency
    assert february == [t for t in everything if t.key.period == date(2027, 2, 1)]
    assert february


def test_company_timezone_decides_the_adjustment_month(tmp_path, db_url, sandbox):
    # 2026-08-01 03:00 UTC is still July 31 in Los Angeles: the adjustment belongs to July.
    engine = build(tmp_path, db_url, sandbox, now=datetime(2026, 7, 20, tzinfo=UTC))
    try:
        assert engine.sync().ok
        sandbox.close_period(date(2026, 1, 1))
        rse = b.revenue_schedule_entries
        at = datetime(2026, 7, 31, 20, 0, tzinfo=UTC)
        with engine.billing.begin() as conn:
            entry_id, amount = conn.execute(
                sa.select(rse.c.id, rse.c.amount)
                .select_from(
                    rse.join(b.invoice_lines, b.invoice_lines.c.id == rse.c.invoice_line_id)
                    .join(b.invoices, b.invoices.c.id == b.invoice_lines.c.invoice_id)
                    .join(b.products, b.products.c.id == b.invoice_lines.c.product_id)
                )
                .where(
                    rse.c.period == date(2026, 1, 1),
                    rse.c.status == "recognized",
                    b.products.c.revenue_pattern == "ratable",
                    b.invoices.c.billing_entity == "acme-us",
                )
                .order_by(rse.c.id)
                .limit(1)
            ).one()
            conn.execute(
                rse.update().where(rse.c.id == entry_id).values(amount=amount + 1, updated_at=at)
            )
        engine.clock.now = datetime(2026, 8, 1, 3, 0, tzinfo=UTC) + timedelta(minutes=1)
        assert engine.sync().ok
        adjustments = [s for s in ledger_rows(engine) if ":adj:" in s]
        assert adjustments == ["2026-01:acme-us:USD:adj:2026-07"]
    finally:
        engine.close()
