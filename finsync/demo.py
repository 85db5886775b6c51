"""``finsync demo``: the whole job on embedded defaults, from an empty folder to a workbook.

It seeds a SQLite billing database, starts the local NetSuite and AvaTax sandboxes on loopback,
writes a config that points at them, syncs, lets billing edit some records (an amount changed,
an invoice voided, a customer renamed), syncs again, and builds the monthly workbook of the last
full month. Everything lives in one folder (default ``.finsync/demo``), recreated each run.

The demo's config reads the sandboxes' (public, demo-only) credentials from files in the
folder's ``secrets/``, and the sandboxes listen on fixed ports (8088 and 8766 unless told
otherwise), so every command of the README works on the demo's config after the demo ends, once
``finsync sandbox netsuite`` and ``finsync sandbox avatax`` run again.
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
    from sandbox.tryton import TrytonServer

#: Environment variables the demo config reads its (public, demo-only) secrets from.
_DEMO_SECRETS = {
    "FINSYNC_DEMO_NS_CONSUMER_KEY": "consumer_key",
    "FINSYNC_DEMO_NS_CONSUMER_SECRET": "consumer_secret",
    "FINSYNC_DEMO_NS_TOKEN_ID": "token_id",
    "FINSYNC_DEMO_NS_TOKEN_SECRET": "token_secret",
}
MAPPING_EXAMPLE = Path(__file__).resolve().parents[1] / "mapping.example.toml"
#: The AvaTax sandbox account of the demo (public, demo-only credentials).
AVATAX_ACCOUNT = "2000000001"
AVATAX_LICENSE = "demo-license-key"


@dataclass(frozen=True)
class DemoSettings:
    """How big the demo is and where it lives."""

    folder: Path
    customers: int = 40
    months: int = 12
    seed: int = 42
    start: date = date(2025, 11, 1)
    transport: str = "soap"
    netsuite_port: int = 8088
    avatax_port: int = 8766
    #: Where ``finsync serve`` on the demo's config answers /health and serves the console.
    service_port: int = 8080
    #: The ERP the demo books into: the NetSuite sandbox, or a real Tryton (``--erp tryton``).
    erp: str = "netsuite"

    @property
    def report_period(self) -> str:
        """The last full month of the seeded data, as YYYY-MM."""
        month_index = self.start.year * 12 + self.start.month - 1 + self.months - 1
        return f"{month_index // 12:04d}-{month_index % 12 + 1:02d}"


def sandbox_config(
    *,
    billing_url: str,
    state_url: str,
    netsuite: NetSuiteSandbox,
    avatax: AvaTaxSandbox,
    transport: str = "soap",
    secrets_dir: Path | None = None,
    service_port: int | None = None,
) -> str:
    """A finsync.toml that points at running sandboxes.

    The secrets are read from the environment variables of ``sandbox_secrets``, or from the
    files ``write_secret_files`` wrote in ``secrets_dir``.
    """

    def secret(variable: str) -> str:
        if secrets_dir is None:
            return f'{{ env = "{variable}" }}'
        return f'{{ file = "{secrets_dir / variable.lower()}" }}'

    service = f"\n[service]\nhealth_port = {service_port}\n" if service_port else ""
    if transport == "soap":
        netsuite_section = f"""transport = "soap"
wsdl = "{netsuite.wsdl_url}"
endpoint = "{netsuite.soap_endpoint}"
"""
    else:
        netsuite_section = f"""transport = "rest"
auth = "tba"
base_url = "{netsuite.url}"
"""
    return f"""# Written by finsync: embedded defaults (SQLite) and the local sandboxes.
[billing]
url = "{billing_url}"

[state]
url = "{state_url}"

[mapping]
file = "mapping.toml"

[company]
timezone = "America/New_York"

[sync]
backoff_base_seconds = 5

[report]
out_dir = "reports"

[api]
cookie_secure = false  # the demo console is plain http on 127.0.0.1
{service}
[targets.netsuite]
system = "netsuite"
account = "{netsuite.account}"
{netsuite_section}concurrency = 5
consumer_key = {secret("FINSYNC_DEMO_NS_CONSUMER_KEY")}
consumer_secret = {secret("FINSYNC_DEMO_NS_CONSUMER_SECRET")}
token_id = {secret("FINSYNC_DEMO_NS_TOKEN_ID")}
token_secret = {secret("FINSYNC_DEMO_NS_TOKEN_SECRET")}

[targets.avatax]
system = "avatax"
base_url = "{avatax.url}"
account_id = {secret("FINSYNC_DEMO_AVATAX_ACCOUNT")}
license_key = {secret("FINSYNC_DEMO_AVATAX_LICENSE")}
max_requests_per_second = 500
"""


def tryton_config(
    *, billing_url: str, state_url: str, tryton: TrytonServer, avatax: AvaTaxSandbox
) -> str:
    """A finsync.toml that books into a running Tryton and taxes through the AvaTax sandbox."""
    from sandbox.tryton import ADMIN_LOGIN, DATABASE

    return f"""# Written by finsync: SQLite defaults, a local Tryton and the AvaTax sandbox.
[billing]
url = "{billing_url}"

[state]
url = "{state_url}"

[mapping]
file = "mapping.toml"

[company]
timezone = "America/New_York"

[sync]
backoff_base_seconds = 5
kinds = ["customer", "invoice", "credit_note", "payment", "refund", "revenue"]

[report]
out_dir = "reports"

[api]
cookie_secure = false  # the demo console is plain http on 127.0.0.1

[targets.tryton]
system = "tryton"
url = "{tryton.url}"
database = "{DATABASE}"
username = "{ADMIN_LOGIN}"
password = {{ env = "FINSYNC_DEMO_TRYTON_PASSWORD" }}

[targets.avatax]
system = "avatax"
base_url = "{avatax.url}"
account_id = {{ env = "FINSYNC_DEMO_AVATAX_ACCOUNT" }}
license_key = {{ env = "FINSYNC_DEMO_AVATAX_LICENSE" }}
max_requests_per_second = 500
"""


def sandbox_secrets() -> dict[str, str]:
    """The sandboxes' public demo credentials, as the environment variables the config names."""
    from sandbox.netsuite import SandboxCredentials

    credentials = SandboxCredentials.demo()
    secrets = {}
    for variable, field in _DEMO_SECRETS.items():
        value = getattr(credentials, field)
        secrets[variable] = value.reveal() if hasattr(value, "reveal") else str(value)
    secrets["FINSYNC_DEMO_AVATAX_ACCOUNT"] = AVATAX_ACCOUNT
    secrets["FINSYNC_DEMO_AVATAX_LICENSE"] = AVATAX_LICENSE
    from sandbox.tryton import ADMIN_PASSWORD

    secrets["FINSYNC_DEMO_TRYTON_PASSWORD"] = ADMIN_PASSWORD
    return secrets


def write_secret_files(folder: Path) -> None:
    """Write each demo secret of ``sandbox_secrets`` to its own file in ``folder`` (0600)."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    for variable, value in sandbox_secrets().items():
        path = folder / variable.lower()
        path.write_text(value + "\n")
        path.chmod(0o600)


@contextmanager
def running_sandboxes(
    netsuite_port: int = 0, avatax_port: int = 0
) -> Iterator[tuple[NetSuiteSandbox, AvaTaxSandbox]]:
    """Start the NetSuite and AvaTax sandboxes on loopback (0: a free port); stop them after."""
    from sandbox.avatax.server import AvaTaxSandbox
    from sandbox.netsuite import NetSuiteSandbox

    netsuite = NetSuiteSandbox().start(port=netsuite_port)
    avatax = AvaTaxSandbox(account_id=AVATAX_ACCOUNT, license_key=AVATAX_LICENSE).start(
        port=avatax_port
    )
    try:
        yield netsuite, avatax
    finally:
        netsuite.stop()
        avatax.stop()


def prepare(settings: DemoSettings, netsuite: NetSuiteSandbox, avatax: AvaTaxSandbox) -> Config:
    """Create the demo folder, its config and mapping file, and the demo secrets; load it."""
    shutil.rmtree(settings.folder, ignore_errors=True)
    settings.folder.mkdir(parents=True)
    shutil.copy(MAPPING_EXAMPLE, settings.folder / "mapping.toml")
    write_secret_files(settings.folder / "secrets")
    path = settings.folder / "finsync.toml"
    path.write_text(
        sandbox_config(
            billing_url=f"sqlite:///{settings.folder / 'billing.db'}",
            state_url=f"sqlite:///{settings.folder / 'state.db'}",
            netsuite=netsuite,
            avatax=avatax,
            transport=settings.transport,
            secrets_dir=settings.folder / "secrets",
            service_port=settings.service_port,
        )
    )
    return load_config(path)


@contextmanager
def demo_systems(settings: DemoSettings) -> Iterator[Config]:
    """Start the demo's systems (the ERP of ``settings.erp`` and AvaTax), write the demo folder
    and its config; yield the loaded config, stop the systems after."""
    if settings.erp != "tryton":
        with running_sandboxes(settings.netsuite_port, settings.avatax_port) as (netsuite, avatax):
            yield prepare(settings, netsuite, avatax)
        return
    from sandbox.avatax.server import AvaTaxSandbox
    from sandbox.tryton import TrytonServer, ensure_template

    template = ensure_template(settings.folder.parent / "tryton-cache")
    shutil.rmtree(settings.folder, ignore_errors=True)
    settings.folder.mkdir(parents=True)
    tryton = TrytonServer(template, settings.folder / "tryton").start()
    avatax = AvaTaxSandbox(account_id=AVATAX_ACCOUNT, license_key=AVATAX_LICENSE).start()
    try:
        shutil.copy(MAPPING_EXAMPLE, settings.folder / "mapping.toml")
        os.environ.update(sandbox_secrets())
        path = settings.folder / "finsync.toml"
        path.write_text(
            tryton_config(
                billing_url=f"sqlite:///{settings.folder / 'billing.db'}",
                state_url=f"sqlite:///{settings.folder / 'state.db'}",
                tryton=tryton,
                avatax=avatax,
            )
        )
        yield load_config(path)
    finally:
        tryton.stop()
        avatax.stop()


def edit_billing(config: Config, seed: int) -> EditSummary:
    """What billing does after the first sync: edits, a void, a rename, a new invoice."""
    from billing.generator import apply_edits
    from finsync.db import make_engine

    engine = make_engine(config.billing_url)
    try:
        return apply_edits(engine, seed=seed, at=datetime(2026, 11, 2, 9, 0, tzinfo=UTC))
    finally:
        engine.dispose()
