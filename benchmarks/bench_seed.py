"""Benchmark: `finsync billing seed` for 10,000 customers over 12 months, SQLite and PostgreSQL.

Runs the real command in a child process (so the figure includes start-up and the progress bar)
and reports wall time, rows written and peak memory.

    .venv/bin/python -m benchmarks.bench_seed [--quick] [--pg URL]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

PG = os.environ.get("FINSYNC_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
TABLES = (
    "customers",
    "invoices",
    "invoice_lines",
    "credit_notes",
    "credit_note_lines",
    "payments",
    "payment_applications",
    "refunds",
    "revenue_schedule_entries",
)


def _seed(url: str, customers: int) -> tuple[float, float]:
    began = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "finsync",
            "billing",
            "seed",
            "--db",
            url,
            "--customers",
            str(customers),
            "--months",
            "12",
            "--seed",
            "1",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    seconds = time.perf_counter() - began
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return seconds, peak_mb


def _rows(url: str) -> int:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        total = sum(conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar() for t in TABLES)
    engine.dispose()
    return int(total)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 customers")
    parser.add_argument("--pg", default=PG, help="admin URL of the PostgreSQL server")
    args = parser.parse_args()
    customers = 1000 if args.quick else 10000
    print(f"### `finsync billing seed`: {customers:,} customers x 12 months\n")
    print("| database | seconds | rows | rows/s | peak MB (child) |\n|---|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'billing.db'}"
        seconds, peak = _seed(url, customers)
        rows = _rows(url)
        print(f"| SQLite | {seconds:.1f} | {rows:,} | {rows / seconds:,.0f} | {peak:.0f} |")
    name = f"finsync_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(args.pg, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(args.pg).set(database=name).render_as_string(hide_password=False)
    try:
        seconds, peak = _seed(url, customers)
        rows = _rows(url)
        print(f"| PostgreSQL | {seconds:.1f} | {rows:,} | {rows / seconds:,.0f} | {peak:.0f} |")
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
