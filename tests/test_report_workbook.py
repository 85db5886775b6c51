"""The workbook as finance opens it: LibreOffice recalculates it, formulas tie, text stays text."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path
from zoneinfo import ZoneInfo

import openpyxl
import pytest
import sqlalchemy as sa
from openpyxl.worksheet.worksheet import Worksheet

from reports import build_monthly_report
from reports.workbook import ReportResult, money_format
from tests.libreoffice import convert
from tests.report_seed import INJECTIONS, PERIOD, seed_billing, seed_ledger

SHEETS = [
    "Summary",
    "Invoices",
    "Credit notes",
    "Payments",
    "Revenue",
    "AR aging",
    "Tax",
    "Reconciliation",
]
ERRORS = ("#VALUE!", "#REF!", "#NAME?", "#DIV/0!", "#N/A", "#NUM!", "#NULL!", "Err:")


@pytest.fixture
def report(db_engine: sa.Engine, tmp_path: Path) -> ReportResult:
    seed_billing(db_engine)
    seed_ledger(db_engine)
    return build_monthly_report(
        db_engine,
        db_engine,
        period=PERIOD,
        entity=None,
        out_dir=tmp_path / "out",
        timezone=ZoneInfo("UTC"),
    )


def _rows(ws: Worksheet) -> list[tuple[object, ...]]:
    return [tuple(r) for r in ws.iter_rows(values_only=True)]


def _row(ws: Worksheet, first: object) -> tuple[object, ...]:
    matches = [r for r in _rows(ws) if r and r[0] == first]
    assert len(matches) == 1, f"{ws.title}: {first!r} found {len(matches)} times"
    return matches[0]


def _cents(value: object) -> D:
    assert isinstance(value, int | float), value
    return D(str(value)).quantize(D("0.001"))


def test_libreoffice_recalculates_totals_that_tie(report: ReportResult, tmp_path: Path) -> None:
    recalculated = convert(report.path, tmp_path / "lo")
    wb = openpyxl.load_workbook(recalculated, data_only=True)
    assert wb.sheetnames == SHEETS
    for ws in wb:
        for row in ws.iter_rows():
            for cell in row:
                assert cell.data_type != "e", f"{ws.title}!{cell.coordinate} = {cell.value}"
                if isinstance(cell.value, str):
                    assert not cell.value.startswith(ERRORS), (ws.title, cell.coordinate)
    summary = wb["Summary"]
    ties = [r[7] for r in _rows(summary) if r[0] in ("USD", "JPY", "KWD")]
    assert ties == ["yes", "yes", "yes"]
    # Document sheets: SUMIFS per currency, voids and failed payments left out.
    inv = _row(wb["Invoices"], "Total USD")
    assert [_cents(v) for v in inv[7:10]] == [D("1800"), D("158.13"), D("1958.13")]
    assert _cents(_row(wb["Invoices"], "Total JPY")[9]) == D("32780")
    assert _cents(_row(wb["Credit notes"], "Total USD")[9]) == D("120")
    pay = _row(wb["Payments"], "Total USD")
    assert [_cents(v) for v in pay[7:11]] == [D("300"), D("100"), D("200"), D("8.7")]
    # Revenue: recognized per currency and the roll-forward's closing formula.
    revenue = wb["Revenue"]
    assert _cents(next(r for r in _rows(revenue) if r[1] == "Total USD")[3]) == D("800")
    closing = {r[1]: _cents(r[6]) for r in _rows(revenue) if r[0] in ("acme-us", "acme-jp")}
    assert closing == {"USD": D("1300"), "JPY": D("19866")}
    usd_waterfall = [r for r in _rows(revenue) if r[0] == "USD" and len(r) > 14][-1]
    assert _cents(usd_waterfall[14]) == D("1300")
    aging = _row(wb["AR aging"], "Total USD")
    assert [_cents(v) for v in aging[3:9]] == [
        D("1850.88"),
        D("87.25"),
        D(0),
        D("300"),
        D(0),
        D("2238.13"),
    ]
    # Tax: billed vs what AvaTax computed (INV-1 0.01 apart; INV-3 not in the engine).
    tax = wb["Tax"]
    ny = _row(tax, "US-NY")
    assert [_cents(v) for v in ny[4:8]] == [D("150.88"), D("150.88"), D("150.87"), D("0.01")]
    assert _row(tax, "US-CA")[8] == 1
    assert _cents(_row(tax, "Total USD")[7]) == D("0.01")
    assert _row(tax, "INV-1")[7] == 0.01
    recon = {(r[0], r[1]): r for r in _rows(wb["Reconciliation"]) if r[0] == "Invoices"}
    assert recon[("Invoices", "USD")][6] == 1  # INV-3 failed to sync
    assert _cents(recon[("Invoices", "USD")][7]) == D("107.25")


def test_formula_injection_stays_text(report: ReportResult, tmp_path: Path) -> None:
    wb = openpyxl.load_workbook(report.path)
    found: dict[str, list[str]] = {}
    for ws in wb:
        assert not ws._hyperlinks, ws.title
        for row in ws.iter_rows():
            for cell in row:
                if cell.value in INJECTIONS:
                    assert cell.data_type == "s", (ws.title, cell.coordinate)
                    assert cell.quotePrefix, (ws.title, cell.coordinate)
                    found.setdefault(str(cell.value), []).append(ws.title)
    assert set(found) == {INJECTIONS[0], INJECTIONS[1], INJECTIONS[2], INJECTIONS[3], INJECTIONS[4]}
    assert "Invoices" in found[INJECTIONS[0]] and "AR aging" in found[INJECTIONS[0]]
    # LibreOffice keeps them as the same text (it computes no HYPERLINK, no 1+1).
    lo = openpyxl.load_workbook(convert(report.path, tmp_path / "lo"), data_only=True)
    inv3 = _row(lo["Invoices"], "INV-3")
    assert inv3[2:4] == (INJECTIONS[1], INJECTIONS[0])
    assert inv3[11] == INJECTIONS[2]
    assert _row(lo["Credit notes"], "CN-1")[11] == INJECTIONS[4]
    assert _row(lo["Payments"], INJECTIONS[3])[7] == 50


def test_finance_formatting(report: ReportResult) -> None:
    wb = openpyxl.load_workbook(report.path)
    for title in (
        "Invoices",
        "Credit notes",
        "Payments",
        "Revenue",
        "AR aging",
        "Tax",
        "Reconciliation",
    ):
        assert wb[title].freeze_panes == "A2", title
        assert wb[title].auto_filter.ref, title
        assert wb[title]["A1"].font.bold
    invoices = wb["Invoices"]
    assert invoices.auto_filter.ref == "A1:N5"
    assert invoices.column_dimensions["D"].width >= 20
    by_number = {row[0].value: row for row in invoices.iter_rows(min_row=2, max_row=5)}
    jpy, usd = by_number["INV-5"], by_number["INV-1"]
    assert jpy[9].number_format == money_format("JPY") == "#,##0;[Red]-#,##0"
    assert usd[9].number_format == "#,##0.00;[Red]-#,##0.00"
    assert usd[9].value == 1850.88 and usd[4].is_date
    assert usd[4].number_format == "yyyy-mm-dd"
    kwd = next(r for r in wb["AR aging"].iter_rows(min_row=2) if r[2].value == "KWD")
    assert kwd[5].number_format == "#,##0.000;[Red]-#,##0.000"
    total = next(r for r in invoices.iter_rows() if r[0].value == "Total USD")
    assert total[9].value.startswith("=ROUND(SUMIFS(J$2:J$5,")


def test_written_atomically(report: ReportResult, db_engine: sa.Engine) -> None:
    first = report.path.read_bytes()
    again = build_monthly_report(
        db_engine,
        db_engine,
        period=PERIOD,
        entity=None,
        out_dir=report.path.parent,
        timezone=ZoneInfo("UTC"),
    )
    assert again.path == report.path
    assert [p.name for p in report.path.parent.iterdir()] == [report.path.name]
    assert first[:2] == b"PK" and again.path.read_bytes()[:2] == b"PK"
