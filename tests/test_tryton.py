"""finsync against a real Tryton ERP (trytond 8.2 on 127.0.0.1, JSON-RPC over HTTP).

Tryton keeps its own books and applies its own rules, so these tests read Tryton's own figures
back (party receivables, account debits and credits per period, moves) and compare them with
figures the test computes itself from billing's rows. Billing and the state store run on SQLite
and on PostgreSQL (``db_url``); Tryton runs on its own SQLite copy per test.
"""

from __future__ import annotations

import base64
import random
import signal
import subprocess
import sys
import time
import tomllib
from collections import Counter
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from billing import schema as b
from billing.generator import seed_billing
from connectors.tryton import TrytonConnector
from core.errors import AuthError, ConfigError
from finsync.config import load_config
from finsync.db import make_engine
from mappings.revrec import JournalKey
from sandbox.tryton import TrytonServer
from sync.engine import Selection, SyncEngine
from sync.migrate import upgrade
from sync.state import ledger
from tests.engine_support import REPO
from tests.tryton_support import (
    Figures,
    TrytonBooks,
    months_between,
    tryton_figures,
    write_setup,
)

ZERO = Decimal(0)
NOW = datetime(2026, 11, 15, 12, 0, tzinfo=UTC)


def engine_for(config: Path) -> SyncEngine:
    engine = SyncEngine(load_config(config), clock=lambda: NOW, actor="test")
    upgrade(engine.state)
    return engine


def seed(db_url: str, *, customers: int, months: int, start: date) -> None:
    billing = make_engine(db_url)
    seed_billing(billing, customers=customers, months=months, seed=42, start=start)
    billing.dispose()


def month_of(day: date) -> date:
    return day.replace(day=1)


def billing_figures(db_url: str, mapping: dict) -> Figures:  # type: ignore[type-arg]
    """The books billing's rows imply, by the test's own arithmetic (see the module doc of
    mappings/tryton.py for what finsync books where)."""
    companies = mapping["tryton"]["companies"]
    gl = mapping["tryton"]["accounts"]
    families = mapping["product_families"]
    revenue_code = {f: gl[a["revenue_account"]] for f, a in families.items()}
    deferred_code = {f: gl[a["deferred_revenue_account"]] for f, a in families.items()}
    out = Figures()
    engine = make_engine(db_url)
    with engine.connect() as conn:
        customers = {r.id: r for r in conn.execute(sa.select(b.customers))}
        products = {r.id: r for r in conn.execute(sa.select(b.products))}
        invoices = {r.id: r for r in conn.execute(sa.select(b.invoices))}
        for inv in invoices.values():
            if inv.status == "void":
                continue
            company = companies[inv.billing_entity]
            account = customers[inv.customer_id].account_number
            out.add(out.receivable, (company, account), inv.total)
            out.add(out.tax, company, inv.tax_total)
        for line in conn.execute(sa.select(b.invoice_lines)):
            inv = invoices[line.invoice_id]
            if inv.status == "void":
                continue
            product = products[line.product_id]
            company = companies[inv.billing_entity]
            if product.revenue_pattern == "ratable":
                key = (company, deferred_code[product.product_family], month_of(inv.issue_date))
                out.add(out.deferred, key, line.amount)
            else:
                key = (company, revenue_code[product.product_family], month_of(inv.issue_date))
                out.add(out.revenue, key, line.amount)
        notes = {r.id: r for r in conn.execute(sa.select(b.credit_notes))}
        for note in notes.values():
            if note.status == "void":
                continue
            company = companies[invoices[note.invoice_id].billing_entity]
            account = customers[note.customer_id].account_number
            out.add(out.receivable, (company, account), -note.total)
            out.add(out.tax, company, -note.tax_total)
        for line in conn.execute(sa.select(b.credit_note_lines)):
            note = notes[line.credit_note_id]
            if note.status == "void":
                continue
            product = products[line.product_id]
            company = companies[invoices[note.invoice_id].billing_entity]
            month = month_of(note.issue_date)
            if product.revenue_pattern == "ratable":
                key = (company, deferred_code[product.product_family], month)
                out.add(out.deferred, key, -line.amount)
            else:
                out.add(
                    out.revenue,
                    (company, revenue_code[product.product_family], month),
                    -line.amount,
                )
        for pay in conn.execute(sa.select(b.payments)):
            if pay.status != "succeeded":
                continue
            customer = customers[pay.customer_id]
            company = companies[customer.billing_entity]
            out.add(out.receivable, (company, customer.account_number), -pay.amount)
            out.add(out.cash_in, company, pay.amount)
        for refund in conn.execute(sa.select(b.refunds)):
            customer = customers[refund.customer_id]
            company = companies[customer.billing_entity]
            out.add(out.receivable, (company, customer.account_number), refund.amount)
            out.add(out.cash_out, company, refund.amount)
        lines = {r.id: r for r in conn.execute(sa.select(b.invoice_lines))}
        for entry in conn.execute(sa.select(b.revenue_schedule_entries)):
            line = lines[entry.invoice_line_id]
            product = products[line.product_id]
            if entry.status != "recognized" or product.revenue_pattern != "ratable":
                continue
            company = companies[invoices[line.invoice_id].billing_entity]
            month = month_of(entry.period)
            out.add(
                out.revenue, (company, revenue_code[product.product_family], month), entry.amount
            )
            out.add(
                out.deferred, (company, deferred_code[product.product_family], month), -entry.amount
            )
    engine.dispose()
    return out.nonzero()


def ledger_statuses(engine: SyncEngine) -> Counter[str]:
    with engine.state.connect() as conn:
        return Counter(r.status for r in conn.execute(sa.select(ledger.c.status)))


def test_books_in_tryton_equal_billing_and_a_second_sync_changes_nothing(
    tmp_path: Path, db_url: str, tryton_server: TrytonServer
) -> None:
    seed(db_url, customers=25, months=2, start=date(2026, 9, 1))
    config = write_setup(tmp_path, db_url, tryton_server)
    mapping = tomllib.loads((tmp_path / "mapping.toml").read_text())
    expected = billing_figures(db_url, mapping)
    assert expected.revenue and expected.deferred and expected.cash_out  # a rich month
    engine = engine_for(config)
    try:
        first = engine.sync()
        assert not first.targets[0].error
        assert ledger_statuses(engine) == Counter({"synced": sum(ledger_statuses(engine).values())})

        books = TrytonBooks(tryton_server)
        months = months_between(date(2025, 1, 1), date(2027, 12, 1))
        figures = tryton_figures(books, mapping, months)
        assert figures.receivable == expected.receivable
        assert figures.revenue == expected.revenue
        assert figures.deferred == expected.deferred
        assert figures.tax == expected.tax
        assert figures.cash_in == expected.cash_in
        assert figures.cash_out == expected.cash_out
        moves = books.moves()
        assert moves and all(m["state"] == "posted" for m in moves)
        assert [m["id"] for m in moves if m["debit"] != m["credit"]] == []
        invoices = books.invoices()
        assert all(i["state"] in ("posted", "paid") for i in invoices)
        references = Counter(i["reference"] for i in invoices)
        assert max(references.values()) == 1

        # Nothing changed in billing: the next sync sends nothing; a forced re-send of
        # everything finds every document by its reference and creates nothing either.
        second = engine.sync()
        assert second.targets[0].pushed.sent == 0
        engine.resync(Selection(targets=("tryton",)), reason="prove idempotency")
        third = engine.sync()
        assert third.targets[0].pushed.sent == sum(ledger_statuses(engine).values())
        assert third.targets[0].pushed.created == 0
        assert len(books.moves()) == len(moves)
        assert len(books.invoices()) == len(invoices)
        assert tryton_figures(books, mapping, months) == figures
        books.close()
    finally:
        engine.close()


def test_tryton_rejections_fail_that_record_with_tryton_message_and_the_rest_syncs(
    tmp_path: Path, db_url: str, tryton_server: TrytonServer
) -> None:
    seed(db_url, customers=12, months=1, start=date(2026, 10, 1))
    example = (REPO / "mapping.example.toml").read_text()

    # An account code that is not in Tryton's chart stops finsync at start, naming the key.
    unknown = example.replace('"4200" = "4.1.2"', '"4200" = "4.9.9"')
    engine = engine_for(write_setup(tmp_path, db_url, tryton_server, mapping_text=unknown))
    with pytest.raises(ConfigError) as stopped:
        engine.check()
    assert "tryton.accounts.4200" in str(stopped.value)
    assert "'4.9.9' does not exist in the chart" in str(stopped.value)
    engine.close()

    # Support revenue mapped to a cash account (it exists, but Tryton refuses it on invoice
    # lines), and acme-uk's October closed in Tryton (company 3): those records fail with
    # Tryton's own words; its October revenue journals follow the closed-period policy, here
    # "fail".
    wrong = example.replace('"4300" = "4.2.2"', '"4300" = "1.1.1"')
    books = TrytonBooks(tryton_server)
    (october,) = books.call(
        "model.account.period.search",
        [("company", "=", 3), ("start_date", "=", date(2026, 10, 1)), ("type", "=", "standard")],
        0,
        None,
        None,
        company=3,
    )
    books.call("model.account.period.close", [october], company=3)
    fail = 'closed_period_policy = "fail"'
    config = write_setup(tmp_path, db_url, tryton_server, mapping_text=wrong, target_extra=fail)
    engine = engine_for(config)
    try:
        engine.sync()
        with engine.state.connect() as conn:
            rows = list(conn.execute(sa.select(ledger)).mappings())
        billing = make_engine(db_url)
        with billing.connect() as conn:
            uk_customers = {
                r.id
                for r in conn.execute(
                    sa.select(b.customers.c.id).where(b.customers.c.billing_entity == "acme-uk")
                )
            }
            support_invoices = {
                r.invoice_id
                for r in conn.execute(
                    sa.select(b.invoice_lines.c.invoice_id)
                    .join(b.products, b.products.c.id == b.invoice_lines.c.product_id)
                    .where(b.products.c.product_family == "support")
                )
            }
            invoices = {r.id: r for r in conn.execute(sa.select(b.invoices))}
            payments = {r.id: r for r in conn.execute(sa.select(b.payments))}
            applied: dict[int, set[int]] = {p: set() for p in payments}
            for app in conn.execute(sa.select(b.payment_applications)):
                applied[app.payment_id].add(app.invoice_id)
        billing.dispose()
        by_kind: dict[str, list[dict]] = {}  # type: ignore[type-arg]
        for row in rows:
            by_kind.setdefault(row["kind"], []).append(dict(row))
        paths: Counter[str] = Counter()
        for row in by_kind["invoice"]:
            inv = invoices[int(row["source_id"])]
            closed = inv.billing_entity == "acme-uk" and inv.status != "void"
            refused = inv.id in support_invoices and inv.status != "void"
            if closed or refused:
                assert row["status"] == "failed", row["label"]
                assert row["last_error"].startswith("tryton ")
                paths["closed" if closed else "refused"] += 1
                if closed and not refused:
                    assert 'reopen the period "2026-10"' in row["last_error"], row["last_error"]
                if refused and not closed:
                    assert 'for field "Account"' in row["last_error"], row["last_error"]
            else:
                paths["synced"] += 1
                assert row["status"] == "synced", (row["label"], row["last_error"])
        assert paths["closed"] and paths["refused"] and paths["synced"], paths
        assert support_invoices
        for row in by_kind["customer"]:
            assert row["status"] == "synced"
        synced_invoices = {r["external_id"] for r in by_kind["invoice"] if r["status"] == "synced"}
        in_tryton = {
            i["reference"]
            for i in books.invoices()
            if i["state"] in ("posted", "paid") and i["reference"].startswith("finsync:inv:")
        }
        assert (
            synced_invoices
            - {
                r["external_id"]
                for r in by_kind["invoice"]
                if invoices[int(r["source_id"])].status == "void"
            }
            == in_tryton
        )
        failed_invoices = {
            int(r["source_id"]) for r in by_kind["invoice"] if r["status"] != "synced"
        }
        for row in by_kind["payment"]:
            pay = payments[int(row["source_id"])]
            blocked = pay.customer_id in uk_customers or applied[pay.id] & failed_invoices
            if pay.status != "succeeded":
                continue  # voided before it was ever sent: nothing to book
            if blocked:
                assert row["status"] != "synced", row["label"]
            else:
                assert row["status"] == "synced", (row["label"], row["last_error"])
        assert uk_customers

        for row in by_kind["revenue"]:
            key = JournalKey.parse(row["source_id"])
            if key.entity == "acme-uk" and key.period == date(2026, 10, 1):
                assert row["status"] == "failed", row["label"]
                assert 'period "2026-10" of Tryton company 3 is closed' in row["last_error"]
                assert 'closed_period_policy = "next_open"' in row["last_error"]
            else:
                assert row["status"] == "synced", (row["label"], row["last_error"])
        closed = [r for r in by_kind["revenue"] if r["status"] == "failed"]
        assert closed

        # With the policy "next_open" (the default) they post on the first day of November.
        engine.close()
        config.write_text(config.read_text().replace(fail, ""))
        engine = engine_for(config)
        engine.resync(
            Selection(targets=("tryton",), ledger_ids=tuple(r["id"] for r in closed)),
            reason="October is closed in Tryton",
        )
        engine.sync()
        with engine.state.connect() as conn:
            statuses = {
                r.id: r.status for r in conn.execute(sa.select(ledger.c.id, ledger.c.status))
            }
        assert {statuses[r["id"]] for r in closed} == {"synced"}
        moved = [
            m
            for m in books.moves()
            if (m["description"] or "").startswith("finsync:je:2026-10:acme-uk:")
        ]
        assert len(moved) == len(closed)
        assert {(m["date"], m["company"], m["state"]) for m in moved} == {
            (date(2026, 11, 1), 3, "posted")
        }
        assert all(m["debit"] == m["credit"] > 0 for m in moved)
        notes = books.search_read(
            "account.move.line", [("move", "in", [m["id"] for m in moved])], ["description"]
        )
        assert {
            n["description"].endswith("(period 2026-10 is closed; posted in 2026-11)")
            for n in notes
        } == {True}

        # An expired session is renewed with one new login; a refused login is an AuthError.
        connector = engine.connector("tryton")
        assert isinstance(connector, TrytonConnector)
        stale = base64.b64encode(b"admin:1:expired-token").decode()
        connector.rpc._session = stale
        parties = connector.rpc.call("model.party.party.search_count", [])
        assert parties == len(by_kind["customer"]) + 5  # the five companies' own parties
        assert connector.rpc._session not in (None, stale)
    finally:
        books.close()
        engine.close()
    (tmp_path / "tryton.password").write_text("not-the-password")
    refused = engine_for(tmp_path / "finsync.toml")
    with pytest.raises(AuthError) as denied:
        refused.check()
    assert "login refused for user 'admin'" in str(denied.value)
    assert "not-the-password" not in str(denied.value)
    refused.close()


def test_sigkill_mid_push_then_sync_leaves_each_document_once_in_tryton(
    tmp_path: Path, db_url: str, tryton_server: TrytonServer
) -> None:
    seed(db_url, customers=12, months=2, start=date(2026, 9, 1))
    config = write_setup(
        tmp_path,
        db_url,
        tryton_server,
        sync_extra="lease_seconds = 1\nmax_attempts = 50",
    )
    engine_for(config).close()  # migrates the state store
    section = config.read_text().replace('system = "tryton"', 'system = "tryton"\nbatch_size = 3')
    config.write_text(section)
    rng = random.Random(20261201)
    killed = 0
    for _ in range(5):
        process = subprocess.Popen(
            [sys.executable, "-m", "finsync", "--config", str(config), "sync"],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(1.5, 4.0))  # start-up ~1 s, then batches of 3 documents
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            killed += 1
        process.wait(timeout=60)
    assert killed >= 3
    for _ in range(5):
        time.sleep(1.2)  # a killed worker's lease runs out after 1 s
        done = subprocess.run(
            [sys.executable, "-m", "finsync", "--config", str(config), "sync"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=600,
        )
        engine = engine_for(config)
        with engine.state.connect() as conn:
            rows = list(conn.execute(sa.select(ledger)).mappings())
        engine.close()
        if all(r["status"] in ("synced", "failed") for r in rows):
            break
    # Tryton numbers invoices in date order: a batch held by a killed worker can come after
    # later-dated invoices, and Tryton then refuses to post it. That record fails with Tryton's
    # message (its draft stays in Tryton, once); whatever depends on it waits. Nothing else.
    numbering = "because the sequence"
    failed = {r["external_id"] for r in rows if r["status"] == "failed"}
    for row in rows:
        if row["status"] == "failed":
            assert numbering in row["last_error"], (row["label"], row["last_error"])
        elif row["status"] != "synced":
            assert row["status"] == "pending" and "to sync first" in row["last_error"], row
        assert row["status"] in ("synced", "failed", "pending"), (done.stdout, done.stderr)
    books = TrytonBooks(tryton_server)
    invoices = Counter(i["reference"] for i in books.invoices())
    moves = Counter(  # finsync's own moves (invoice moves are Tryton's, one per invoice)
        m["description"] for m in books.moves() if (m["description"] or "").startswith("finsync:")
    )
    parties = Counter(r["code"] for r in books.search_read("party.identifier", [], ["code"]))
    books.close()
    assert [ref for ref, n in invoices.items() if n > 1] == []
    assert [d for d, n in moves.items() if n > 1] == []
    assert [c for c, n in parties.items() if n > 1] == []
    billing = make_engine(db_url)
    with billing.connect() as conn:
        live_invoices = conn.execute(
            sa.select(sa.func.count()).select_from(b.invoices).where(b.invoices.c.status != "void")
        ).scalar_one()
        customers = conn.execute(sa.select(sa.func.count()).select_from(b.customers)).scalar_one()
    billing.dispose()
    assert sum(1 for ref in invoices if ref.startswith("finsync:inv:")) == live_invoices
    assert len(parties) == customers
    if not failed:  # no reordering happened: the books tie exactly
        mapping = tomllib.loads((tmp_path / "mapping.toml").read_text())
        expected = billing_figures(db_url, mapping)
        books = TrytonBooks(tryton_server)
        figures = tryton_figures(
            books, mapping, months_between(date(2026, 1, 1), date(2026, 12, 1))
        )
        books.close()
        assert figures.receivable == expected.receivable
        assert figures.revenue == expected.revenue
