"""Record pages in finance terms, search by customer name or number, sorting and CSV export
(SQLite and PostgreSQL). Expected figures come from the seeded billing, not from finsync."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from api.app import create_app
from billing import schema as billing_schema
from sync.engine import SyncEngine
from tests.console_support import (
    Seeded,
    console_setup,
    keys_for_roles,
    make_console_engine,
    seed_ledger,
)
from tests.engine_support import Clock


@dataclass
class Env:
    client: TestClient
    engine: SyncEngine
    seeded: Seeded
    viewer: dict[str, str]


@pytest.fixture
def env(tmp_path, db_url) -> Iterator[Env]:
    setup = console_setup(tmp_path, db_url)
    clock = Clock()
    engine = make_console_engine(setup, clock)
    seeded = seed_ledger(engine)
    keys = keys_for_roles(engine, clock)
    app = create_app(setup.config(), engine=engine, clock=clock)
    with TestClient(app) as client:
        yield Env(client, engine, seeded, {"Authorization": f"Bearer {keys['viewer']}"})
    engine.close()


def _customer_name(env: Env, account: str) -> str:
    c = billing_schema.customers
    with env.engine.billing.connect() as conn:
        return str(
            conn.execute(sa.select(c.c.name).where(c.c.account_number == account)).scalar_one()
        )


def test_record_page_speaks_in_finance_terms(env):
    inv2 = env.seeded.ids["invoice INV-2"]
    # One default line: 1 x 100.00, tax 7.25% -> 107.25 USD.
    total = Decimal("100.00") + (Decimal("100.00") * Decimal("0.0725")).quantize(Decimal("0.01"))
    detail = env.client.get(f"/api/records/{inv2}", headers=env.viewer).json()
    name = _customer_name(env, "ACME-1")
    assert detail["finance"]["customer_name"] == name
    assert detail["finance"]["customer_account"] == "ACME-1"
    assert Decimal(detail["finance"]["amount"]) == total
    assert detail["finance"]["amount_text"] == f"{total:,.2f} USD"

    env.seeded.billing.set_line_amount(int(detail["source_id"]), 1, "2250.00")
    changed = env.client.get(f"/api/records/{inv2}", headers=env.viewer).json()
    by_label = {c["label"]: (c["old_text"], c["new_text"]) for c in changed["current"]["changes"]}
    assert by_label["line 1 · amount"] == ("100.00 USD", "2,250.00 USD")
    # 163.125: half a cent rounds up, as money does.
    new_tax = (Decimal("2250.00") * Decimal("0.0725")).quantize(Decimal("0.01"), ROUND_HALF_UP)
    assert by_label["line 1 · tax"] == ("7.25 USD", f"{new_tax:,.2f} USD")

    page = env.client.get(f"/records/{inv2}", headers=env.viewer).text
    facts = page[page.index('id="facts"') : page.index("</dl>")]
    assert name in facts and "(ACME-1)" in facts
    assert f"{Decimal('2250.00') + new_tax:,.2f} USD" in facts  # billing's amount now
    assert "line 1 · amount" in page and "2,250.00 USD" in page
    timeline = page[page.index('id="timeline"') :]
    assert timeline.index("enqueued") < timeline.index("synced")
    assert f'href="/runs/{env.seeded.run_id}"' in timeline


def test_search_by_customer_name_or_document_number(env):
    customer = env.seeded.billing.customer("UMB-7", name="Umbrella Holdings GmbH")
    env.seeded.billing.invoice(customer, number="INV-700")
    env.seeded.billing.invoice(customer, number="INV-701")
    env.engine.sync()
    found = env.client.get("/api/records", params={"q": "umbrella HOLD"}, headers=env.viewer)
    labels = sorted(r["label"] for r in found.json()["items"])
    assert labels == ["customer UMB-7", "invoice INV-700", "invoice INV-701"]
    page = env.client.get(
        "/failures", params={"status": "all", "q": "Umbrella"}, headers=env.viewer
    ).text
    assert ">invoice INV-700</a>" in page and ">invoice INV-40</a>" not in page
    page = env.client.get("/failures", params={"status": "all", "q": "INV-40"}, headers=env.viewer)
    assert ">invoice INV-40</a>" in page.text and ">invoice INV-3</a>" not in page.text


def test_sorting_and_csv_export_of_the_filtered_list(env):
    listed = env.client.get(
        "/api/records", params={"kind": "invoice", "sort": "-record"}, headers=env.viewer
    ).json()
    labels = [r["label"] for r in listed["items"]]
    assert labels == sorted(labels, reverse=True) and len(labels) == 4
    page = env.client.get("/failures?status=all&sort=date", headers=env.viewer).text
    assert "sort=-date" in page  # the date header now sorts the other way

    # A customer account that a spreadsheet would take for a formula.
    customer = env.seeded.billing.customer("=HYPERLINK(1)")
    env.seeded.billing.invoice(customer, number="-INV-9")
    env.engine.sync()
    answer = env.client.get(
        "/failures.csv",
        params={"status": "all", "kind": "invoice", "sort": "record"},
        headers=env.viewer,
    )
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    assert "attachment" in answer.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(answer.text)))
    assert rows[0][:4] == ["ledger id", "target", "kind", "record"]
    body = rows[1:]
    assert [r[3] for r in body] == sorted(r[3] for r in body) and len(body) == 5
    escaped = next(r for r in body if r[3] == "invoice -INV-9")
    assert escaped[4] == "'=HYPERLINK(1)"
    assert not any(cell[:1] in "=+-@" for row in body for cell in row if cell)
    failed = list(csv.reader(io.StringIO(env.client.get("/failures.csv", headers=env.viewer).text)))
    assert sorted(r[3] for r in failed[1:]) == ["invoice INV-1", "invoice INV-3"]
