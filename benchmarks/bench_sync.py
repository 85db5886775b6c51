"""Benchmark: the sync engine on PostgreSQL.

1. Extract + map + enqueue throughput (records per second) for a first sync of the seeded data,
   next to the raw read rate of the same rows with psycopg (a server-side cursor over the same
   tables, children included), as a ratio in the same run.
2. A no-op incremental sync over the ~100,000 already-synced records: wall time and the number
   of SQL statements issued (billing and state), which must follow the changes, not the history.
   It is measured after one settling sync, as in steady state: the revenue checks, which read
   all of billing, rerun only after a sync that changed something.

The target is the scripted system (SQLite file), so the figures are the engine's own cost.

    .venv/bin/python -m benchmarks.bench_sync [--quick] [--pg URL]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
import sqlalchemy as sa

PG = os.environ.get("FINSYNC_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REPO = Path(__file__).resolve().parents[1]
#: The generator makes about 19.5 NetSuite records (customer, invoices, credit notes, payments)
#: per customer over 12 months.
RECORDS_PER_CUSTOMER = 19.5


def _database(admin_url: str) -> tuple[str, str]:
    name = f"finsync_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = sa.engine.make_url(admin_url).set(database=name)
    return name, url.render_as_string(hide_password=False)


def _drop(admin_url: str, name: str) -> None:
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _raw_read(url: str) -> tuple[int, float]:
    """Rows read by psycopg with server-side cursors over the tables a NetSuite sync reads."""
    dsn = sa.engine.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    tables = (
        "customers",
        "invoices",
        "invoice_lines",
        "credit_notes",
        "credit_note_lines",
        "payments",
        "payment_applications",
        "products",
    )
    rows = 0
    began = time.perf_counter()
    with psycopg.connect(dsn) as conn:
        for table in tables:
            with conn.cursor(name=f"read_{table}") as cursor:
                cursor.itersize = 5000
                cursor.execute(
                    f"SELECT * FROM {table} ORDER BY updated_at, id"
                    if table not in ("invoice_lines", "credit_note_lines", "payment_applications")
                    else f"SELECT * FROM {table}"
                )
                for _ in cursor:
                    rows += 1
    return rows, time.perf_counter() - began


def run(customers: int, admin_url: str) -> list[tuple[str, str]]:
    from billing.generator import seed_billing
    from finsync.config import load_config
    from finsync.db import make_engine
    from sync.engine import SyncEngine
    from sync.migrate import upgrade

    name, url = _database(admin_url)
    results: list[tuple[str, str]] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            (folder / "mapping.toml").write_text((REPO / "mapping.example.toml").read_text())
            (folder / "finsync.toml").write_text(f"""
[billing]
url = "{url}"
[state]
url = "{url}"
[mapping]
file = "mapping.toml"
[sync]
page_size = 2000
[targets.erp]
system = "scripted"
store = "{folder / "target.db"}"
batch_size = 1000
""")
            config = load_config(folder / "finsync.toml")
            billing = make_engine(url)
            seed_billing(billing, customers=customers, months=12, seed=7)
            billing.dispose()
            engine = SyncEngine(config, actor="bench")
            upgrade(engine.state)

            raw_rows, raw_seconds = _raw_read(url)
            began = time.perf_counter()
            counts = engine.extract("erp", engine.kinds_for("erp"))
            extract_seconds = time.perf_counter() - began
            records = counts.new + counts.failed
            began = time.perf_counter()
            pushed = engine.push("erp")
            push_seconds = time.perf_counter() - began

            engine.sync()  # a first, settling sync runs the revenue checks once
            statements = {"n": 0}

            def count(*_args: object) -> None:
                statements["n"] += 1

            for eng in (engine.billing, engine.state):
                sa.event.listen(eng, "before_cursor_execute", count)
            began = time.perf_counter()
            summary = engine.sync()
            noop_seconds = time.perf_counter() - began
            sent = summary.targets[0].pushed.sent
            engine.close()

            pipeline_rate = records / extract_seconds
            raw_rate = records / raw_seconds
            results += [
                ("records (NetSuite documents)", f"{records:,}"),
                (
                    "raw psycopg read of the same rows",
                    f"{raw_rows:,} rows in {raw_seconds:.2f} s = {raw_rate:,.0f} records/s",
                ),
                (
                    "extract + map + enqueue",
                    f"{extract_seconds:.2f} s = {pipeline_rate:,.0f} records/s",
                ),
                ("ratio pipeline / raw read", f"{pipeline_rate / raw_rate:.2f}"),
                ("push to the scripted target", f"{pushed.sent:,} in {push_seconds:.2f} s"),
                (
                    "no-op incremental sync",
                    f"{noop_seconds * 1000:.0f} ms, {statements['n']} SQL statements, {sent} sent",
                ),
            ]
    finally:
        _drop(admin_url, name)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="about 10,000 records")
    parser.add_argument("--pg", default=PG, help="admin URL of the PostgreSQL server")
    args = parser.parse_args()
    customers = 520 if args.quick else 5200
    print(
        f"### Sync engine on PostgreSQL ({customers:,} customers x 12 months, "
        f"~{customers * RECORDS_PER_CUSTOMER:,.0f} records)\n"
    )
    print("| measure | result |\n|---|---|")
    for measure, value in run(customers, args.pg):
        print(f"| {measure} | {value} |")


if __name__ == "__main__":
    main()
