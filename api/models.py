"""The shapes of the console's JSON API (they make its OpenAPI schema)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

Status = Literal["pending", "sending", "synced", "retry", "failed", "dead"]
Kind = Literal["customer", "invoice", "credit_note", "payment", "refund", "revenue"]
Role = Literal["viewer", "accountant", "admin"]
#: Ids fit PostgreSQL's bigint and SQLite's integer; larger numbers are refused, not overflowed.
MAX_ID = 2**62


class ErrorOut(BaseModel):
    """Why a request was refused."""

    detail: str


class Health(BaseModel):
    """The service is up and its state store answers."""

    status: Literal["ok"]
    database: Literal["ok"]


class Me(BaseModel):
    """Who the caller is."""

    name: str
    role: Role
    via: Literal["key", "jwt"]
    expires_at: datetime | None


class Run(BaseModel):
    """One sync (or other) run."""

    id: int
    kind: str
    target: str | None
    actor: str | None
    status: str
    started_at: datetime
    finished_at: datetime | None
    counts: Any
    error: str | None
    duration_seconds: float | None
    #: What it did, in words (for an hour's idle line: how many runs found nothing).
    summary: str


class RunActivity(BaseModel):
    """How many records of one target and kind a run took to one outcome."""

    target: str
    kind: str
    event: str
    status: str
    count: int


class RunFailure(BaseModel):
    """A record that failed (or will be retried) in a run, and where it stands now."""

    id: int
    target: str
    kind: str
    label: str
    customer_account: str | None
    document_date: date | None
    status: str
    detail: str | None
    status_now: str


class RunDetail(Run):
    """A run with what it did per target, kind and outcome, and the records that failed."""

    activity: list[RunActivity]
    failures: list[RunFailure]


class RunPage(BaseModel):
    """A page of runs, newest first."""

    total: int
    limit: int
    offset: int
    items: list[Run]


class StatusCounts(BaseModel):
    """Ledger counts of one target and kind."""

    target: str
    kind: str
    counts: dict[str, int]
    total: int


class StatusOut(BaseModel):
    """The dashboard: ledger counts by status and the last runs."""

    totals: dict[str, int]
    counts: list[StatusCounts]
    last_runs: list[Run]


class RecordSummary(BaseModel):
    """One ledger record as lists show it."""

    id: int
    target: str
    kind: str
    source_id: str
    label: str
    customer_account: str | None
    document_date: date | None
    external_id: str | None
    status: str
    attempts: int
    last_error: str | None
    internal_id: str | None
    updated_at: datetime
    synced_at: datetime | None


class RecordPage(BaseModel):
    """A page of ledger records matching the filters."""

    total: int
    limit: int
    offset: int
    items: list[RecordSummary]


class ChangeOut(BaseModel):
    """One field that differs between the last send and what billing holds now."""

    path: str
    old: Any = None
    new: Any = None
    old_absent: bool = False
    new_absent: bool = False


class LabelledChange(ChangeOut):
    """A field change as people read it: the field in words, amounts with their currency."""

    label: str
    old_text: str
    new_text: str


class FinanceFacts(BaseModel):
    """What an accountant knows a record by, read from billing now."""

    customer_name: str | None
    customer_account: str | None
    document_date: date | None
    amount: Decimal | None
    currency: str | None
    amount_text: str


class HistoryEvent(BaseModel):
    """One step in a record's life (ledger_events)."""

    at: datetime
    event: str
    status: str
    detail: str | None
    run_id: int | None


class CurrentState(BaseModel):
    """What billing holds now compared with what was last sent to the target."""

    state: Literal["unchanged", "changed", "never sent", "mapping failed", "missing", "unavailable"]
    message: str | None
    changes: list[LabelledChange]


class RecordDetail(RecordSummary):
    """A ledger record with its payloads, history and the differences a re-sync would send."""

    error_kind: str | None
    next_attempt_at: datetime | None
    payload: Any
    synced_payload: Any
    result: Any
    history: list[HistoryEvent]
    current: CurrentState
    finance: FinanceFacts


class ResyncRequest(BaseModel):
    """Which records to send again, and why (the reason goes in the audit log)."""

    reason: str = Field(min_length=1, max_length=2000)
    ledger_ids: list[int] = Field(default_factory=list, max_length=10_000)
    numbers: list[str] = Field(default_factory=list, max_length=10_000)
    targets: list[str] = Field(default_factory=list, max_length=100)
    kinds: list[Kind] = Field(default_factory=list)
    statuses: list[Status] = Field(default_factory=list)
    customer: str | None = Field(default=None, min_length=1, max_length=200)
    date_from: date | None = None
    date_to: date | None = None
    dry_run: bool = False
    push: bool = Field(
        default=True,
        description="Send the queued records now, before answering; false leaves them to the "
        "next scheduled sync.",
    )

    @field_validator("reason")
    @classmethod
    def _reason_says_something(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("say why these records are sent again")
        return value.strip()

    @field_validator("ledger_ids")
    @classmethod
    def _ids_in_range(cls, value: list[int]) -> list[int]:
        if any(i < 1 or i > MAX_ID for i in value):
            raise ValueError(f"ledger ids are between 1 and {MAX_ID}")
        return value

    @model_validator(mode="after")
    def _selects_something(self) -> ResyncRequest:
        if not any(
            (
                self.ledger_ids,
                self.numbers,
                self.targets,
                self.kinds,
                self.statuses,
                self.customer,
                self.date_from,
                self.date_to,
            )
        ):
            raise ValueError(
                "say what to re-sync: ledger_ids, numbers, customer, dates, kinds, targets or "
                "statuses"
            )
        return self


class ResyncItemOut(BaseModel):
    """One selected record: what the re-sync did with it and where it stands now."""

    ledger_id: int
    target: str
    kind: str
    label: str
    status_before: str
    outcome: str
    message: str | None
    changes: list[ChangeOut]
    status_now: str | None
    error_now: str | None


class ResyncOut(BaseModel):
    """A re-sync's outcome."""

    audit_id: int | None
    #: The run that records the re-sync (None for a dry run).
    run_id: int | None
    dry_run: bool
    matched: int
    queued: int
    pushed: bool
    push_error: str | None
    items: list[ResyncItemOut]


class AuditEntry(BaseModel):
    """One entry of the audit log: who did what, when and why."""

    id: int
    at: datetime
    actor: str
    action: str
    reason: str | None
    details: Any


class AuditPage(BaseModel):
    """A page of the audit log, newest first."""

    total: int
    limit: int
    offset: int
    items: list[AuditEntry]


class WorkbookOut(BaseModel):
    """A monthly workbook that can be downloaded."""

    id: str
    name: str
    period: str | None
    entity: str | None
    built_at: datetime | None
    delivered_at: datetime | None
    delivery_error: str | None
    size_bytes: int | None
    available: bool


class WorkbookList(BaseModel):
    """The workbooks, from the workbooks table or (when it is empty) the report folder."""

    source: Literal["table", "out_dir"]
    note: str | None
    items: list[WorkbookOut]


class TokenOut(BaseModel):
    """An API key as admins see it: never the key, only its prefix."""

    id: int
    name: str
    role: str
    prefix: str
    created_at: datetime
    created_by: str
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


class TokenCreate(BaseModel):
    """A new API key's name, role and lifetime."""

    name: str = Field(min_length=1, max_length=200)
    role: Role
    expires_days: int | None = Field(default=None, ge=1, le=3650)

    @field_validator("name")
    @classmethod
    def _name_says_something(cls, value: str) -> str:
        if not value.strip() or "\x00" in value:
            raise ValueError("name who or what uses the key")
        return value.strip()


class TokenCreated(TokenOut):
    """The new key, shown this once."""

    token: str


class ConfigView(BaseModel):
    """The running configuration, without secrets or passwords."""

    settings: dict[str, Any]
