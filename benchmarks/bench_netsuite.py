"""Benchmark: pushing invoices to the NetSuite sandbox over SOAP and REST, against baselines.

The sandbox runs in its own process (NetSuite's servers are not the push's cost; on this 2-core
machine it takes the other core), with 50 ms added latency per request and a concurrency limit
of 5. Each connector is limited to 5 requests in flight and fed batches of 100 by 5 threads (as
5 push workers would); customers go first (not timed), then the invoices (timed).

- SOAP push, with NetSuite's real 2023_2 WSDL (../shared/specs; the sandbox's own WSDL only when
  the specs are absent), against **zeep's serialization rate**: upsertList envelopes of the same
  100 invoices built per second by zeep from the same values (zeep objects, ``create_message``,
  serialization) with the same WSDL, on one core. Beside it, finsync's own envelope rate
  (``RecordWriter``), and the network ideal, concurrency x batch / latency.
- REST push against its ideal, concurrency / latency (one record per request).
- WSDL load times (the sandbox's over HTTP, the real one from file).

Three interleaved repetitions (zeep rate, SOAP push, REST push, ...); medians with (min-max),
and the ratios taken from the medians. Prints a markdown section.

    .venv/bin/python -m benchmarks.bench_netsuite [--quick] [--invoices N] [--rest-invoices N]
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import zeep

from benchmarks.figures import spread
from billing.records import Customer, Invoice, InvoiceLine, Product
from connectors.base import Connector
from connectors.netsuite_rest import NetSuiteRestConnector, NetSuiteRestSettings
from connectors.netsuite_soap import NetSuiteSoapConnector, NetSuiteSoapSettings
from connectors.netsuite_soap.messages import RECORD_TYPES, soap_fields
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
REPEATS = 3
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


@dataclass(frozen=True)
class RemoteSandbox:
    """A NetSuite sandbox served by a child process; ``ask`` reads its account."""

    url: str
    account: str
    soap_endpoint: str
    wsdl_url: str
    pipe: Connection

    def ask(self, question: str, *args: Any) -> Any:
        """The child's answer to ``count`` (record type) or ``max_in_flight``."""
        self.pipe.send((question, *args))
        return self.pipe.recv()


def _serve_sandbox(pipe: Connection) -> None:
    with NetSuiteSandbox(concurrency_limit=CONCURRENCY, latency_seconds=LATENCY).start() as sb:
        pipe.send((sb.url, sb.account, sb.soap_endpoint, sb.wsdl_url))
        while True:
            question, *args = pipe.recv()
            if question == "stop":
                return
            pipe.send(sb.count(*args) if question == "count" else sb.max_in_flight)


class sandbox_process:
    """``with sandbox_process() as sb``: a sandbox in its own process, stopped on exit."""

    def __enter__(self) -> RemoteSandbox:
        ours, theirs = multiprocessing.Pipe()
        self._process = multiprocessing.get_context("spawn").Process(
            target=_serve_sandbox, args=(theirs,), daemon=True
        )
        self._process.start()
        self._sandbox = RemoteSandbox(*ours.recv(), pipe=ours)
        return self._sandbox

    def __exit__(self, *exc: object) -> None:
        self._sandbox.pipe.send(("stop",))
        self._process.join(10)


def _soap(sb: RemoteSandbox | NetSuiteSandbox, wsdl: str | None = None) -> NetSuiteSoapConnector:
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


def _rest(sb: RemoteSandbox) -> NetSuiteRestConnector:
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


def _envelope_rates(connector: NetSuiteSoapConnector, batch: Sequence[Document], rounds: int):
    """Invoices per second in upsertList envelopes of ``batch``: (zeep's, finsync's writer's)."""
    zeep_client = connector.transport.zeep

    def by_zeep() -> None:
        records = [
            zeep_client.get_type(RECORD_TYPES[d.record_type])(**soap_fields(d)) for d in batch
        ]
        connector.transport.envelope("upsertList", record=records)

    def by_writer() -> None:
        connector.transport.envelope_of("upsertList", [connector.to_record(d) for d in batch])

    rates = []
    for build in (by_zeep, by_writer):
        build()  # warm: the writer reads each type's plan from the WSDL once
        began = time.perf_counter()
        for _ in range(rounds):
            build()
        rates.append(rounds * len(batch) / (time.perf_counter() - began))
    return rates[0], rates[1]


def measure(count: int, rest_count: int, rounds: int) -> list[list[str]]:
    """The table rows: REPEATS interleaved rounds of zeep rate, SOAP push and REST push."""
    tables = load_mapping_file(ROOT / "mapping.example.toml")
    customers, invoices = documents(count, tables)
    rest_invoices = invoices[:rest_count]
    wsdl = str(REAL_WSDL) if REAL_WSDL.exists() else None
    zeep_rates: list[float] = []
    writer_rates: list[float] = []
    soap_rates: list[float] = []
    rest_rates: list[float] = []
    peaks: dict[str, int] = {}
    with sandbox_process() as soap_sb, sandbox_process() as rest_sb:
        soap = _soap(soap_sb, wsdl)
        rest = _rest(rest_sb)
        try:
            push(soap, customers)
            push(rest, customers)
            for n in range(REPEATS):
                zeep_rate, writer_rate = _envelope_rates(soap, invoices[:BATCH], rounds)
                zeep_rates.append(zeep_rate)
                writer_rates.append(writer_rate)
                soap_rates.append(len(invoices) / push(soap, invoices))
                rest_rates.append(len(rest_invoices) / push(rest, rest_invoices))
                print(
                    f"round {n + 1}: zeep {zeep_rate:,.0f}/s, writer {writer_rate:,.0f}/s, "
                    f"SOAP push {soap_rates[-1]:,.0f}/s, REST push {rest_rates[-1]:,.1f}/s",
                    file=sys.stderr,
                    flush=True,
                )
        finally:
            soap.close()
            rest.close()
        for name, sb, expected in (("soap", soap_sb, count), ("rest", rest_sb, rest_count)):
            held = sb.ask("count", "invoice")
            if held != expected:
                raise RuntimeError(f"{name} sandbox holds {held} invoices, expected {expected}")
            peaks[name] = sb.ask("max_in_flight")
    zeep_median = statistics.median(zeep_rates)
    soap_median = statistics.median(soap_rates)
    rest_median = statistics.median(rest_rates)
    soap_ideal = CONCURRENCY * BATCH / LATENCY
    rest_ideal = CONCURRENCY / LATENCY
    which = "real 2023_2" if wsdl else "sandbox"
    return [
        [
            f"zeep upsertList envelope ({which} WSDL), one core: the baseline",
            f"{BATCH} invoices x {rounds}",
            spread(zeep_rates, 0, " invoices/s"),
            "",
        ],
        [
            "finsync RecordWriter envelope, same values and WSDL, one core",
            f"{BATCH} invoices x {rounds}",
            spread(writer_rates, 0, " invoices/s"),
            f"{statistics.median(writer_rates) / zeep_median:.1f}x zeep's rate",
        ],
        [
            f"SOAP upsertList push ({which} WSDL)",
            f"{count:,} invoices",
            spread(soap_rates, 0, " records/s"),
            f"**{soap_median / zeep_median:.2f} of zeep's serialization rate**; "
            f"{soap_median / soap_ideal:.0%} of the network ideal {soap_ideal:,.0f}/s "
            f"(peak {peaks['soap']} in flight)",
        ],
        [
            "REST PUT eid push",
            f"{rest_count:,} invoices",
            spread(rest_rates, 1, " records/s"),
            f"**{rest_median / rest_ideal:.2f} of concurrency / latency** ({rest_ideal:,.0f}/s, "
            f"peak {peaks['rest']} in flight)",
        ],
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
    return ["zeep WSDL load", f"{name}, once per process", spread(times, 2, " s")]


def main() -> None:
    """Run the benchmark and print the markdown section."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--invoices", type=int, help="SOAP invoices per round (default 20,000)")
    parser.add_argument("--rest-invoices", type=int, help="REST invoices per round (default 2,000)")
    args = parser.parse_args()
    count = args.invoices or (2_000 if args.quick else 20_000)
    rest_count = min(count, args.rest_invoices or (300 if args.quick else 2_000))
    rows = measure(count, rest_count, rounds=5 if args.quick else 20)
    loads = wsdl_loads(runs=3)
    print("### NetSuite connectors against the sandbox\n")
    print(
        f"The sandbox in its own process: {LATENCY * 1000:.0f} ms added latency per request, "
        f"concurrency limit {CONCURRENCY}, batches of {BATCH}, {CONCURRENCY} sending threads. "
        f"Median of {REPEATS} interleaved rounds (min-max).\n"
    )
    print("| measure | work | rate | ratio |")
    print("| --- | --- | --- | --- |")
    print("\n".join("| " + " | ".join(row) + " |" for row in rows))
    print("\n| WSDL load | time |")
    print("| --- | --- |")
    print("\n".join(f"| {row[1]} | {row[2]} |" for row in loads))


if __name__ == "__main__":
    main()
