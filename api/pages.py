"""The console's web pages: server-rendered Jinja2, one stylesheet, plain forms."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import date
from typing import Annotated, Any
from urllib.parse import urlencode

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Form, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from api import queries
from api.auth import (
    AuthenticationError,
    Principal,
    create_token,
    end_session,
    list_tokens,
    open_session,
    revoke_token,
)
from api.console import check_csrf, console_of, csrf_token, require
from api.models import MAX_ID
from api.routes import config_view, record_audit, record_view, run_resync
from finsync.config import API_ROLES
from sync.engine import Selection
from sync.state import STATUSES
from sync.status import attention, ledger_counts

router = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)

Viewer = Annotated[Principal, Depends(require("viewer"))]
Accountant = Annotated[Principal, Depends(require("accountant"))]
Admin = Annotated[Principal, Depends(require("admin"))]
RecordId = Annotated[int, Path(ge=1, le=MAX_ID)]
PAGE_SIZE = 50
#: What the failures page shows unless the status filter says otherwise (with the records
#: waiting behind them).
NEEDS_ATTENTION = ("failed", "dead", "retry")


def _render(
    request: Request, template: str, principal: Principal | None, status_code: int = 200, **ctx: Any
) -> Response:
    console = console_of(request)
    flash = request.session.pop("flash", None) if principal else None
    return console.templates.TemplateResponse(
        request,
        template,
        {"principal": principal, "csrf": csrf_token(request), "flash": flash, **ctx},
        status_code=status_code,
    )


def _safe_next(value: str | None) -> str:
    # Only paths of this site: "//host" or "https://..." would make the form an open redirect.
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/"


def _date(value: str | None, name: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise HTTPException(400, f"{name} must be a date like 2026-01-31") from None


def _text(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    if "\x00" in value or len(value) > 200:
        raise HTTPException(400, "filters are at most 200 characters of text")
    return value.strip()


# -- signing in --------------------------------------------------------------------------------


@router.get("/signin")
def signin_form(request: Request, next: str = "/") -> Response:
    """The sign-in form: paste an API key or a token from the identity provider."""
    return _render(request, "signin.html", None, next=_safe_next(next), error=None, notice=None)


@router.post("/signin")
def signin(
    request: Request,
    token: Annotated[str, Form(max_length=4096)],
    csrf: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    """Check the pasted token and open a session with it (the token itself is not kept)."""
    check_csrf(request, csrf)
    console = console_of(request)
    try:
        principal = console.auth.authenticate(token)
    except AuthenticationError as exc:
        return _render(
            request,
            "signin.html",
            None,
            status_code=401,
            next=_safe_next(next),
            error=f"That token was not accepted: {exc}.",
            notice=None,
        )
    # A fresh session (and CSRF token) at sign-in, so a session planted before it is useless.
    request.session.clear()
    request.session["sid"] = open_session(
        console.engine.state,
        principal,
        now=console.clock(),
        hours=console.config.api.session_hours,
    )
    csrf_token(request)
    return RedirectResponse(_safe_next(next), status_code=303)


@router.post("/signout")
def signout(
    request: Request, _: Viewer, csrf: Annotated[str, Form(max_length=200)] = ""
) -> Response:
    """Close the session."""
    check_csrf(request, csrf)
    session_id = request.session.get("sid")
    if isinstance(session_id, str):
        console = console_of(request)
        end_session(console.engine.state, session_id, now=console.clock(), reason="signed out")
    request.session.clear()
    return RedirectResponse("/signin", status_code=303)


# -- pages -------------------------------------------------------------------------------------


@router.get("/")
def dashboard(request: Request, principal: Viewer) -> Response:
    """Service health (leader, workers, last and next run per job), open alerts, the records
    that need attention (with those waiting behind them), counts, and the last runs."""
    console = console_of(request)
    state = console.engine.state
    _total, runs = queries.list_runs(state, limit=10, offset=0)
    return _render(
        request,
        "dashboard.html",
        principal,
        health=queries.service_health(state, console.engine.target_names(), console.clock()),
        alerts=queries.open_alerts(state),
        attention=attention(state),
        totals=queries.status_totals(state),
        counts=ledger_counts(state),
        statuses=STATUSES,
        runs=runs,
        duration=queries.duration_text,
    )


@router.get("/failures")
def failures(
    request: Request,
    principal: Viewer,
    target: str | None = None,
    kind: str | None = None,
    status: str | None = None,
    customer: str | None = None,
    date_from: str | None = None,
    date_to: str | None = None,
    q: str | None = None,
    error: str | None = None,
    sort: str | None = None,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> Response:
    """Records that need attention (or any status), with filters, newest change first or
    sorted by a column; the matching records grouped by error, and a form to re-sync the
    selected ones or all."""
    form = {
        "target": target or "",
        "kind": kind or "",
        "status": status or "",
        "customer": customer or "",
        "date_from": date_from or "",
        "date_to": date_to or "",
        "q": q or "",
        "error": error or "",
        "sort": sort or "",
    }
    filters = _filters(form, console_of(request).engine.billing)
    state = console_of(request).engine.state
    total, rows = queries.find_records(state, filters, limit=PAGE_SIZE, offset=offset)
    groups = queries.error_groups(state, filters)

    def page_link(new_offset: int) -> str:
        return "/failures?" + urlencode(
            {k: v for k, v in form.items() if v} | {"offset": new_offset}
        )

    def group_link(group_error: str) -> str:
        return "/failures?" + urlencode(
            {k: v for k, v in form.items() if v and k != "error"} | {"error": group_error}
        )

    def sort_link(column: str) -> str:
        """The list sorted by ``column``; again for the other direction."""
        wanted = "-" + column if form["sort"] == column else column
        return "/failures?" + urlencode(
            {k: v for k, v in form.items() if v and k != "sort"} | {"sort": wanted}
        )

    def sort_mark(column: str) -> str:
        return {column: " ▲", "-" + column: " ▼"}.get(form["sort"], "")

    return _render(
        request,
        "failures.html",
        principal,
        rows=rows,
        total=total,
        offset=offset,
        form=form,
        groups=groups[:20],
        group_link=group_link,
        sort_link=sort_link,
        sort_mark=sort_mark,
        csv_link="/failures.csv?" + urlencode({k: v for k, v in form.items() if v}),
        bulk_limit=queries.BULK_LIMIT,
        statuses=STATUSES,
        targets=sorted(console_of(request).config.targets),
        kinds=("customer", "invoice", "credit_note", "payment", "refund", "revenue"),
        prev_link=page_link(max(0, offset - PAGE_SIZE)) if offset else None,
        next_link=page_link(offset + PAGE_SIZE) if offset + PAGE_SIZE < total else None,
    )


def _filters(form: dict[str, str], billing: sa.Engine) -> queries.RecordFilters:
    """The records list's filters from the failures page's form (400 on a bad value); the
    search also finds the records of customers whose billing name contains it."""
    status = form.get("status") or None
    if status and status not in ("all", "waiting") and status not in STATUSES:
        raise HTTPException(400, f"status must be one of {', '.join(STATUSES)}, waiting or all")
    if status in ("all", "waiting"):
        statuses: tuple[str, ...] = ()
    else:
        statuses = (status,) if status else NEEDS_ATTENTION
    sort = form.get("sort") or ""
    if sort and sort.lstrip("-") not in queries.SORTS:
        raise HTTPException(400, f"sort must be one of {', '.join(queries.SORTS)}")
    q = _text(form.get("q"))
    return queries.RecordFilters(
        named_accounts=queries.accounts_named(billing, q),
        sort=sort,
        waiting=status == "waiting" or not status,
        target=_text(form.get("target")),
        kind=_text(form.get("kind")),
        statuses=statuses,
        customer=_text(form.get("customer")),
        date_from=_date(form.get("date_from"), "date_from"),
        date_to=_date(form.get("date_to"), "date_to"),
        q=q,
        error=_text(form.get("error")),
    )


@router.get("/failures.csv")
def failures_csv(
    request: Request,
    _: Viewer,
    target: str | None = None,
    kind: str | None = None,
    status: str | None = None,
    customer: str | None = None,
    date_from: str | None = None,
    date_to: str | None = None,
    q: str | None = None,
    error: str | None = None,
    sort: str | None = None,
) -> Response:
    """The records list with the same filters and order as CSV (every match, not one page);
    no cell can be taken for a spreadsheet formula."""
    form = {
        "target": target or "",
        "kind": kind or "",
        "status": status or "",
        "customer": customer or "",
        "date_from": date_from or "",
        "date_to": date_to or "",
        "q": q or "",
        "error": error or "",
        "sort": sort or "",
    }
    console = console_of(request)
    filters = _filters(form, console.engine.billing)

    def lines() -> Iterator[str]:
        out = io.StringIO()
        writer = csv.writer(out)
        for row in queries.records_csv_rows(console.engine.state, filters):
            writer.writerow(row)
            yield out.getvalue()
            out.seek(0)
            out.truncate()

    name = f"finsync-records-{console.clock():%Y%m%d-%H%M}.csv"
    return StreamingResponse(
        lines(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


#: The failures page's filter fields, carried by the bulk re-sync form.
FILTER_FIELDS = (
    "target",
    "kind",
    "status",
    "customer",
    "date_from",
    "date_to",
    "q",
    "error",
    "sort",
)


@router.post("/failures/resync")
async def bulk_resync(request: Request, principal: Accountant) -> Response:
    """Re-sync the selected records, or all matching the filter, in two steps.

    ``step=preview`` is a dry run: what each record would send (the diff from the last send)
    or why it would fail, with the reason kept. ``step=confirm`` queues exactly the previewed
    records with one reason and one audit entry, sends them, and shows where each stands. A
    failure (no reason, a mapping file that cannot be read) shows the form again with the
    reason typed and what to fix.
    """
    data = await request.form()
    check_csrf(request, str(data.get("csrf", "")))
    reason = str(data.get("reason", ""))[:2000]
    step = "confirm" if data.get("step") == "confirm" else "preview"
    form = {name: str(data.get(name, ""))[:200] for name in FILTER_FIELDS}
    console = console_of(request)
    if data.get("scope") == "all":
        ids = queries.matching_ids(console.engine.state, _filters(form, console.engine.billing))
    else:
        try:
            ids = sorted({int(str(v)) for v in data.getlist("ids")})[: queries.BULK_LIMIT]
        except ValueError:
            raise HTTPException(400, "ids must be ledger record ids") from None
    context: dict[str, Any] = {
        "ids": ids,
        "reason": reason,
        "form": form,
        "back": "/failures?" + urlencode({k: v for k, v in form.items() if v}),
        "outcome": None,
        "problem": None,
        "step": step,
    }
    if not ids:
        context["problem"] = "Nothing selected: tick records, or choose all matching the filter."
        return _render(request, "bulk_resync.html", principal, status_code=400, **context)
    if not reason.strip() or "\x00" in reason:
        context["problem"] = "Say why these records are sent again: a reason for the audit log."
        return _render(request, "bulk_resync.html", principal, status_code=400, **context)
    try:
        context["outcome"] = run_resync(
            console,
            Selection(ledger_ids=tuple(ids)),
            reason=reason.strip(),
            actor=principal.name,
            dry_run=step == "preview",
            push=True,
        )
    except HTTPException as exc:
        context["problem"] = (
            f"{exc.detail}. Fix it, then preview again: the selection and the reason are kept."
        )
        context["step"] = "preview"
        return _render(request, "bulk_resync.html", principal, status_code=400, **context)
    return _render(request, "bulk_resync.html", principal, **context)


@router.get("/records/{record_id}")
def record(request: Request, record_id: RecordId, principal: Viewer) -> Response:
    """One record: its error, what a re-sync would change, its history, and a Re-sync button."""
    detail = record_view(console_of(request), record_id)
    return _render(
        request,
        "record.html",
        principal,
        r=detail,
        facts=detail["finance"],
        payload=json.dumps(detail["payload_json"], indent=2, sort_keys=True),
        synced_payload=json.dumps(detail["synced_payload_json"], indent=2, sort_keys=True),
    )


@router.post("/records/{record_id}/resync")
def record_resync(
    request: Request,
    record_id: RecordId,
    principal: Accountant,
    reason: Annotated[str, Form(max_length=2000)] = "",
    csrf: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Re-sync one record with the reason given, send it, and show where it stands."""
    check_csrf(request, csrf)
    if not reason.strip() or "\x00" in reason:
        request.session["flash"] = {"ok": False, "text": "Say why it is sent again: a reason."}
        return RedirectResponse(f"/records/{record_id}", status_code=303)
    outcome = run_resync(
        console_of(request),
        Selection(ledger_ids=(record_id,)),
        reason=reason.strip(),
        actor=principal.name,
        dry_run=False,
        push=True,
    )
    if not outcome["items"]:
        raise HTTPException(404, f"no ledger record {record_id} of an enabled target")
    item = outcome["items"][0]
    ok = item["status_now"] == "synced"
    text = f"Re-sync recorded (audit entry {outcome['audit_id']}): {item['outcome']}"
    text += f"; now {item['status_now']}." if item["status_now"] else "."
    if item["message"] or outcome["push_error"] or (item["error_now"] and not ok):
        text += " " + (item["message"] or outcome["push_error"] or item["error_now"])
    request.session["flash"] = {"ok": ok, "text": text}
    return RedirectResponse(f"/records/{record_id}", status_code=303)


@router.get("/runs")
def runs_page(
    request: Request, principal: Viewer, offset: Annotated[int, Query(ge=0, le=10**9)] = 0
) -> Response:
    """Run history, newest first."""
    total, runs = queries.list_runs(
        console_of(request).engine.state, limit=PAGE_SIZE, offset=offset
    )
    return _render(
        request,
        "runs.html",
        principal,
        runs=runs,
        total=total,
        offset=offset,
        page_size=PAGE_SIZE,
        duration=queries.duration_text,
    )


@router.get("/runs/{run_id}")
def run_page(request: Request, run_id: RecordId, principal: Viewer) -> Response:
    """One run: its counts per target, what it did per target, kind and outcome, and the
    records that failed in it."""
    detail = queries.run_detail(console_of(request).engine.state, run_id)
    if detail is None:
        raise HTTPException(404, f"no run {run_id}")
    return _render(request, "run.html", principal, run=detail, duration=queries.duration_text)


@router.get("/audit")
def audit_page(
    request: Request, principal: Viewer, offset: Annotated[int, Query(ge=0, le=10**9)] = 0
) -> Response:
    """The audit log, newest first."""
    total, entries = queries.list_audit(
        console_of(request).engine.state, limit=PAGE_SIZE, offset=offset
    )
    for entry in entries:
        entry["details_text"] = json.dumps(entry["details"], indent=1, sort_keys=True)
    return _render(
        request,
        "audit.html",
        principal,
        entries=entries,
        total=total,
        offset=offset,
        page_size=PAGE_SIZE,
    )


@router.get("/workbooks")
def workbooks_page(request: Request, principal: Viewer) -> Response:
    """Monthly workbooks with download links (for accountants)."""
    console = console_of(request)
    source, note, items = queries.list_workbooks(
        console.engine.state, console.config.report.out_dir
    )
    return _render(request, "workbooks.html", principal, source=source, note=note, items=items)


@router.get("/admin")
def admin_page(request: Request, principal: Admin) -> Response:
    """API keys and the running configuration (without secrets)."""
    return _admin(request, principal, created=None)


def _admin(
    request: Request, principal: Principal, created: Any, status_code: int = 200
) -> Response:
    console = console_of(request)
    return _render(
        request,
        "admin.html",
        principal,
        status_code=status_code,
        tokens=list_tokens(console.engine.state),
        roles=API_ROLES,
        created=created,
        settings=json.dumps(config_view(console.config), indent=2, sort_keys=True),
    )


@router.post("/admin/tokens")
def admin_create_token(
    request: Request,
    principal: Admin,
    name: Annotated[str, Form(max_length=200)] = "",
    role: Annotated[str, Form(max_length=20)] = "viewer",
    expires_days: Annotated[str, Form(max_length=5)] = "",
    csrf: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Create an API key and show it once, on this answer only."""
    check_csrf(request, csrf)
    console = console_of(request)
    try:
        days = int(expires_days) if expires_days.strip() else None
        created = create_token(
            console.engine.state,
            name=name.replace("\x00", ""),
            role=role,
            created_by=principal.name,
            now=console.clock(),
            expires_days=days,
        )
    except ValueError as exc:
        request.session["flash"] = {"ok": False, "text": f"No key created: {exc}."}
        return RedirectResponse("/admin", status_code=303)
    record_audit(
        console, principal.name, "token_create", None, token_id=created.id, role=created.role
    )
    response = _admin(request, principal, created=created, status_code=201)
    # The page carries a key: keep it out of every cache.
    response.headers["Cache-Control"] = "no-store"
    return response


@router.post("/admin/tokens/{token_id}/revoke")
def admin_revoke_token(
    request: Request,
    token_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    principal: Admin,
    csrf: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Revoke an API key now."""
    check_csrf(request, csrf)
    console = console_of(request)
    if revoke_token(console.engine.state, token_id, now=console.clock()):
        record_audit(console, principal.name, "token_revoke", None, token_id=token_id)
        request.session["flash"] = {"ok": True, "text": f"API key {token_id} revoked."}
    else:
        request.session["flash"] = {"ok": False, "text": f"API key {token_id}: nothing to revoke."}
    return RedirectResponse("/admin", status_code=303)
