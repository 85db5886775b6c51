"""API tokens (console), alert incidents (service), built workbooks (reports).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from finsync.db import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("prefix", sa.String(12), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.Column("expires_at", UTCDateTime()),
        sa.Column("revoked_at", UTCDateTime()),
        sa.Column("last_used_at", UTCDateTime()),
    )
    op.create_table(
        "alerts",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("incident", sa.Text, nullable=False),
        sa.Column("opened_at", UTCDateTime(), nullable=False),
        sa.Column("notified_at", UTCDateTime()),
        sa.Column("resolved_at", UTCDateTime()),
        sa.Column("detail", sa.Text),
    )
    op.create_index("ix_alerts_open", "alerts", ["kind", "incident", "resolved_at"])
    op.create_table(
        "workbooks",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("entity", sa.Text),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("built_at", UTCDateTime(), nullable=False),
        sa.Column("run_id", sa.BigInteger),
        sa.Column("delivered_at", UTCDateTime()),
        sa.Column("delivery_error", sa.Text),
    )


def downgrade() -> None:
    for table in ("workbooks", "alerts", "api_tokens"):
        op.drop_table(table)
