"""workspaces can be paused: uninstalled, or their bot token refused by Slack

A workspace whose bot token Slack refuses (app_uninstalled, tokens_revoked, or a background call answered
invalid_auth / token_revoked / account_inactive) keeps its data but its scheduled work waits: the claim
queries skip it in the same statement. A reinstall clears the pause. `paused_token` is a fingerprint of the
token that was refused, so a process started with a new configured token knows to resume.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.types

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("workspace") as batch_op:
        batch_op.add_column(sa.Column("paused_at", models.types.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("paused_reason", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("paused_token", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("workspace") as batch_op:
        batch_op.drop_column("paused_token")
        batch_op.drop_column("paused_reason")
        batch_op.drop_column("paused_at")
