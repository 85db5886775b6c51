"""The workbook of an independently built billing database against that builder's own figures.

tests/independent_billing.py writes contract-shaped tables with its own DDL (NUMERIC money on
SQLite too), valid records of every hard kind and a batch of broken ones, and computes what the
October 2026 workbook must show by its own arithmetic. Here the workbook is built, recalculated
by LibreOffice, and every Summary figure per currency compared with those expectations; on
SQLite and PostgreSQL.
"""

from __future__ import annotations

from decimal import Context
from decimal import Decimal as D
from pathlib import Path
from zoneinfo import ZoneInfo

import openpyxl
import sqlalchemy as sa

from mappings.tables import load_mapping_file
from reports import build_monthly_report
from reports.workbook import LEFT_OUT_FIGURES, SUMMARY_FIGURES
from sync import state
from tests.independent_billing import BUCKETS, Dataset, build_independent_billing
from tests.libreoffice import convert

MAPPING = Path(__file__).resolve().parents[1] / "mapping.example.toml"
TZ = ZoneInfo("America/New_York")


def _expected(ds: Dataset) -> dict[str, dict[str, D]]:
    """Per currency, per Summary label: the builder's figure."""
    out: dict[str, dict[str, D]] = {}
    for cur, f in ds.figures.items():
        credit = sum((v for (_, c), v in ds.credit_balances.items() if c == cur), D(0))
        count, money = ds.left_out.get(cur, (0, D(0)))
        values = {
            "invoiced": f.invoiced,
            "tax": f.tax,
            "voided": f.voided,
            "credited": f.credited,
            "collected": f.collected,
            "refunded": f.refunded,
            "net_collected": f.net_collected,
            "recognized": f.recognized,
            "deferred_closing": f.deferred_closing,
            "open_receivable": sum((f.aging[b] for b in BUCKETS), D(0)),
            "credit_balance": credit,
            "left_out_records": D(count),
            "left_out_money": money,
        }
        out[cur] = {label: values[attr] for label, attr in (*SUMMARY_FIGURES, *LEFT_OUT_FIGURES)}
    return out


def _same_number(got: D, want: D) -> bool:
    """Exactly equal, unless ``want`` has more than the 15 significant digits a spreadsheet
    number keeps (only the absurd total of a broken, left-out invoice): then equal to them."""
    if Context(prec=15).plus(want) == want:
        return got == want
    return abs(got - want) <= abs(want) * D("1e-14")


def _summary(path: Path) -> tuple[dict[str, dict[str, D]], dict[str, object], list[str]]:
    """(per currency, per figure label: the value; per currency: Ties; every text row)."""
    ws = openpyxl.load_workbook(path, data_only=True)["Summary"]
    rows = [tuple(r) for r in ws.iter_rows(values_only=True)]
    header = next(r for r in rows if r and r[0] == "Figure")
    labels = {label for label, _ in (*SUMMARY_FIGURES, *LEFT_OUT_FIGURES)}
    out: dict[str, dict[str, D]] = {}
    ties: dict[str, object] = {}
    for r in rows:
        for cur, value in zip(header[1:], r[1:], strict=False):
            if not cur:
                continue
            if r[0] in labels:
                out.setdefault(str(cur), {})[str(r[0])] = D(str(value))
            elif r[0] == "Ties to sheets":
                ties[str(cur)] = value
    notes = [str(r[0]) for r in rows if r and isinstance(r[0], str)]
    return out, ties, notes


def test_workbook_of_an_independent_dataset_matches_its_figures(
    db_engine: sa.Engine, tmp_path: Path
) -> None:
    ds = build_independent_billing(db_engine)
    state.metadata.create_all(db_engine)
    result = build_monthly_report(
        db_engine,
        db_engine,
        period="2026-10",
        entity=None,
        out_dir=tmp_path / "out",
        timezone=TZ,
        mapping=load_mapping_file(MAPPING),
    )
    expected = _expected(ds)
    # Only valid currency codes have columns; every currency the builder expects is there.
    assert [t.currency for t in result.totals] == sorted(expected)
    assert {e for e in result.entities} <= {"acme-us", "acme-jp", "acme-kw"}

    written, _, _ = _summary(result.path)  # as written: readable without recalculation
    recalculated_path = convert(result.path, tmp_path / "lo")
    recalculated, ties, notes = _summary(recalculated_path)
    for got in (written, recalculated):
        for cur, figures in expected.items():
            for label, want in figures.items():
                assert _same_number(got[cur][label], want), (cur, label, got[cur][label], want)
    assert ties == dict.fromkeys(expected, "yes")
    # Records in codes that are not currencies are named, never given a column.
    invalid = {c for c in ds.left_out if c not in expected}
    assert invalid
    line = next(n for n in notes if n.startswith("Also left out, in codes that are not"))
    assert all(code in line for code in invalid)

    # The Exceptions sheet lists every rejected record, with its amount and its reason, and
    # its per-code table ties with the list after recalculation.
    lo = openpyxl.load_workbook(recalculated_path, data_only=True)
    rows = [tuple(r) for r in lo["Exceptions"].iter_rows(min_row=2, values_only=True)]
    listed = rows[: next(i for i, r in enumerate(rows) if not any(r))]
    assert len(listed) == len(ds.rejected)
    assert all(r[1] and r[6] and str(r[6]).startswith(str(r[5]).split(", ")[0]) for r in listed)
    tie_header = rows.index(
        next(r for r in rows if r[:4] == ("Currency", "Records", "Money", "Ties"))
    )
    table = {r[0]: r for r in rows[tie_header + 1 :] if r[0] and r[3] in ("yes", "NO")}
    assert set(table) == set(ds.left_out)
    assert {r[3] for r in table.values()} == {"yes"}
    assert {code: r[1] for code, r in table.items()} == {c: n for c, (n, _) in ds.left_out.items()}
