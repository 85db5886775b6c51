"""The Exceptions sheet: every billing record validation rejected, and what is left out per
currency code.
"""

from __future__ import annotations

from core.money import is_known_currency
from reports.common import MONEY_KINDS, LeftOut
from reports.sheets.writer import WRAP, Book, Sheet


def write_exceptions(wb: Book, left_out: LeftOut) -> int:
    """Every record validation rejected, with its amount and each reason with its fix; then the
    records and money left out per currency code as billing holds it."""
    s = Sheet(wb, "Exceptions", [14, 30, 10, 15, 15, 22, 70])
    s.freeze("A2")
    s.header(
        [
            "Kind",
            "Record",
            "Currency",
            "Amount",
            "Money left out",
            "Field",
            "What is wrong and what to do",
        ],
        numeric={3, 4},
    )
    for r in left_out.rejections:
        code = r.currency if r.currency is not None else "(none)"
        fmt_code = code if is_known_currency(code) else "USD"
        money = r.amount if r.kind in MONEY_KINDS else None
        s.append(
            [
                s.text(r.kind.replace("_", " ")),
                s.text(r.label, alignment=WRAP),
                s.text(code),
                s.money(r.amount, fmt_code),
                s.money(money, fmt_code),
                s.text(", ".join(p.field for p in r.problems), alignment=WRAP),
                s.text("\n".join(str(p) for p in r.problems), alignment=WRAP),
            ]
        )
    s.autofilter(7, s.row)
    if not left_out.rejections:
        s.note("Every billing record passed validation.")
    last = max(s.row, 2)  # checking formulas need a range below the header, even an empty one
    s.blank()
    s.section("Left out per currency code (as billing holds it)")
    s.header(["Currency", "Records", "Money", "Ties"], numeric={1, 2})
    for code, (count, money) in left_out.per_currency().items():
        row = s.row + 1
        fmt_code = code if is_known_currency(code) else "USD"
        exact = f'EXACT($C$2:$C${last},"{code}")'  # COUNTIF would count "usd" as USD
        check = (
            f"SUMPRODUCT({exact}*1)=B{row},"
            f"ABS(SUMPRODUCT({exact}*$E$2:$E${last})-C{row})<=MAX(1E-6,ABS(C{row})*1E-13)"
        )
        s.append(
            [
                s.text(code),
                s.count(count),
                s.money(money, fmt_code),
                s.formula(f'=IF(AND({check}),"yes","NO")'),
            ]
        )
    s.note(
        "These records break the billing contract (docs/billing-contract.md): they "
        "are in no figure of this workbook and are not sent to any target. Fix them in "
        "billing as each line says; the next sync and workbook take them in."
    )
    return last
