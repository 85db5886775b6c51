"""How every benchmark prints a measured figure: the median, then the spread (min-max)."""

from __future__ import annotations

import statistics
from collections.abc import Sequence


def spread(values: Sequence[float], digits: int = 2, unit: str = "", scale: float = 1.0) -> str:
    """``median<unit> (min-max)`` of ``values`` times ``scale``, with thousands separators,
    e.g. ``1,567 invoices/s (1,195-1,820)`` or ``38 ms (37-43)``."""
    low, mid, high = (scale * v for v in (min(values), statistics.median(values), max(values)))
    return f"{mid:,.{digits}f}{unit} ({low:,.{digits}f}-{high:,.{digits}f})"
