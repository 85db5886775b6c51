"""The state store: ledger, ledger events, cursors, runs and the audit log.

These Core tables describe the schema that the Alembic migrations in ``sync/migrations`` create;
``finsync init`` applies the migrations (``sync.migrate.upgrade``). The state database may be the
billing database's server, but finsync never writes to billing tables.

Ledger statuses:
  pending  enqueued, waiting to be sent (or waiting for a dependency)
  sending  claimed by a worker until ``claimed_until``; if that passes, the outcome is unknown
  synced   the target holds the payload whose hash is ``synced_hash``; ``result`` keeps
           what the target answered (JSON, e.g. the tax the engine computed)
  retry    a retryable failure; sent again at ``next_attempt_at``
  failed   a permanent failure or a mapping error; needs a fix and a re-sync
  dead     retried ``max_attempts`` times without success; needs attention
"""

from __future__ import annotations

import sqlalchemy as sa

from finsync.db import UTCDateTime

metadata = sa.MetaData()

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

STATUSES = ("pending", "sending", "synced", "retry", "failed", "dead")

ledger = sa.Table(
    "ledger",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("target", sa.String(40), nullable=False),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("source_id", sa.String(80), nullable=False),
    sa.Column("label", sa.Text, nullable=False),
    sa.Column("customer_account", sa.Text),
    sa.Column("document_date", sa.Date),
    sa.Column("external_id", sa.Text),
    sa.Column("record_type", sa.String(60)),
    sa.Column("operation", sa.String(20), nullable=False, server_default="upsert"),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", UTCDateTime()),
    sa.Column("payload", sa.Text),
    sa.Column("payload_hash", sa.String(64)),
    sa.Column("depends_on", sa.Text, nullable=False, server_default="[]"),
    sa.Column("synced_hash", sa.String(64)),
    sa.Column("synced_payload", sa.Text),
    sa.Column("internal_id", sa.Text),
    sa.Column("result", sa.Text),
    sa.Column("last_error", sa.Text),
    sa.Column("error_kind", sa.String(20)),
    sa.Column("run_id", sa.BigInteger),
    sa.Column("claimed_by", sa.String(80)),
    sa.Column("claimed_until", UTCDateTime()),
    sa.Column("source_updated_at", UTCDateTime()),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Column("synced_at", UTCDateTime()),
    sa.UniqueConstraint("target", "kind", "source_id", name="uq_ledger_target_kind_source"),
    sa.Index("ix_ledger_due", "target", "status", "next_attempt_at"),
    sa.Index("ix_ledger_label", "label"),
    sa.Index("ix_ledger_customer", "customer_account"),
)

ledger_events = sa.Table(
    "ledger_events",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("ledger_id", sa.BigInteger, nullable=False),
    sa.Column("at", UTCDateTime(), nullable=False),
    sa.Column("run_id", sa.BigInteger),
    sa.Column("event", sa.String(30), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("detail", sa.Text),
    sa.Index("ix_ledger_events_ledger", "ledger_id", "id"),
)

cursors = sa.Table(
    "cursors",
    metadata,
    sa.Column("target", sa.String(40), primary_key=True),
    sa.Column("kind", sa.String(40), primary_key=True),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Column("last_id", sa.BigInteger, nullable=False),
    sa.Column("changed_at", UTCDateTime(), nullable=False),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(30), nullable=False),
    sa.Column("target", sa.String(40)),
    sa.Column("actor", sa.Text),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("started_at", UTCDateTime(), nullable=False),
    sa.Column("finished_at", UTCDateTime()),
    sa.Column("counts", sa.Text, nullable=False, server_default="{}"),
    sa.Column("error", sa.Text),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("at", UTCDateTime(), nullable=False),
    sa.Column("actor", sa.Text, nullable=False),
    sa.Column("action", sa.String(40), nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("details", sa.Text, nullable=False, server_default="{}"),
)

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("role", sa.String(20), nullable=False),  # viewer | accountant | admin
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),  # sha256 hex
    sa.Column("prefix", sa.String(12), nullable=False),  # shown to people, never the token
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("created_by", sa.Text, nullable=False),
    sa.Column("expires_at", UTCDateTime()),
    sa.Column("revoked_at", UTCDateTime()),
    sa.Column("last_used_at", UTCDateTime()),
)

alerts = sa.Table(
    "alerts",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(40), nullable=False),  # dead_records | run_failed | delivery_failed
    sa.Column("incident", sa.Text, nullable=False),  # what makes it one incident, e.g. target
    sa.Column("opened_at", UTCDateTime(), nullable=False),
    sa.Column("notified_at", UTCDateTime()),
    sa.Column("resolved_at", UTCDateTime()),
    sa.Column("detail", sa.Text),
    sa.Index("ix_alerts_open", "kind", "incident", "resolved_at"),
)

#: One row per running ``serve`` or ``worker`` process, refreshed every poll (its heartbeat);
#: the console's dashboard reads who leads and which workers are alive from it.
service_processes = sa.Table(
    "service_processes",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),  # host:pid:start
    sa.Column("mode", sa.String(20), nullable=False),  # serve | worker
    sa.Column("role", sa.String(20), nullable=False),  # leader | follower | worker
    sa.Column("host", sa.Text, nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("started_at", UTCDateTime(), nullable=False),
    sa.Column("seen_at", UTCDateTime(), nullable=False),
    sa.Column("poll_seconds", sa.Float, nullable=False),
)

#: Console sign-in sessions, server side: the cookie holds a random id whose SHA-256 is the
#: key here, so signing out (or revoking the key) ends the session even if the cookie is kept.
console_sessions = sa.Table(
    "console_sessions",
    metadata,
    sa.Column("id_hash", sa.String(64), primary_key=True),
    sa.Column("via", sa.String(10), nullable=False),  # key | jwt
    sa.Column("token_id", sa.BigInteger),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("role", sa.String(20), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("expires_at", UTCDateTime(), nullable=False),
    sa.Column("ended_at", UTCDateTime()),
    sa.Column("end_reason", sa.Text),
    sa.Index("ix_console_sessions_token", "token_id"),
)

workbooks = sa.Table(
    "workbooks",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("period", sa.String(7), nullable=False),  # YYYY-MM
    sa.Column("entity", sa.Text),  # None: all entities
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("built_at", UTCDateTime(), nullable=False),
    sa.Column("run_id", sa.BigInteger),
    sa.Column("delivered_at", UTCDateTime()),
    sa.Column("delivery_error", sa.Text),
)

billing_verdicts = sa.Table(
    "billing_verdicts",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    # sync.verdicts.billing_fingerprint: billing's rows, the known entities, the rules' source
    sa.Column("fingerprint", sa.String(64), nullable=False, unique=True),
    sa.Column("computed_at", UTCDateTime(), nullable=False),
    sa.Column("rejected", sa.Integer, nullable=False),
    sa.Column("rejections", sa.Text, nullable=False),  # JSON, see sync.verdicts
)
