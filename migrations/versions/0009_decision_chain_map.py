"""the decision chain is a map: reports-to, stance, the competitor a person favours, left or moved and successor

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("contact") as batch_op:
        batch_op.add_column(sa.Column("reports_to_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("stance", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("leans_to_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("status", sa.String(length=16), nullable=False, server_default="active"))
        batch_op.add_column(sa.Column("replaced_by_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key("fk_contact_reports_to", "contact", ["reports_to_id"], ["id"])
        batch_op.create_foreign_key("fk_contact_leans_to", "customer", ["leans_to_id"], ["id"])
        batch_op.create_foreign_key("fk_contact_replaced_by", "contact", ["replaced_by_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("contact") as batch_op:
        batch_op.drop_constraint("fk_contact_replaced_by", type_="foreignkey")
        batch_op.drop_constraint("fk_contact_leans_to", type_="foreignkey")
        batch_op.drop_constraint("fk_contact_reports_to", type_="foreignkey")
        batch_op.drop_column("replaced_by_id")
        batch_op.drop_column("status")
        batch_op.drop_column("leans_to_id")
        batch_op.drop_column("stance")
        batch_op.drop_column("reports_to_id")
