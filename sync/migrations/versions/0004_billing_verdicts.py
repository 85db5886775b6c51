"""Stored billing verdicts: one validation pass per billing fingerprint (sync.verdicts).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from finsync.db import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "billing_verdicts",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("fingerprint", sa.String(64), nullable=False, unique=True),
        sa.Column("computed_at", UTCDateTime(), nullable=False),
        sa.Column("rejected", sa.Integer, nullable=False),
        sa.Column("rejections", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("billing_verdicts")
