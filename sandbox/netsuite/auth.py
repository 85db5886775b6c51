"""Authentication the way NetSuite checks it: TBA (SOAP tokenPassport, REST OAuth 1.0a) and
OAuth 2.0 client credentials with a JWT assertion.

Every failure raises ``AuthFailure`` with a reason for the sandbox's request log; what goes back
on the wire is NetSuite's deliberately vague "Invalid login attempt". Reasons never carry secrets.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from urllib.parse import quote, unquote

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from finsync.config import Secret

#: How far a TBA timestamp may be from the sandbox clock, as NetSuite allows.
TIMESTAMP_TOLERANCE_SECONDS = 300
#: Lifetime of an OAuth 2.0 access token and the longest assertion NetSuite accepts.
TOKEN_LIFETIME_SECONDS = 3600


class AuthFailure(Exception):
    """Credentials were refused; ``reason`` says why (for the request log, never secret)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def _as_secret(value: Secret | str) -> Secret:
    return value if isinstance(value, Secret) else Secret(value, "sandbox")


@cache
def demo_private_key_pem() -> str:
    """PEM (PKCS#8) of the demo integration's EC P-256 private key, for signing ES256 assertions.

    Derived from a fixed scalar so the demo key pair is the same in every process.
    """
    scalar = int.from_bytes(hashlib.sha256(b"finsync netsuite sandbox demo key").digest(), "big")
    key = ec.derive_private_key(scalar % (2**255), ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def _public_pem(private_pem: str) -> str:
    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@dataclass(frozen=True)
class SandboxCredentials:
    """The integration record and access token the sandbox account knows.

    TBA uses consumer key/secret and token id/secret; OAuth 2.0 uses the client id, the id of
    the uploaded certificate and its public key. Secrets are held as ``Secret`` (masked repr).
    """

    consumer_key: str
    consumer_secret: Secret | str = field(repr=False)
    token_id: str
    token_secret: Secret | str = field(repr=False)
    client_id: str
    certificate_id: str
    public_key_pem: str = field(repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "consumer_secret", _as_secret(self.consumer_secret))
        object.__setattr__(self, "token_secret", _as_secret(self.token_secret))

    @classmethod
    def demo(cls) -> SandboxCredentials:
        """Fixed demo credentials; the matching private key is ``demo_private_key_pem()``."""
        return cls(
            consumer_key="finsync-demo-consumer-key",
            consumer_secret=Secret("finsync-demo-consumer-secret", "demo"),
            token_id="finsync-demo-token-id",  # noqa: S106 - public demo id, not a secret
            token_secret=Secret("finsync-demo-token-secret", "demo"),
            client_id="finsync-demo-client-id",
            certificate_id="finsync-demo-certificate",
            public_key_pem=_public_pem(demo_private_key_pem()),
        )

    @staticmethod
    def demo_private_key_pem() -> str:
        """The private key matching ``demo().public_key_pem`` (see ``demo_private_key_pem``)."""
        return demo_private_key_pem()

    def _tba_key(self) -> bytes:
        consumer = self.consumer_secret
        token = self.token_secret
        assert isinstance(consumer, Secret) and isinstance(token, Secret)
        return f"{consumer.reveal()}&{token.reveal()}".encode()

    def _oauth1_key(self) -> bytes:
        consumer = self.consumer_secret
        token = self.token_secret
        assert isinstance(consumer, Secret) and isinstance(token, Secret)
        return f"{_pct(consumer.reveal())}&{_pct(token.reveal())}".encode()


def tba_signature(key: bytes, base: str) -> str:
    """base64(HMAC-SHA256(key, base)), the signature of tokenPassport and OAuth 1.0a."""
    return base64.b64encode(hmac.new(key, base.encode(), hashlib.sha256).digest()).decode()


def _pct(value: str) -> str:
    return quote(value, safe="~-._")


class _NonceBook:
    """Nonces seen within the timestamp window; a nonce used twice is a replay."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str, str], float] = {}
        self._lock = threading.Lock()

    def use(self, consumer_key: str, token: str, nonce: str, now: float) -> None:
        with self._lock:
            horizon = now - 2 * TIMESTAMP_TOLERANCE_SECONDS
            for old in [k for k, t in self._seen.items() if t < horizon]:
                del self._seen[old]
            key = (consumer_key, token, nonce)
            if key in self._seen:
                raise AuthFailure("nonce already used")
            self._seen[key] = now


class Authenticator:
    """Checks every kind of credential the sandbox accepts, against one account."""

    def __init__(
        self, account: str, credentials: SandboxCredentials, clock: Callable[[], float] = time.time
    ) -> None:
        self.account = account
        self.credentials = credentials
        self._clock = clock
        self._nonces = _NonceBook()
        self._tokens: dict[str, float] = {}
        self._tokens_lock = threading.Lock()

    def _check_common(self, account: str, consumer_key: str, token: str, timestamp: str) -> float:
        # NetSuite compares the account id exactly: 1234567_sb1 is not 1234567_SB1.
        if account != self.account:
            raise AuthFailure(f"account {account!r} is not this account")
        if consumer_key != self.credentials.consumer_key:
            raise AuthFailure("unknown consumer key")
        if token != self.credentials.token_id:
            raise AuthFailure("unknown token")
        try:
            stamp = int(timestamp)
        except ValueError:
            raise AuthFailure("timestamp is not an integer of seconds") from None
        now = self._clock()
        if abs(now - stamp) > TIMESTAMP_TOLERANCE_SECONDS:
            raise AuthFailure("timestamp outside the allowed window of 5 minutes")
        return now

    def verify_token_passport(
        self,
        *,
        account: str,
        consumer_key: str,
        token: str,
        nonce: str,
        timestamp: str,
        signature: str,
        algorithm: str,
    ) -> None:
        """Check a SOAP tokenPassport. Raises AuthFailure."""
        now = self._check_common(account, consumer_key, token, timestamp)
        if algorithm != "HMAC-SHA256":
            raise AuthFailure(f"signature algorithm {algorithm!r} is not HMAC-SHA256")
        if not nonce:
            raise AuthFailure("empty nonce")
        base = "&".join((account, consumer_key, token, nonce, timestamp))
        expected = tba_signature(self.credentials._tba_key(), base)
        if not hmac.compare_digest(expected, signature):
            raise AuthFailure("signature does not match")
        self._nonces.use(consumer_key, token, nonce, now)

    def verify_oauth1(self, method: str, url: str, header: str, query: Mapping[str, str]) -> None:
        """Check an ``Authorization: OAuth ...`` header (RFC 5849, HMAC-SHA256, realm = account).

        ``url`` is the request URL without query, as the client saw it. Raises AuthFailure.
        """
        params = parse_oauth_header(header)
        if params.get("realm") != self.account:
            raise AuthFailure(f"realm {params.get('realm')!r} is not this account")
        if params.get("oauth_signature_method") != "HMAC-SHA256":
            raise AuthFailure("oauth_signature_method is not HMAC-SHA256")
        if params.get("oauth_version", "1.0") != "1.0":
            raise AuthFailure("oauth_version is not 1.0")
        try:
            now = self._check_common(
                params["realm"],
                params["oauth_consumer_key"],
                params["oauth_token"],
                params["oauth_timestamp"],
            )
            nonce, signature = params["oauth_nonce"], params["oauth_signature"]
        except KeyError as exc:
            raise AuthFailure(f"missing OAuth parameter {exc.args[0]}") from None
        signed = [
            (_pct(k), _pct(v)) for k, v in params.items() if k not in ("realm", "oauth_signature")
        ]
        signed += [(_pct(k), _pct(v)) for k, v in query.items()]
        normalized = "&".join(f"{k}={v}" for k, v in sorted(signed))
        base = "&".join((method.upper(), _pct(url), _pct(normalized)))
        expected = tba_signature(self.credentials._oauth1_key(), base)
        if not hmac.compare_digest(expected, signature):
            raise AuthFailure("OAuth 1.0a signature does not match")
        self._nonces.use(params["oauth_consumer_key"], params["oauth_token"], nonce, now)

    def issue_token(self, form: Mapping[str, str], token_url: str) -> str:
        """Check a client-credentials request with a JWT assertion; return a new access token.

        Raises AuthFailure.
        """
        if form.get("grant_type") != "client_credentials":
            raise AuthFailure("grant_type is not client_credentials")
        if form.get("client_assertion_type") != (
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
        ):
            raise AuthFailure("client_assertion_type is not jwt-bearer")
        assertion = form.get("client_assertion", "")
        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.PyJWTError as exc:
            raise AuthFailure(f"client_assertion is not a JWT: {exc}") from None
        if header.get("kid") != self.credentials.certificate_id:
            raise AuthFailure("kid is not the certificate id")
        try:
            claims = jwt.decode(
                assertion,
                self.credentials.public_key_pem,
                algorithms=["PS256", "ES256"],
                audience=token_url,
                issuer=self.credentials.client_id,
                options={"require": ["iss", "aud", "iat", "exp", "scope"]},
                leeway=TIMESTAMP_TOLERANCE_SECONDS,
            )
        except jwt.PyJWTError as exc:
            raise AuthFailure(f"client_assertion refused: {exc}") from None
        scope = claims["scope"]
        scopes = scope if isinstance(scope, list) else str(scope).replace(",", " ").split()
        if "rest_webservices" not in scopes:
            raise AuthFailure("scope does not include rest_webservices")
        if int(claims["exp"]) - int(claims["iat"]) > TOKEN_LIFETIME_SECONDS:
            raise AuthFailure("exp is more than one hour after iat")
        token = secrets.token_urlsafe(32)
        with self._tokens_lock:
            self._tokens[token] = self._clock() + TOKEN_LIFETIME_SECONDS
        return token

    def verify_bearer(self, token: str) -> None:
        """Check an access token issued by ``issue_token``. Raises AuthFailure."""
        with self._tokens_lock:
            expires = self._tokens.get(token)
        if expires is None:
            raise AuthFailure("unknown access token")
        if self._clock() >= expires:
            raise AuthFailure("access token expired")


def parse_oauth_header(header: str) -> dict[str, str]:
    """The parameters of an ``OAuth k="v", ...`` Authorization header, percent-decoded."""
    if not header.startswith("OAuth "):
        raise AuthFailure("Authorization is not an OAuth header")
    params: dict[str, str] = {}
    for part in header[len("OAuth ") :].split(","):
        name, sep, value = part.strip().partition("=")
        if not sep:
            raise AuthFailure("malformed OAuth header")
        params[unquote(name)] = unquote(value.strip().strip('"'))
    return params
