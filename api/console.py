"""What every console route shares: the ``Console`` (configuration, sync engine, authenticator,
templates, clock), who the caller is (``authenticate``, ``require``) and CSRF checks.

The app (``api.app``), the JSON API (``api.routes``) and the pages (``api.pages``) all stand on
this module; it imports none of them.
"""

from __future__ import annotations

import hmac
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from fastapi import Request
from fastapi.exceptions import HTTPException
from fastapi.templating import Jinja2Templates

from api.auth import AuthenticationError, Authenticator, Principal
from core.errors import ConfigError
from finsync.config import Config
from mappings.tables import MappingTables
from sync.engine import SyncEngine

CSRF_HEADER = "x-csrf-token"


@dataclass
class Console:
    """What the routes share: configuration, sync engine, authenticator, templates, clock."""

    config: Config
    engine: SyncEngine
    auth: Authenticator
    clock: Callable[[], datetime]
    templates: Jinja2Templates
    #: One re-sync (or mapping reload) at a time: the engine's connectors are built lazily
    #: and its mapping tables are swapped when the mapping file changes.
    lock: threading.Lock = field(default_factory=threading.Lock)
    _mapping_stamp: tuple[float, int] | None = None

    def __post_init__(self) -> None:
        # The engine loaded the mapping file as it is now: a later change (even a broken one,
        # before any page looked) is a change.
        try:
            stat = self.config.mapping_file.stat()
            self._mapping_stamp = (stat.st_mtime, stat.st_size)
        except OSError:
            self._mapping_stamp = None

    def mapping_tables(self) -> MappingTables | ConfigError:
        """The mapping tables, re-read when the mapping file changed since the last look.

        A long-running console must see an admin's fix of the mapping file without a restart;
        a file that no longer parses is returned as its ConfigError (nothing is swapped).
        """
        path = self.config.mapping_file
        try:
            stat = path.stat()
            stamp = (stat.st_mtime, stat.st_size)
        except OSError:
            return ConfigError("mapping.file", f"file not found: {path}")
        with self.lock:
            if self._mapping_stamp is None:
                self._mapping_stamp = stamp  # the engine loaded it at start
            elif stamp != self._mapping_stamp:
                try:
                    self.engine.reload_mapping()
                except ConfigError as exc:
                    return exc
                self._mapping_stamp = stamp
            return self.engine.tables


def console_of(request: Request) -> Console:
    """The Console of the app serving ``request``."""
    console: Console = request.app.state.console
    return console


class Unauthenticated(HTTPException):
    """No valid credentials (401)."""

    def __init__(self, detail: str) -> None:
        super().__init__(401, detail, headers={"WWW-Authenticate": "Bearer"})


def _session_principal(request: Request, console: Console) -> Principal | None:
    session_id = request.session.get("sid")
    if not isinstance(session_id, str):
        request.session.pop("principal", None)  # a cookie from before server-side sessions
        return None
    try:
        return console.auth.session(session_id, now=console.clock())
    except AuthenticationError as exc:
        request.session.pop("sid", None)
        raise Unauthenticated(f"{exc}; sign in again") from exc


def authenticate(request: Request) -> Principal:
    """The caller, from the bearer token or else the session. Raises 401."""
    console = console_of(request)
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("use 'Authorization: Bearer <token>'")
        try:
            principal = console.auth.authenticate(token)
        except AuthenticationError as exc:
            raise Unauthenticated(str(exc)) from exc
        request.state.via_session = False
        return principal
    from_session = _session_principal(request, console)
    if from_session is None:
        raise Unauthenticated("sign in, or send 'Authorization: Bearer <token>'")
    request.state.via_session = True
    return from_session


def require(role: str) -> Callable[[Request], Principal]:
    """A dependency that lets through callers of ``role`` or above (401 without, 403 below)."""

    def dependency(request: Request) -> Principal:
        principal = authenticate(request)
        request.state.principal = principal
        if not principal.can(role):
            raise HTTPException(403, f"this needs the {role} role; you are {principal.role}")
        return principal

    return dependency


def csrf_token(request: Request) -> str:
    """The session's CSRF token (created on first use)."""
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(24)
        request.session["csrf"] = token
    return token


def check_csrf(request: Request, submitted: str | None) -> None:
    """Refuse (403) a cookie-authenticated change whose CSRF token is missing or wrong.

    A call authenticated by its Authorization header needs none: a browser never adds that
    header to a forged cross-site request.
    """
    if getattr(request.state, "via_session", True) is False:
        return
    expected = request.session.get("csrf")
    if not isinstance(expected, str) or not submitted:
        raise HTTPException(403, "missing CSRF token: reload the page and try again")
    if not hmac.compare_digest(expected.encode(), submitted.encode()):
        raise HTTPException(403, "wrong CSRF token: reload the page and try again")
