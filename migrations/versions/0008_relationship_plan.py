"""the relationship plan: targets (org relationship or a person's level, by a date) and the four pressures

Steps need no table: they are follow-ups (reminder rows with source `plan`).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.types

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "plan_target",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("aim", sa.String(length=32), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=True),
        sa.Column("value", sa.String(length=24), nullable=False),
        sa.Column("by_date", sa.Date(), nullable=False),
        sa.Column("by_label", sa.String(length=16), nullable=False),
        sa.Column("set_by", sa.String(length=32), nullable=False),
        sa.Column("set_at", models.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspace.id"]),
        sa.ForeignKeyConstraint(["customer_id"], ["customer.id"]),
        sa.ForeignKeyConstraint(["contact_id"], ["contact.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("customer_id", "aim", name="uq_plan_target_aim"),
    )
    op.create_index("ix_plan_target_workspace_id", "plan_target", ["workspace_id"], unique=False)
    op.create_table(
        "plan_pressure",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("set_by", sa.String(length=32), nullable=False),
        sa.Column("set_at", models.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspace.id"]),
        sa.ForeignKeyConstraint(["customer_id"], ["customer.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("customer_id", "kind", name="uq_plan_pressure_kind"),
    )
    op.create_index("ix_plan_pressure_workspace_id", "plan_pressure", ["workspace_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_plan_pressure_workspace_id", table_name="plan_pressure")
    op.drop_table("plan_pressure")
    op.drop_index("ix_plan_target_workspace_id", table_name="plan_target")
    op.drop_table("plan_target")
