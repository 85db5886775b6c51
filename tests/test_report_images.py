"""Pictures of the workbook as LibreOffice renders it (xlsx -> pdf -> png), for docs/images.

The test renders the Summary, Revenue and Reconciliation sheets of a demo-like month and checks
the pictures exist. The pictures in docs/images show the workbook `make demo` builds (after a
real sync to the sandboxes); regenerate them with:

    make demo && .venv/bin/python -m tests.test_report_images \
        .finsync/demo/reports/finsync-monthly-2026-10.xlsx
"""

from __future__ import annotations

import subprocess
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from billing.generator import seed_billing
from finsync.db import make_engine
from reports import build_monthly_report
from tests.libreoffice import convert, pdftoppm
from tests.report_seed import seed_ledger

DOCS_IMAGES = Path(__file__).resolve().parents[1] / "docs" / "images"
#: Text that appears on the first page of each pictured sheet.
MARKERS = {
    "summary": "Sync health",
    "revenue": "Deferred revenue roll-forward",
    "reconciliation": "Revenue journals of",
}


def _page_text(pdf: Path, page: int) -> str:
    done = subprocess.run(
        ["pdftotext", "-f", str(page), "-l", str(page), str(pdf), "-"],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def _page_count(pdf: Path) -> int:
    done = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True)
    line = next(x for x in done.stdout.splitlines() if x.startswith("Pages:"))
    return int(line.split()[1])


def render_pictures(engine: sa.Engine, work: Path, out_dir: Path) -> dict[str, Path]:
    """Seed a demo-like month, build its workbook and write summary.png and revenue.png."""
    seed_billing(engine, customers=30, months=4, seed=11, start=date(2026, 7, 1))
    seed_ledger(engine)
    result = build_monthly_report(
        engine,
        engine,
        period="2026-10",
        entity=None,
        out_dir=work / "xlsx",
        timezone=ZoneInfo("Europe/Berlin"),
    )
    return render_workbook(result.path, work, out_dir)


def render_workbook(workbook: Path, work: Path, out_dir: Path) -> dict[str, Path]:
    """Write summary.png, revenue.png and reconciliation.png of ``workbook`` into ``out_dir``."""
    pdf = convert(workbook, work / "pdf", "pdf")
    pages = _page_count(pdf)
    out_dir.mkdir(parents=True, exist_ok=True)
    pictures: dict[str, Path] = {}
    for name, marker in MARKERS.items():
        page = next(p for p in range(1, pages + 1) if marker in _page_text(pdf, p))
        stem = out_dir / f"workbook-{name}"
        subprocess.run(
            [
                pdftoppm(),
                "-png",
                "-r",
                "110",
                "-singlefile",
                "-f",
                str(page),
                "-l",
                str(page),
                str(pdf),
                str(stem),
            ],
            check=True,
        )
        pictures[name] = stem.with_suffix(".png")
    return pictures


def test_summary_revenue_and_reconciliation_render_as_pictures(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'demo.db'}")
    pictures = render_pictures(engine, tmp_path, tmp_path / "png")
    for path in pictures.values():
        data = path.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    engine.dispose()


if __name__ == "__main__":
    import sys
    import tempfile

    with tempfile.TemporaryDirectory() as work:
        if len(sys.argv) > 1:
            pictures = render_workbook(Path(sys.argv[1]), Path(work), DOCS_IMAGES)
        else:
            demo = make_engine(f"sqlite:///{Path(work) / 'demo.db'}")
            pictures = render_pictures(demo, Path(work), DOCS_IMAGES)
        for picture in pictures.values():
            print(picture)
