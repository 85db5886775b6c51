"""The console's JSON API under /api (and its OpenAPI schema at /openapi.json)."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import date
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import FileResponse, JSONResponse

from api import queries
from api.auth import Principal, create_token, list_tokens, revoke_token
from api.console import CSRF_HEADER, Console, check_csrf, console_of, require
from api.models import (
    MAX_ID,
    AuditPage,
    ConfigView,
    ErrorOut,
    Health,
    Kind,
    Me,
    RecordDetail,
    RecordPage,
    ResyncOut,
    ResyncRequest,
    RunDetail,
    RunPage,
    Status,
    StatusOut,
    TokenCreate,
    TokenCreated,
    TokenOut,
    WorkbookList,
)
from core.errors import ConfigError, FinsyncError
from finsync.config import Config
from sync.engine import ResyncResult, Selection
from sync.state import audit_log
from sync.status import ledger_counts, ledger_rows

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "Malformed request (e.g. a body that is not JSON)"},
    401: {"model": ErrorOut, "description": "No valid token or session"},
    403: {"model": ErrorOut, "description": "The caller's role is not enough"},
}
_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorOut, "description": "No such"}}
_BAD: dict[int | str, dict[str, Any]] = {400: {"model": ErrorOut, "description": "Bad request"}}

router = APIRouter(prefix="/api", responses=_AUTH_ERRORS)

Viewer = Annotated[Principal, Depends(require("viewer"))]
Accountant = Annotated[Principal, Depends(require("accountant"))]
Admin = Annotated[Principal, Depends(require("admin"))]
Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0, le=10**9)]
Text = Annotated[str | None, Query(max_length=200)]
RecordId = Annotated[int, Path(ge=1, le=MAX_ID)]


def _clean(value: str | None, name: str) -> str | None:
    """A text filter, or None when blank. NUL cannot be stored in PostgreSQL text: 400."""
    if value is None or not value.strip():
        return None
    if "\x00" in value:
        raise HTTPException(400, f"{name} must not contain NUL characters")
    return value.strip()


def record_audit(
    console: Console, actor: str, action: str, reason: str | None, **details: Any
) -> int:
    """Write one audit log entry now; returns its id."""
    with console.engine.state.begin() as conn:
        result = conn.execute(
            audit_log.insert().values(
                at=console.clock(),
                actor=actor,
                action=action,
                reason=reason,
                details=json.dumps(details, sort_keys=True, default=str),
            )
        )
        return int(result.inserted_primary_key[0])  # type: ignore[index]


@router.get("/health", response_model=Health, responses={503: {"model": ErrorOut}})
def health(request: Request) -> Any:
    """Liveness and state-store reachability. Needs no token."""
    console = console_of(request)
    try:
        with console.engine.state.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError:
        return JSONResponse({"detail": "the state store does not answer"}, 503)
    return {"status": "ok", "database": "ok"}


@router.get("/me", response_model=Me)
def me(principal: Viewer) -> Any:
    """Who the token or session belongs to, and its role."""
    return asdict(principal)


@router.get("/status", response_model=StatusOut)
def status(request: Request, _: Viewer) -> Any:
    """Ledger counts by status (overall and per target and kind) and the last runs."""
    console = console_of(request)
    state = console.engine.state
    counts = [
        {
            "target": row["target"],
            "kind": row["kind"],
            "total": row["total"],
            "counts": {k: v for k, v in row.items() if k not in ("target", "kind", "total")},
        }
        for row in ledger_counts(state)
    ]
    _total, last = queries.list_runs(state, limit=10, offset=0)
    return {"totals": queries.status_totals(state), "counts": counts, "last_runs": last}


@router.get("/runs", response_model=RunPage, responses=_BAD)
def list_runs(
    request: Request,
    _: Viewer,
    kind: Text = None,
    status: Text = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Any:
    """Sync runs, newest first."""
    total, rows = queries.list_runs(
        console_of(request).engine.state,
        limit=limit,
        offset=offset,
        kind=_clean(kind, "kind"),
        status=_clean(status, "status"),
    )
    return {"total": total, "limit": limit, "offset": offset, "items": rows}


@router.get("/runs/{run_id}", response_model=RunDetail, responses=_NOT_FOUND)
def get_run(request: Request, run_id: RecordId, _: Viewer) -> Any:
    """One run: counts, duration, what it did per target, kind and outcome, its failures."""
    detail = queries.run_detail(console_of(request).engine.state, run_id)
    if detail is None:
        raise HTTPException(404, f"no run {run_id}")
    return detail


def record_filters(
    request: Request,
    target: Text = None,
    kind: Kind | None = None,
    status: Annotated[list[Status], Query()] = [],  # noqa: B006 - FastAPI copies defaults
    customer: Text = None,
    date_from: date | None = None,
    date_to: date | None = None,
    q: Annotated[
        str | None,
        Query(
            max_length=200,
            description="Text in the document number, label, customer account or the "
            "customer's name in billing",
        ),
    ] = None,
    sort: Annotated[
        str | None,
        Query(
            pattern="^-?(" + "|".join(queries.SORTS) + ")$",
            description="A column, '-' first for descending",
        ),
    ] = None,
) -> queries.RecordFilters:
    """The records list's filters from the query string."""
    text = _clean(q, "q")
    return queries.RecordFilters(
        named_accounts=queries.accounts_named(console_of(request).engine.billing, text),
        sort=sort or "",
        target=_clean(target, "target"),
        kind=kind,
        statuses=tuple(status),
        customer=_clean(customer, "customer"),
        date_from=date_from,
        date_to=date_to,
        q=text,
    )


@router.get("/records", response_model=RecordPage, responses=_BAD)
def list_records(
    request: Request,
    _: Viewer,
    filters: Annotated[queries.RecordFilters, Depends(record_filters)],
    limit: Limit = 50,
    offset: Offset = 0,
) -> Any:
    """Ledger records matching the filters, most recently changed first."""
    total, rows = queries.find_records(
        console_of(request).engine.state, filters, limit=limit, offset=offset
    )
    return {"total": total, "limit": limit, "offset": offset, "items": rows}


def record_view(console: Console, record_id: int) -> dict[str, Any]:
    """A record's detail with the comparison of billing now against the last send (404)."""
    detail = queries.record_detail(console.engine.state, record_id)
    if detail is None:
        raise HTTPException(404, f"no ledger record {record_id}")
    detail["current"] = queries.current_state(
        detail,
        billing=console.engine.billing,
        mapping=console.engine.mapping_for(detail["target"]),
        tables=console.mapping_tables(),
    )
    detail["finance"] = queries.finance_facts(console.engine.billing, detail)
    detail["current"]["changes"] = queries.labelled_changes(
        detail["current"]["changes"], detail["finance"]["currency"]
    )
    return detail


@router.get("/records/{record_id}", response_model=RecordDetail, responses=_NOT_FOUND)
def get_record(request: Request, record_id: RecordId, _: Viewer) -> Any:
    """One record: last payload, history, last error, and what a re-sync would change."""
    detail = record_view(console_of(request), record_id)
    return detail | {
        "payload": detail["payload_json"],
        "synced_payload": detail["synced_payload_json"],
        "result": detail["result_json"],
    }


def run_resync(
    console: Console, selection: Selection, *, reason: str, actor: str, dry_run: bool, push: bool
) -> dict[str, Any]:
    """Re-sync through the engine (audited with ``actor``), then push the affected targets.

    The push runs before the answer, so the caller sees where each record stands; with
    ``push`` false the records wait for the next scheduled sync. Raises HTTP 400 when the
    mapping file cannot be read.
    """
    tables = console.mapping_tables()
    if isinstance(tables, ConfigError):
        raise HTTPException(400, f"the mapping file cannot be read: {tables}")
    push_error = None
    with console.lock:
        result: ResyncResult = console.engine.resync(
            selection, reason=reason, dry_run=dry_run, actor=actor
        )
        pushed = False
        if push and not dry_run and result.queued:
            try:
                console.engine.push_resync(result)
                pushed = True
            except FinsyncError as exc:
                push_error = str(exc)
    now = {
        r["id"]: r for r in ledger_rows(console.engine.state, [i.ledger_id for i in result.items])
    }
    items = []
    for item in result.items:
        row = now.get(item.ledger_id, {})
        items.append(
            {
                "ledger_id": item.ledger_id,
                "target": item.target,
                "kind": item.kind,
                "label": item.label,
                "status_before": item.status_before,
                "outcome": item.outcome,
                "message": item.message,
                "changes": [queries.change_out(c) for c in item.changes],
                "status_now": row.get("status"),
                "error_now": row.get("last_error"),
            }
        )
    return {
        "audit_id": result.audit_id,
        "run_id": result.run_id,
        "dry_run": result.dry_run,
        "matched": len(result.items),
        "queued": result.queued,
        "pushed": pushed,
        "push_error": push_error,
        "items": items,
    }


@router.post("/resync", response_model=ResyncOut, responses=_BAD)
def resync(
    request: Request,
    body: ResyncRequest,
    principal: Accountant,
) -> Any:
    """Queue the selected records to be sent again (recorded in the audit log), then send them.

    The records are re-read from billing and re-mapped with the current mapping file. A
    session-authenticated call must carry the session's CSRF token in ``X-CSRF-Token``.
    """
    check_csrf(request, request.headers.get(CSRF_HEADER))
    selection = Selection(
        targets=tuple(body.targets),
        kinds=tuple(body.kinds),
        ledger_ids=tuple(body.ledger_ids),
        numbers=tuple(n for n in (_clean(n, "numbers") for n in body.numbers) if n),
        customer=_clean(body.customer, "customer"),
        date_from=body.date_from,
        date_to=body.date_to,
        statuses=tuple(body.statuses),
    )
    if "\x00" in body.reason or any("\x00" in t for t in body.targets):
        raise HTTPException(400, "reason and targets must not contain NUL characters")
    return run_resync(
        console_of(request),
        selection,
        reason=body.reason,
        actor=principal.name,
        dry_run=body.dry_run,
        push=body.push,
    )


@router.get("/audit", response_model=AuditPage, responses=_BAD)
def list_audit(
    request: Request,
    _: Viewer,
    actor: Text = None,
    action: Text = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Any:
    """The audit log, newest first: re-syncs, downloads and token changes."""
    total, rows = queries.list_audit(
        console_of(request).engine.state,
        limit=limit,
        offset=offset,
        actor=_clean(actor, "actor"),
        action=_clean(action, "action"),
    )
    return {"total": total, "limit": limit, "offset": offset, "items": rows}


@router.get("/workbooks", response_model=WorkbookList)
def list_workbooks(request: Request, _: Viewer) -> Any:
    """Monthly workbooks; from the report folder's files while the workbooks table is empty."""
    console = console_of(request)
    source, note, items = queries.list_workbooks(
        console.engine.state, console.config.report.out_dir
    )
    return {"source": source, "note": note, "items": items}


@router.get(
    "/workbooks/{workbook_id}/download",
    response_class=FileResponse,
    responses={200: {"content": {XLSX: {}}, "description": "The workbook"}, **_NOT_FOUND},
)
def download_workbook(
    request: Request,
    workbook_id: Annotated[str, Path(min_length=1, max_length=255)],
    principal: Accountant,
) -> FileResponse:
    """The workbook file (recorded in the audit log)."""
    console = console_of(request)
    path = queries.workbook_path(console.engine.state, console.config.report.out_dir, workbook_id)
    if path is None:
        raise HTTPException(404, f"no workbook {workbook_id!r}")
    record_audit(console, principal.name, "download", None, workbook=workbook_id, file=path.name)
    return FileResponse(path, media_type=XLSX, filename=path.name)


@router.get("/tokens", response_model=list[TokenOut])
def get_tokens(request: Request, _: Admin) -> Any:
    """Every API key (never the key itself)."""
    return list_tokens(console_of(request).engine.state)


@router.post("/tokens", response_model=TokenCreated, status_code=201)
def post_token(request: Request, body: TokenCreate, principal: Admin) -> Any:
    """Create an API key; the answer is the only time the key is shown."""
    check_csrf(request, request.headers.get(CSRF_HEADER))
    console = console_of(request)
    created = create_token(
        console.engine.state,
        name=body.name,
        role=body.role,
        created_by=principal.name,
        now=console.clock(),
        expires_days=body.expires_days,
    )
    record_audit(console, principal.name, "token_create", None, token_id=created.id, role=body.role)
    row = next(t for t in list_tokens(console.engine.state) if t["id"] == created.id)
    return row | {"token": created.token}


@router.post("/tokens/{token_id}/revoke", response_model=TokenOut, responses=_NOT_FOUND)
def post_revoke(
    request: Request, token_id: Annotated[int, Path(ge=1, le=MAX_ID)], principal: Admin
) -> Any:
    """Revoke an API key now; its sessions end with it."""
    check_csrf(request, request.headers.get(CSRF_HEADER))
    console = console_of(request)
    if revoke_token(console.engine.state, token_id, now=console.clock()):
        record_audit(console, principal.name, "token_revoke", None, token_id=token_id)
    for row in list_tokens(console.engine.state):
        if row["id"] == token_id:
            return row
    raise HTTPException(404, f"no API key {token_id}")


def config_view(config: Config) -> dict[str, Any]:
    """The configuration without secrets: database passwords hidden, secrets left out."""

    def url(value: str) -> str:
        try:
            return sa.engine.make_url(value).render_as_string(hide_password=True)
        except sa.exc.ArgumentError:
            return "(unparseable)"

    smtp = config.report.smtp
    jwt = config.api.jwt
    return {
        "billing_url": url(config.billing_url),
        "state_url": url(config.state_url),
        "mapping_file": str(config.mapping_file),
        "timezone": str(config.timezone),
        "sync": asdict(config.sync),
        "report": {
            "out_dir": str(config.report.out_dir),
            "recipients": list(config.report.recipients),
            "smtp": None if smtp is None else {"host": smtp.host, "port": smtp.port},
        },
        "targets": {
            name: {"system": t.system, "enabled": t.enabled} for name, t in config.targets.items()
        },
        "api": {
            "cookie_secure": config.api.cookie_secure,
            "session_hours": config.api.session_hours,
            "session_secret": "(set)" if config.api.session_secret else "(random per process)",
            "jwt": None
            if jwt is None
            else {
                "issuer": jwt.issuer,
                "audience": jwt.audience,
                "jwks_url": jwt.jwks_url,
                "role_claim": jwt.role_claim,
                "name_claim": jwt.name_claim,
                "algorithms": list(jwt.algorithms),
            },
        },
    }


@router.get("/config", response_model=ConfigView)
def get_config(request: Request, _: Admin) -> Any:
    """The running configuration, without secrets."""
    return {"settings": config_view(console_of(request).config)}


openapi_router = APIRouter()


@openapi_router.get("/openapi.json", include_in_schema=False)
def openapi(request: Request, _: Viewer) -> JSONResponse:
    """The OpenAPI schema of the JSON API."""
    return JSONResponse(request.app.openapi())
