"""Benchmark: customer invoices created and posted in a real Tryton (trytond 8.2, SQLite, one
local server process), by Tryton's own calls and by finsync's push.

Tryton's own rate, over JSON-RPC with invoices of two lines and a manual tax:

- one call per document: ``create`` of one invoice, then ``post`` of it, for each invoice;
- batched: one ``create`` of all the invoices, then one ``post`` of all of them;

with the time spent in ``create`` and in ``post`` reported apart (posting numbers the invoice,
writes its move and checks the period and dates). Then finsync's push: the connector's ``send``
in batches of its ``batch_size`` (search by reference, batched create, batched post), and the
ratio of finsync's rate to Tryton's batched one. Every phase uses fresh invoices on a fresh
server copy, so no phase pays for another's rows.

    .venv/bin/python -m benchmarks.bench_tryton [--quick] [--invoices N]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from billing.records import Customer, Invoice, InvoiceLine, Product
from connectors.tryton import TrytonConnector, TrytonSettings
from core.documents import Document
from finsync.config import Secret
from mappings import tryton as tm
from mappings.tables import MappingTables, load_mapping_file
from sandbox.tryton import ADMIN_LOGIN, ADMIN_PASSWORD, DATABASE, TrytonServer, ensure_template

ROOT = Path(__file__).resolve().parents[1]
TS = datetime(2026, 9, 1, tzinfo=UTC)
_PRO = Product(2, "plat-pro", "Platform Pro", "platform", "ratable", "SW054000", TS)
_ONBOARDING = Product(6, "onboarding", "Onboarding", "services", "point_in_time", "S0000000", TS)
CUSTOMERS = 20


def _customer(i: int) -> Customer:
    return Customer(
        id=i + 1,
        account_number=f"B-{i:05d}",
        name=f"Bench Customer {i}",
        email=None,
        billing_entity="acme-us",
        currency="USD",
        country="US",
        region="CA",
        city="San Jose",
        postal_code="95110",
        address_line1="1 Bench Way",
        tax_exempt=False,
        exemption_number=None,
        created_at=TS,
        updated_at=TS,
    )


def _invoice(i: int, customer: Customer, day: date) -> Invoice:
    lines = (
        InvoiceLine(
            1, 1, _PRO, 2, "Platform Pro", Decimal(3), Decimal(100), Decimal(0), Decimal(300),
            Decimal("0.0725"), Decimal("21.75"), "US-CA", day, day + timedelta(days=29),
        ),
        InvoiceLine(
            2, 2, _ONBOARDING, 6, "Onboarding", Decimal(1), Decimal(250), Decimal(0),
            Decimal(250), Decimal("0.0725"), Decimal("18.13"), "US-CA", None, None,
        ),
    )  # fmt: skip
    return Invoice(
        id=i + 1,
        number=f"BINV-{i:06d}",
        customer_id=customer.id,
        customer_account=customer.account_number,
        billing_entity="acme-us",
        currency="USD",
        status="open",
        issue_date=day,
        due_date=day + timedelta(days=30),
        subtotal=Decimal(550),
        tax_total=Decimal("39.88"),
        total=Decimal("589.88"),
        memo=None,
        voided_at=None,
        created_at=TS,
        updated_at=TS,
        lines=lines,
    )


def _documents(n: int, tables: MappingTables, first: int) -> list[Document]:
    customers = [_customer(i) for i in range(CUSTOMERS)]
    day = date(2026, 10, 1)
    return [
        tm.map_invoice(_invoice(first + i, customers[i % CUSTOMERS], day), tables) for i in range(n)
    ]


class _Run:
    """One fresh Tryton with the bench customers in it."""

    def __init__(self, template: Path, folder: Path, tables: MappingTables) -> None:
        self.server = TrytonServer(template, folder).start()
        settings = TrytonSettings(
            url=self.server.url,
            database=DATABASE,
            username=ADMIN_LOGIN,
            password=Secret(ADMIN_PASSWORD),
        )
        self.connector = TrytonConnector(settings)
        self.connector.check_mapping(tm.ConnectorTables(tables))
        parties = [tm.map_customer(_customer(i), tables) for i in range(CUSTOMERS)]
        assert all(r.ok for r in self.connector.send(parties))

    def values(self, documents: list[Document]) -> list[dict[str, Any]]:
        """Tryton invoice values of mapped documents (the connector's own translation)."""
        parties = self.connector._find_parties(d.payload["party"] for d in documents)
        return [
            self.connector._invoice_values(
                1, d.payload, d.external_id, 1, parties[d.payload["party"]]
            )
            for d in documents
        ]

    def call(self, method: str, *params: Any) -> Any:
        return self.connector.rpc.call(method, *params, company=1, writes=True)

    def close(self) -> None:
        self.connector.close()
        self.server.stop()


def _rate(count: int, seconds: float) -> str:
    return f"{count / seconds:,.1f}" if seconds > 0 else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--invoices", type=int, default=None)
    args = parser.parse_args()
    n = args.invoices or (20 if args.quick else 100)
    tables = load_mapping_file(ROOT / "mapping.example.toml")
    template = ensure_template(Path(tempfile.gettempdir()))
    work = Path(tempfile.mkdtemp(prefix="finsync-bench-tryton-"))
    rows = []

    run = _Run(template, work / "one", tables)
    try:
        values = run.values(_documents(n, tables, 0))
        create = post = 0.0
        for value in values:
            began = time.perf_counter()
            (invoice,) = run.call("model.account.invoice.create", [value])
            created = time.perf_counter()
            run.call("model.account.invoice.post", [invoice])
            create += created - began
            post += time.perf_counter() - created
        rows.append(("Tryton, one call per document", n, create, post))
    finally:
        run.close()

    run = _Run(template, work / "batched", tables)
    try:
        values = run.values(_documents(n, tables, n))
        began = time.perf_counter()
        invoices = run.call("model.account.invoice.create", values)
        created = time.perf_counter()
        run.call("model.account.invoice.post", invoices)
        rows.append(("Tryton, batched", n, created - began, time.perf_counter() - created))
    finally:
        run.close()

    run = _Run(template, work / "finsync", tables)
    try:
        documents = _documents(n, tables, 2 * n)
        batch = run.connector.max_batch
        began = time.perf_counter()
        for start in range(0, n, batch):
            results = run.connector.send(documents[start : start + batch])
            assert all(r.ok for r in results), [str(r.error) for r in results if not r.ok][:3]
        finsync_seconds = time.perf_counter() - began
    finally:
        run.close()

    print("### Tryton: invoices created and posted\n")
    print(
        f"{n} customer invoices (2 lines, a manual tax; the ratable line also posts its "
        "deferral move in finsync's push) into company 1 of a fresh `finsync sandbox tryton` "
        "copy each time (trytond 8.2, SQLite, one server process).\n"
    )
    print("| how | invoices | create s | post s | invoices/s (create+post) |")
    print("|---|---:|---:|---:|---:|")
    for name, count, create, post in rows:
        print(f"| {name} | {count} | {create:.2f} | {post:.2f} | {_rate(count, create + post)} |")
    print(
        f"| finsync push (`send`, batches of {batch}) | {n} | - | - | {_rate(n, finsync_seconds)} |"
    )
    batched = rows[1][2] + rows[1][3]
    print(
        f"\nPosting's share: {rows[0][3] / (rows[0][2] + rows[0][3]):.0%} of one-by-one time, "
        f"{rows[1][3] / batched:.0%} of batched time. finsync's push runs at "
        f"{batched / finsync_seconds:.0%} of Tryton's batched rate (it also searches every "
        "reference before creating, and posts a deferral move per invoice)."
    )


if __name__ == "__main__":
    main()
