"""digest runs retry with back-off and remember destinations Slack refused for good

A failed digest was tried again at every scheduler pass (every 5 minutes, all week long), recomputing the
key accounts' health each time, also when Slack's answer could not change (channel_not_found). A run now
counts its attempts, waits before the next one (5 minutes, doubling, at most 6 hours), and keeps the
destinations Slack refused for good, which are not retried.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.types

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("digest_run") as batch_op:
        batch_op.add_column(sa.Column("given_up", sa.JSON(), nullable=False, server_default="{}"))
        batch_op.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("next_attempt_at", models.types.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("digest_run") as batch_op:
        batch_op.drop_column("next_attempt_at")
        batch_op.drop_column("attempts")
        batch_op.drop_column("given_up")
