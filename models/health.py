"""Weekly health snapshots per customer and the digest runs (one per workspace per period)."""

from datetime import date, datetime

from sqlalchemy import JSON, Column, Integer, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.types import UTCDateTime


class HealthSnapshot(SQLModel, table=True):
    __tablename__ = "health_snapshot"
    __table_args__ = (UniqueConstraint("customer_id", "week_start", name="uq_snapshot_customer_week"),)

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: str = Field(foreign_key="workspace.id", max_length=32, index=True)
    customer_id: int = Field(foreign_key="customer.id")
    week_start: date
    score: float | None = None  # None: insufficient data
    band: str = Field(sa_type=String(16))
    components: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    reasons: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    computed_at: datetime = Field(sa_type=UTCDateTime)


class DigestRun(SQLModel, table=True):
    """Claimed by inserting before posting: the unique (workspace, period) makes the digest exactly-once."""

    __tablename__ = "digest_run"
    __table_args__ = (UniqueConstraint("workspace_id", "period", name="uq_digest_workspace_period"),)

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: str = Field(foreign_key="workspace.id", max_length=32)
    period: str = Field(max_length=16)  # ISO week, e.g. 2026-W48
    status: str = Field(default="claimed", sa_type=String(16))
    claimed_by: str = Field(max_length=64)
    claimed_at: datetime = Field(sa_type=UTCDateTime)
    posted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    channel_id: str | None = Field(default=None, max_length=32)
    message_ts: str | None = Field(default=None, max_length=32)
    # Destinations already served (channel and subscriber ids), so a run taken over after a crash does not
    # post twice where the first attempt got through.
    delivered_to: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # Destinations Slack refused for good this period ({destination: error}): not retried, the managers told.
    given_up: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False, server_default="{}"))
    error: str | None = Field(default=None, sa_column=Column(Text))
    attempts: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))
    next_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime)  # after a failure, with back-off
