"""The service's HTTP edge: ``GET /health`` (this process's role, its database, the last run)
and the accountants' console beside it, on uvicorn (ASGI) or, without the console, a threaded
WSGI server; each on its own thread."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import sqlalchemy as sa

from finsync.config import Config
from finsync.db import utcnow

if TYPE_CHECKING:
    from sync.engine import SyncEngine

log = logging.getLogger("finsync.service")

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


@dataclass
class Status:
    """What /health reports about this process."""

    mode: str  # 'serve' or 'worker'
    started_at: datetime = field(default_factory=utcnow)
    leader: bool = False

    @property
    def role(self) -> str:
        """'leader', 'follower' or 'worker'."""
        if self.mode == "worker":
            return "worker"
        return "leader" if self.leader else "follower"


def health(state: sa.Engine, status: Status) -> tuple[int, dict[str, Any]]:
    """The health document and its HTTP status: 200, or 503 when the database is unreachable."""
    from sync.state import runs

    body: dict[str, Any] = {
        "role": status.role,
        "pid": os.getpid(),
        "started_at": status.started_at.isoformat(),
    }
    try:
        with state.connect() as conn:
            last = (
                conn.execute(sa.select(runs).order_by(runs.c.id.desc()).limit(1)).mappings().first()
            )
    except sa.exc.DBAPIError as exc:
        body |= {"status": "unavailable", "database": f"unreachable: {type(exc.orig).__name__}"}
        return 503, body
    body |= {"status": "ok", "database": "ok", "last_run": None}
    if last is not None:
        body["last_run"] = {
            "id": last["id"],
            "kind": last["kind"],
            "target": last["target"],
            "status": last["status"],
            "started_at": last["started_at"].isoformat(),
            "finished_at": last["finished_at"].isoformat() if last["finished_at"] else None,
        }
    return 200, body


def health_app(state: sa.Engine, status: Status, console: WsgiApp | None) -> WsgiApp:
    """A WSGI app answering ``GET /health`` (used when there is no console); other paths go to
    ``console`` (a WSGI app) or get a 404."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/health":
            code, body = health(state, status)
            data = json.dumps(body).encode()
            reason = "OK" if code == 200 else "Service Unavailable"
            start_response(
                f"{code} {reason}",
                [("Content-Type", "application/json"), ("Content-Length", str(len(data)))],
            )
            return [data]
        if console is not None:
            return console(environ, start_response)
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found\n"]

    return app


def console_app(config: Config, engine: SyncEngine) -> Any | None:
    """The accountants' console (an ASGI app from ``api.app.create_app``), if installed."""
    try:
        from api.app import create_app
    except ImportError:
        return None
    return create_app(config, engine=engine)


def asgi_app(state: sa.Engine, status: Status, console: Any) -> Any:
    """An ASGI app answering ``GET /health`` and handing everything else (lifespan included)
    to the console."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope.get("path") == "/health":
            code, body = await asyncio.to_thread(health, state, status)
            data = json.dumps(body).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": code,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(data)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": data})
            return
        await console(scope, receive, send)

    return app


class UvicornServer:
    """The console and /health with uvicorn, on its own thread (signals stay with the service)."""

    def __init__(self, host: str, port: int, app: Any) -> None:
        import uvicorn

        self._socket = socket.create_server((host, port))
        self.port = int(self._socket.getsockname()[1])
        self._server = uvicorn.Server(
            uvicorn.Config(app, log_level="warning", lifespan="on", proxy_headers=False)
        )
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, name="http", daemon=True
        )

    def start(self) -> None:
        """Start serving."""
        self._thread.start()

    def stop(self) -> None:
        """Finish open requests, run the console's shutdown, close the socket."""
        self._server.should_exit = True
        self._thread.join(10)
        self._socket.close()


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        log.debug("http: " + format, *args)


class HttpServer:
    """A threaded WSGI server on its own thread."""

    def __init__(self, host: str, port: int, app: WsgiApp) -> None:
        self._server = make_server(
            host, port, app, server_class=_ThreadingWSGIServer, handler_class=_QuietHandler
        )
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, name="http", daemon=True)

    def start(self) -> None:
        """Start serving."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()
