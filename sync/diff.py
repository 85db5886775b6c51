"""What changed between two payloads, as a flat list of field paths (for re-sync previews)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

_MISSING = object()


@dataclass(frozen=True)
class Change:
    """One field that differs: its path (``itemList.item[2].amount``), old and new values."""

    path: str
    old: Any
    new: Any

    def __str__(self) -> str:
        old = "(absent)" if self.old is _MISSING else repr(self.old)
        new = "(absent)" if self.new is _MISSING else repr(self.new)
        return f"{self.path}: {old} -> {new}"


def _walk(old: Any, new: Any, path: str) -> Iterator[Change]:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            yield from _walk(
                old.get(key, _MISSING),
                new.get(key, _MISSING),
                f"{path}.{key}" if path else str(key),
            )
    elif isinstance(old, list) and isinstance(new, list):
        for index in range(max(len(old), len(new))):
            yield from _walk(
                old[index] if index < len(old) else _MISSING,
                new[index] if index < len(new) else _MISSING,
                f"{path}[{index}]",
            )
    elif old != new:
        yield Change(path or "(root)", old, new)


def diff_payloads(old: Any, new: Any) -> list[Change]:
    """Every leaf that differs between ``old`` and ``new`` (None old = everything is new)."""
    if old is None:
        return [Change("(document)", _MISSING, "new document")]
    return list(_walk(old, new, ""))
