"""The environment the tests run in is exactly requirements.lock: nothing installed by hand,
nothing missing, every version the pinned one (so every machine runs the same code)."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

LOCK = Path(__file__).resolve().parents[1] / "requirements.lock"


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_installed_distributions_are_the_lock():
    pinned = dict(
        (_canonical(m.group(1)), m.group(2))
        for m in re.finditer(r"^([A-Za-z0-9_.\-]+)==([^\s\\;]+)", LOCK.read_text(), re.M)
    )
    installed = {
        _canonical(d.metadata["Name"]): d.version
        for d in metadata.distributions()
        if _canonical(d.metadata["Name"]) != "finsync"
    }
    assert len(pinned) > 100  # the lock holds the transitive closure, not just direct deps
    assert {n: v for n, v in installed.items() if pinned.get(n) != v} == {}
    assert sorted(set(pinned) - set(installed)) == []


def test_every_locked_requirement_carries_hashes():
    entries = re.split(r"\n(?=[A-Za-z0-9])", LOCK.read_text().split("\n\n", 1)[-1])
    pins = [e for e in entries if "==" in e.split("\n", 1)[0]]
    assert pins and all("--hash=sha256:" in e for e in pins)
