"""The REST record API (``/services/rest/record/v1``) and the OAuth 2.0 token endpoint.

Upserts are ``PUT /record/v1/<type>/eid:<externalId>`` with a JSON body in NetSuite's record
shape (references ``{"id": ..}`` or ``{"externalId": ..}``, sublists ``{"items": [..]}``, the
customer's ``addressBook`` lines with an ``addressBookAddress`` whose country is the ISO
code), answered 204 with a ``Location``. Records read back with sublists expanded. Errors are
NetSuite's JSON: ``{"status": .., "o:errorDetails": [{"detail": .., "o:errorCode": ..}]}``.
JSON numbers are read as Decimal from their text and written back exactly.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
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
from sandbox.netsuite.soap import period_record
from sandbox.netsuite.store import RecordError, Ref, Store

RECORD_PREFIX = "/services/rest/record/v1/"
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
        if not path.startswith(RECORD_PREFIX):
            return error_reply(404, "NONEXISTENT_PATH", f"No REST resource at {path}.", "?")
        operation = f"{method} record"
        try:
            self._authenticate(method, origin + path, headers, dict(parse_qsl(query)))
        except AuthFailure as exc:
            return error_reply(
                401, "INVALID_LOGIN", LOGIN_DETAIL, operation, f"auth refused: {exc}"
            )
        parts = path[len(RECORD_PREFIX) :].split("/")
        spec = SPECS.get(parts[0])
        if spec is None or len(parts) > 2:
            return error_reply(
                404, "NONEXISTENT_ID", f"The record type {parts[0]} is not supported.", operation
            )
        base = origin + RECORD_PREFIX
        if len(parts) == 1:
            if method == "GET" and spec is ACCOUNTING_PERIOD:
                return self._list_periods(base)
            return error_reply(
                405, "METHOD_NOT_ALLOWED", f"{method} {path} is not supported.", operation
            )
        key = unquote(parts[1])
        if method == "PUT":
            return self._upsert(spec, key, body, base)
        if method == "GET":
            return self._get(spec, key, base)
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
        operation = f"upsert {spec.type}"
        if not key.startswith("eid:"):
            return error_reply(
                400, "USER_ERROR", "Upsert needs an external id: eid:<externalId>.", operation
            )
        external_id = key[len("eid:") :]
        try:
            payload = json.loads(body or b"{}", parse_float=Decimal, parse_int=Decimal)
        except ValueError:
            return error_reply(
                400, "INVALID_CONTENT", "The request body is not valid JSON.", operation
            )
        if not isinstance(payload, dict):
            return error_reply(400, "INVALID_CONTENT", "The body must be a JSON object.", operation)
        try:
            if payload.get("externalId", external_id) != external_id:
                raise RecordError("USER_ERROR", "The externalId in the body differs from the URL.")
            values = parse_json_record(spec, payload)
            rejection = self.faults.rejection(external_id)
            if rejection is not None:
                raise RecordError(*rejection)
            outcome = self.store.upsert(spec, external_id, values)
        except RecordError as error:
            reply = error_reply(400, error.code, error.message, operation)
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
            return error_reply(
                404,
                "NONEXISTENT_ID",
                "The record instance does not exist. Provide a valid record instance ID.",
                operation,
            )
        return RestReply(
            200,
            dumps(record_json(spec, record, base)),
            operation,
            records=1,
            content_type="application/vnd.oracle.resource+json; type=singular-resource",
        )

    def _list_periods(self, base: str) -> RestReply:
        items = [
            {
                "links": [{"rel": "self", "href": f"{base}accountingPeriod/{p.internal_id}"}],
                "id": p.internal_id,
            }
            for p in self.setup.periods
        ]
        payload = {
            "links": [{"rel": "self", "href": f"{base}accountingPeriod"}],
            "count": len(items),
            "hasMore": False,
            "items": items,
            "offset": 0,
            "totalResults": len(items),
        }
        return RestReply(
            200,
            json.dumps(payload).encode(),
            "list accountingPeriod",
            records=len(items),
            content_type="application/vnd.oracle.resource+json; type=collection",
        )
