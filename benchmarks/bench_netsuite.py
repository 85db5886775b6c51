"""Benchmark: pushing invoices to the NetSuite sandbox over SOAP and over REST, and zeep's cost.

Throughput: a sandbox with 50 ms added latency per request and a concurrency limit of 5; the
SOAP connector built from NetSuite's real 2023_2 WSDL (../shared/specs) as production uses it,
the sandbox's own WSDL only when the specs are absent; each connector limited to 5 requests in
flight, fed batches of 100 by 5 threads (as 5 push workers would). Customers go first (not
timed), then the invoices (timed). Next to each figure, the ideal: concurrency x batch /
latency for SOAP (one upsertList of 100 per request), concurrency / latency for REST (one
record per request), and the measured share of it.

zeep: upsertList envelopes of 100 invoices built per second (records to zeep objects,
``create_message``, serialisation) with NetSuite's real WSDL when ../shared/specs is there, else
the sandbox's; and WSDL load times (the sandbox's over HTTP, the real one from file).
Prints a markdown table.

    .venv/bin/python -m benchmarks.bench_netsuite [--quick] [--invoices N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import zeep

from billing.records import Customer, Invoice, InvoiceLine, Product
from connectors.base import Connector
from connectors.netsuite_rest import NetSuiteRestConnector, NetSuiteRestSettings
from connectors.netsuite_soap import NetSuiteSoapConnector, NetSuiteSoapSettings
from core.documents import Document
from finsync.config import Secret
from mappings import netsuite as ns
from mappings.tables import MappingTables, load_mapping_file
from sandbox.netsuite import NetSuiteSandbox, SandboxCredentials

ROOT = Path(__file__).resolve().parents[1]
REAL_WSDL = ROOT.parent / "shared" / "specs" / "netsuite" / "netsuite.wsdl"
LATENCY = 0.05
CONCURRENCY = 5
BATCH = 100
CUSTOMERS = 200
TS = datetime(2025, 3, 1, tzinfo=UTC)
_PRO = Product(2, "plat-pro", "Platform Pro", "platform", "ratable", "SW054000", TS)
_ONBOARDING = Product(6, "onboarding", "Onboarding", "services", "point_in_time", "S0000000", TS)


def _customer(i: int) -> Customer:
    return Customer(
        id=i + 1,
        account_number=f"B-{i:05d}",
        name=f"Bench Customer {i}",
        email=f"ap{i}@bench.example",
        billing_entity="acme-us",
        currency="USD",
        country="US",
        region="CA",
        city="San Francisco",
        postal_code="94105",
        address_line1=f"{i} Market St",
        tax_exempt=False,
        exemption_number=None,
        created_at=TS,
        updated_at=TS,
    )


def _invoice(i: int, customer: Customer) -> Invoice:
    seats = Decimal(1 + i % 9)
    price = Decimal("199.00")
    amount = seats * price
    tax = (amount * Decimal("0.0725")).quantize(Decimal("0.01"))
    lines = (
        InvoiceLine(
            10 * i + 1, 1, _PRO, _PRO.id, "Platform Pro seats", seats, price, Decimal(0), amount,
            Decimal("0.0725"), tax, "US-CA", date(2025, 3, 1), date(2025, 3, 31),
        ),
        InvoiceLine(
            10 * i + 2, 2, _ONBOARDING, _ONBOARDING.id, "Onboarding", Decimal(1),
            Decimal("250.00"), Decimal(0), Decimal("250.00"), Decimal("0.0725"), Decimal("18.13"),
            "US-CA", None, None,
        ),
    )  # fmt: skip
    subtotal = amount + Decimal("250.00")
    tax_total = tax + Decimal("18.13")
    return Invoice(
        id=i + 1,
        number=f"BINV-{i:06d}",
        customer_id=customer.id,
        customer_account=customer.account_number,
        billing_entity="acme-us",
        currency="USD",
        status="open",
        issue_date=date(2025, 3, 1),
        due_date=date(2025, 3, 31),
        subtotal=subtotal,
        tax_total=tax_total,
        total=subtotal + tax_total,
        memo="March subscription",
        voided_at=None,
        created_at=TS,
        updated_at=TS,
        lines=lines,
    )


def documents(invoices: int, tables: MappingTables) -> tuple[list[Document], list[Document]]:
    """Customer and invoice documents, mapped the way the sync maps them."""
    customers = [_customer(i) for i in range(min(CUSTOMERS, invoices))]
    customer_docs = [ns.map_customer(c, tables) for c in customers]
    invoice_docs = [
        ns.map_invoice(_invoice(i, customers[i % len(customers)]), tables) for i in range(invoices)
    ]
    return customer_docs, invoice_docs


def _soap(sb: NetSuiteSandbox, wsdl: str | None = None) -> NetSuiteSoapConnector:
    creds = SandboxCredentials.demo()
    return NetSuiteSoapConnector(
        NetSuiteSoapSettings(
            account=sb.account,
            wsdl=wsdl or sb.wsdl_url,
            endpoint=sb.soap_endpoint,
            consumer_key=Secret(creds.consumer_key),
            consumer_secret=creds.consumer_secret,
            token_id=Secret(creds.token_id),
            token_secret=creds.token_secret,
            concurrency=CONCURRENCY,
            batch_size=BATCH,
        )
    )


def _rest(sb: NetSuiteSandbox) -> NetSuiteRestConnector:
    creds = SandboxCredentials.demo()
    return NetSuiteRestConnector(
        NetSuiteRestSettings(
            account=sb.account,
            base_url=sb.url,
            auth="oauth2",
            client_id=creds.client_id,
            certificate_id=creds.certificate_id,
            algorithm="ES256",
            private_key=Secret(SandboxCredentials.demo_private_key_pem()),
            concurrency=CONCURRENCY,
            max_batch=BATCH,
        )
    )


def push(connector: Connector, docs: Sequence[Document]) -> float:
    """Send ``docs`` in batches from ``CONCURRENCY`` threads; seconds taken. Raises on any
    failed record (a benchmark of failures would measure nothing)."""
    batches = [docs[i : i + BATCH] for i in range(0, len(docs), BATCH)]

    def one(batch: Sequence[Document]) -> None:
        failed = [r for r in connector.send(batch) if not r.ok]
        if failed:
            raise RuntimeError(f"{len(failed)} records failed, first: {failed[0].error}")

    began = time.perf_counter()
    with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
        list(pool.map(one, batches))
    return time.perf_counter() - began


def throughput(
    name: str,
    make: Callable[[NetSuiteSandbox], Connector],
    customers: list[Document],
    invoices: list[Document],
    ideal: float,
) -> list[str]:
    """One table row: invoices per second over one transport, against its ideal."""
    with NetSuiteSandbox(concurrency_limit=CONCURRENCY, latency_seconds=LATENCY).start() as sb:
        connector = make(sb)
        try:
            push(connector, customers)
            seconds = push(connector, invoices)
        finally:
            connector.close()
        assert sb.count("invoice") == len(invoices)
        peak = sb.max_in_flight
    rate = len(invoices) / seconds
    return [
        f"{name} push",
        f"{len(invoices):,} invoices",
        f"{seconds:.1f} s",
        f"{rate:,.0f} records/s",
        f"{ideal:,.0f} records/s",
        f"{rate / ideal:.0%} (peak {peak} in flight)",
    ]


def zeep_cost(invoices: list[Document], rounds: int) -> list[str]:
    """Envelopes of one upsertList of ``BATCH`` invoices built per second."""
    with NetSuiteSandbox().start() as sb:
        wsdl = str(REAL_WSDL) if REAL_WSDL.exists() else None
        connector = _soap(sb, wsdl)
        batch = invoices[:BATCH]
        # Apply lines are absent, so no internal ids are needed.
        connector.envelope("upsertList", record=[connector.to_soap(d) for d in batch])
        began = time.perf_counter()
        for _ in range(rounds):
            connector.envelope("upsertList", record=[connector.to_soap(d) for d in batch])
        seconds = time.perf_counter() - began
        connector.close()
    per_second = rounds / seconds
    return [
        "zeep upsertList envelope",
        f"{BATCH} invoices x {rounds}",
        f"{seconds / rounds * 1000:.0f} ms each",
        f"{per_second:.1f} messages/s",
        f"{per_second * BATCH:,.0f} invoices/s",
        f"{'real' if wsdl else 'sandbox'} WSDL, one core",
    ]


def wsdl_loads(runs: int) -> list[list[str]]:
    """Median WSDL load times: the sandbox's over HTTP, NetSuite's real one from file."""
    rows = []
    with NetSuiteSandbox().start() as sb:
        times = []
        for _ in range(runs):
            began = time.perf_counter()
            zeep.Client(sb.wsdl_url)
            times.append(time.perf_counter() - began)
        rows.append(_load_row("sandbox WSDL over HTTP", times))
    if REAL_WSDL.exists():
        times = []
        for _ in range(runs):
            began = time.perf_counter()
            zeep.Client(str(REAL_WSDL))
            times.append(time.perf_counter() - began)
        rows.append(_load_row("real 2023_2 WSDL from file", times))
    return rows


def _load_row(name: str, times: list[float]) -> list[str]:
    return [
        "zeep WSDL load",
        name,
        f"{statistics.median(times):.2f} s (median of {len(times)})",
        "",
        "",
        "once per process",
    ]


def main() -> None:
    """Run the benchmark and print the markdown table."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 invoices instead of 20,000")
    parser.add_argument("--invoices", type=int, help="number of invoices (overrides --quick)")
    args = parser.parse_args()
    count = args.invoices or (2_000 if args.quick else 20_000)
    tables = load_mapping_file(ROOT / "mapping.example.toml")
    customers, invoices = documents(count, tables)
    rows = [
        ["measure", "work", "time", "measured", "ideal", "share of ideal"],
        ["---"] * 6,
    ]
    soap_wsdl = str(REAL_WSDL) if REAL_WSDL.exists() else None
    soap_name = f"SOAP upsertList ({'real 2023_2' if soap_wsdl else 'sandbox'} WSDL)"
    for name, make, ideal in (
        (soap_name, lambda sb: _soap(sb, soap_wsdl), CONCURRENCY * BATCH / LATENCY),
        ("REST PUT eid", _rest, CONCURRENCY / LATENCY),
    ):
        rows.append(throughput(name, make, customers, invoices, ideal))
        print("| " + " | ".join(rows[-1]) + " |", file=sys.stderr, flush=True)
    rows.append(zeep_cost(invoices, rounds=5 if args.quick else 20))
    rows.extend(wsdl_loads(runs=3))
    print("### NetSuite connectors against the sandbox\n")
    print(
        f"NetSuite sandbox: {LATENCY * 1000:.0f} ms added latency per request, concurrency "
        f"limit {CONCURRENCY}, batches of {BATCH}, {CONCURRENCY} sending threads.\n"
    )
    print("\n".join("| " + " | ".join(row) + " |" for row in rows))


if __name__ == "__main__":
    main()
