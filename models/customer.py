"""Customers and their relationship state: decision chain, touches, ecosystem links and the change history."""

from datetime import datetime

from sqlalchemy import Column, Index, Integer, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.types import UTCDateTime

NAME_MAX = 200
SUMMARY_MAX = 2000
NAME_KEY_TYPE = String(NAME_MAX * 3).with_variant(String(NAME_MAX * 3, collation="C"), "postgresql")


class Customer(SQLModel, table=True):
    __table_args__ = (
        UniqueConstraint("workspace_id", "name_key", name="uq_customer_workspace_name"),
        Index("ix_customer_workspace_owner", "workspace_id", "owner_id", "revisit_due_at"),
        Index("ix_customer_workspace_tier", "workspace_id", "tier"),
        Index("ix_customer_workspace_revisit", "workspace_id", "revisit_due_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: str = Field(foreign_key="workspace.id", max_length=32)
    name: str = Field(max_length=NAME_MAX)
    # Case- and width-folded name: the key for uniqueness and prefix search. Byte order ("C") on PostgreSQL
    # so the prefix range `key <= name_key < key + U+10FFFF` means the same as on SQLite.
    name_key: str = Field(sa_type=NAME_KEY_TYPE)
    tier: str = Field(default="general", sa_type=String(16))
    stage: str = Field(default="prospect", sa_type=String(16))
    org_relationship: str = Field(default="vendor", sa_type=String(24))
    owner_id: str | None = Field(default=None, max_length=32)
    channel_id: str | None = Field(default=None, max_length=32)
    created_by: str | None = Field(default=None, max_length=32)
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)
    # Kept up to date by log_touch so revisits and the engagement score need no scan of touches.
    last_touch_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # last touch (or creation) + the tier's cadence; recomputed when either changes. Orders `list` and
    # finds due revisits with an index instead of date arithmetic that differs between databases.
    revisit_due_at: datetime = Field(sa_type=UTCDateTime)


class Contact(SQLModel, table=True):
    """A person in the customer's decision chain (客户决策链) with their key relationship level (1..5)."""

    __table_args__ = (UniqueConstraint("customer_id", "name_key", name="uq_contact_customer_name"),)

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: str = Field(foreign_key="workspace.id", max_length=32, index=True)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    name: str = Field(max_length=NAME_MAX)
    name_key: str = Field(sa_type=NAME_KEY_TYPE)
    role: str = Field(default="influencer", sa_type=String(16))
    level: int = Field(default=1, sa_column=Column(Integer, nullable=False))
    slack_user_id: str | None = Field(default=None, max_length=32)
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)
    # The decision-chain map: whom they report to, where they stand, the competitor they favour, whether
    # they are still there and who took over.
    reports_to_id: int | None = Field(default=None, foreign_key="contact.id")
    stance: str | None = Field(default=None, sa_type=String(16))  # supporter, neutral, blocker
    leans_to_id: int | None = Field(default=None, foreign_key="customer.id")  # a competitor in the ecosystem
    status: str = Field(default="active", sa_column=Column(String(16), nullable=False, server_default="active"))
    replaced_by_id: int | None = Field(default=None, foreign_key="contact.id")


class Interaction(SQLModel, table=True):
    """A touchpoint (接触点): who touched the customer, how, when, and what happened."""

    __table_args__ = (Index("ix_interaction_customer_at", "customer_id", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: str = Field(foreign_key="workspace.id", max_length=32, index=True)
    customer_id: int = Field(foreign_key="customer.id")
    kind: str = Field(sa_type=String(16))
    summary: str = Field(sa_column=Column(Text, nullable=False))
    by_user: str = Field(max_length=32)
    at: datetime = Field(sa_type=UTCDateTime)
    contact_id: int | None = Field(default=None, foreign_key="contact.id")
    link: str | None = Field(default=None, sa_column=Column(Text))
    created_at: datetime = Field(sa_type=UTCDateTime)


class RelationshipChange(SQLModel, table=True):
    """History of tier, stage, level, org relationship and owner (动态审视): who, when, from, to, why."""

    __tablename__ = "relationship_change"
    __table_args__ = (
        Index("ix_change_customer_at", "customer_id", "at"),
        Index("ix_change_workspace_at", "workspace_id", "at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: str = Field(foreign_key="workspace.id", max_length=32)
    customer_id: int = Field(foreign_key="customer.id")
    field: str = Field(sa_type=String(16))
    contact_id: int | None = Field(default=None, foreign_key="contact.id")
    from_value: str | None = Field(default=None, max_length=64)
    to_value: str = Field(max_length=64)
    by_user: str = Field(max_length=32)
    at: datetime = Field(sa_type=UTCDateTime)
    reason: str | None = Field(default=None, sa_column=Column(Text))


class EcosystemLink(SQLModel, table=True):
    """A partner around a customer (客户生态圈): supplier, channel partner or integrator, itself a customer row."""

    __tablename__ = "ecosystem_link"
    __table_args__ = (UniqueConstraint("customer_id", "partner_id", name="uq_ecosystem_pair"),)

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: str = Field(foreign_key="workspace.id", max_length=32, index=True)
    customer_id: int = Field(foreign_key="customer.id")
    partner_id: int = Field(foreign_key="customer.id", index=True)  # the card looks both ways
    kind: str = Field(default="partner", max_length=32)
    created_at: datetime = Field(sa_type=UTCDateTime)
