"""The REST record API (``/services/rest/record/v1``), SuiteQL, async jobs and the OAuth 2.0
token endpoint.

Records: ``POST /record/v1/<type>`` creates (a taken externalId is DUP_ENTITY / DUP_RCRD),
``PUT .../eid:<externalId>`` upserts, ``PATCH .../<id or eid:..>`` updates the fields sent,
``DELETE`` removes a record nothing depends on; each answers 204 with a ``Location``. ``GET``
reads one record (sublists expanded) or a collection page (``limit`` up to 1000, ``offset``).
Bodies are NetSuite's record shape (references ``{"id": ..}`` or ``{"externalId": ..}``,
sublists ``{"items": [..]}``, the customer's ``addressBook`` lines with an
``addressBookAddress`` whose country is the ISO code). ``POST /query/v1/suiteql`` runs the
subset of ``sandbox.netsuite.suiteql``. ``Prefer: respond-async`` makes a write a job (202 with
the job's ``Location`` under ``/services/rest/async/v1/job/``); an ``X-NetSuite-Idempotency-Key``
already used answers 400 IDEMPOTENCY_ERROR with the original job's location and applies nothing.
Errors are NetSuite's JSON: ``{"status": .., "o:errorDetails": [{"detail": .., "o:errorCode":
..}]}``. JSON numbers are read as Decimal from their text and written back exactly.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from email.message import Message
from typing import Any
from urllib.parse import parse_qsl, unquote

from sandbox.netsuite.account import AccountSetup
from sandbox.netsuite.auth import Authenticator, AuthFailure
from sandbox.netsuite.countries import ISO_TO_ENUM
from sandbox.netsuite.faults import FaultScript
from sandbox.netsuite.records import (
    ACCOUNTING_PERIOD,
    ADDRESS_BY_NAME,
    SPECS,
    Field,
    RecordSpec,
    Sublist,
)
from sandbox.netsuite.soap.record_xml import period_record
from sandbox.netsuite.store import RecordError, Ref, Store
from sandbox.netsuite.suiteql import SuiteQLError, run_suiteql

RECORD_PREFIX = "/services/rest/record/v1/"
SUITEQL_PATH = "/services/rest/query/v1/suiteql"
JOB_PREFIX = "/services/rest/async/v1/job/"
#: Items per page of a collection GET or a SuiteQL query: the default and the most NetSuite gives.
PAGE_LIMIT = 1000
_MISSING = "The record instance does not exist. Provide a valid record instance ID."
TOKEN_PATH = "/services/rest/auth/oauth2/v1/token"  # noqa: S105 - a URL path
LOGIN_DETAIL = (
    "Invalid login attempt. For more details, see the Login Audit Trail in the NetSuite UI at "
    "Setup > Users/Roles > User Management > View Login Audit Trail."
)
_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    429: "Too Many Requests",
}
_NUMBER_MARK = "\u0000n:"
_NUMBER_RE = re.compile(r'"\\u0000n:(-?[0-9.]+)"')


@dataclass
class RestReply:
    """What the server sends back, plus what the request log records."""

    status: int
    body: bytes
    operation: str
    records: int = 0
    detail: str = ""
    wrote: bool = False
    errors: list[str] = field(default_factory=list)
    content_type: str = "application/vnd.oracle.resource+json; type=error"
    headers: dict[str, str] = field(default_factory=dict)


def error_reply(status: int, code: str, detail: str, operation: str, log: str = "") -> RestReply:
    """A NetSuite REST error document."""
    payload = {
        "type": "https://www.rfc-editor.org/rfc/rfc9110.html",
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "o:errorDetails": [{"detail": detail, "o:errorCode": code}],
    }
    return RestReply(
        status, json.dumps(payload).encode(), operation, detail=log or code, errors=[code]
    )


def concurrency_reply() -> RestReply:
    """The answer above the account's concurrency limit (HTTP 429)."""
    return error_reply(
        429,
        "SSS_REQUEST_LIMIT_EXCEEDED",
        "Request blocked: the account's concurrent request limit is reached. Retry later.",
        "?",
    )


def dumps(payload: Any) -> bytes:
    """JSON with Decimals written as exact numbers and dates as ISO strings."""

    def prepare(value: Any) -> Any:
        if isinstance(value, Decimal):
            return f"{_NUMBER_MARK}{format(value, 'f')}"
        if isinstance(value, date):
            return value.isoformat()
        if isinstance(value, dict):
            return {k: prepare(v) for k, v in value.items()}
        if isinstance(value, list):
            return [prepare(v) for v in value]
        return value

    return _NUMBER_RE.sub(r"\1", json.dumps(prepare(payload))).encode()


def _bad(field: Field, value: Any) -> RecordError:
    return RecordError("INVALID_FLD_VALUE", f"Invalid value {value!r} for field {field.name}.")


def parse_json_value(field: Field, value: Any) -> Any:
    """One field's value from JSON. Raises RecordError."""
    if field.kind in ("ref", "doc"):
        if not isinstance(value, dict) or not ({"id", "externalId"} & set(value)):
            raise RecordError(
                "INVALID_KEY_OR_REF", f"The {field.name} reference needs an id or an externalId."
            )
        internal, external = value.get("id"), value.get("externalId")
        return Ref(
            None if internal is None else str(internal),
            None if external is None or internal is not None else str(external),
        )
    if field.kind == "address":
        if not isinstance(value, dict):
            raise _bad(field, value)
        address = {}
        for name, item in value.items():
            member = ADDRESS_BY_NAME.get(name)
            if member is None:
                raise RecordError("INVALID_FLD", f"The field {name} is not valid for an address.")
            address[name] = parse_json_value(member, item)
        return address
    if field.kind == "country":
        # REST takes the ISO code, plain or as a select value {"id": "US"}.
        code = value.get("id") if isinstance(value, dict) else value
        if not isinstance(code, str) or code not in ISO_TO_ENUM:
            raise _bad(field, value)
        return code
    if field.kind == "string":
        if not isinstance(value, str) or "\u0000" in value:
            raise _bad(field, value)
        return value
    if field.kind == "bool":
        if not isinstance(value, bool):
            raise _bad(field, value)
        return value
    if field.kind == "date":
        try:
            return date.fromisoformat(str(value)[:10])
        except ValueError:
            raise _bad(field, value) from None
    if isinstance(value, bool) or not isinstance(value, Decimal | str):
        raise _bad(field, value)
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise _bad(field, value) from None
    if not number.is_finite():
        raise _bad(field, value)
    return number


def parse_json_record(spec: RecordSpec, body: dict[str, Any]) -> dict[str, Any]:
    """The values of a REST record body. Raises RecordError."""
    values: dict[str, Any] = {}
    for name, value in body.items():
        if name in ("externalId", "links", "refName"):
            continue
        if name == "id":
            raise RecordError(
                "USER_ERROR", "An internal id is not allowed in an upsert: use eid:<externalId>."
            )
        member = next((s for s in spec.sublists if s.rest_name == name), None) or spec.member(name)
        if member is None or (isinstance(member, Sublist) and member.rest_name != name):
            raise RecordError("INVALID_FLD", f"The field {name} is not valid for {spec.type}.")
        if isinstance(member, Sublist):
            items = value.get("items") if isinstance(value, dict) else None
            if not isinstance(items, list):
                raise RecordError("INVALID_FLD_VALUE", f"The sublist {name} needs items.")
            values[member.name] = [_parse_line(member, item) for item in items]
        else:
            values[name] = parse_json_value(member, value)
    return values


def _parse_line(sublist: Sublist, item: Any) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise RecordError("INVALID_FLD_VALUE", f"A line of {sublist.rest_name} must be an object.")
    line = {}
    for name, value in item.items():
        member = sublist.json_field(name)
        if member is None:
            raise RecordError(
                "INVALID_FLD", f"The field {name} is not valid for sublist {sublist.rest_name}."
            )
        line[member.name] = parse_json_value(member, value)
    return line


def record_json(spec: RecordSpec, record: dict[str, Any], base: str) -> dict[str, Any]:
    """A normalized record in REST shape, sublists expanded."""
    out: dict[str, Any] = {
        "links": [{"rel": "self", "href": f"{base}{spec.type}/{record['internalId']}"}],
        "id": record["internalId"],
    }
    if record.get("externalId"):
        out["externalId"] = record["externalId"]
    for member in spec.members:
        if member.name not in record:
            continue
        if isinstance(member, Sublist):
            out[member.rest_name] = {
                "items": [_json_line(member, line) for line in record[member.name]]
            }
        else:
            out[member.name] = _json_value(member, record[member.name])
    return out


def _json_line(sublist: Sublist, line: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for name, value in line.items():
        field = sublist.field(name)
        out[field.json_name if field else name] = _json_value(field, value)
    return out


def _json_value(field: Field | None, value: Any) -> Any:
    if field is not None and field.kind in ("ref", "doc"):
        return {"id": str(value)}
    if field is not None and field.kind == "address":
        return {k: {"id": v} if k == "country" else v for k, v in value.items()}
    return value


class RestService:
    """Answers REST record API and token requests against one store and authenticator."""

    def __init__(
        self, store: Store, auth: Authenticator, faults: FaultScript, setup: AccountSetup
    ) -> None:
        self.store = store
        self.auth = auth
        self.faults = faults
        self.setup = setup
        self._lock = threading.Lock()
        self._jobs: dict[str, RestReply] = {}
        self._job_by_key: dict[str, str] = {}

    def handle(
        self,
        method: str,
        target: str,
        headers: Mapping[str, str] | Message,
        body: bytes,
        origin: str,
    ) -> RestReply:
        """Route one request; never raises."""
        path, _, query = target.partition("?")
        if path == TOKEN_PATH:
            return self._token(method, body, origin)
        if not path.startswith((RECORD_PREFIX, SUITEQL_PATH, JOB_PREFIX)):
            return error_reply(404, "NONEXISTENT_PATH", f"No REST resource at {path}.", "?")
        params = dict(parse_qsl(query))
        try:
            self._authenticate(method, origin + path, headers, params)
        except AuthFailure as exc:
            return error_reply(
                401, "INVALID_LOGIN", LOGIN_DETAIL, f"{method} {path}", f"auth refused: {exc}"
            )
        if path == SUITEQL_PATH:
            if method != "POST":
                return error_reply(405, "METHOD_NOT_ALLOWED", "Use POST for SuiteQL.", "suiteql")
            return self._suiteql(body, params, origin)
        if path.startswith(JOB_PREFIX):
            return self._job(method, path[len(JOB_PREFIX) :], origin)
        prefer = {p.strip().lower() for p in (headers.get("Prefer") or "").split(",")}
        if "respond-async" in prefer and method in ("POST", "PUT", "PATCH", "DELETE"):
            key = headers.get("X-NetSuite-Idempotency-Key")
            return self._async(
                key, origin, lambda: self._record(method, path, params, body, origin)
            )
        return self._record(method, path, params, body, origin)

    def _record(
        self, method: str, path: str, params: dict[str, str], body: bytes, origin: str
    ) -> RestReply:
        operation = f"{method} record"
        parts = path[len(RECORD_PREFIX) :].split("/")
        spec = SPECS.get(parts[0])
        if spec is None or len(parts) > 2:
            return error_reply(
                404, "NONEXISTENT_ID", f"The record type {parts[0]} is not supported.", operation
            )
        base = origin + RECORD_PREFIX
        if len(parts) == 1:
            if method == "GET":
                return self._list(spec, base, params)
            if method == "POST":
                return self._write(spec, "add", None, body, base)
            return error_reply(
                405, "METHOD_NOT_ALLOWED", f"{method} {path} is not supported.", operation
            )
        key = unquote(parts[1])
        if method == "PUT":
            return self._upsert(spec, key, body, base)
        if method == "GET":
            return self._get(spec, key, base)
        if method == "PATCH":
            return self._write(spec, "update", key, body, base)
        if method == "DELETE":
            return self._delete(spec, key)
        return error_reply(405, "METHOD_NOT_ALLOWED", f"{method} is not supported.", operation)

    def _authenticate(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | Message,
        query: dict[str, str],
    ) -> None:
        header = headers.get("Authorization") or ""
        if header.startswith("Bearer "):
            self.auth.verify_bearer(header[len("Bearer ") :].strip())
        elif header.startswith("OAuth "):
            self.auth.verify_oauth1(method, url, header, query)
        else:
            raise AuthFailure("no Authorization header")

    def _token(self, method: str, body: bytes, origin: str) -> RestReply:
        if method != "POST":
            return error_reply(405, "METHOD_NOT_ALLOWED", "Use POST.", "token")
        form = dict(parse_qsl(body.decode("utf-8", "replace")))
        try:
            token = self.auth.issue_token(form, origin + TOKEN_PATH)
        except AuthFailure as exc:
            payload = json.dumps({"error": "invalid_grant"}).encode()
            return RestReply(
                400,
                payload,
                "token",
                detail=f"token refused: {exc}",
                content_type="application/json",
                errors=["invalid_grant"],
            )
        grant = {"access_token": token, "expires_in": 3600, "token_type": "bearer"}
        return RestReply(
            200,
            json.dumps(grant).encode(),
            "token",
            detail="token issued",
            content_type="application/json",
        )

    def _upsert(self, spec: RecordSpec, key: str, body: bytes, base: str) -> RestReply:
        if not key.startswith("eid:"):
            return error_reply(
                400,
                "USER_ERROR",
                "Upsert needs an external id: eid:<externalId>.",
                f"upsert {spec.type}",
            )
        return self._write(spec, "upsert", key, body, base)

    def _write(
        self, spec: RecordSpec, mode: str, key: str | None, body: bytes, base: str
    ) -> RestReply:
        """POST (add), PUT eid: (upsert) or PATCH (update) one record: 204 with Location."""
        operation = f"{mode} {spec.type}"
        try:
            payload = json.loads(body or b"{}", parse_float=Decimal, parse_int=Decimal)
        except ValueError:
            return error_reply(
                400, "INVALID_CONTENT", "The request body is not valid JSON.", operation
            )
        if not isinstance(payload, dict):
            return error_reply(400, "INVALID_CONTENT", "The body must be a JSON object.", operation)
        ref = _key_ref(key)
        try:
            if not spec.writable:
                raise RecordError("INVALID_RCRD_TYPE", f"{spec.type} records cannot be written")
            body_external = payload.get("externalId")
            if body_external is not None and not isinstance(body_external, str):
                raise RecordError("INVALID_FLD_VALUE", "The externalId must be a string.")
            if ref.external_id is not None and body_external not in (None, ref.external_id):
                raise RecordError("USER_ERROR", "The externalId in the body differs from the URL.")
            values = parse_json_record(spec, payload)
            external_id = ref.external_id or body_external
            rejection = self.faults.rejection(external_id or "")
            if rejection is not None:
                raise RecordError(*rejection)
            if mode == "upsert":
                outcome = self.store.upsert(spec, external_id or "", values)
            elif mode == "add":
                outcome = self.store.add(spec, external_id, values)
            else:
                outcome = self.store.update(spec, ref, values)
        except RecordError as error:
            status = 404 if error.code == "RCRD_DSNT_EXIST" else 400
            if status == 404:
                error = RecordError("NONEXISTENT_ID", _MISSING)
            reply = error_reply(status, error.code, error.message, operation)
            reply.records = 1
            return reply
        return RestReply(
            204,
            b"",
            operation,
            records=1,
            detail="created" if outcome.created else "updated",
            wrote=True,
            content_type="application/json",
            headers={"Location": f"{base}{spec.type}/{outcome.internal_id}"},
        )

    def _delete(self, spec: RecordSpec, key: str) -> RestReply:
        operation = f"delete {spec.type}"
        ref = _key_ref(key)
        record = self.store.get(spec.type, internal_id=ref.internal_id, external_id=ref.external_id)
        try:
            if not spec.writable:
                raise RecordError("INVALID_RCRD_TYPE", f"{spec.type} records cannot be deleted")
            if record is None:
                raise RecordError("NONEXISTENT_ID", _MISSING)
            self.store.delete(spec.type, record["internalId"])
        except RecordError as error:
            status = 404 if error.code in ("NONEXISTENT_ID", "RCRD_DSNT_EXIST") else 400
            return error_reply(status, error.code, error.message, operation)
        return RestReply(
            204,
            b"",
            operation,
            records=1,
            detail="deleted",
            wrote=True,
            content_type="application/json",
        )

    def _get(self, spec: RecordSpec, key: str, base: str) -> RestReply:
        operation = f"get {spec.type}"
        if spec is ACCOUNTING_PERIOD:
            period = self.setup.period(key)
            record = None if period is None else period_record(self.setup, period)
        elif key.startswith("eid:"):
            record = self.store.get(spec.type, external_id=key[len("eid:") :])
        else:
            record = self.store.get(spec.type, internal_id=key)
        if record is None:
            return error_reply(404, "NONEXISTENT_ID", _MISSING, operation)
        return RestReply(
            200,
            dumps(record_json(spec, record, base)),
            operation,
            records=1,
            content_type="application/vnd.oracle.resource+json; type=singular-resource",
        )

    def _list(self, spec: RecordSpec, base: str, params: dict[str, str]) -> RestReply:
        """A collection GET: one page of ``{links, id}`` items, ``limit`` and ``offset``."""
        operation = f"list {spec.type}"
        try:
            limit, offset = _paging(params)
        except ValueError as exc:
            return error_reply(400, "INVALID_PARAMETER", str(exc), operation)
        if spec is ACCOUNTING_PERIOD:
            ids = [p.internal_id for p in self.setup.periods]
        else:
            ids = [r["internalId"] for r in self.store.records(spec.type)]
        items = [
            {"links": [{"rel": "self", "href": f"{base}{spec.type}/{i}"}], "id": i}
            for i in ids[offset : offset + limit]
        ]
        payload = _page(f"{base}{spec.type}", items, len(ids), limit, offset)
        return RestReply(
            200,
            json.dumps(payload).encode(),
            operation,
            records=len(items),
            content_type="application/vnd.oracle.resource+json; type=collection",
        )

    def _suiteql(self, body: bytes, params: dict[str, str], origin: str) -> RestReply:
        """``POST /query/v1/suiteql`` with ``{"q": ...}``: the subset in ``suiteql.run``."""
        try:
            payload = json.loads(body or b"{}")
            query = payload.get("q") if isinstance(payload, dict) else None
            if not isinstance(query, str):
                raise ValueError('The body must be a JSON object {"q": "SELECT ..."}.')
            limit, offset = _paging(params)
            rows = run_suiteql(query, self.store, self.setup)
        except SuiteQLError as exc:
            return error_reply(400, "INVALID_PARAMETER", str(exc), "suiteql")
        except ValueError as exc:
            return error_reply(400, "INVALID_CONTENT", str(exc), "suiteql")
        items = [{"links": [], **row} for row in rows[offset : offset + limit]]
        payload = _page(origin + SUITEQL_PATH, items, len(rows), limit, offset)
        return RestReply(
            200,
            json.dumps(payload).encode(),
            "suiteql",
            records=len(items),
            content_type="application/vnd.oracle.resource+json; type=collection",
        )

    def _async(self, key: str | None, origin: str, run: Callable[[], RestReply]) -> RestReply:
        """``Prefer: respond-async``: run the request as a job and answer 202 with its
        Location. A job's ``X-NetSuite-Idempotency-Key`` is never applied twice: the same key
        again answers 400 IDEMPOTENCY_ERROR naming the original job."""
        with self._lock:
            if key is not None and key in self._job_by_key:
                location = f"{origin}{JOB_PREFIX}{self._job_by_key[key]}"
                reply = error_reply(
                    400,
                    "IDEMPOTENCY_ERROR",
                    f"A request with idempotency key {key} was already accepted: see {location}.",
                    "async",
                )
                reply.headers["Location"] = location
                return reply
            job_id = str(next(_JOB_IDS))
            if key is not None:
                self._job_by_key[key] = job_id
        # The sandbox runs the job at once; a client still polls its Location as it must.
        result = run()
        with self._lock:
            self._jobs[job_id] = result
        return RestReply(
            202,
            b"",
            f"async {result.operation}",
            records=result.records,
            detail=f"job {job_id}: {result.detail}",
            wrote=result.wrote,
            errors=list(result.errors),
            content_type="application/json",
            headers={"Location": f"{origin}{JOB_PREFIX}{job_id}"},
        )

    def _job(self, method: str, rest: str, origin: str) -> RestReply:
        """``GET job/<id>`` (its progress) and ``GET job/<id>/task/<id>/result``."""
        parts = rest.split("/")
        with self._lock:
            result = self._jobs.get(parts[0])
        if method != "GET":
            return error_reply(405, "METHOD_NOT_ALLOWED", "Jobs are read with GET.", "job")
        if result is None or parts[1:] not in ([], ["task", parts[0], "result"]):
            return error_reply(404, "NONEXISTENT_ID", f"No async job at {rest}.", "job")
        job_url = f"{origin}{JOB_PREFIX}{parts[0]}"
        if parts[1:]:
            return RestReply(
                result.status,
                result.body,
                "job result",
                content_type=result.content_type,
                headers=dict(result.headers),
            )
        payload = {
            "links": [{"rel": "self", "href": job_url}],
            "id": parts[0],
            "progress": "succeeded" if result.status < 400 else "failed",
            "task": {"links": [{"rel": "related", "href": f"{job_url}/task/{parts[0]}/result"}]},
        }
        return RestReply(
            200,
            json.dumps(payload).encode(),
            "job",
            content_type="application/vnd.oracle.resource+json; type=singular-resource",
        )


_JOB_IDS = itertools.count(1)


def _key_ref(key: str | None) -> Ref:
    """The record a URL key names: ``eid:<externalId>`` or an internal id."""
    if key is None:
        return Ref()
    if key.startswith("eid:"):
        return Ref(external_id=key[len("eid:") :])
    return Ref(internal_id=key)


def _paging(params: dict[str, str]) -> tuple[int, int]:
    """(limit, offset) from the query string. Raises ValueError."""
    try:
        limit = int(params.get("limit", PAGE_LIMIT))
        offset = int(params.get("offset", 0))
    except ValueError:
        raise ValueError("limit and offset must be integers.") from None
    if not 1 <= limit <= PAGE_LIMIT or offset < 0:
        raise ValueError(f"limit must be 1..{PAGE_LIMIT} and offset 0 or more.")
    return limit, offset


def _page(
    href: str, items: list[dict[str, Any]], total: int, limit: int, offset: int
) -> dict[str, Any]:
    """NetSuite's collection shape around one page of ``items``."""
    links = [{"rel": "self", "href": f"{href}?limit={limit}&offset={offset}"}]
    if offset + limit < total:
        links.append({"rel": "next", "href": f"{href}?limit={limit}&offset={offset + limit}"})
    return {
        "links": links,
        "count": len(items),
        "hasMore": offset + limit < total,
        "items": items,
        "offset": offset,
        "totalResults": total,
    }
