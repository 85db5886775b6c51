"""Setting up a sync engine over a test database and the scripted target."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from finsync.config import Config, load_config
from finsync.db import make_engine as open_database
from sync.engine import SyncEngine
from sync.migrate import upgrade

REPO = Path(__file__).resolve().parents[1]


class Clock:
    """A controllable, timezone-aware clock."""

    def __init__(self, start: datetime = datetime(2026, 2, 1, 12, 0, tzinfo=UTC)) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.now += timedelta(seconds=seconds)


@dataclass
class Setup:
    """Paths and config of one engine test."""

    config_path: Path
    mapping_path: Path
    store_path: Path

    def config(self) -> Config:
        """Load (again) the config file."""
        return load_config(self.config_path)


SYNC_DEFAULTS = {
    "lookback_seconds": 300,
    "backoff_base_seconds": 30,
    "backoff_max_seconds": 600,
    "max_attempts": 3,
    "lease_seconds": 60,
}


def write_config(
    tmp_path: Path,
    db_url: str,
    *,
    mode: str = "upsert",
    extra: str = "",
    sync: dict[str, int] | None = None,
) -> Setup:
    """A finsync.toml using ``db_url`` for billing and state, and a scripted target 'erp'.

    ``sync`` overrides settings of the [sync] section; ``extra`` adds lines to the target's.
    """
    sync_lines = "\n".join(f"{k} = {v}" for k, v in (SYNC_DEFAULTS | (sync or {})).items())
    mapping = tmp_path / "mapping.toml"
    shutil.copy(REPO / "mapping.example.toml", mapping)
    store = tmp_path / "target.db"
    config = tmp_path / "finsync.toml"
    config.write_text(f"""
[billing]
url = "{db_url}"

[state]
url = "{db_url}"

[mapping]
file = "mapping.toml"

[sync]
{sync_lines}

[targets.erp]
system = "scripted"
store = "{store}"
mode = "{mode}"
{extra}
""")
    return Setup(config, mapping, store)


def make_engine(setup: Setup, clock: Clock) -> SyncEngine:
    """A SyncEngine over the setup, with the state store migrated."""
    config = setup.config()
    # The test plays the billing system, so its billing engine may write (finsync's own is
    # read-only).
    billing = open_database(config.billing_url)
    engine = SyncEngine(config, billing=billing, clock=clock, actor="test-accountant")
    upgrade(engine.state)
    return engine
