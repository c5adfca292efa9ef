"""The relationship plan of a customer (seed 002's method): targets to reach by a date, and the pressures on it.

Its steps are follow-ups (Reminder rows with source `plan`): the reminders engine delivers them, Done closes them.
"""

from datetime import date, datetime

from sqlalchemy import Column, Date, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.types import UTCDateTime


class PlanTarget(SQLModel, table=True):
    """Where the relationship should be by a date: the org relationship (contact_id None) or one person's level."""

    __tablename__ = "plan_target"
    # `aim` is "org" or "contact:<id>": one target per aim, unique on both databases (a NULL contact would not be).
    __table_args__ = (UniqueConstraint("customer_id", "aim", name="uq_plan_target_aim"),)

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: str = Field(foreign_key="workspace.id", max_length=32, index=True)
    customer_id: int = Field(foreign_key="customer.id")
    aim: str = Field(sa_type=String(32))
    contact_id: int | None = Field(default=None, foreign_key="contact.id")
    value: str = Field(sa_type=String(24))  # an org relationship, or a level 1..5
    by_date: date = Field(sa_column=Column(Date, nullable=False))
    by_label: str = Field(sa_type=String(16))  # as the user wrote it: 2027-Q1 or 2027-03-31
    set_by: str = Field(max_length=32)
    set_at: datetime = Field(sa_type=UTCDateTime)


class PlanPressure(SQLModel, table=True):
    """One of the four pressures on the customer (市场分析): macro, internal, competitor, supplier."""

    __tablename__ = "plan_pressure"
    __table_args__ = (UniqueConstraint("customer_id", "kind", name="uq_plan_pressure_kind"),)

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: str = Field(foreign_key="workspace.id", max_length=32, index=True)
    customer_id: int = Field(foreign_key="customer.id")
    kind: str = Field(sa_type=String(16))
    text: str = Field(sa_column=Column(Text, nullable=False))
    set_by: str = Field(max_length=32)
    set_at: datetime = Field(sa_type=UTCDateTime)
