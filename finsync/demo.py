"""``finsync demo``: the whole job on embedded defaults, from an empty folder to a workbook.

It seeds a SQLite billing database, starts the local NetSuite and AvaTax sandboxes on loopback,
writes a config that points at them, syncs, lets billing edit some records (an amount changed,
an invoice voided, a customer renamed), syncs again, and builds the monthly workbook of the last
full month. Everything lives in one folder (default ``.finsync/demo``), recreated each run.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from finsync.config import Config, load_config

if TYPE_CHECKING:
    from billing.generator import EditSummary
    from sandbox.avatax.server import AvaTaxSandbox
    from sandbox.netsuite import NetSuiteSandbox

#: Environment variables the demo config reads its (public, demo-only) secrets from.
_DEMO_SECRETS = {
    "FINSYNC_DEMO_NS_CONSUMER_KEY": "consumer_key",
    "FINSYNC_DEMO_NS_CONSUMER_SECRET": "consumer_secret",
    "FINSYNC_DEMO_NS_TOKEN_ID": "token_id",
    "FINSYNC_DEMO_NS_TOKEN_SECRET": "token_secret",
}
_MAPPING_EXAMPLE = Path(__file__).resolve().parents[1] / "mapping.example.toml"


@dataclass(frozen=True)
class DemoSettings:
    """How big the demo is and where it lives."""

    folder: Path
    customers: int = 40
    months: int = 12
    seed: int = 42
    start: date = date(2025, 11, 1)
    transport: str = "soap"

    @property
    def report_period(self) -> str:
        """The last full month of the seeded data, as YYYY-MM."""
        month_index = self.start.year * 12 + self.start.month - 1 + self.months - 1
        return f"{month_index // 12:04d}-{month_index % 12 + 1:02d}"


def _config_text(
    settings: DemoSettings, netsuite_url: str, wsdl_url: str, soap_endpoint: str, avatax_url: str
) -> str:
    folder = settings.folder
    transport = settings.transport
    if transport == "soap":
        netsuite = f"""transport = "soap"
wsdl = "{wsdl_url}"
endpoint = "{soap_endpoint}"
"""
    else:
        netsuite = f"""transport = "rest"
auth = "tba"
base_url = "{netsuite_url}"
"""
    return f"""# Written by `finsync demo`: embedded defaults (SQLite) and the local sandboxes.
[billing]
url = "sqlite:///{folder / "billing.db"}"

[state]
url = "sqlite:///{folder / "state.db"}"

[mapping]
file = "mapping.toml"

[company]
timezone = "America/New_York"

[sync]
backoff_base_seconds = 5

[report]
out_dir = "reports"

[targets.netsuite]
system = "netsuite"
account = "1234567_SB1"
{netsuite}concurrency = 5
consumer_key = {{ env = "FINSYNC_DEMO_NS_CONSUMER_KEY" }}
consumer_secret = {{ env = "FINSYNC_DEMO_NS_CONSUMER_SECRET" }}
token_id = {{ env = "FINSYNC_DEMO_NS_TOKEN_ID" }}
token_secret = {{ env = "FINSYNC_DEMO_NS_TOKEN_SECRET" }}

[targets.avatax]
system = "avatax"
base_url = "{avatax_url}"
account_id = {{ env = "FINSYNC_DEMO_AVATAX_ACCOUNT" }}
license_key = {{ env = "FINSYNC_DEMO_AVATAX_LICENSE" }}
max_requests_per_second = 500
"""


@contextmanager
def running_sandboxes() -> Iterator[tuple[NetSuiteSandbox, AvaTaxSandbox]]:
    """Start the NetSuite and AvaTax sandboxes on free loopback ports; stop them after."""
    from sandbox.avatax.server import AvaTaxSandbox
    from sandbox.netsuite import NetSuiteSandbox

    netsuite = NetSuiteSandbox().start()
    avatax = AvaTaxSandbox(account_id="2000000001", license_key="demo-license-key").start()
    try:
        yield netsuite, avatax
    finally:
        netsuite.stop()
        avatax.stop()


def prepare(settings: DemoSettings, netsuite: NetSuiteSandbox, avatax: AvaTaxSandbox) -> Config:
    """Create the demo folder, its config and mapping file, and the demo secrets; load it."""
    from sandbox.netsuite import SandboxCredentials

    shutil.rmtree(settings.folder, ignore_errors=True)
    settings.folder.mkdir(parents=True)
    shutil.copy(_MAPPING_EXAMPLE, settings.folder / "mapping.toml")
    credentials = SandboxCredentials.demo()
    for variable, field in _DEMO_SECRETS.items():
        value = getattr(credentials, field)
        os.environ[variable] = value.reveal() if hasattr(value, "reveal") else str(value)
    os.environ["FINSYNC_DEMO_AVATAX_ACCOUNT"] = "2000000001"
    os.environ["FINSYNC_DEMO_AVATAX_LICENSE"] = "demo-license-key"
    path = settings.folder / "finsync.toml"
    path.write_text(
        _config_text(
            settings,
            netsuite.url,
            netsuite.wsdl_url,
            netsuite.soap_endpoint,
            avatax.url,
        )
    )
    return load_config(path)


def edit_billing(config: Config, seed: int) -> EditSummary:
    """What billing does after the first sync: edits, a void, a rename, a new invoice."""
    from billing.generator import apply_edits
    from finsync.db import make_engine

    engine = make_engine(config.billing_url)
    try:
        return apply_edits(engine, seed=seed, at=datetime(2026, 11, 2, 9, 0, tzinfo=UTC))
    finally:
        engine.dispose()
