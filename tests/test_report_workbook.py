"""The workbook as finance opens it: LibreOffice recalculates it, formulas tie, text stays text."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
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
    "Refunds",
    "Revenue",
    "AR aging",
    "Credit balances",
    "Tax",
    "Reconciliation",
    "Exceptions",
]
#: The Summary's figure rows and the currencies of the scenario, left to right.
FIGURES = (
    "Invoiced",
    "Tax",
    "Voided (issued earlier)",
    "Credited",
    "Collected",
    "Refunded",
    "Net collected",
    "Recognized",
    "Deferred revenue, closing",
    "Open receivable",
    "Customer credit balances",
)
#: Expected Summary figures, from the scenario's own arithmetic (tests/report_seed.py).
EXPECTED = {
    "JPY": (
        "32780",
        "2980",
        "0",
        "5000",
        "10000",
        "3000",
        "7000",
        "4934",
        "19866",
        "22780",
        "2000",
    ),
    "KWD": ("0", "0", "0", "0", "0", "0", "0", "0", "0", "475.25", "0"),
    "USD": (
        "1958.13",
        "158.13",
        "600",
        "120",
        "300",
        "50",
        "250",
        "730",
        "1300",
        "2238.13",
        "250",
    ),
}
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
    assert _summary(summary) == _expected_summary()
    assert _row(summary, "Ties to sheets")[1:4] == ("yes", "yes", "yes")
    assert _row(summary, "Period")[1] == "1 Oct 2026 to 31 Oct 2026"
    # Document sheets: totals per currency, voids and failed payments left out.
    inv = _row(wb["Invoices"], "Total USD invoiced")
    assert [_cents(v) for v in inv[7:10]] == [D("1800"), D("158.13"), D("1958.13")]
    assert _cents(_row(wb["Invoices"], "Total USD voided")[9]) == D("600")
    assert _cents(_row(wb["Invoices"], "Total JPY invoiced")[9]) == D("32780")
    assert _cents(_row(wb["Credit notes"], "Total USD credited")[9]) == D("120")
    pay = _row(wb["Payments"], "Total USD collected")
    assert [_cents(v) for v in pay[7:11]] == [D("300"), D("100"), D("200"), D("8.7")]
    assert _cents(_row(wb["Refunds"], "Total JPY refunded")[7]) == D("3000")
    # Revenue: recognized per currency, the roll-forward and the waterfall tie.
    revenue = wb["Revenue"]
    assert _cents(next(r for r in _rows(revenue) if r[1] == "Total USD")[3]) == D("730")
    rolls = {r[1]: r for r in _rows(revenue) if r[0] in ("acme-us", "acme-jp")}
    assert {cur: _cents(r[7]) for cur, r in rolls.items()} == {"USD": D("1300"), "JPY": D("19866")}
    assert {r[8] for r in rolls.values()} == {"yes"}
    usd_waterfall = [r for r in _rows(revenue) if r[0] == "USD" and len(r) > 17][-1]
    assert [_cents(v) for v in usd_waterfall[14:17]] == [D("1300"), D(0), D("1300")]
    assert usd_waterfall[17] == "yes"
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
    assert _cents(_row(wb["Credit balances"], "Total JPY")[6]) == D("2000")
    recon = {(r[0], r[1]): r for r in _rows(wb["Reconciliation"]) if r[0] and r[1]}
    assert recon[("Invoices", "USD")][6] == 1  # INV-3 failed to sync
    assert _cents(recon[("Invoices", "USD")][7]) == D("107.25")
    assert recon[("Invoice voids", "USD")][4] == 1  # INV-9's void reached NetSuite
    assert recon[("Refunds", "USD")][6] == 1  # RF-1 is not in the ledger
    assert recon[("Refunds", "JPY")][6] == 0
    # October's USD journal posts the 150.00 of ratable entries; JPY's is not sent yet.
    journals = recon[("Revenue journals", "USD")]
    assert [_cents(v) for v in (journals[3], journals[5], journals[7])] == [
        D("150"),
        D("150"),
        D(0),
    ]
    assert recon[("Revenue journals", "JPY")][4] == 0
    assert _cents(recon[("acme-us", "USD")][5]) == D("150")


def _summary(ws: Worksheet) -> dict[str, dict[str, D]]:
    rows = _rows(ws)
    header = next(r for r in rows if r and r[0] == "Figure")
    out: dict[str, dict[str, D]] = {}
    for r in rows:
        if r and r[0] in FIGURES:
            for cur, value in zip(header[1:], r[1:], strict=False):
                if cur:
                    out.setdefault(str(cur), {})[str(r[0])] = _cents(value)
    return out


def _expected_summary() -> dict[str, dict[str, D]]:
    return {
        cur: {f: D(v).quantize(D("0.001")) for f, v in zip(FIGURES, values, strict=True)}
        for cur, values in EXPECTED.items()
    }


def test_summary_figures_read_without_recalculation(report: ReportResult) -> None:
    # What pandas, a mail preview or openpyxl data_only read: the values as written.
    wb = openpyxl.load_workbook(report.path, data_only=True)
    assert _summary(wb["Summary"]) == _expected_summary()
    # Only the checking formulas ("yes"/"NO") are left to a spreadsheet to compute.
    formulas = openpyxl.load_workbook(report.path)
    checks = [
        c.value for ws in formulas for row in ws.iter_rows() for c in row if c.data_type == "f"
    ]
    assert checks and all(c.startswith("=IF(") and c.endswith('"yes","NO")') for c in checks)


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
    assert inv3[13] == INJECTIONS[2]
    assert _row(lo["Credit notes"], "CN-1")[12] == INJECTIONS[4]
    assert _row(lo["Payments"], INJECTIONS[3])[7] == 50


def test_finance_formatting(report: ReportResult) -> None:
    wb = openpyxl.load_workbook(report.path)
    for title in (
        "Invoices",
        "Credit notes",
        "Payments",
        "Refunds",
        "Revenue",
        "AR aging",
        "Credit balances",
        "Tax",
        "Reconciliation",
    ):
        assert wb[title].freeze_panes == "A2", title
        assert wb[title].auto_filter.ref, title
        assert wb[title]["A1"].font.bold
    invoices = wb["Invoices"]
    assert invoices.auto_filter.ref == "A1:P6"
    assert invoices.column_dimensions["D"].width >= 20
    by_number = {row[0].value: row for row in invoices.iter_rows(min_row=2, max_row=6)}
    jpy, usd = by_number["INV-5"], by_number["INV-1"]
    assert jpy[9].number_format == money_format("JPY") == "#,##0;[Red]-#,##0"
    assert usd[9].number_format == "#,##0.00;[Red]-#,##0.00"
    assert usd[9].value == 1850.88 and usd[4].is_date
    assert usd[4].number_format == "yyyy-mm-dd"
    kwd = next(r for r in wb["AR aging"].iter_rows(min_row=2) if r[2].value == "KWD")
    assert kwd[5].number_format == "#,##0.000;[Red]-#,##0.000"
    total = next(r for r in invoices.iter_rows() if r[0].value == "Total USD invoiced")
    assert total[9].value == 1958.13
    # Headers: numeric ones right-aligned like their numbers, rows tall enough to wrap.
    assert invoices["J1"].alignment.horizontal == "right"
    assert invoices["A1"].alignment.horizontal in (None, "general", "left")
    assert invoices.row_dimensions[1].height >= 15
    tax = wb["Tax"]
    assert tax.row_dimensions[1].height >= 30  # "Tax billed (invoices in engine)" wraps
    assert invoices["N2"].alignment.wrap_text  # memos wrap inside their column
    summary = wb["Summary"]
    assert summary.page_setup.fitToWidth == 1 and summary.sheet_properties.pageSetUpPr.fitToPage


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


def test_rebuilding_a_month_keeps_one_console_row(
    report: ReportResult, db_engine: sa.Engine
) -> None:
    from api.queries import list_workbooks
    from reports.workbook import record_workbook

    first = datetime(2026, 11, 1, 6, tzinfo=UTC)
    with db_engine.begin() as conn:
        one = record_workbook(conn, report, built_at=first)
    again = build_monthly_report(
        db_engine,
        db_engine,
        period=PERIOD,
        entity=None,
        out_dir=report.path.parent,
        timezone=ZoneInfo("UTC"),
    )
    with db_engine.begin() as conn:
        two = record_workbook(conn, again, built_at=first + timedelta(hours=1))
    source, _, items = list_workbooks(db_engine, report.path.parent)
    assert one == two and source == "table"
    assert [(i["name"], i["built_at"]) for i in items] == [
        (report.path.name, first + timedelta(hours=1))
    ]
