"""NPS / CSAT surveys posted in a customer's channel and the answers, one per person per survey."""

from datetime import datetime

from sqlalchemy import Column, Index, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.types import UTCDateTime


class Survey(SQLModel, table=True):
    __table_args__ = (
        Index("ix_survey_customer_created", "customer_id", "created_at"),
        Index("ix_survey_status_closes", "status", "closes_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: str = Field(foreign_key="workspace.id", max_length=32, index=True)
    customer_id: int = Field(foreign_key="customer.id")
    kind: str = Field(sa_type=String(8))
    channel_id: str = Field(max_length=32)
    message_ts: str | None = Field(default=None, max_length=32)
    status: str = Field(default="open", sa_type=String(8))
    forced: bool = False
    created_by: str = Field(max_length=32)
    created_at: datetime = Field(sa_type=UTCDateTime)
    closes_at: datetime = Field(sa_type=UTCDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # The response count shown on the message and when it was last redrawn: chat.update runs only when the
    # count changed, and at most once per few seconds per survey across all processes (Slack rate limits).
    shown_count: int = 0
    message_updated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    summary_sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class SurveyResponse(SQLModel, table=True):
    __tablename__ = "survey_response"
    __table_args__ = (UniqueConstraint("survey_id", "respondent_id", name="uq_response_survey_person"),)

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: str = Field(foreign_key="workspace.id", max_length=32, index=True)
    survey_id: int = Field(foreign_key="survey.id")
    customer_id: int = Field(foreign_key="customer.id", index=True)
    respondent_id: str = Field(max_length=32)
    respondent_team_id: str | None = Field(default=None, max_length=32)
    score: int
    comment: str | None = Field(default=None, sa_column=Column(Text))
    answered_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)
