"""Benchmark: the monthly workbook for a month of 20,000 and 50,000 invoice lines (``--sizes``
for others; 1,000,000 takes far longer than `make bench` may), and the
same month after 1 and after 3 years of history.

Seeding: ``billing.generator`` writes a small base (a few thousand customers over the months
asked), then PostgreSQL copies it ``k`` times in SQL (``generate_series``): every id shifted by
the table's largest id times the copy number, every unique number or reference suffixed with
the copy number, foreign keys shifted with the table they point at. The copies are valid billing
as the base is (validation rejects nothing of them that it would not reject of the base).
Every invoice, credit note and payment is then marked synced in the ledger.

Per size, in child processes (so each has its own peak memory, ``ru_maxrss``):

* a warm-up report run, not timed, that also captures every cell value the workbook holds
  (sheet by sheet, row by row) into a pickle file. It is the first report on this billing, so it
  validates all of billing and stores the verdicts (``sync.verdicts``), as the last sync before
  a report does in production; its validation time is shown apart ("first look");
* then, interleaved, ``--repeat`` times: the report (time and peak memory; the share of it spent
  in ``find_left_out``: billing's fingerprint and the stored verdicts), and
  the baseline: plain openpyxl
  write-only writing exactly those cells (same sheets, same values, dates, formulas as
  strings; no styles). The baseline's time counts only ``ws.append`` and ``save``, not the
  reading of the captured values.

History: the same month (a base of the same customers, so a month of about the same size) after
12 and after 36 months of history; report runs interleaved, ratio of the medians.

Prints a markdown section (medians with their min-max spread, ratios beside them).

    .venv/bin/python -m benchmarks.bench_workbook [--quick] [--pg URL] [--sizes 100000,1000000]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pickle
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

PG = os.environ.get("FINSYNC_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
#: The generator writes about this many invoice lines per customer and month.
LINES_PER_CUSTOMER = 1.86
#: The month every workbook reports on.
MONTH = date(2026, 10, 1)
#: Largest base the generator writes (in invoice lines of the month); bigger sizes are copies.
BASE_LINES = 20_000
#: Unique text columns a copy suffixes with its number.
UNIQUE_TEXT = {
    "customers": "account_number",
    "invoices": "number",
    "credit_notes": "number",
    "payments": "reference",
    "refunds": "reference",
}


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- children ------------------------------------------------------------------------------


def child_report(url: str, out: str, capture: str = "") -> dict[str, float]:
    """Build the workbook of MONTH; with ``capture``, also pickle every row's values there."""
    from openpyxl.worksheet._write_only import WriteOnlyWorksheet

    from finsync.db import make_engine
    from reports import build_monthly_report, monthly, workbook

    validation = [0.0]
    find_left_out = workbook.find_left_out

    def timed_left_out(*args: Any, **kwargs: Any) -> monthly.LeftOut:
        began = time.perf_counter()
        try:
            return find_left_out(*args, **kwargs)
        finally:
            validation[0] += time.perf_counter() - began

    workbook.find_left_out = timed_left_out  # type: ignore[attr-defined]
    sink = open(capture, "wb") if capture else None  # noqa: SIM115
    if sink is not None:
        append = WriteOnlyWorksheet.append

        def record(ws: WriteOnlyWorksheet, cells: list[Any]) -> None:
            pickle.dump((ws.title, [c.value for c in cells]), sink, protocol=5)
            append(ws, cells)

        WriteOnlyWorksheet.append = record  # type: ignore[method-assign]
    engine = make_engine(url)
    began = time.perf_counter()
    result = build_monthly_report(
        engine,
        engine,
        period=f"{MONTH:%Y-%m}",
        entity=None,
        out_dir=Path(out),
        timezone=ZoneInfo("UTC"),
    )
    seconds = time.perf_counter() - began
    if sink is not None:
        sink.close()
    return {
        "seconds": seconds,
        "validation": validation[0],
        "peak_mb": _peak_mb(),
        "doc_rows": sum(result.rows.values()),
        "bytes": result.path.stat().st_size,
    }


def child_raw(capture: str, out: str) -> dict[str, float]:
    """Plain openpyxl write-only writing the captured cells; times appends and save only."""
    from openpyxl import Workbook

    began = time.perf_counter()
    wb = Workbook(write_only=True)
    sheets: dict[str, Any] = {}
    spent = time.perf_counter() - began
    cells = 0
    with open(capture, "rb") as source:
        while True:
            try:
                title, values = pickle.load(source)
            except EOFError:
                break
            cells += len(values)
            began = time.perf_counter()
            ws = sheets.get(title)
            if ws is None:
                ws = sheets[title] = wb.create_sheet(title)
            ws.append(values)
            spent += time.perf_counter() - began
    began = time.perf_counter()
    wb.save(Path(out) / "plain.xlsx")
    spent += time.perf_counter() - began
    return {"seconds": spent, "peak_mb": _peak_mb(), "cells": cells}


def _run_child(*args: str) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_workbook", "--child", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        raise SystemExit(f"benchmark child {args[0]} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


# --- seeding -------------------------------------------------------------------------------


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _replicate(engine: sa.Engine, copies: int) -> None:
    """Add ``copies - 1`` shifted copies of every billing row but the products (see module)."""
    from billing import schema

    tables = [t for t in schema.metadata.sorted_tables if t.name != "products"]
    with engine.begin() as conn:
        offsets = {
            t.name: int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(t.c.id), 0))).scalar())
            for t in tables
        }
        for t in tables:
            exprs = []
            for col in t.columns:
                fks = [fk.column.table.name for fk in col.foreign_keys]
                if col.primary_key:
                    exprs.append(f"src.{col.name} + k * {offsets[t.name]}")
                elif fks and fks[0] in offsets:
                    exprs.append(f"src.{col.name} + k * {offsets[fks[0]]}")
                elif UNIQUE_TEXT.get(t.name) == col.name:
                    exprs.append(f"src.{col.name} || '-' || k")
                else:
                    exprs.append(f"src.{col.name}")
            names = ", ".join(c.name for c in t.columns)
            conn.execute(
                sa.text(
                    f"INSERT INTO {t.name} ({names}) SELECT {', '.join(exprs)} "
                    f"FROM {t.name} AS src CROSS JOIN generate_series(1, {copies - 1}) AS k"
                )
            )


def _seed(label: str, *, customers: int, months: int, copies: int) -> tuple[str, str, int]:
    """A fresh database: the base, its copies and the ledger; returns name, URL, month's lines."""
    from billing.generator import seed_billing
    from finsync.db import make_engine
    from sync import state

    name = f"finsync_bench_wb_{label}_{os.getpid()}"
    admin = sa.create_engine(PG, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = sa.engine.make_url(PG).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    start = _add_months(MONTH, 1 - months)
    seed_billing(engine, customers=customers, months=months, seed=7, start=start)
    if copies > 1:
        _replicate(engine, copies)
    state.metadata.create_all(engine)
    with engine.begin() as conn:
        for kind, table, key in (
            ("invoice", "invoices", "number"),
            ("credit_note", "credit_notes", "number"),
            ("payment", "payments", "reference"),
        ):
            conn.execute(
                sa.text(
                    "INSERT INTO ledger (target, kind, source_id, label, external_id, status, "
                    "internal_id, operation, attempts, depends_on, created_at, updated_at) "
                    f"SELECT 'netsuite', '{kind}', id::text, '{kind} ' || {key}, {key}, "
                    f"'synced', 'NS-' || id, 'upsert', 1, '[]', now(), now() FROM {table}"
                )
            )
        lines = conn.execute(
            sa.text(
                "SELECT count(*) FROM invoice_lines l JOIN invoices i ON i.id = l.invoice_id "
                "WHERE i.issue_date >= :start AND i.issue_date < :end"
            ),
            {"start": MONTH, "end": _add_months(MONTH, 1)},
        ).scalar()
    # A live billing database has planner statistics (autovacuum); a fresh bulk load has none.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE"))
    engine.dispose()
    return name, url, int(lines or 0)


def _drop(name: str) -> None:
    admin = sa.create_engine(PG, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


def _base(lines: int) -> tuple[int, int]:
    """Customers of the generated base and the number of copies for a month of ``lines``."""
    copies = max(1, math.ceil(lines / BASE_LINES))
    return math.ceil(lines / copies / LINES_PER_CUSTOMER), copies


# --- figures -------------------------------------------------------------------------------


def _spread(values: list[float], fmt: Callable[[float], str]) -> str:
    return f"{fmt(statistics.median(values))} ({fmt(min(values))}-{fmt(max(values))})"


def _s(x: float) -> str:
    return f"{x:.1f}" if x >= 10 else f"{x:.2f}"


def _mb(x: float) -> str:
    return f"{x:.0f}"


def _size_row(lines: int, repeat: int) -> str:
    customers, copies = _base(lines)
    began = time.perf_counter()
    name, url, month_lines = _seed(f"{lines}", customers=customers, months=1, copies=copies)
    seeded = time.perf_counter() - began
    report: list[dict[str, float]] = []
    raw: list[dict[str, float]] = []
    try:
        with tempfile.TemporaryDirectory() as out:
            capture = str(Path(out) / "cells.pickle")
            warm = _run_child("report", url, out, capture)
            for _ in range(repeat):
                report.append(_run_child("report", url, out))
                raw.append(_run_child("raw", capture, out))
    finally:
        _drop(name)
    times = [r["seconds"] for r in report]
    plain = [r["seconds"] for r in raw]
    ratios = [a / b for a, b in zip(times, plain, strict=True)]
    share = [r["validation"] / r["seconds"] for r in report]
    return (
        f"| {month_lines:,} | {int(warm['doc_rows']):,} | {int(raw[0]['cells']):,} "
        f"| {seeded:.0f} | {_spread(times, _s)} | {_spread(plain, _s)} "
        f"| **{statistics.median(times) / statistics.median(plain):.2f}** "
        f"({min(ratios):.2f}-{max(ratios):.2f}) "
        f"| {_spread([r['validation'] for r in report], _s)} "
        f"({statistics.median(share):.0%}) "
        f"| {_spread([r['peak_mb'] for r in report], _mb)} "
        f"| {_spread([r['peak_mb'] for r in raw], _mb)} "
        f"| {_s(warm['validation'])}, {_mb(warm['peak_mb'])} MB |"
    )


def _history_rows(lines: int, repeat: int) -> list[str]:
    customers, copies = _base(lines)
    seeded: dict[int, tuple[str, str, int]] = {}
    runs: dict[int, list[dict[str, float]]] = {12: [], 36: []}
    first: dict[int, float] = {}
    try:
        for years in (12, 36):
            seeded[years] = _seed(f"h{years}", customers=customers, months=years + 1, copies=copies)
        with tempfile.TemporaryDirectory() as out:
            for years in (12, 36):  # warm-up: validates and stores the verdicts
                first[years] = _run_child("report", seeded[years][1], out)["validation"]
            for _ in range(repeat):
                for years in (12, 36):
                    runs[years].append(_run_child("report", seeded[years][1], out))
    finally:
        for name, _, _ in seeded.values():
            _drop(name)
    med = {k: statistics.median(r["seconds"] for r in v) for k, v in runs.items()}
    rest = {
        k: statistics.median(r["seconds"] - r["validation"] for r in v) for k, v in runs.items()
    }
    rows = []
    for years in (12, 36):
        times = [r["seconds"] for r in runs[years]]
        rows.append(
            f"| {years} | {seeded[years][2]:,} | {_spread(times, _s)} "
            f"| {_spread([r['validation'] for r in runs[years]], _s)} "
            f"| {_spread([r['seconds'] - r['validation'] for r in runs[years]], _s)} "
            f"| {_spread([r['peak_mb'] for r in runs[years]], _mb)} "
            f"| {med[years] / med[12]:.2f} | {rest[years] / rest[12]:.2f} "
            f"| {_s(first[years])} |"
        )
    return rows


def main() -> None:
    """Run the benchmark and print the markdown section."""
    global PG
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (10k, 30k lines)")
    parser.add_argument("--sizes", help="comma-separated invoice line counts of the month")
    parser.add_argument("--history-lines", type=int, help="lines of the history test's month")
    parser.add_argument("--repeat", type=int, default=3, help="interleaved repetitions")
    parser.add_argument("--pg", default=PG, help="PostgreSQL server URL (a database to start)")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    PG = args.pg
    if args.child:
        kind, *rest = args.child
        out = child_report(*rest) if kind == "report" else child_raw(*rest)
        print(json.dumps(out))
        return
    sizes = (
        [int(s) for s in args.sizes.split(",")]
        if args.sizes
        else ([10_000, 30_000] if args.quick else [20_000, 50_000])
    )
    history_lines = args.history_lines or (2_000 if args.quick else 3_000)
    began = time.perf_counter()
    table = [
        "| invoice lines in month | document rows | cells | seed s | workbook s "
        "| openpyxl plain s | time ratio | of it verdicts s (share) | workbook peak MB "
        "| plain peak MB | first look: validation s, peak |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for lines in sizes:
        table.append(_size_row(lines, args.repeat))
        print(table[-1], file=sys.stderr, flush=True)
    history = [
        "| months of history | invoice lines in month | workbook s | of it verdicts s "
        "| workbook without verdicts s | peak MB | vs 12 months | without verdicts, "
        "vs 12 months | first look: validation s |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        *_history_rows(history_lines, args.repeat),
    ]
    print("### Monthly workbook on PostgreSQL, next to plain openpyxl write-only\n")
    print(
        f"Medians of {args.repeat} interleaved runs, (min-max) beside them; the baseline writes "
        "the very cells of the workbook (captured in a warm-up run) without styles. Ratio: "
        "median workbook time / median baseline time, (min-max) of the per-pair ratios. "
        "Verdicts: billing's fingerprint and the verdicts stored by the first look (the "
        "warm-up run, which validated all of billing and captured the cells; its validation "
        "time and peak memory are the last column).\n"
    )
    print("\n".join(table))
    print(f"\n#### Same month ({MONTH:%Y-%m}) after 12 and 36 months of history\n")
    print("\n".join(history))
    print(f"\nWall time of this benchmark: {time.perf_counter() - began:.0f} s.")


if __name__ == "__main__":
    main()
