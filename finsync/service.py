"""The long-running processes: ``finsync serve`` and ``finsync worker``.

``serve`` runs, in one process: the scheduler (only while this process is the leader), a push
worker, and an HTTP server with ``GET /health`` (plus the accountants' console from
``api.create_app`` when that package provides it). ``worker`` runs only the push loop; start as
many as the ERP's account-wide concurrency limit allows (the connectors share it through
``connectors/limits.py``).

One leader: on PostgreSQL every ``serve`` process polls ``pg_try_advisory_lock`` on a dedicated
connection every ``[service] leader_poll_seconds``; the holder runs the scheduler. If the leader
dies, PostgreSQL drops its session and its lock at once, and another process takes over at its
next poll. SQLite allows one process: a second ``serve`` or ``worker`` on the same state file
is refused (an ``flock``-ed lock file next to it).

Stopping: SIGTERM or SIGINT stops claiming; the push in flight records its batch, then unwinds;
the scheduler shuts down; the process exits 0. Whatever is still running after
``stop_timeout_seconds`` is abandoned: its claims' leases lapse and the next worker looks those
records up in the target before sending them again.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import socket
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import IO, TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import sqlalchemy as sa

from core.errors import FinsyncError
from finsync.config import Config
from finsync.db import make_engine, utcnow

if TYPE_CHECKING:
    from apscheduler.schedulers.background import BackgroundScheduler

    from finsync.alerts import Alerts
    from sync.engine import SyncEngine

log = logging.getLogger("finsync.service")

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class ServiceError(FinsyncError):
    """The service cannot start (e.g. a second process on a SQLite state store)."""


# -- one process on SQLite ---------------------------------------------------------------------


class SqliteProcessLock:
    """An ``flock`` on ``<state db>.service.lock``: one finsync process per SQLite state store."""

    def __init__(self, database: Path) -> None:
        self.path = database.with_name(f".{database.name}.service.lock")
        self._handle: IO[str] | None = None

    def acquire(self) -> None:
        """Take the lock or raise ServiceError naming the process that holds it."""
        handle = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held for the process
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise ServiceError(
                f"another finsync service ({holder}) is running on this SQLite state store "
                f"(lock file {self.path}); SQLite allows one process: stop it, or move the state "
                "store to PostgreSQL to run several"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        """Give the lock back."""
        if self._handle is not None:
            fcntl.flock(self._handle.fileno(), fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None


def sqlite_database(url: str) -> Path | None:
    """The file of a SQLite URL (None for PostgreSQL or an in-memory database)."""
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    if parsed.database == ":memory:":
        return None
    return Path(parsed.database).resolve()


# -- the leader on PostgreSQL ------------------------------------------------------------------


class LeaderLock:
    """A PostgreSQL session advisory lock held on a dedicated connection."""

    def __init__(self, url: str, key: int) -> None:
        self.key = key
        self._engine = make_engine(url, key="state.url", poolclass=sa.pool.NullPool)
        self._conn: sa.Connection | None = None
        self.held = False

    def try_acquire(self) -> bool:
        """Take the lock if it is free; False (and no exception) if the database is down."""
        try:
            if self._conn is None:
                self._conn = self._engine.connect()
            got = self._conn.execute(
                sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key}
            ).scalar_one()
            self._conn.commit()
        except sa.exc.DBAPIError as exc:
            log.warning("leader election: database unreachable: %s", exc.orig)
            self._drop()
            return False
        self.held = bool(got)
        return self.held

    def still_held(self) -> bool:
        """True while the lock's connection is alive (losing it loses the lock)."""
        if not self.held or self._conn is None:
            return False
        try:
            # A session lock lives as long as its session: a live connection still holds it.
            self._conn.execute(sa.text("SELECT 1"))
            self._conn.commit()
        except sa.exc.DBAPIError as exc:
            log.warning("leader lock connection lost: %s", exc.orig)
            self._drop()
            return False
        return True

    def _drop(self) -> None:
        self.held = False
        if self._conn is not None:
            with contextlib.suppress(sa.exc.DBAPIError):
                self._conn.invalidate()
                self._conn.close()
            self._conn = None

    def release(self) -> None:
        """Unlock and close the connection."""
        if self._conn is not None and self.held:
            with contextlib.suppress(sa.exc.DBAPIError):
                self._conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
                self._conn.commit()
        self.held = False
        if self._conn is not None:
            with contextlib.suppress(sa.exc.DBAPIError):
                self._conn.close()
            self._conn = None
        self._engine.dispose()


# -- the push worker ---------------------------------------------------------------------------


class PushWorker:
    """Claims and pushes due documents of every target until stopped; sleeps when idle."""

    def __init__(
        self, engine: SyncEngine, *, idle_seconds: float, stopping: threading.Event
    ) -> None:
        self.engine = engine
        self.idle_seconds = idle_seconds
        self.stopping = stopping
        self.rounds = 0

    def run_once(self) -> int:
        """Push every target once; returns how many documents were handled."""
        handled = 0
        for target in self.engine.target_names():
            if self.stopping.is_set():
                break
            try:
                counts = self.engine.push(target, should_stop=self.stopping.is_set)
            except Exception:
                # A broken target must not stop the others; the retry sweep alerts on it.
                log.exception("push to %s failed", target, extra={"target": target})
                continue
            handled += counts.sent + counts.recovered
            if counts.sent or counts.recovered:
                log.info(
                    "pushed %d to %s (%d created, %d updated, %d recovered, %d retrying, "
                    "%d failed, %d dead)",
                    counts.sent,
                    target,
                    counts.created,
                    counts.updated,
                    counts.recovered,
                    counts.retrying,
                    counts.failed,
                    counts.dead,
                    extra={"target": target, "kind": "push"},
                )
        self.rounds += 1
        return handled

    def run(self) -> None:
        """Loop until ``stopping`` is set."""
        while not self.stopping.is_set():
            if self.run_once() == 0:
                self.stopping.wait(self.idle_seconds)


# -- health and the HTTP server ----------------------------------------------------------------


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


# -- the service -------------------------------------------------------------------------------


class Service:
    """``finsync serve`` (scheduler when leader + push worker + HTTP) or ``finsync worker``."""

    def __init__(
        self,
        config: Config,
        *,
        mode: str = "serve",
        engine: SyncEngine | None = None,
        http: bool = True,
    ) -> None:
        from finsync.alerts import Alerts
        from sync.engine import SyncEngine

        if mode not in ("serve", "worker"):
            raise ValueError(f"unknown mode {mode!r}")
        self.config = config
        self.mode = mode
        self.stopping = threading.Event()
        self.status = Status(mode)
        self.engine = engine or SyncEngine(config, actor=f"finsync-{mode}")
        self.engine.check()
        self.alerts: Alerts = Alerts(
            config.alerts, config.report.smtp, self.engine.state, clock=self.engine.clock
        )
        self._sqlite = sqlite_database(config.state_url)
        self._process_lock = SqliteProcessLock(self._sqlite) if self._sqlite else None
        self._leader_lock = (
            LeaderLock(config.state_url, config.service.leader_lock_key)
            if self._sqlite is None and mode == "serve"
            else None
        )
        self._scheduler: BackgroundScheduler | None = None
        self._http_enabled = http
        self.http: HttpServer | UvicornServer | None = None
        self.unfinished = False
        self.name = f"{socket.gethostname()}:{os.getpid()}:{self.status.started_at:%H%M%S%f}"

    # -- leadership ------------------------------------------------------------------------

    def _become_leader(self) -> None:
        import scheduler as jobs

        sched = jobs.build_scheduler(self.config, self.engine.state)
        jobs.install_context(
            jobs.JobContext(self.config, self.engine, self.alerts, self.stopping, self.engine.clock)
        )
        # Paused first: the job store opens, the jobs are reconciled, nothing runs before.
        sched.start(paused=True)
        changed = jobs.reconcile_jobs(sched, self.config, self.engine.target_names())
        sched.resume()
        self._scheduler = sched
        self.status.leader = True
        log.info(
            "this process leads the scheduler (jobs rescheduled: %s)",
            ", ".join(changed) or "none",
            extra={"role": "leader", "event": "leader_elected"},
        )

    def _step_down(self) -> None:
        self.status.leader = False
        sched, self._scheduler = self._scheduler, None
        if sched is not None:
            log.warning("lost the scheduler lead", extra={"role": "follower", "event": "lost_lead"})
            sched.shutdown(wait=False)

    def _elect(self) -> None:
        if self.mode != "serve":
            return
        if self._leader_lock is None:  # SQLite: the only process leads
            if not self.status.leader:
                self._become_leader()
            return
        if self.status.leader:
            if not self._leader_lock.still_held():
                self._step_down()
        elif self._leader_lock.try_acquire():
            self._become_leader()

    # -- running ---------------------------------------------------------------------------

    def start(self) -> None:
        """Take the process lock (SQLite), start HTTP, the worker and the election loop's
        first round. Raises ServiceError when another process holds a SQLite state store."""
        if self._process_lock is not None:
            self._process_lock.acquire()
        if self._http_enabled and self.mode == "serve":
            host, port = self.config.service.health_host, self.config.service.health_port
            console = console_app(self.config, self.engine)
            self.http = (
                UvicornServer(host, port, asgi_app(self.engine.state, self.status, console))
                if console is not None
                else HttpServer(host, port, health_app(self.engine.state, self.status, None))
            )
            self.http.start()
            log.info(
                "health on http://%s:%d/health",
                self.config.service.health_host,
                self.http.port,
                extra={"event": "http_started"},
            )
        self._worker = PushWorker(
            self.engine,
            idle_seconds=self.config.service.worker_idle_seconds,
            stopping=self.stopping,
        )
        self._worker_thread = threading.Thread(target=self._worker.run, name="push-worker")
        self._worker_thread.start()
        self._elect()
        self.heartbeat()

    def heartbeat(self) -> None:
        """Record in ``service_processes`` that this process is alive and what role it has
        (the console's dashboard shows the leader and the workers from it)."""
        from sync.state import service_processes as table

        now = utcnow()
        values = {
            "mode": self.mode,
            "role": self.status.role,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "started_at": self.status.started_at,
            "seen_at": now,
            "poll_seconds": self.config.service.leader_poll_seconds,
        }
        try:
            with self.engine.state.begin() as conn:
                updated = conn.execute(
                    table.update().where(table.c.name == self.name).values(**values)
                ).rowcount
                if not updated:
                    conn.execute(table.insert().values(name=self.name, **values))
        except sa.exc.DBAPIError as exc:
            log.warning(
                "could not record this process's heartbeat: %s",
                type(exc.orig).__name__,
                extra={"event": "heartbeat_failed"},
            )

    def _forget_heartbeat(self) -> None:
        from sync.state import service_processes as table

        try:
            with self.engine.state.begin() as conn:
                conn.execute(table.delete().where(table.c.name == self.name))
        except sa.exc.DBAPIError:
            pass  # the row ages out: the dashboard counts only processes seen lately

    def run(self) -> int:
        """Run until ``stop()`` (or SIGTERM/SIGINT when called on the main thread); returns 0."""
        self.start()
        try:
            while not self.stopping.wait(self.config.service.leader_poll_seconds):
                self._elect()
                self.heartbeat()
        finally:
            self.shutdown()
        return 0

    def stop(self, *_args: Any) -> None:
        """Ask everything to stop (safe from a signal handler)."""
        self.stopping.set()

    def shutdown(self) -> None:
        """Stop claiming, let the batch in flight finish, stop the scheduler, release locks."""
        import scheduler as jobs

        self.stopping.set()
        timeout = self.config.service.stop_timeout_seconds
        log.info("stopping", extra={"event": "stopping"})
        self._worker_thread.join(timeout)
        sched, self._scheduler = self._scheduler, None
        if sched is not None:
            stopper = threading.Thread(target=sched.shutdown, kwargs={"wait": True}, daemon=True)
            stopper.start()
            stopper.join(timeout)
            self.unfinished = stopper.is_alive()
        self.unfinished = self.unfinished or self._worker_thread.is_alive()
        jobs.install_context(None)
        self.status.leader = False
        if self.http is not None:
            self.http.stop()
        if self._leader_lock is not None:
            self._leader_lock.release()
        if self._process_lock is not None:
            self._process_lock.release()
        self._forget_heartbeat()
        if not self.unfinished:
            self.engine.close()
        log.info(
            "stopped%s",
            " (work still in flight was abandoned; its leases will lapse)"
            if self.unfinished
            else "",
            extra={"event": "stopped"},
        )
