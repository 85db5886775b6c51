"""`make bench`: run every benchmark and write docs/benchmarks.md with the machine and date.

    .venv/bin/python -m benchmarks.run [--quick] [--only NAME ...]

Each benchmark is a module of this folder that prints a markdown section; this runner collects
them under a header naming the machine, and stamps each section with the date and commit it was
measured at, so figures are never read without their context (``--only`` keeps the other
sections with their own stamps). ``bench_workbook_1m`` runs only when named.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

BENCHMARKS = ("bench_seed", "bench_sync", "bench_netsuite", "bench_workbook", "bench_tryton")
#: Run only when named with ``--only`` (too long for every `make bench`).
ON_REQUEST = ("bench_workbook_1m",)
#: Every section, in the order the file lists them.
ORDER = (
    "bench_seed",
    "bench_sync",
    "bench_netsuite",
    "bench_workbook",
    *ON_REQUEST,
    "bench_tryton",
)
OUT = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


_MARK = "<!-- benchmark: {} -->"


def _previous_sections() -> dict[str, str]:
    """The sections of the current docs/benchmarks.md, so `--only` replaces just its own."""
    if not OUT.exists():
        return {}
    text = OUT.read_text()
    found = {}
    for name in ORDER:
        start = text.find(_MARK.format(name))
        if start < 0:
            continue
        body = text[start + len(_MARK.format(name)) + 1 :]
        end = body.find("<!-- benchmark: ")
        found[name] = body[:end] if end >= 0 else body
    return found


def _commit() -> str:
    return (
        subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
        ).stdout.strip()
        or "unknown"
    )


def _machine() -> list[str]:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kib / 1024 / 1024:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    pg = "unreachable"
    try:
        engine = sa.create_engine(
            os.environ.get(
                "FINSYNC_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
            )
        )
        with engine.connect() as conn:
            pg = str(conn.execute(sa.text("SHOW server_version")).scalar())
        engine.dispose()
    except sa.exc.OperationalError:
        pass
    return [
        f"- Written: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; commit {_commit()} (each "
        "section says when and at which commit it was measured)",
        f"- Machine: {cpu}, {os.cpu_count()} cores{memory}, {platform.system()} "
        f"{platform.release()}",
        f"- Python {platform.python_version()}, PostgreSQL {pg} (local, default settings)",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--only", nargs="*", choices=BENCHMARKS + ON_REQUEST, help="run only these")
    args = parser.parse_args()
    chosen = args.only or list(BENCHMARKS)
    sections = _previous_sections() if args.only else {}
    for name in chosen:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        stamp = f"_Measured {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC at commit {_commit()}._"
        command = [sys.executable, "-m", f"benchmarks.{name}"] + (["--quick"] if args.quick else [])
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            sections[name] = (
                f"### {name}\n\nFAILED (exit {done.returncode}):\n\n```\n"
                f"{done.stderr[-2000:]}\n```\n"
            )
        else:
            title, _, rest = done.stdout.strip().partition("\n")
            sections[name] = f"{title}\n\n{stamp}\n{rest}\n"
        print(sections[name], flush=True)
    body: list[str] = []
    for name in ORDER:  # every section, in a fixed order, each under its own marker
        if name in sections:
            body += [_MARK.format(name), sections[name].strip(), ""]
    text = "\n".join(
        [
            "# Benchmarks",
            "",
            "Written by `make bench` (`python -m benchmarks.run`"
            + (" --quick" if args.quick else "")
            + "). Speed and memory targets live here, never in",
            "unit tests.",
            "",
            *_machine(),
            "",
            *body,
        ]
    )
    OUT.write_text(text)
    print(f"wrote {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
