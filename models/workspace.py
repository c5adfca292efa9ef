"""A Slack workspace that installed Rapport, its settings, the people cache, and processed Slack events."""

from datetime import datetime

from sqlalchemy import JSON, Column, String
from sqlmodel import Field, SQLModel

from models.types import UTCDateTime

DEFAULT_HEALTH_WEIGHTS = {"engagement": 30, "satisfaction": 30, "relationship": 25, "followup": 15}


class Workspace(SQLModel, table=True):
    """One row per Slack team; every other table is scoped by its id (the team id, T…)."""

    id: str = Field(primary_key=True, max_length=32)
    name: str = Field(default="", max_length=200)
    created_at: datetime = Field(sa_type=UTCDateTime)

    # Settings read by reminders, surveys and the digest (PRODUCT.md §3 `/crm config`).
    timezone: str = Field(default="UTC", max_length=64)
    digest_channel: str | None = Field(default=None, max_length=32)
    # Set when the managers' channel turned out shared with another organisation (the channel_shared event, or
    # conversations.info before a post): nothing internal goes there until another channel is chosen.
    digest_channel_shared_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    digest_weekday: int = 0  # Monday
    digest_time: str = Field(default="09:00", max_length=5)
    cadence_key_days: int = 14
    cadence_general_days: int = 45
    cadence_longtail_days: int = 90
    work_start: str = Field(default="09:00", max_length=5)
    work_end: str = Field(default="18:00", max_length=5)
    work_days: list[int] = Field(default_factory=lambda: [0, 1, 2, 3, 4], sa_column=Column(JSON, nullable=False))
    days_off: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    health_weights: dict[str, int] = Field(
        default_factory=lambda: dict(DEFAULT_HEALTH_WEIGHTS), sa_column=Column(JSON, nullable=False)
    )
    managers: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    digest_subscribers: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    survey_cooldown_days: int = 30
    survey_close_days: int = 7
    survey_allow_internal: bool = False

    # Set while Slack refuses the workspace's bot token (uninstalled, revoked): its scheduled work waits.
    paused_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    paused_reason: str | None = Field(default=None, max_length=64)
    paused_token: str | None = Field(default=None, max_length=16)  # fingerprint of the refused token


class SlackUser(SQLModel, table=True):
    """What Slack told us about a person (time zone, admin flags, team), refreshed from users.info."""

    __tablename__ = "slack_user"

    workspace_id: str = Field(foreign_key="workspace.id", primary_key=True, max_length=32)
    user_id: str = Field(primary_key=True, max_length=32)
    team_id: str | None = Field(default=None, max_length=32)
    name: str = Field(default="", max_length=200)
    email: str | None = Field(default=None, max_length=320)
    tz: str = Field(default="UTC", max_length=64)
    is_admin: bool = False
    is_owner: bool = False
    is_restricted: bool = False
    is_bot: bool = False
    deleted: bool = False
    fetched_at: datetime = Field(sa_type=UTCDateTime)


class ProcessedEvent(SQLModel, table=True):
    """Events API deliveries already handled, so Slack's retries do not repeat side effects."""

    __tablename__ = "processed_event"

    event_id: str = Field(sa_column=Column(String(64), primary_key=True))
    workspace_id: str = Field(default="", max_length=32)
    received_at: datetime = Field(sa_type=UTCDateTime, index=True)
