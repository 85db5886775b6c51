"""Who is calling the console: API keys kept hashed in ``api_tokens``, or the company's JWTs.

API keys look like ``fsk_<43 url-safe characters>``. Only their SHA-256 is stored, with a short
prefix for people to recognise them; the key itself is shown once, when it is created. JWTs are
checked against the identity provider's JWKS (signature, issuer, audience, expiry) and carry
their role in a configurable claim.

Roles are ordered: viewer (read) < accountant (read, re-sync, download) < admin (tokens, config).
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from finsync.config import API_ROLES, JwtSettings
from sync.state import api_tokens, console_sessions

KEY_PREFIX = "fsk_"
_RANK = {role: rank for rank, role in enumerate(API_ROLES)}
#: How often, at most, a key's last_used_at is written: a busy page must not write every hit.
_TOUCH_EVERY = timedelta(minutes=1)


class AuthenticationError(Exception):
    """The credentials are missing, malformed, unknown, expired or revoked (HTTP 401).

    The message says which, never what the credential was.
    """


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: a name for the audit log, a role, and how it signed in."""

    name: str
    role: str
    via: str  # "key" or "jwt"
    token_id: int | None = None  # the api_tokens row of a key
    expires_at: datetime | None = None

    def can(self, role: str) -> bool:
        """True when this caller's role is ``role`` or above it."""
        return _RANK[self.role] >= _RANK[role]


def hash_token(token: str) -> str:
    """The SHA-256 hex digest under which a key is stored."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def highest_role(roles: Iterable[str]) -> str | None:
    """The highest console role among ``roles`` (other values are ignored), or None."""
    known = [r for r in roles if r in _RANK]
    return max(known, key=_RANK.__getitem__) if known else None


@dataclass(frozen=True)
class CreatedToken:
    """A new API key: its row id and the key itself, to be shown once and never stored."""

    id: int
    name: str
    role: str
    prefix: str
    expires_at: datetime | None
    token: str

    def __repr__(self) -> str:
        return f"CreatedToken(id={self.id}, name={self.name!r}, role={self.role}, token=***)"


def create_token(
    engine: Engine,
    *,
    name: str,
    role: str,
    created_by: str,
    now: datetime,
    expires_days: int | None = None,
) -> CreatedToken:
    """Create an API key; store only its hash. Raises ValueError for a bad role or name."""
    if role not in _RANK:
        raise ValueError(f"role must be one of {', '.join(API_ROLES)}, not {role!r}")
    if not name.strip():
        raise ValueError("a token needs a name (who or what uses it)")
    if expires_days is not None and expires_days < 1:
        raise ValueError("expires_days must be at least 1")
    token = KEY_PREFIX + secrets.token_urlsafe(32)
    prefix = token[: len(KEY_PREFIX) + 6]
    expires_at = now + timedelta(days=expires_days) if expires_days else None
    with engine.begin() as conn:
        result = conn.execute(
            api_tokens.insert().values(
                name=name.strip(),
                role=role,
                token_hash=hash_token(token),
                prefix=prefix,
                created_at=now,
                created_by=created_by,
                expires_at=expires_at,
            )
        )
        token_id = int(result.inserted_primary_key[0])  # type: ignore[index]
    return CreatedToken(token_id, name.strip(), role, prefix, expires_at, token)


def list_tokens(engine: Engine) -> list[dict[str, Any]]:
    """Every API key's row except its hash, newest first."""
    columns = [c for c in api_tokens.c if c.name != "token_hash"]
    with engine.connect() as conn:
        rows = conn.execute(sa.select(*columns).order_by(api_tokens.c.id.desc())).mappings()
        return [dict(r) for r in rows]


def revoke_token(engine: Engine, token_id: int, *, now: datetime) -> bool:
    """Revoke a key now, and end every console session opened with it; False if there is no
    such key or it was revoked already."""
    with engine.begin() as conn:
        result = conn.execute(
            api_tokens.update()
            .where(api_tokens.c.id == token_id, api_tokens.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        conn.execute(
            console_sessions.update()
            .where(console_sessions.c.token_id == token_id, console_sessions.c.ended_at.is_(None))
            .values(ended_at=now, end_reason="its API key was revoked")
        )
        return bool(result.rowcount)


def _session_hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()


def open_session(engine: Engine, principal: Principal, *, now: datetime, hours: float) -> str:
    """Record a console session for ``principal``; returns its id (for the signed cookie;
    only its SHA-256 is stored). It lasts ``hours``, or until the JWT it was opened with
    expires if that is sooner."""
    session_id = secrets.token_urlsafe(32)
    expires_at = now + timedelta(hours=hours)
    if principal.expires_at is not None and principal.via == "jwt":
        expires_at = min(expires_at, principal.expires_at)
    with engine.begin() as conn:
        conn.execute(
            console_sessions.insert().values(
                id_hash=_session_hash(session_id),
                via=principal.via,
                token_id=principal.token_id,
                name=principal.name,
                role=principal.role,
                created_at=now,
                expires_at=expires_at,
            )
        )
    return session_id


def end_session(engine: Engine, session_id: str, *, now: datetime, reason: str) -> None:
    """End a console session now: its cookie is refused from then on."""
    with engine.begin() as conn:
        conn.execute(
            console_sessions.update()
            .where(
                console_sessions.c.id_hash == _session_hash(session_id),
                console_sessions.c.ended_at.is_(None),
            )
            .values(ended_at=now, end_reason=reason)
        )


class JwksCache:
    """The identity provider's signing keys, fetched on first use and refreshed when needed.

    A token signed with a key id not yet seen triggers one refetch (providers rotate keys), but
    no more often than every ``min_refresh_seconds``, so garbage tokens cannot hammer the IdP.
    """

    def __init__(
        self,
        url: str,
        client: httpx.Client,
        *,
        max_age_seconds: float = 3600.0,
        min_refresh_seconds: float = 30.0,
    ) -> None:
        self._url = url
        self._client = client
        self._max_age = max_age_seconds
        self._min_refresh = min_refresh_seconds
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._lock = threading.Lock()

    def _fetch(self) -> None:
        try:
            response = self._client.get(self._url, timeout=10.0)
            response.raise_for_status()
            keys = jwt.PyJWKSet.from_dict(response.json()).keys
        except (httpx.HTTPError, ValueError, jwt.PyJWTError) as exc:
            raise AuthenticationError(
                f"cannot load the identity provider's keys ({type(exc).__name__})"
            ) from exc
        self._keys = {k.key_id: k for k in keys if k.key_id}
        self._fetched_at = time.monotonic()

    def key(self, kid: str) -> jwt.PyJWK:
        """The signing key ``kid``. Raises AuthenticationError if the provider has none."""
        with self._lock:
            age = None if self._fetched_at is None else time.monotonic() - self._fetched_at
            if (
                age is None
                or age > self._max_age
                or (kid not in self._keys and age > self._min_refresh)
            ):
                self._fetch()
            if kid not in self._keys:
                raise AuthenticationError(
                    "the token is signed with a key the provider does not list"
                )
            return self._keys[kid]


class Authenticator:
    """Turns a bearer token (API key or JWT) into a Principal, or raises AuthenticationError."""

    def __init__(
        self,
        state: Engine,
        *,
        jwt_settings: JwtSettings | None,
        clock: Callable[[], datetime],
        http: httpx.Client | None = None,
    ) -> None:
        self._state = state
        self._jwt = jwt_settings
        self._clock = clock
        self._http = http
        self._jwks = None
        if jwt_settings is not None:
            self._http = http or httpx.Client()
            self._jwks = JwksCache(jwt_settings.jwks_url, self._http)

    def close(self) -> None:
        """Release the HTTP client used for the JWKS."""
        if self._http is not None:
            self._http.close()

    def authenticate(self, token: str) -> Principal:
        """Check ``token``; raises AuthenticationError saying why it is refused."""
        token = token.strip()
        if token.startswith(KEY_PREFIX):
            return self._key(token)
        if token.count(".") == 2:
            return self._jwt_principal(token)
        raise AuthenticationError("not a finsync API key or a JWT")

    def session(self, session_id: str, *, now: datetime) -> Principal:
        """The principal of a console session that has not ended or expired by ``now`` (a
        key's is checked again: revoked or expired keys end their sessions)."""
        with self._state.connect() as conn:
            row = (
                conn.execute(
                    sa.select(console_sessions).where(
                        console_sessions.c.id_hash == _session_hash(session_id)
                    )
                )
                .mappings()
                .first()
            )
        if row is None:
            raise AuthenticationError("this session is unknown")
        if row["ended_at"] is not None:
            raise AuthenticationError(f"this session ended ({row['end_reason']})")
        if row["expires_at"] <= now:
            raise AuthenticationError("this session expired")
        if row["via"] == "key":
            return self.key_by_id(int(row["token_id"]))
        return Principal(
            name=str(row["name"]), role=str(row["role"]), via="jwt", expires_at=row["expires_at"]
        )

    def key_by_id(self, token_id: int) -> Principal:
        """The principal of a key a session was opened with, if the key is still valid."""
        with self._state.connect() as conn:
            row = conn.execute(sa.select(api_tokens).where(api_tokens.c.id == token_id)).mappings()
            found = row.first()
        if found is None:
            raise AuthenticationError("the API key of this session no longer exists")
        return self._check_key(dict(found))

    def _key(self, token: str) -> Principal:
        with self._state.connect() as conn:
            found = (
                conn.execute(
                    sa.select(api_tokens).where(api_tokens.c.token_hash == hash_token(token))
                )
                .mappings()
                .first()
            )
        if found is None:
            raise AuthenticationError("unknown API key")
        return self._check_key(dict(found))

    def _check_key(self, row: dict[str, Any]) -> Principal:
        now = self._clock()
        if row["revoked_at"] is not None:
            raise AuthenticationError(f"API key {row['prefix']}... was revoked")
        if row["expires_at"] is not None and row["expires_at"] <= now:
            raise AuthenticationError(f"API key {row['prefix']}... has expired")
        if row["role"] not in _RANK:
            raise AuthenticationError(f"API key {row['prefix']}... has an unknown role")
        if row["last_used_at"] is None or now - row["last_used_at"] >= _TOUCH_EVERY:
            with self._state.begin() as conn:
                conn.execute(
                    api_tokens.update().where(api_tokens.c.id == row["id"]).values(last_used_at=now)
                )
        return Principal(
            name=row["name"],
            role=row["role"],
            via="key",
            token_id=int(row["id"]),
            expires_at=row["expires_at"],
        )

    def _jwt_principal(self, token: str) -> Principal:
        settings = self._jwt
        if settings is None or self._jwks is None:
            raise AuthenticationError("JWTs are not accepted: no [api.jwt] identity provider")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise AuthenticationError("malformed JWT") from exc
        kid = header.get("kid")
        if not isinstance(kid, str) or header.get("alg") not in settings.algorithms:
            raise AuthenticationError("the JWT's key id or algorithm is not accepted")
        key = self._jwks.key(kid)
        try:
            claims = jwt.decode(
                token,
                key=key,
                algorithms=list(settings.algorithms),
                audience=settings.audience,
                issuer=settings.issuer,
                leeway=settings.leeway_seconds,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise AuthenticationError("the JWT has expired") from exc
        except jwt.PyJWTError as exc:
            raise AuthenticationError(f"the JWT is not valid ({type(exc).__name__})") from exc
        value = claims.get(settings.role_claim)
        values = [value] if isinstance(value, str) else value if isinstance(value, list) else []
        role = highest_role(v for v in values if isinstance(v, str))
        if role is None:
            raise AuthenticationError(
                f"the JWT gives no console role in its {settings.role_claim!r} claim"
            )
        name = claims.get(settings.name_claim)
        if not isinstance(name, str) or not name:
            raise AuthenticationError(f"the JWT has no {settings.name_claim!r} claim")
        expires_at = datetime.fromtimestamp(int(claims["exp"]), tz=UTC)
        return Principal(name=name, role=role, via="jwt", expires_at=expires_at)
