"""Benchmark: the monthly workbook for a month of 1,000,000 invoice lines (about 11 minutes here,
so `make bench` leaves it out: `make bench BENCH_ARGS="--only bench_workbook_1m"`).

The same measures as ``bench_workbook`` (its seeding, first look, report against plain openpyxl
and peak memory), with one repetition at that size and a small history check beside it.

    .venv/bin/python -m benchmarks.bench_workbook_1m
"""

from __future__ import annotations

import sys

from benchmarks import bench_workbook


def main() -> None:
    """Run ``bench_workbook`` at 1,000,000 lines, once."""
    sys.argv = [sys.argv[0], "--sizes", "1000000", "--repeat", "1", "--history-lines", "2000"]
    bench_workbook.main()


if __name__ == "__main__":
    main()
