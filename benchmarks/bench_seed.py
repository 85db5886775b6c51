"""Benchmark: `finsync billing seed` (1,000 customers over 12 months), SQLite and PostgreSQL.

Runs the real command in a child process (so the figure includes start-up and the progress bar)
and reports wall time, rows written and peak memory. The baseline does the same writing without
the generator: the rows the seed wrote, read back, inserted into fresh tables of the same schema
by a plain SQLAlchemy executemany in one transaction. Three interleaved repetitions (seed,
baseline, seed, ...), a fresh database for each; medians with (min-max); the ratio says what
generating the data costs on top of writing it.

    .venv/bin/python -m benchmarks.bench_seed [--quick] [--pg URL] [--customers N]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from benchmarks.figures import spread
from billing import schema

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
REPEATS = 3


def _seed(url: str, customers: int) -> tuple[float, float]:
    """Seconds and the children's peak MB of one `finsync billing seed` into ``url``."""
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


def _rows(url: str) -> dict[str, list[dict[str, Any]]]:
    """Every row the seed wrote, per table, in the order of the schema's dependencies."""
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = {
            t.name: [dict(r) for r in conn.execute(sa.select(t)).mappings()]
            for t in schema.metadata.sorted_tables
            if t.name in TABLES or t.name in ("products",)
        }
    engine.dispose()
    return rows


def _insert(url: str, rows: dict[str, list[dict[str, Any]]]) -> float:
    """Seconds to create the schema and executemany ``rows`` into ``url`` in one transaction."""
    engine = sa.create_engine(url)
    began = time.perf_counter()
    schema.metadata.create_all(engine)
    with engine.begin() as conn:
        for table in schema.metadata.sorted_tables:
            if rows.get(table.name):
                conn.execute(table.insert(), rows[table.name])
    seconds = time.perf_counter() - began
    engine.dispose()
    return seconds


@contextmanager
def _sqlite_database() -> Iterator[str]:
    with tempfile.TemporaryDirectory() as tmp:
        yield f"sqlite:///{Path(tmp) / 'billing.db'}"


def _pg_database(admin_url: str) -> Callable[[], Any]:
    @contextmanager
    def database() -> Iterator[str]:
        name = f"finsync_bench_{uuid.uuid4().hex[:8]}"
        admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        try:
            yield (
                sa.engine.make_url(admin_url)
                .set(database=name)
                .render_as_string(hide_password=False)
            )
        finally:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()

    return database


def main() -> None:
    """Run the benchmark and print the markdown section."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="300 customers")
    parser.add_argument("--customers", type=int, help="customers (default 1,000)")
    parser.add_argument("--pg", default=PG, help="admin URL of the PostgreSQL server")
    args = parser.parse_args()
    customers = args.customers or (300 if args.quick else 1000)
    print(f"### `finsync billing seed`: {customers:,} customers x 12 months\n")
    print(
        f"Median of {REPEATS} interleaved repetitions (min-max), a fresh database each. "
        "Baseline: the same rows inserted by a plain executemany.\n"
    )
    print(
        "| database | rows | seed s | rows/s | peak MB (child) | baseline insert s "
        "| seed / baseline |\n|---|---:|---:|---:|---:|---:|---:|"
    )
    for label, database in (("SQLite", _sqlite_database), ("PostgreSQL", _pg_database(args.pg))):
        seeds: list[float] = []
        peaks: list[float] = []
        baselines: list[float] = []
        count = 0
        for _ in range(REPEATS):
            with database() as url:
                seconds, peak = _seed(url, customers)
                rows = _rows(url)
            seeds.append(seconds)
            peaks.append(peak)
            count = sum(len(r) for r in rows.values())
            with database() as url:
                baselines.append(_insert(url, rows))
            print(f"{label}: seed {seconds:.1f} s, baseline {baselines[-1]:.1f} s", file=sys.stderr)
        seed_median = statistics.median(seeds)
        print(
            f"| {label} | {count:,} | {spread(seeds, 1)} | {count / seed_median:,.0f} "
            f"| {max(peaks):.0f} | {spread(baselines, 1)} "
            f"| {seed_median / statistics.median(baselines):.2f} |"
        )


if __name__ == "__main__":
    main()
