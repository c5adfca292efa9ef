"""The product's vocabulary (PRODUCT.md §2) as enums: the same words in models, services, templates and messages."""

from enum import IntEnum, StrEnum


class Tier(StrEnum):
    key = "key"
    general = "general"
    longtail = "longtail"


class Stage(StrEnum):
    prospect = "prospect"
    converting = "converting"
    active = "active"
    expanding = "expanding"
    churned = "churned"


class RelationshipLevel(IntEnum):
    """Key relationship level of one person in the decision chain, 1..5."""

    contact = 1
    acceptance = 2
    favorable = 3
    supportive = 4
    exclusive = 5


class OrgRelationship(StrEnum):
    vendor = "vendor"
    supplier = "supplier"
    key_supplier = "key_supplier"
    strategic_partner = "strategic_partner"


class PartnerKind(StrEnum):
    """How a company stands around a customer in its ecosystem (客户生态圈)."""

    supplier = "supplier"
    channel_partner = "channel_partner"
    integrator = "integrator"
    partner = "partner"
    competitor = "competitor"  # 友商: who we compete with for this customer


class ContactRole(StrEnum):
    decision_maker = "decision_maker"
    influencer = "influencer"
    evaluator = "evaluator"
    user = "user"
    procurement = "procurement"
    champion = "champion"


class TouchKind(StrEnum):
    call = "call"
    meeting = "meeting"
    visit = "visit"
    email = "email"
    message = "message"
    note = "note"


class HistoryField(StrEnum):
    """What a relationship change is about (dynamic review, 动态审视)."""

    tier = "tier"
    stage = "stage"
    level = "level"
    org = "org"
    owner = "owner"
    target = "target"  # the relationship plan: a target set or moved
    pressure = "pressure"
    step = "step"


class Pressure(StrEnum):
    """The four pressures on a customer that the plan starts from (seed 002, 市场分析)."""

    macro = "macro"  # 宏观环境
    internal = "internal"  # 内部业务压力
    competitor = "competitor"  # 友商竞争
    supplier = "supplier"  # 客户供应商挑战


class ReminderKind(StrEnum):
    followup = "followup"
    revisit = "revisit"
    escalation = "escalation"


class ReminderStatus(StrEnum):
    pending = "pending"  # waiting for deliver_at
    claimed = "claimed"  # a process holds a lease and is sending
    delivered = "delivered"  # the DM is out, waiting for Done/Snooze
    done = "done"
    cancelled = "cancelled"
    failed = "failed"  # permanent Slack error; reason kept in last_error


class SurveyKind(StrEnum):
    nps = "nps"
    csat = "csat"


class SurveyStatus(StrEnum):
    open = "open"
    closed = "closed"


class HealthBand(StrEnum):
    healthy = "healthy"
    watch = "watch"
    at_risk = "at_risk"
    insufficient = "insufficient"


class DigestStatus(StrEnum):
    claimed = "claimed"
    posted = "posted"
    failed = "failed"
