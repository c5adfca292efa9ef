"""the managers' channel can be found shared with another organisation

When the configured digest channel becomes shared (Slack Connect: the `channel_shared` event, or
conversations.info before a post), `digest_channel_shared_at` records it: digests, escalations and manager
notices stop going there (they reach the managers by DM) until another channel is chosen.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.types

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("workspace") as batch_op:
        batch_op.add_column(sa.Column("digest_channel_shared_at", models.types.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("workspace") as batch_op:
        batch_op.drop_column("digest_channel_shared_at")
