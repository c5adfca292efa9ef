"""Follow-ups and revisits as rows: the rows are the truth, APScheduler only wakes the dispatcher."""

from datetime import datetime

from sqlalchemy import Column, Index, String, Text
from sqlmodel import Field, SQLModel

from models.types import UTCDateTime


class Reminder(SQLModel, table=True):
    __table_args__ = (
        Index("ix_reminder_status_next", "status", "next_attempt_at"),
        Index("ix_reminder_owner_status", "workspace_id", "owner_id", "status"),
        Index("ix_reminder_customer", "customer_id", "kind", "status", "due_at"),
        Index("ix_reminder_overdue", "workspace_id", "kind", "status", "due_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: str = Field(foreign_key="workspace.id", max_length=32)
    customer_id: int | None = Field(default=None, foreign_key="customer.id")
    kind: str = Field(default="followup", sa_type=String(16))
    source: str = Field(default="manual", max_length=16)  # manual, button, survey, revisit
    owner_id: str = Field(max_length=32)
    note: str = Field(default="", sa_column=Column(Text, nullable=False))
    due_at: datetime = Field(sa_type=UTCDateTime)
    # due_at moved into the owner's working hours; the dispatcher claims on next_attempt_at.
    deliver_at: datetime = Field(sa_type=UTCDateTime)
    next_attempt_at: datetime = Field(sa_type=UTCDateTime)
    status: str = Field(default="pending", sa_type=String(16))
    attempts: int = 0
    claimed_by: str | None = Field(default=None, max_length=64)
    lease_expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    late: bool = False
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    dm_channel: str | None = Field(default=None, max_length=32)
    message_ts: str | None = Field(default=None, max_length=32)
    escalated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # When a manager was told that this reminder failed for good (so they are told once).
    failure_reported_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    done_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    outcome: str | None = Field(default=None, max_length=32)
    survey_response_id: int | None = Field(default=None, foreign_key="survey_response.id")
    created_by: str | None = Field(default=None, max_length=32)
    created_at: datetime = Field(sa_type=UTCDateTime)
