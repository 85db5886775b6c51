"""Benchmark: customer invoices created and posted in a real Tryton (trytond 8.2, SQLite, one
local server process), by Tryton's own calls and by finsync's push.

Tryton's own rate, over JSON-RPC with invoices of two lines and a manual tax:

- one call per document: ``create`` of one invoice, then ``post`` of it, for each invoice;
- batched: one ``create`` of all the invoices, then one ``post`` of all of them;

with the time spent in ``create`` and in ``post`` reported apart (posting numbers the invoice,
writes its move and checks the period and dates). Then finsync's push: the connector's ``send``
in batches of its ``batch_size`` (search by reference, batched create, batched post), and the
ratio of finsync's rate to Tryton's batched one (the baseline). Every phase uses fresh invoices
on a fresh server copy, so no phase pays for another's rows; the three phases run in three
interleaved repetitions, reported as medians with (min-max).

    .venv/bin/python -m benchmarks.bench_tryton [--quick] [--invoices N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from benchmarks.figures import spread
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
REPEATS = 3


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


def _one_by_one(run: _Run, values: list[dict[str, Any]]) -> tuple[float, float]:
    create = post = 0.0
    for value in values:
        began = time.perf_counter()
        (invoice,) = run.call("model.account.invoice.create", [value])
        created = time.perf_counter()
        run.call("model.account.invoice.post", [invoice])
        create += created - began
        post += time.perf_counter() - created
    return create, post


def _batched(run: _Run, values: list[dict[str, Any]]) -> tuple[float, float]:
    began = time.perf_counter()
    invoices = run.call("model.account.invoice.create", values)
    created = time.perf_counter()
    run.call("model.account.invoice.post", invoices)
    return created - began, time.perf_counter() - created


def _finsync(run: _Run, documents: list[Document]) -> float:
    batch = run.connector.max_batch
    began = time.perf_counter()
    for start in range(0, len(documents), batch):
        results = run.connector.send(documents[start : start + batch])
        assert all(r.ok for r in results), [str(r.error) for r in results if not r.ok][:3]
    return time.perf_counter() - began


def main() -> None:
    """Run the benchmark and print the markdown section."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--invoices", type=int, default=None)
    args = parser.parse_args()
    n = args.invoices or (10 if args.quick else 40)
    tables = load_mapping_file(ROOT / "mapping.example.toml")
    template = ensure_template(Path(tempfile.gettempdir()))
    work = Path(tempfile.mkdtemp(prefix="finsync-bench-tryton-"))
    times: dict[str, list[tuple[float, float]]] = {"one": [], "batched": []}
    finsync: list[float] = []
    batch = 0
    for rep in range(REPEATS):
        for phase in ("one", "batched", "finsync"):
            run = _Run(template, work / f"{phase}-{rep}", tables)
            try:
                documents = _documents(n, tables, 0)
                if phase == "finsync":
                    batch = run.connector.max_batch
                    finsync.append(_finsync(run, documents))
                else:
                    measure = _one_by_one if phase == "one" else _batched
                    times[phase].append(measure(run, run.values(documents)))
            finally:
                run.close()
        print(f"round {rep + 1} done", file=sys.stderr, flush=True)

    print("### Tryton: invoices created and posted\n")
    print(
        f"{n} customer invoices (2 lines, a manual tax; the ratable line also posts its "
        "deferral move in finsync's push) into company 1 of a fresh `finsync sandbox tryton` "
        f"copy each time (trytond 8.2, SQLite, one server process). Median of {REPEATS} "
        "interleaved repetitions (min-max).\n"
    )
    print("| how | invoices | create s | post s | invoices/s (create+post) |")
    print("|---|---:|---:|---:|---:|")
    rates = {}
    for phase, name in (("one", "Tryton, one call per document"), ("batched", "Tryton, batched")):
        creates = [c for c, _ in times[phase]]
        posts = [p for _, p in times[phase]]
        rates[phase] = [n / (c + p) for c, p in times[phase]]
        print(f"| {name} | {n} | {spread(creates)} | {spread(posts)} | {spread(rates[phase], 1)} |")
    rates["finsync"] = [n / s for s in finsync]
    print(
        f"| finsync push (`send`, batches of {batch}) | {n} | - | - "
        f"| {spread(rates['finsync'], 1)} |"
    )
    one_post = statistics.median(p / (c + p) for c, p in times["one"])
    batched_post = statistics.median(p / (c + p) for c, p in times["batched"])
    ratio = statistics.median(rates["finsync"]) / statistics.median(rates["batched"])
    print(
        f"\nPosting's share: {one_post:.0%} of one-by-one time, {batched_post:.0%} of batched "
        f"time. **finsync's push runs at {ratio:.2f} of Tryton's batched rate** (it also "
        "searches every reference before creating, and posts a deferral move per invoice)."
    )


if __name__ == "__main__":
    main()
