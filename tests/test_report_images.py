"""Pictures of the workbook as LibreOffice renders it (xlsx -> pdf -> png), for docs/images.

The test renders the Summary and Revenue sheets of a demo-like month and checks the pictures
exist. Regenerate the ones in docs/images with:

    .venv/bin/python -m tests.test_report_images
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
MARKERS = {"summary": "Sync health", "revenue": "Deferred revenue roll-forward"}


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
    pdf = convert(result.path, work / "pdf", "pdf")
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


def test_summary_and_revenue_render_as_pictures(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'demo.db'}")
    pictures = render_pictures(engine, tmp_path, tmp_path / "png")
    for path in pictures.values():
        data = path.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    engine.dispose()


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as work:
        demo = make_engine(f"sqlite:///{Path(work) / 'demo.db'}")
        for picture in render_pictures(demo, Path(work), DOCS_IMAGES).values():
            print(picture)
