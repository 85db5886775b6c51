"""Benchmark: the monthly workbook for a month of 100,000 and 1,000,000 invoice lines.

For each size: seed a fresh PostgreSQL database with ``billing.generator`` (one month), mark
every invoice synced in the ledger, then build the workbook in a child process and record its
wall time and peak memory (``ru_maxrss``). Next to it, plain openpyxl write-only writing the same
number of cells (no styles, no database) in another child process; the ratio says what the
report costs on top of openpyxl itself. Prints a markdown table.

    .venv/bin/python -m benchmarks.bench_workbook [--quick] [--pg URL] [--sizes 100000,1000000]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

import sqlalchemy as sa

PG = os.environ.get("FINSYNC_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
#: The generator writes about this many invoice lines per customer and month.
LINES_PER_CUSTOMER = 1.86
START = date(2026, 10, 1)
COLUMNS = 14


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_report(url: str, out: str) -> dict[str, float]:
    from finsync.db import make_engine
    from reports import build_monthly_report

    engine = make_engine(url)
    began = time.perf_counter()
    result = build_monthly_report(
        engine,
        engine,
        period=f"{START:%Y-%m}",
        entity=None,
        out_dir=Path(out),
        timezone=ZoneInfo("UTC"),
    )
    seconds = time.perf_counter() - began
    return {
        "seconds": seconds,
        "peak_mb": _peak_mb(),
        "doc_rows": sum(result.rows.values()),
        "bytes": result.path.stat().st_size,
    }


def child_raw(rows: int, out: str) -> dict[str, float]:
    from openpyxl import Workbook

    began = time.perf_counter()
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("plain")
    for n in range(rows):
        ws.append(
            [
                f"INV-{n}",
                "acme-us",
                f"C-{n % 5000}",
                "Customer name",
                n,
                n + 30,
                "USD",
                n * 1.5,
                n * 0.1,
                n * 1.6,
                "open",
                "",
                f"NS-{n}",
                "synced",
            ]
        )
    wb.save(Path(out) / "plain.xlsx")
    return {"seconds": time.perf_counter() - began, "peak_mb": _peak_mb()}


def _run_child(*args: str) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_workbook", "--child", *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _seed(lines: int) -> tuple[str, str, dict[str, int]]:
    from billing.generator import seed_billing
    from finsync.db import make_engine
    from sync import state

    name = f"finsync_bench_{lines}_{os.getpid()}"
    admin = sa.create_engine(PG, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = sa.engine.make_url(PG).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    summary = seed_billing(
        engine, customers=math.ceil(lines / LINES_PER_CUSTOMER), months=1, seed=7, start=START
    )
    state.metadata.create_all(engine)
    with engine.begin() as conn:
        for kind, table, label in (
            ("invoice", "invoices", "number"),
            ("credit_note", "credit_notes", "number"),
            ("payment", "payments", "reference"),
        ):
            conn.execute(
                sa.text(
                    "INSERT INTO ledger (target, kind, source_id, label, external_id, status, "
                    "internal_id, operation, attempts, depends_on, created_at, updated_at) "
                    f"SELECT 'netsuite', '{kind}', id::text, '{kind} ' || {label}, {label}, "
                    f"'synced', 'NS-' || id, 'upsert', 1, '[]', now(), now() FROM {table}"
                )
            )
    # A live billing database has planner statistics (autovacuum); a fresh bulk load has none,
    # and without them PostgreSQL picks nested loops for the aging query.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("ANALYZE"))
    engine.dispose()
    counts = {"invoices": summary.invoices, "invoice_lines": summary.invoice_lines}
    return name, url, counts


def _drop(name: str) -> None:
    admin = sa.create_engine(PG, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


def main() -> None:
    """Run the benchmark and print the markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (10k, 50k lines)")
    parser.add_argument("--sizes", help="comma-separated invoice line counts")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        out = child_report(*rest) if kind == "report" else child_raw(int(rest[0]), rest[1])
        print(json.dumps(out))
        return
    sizes = (
        [int(s) for s in args.sizes.split(",")]
        if args.sizes
        else ([10_000, 50_000] if args.quick else [100_000, 1_000_000])
    )
    table = [
        "| invoice lines | invoices | document rows | seed s | workbook s | workbook peak MB "
        "| openpyxl plain s | plain peak MB | time ratio |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for lines in sizes:
        began = time.perf_counter()
        name, url, counts = _seed(lines)
        seeded = time.perf_counter() - began
        try:
            with tempfile.TemporaryDirectory() as out:
                report = _run_child("report", url, out)
                raw = _run_child("raw", str(int(report["doc_rows"])), out)
        finally:
            _drop(name)
        table.append(
            f"| {counts['invoice_lines']:,} | {counts['invoices']:,} | {int(report['doc_rows']):,} "
            f"| {seeded:.1f} | {report['seconds']:.1f} | {report['peak_mb']:.0f} "
            f"| {raw['seconds']:.1f} | {raw['peak_mb']:.0f} "
            f"| {report['seconds'] / raw['seconds']:.2f} |"
        )
        print(table[-1], file=sys.stderr, flush=True)
    print("### Monthly workbook on PostgreSQL (one month), next to plain openpyxl write-only\n")
    print("\n".join(table))


if __name__ == "__main__":
    main()
