"""State store: ledger, ledger events, cursors, runs, audit log.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from finsync.db import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "ledger",
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
    )
    op.create_index("ix_ledger_due", "ledger", ["target", "status", "next_attempt_at"])
    op.create_index("ix_ledger_label", "ledger", ["label"])
    op.create_index("ix_ledger_customer", "ledger", ["customer_account"])
    op.create_table(
        "ledger_events",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("ledger_id", sa.BigInteger, nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("run_id", sa.BigInteger),
        sa.Column("event", sa.String(30), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("detail", sa.Text),
    )
    op.create_index("ix_ledger_events_ledger", "ledger_events", ["ledger_id", "id"])
    op.create_table(
        "cursors",
        sa.Column("target", sa.String(40), primary_key=True),
        sa.Column("kind", sa.String(40), primary_key=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("last_id", sa.BigInteger, nullable=False),
        sa.Column("changed_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "runs",
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
    op.create_table(
        "audit_log",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("details", sa.Text, nullable=False, server_default="{}"),
    )


def downgrade() -> None:
    for table in ("audit_log", "runs", "cursors", "ledger_events", "ledger"):
        op.drop_table(table)
