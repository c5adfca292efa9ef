"""ecosystem links are found from either side

The card shows a customer's partners and the customers it is a partner of; links were indexed by customer only
(the unique pair), so the second half read every link of the workspace.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("ecosystem_link") as batch_op:
        batch_op.create_index("ix_ecosystem_link_partner_id", ["partner_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("ecosystem_link") as batch_op:
        batch_op.drop_index("ix_ecosystem_link_partner_id")
