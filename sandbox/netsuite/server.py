"""The NetSuite sandbox server: a real HTTP server on loopback, one thread per request.

``NetSuiteSandbox`` holds the account (reference data, periods, records), checks credentials,
counts requests in flight across SOAP and REST against the account's concurrency limit, and
plays the scripted faults. Routes:

- ``POST /services/NetSuitePort_2023_2``                         SuiteTalk SOAP
- ``GET  /wsdl/netsuite.wsdl``, ``GET /wsdl/xsd/<name>.xsd``      the sandbox's own WSDL
- ``POST|GET /services/rest/record/v1/<type>``                    REST record API: create, list
- ``PUT|GET|PATCH|DELETE .../record/v1/<type>/<id or eid:...>``   upsert, read, update, delete
- ``POST /services/rest/query/v1/suiteql``                         SuiteQL (a subset)
- ``GET  /services/rest/async/v1/job/<id>[/task/<id>/result]``    async jobs (Prefer: respond-async)
- ``POST /services/rest/auth/oauth2/v1/token``                    OAuth 2.0 client credentials
- ``POST /_sandbox/faults``, ``POST /_sandbox/periods``           admin, loopback only, no auth
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast

from sandbox.netsuite.account import AccountSetup
from sandbox.netsuite.auth import Authenticator, SandboxCredentials
from sandbox.netsuite.faults import FaultScript
from sandbox.netsuite.rest import RestReply, RestService, concurrency_reply
from sandbox.netsuite.soap.envelope import CONCURRENCY_FAULT, SoapReply, fault_reply
from sandbox.netsuite.soap.service import SoapService
from sandbox.netsuite.store import Store

SOAP_PATH = "/services/NetSuitePort_2023_2"
WSDL_DIR = Path(__file__).resolve().parent / "wsdl"
_DEFAULT_ADDRESS = "http://127.0.0.1:8088/services/NetSuitePort_2023_2"
_LOOPBACK = ("127.", "::1", "::ffff:127.")

Reply = SoapReply | RestReply


class NetSuiteSandbox:
    """A local NetSuite account speaking SuiteTalk SOAP and the REST record API.

    ``start()`` serves it on a free loopback port in a daemon thread; use it as a context
    manager to stop it. Reads (``records``, ``get``, ``count``, ``gl_balances``) see what the
    account holds; the fault methods script what the next requests suffer.
    """

    def __init__(
        self,
        *,
        account: str = "1234567_SB1",
        credentials: SandboxCredentials | None = None,
        concurrency_limit: int = 5,
        latency_seconds: float = 0.0,
        periods: tuple[str, str] = ("2024-01", "2027-12"),
        clock: Callable[[], float] = time.time,
    ) -> None:
        if concurrency_limit < 1:
            raise ValueError("concurrency_limit must be >= 1")
        self.account = account
        self.credentials = credentials or SandboxCredentials.demo()
        self.concurrency_limit = concurrency_limit
        self.latency_seconds = latency_seconds
        self.setup = AccountSetup(periods)
        self.store = Store(self.setup)
        self.faults = FaultScript()
        self.auth = Authenticator(account, self.credentials, clock)
        self.soap = SoapService(self.store, self.auth, self.faults, self.setup)
        self.rest = RestService(self.store, self.auth, self.faults, self.setup)
        self._lock = threading.Lock()
        self._in_flight = 0
        self._max_in_flight = 0
        self._log: list[dict[str, Any]] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        where = self.url if self._server else "not started"
        return f"NetSuiteSandbox(account={self.account!r}, {where})"

    # ---- lifecycle --------------------------------------------------------------------------

    def start(self, host: str = "127.0.0.1", port: int = 0) -> NetSuiteSandbox:
        """Listen on ``host:port`` (0 = any free port) and serve in a daemon thread."""
        if self._server is not None:
            raise RuntimeError("the sandbox is already running")
        server = ThreadingHTTPServer((host, port), _Handler)
        server.daemon_threads = True
        server.sandbox = self  # type: ignore[attr-defined]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, args=(0.05,), name="netsuite-sandbox", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        self._server = self._thread = None

    def __enter__(self) -> NetSuiteSandbox:
        if self._server is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:54321``."""
        if self._server is None:
            raise RuntimeError("the sandbox is not started")
        host, port = self._server.server_address[:2]
        # A bound TCPServer's address comes from getsockname(), whose host is a str; the stub's
        # bytes | bytearray are only accepted when binding.
        host = cast("str", host)
        host = f"[{host}]" if ":" in str(host) else host
        return f"http://{host}:{port}"

    @property
    def soap_endpoint(self) -> str:
        """The SOAP endpoint (NetSuitePort_2023_2)."""
        return self.url + SOAP_PATH

    @property
    def wsdl_url(self) -> str:
        """URL of the sandbox's own WSDL, whose soap:address is ``soap_endpoint``."""
        return self.url + "/wsdl/netsuite.wsdl"

    @property
    def rest_url(self) -> str:
        """Base of the REST record API: ``.../services/rest/record/v1``."""
        return self.url + "/services/rest/record/v1"

    @property
    def token_url(self) -> str:
        """The OAuth 2.0 token endpoint (also the ``aud`` a client assertion must carry)."""
        return self.url + "/services/rest/auth/oauth2/v1/token"

    # ---- account state ------------------------------------------------------------------------

    def records(self, record_type: str) -> list[dict[str, Any]]:
        """Every record of ``record_type`` (``invoice``, ``customer`` ...), normalized:
        externalId, internalId, fields and sublists with Decimal amounts and dates."""
        return self.store.records(record_type)

    def get(self, record_type: str, external_id: str) -> dict[str, Any] | None:
        """The normalized record with ``external_id``, or None."""
        return self.store.get(record_type, external_id=external_id)

    def count(self, record_type: str) -> int:
        """How many records of ``record_type`` the account holds."""
        return self.store.count(record_type)

    def gl_balances(self, period: str | date | None = None) -> dict[tuple[str, str], Decimal]:
        """Journal entries' net (debit - credit) per (period ``YYYY-MM``, account id)."""
        return self.store.gl_balances(period)

    def close_period(self, day: date) -> None:
        """Close the accounting period containing ``day``."""
        self.setup.close_period(day)

    def open_period(self, day: date) -> None:
        """Reopen the accounting period containing ``day``."""
        self.setup.open_period(day)

    @property
    def request_log(self) -> list[dict[str, Any]]:
        """One entry per API request: time, transport, operation, records, status, detail,
        errors (record status codes). Never credentials."""
        with self._lock:
            return [dict(entry) for entry in self._log]

    @property
    def max_in_flight(self) -> int:
        """The most API requests that were in flight at once (refused ones included)."""
        with self._lock:
            return self._max_in_flight

    @property
    def in_flight(self) -> int:
        """API requests in flight now."""
        with self._lock:
            return self._in_flight

    # ---- scripted faults (see faults.FaultScript) ---------------------------------------------

    def fail_next(self, status: int = 503, times: int = 1) -> None:
        """Answer the next ``times`` API requests with a plain HTTP ``status``."""
        self.faults.fail_next(status, times)

    def concurrency_fault_next(self, times: int = 1) -> None:
        """Answer the next ``times`` API requests with the concurrency-limit error."""
        self.faults.concurrency_fault_next(times)

    def timeout_after_commit(self, times: int = 1, delay: float | None = None) -> None:
        """Apply the next ``times`` writes, then hold the answer ``delay`` s or drop it."""
        self.faults.timeout_after_commit(times, delay)

    def slow(self, seconds: float, times: int | None = None) -> None:
        """Hold API requests ``seconds`` in flight (the next ``times``, or all)."""
        self.faults.slow(seconds, times)

    def reject_external_id(
        self, external_id: str, code: str = "USER_ERROR", message: str = "Rejected by the sandbox."
    ) -> None:
        """Refuse writes of the record with ``external_id`` with ``code`` and ``message``."""
        self.faults.reject_external_id(external_id, code, message)

    def reset(self) -> None:
        """Clear every scripted fault (records and periods stay as they are)."""
        self.faults.reset()

    # ---- request accounting -------------------------------------------------------------------

    @contextlib.contextmanager
    def _slot(self) -> Iterator[bool]:
        """Count one request in flight; yields False when it is over the concurrency limit."""
        with self._lock:
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
            admitted = self._in_flight <= self.concurrency_limit
        try:
            yield admitted
        finally:
            with self._lock:
                self._in_flight -= 1

    def _record(self, transport: str, reply: Reply | None, status: int, detail: str) -> None:
        entry = {
            "time": datetime.now(UTC),
            "transport": transport,
            "operation": reply.operation if reply else "",
            "records": reply.records if reply else 0,
            "status": status,
            "detail": detail,
            "errors": list(reply.errors) if reply else [],
        }
        with self._lock:
            self._log.append(entry)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "NetSuiteSandbox/1.0"

    @property
    def sandbox(self) -> NetSuiteSandbox:
        return self.server.sandbox  # type: ignore[attr-defined,no-any-return]

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the sandbox keeps its own request log."""

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _send_json(self, status: int, payload: Any) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json")

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/wsdl/netsuite.wsdl":
            text = (WSDL_DIR / "netsuite.wsdl").read_text(encoding="utf-8")
            body = text.replace(_DEFAULT_ADDRESS, self.sandbox.soap_endpoint).encode()
            self._send(200, body, "text/xml; charset=utf-8")
        elif path.startswith("/wsdl/xsd/"):
            name = path.rsplit("/", 1)[1]
            schemas = {p.name: p for p in (WSDL_DIR / "xsd").glob("*.xsd")}
            if name in schemas:
                self._send(200, schemas[name].read_bytes(), "text/xml; charset=utf-8")
            else:
                self._send(404, b"not found", "text/plain")
        elif path.startswith("/services/rest/"):
            self._api(
                "rest",
                lambda body: self.sandbox.rest.handle(
                    "GET", self.path, self.headers, body, self._origin()
                ),
            )
        else:
            self._send(404, b"not found", "text/plain")

    def do_PUT(self) -> None:
        self.do_POST()

    def do_PATCH(self) -> None:
        self.do_POST()

    def do_DELETE(self) -> None:
        self.do_POST()

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == SOAP_PATH and self.command == "POST":
            self._api("soap", self.sandbox.soap.handle)
        elif path.startswith("/services/rest/"):
            self._api(
                "rest",
                lambda body: self.sandbox.rest.handle(
                    self.command, self.path, self.headers, body, self._origin()
                ),
            )
        elif path in ("/_sandbox/faults", "/_sandbox/periods") and self.command == "POST":
            self._admin(path)
        else:
            self._body()
            self._send(404, b"not found", "text/plain")

    def _origin(self) -> str:
        """scheme://host[:port] as the client addressed us (for OAuth base strings and aud)."""
        return f"http://{self.headers.get('Host') or self.sandbox.url.split('//', 1)[1]}"

    def _api(self, transport: str, handle: Callable[[bytes], Reply]) -> None:
        sandbox = self.sandbox
        body = self._body()
        faults = sandbox.faults.take_request()
        if faults.fail_status is not None:
            status = faults.fail_status
            sandbox._record(transport, None, status, "scripted HTTP error")
            self._send(status, f"<html><body>HTTP {status}</body></html>".encode(), "text/html")
            return
        # The slot is released before the answer is written: a client that sends its next
        # request as soon as it reads an answer must not find its previous one still counted.
        with sandbox._slot() as admitted:
            if not admitted or faults.concurrency_fault:
                reply: Reply = (
                    fault_reply(CONCURRENCY_FAULT, "?")
                    if transport == "soap"
                    else concurrency_reply()
                )
                detail = (
                    "over the concurrency limit" if not admitted else "scripted concurrency fault"
                )
                sandbox._record(transport, None, reply.status, detail)
            else:
                pause = sandbox.latency_seconds + faults.delay
                if pause:
                    time.sleep(pause)
                reply = handle(body)
                sandbox._record(transport, reply, reply.status, reply.detail)
                timeout = sandbox.faults.take_commit_timeout() if reply.wrote else None
                if timeout is not None:
                    if timeout.delay is None:
                        # Written but unanswered: the client sees the connection drop.
                        self.close_connection = True
                        return
                    time.sleep(timeout.delay)
        self._reply(reply)

    def _reply(self, reply: Reply) -> None:
        if isinstance(reply, SoapReply):
            self._send(reply.status, reply.body, "text/xml; charset=utf-8")
        else:
            self._send(reply.status, reply.body, reply.content_type, reply.headers)

    def _admin(self, path: str) -> None:
        body = self._body()
        if not self.client_address[0].startswith(_LOOPBACK):
            self._send_json(403, {"error": "admin endpoints answer loopback clients only"})
            return
        try:
            command = json.loads(body or b"{}")
            if not isinstance(command, dict):
                raise ValueError("the body must be a JSON object")
            if path == "/_sandbox/faults":
                self.sandbox.faults.apply(command)
            else:
                action, day = command.get("action"), date.fromisoformat(str(command.get("date")))
                if action not in ("close", "open"):
                    raise ValueError("action must be close or open")
                (self.sandbox.close_period if action == "close" else self.sandbox.open_period)(day)
        except ValueError as exc:
            self._send_json(400, {"error": str(exc)})
            return
        self._send_json(200, {"ok": True})


def serve(
    host: str = "127.0.0.1",
    port: int = 8088,
    *,
    account: str = "1234567_SB1",
    concurrency_limit: int = 5,
    latency_seconds: float = 0.0,
    echo: Callable[[str], None] = print,
) -> None:
    """Run a sandbox with the demo credentials until interrupted (Ctrl-C).

    Prints where it listens, never a secret.
    """
    sandbox = NetSuiteSandbox(
        account=account, concurrency_limit=concurrency_limit, latency_seconds=latency_seconds
    )
    sandbox.start(host, port)
    echo(f"NetSuite sandbox for account {account} at {sandbox.url}")
    echo(f"  SOAP endpoint: {sandbox.soap_endpoint}")
    echo(f"  WSDL:          {sandbox.wsdl_url}")
    echo(f"  REST records:  {sandbox.rest_url}")
    echo("  credentials:   SandboxCredentials.demo()")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.stop()
