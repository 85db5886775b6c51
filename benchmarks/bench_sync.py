"""Benchmark: the sync engine on PostgreSQL, and how its cost scales.

1. Extract + map + enqueue of a first sync, next to a raw psycopg read of the same rows (every
   billing table the pipeline reads, children included, by server-side cursor), as a ratio.
2. Scaling: the first sync (extract + push to the scripted target) and the no-op incremental
   sync at N and 4N records, and the no-op sync with the ledger filled to 1,000,000 rows
   (copies of the synced rows under other source ids, with one history event each, written
   by ``INSERT ... SELECT``). The no-op sync is measured after one settling sync, as in steady
   state: the revenue checks, which read all of billing, rerun only after a sync that changed
   something. Its SQL statements (billing and state) are counted.

Every figure is the median of at least three repetitions, interleaved (N, 4N, N, 4N, ...), with
the spread (min-max); ratios are taken inside the run. The machine is shared, so absolute times
are noisy; the ratios are what to compare. The target is the scripted system (a SQLite file),
so the figures are the engine's own cost.

    .venv/bin/python -m benchmarks.bench_sync [--quick] [--pg URL] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa

from benchmarks.figures import spread

PG = os.environ.get("FINSYNC_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REPO = Path(__file__).resolve().parents[1]
#: Every billing table a NetSuite sync reads (validation, extract and revenue journals).
BILLING_TABLES = (
    "products",
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
BIG_LEDGER = 1_000_000


def _create_database(admin_url: str, template: str | None = None) -> tuple[str, str]:
    name = f"finsync_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        suffix = f' TEMPLATE "{template}"' if template else ""
        conn.execute(sa.text(f'CREATE DATABASE "{name}"{suffix}'))
    admin.dispose()
    url = sa.engine.make_url(admin_url).set(database=name)
    return name, url.render_as_string(hide_password=False)


def _drop(admin_url: str, name: str) -> None:
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _dsn(url: str) -> str:
    return (
        sa.engine.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    )


def raw_read(url: str) -> tuple[int, float]:
    """Rows of every table the pipeline reads, by psycopg server-side cursors."""
    rows = 0
    began = time.perf_counter()
    with psycopg.connect(_dsn(url)) as conn:
        for table in BILLING_TABLES:
            with conn.cursor(name=f"read_{table}") as cursor:
                cursor.itersize = 5000
                cursor.execute(f"SELECT * FROM {table}")
                for _ in cursor:
                    rows += 1
    return rows, time.perf_counter() - began


def _write_config(folder: Path, billing_url: str, state_url: str) -> Path:
    (folder / "mapping.toml").write_text((REPO / "mapping.example.toml").read_text())
    config = folder / "finsync.toml"
    config.write_text(f"""
[billing]
url = "{billing_url}"
[state]
url = "{state_url}"
[mapping]
file = "mapping.toml"
[sync]
page_size = 2000
[targets.erp]
system = "scripted"
store = "{folder / "target.db"}"
batch_size = 1000
""")
    return config


def _engine(config: Path) -> Any:
    from finsync.config import load_config
    from sync.engine import SyncEngine

    return SyncEngine(load_config(config), actor="bench")


def _counting(engine: Any) -> dict[str, int]:
    statements = {"n": 0}

    def count(*_args: object) -> None:
        statements["n"] += 1

    for eng in (engine.billing, engine.state):
        sa.event.listen(eng, "before_cursor_execute", count)
    return statements


@contextmanager
def _state_database(admin_url: str, template: str | None = None) -> Iterator[tuple[str, str]]:
    name, url = _create_database(admin_url, template)
    try:
        yield name, url
    finally:
        _drop(admin_url, name)


def first_sync(config: Path, state_url: str) -> dict[str, float]:
    """A first sync into an empty state store: extract, then push; and the no-op after it."""
    from finsync.db import make_engine
    from sync.migrate import upgrade

    state = make_engine(state_url)
    upgrade(state)
    state.dispose()
    engine = _engine(config)
    began = time.perf_counter()
    counts = engine.extract("erp", engine.kinds_for("erp"))
    extracted = time.perf_counter()
    pushed = engine.push("erp")
    done = time.perf_counter()
    engine.sync()  # settling: the revenue checks run once
    engine.close()
    return {
        "records": counts.new + counts.failed,
        "sent": pushed.sent,
        "extract": extracted - began,
        "push": done - extracted,
        "first": done - began,
    }


def noop_sync(engine: Any, statements: dict[str, int]) -> tuple[float, int, int]:
    """One no-op incremental sync: seconds, SQL statements, documents sent."""
    statements["n"] = 0
    began = time.perf_counter()
    summary = engine.sync()
    seconds = time.perf_counter() - began
    return seconds, statements["n"], summary.targets[0].pushed.sent


def fill_ledger(state_url: str, rows: int) -> int:
    """Grow the ledger to ``rows`` with copies of its synced rows (other source ids), one
    history event each, as years of history would leave it. Returns the ledger's size."""
    with psycopg.connect(_dsn(state_url), autocommit=True) as conn:
        have = conn.execute("SELECT count(*) FROM ledger").fetchone()[0]  # type: ignore[index]
        base = conn.execute(
            "SELECT count(*) FROM ledger WHERE status = 'synced' AND kind <> 'revenue'"
        ).fetchone()[0]  # type: ignore[index]
        copies = -(-(rows - have) // base)
        conn.execute(
            """
            INSERT INTO ledger (target, kind, source_id, label, customer_account, document_date,
                external_id, record_type, operation, status, attempts, payload, payload_hash,
                depends_on, synced_hash, synced_payload, internal_id, result, run_id,
                source_updated_at, created_at, updated_at, synced_at)
            SELECT target, kind, source_id || '-h' || g, label || ' (h' || g || ')',
                customer_account, document_date, external_id || '-h' || g, record_type,
                operation, status, attempts, payload, payload_hash, depends_on, synced_hash,
                synced_payload, internal_id, result, run_id, source_updated_at, created_at,
                updated_at, synced_at
            FROM ledger CROSS JOIN generate_series(1, %s) AS g
            WHERE status = 'synced' AND kind <> 'revenue'
            LIMIT %s
            """,
            (copies, rows - have),
        )
        conn.execute(
            """
            INSERT INTO ledger_events (ledger_id, at, run_id, event, status, detail)
            SELECT id, updated_at, run_id, 'created', 'synced', 'upsert ok'
            FROM ledger WHERE source_id LIKE '%-h%'
            """
        )
        conn.execute("VACUUM (ANALYZE) ledger")
        conn.execute("VACUUM (ANALYZE) ledger_events")
        return int(conn.execute("SELECT count(*) FROM ledger").fetchone()[0])  # type: ignore[index]


def _ratio(a: list[float], b: list[float]) -> float:
    return statistics.median(a) / statistics.median(b)


def run(customers: int, admin_url: str, repeat: int, big_ledger: int) -> list[tuple[str, str]]:
    """Seed billing at N and 4N customers, then measure in interleaved repetitions."""
    from billing.generator import seed_billing
    from finsync.db import make_engine

    sizes = (customers, 4 * customers)
    billing_dbs: dict[int, tuple[str, str]] = {}
    times: dict[tuple[int, str], list[float]] = {}
    facts: dict[int, dict[str, float]] = {}
    raw_rows: dict[int, int] = {}
    results: list[tuple[str, str]] = []
    kept: dict[int, str] = {}  # a state store per size, synced, for the no-op measures
    try:
        for size in sizes:
            billing_dbs[size] = _create_database(admin_url)
            billing = make_engine(billing_dbs[size][1])
            seed_billing(billing, customers=size, months=12, seed=7)
            billing.dispose()
        with tempfile.TemporaryDirectory() as tmp:
            for rep in range(repeat):
                for size in sizes:
                    billing_url = billing_dbs[size][1]
                    raw_rows[size], seconds = raw_read(billing_url)
                    times.setdefault((size, "raw"), []).append(seconds)
                    name, state_url = _create_database(admin_url)
                    folder = Path(tmp) / f"{size}-{rep}"
                    folder.mkdir()
                    config = _write_config(folder, billing_url, state_url)
                    measured = first_sync(config, state_url)
                    facts[size] = measured
                    for key in ("extract", "push", "first"):
                        times.setdefault((size, key), []).append(measured[key])
                    if size in kept:
                        _drop(admin_url, name)
                    else:
                        kept[size] = name
            big_name, big_url = _create_database(admin_url, template=kept[sizes[1]])
            kept[0] = big_name
            ledger_rows = fill_ledger(big_url, big_ledger)
            engines: dict[int, tuple[Any, dict[str, int]]] = {}
            for size in (*sizes, 0):
                billing_url = billing_dbs[sizes[1] if size == 0 else size][1]
                state_url = (
                    sa.engine.make_url(admin_url)
                    .set(database=kept[size])
                    .render_as_string(hide_password=False)
                )
                folder = Path(tmp) / f"noop-{size}"
                folder.mkdir()
                engine = _engine(_write_config(folder, billing_url, state_url))
                engines[size] = (engine, _counting(engine))
                engine.sync()  # settle this engine (its first run of the revenue checks)
            noop_facts: dict[int, tuple[int, int]] = {}
            for _ in range(repeat):
                for size in (*sizes, 0):
                    seconds, statements, sent = noop_sync(*engines[size])
                    times.setdefault((size, "noop"), []).append(seconds)
                    noop_facts[size] = (statements, sent)
            for engine, _ in engines.values():
                engine.close()
    finally:
        for name in kept.values():
            _drop(admin_url, name)
        for name, _ in billing_dbs.values():
            _drop(admin_url, name)

    n, n4 = sizes
    records = {size: facts[size]["records"] for size in sizes}
    for size in sizes:
        raw, extract = times[(size, "raw")], times[(size, "extract")]
        results += [
            (
                f"{records[size]:,.0f} records: raw psycopg read ({raw_rows[size]:,} rows)",
                spread(raw, 2, " s"),
            ),
            (f"{records[size]:,.0f} records: extract + map + enqueue", spread(extract, 2, " s")),
            (
                f"{records[size]:,.0f} records: ratio pipeline rate / raw read rate",
                f"{_ratio(raw, extract):.3f}",
            ),
            (
                f"{records[size]:,.0f} records: push to the scripted target",
                f"{facts[size]['sent']:,.0f} sent, {spread(times[(size, 'push')], 2, ' s')}",
            ),
            (
                f"{records[size]:,.0f} records: first sync (extract + push)",
                spread(times[(size, "first")], 2, " s"),
            ),
        ]
    growth = records[n4] / records[n]
    results += [
        (
            f"first sync 4N / N (records x{growth:.2f})",
            f"wall x{_ratio(times[(n4, 'first')], times[(n, 'first')]):.2f} "
            f"(extract x{_ratio(times[(n4, 'extract')], times[(n, 'extract')]):.2f}, "
            f"push x{_ratio(times[(n4, 'push')], times[(n, 'push')]):.2f})",
        ),
    ]
    for size, label in ((n, f"{records[n]:,.0f}"), (n4, f"{records[n4]:,.0f}"), (0, "")):
        statements, sent = noop_facts[size]
        name = f"no-op sync, {ledger_rows:,} ledger rows" if size == 0 else f"no-op sync, {label}"
        took = spread(times[(size, "noop")], 0, " ms", scale=1000)
        results.append((name, f"{took}, {statements} SQL statements, {sent} sent"))
    results += [
        ("no-op sync 4N / N", f"x{_ratio(times[(n4, 'noop')], times[(n, 'noop')]):.2f}"),
        (
            f"no-op sync {ledger_rows:,} ledger rows / 4N",
            f"x{_ratio(times[(0, 'noop')], times[(n4, 'noop')]):.2f}",
        ),
    ]
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N = about 2,500 records")
    parser.add_argument("--pg", default=PG, help="admin URL of the PostgreSQL server")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions (at least 3)")
    args = parser.parse_args()
    customers = 130 if args.quick else 520
    big = 200_000 if args.quick else BIG_LEDGER
    print(
        f"### Sync engine on PostgreSQL (N = {customers:,} customers x 12 months, "
        f"4N = {4 * customers:,}; median of {args.repeat} interleaved runs, (min-max))\n"
    )
    print("| measure | result |\n|---|---|")
    for measure, value in run(customers, args.pg, max(args.repeat, 3), big):
        print(f"| {measure} | {value} |")


if __name__ == "__main__":
    main()
