"""A local HTTP server that speaks AvaTax REST v2 for the endpoints finsync uses.

Endpoints (request and response shapes of the real API):

- ``POST /api/v2/transactions/create``                               CreateTransaction
- ``POST /api/v2/transactions/createoradjust``                       CreateOrAdjustTransaction
- ``POST /api/v2/companies/{company}/transactions/{code}/void``      VoidTransaction
- ``GET  /api/v2/companies/{company}/transactions/{code}``           GetTransactionByCode
- ``GET  /api/v2/utilities/ping``                                    Ping (no auth needed)

Everything under ``/api/v2`` except ping needs HTTP basic auth with the sandbox's account id and
license key. Transactions are answered with what ``$include`` asks for (Lines, Details,
Summary, Addresses, SummaryOnly, LinesOnly; everything when it is absent), and every answer
carries the ``x-correlation-id`` and ``ServerDuration`` headers AvaTax sends (the official SDK's
logging reads the first). Errors are AvaTax's ErrorResult: ``error.code``, ``message``,
``target`` and ``details[]`` with ``number``, ``code``, ``message``, ``description``,
``faultCode``, ``helpLink`` and ``severity``. Faults are scripted and deterministic, from
Python or from the admin endpoint
``POST /_sandbox/{fail_next|rate_limit_next|timeout_after_commit|reset|lock}`` with the keyword
arguments as a JSON object. The sandbox imports nothing from ``connectors`` or ``mappings``: it
checks what arrives on its own terms, as AvaTax would.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
import time
import uuid
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from sandbox.avatax.engine import INCLUDES, TaxEngine
from sandbox.avatax.faults import AvaTaxFault

_API = "/api/v2"
_ADMIN = "/_sandbox/"
#: Internal bookkeeping that the real TransactionModel does not carry.
_INTERNAL = ("companyCode",)


class AvaTaxSandbox:
    """An in-process AvaTax REST v2 server with scripted faults, for the demo and the tests."""

    def __init__(
        self,
        *,
        account_id: str = "2000000001",
        license_key: str = "sandbox-license-key",
        hang_seconds: float = 30.0,
    ) -> None:
        self.account_id = account_id
        self._license_key = license_key
        #: How long a "timeout after commit" holds the answer back (clients give up first).
        self.hang_seconds = hang_seconds
        self.engine = TaxEngine()
        self.request_log: list[dict[str, Any]] = []
        self._faults_lock = threading.Lock()
        self._fail_status = 503
        self._fail_times = 0
        self._rate_limit_times = 0
        self._retry_after = 1
        self._timeout_times = 0
        self._released = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"AvaTaxSandbox(account_id={self.account_id!r}, url={self._url_or_none()!r})"

    # -- lifecycle ------------------------------------------------------------------------

    def start(self, host: str = "127.0.0.1", port: int = 0) -> AvaTaxSandbox:
        """Serve on ``host:port`` (0 picks a free port) in a daemon thread; returns self."""
        if self._server is not None:
            raise RuntimeError("the AvaTax sandbox is already running")
        self._released.clear()
        self._server = _Server((host, port), _Handler, self)
        # A short poll interval keeps stop() quick; the loop is idle between requests anyway.
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="avatax-sandbox",
            daemon=True,
        )
        self._thread.start()
        return self

    @property
    def url(self) -> str:
        """Base URL of the running server, e.g. ``http://127.0.0.1:54321``."""
        url = self._url_or_none()
        if url is None:
            raise RuntimeError("the AvaTax sandbox is not running; call start() first")
        return url

    def _url_or_none(self) -> str | None:
        if self._server is None:
            return None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def stop(self) -> None:
        """Stop serving and release any answer held back by a scripted timeout."""
        self._released.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def serve(self, host: str = "127.0.0.1", port: int = 8766) -> None:
        """Serve in the foreground until interrupted (for a CLI command)."""
        self._released.clear()
        server = _Server((host, port), _Handler, self)
        self._server = server
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            self._released.set()
            server.server_close()
            self._server = None

    def __enter__(self) -> AvaTaxSandbox:
        if self._server is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- scripted faults and test helpers -------------------------------------------------

    def fail_next(self, status: int = 503, times: int = 1) -> None:
        """Answer the next ``times`` API requests with HTTP ``status`` and change nothing."""
        with self._faults_lock:
            self._fail_status = status
            self._fail_times = times

    def rate_limit_next(self, times: int = 1, retry_after: int = 1) -> None:
        """Answer the next ``times`` API requests 429 with ``Retry-After: retry_after``."""
        with self._faults_lock:
            self._rate_limit_times = times
            self._retry_after = retry_after

    def timeout_after_commit(self, times: int = 1) -> None:
        """Apply the next ``times`` writes, then never answer them (the client times out)."""
        with self._faults_lock:
            self._timeout_times = times

    def reset(self) -> None:
        """Forget every document, scripted fault and logged request."""
        with self._faults_lock:
            self._fail_times = 0
            self._rate_limit_times = 0
            self._timeout_times = 0
        self.engine.clear()
        self.request_log.clear()

    def lock(self, company: str, code: str, doc_type: str | None = None) -> None:
        """Mark a document reported to a tax authority: adjusting or voiding it then fails."""
        self.engine.lock(company, code, doc_type)

    def transactions(self, company: str | None = None) -> list[dict[str, Any]]:
        """The recorded documents (TransactionModel dicts with Decimal amounts), oldest first."""
        return self.engine.documents(company)

    # -- used by the handler --------------------------------------------------------------

    def _take_fault(self, is_write: bool) -> tuple[str, int] | None:
        with self._faults_lock:
            if self._rate_limit_times > 0:
                self._rate_limit_times -= 1
                return ("rate_limit", self._retry_after)
            if self._fail_times > 0:
                self._fail_times -= 1
                return ("fail", self._fail_status)
            if is_write and self._timeout_times > 0:
                self._timeout_times -= 1
                return ("timeout", 0)
        return None

    def _authorized(self, header: str | None) -> bool:
        if not header or not header.startswith("Basic "):
            return False
        try:
            decoded = base64.b64decode(header[6:], validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        account, _, key = decoded.partition(":")
        return account == self.account_id and key == self._license_key

    def _admin(self, action: str, args: dict[str, Any]) -> Any:
        actions: dict[str, Callable[..., None]] = {
            "fail_next": self.fail_next,
            "rate_limit_next": self.rate_limit_next,
            "timeout_after_commit": self.timeout_after_commit,
            "reset": self.reset,
            "lock": self.lock,
        }
        if action == "transactions":
            return [_render(doc) for doc in self.transactions(args.get("company"))]
        if action not in actions:
            raise AvaTaxFault(404, "EntityNotFoundError", f"unknown sandbox action {action!r}")
        actions[action](**args)
        return {"ok": True}


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type, sandbox: AvaTaxSandbox) -> None:
        self.sandbox = sandbox
        super().__init__(address, handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    server_version = "AvaTaxSandbox/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        # The request log is kept in memory; stderr noise would only clutter test output.
        return

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        self._started = time.perf_counter()
        sandbox = self.server.sandbox
        parts = urlsplit(self.path)
        path = parts.path.rstrip("/")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        entry: dict[str, Any] = {
            "method": method,
            "path": path,
            "query": query,
            "client": self.headers.get("X-Avalara-Client"),
            "body": None,
            "status": None,
        }
        try:
            body = json.loads(raw, parse_float=Decimal) if raw else None
        except ValueError:
            self._send_fault(
                AvaTaxFault(400, "JsonFormatError", "The request body is not valid JSON."), entry
            )
            sandbox.request_log.append(entry)
            return
        entry["body"] = body

        if path.startswith(_ADMIN):
            try:
                result = sandbox._admin(path[len(_ADMIN) :], body or {})
            except (AvaTaxFault, TypeError, ValueError) as exc:
                refusal = (
                    exc
                    if isinstance(exc, AvaTaxFault)
                    else AvaTaxFault(400, "InvalidParameterValue", str(exc))
                )
                self._send_fault(refusal, entry)
                return
            self._send_json(200, result, entry)
            return

        sandbox.request_log.append(entry)
        if not path.startswith(_API):
            self._send_fault(AvaTaxFault(404, "EntityNotFoundError", f"No route {path}."), entry)
            return
        route = path[len(_API) :]
        is_write = method == "POST"
        fault = sandbox._take_fault(is_write)
        if fault is not None and fault[0] == "rate_limit":
            self._send_text(429, "Too Many Requests", entry, {"Retry-After": str(fault[1])})
            return
        if fault is not None and fault[0] == "fail":
            self._send_text(fault[1], HTTPStatus(fault[1]).phrase, entry)
            return

        authorized = sandbox._authorized(self.headers.get("Authorization"))
        if route == "/utilities/ping" and method == "GET":
            self._send_json(200, _ping(sandbox, authorized), entry)
            return
        if not authorized:
            self._send_fault(
                AvaTaxFault(
                    401,
                    "AuthenticationException",
                    "Authentication failed: the account id or license key is not valid.",
                    target="HttpRequestHeaders",
                ),
                entry,
            )
            return
        try:
            result = self._route(method, route, query, body)
        except AvaTaxFault as exc:
            self._send_fault(exc, entry)
            return
        if fault is not None and fault[0] == "timeout":
            # The write is applied; the answer is held back until the client has given up.
            entry["status"] = "held"
            sandbox._released.wait(sandbox.hang_seconds)
            self.close_connection = True
            return
        self._send_json(200, _render(result, query.get("$include")), entry)

    def _route(self, method: str, route: str, query: dict[str, str], body: Any) -> Any:
        engine = self.server.sandbox.engine
        segments = [unquote(s) for s in route.strip("/").split("/")]
        if method == "POST" and segments == ["transactions", "createoradjust"]:
            return engine.create_or_adjust(body)[0]
        if method == "POST" and segments == ["transactions", "create"]:
            return engine.create(body)[0]
        if len(segments) >= 4 and segments[0] == "companies" and segments[2] == "transactions":
            company, code, rest = segments[1], segments[3], segments[4:]
            doc_type = query.get("documentType")
            if method == "POST" and rest == ["void"]:
                return engine.void(company, code, doc_type, body)
            if method == "GET" and not rest:
                return engine.get(company, code, doc_type)
        raise AvaTaxFault(404, "EntityNotFoundError", f"No route {method} {_API}{route}.")

    def _send_fault(self, fault: AvaTaxFault, entry: dict[str, Any]) -> None:
        self._send_json(fault.status, fault.body(), entry)

    def _send_json(self, status: int, data: Any, entry: dict[str, Any]) -> None:
        self._send(status, dumps(data).encode("utf-8"), "application/json; charset=utf-8", entry)

    def _send_text(
        self, status: int, text: str, entry: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        self._send(status, text.encode("utf-8"), "text/plain; charset=utf-8", entry, headers)

    def _send(
        self,
        status: int,
        payload: bytes,
        content_type: str,
        entry: dict[str, Any],
        headers: dict[str, str] | None = None,
    ) -> None:
        entry["status"] = status
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("x-correlation-id", str(uuid.uuid4()))
        elapsed = time.perf_counter() - self._started
        self.send_header("ServerDuration", f"00:00:{elapsed:010.7f}")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)


def _ping(sandbox: AvaTaxSandbox, authorized: bool) -> dict[str, Any]:
    result: dict[str, Any] = {
        "version": "1.0.0.0",
        "authenticated": authorized,
        "authenticationType": "AccountIdLicenseKey" if authorized else "None",
    }
    if authorized:
        result["authenticatedAccountId"] = (
            int(sandbox.account_id) if sandbox.account_id.isdigit() else 0
        )
    return result


def _render(doc: Any, include: str | None = None) -> Any:
    """A stored document as the API shows it: without internal keys, taxDate a date-time, and
    only the parts ``$include`` asks for (all of them when it is absent)."""
    if not isinstance(doc, dict) or "lines" not in doc:
        return doc
    out = {k: v for k, v in doc.items() if k not in _INTERNAL}
    if isinstance(out.get("taxDate"), date):
        out["taxDate"] = f"{out['taxDate'].isoformat()}T00:00:00"
    if include is None:
        return out
    wanted = {part.strip() for part in include.split(",")} & INCLUDES
    summary = bool(wanted & {"Summary", "SummaryOnly"})
    details = bool(wanted & {"Details", "Summary"}) and "LinesOnly" not in wanted
    lines = bool(wanted & {"Lines", "Details", "Summary", "LinesOnly"}) and (
        "SummaryOnly" not in wanted
    )
    if lines:
        out["lines"] = [
            line if details else {k: v for k, v in line.items() if k != "details"}
            for line in out["lines"]
        ]
    else:
        del out["lines"]
    if not summary:
        del out["summary"]
    if "Addresses" not in wanted:
        del out["addresses"]
    return out


def dumps(data: Any) -> str:
    """JSON with Decimals written as exact numbers and dates in ISO form."""
    if isinstance(data, dict):
        items = (f"{json.dumps(str(k))}:{dumps(v)}" for k, v in data.items())
        return "{" + ",".join(items) + "}"
    if isinstance(data, list | tuple):
        return "[" + ",".join(dumps(v) for v in data) + "]"
    if isinstance(data, Decimal):
        return format(data, "f")
    if isinstance(data, datetime | date):
        return json.dumps(data.isoformat())
    return json.dumps(data)
