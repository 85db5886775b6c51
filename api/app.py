"""The accountants' console: one FastAPI app serving the JSON API (/api) and the web pages.

Every route except ``GET /api/health``, the sign-in form and the stylesheet needs a caller:
a bearer token (API key or JWT) in ``Authorization``, or the signed session cookie that the
sign-in form opens with one. Each route states the least role it needs (``require``); the
role matrix test walks the app's routes, so a route without a rule fails it.

Sessions live in the state store (``console_sessions``); the signed cookie holds only a random
session id, whose SHA-256 is the row's key. Signing out ends the session there, so a copy of
the cookie kept after sign-out is refused; revoking a key ends its sessions at once. A
session never holds the token. Forms carry a CSRF token kept in the session, and
so must any cookie-authenticated POST to the API (header ``X-CSRF-Token``).
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware

from api import pages, routes
from api.auth import Authenticator
from api.console import Console, console_of, csrf_token
from finsync.config import Config
from finsync.db import utcnow
from sync.engine import SyncEngine

HERE = Path(__file__).resolve().parent
SESSION_COOKIE = "finsync_session"


def _wants_json(request: Request) -> bool:
    path = request.url.path
    return path.startswith("/api/") or path == "/openapi.json"


def _error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    headers = getattr(exc, "headers", None)
    if _wants_json(request):
        return JSONResponse({"detail": str(exc.detail)}, exc.status_code, headers=headers)
    console = console_of(request)
    if exc.status_code == 401:
        return console.templates.TemplateResponse(
            request,
            "signin.html",
            {
                "csrf": csrf_token(request),
                "next": request.url.path,
                "error": None,
                "notice": str(exc.detail),
            },
            status_code=401,
            headers=headers,
        )
    return console.templates.TemplateResponse(
        request,
        "error.html",
        {
            "status": exc.status_code,
            "message": str(exc.detail),
            "principal": getattr(request.state, "principal", None),
        },
        status_code=exc.status_code,
        headers=headers,
    )


def create_app(
    config: Config,
    *,
    engine: SyncEngine | None = None,
    clock: Callable[[], datetime] = utcnow,
    jwks_client: httpx.Client | None = None,
) -> FastAPI:
    """The console app for ``config``.

    ``engine`` is shared (and not closed) when given; otherwise the app builds its own and
    closes it at shutdown. ``jwks_client`` fetches the identity provider's keys (tests hand in
    one with their own transport). The state store must be initialised (``finsync init``).
    """
    own_engine = engine is None
    sync_engine = engine or SyncEngine(config, clock=clock, actor="console")
    auth = Authenticator(
        sync_engine.state, jwt_settings=config.api.jwt, clock=clock, http=jwks_client
    )
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.globals["csrf_token"] = csrf_token
    console = Console(
        config=config, engine=sync_engine, auth=auth, clock=clock, templates=templates
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        if jwks_client is None:
            auth.close()
        if own_engine:
            sync_engine.close()

    app = FastAPI(
        title="finsync console",
        version="1",
        description="Failures, re-syncs, runs, audit log and workbooks of finsync.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,  # served below, behind authentication like everything else
    )
    app.state.console = console
    secret = config.api.session_secret
    app.add_middleware(
        SessionMiddleware,
        secret_key=secret.reveal() if secret else secrets.token_urlsafe(32),
        session_cookie=SESSION_COOKIE,
        max_age=config.api.session_hours * 3600,
        same_site="strict",
        https_only=config.api.cookie_secure,
    )
    app.add_middleware(SecurityHeaders)
    app.add_exception_handler(StarletteHTTPException, _error_handler)
    app.include_router(routes.router)
    app.include_router(routes.openapi_router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    return app


#: Sent with every answer: scripts, styles and images only from the console itself, never in a
#: frame, and no guessing of content types.
SECURITY_HEADERS = (
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
        b"frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'",
    ),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
)


class SecurityHeaders:
    """ASGI middleware adding ``SECURITY_HEADERS`` to every HTTP answer (errors included)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Pass the request on; add the headers to the answer's start."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                names = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(n, v) for n, v in SECURITY_HEADERS if n not in names]
                message = message | {"headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def openapi_of(app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI schema (what ``GET /openapi.json`` serves)."""
    return app.openapi()
