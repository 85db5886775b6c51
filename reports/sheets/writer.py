"""The workbook writer the sheets share: a write-only workbook whose cells carry a style resolved
once per workbook, typed cell helpers, and the fonts, fills and formats of every sheet.

Every amount cell carries its currency's number format (0 decimals for JPY, 3 for KWD). Text from
billing data is never a formula or a link: every string cell is written as text (inline string),
and one that starts like a formula (= + - @, tab, CR) also gets the quote prefix, so a
spreadsheet keeps it as text even when someone edits the cell.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from core.money import minor_units

HEADER_FONT = Font(bold=True, color="FFFFFF")


HEADER_FILL = PatternFill("solid", fgColor="1F4E78")


SECTION_FONT = Font(bold=True, size=12, color="1F4E78")


TITLE_FONT = Font(bold=True, size=14)


TOTAL_FONT = Font(bold=True)


TOTAL_BORDER = Border(top=Side(style="thin"))


NOTE_FONT = Font(italic=True, color="7F7F7F")


WRAP = Alignment(wrap_text=True, vertical="top", indent=1)


#: Text a little away from the number on its left (a right-aligned amount, then a status).
TEXT = Alignment(indent=1)


CENTER = Alignment(horizontal="center")


HEADER_LEFT = Alignment(wrap_text=True, vertical="bottom")


HEADER_RIGHT = Alignment(wrap_text=True, vertical="bottom", horizontal="right")


LINE_HEIGHT = 15


DEFAULT_WIDTH = 8.43


DATE_FORMAT = "yyyy-mm-dd"


DATETIME_FORMAT = "yyyy-mm-dd hh:mm"


COUNT_FORMAT = "#,##0"


#: Strings that a spreadsheet would read as a formula (or DDE) when typed in.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


_MAX_CELL_TEXT = 32767


PROGRESS_EVERY = 10_000


Progress = Callable[[str, int], None]


def currency_decimals(currency: str) -> int:
    """Decimals of ``currency`` (ISO 4217 minor units; 2 for a code that is not a currency)."""
    try:
        return minor_units(currency)
    except ValueError:  # an unknown code still gets a readable format; mapping flags it
        return 2


def lines_needed(text: str, width: float) -> int:
    """Lines a wrapped ``text`` takes in a column ``width`` characters wide (bold, padded)."""
    usable = max(int(width) - 1, 1)
    lines, used = 1, 0
    for word in text.split():
        size = int(len(word) * 1.1) + 1
        if used and used + size > usable:
            lines, used = lines + 1, 0
        used += size
    return lines


def money_format(currency: str) -> str:
    """Number format with the currency's decimals, negatives in red (JPY ``#,##0``)."""
    decimals = currency_decimals(currency)
    body = "#,##0" + ("." + "0" * decimals if decimals else "")
    return f"{body};[Red]-{body}"


def clean_text(value: str) -> str:
    """``value`` as a cell can hold it: characters XML forbids replaced, cut to Excel's limit.

    Almost every text is printable, which ``str.isprintable`` tells in C; only the rest (a
    control character, a line break, a non-ASCII space) pays for the regular expression.
    """
    if not value.isprintable():
        value = ILLEGAL_CHARACTERS_RE.sub("\ufffd", value)
    return value[:_MAX_CELL_TEXT]


class SheetCell:
    """One cell ready to write: its value, openpyxl data type and workbook style id.

    openpyxl's own cells resolve their font, fill, format and alignment objects one by one for
    every cell (hashing each); here a style is resolved once per workbook (``Styles``) and the
    cell only carries its id. It has exactly what openpyxl's write-only row writer reads.
    """

    __slots__ = ("_value", "column", "data_type", "has_style", "parent", "row", "style_id", "wrap")
    _comment = None
    hyperlink = None

    def __init__(self, ws: WriteOnlyWorksheet, value: Any, data_type: str, style: StyleRef) -> None:
        self.parent = ws
        self._value = value
        self.data_type = data_type
        self.style_id, self.has_style, self.wrap = style
        self.row = self.column = 1

    @property
    def value(self) -> Any:
        """The value written."""
        return self._value

    @property
    def coordinate(self) -> str:
        """``A1``-style address, once the row is appended."""
        return f"{get_column_letter(self.column)}{self.row}"


#: A resolved style: workbook style id, whether it is not the default, whether text wraps.
StyleRef = tuple[int, bool, bool]


class StreamSheet(WriteOnlyWorksheet):  # type: ignore[misc]
    """A write-only worksheet whose rows are lists of ready ``SheetCell`` objects.

    openpyxl's ``append`` would re-type every value and take a cell through an exception to
    tell it from a value; these rows only need their coordinates.
    """

    def _values_to_row(self, values: Iterable[SheetCell], row_idx: int) -> Iterator[SheetCell]:
        for column, cell in enumerate(values, 1):
            cell.row = row_idx
            cell.column = column
            yield cell


class Styles:
    """The workbook's cell styles, each resolved once and then known by its id.

    Keys hold the style objects themselves (module constants) by identity: hashing openpyxl
    style objects is what made per-cell styling slow.
    """

    def __init__(self, wb: Book) -> None:
        self.wb = wb
        self._ids: dict[tuple[Any, ...], tuple[StyleRef, tuple[Any, ...]]] = {}

    def get(
        self,
        ws: WriteOnlyWorksheet,
        *,
        font: Font | None = None,
        fill: PatternFill | None = None,
        fmt: str | None = None,
        border: Border | None = None,
        alignment: Alignment | None = None,
        quote: bool = False,
    ) -> StyleRef:
        """The style with these attributes (None: the default)."""
        objects = (font, fill, border, alignment)
        key = (*map(id, objects), fmt, quote)
        found = self._ids.get(key)
        if found is None:
            cell = WriteOnlyCell(ws)
            apply_style(cell, font=font, fill=fill, fmt=fmt, border=border, alignment=alignment)
            if quote:
                cell.quotePrefix = True
            wrap = bool(alignment is not None and alignment.wrap_text)
            # The objects stay referenced here, so their ids are never reused.
            found = ((cell.style_id, cell.has_style, wrap), objects)
            self._ids[key] = found
        return found[0]


def apply_style(
    cell: WriteOnlyCell,
    *,
    font: Font | None = None,
    fill: PatternFill | None = None,
    fmt: str | None = None,
    border: Border | None = None,
    alignment: Alignment | None = None,
) -> WriteOnlyCell:
    """Set the given style attributes on an openpyxl cell."""
    if font is not None:
        cell.font = font
    if fill is not None:
        cell.fill = fill
    if fmt is not None:
        cell.number_format = fmt
    if border is not None:
        cell.border = border
    if alignment is not None:
        cell.alignment = alignment
    return cell


class Book(Workbook):  # type: ignore[misc]
    """A write-only workbook of ``StreamSheet`` sheets and the styles its cells share."""

    def __init__(self) -> None:
        super().__init__(write_only=True)
        self.styles = Styles(self)

    def create_sheet(self, title: str | None = None, index: int | None = None) -> StreamSheet:
        """A new streaming sheet at the end (or at ``index``)."""
        ws = StreamSheet(parent=self, title=title)
        self._add_sheet(sheet=ws, index=index)
        return ws


class Sheet:
    """A write-only sheet with typed cell helpers; knows which row it is on."""

    def __init__(self, wb: Book, title: str, widths: Sequence[float]) -> None:
        self.ws: WriteOnlyWorksheet = wb.create_sheet(title)
        self.styles = wb.styles
        # Printed or exported to PDF: landscape, all columns on one page width.
        self.ws.page_setup.orientation = "landscape"
        self.ws.page_setup.fitToWidth = 1
        self.ws.page_setup.fitToHeight = 0
        self.ws.sheet_properties.pageSetUpPr.fitToPage = True
        for index, width in enumerate(widths, start=1):
            self.ws.column_dimensions[get_column_letter(index)].width = width
        self.widths = list(widths)
        self.row = 0
        # The commonest cells' styles, looked up without building a key.
        self._plain_text = self.styles.get(self.ws, alignment=TEXT)
        self._quoted_text = self.styles.get(self.ws, alignment=TEXT, quote=True)
        self._money: dict[str, StyleRef] = {}
        self._dates: dict[str, StyleRef] = {}

    def freeze(self, cell: str) -> None:
        """Freeze the panes above and left of ``cell`` (before the first row)."""
        self.ws.freeze_panes = cell

    def text(self, value: str | None, **style: Any) -> SheetCell:
        """A cell that holds ``value`` as text, whatever it starts with (never a formula)."""
        value = clean_text(value) if value else ""
        quote = value.startswith(FORMULA_START)
        if not style:
            return SheetCell(self.ws, value, "s", self._quoted_text if quote else self._plain_text)
        style.setdefault("alignment", TEXT)
        return SheetCell(self.ws, value, "s", self.styles.get(self.ws, quote=quote, **style))

    def money(self, value: Decimal | None, currency: str, **style: Any) -> SheetCell:
        """An amount in ``currency``'s number format."""
        if style:
            found = self.styles.get(self.ws, fmt=money_format(currency), **style)
        else:
            found = self._money.get(currency) or self._money.setdefault(
                currency, self.styles.get(self.ws, fmt=money_format(currency))
            )
        return SheetCell(self.ws, value, "n", found)

    def date(self, value: date | None, fmt: str = DATE_FORMAT) -> SheetCell:
        """A date (or date and time) in ``fmt``."""
        found = self._dates.get(fmt) or self._dates.setdefault(
            fmt, self.styles.get(self.ws, fmt=fmt)
        )
        return SheetCell(self.ws, value, "n" if value is None else "d", found)

    def count(self, value: int, **style: Any) -> SheetCell:
        """A whole number with thousands separators."""
        return SheetCell(self.ws, value, "n", self.styles.get(self.ws, fmt=COUNT_FORMAT, **style))

    def formula(self, text: str, fmt: str | None = None, **style: Any) -> SheetCell:
        """A checking formula (its "yes"/"NO" centred in its column)."""
        style.setdefault("alignment", CENTER)
        return SheetCell(self.ws, text, "f", self.styles.get(self.ws, fmt=fmt, **style))

    def append(self, cells: Iterable[SheetCell]) -> int:
        """Append a row; a row with wrapped text gets the height its longest cell needs."""
        row = list(cells)
        lines = 1
        for index, cell in enumerate(row):
            if cell.wrap and isinstance(cell.value, str):
                width = self.widths[index] if index < len(self.widths) else DEFAULT_WIDTH
                needed = sum(lines_needed(part, width) for part in cell.value.split("\n"))
                lines = max(lines, needed)
        if lines > 1 and self.row + 1 not in self.ws.row_dimensions:
            self.ws.row_dimensions[self.row + 1].height = LINE_HEIGHT * lines + 3
        self.ws.append(row)
        self.row += 1
        return self.row

    def note(self, text: str) -> int:
        """A footnote, wrapped into rows no wider than the sheet's first columns, so it never
        widens the printed page."""
        width = max(int(sum(self.widths[:8]) * 1.1), 60)
        for line in textwrap.wrap(text, width):
            self.append([self.text(line, font=NOTE_FONT)])
        return self.row

    def header(self, titles: Sequence[str], numeric: Collection[int] = ()) -> int:
        """A header row tall enough for its wrapped titles; ``numeric`` (0-based) columns are
        right-aligned like their numbers."""
        lines = 1
        for index, title in enumerate(titles):
            width = self.widths[index] if index < len(self.widths) else DEFAULT_WIDTH
            lines = max(lines, lines_needed(title, width))
        self.ws.row_dimensions[self.row + 1].height = LINE_HEIGHT * lines + 3
        return self.append(
            self.text(
                t,
                font=HEADER_FONT,
                fill=HEADER_FILL,
                alignment=HEADER_RIGHT if index in numeric else HEADER_LEFT,
            )
            for index, t in enumerate(titles)
        )

    def section(self, title: str) -> int:
        """A section title row."""
        return self.append([self.text(title, font=SECTION_FONT)])

    def blank(self) -> int:
        """An empty row."""
        return self.append([])

    def autofilter(self, columns: int, last_row: int, first_row: int = 1) -> None:
        """A filter over columns A to ``columns``, rows ``first_row`` to ``last_row``."""
        end = max(last_row, first_row)
        self.ws.auto_filter.ref = f"A{first_row}:{get_column_letter(columns)}{end}"
