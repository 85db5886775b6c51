"""A console over a test database: config with an [api] section, seeded ledger, keys, JWKS."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric import rsa

from api.auth import create_token
from connectors.scripted import ScriptedConnector
from sync.engine import SyncEngine
from sync.state import ledger
from tests.builders import BillingBuilder
from tests.engine_support import Clock, Setup, make_engine, write_config

ISSUER = "https://id.example.test/"
AUDIENCE = "finsync-console"
KID = "test-key-1"


def console_setup(
    tmp_path: Path, db_url: str, *, jwks_url: str | None = None, cookie_secure: bool = False
) -> Setup:
    """A finsync.toml with the scripted target 'erp' and an [api] section.

    ``cookie_secure`` is off by default: the tests talk plain http to 127.0.0.1, where a
    browser (and httpx) would never send a Secure cookie back.
    """
    api = f"\n[api]\ncookie_secure = {'true' if cookie_secure else 'false'}\n"
    if jwks_url:
        api += (
            f'\n[api.jwt]\nissuer = "{ISSUER}"\naudience = "{AUDIENCE}"\n'
            f'jwks_url = "{jwks_url}"\nrole_claim = "finsync_role"\nname_claim = "email"\n'
        )
    return write_config(tmp_path, db_url, extra=api)


def scripted(engine: SyncEngine) -> ScriptedConnector:
    """The scripted target 'erp' of the engine."""
    connector = engine.connector("erp")
    assert isinstance(connector, ScriptedConnector)
    return connector


@dataclass
class Seeded:
    """Ledger ids of the seeded records by label, and the builder that made them."""

    ids: dict[str, int]
    billing: BillingBuilder
    #: The run of the seeding sync.
    run_id: int


def seed_ledger(engine: SyncEngine) -> Seeded:
    """Sync a small billing: 2 customers, 4 invoices (one unmapped SKU, one rejected), 1 payment.

    After it: INV-1 failed (no item for SKU cdn-pro), INV-3 failed (rejected by the target),
    everything else synced.
    """
    billing = BillingBuilder(engine.billing)
    c1 = billing.customer("ACME-1")
    c2 = billing.customer("GLOBEX-2")
    billing.invoice(c1, number="INV-1", lines=[{"sku": "cdn-pro", "unit_price": "250.00"}])
    inv2 = billing.invoice(c1, number="INV-2")
    billing.invoice(c2, number="INV-3", issue_date=date(2026, 1, 20))
    billing.invoice(c2, number="INV-40", issue_date=date(2026, 1, 28))
    billing.payment(c1, "107.25", applications=[(inv2, "107.25")], reference="PAY-1")
    scripted(engine).reject("finsync:inv:INV-3", "Period Jan 2026 is closed")
    summary = engine.sync()
    assert summary.ok
    scripted(engine).clear_rejections()
    with engine.state.connect() as conn:
        rows = conn.execute(sa.select(ledger.c.label, ledger.c.id)).all()
    assert summary.run_id is not None
    return Seeded({label: ledger_id for label, ledger_id in rows}, billing, summary.run_id)


def make_console_engine(setup: Setup, clock: Clock) -> SyncEngine:
    """A migrated engine over the setup."""
    return make_engine(setup, clock)


def keys_for_roles(engine: SyncEngine, clock: Clock) -> dict[str, str]:
    """One API key per role, plus 'revoked' and 'expired' keys (admin role, unusable)."""
    from api.auth import revoke_token

    keys = {}
    for role in ("viewer", "accountant", "admin"):
        keys[role] = create_token(
            engine.state, name=f"{role}-key", role=role, created_by="tests", now=clock()
        ).token
    revoked = create_token(
        engine.state, name="revoked-key", role="admin", created_by="tests", now=clock()
    )
    revoke_token(engine.state, revoked.id, now=clock())
    keys["revoked"] = revoked.token
    expired = create_token(
        engine.state,
        name="expired-key",
        role="admin",
        created_by="tests",
        now=clock() - timedelta(days=10),
        expires_days=1,
    )
    keys["expired"] = expired.token
    return keys


class IdentityProvider:
    """An RSA key pair, its JWKS served over HTTP on 127.0.0.1, and a JWT signer."""

    def __init__(self) -> None:
        self.private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.private_key.public_key()))
        self.jwks = {"keys": [public | {"kid": KID, "use": "sig", "alg": "RS256"}]}
        self.requests = 0

    def token(
        self,
        *,
        role: Any = "viewer",
        email: str = "pat@example.com",
        expires_in: int = 600,
        issuer: str = ISSUER,
        audience: str = AUDIENCE,
        kid: str = KID,
        key: Any = None,
    ) -> str:
        """A signed JWT (expired when ``expires_in`` is negative)."""
        now = int(time.time())
        claims = {
            "iss": issuer,
            "aud": audience,
            "sub": "user-123",
            "email": email,
            "finsync_role": role,
            "iat": now - 60,
            "exp": now + expires_in,
        }
        return jwt.encode(claims, key or self.private_key, algorithm="RS256", headers={"kid": kid})

    @contextmanager
    def serve(self) -> Iterator[str]:
        """Serve the JWKS on 127.0.0.1; yields its URL."""
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                provider.requests += 1
                body = json.dumps(provider.jwks).encode()
                self.send_response(200 if self.path == "/jwks.json" else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}/jwks.json"
        finally:
            server.shutdown()
            server.server_close()
            thread.join()
