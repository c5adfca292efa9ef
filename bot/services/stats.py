"""Churn and retention per period (PRODUCT §2), read from the stage history, and the period's survey scores.

For a period (the last 7, 30, 90 or 365 days), by tier as it is now:
- customers at the start: accounts that were `active` or `expanding` then (not prospects, not lost ones);
- churned: those of them that are `churned` now (one lost and won back within the period is not churn);
- churn rate = churned / customers at the start, retention rate = the rest;
- won: accounts that became `active` or `expanding` during the period (new, or from prospect, converting, churned).
A customer's stage at the start is the `from` of its first stage change since then, or its stage now when it has
not changed: the history keeps every change. A fixed number of queries, whatever the number of customers.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func
from sqlmodel import Session, select

from bot.errors import BadInput
from bot.services.scores import survey_score
from models import Customer, RelationshipChange, Survey, SurveyResponse, Workspace
from models.enums import HistoryField, Stage, Tier

PERIODS = {"week": 7, "month": 30, "quarter": 90, "year": 365}
CHURNED = Stage.churned.value
CUSTOMER = {Stage.active.value, Stage.expanding.value}  # paying customers, whom churn is about
NAMES_SHOWN = 10


@dataclass
class Counts:
    at_start: int = 0
    churned: int = 0
    won: int = 0

    @property
    def churn_rate(self) -> float | None:
        return 100.0 * self.churned / self.at_start if self.at_start else None

    @property
    def retention_rate(self) -> float | None:
        return None if self.churn_rate is None else 100.0 - self.churn_rate


@dataclass
class Score:
    kind: str
    value: float | None
    answers: int


@dataclass
class Stats:
    period: str
    start: datetime
    end: datetime
    total: Counts
    tiers: dict[str, Counts]
    churned_names: list[str] = field(default_factory=list)  # the first few, by name
    scores: list[Score] = field(default_factory=list)


def period_stats(session: Session, *, workspace: Workspace, period: str, now: datetime) -> Stats:
    if period not in PERIODS:
        raise BadInput(f"A period is {', '.join(PERIODS)}, not “{period}”.")
    start = now - timedelta(days=PERIODS[period])
    tiers: dict[str, Counts] = {tier.value: Counts() for tier in Tier}

    # Accounts from before the period by tier and stage now: their stage at the start too, unless it changed.
    for tier, stage, count in session.exec(
        select(Customer.tier, Customer.stage, func.count())
        .where(Customer.workspace_id == workspace.id, Customer.created_at < start)
        .group_by(Customer.tier, Customer.stage)
    ).all():
        if stage in CUSTOMER:
            tiers[tier].at_start += count

    # Those whose stage changed since the start: their stage then is the first change's `from`, and their stage
    # at `now` the `from` of the first change after it (another request may have committed one meanwhile).
    since_start = [RelationshipChange.workspace_id == workspace.id, RelationshipChange.field == HistoryField.stage,
                   RelationshipChange.at >= start]
    stage_then: dict[int, str | None] = {}
    stage_at_now: dict[int, str | None] = {}
    for customer_id, at, from_value in session.exec(
        select(RelationshipChange.customer_id, RelationshipChange.at, RelationshipChange.from_value)
        .where(*since_start)
        .order_by(RelationshipChange.customer_id, RelationshipChange.at, RelationshipChange.id)
    ).all():
        stage_then.setdefault(customer_id, from_value)
        if at > now:
            stage_at_now.setdefault(customer_id, from_value)
    churned: list[str] = []
    if stage_then:
        for customer_id, tier, stage, name in session.exec(
            select(Customer.id, Customer.tier, Customer.stage, Customer.name)
            .where(Customer.workspace_id == workspace.id, Customer.created_at < start,
                   Customer.id.in_(select(RelationshipChange.customer_id).where(*since_start)))
        ).all():
            then, at_now = stage_then.get(customer_id, stage), stage_at_now.get(customer_id, stage)
            tiers[tier].at_start += int(then in CUSTOMER) - int(stage in CUSTOMER)  # counted above by stage now
            if then in CUSTOMER and at_now == CHURNED:
                tiers[tier].churned += 1
                churned.append(name)
            elif then not in CUSTOMER and at_now in CUSTOMER:
                tiers[tier].won += 1

    # Accounts created during the period that are customers now.
    for tier, count in session.exec(
        select(Customer.tier, func.count())
        .where(Customer.workspace_id == workspace.id, Customer.created_at >= start, Customer.created_at <= now,
               Customer.stage.in_(CUSTOMER))
        .group_by(Customer.tier)
    ).all():
        tiers[tier].won += count

    answers: dict[str, list[int]] = defaultdict(list)
    for kind, score in session.exec(
        select(Survey.kind, SurveyResponse.score)
        .join(Survey, Survey.id == SurveyResponse.survey_id)
        .where(SurveyResponse.workspace_id == workspace.id, SurveyResponse.updated_at >= start)
    ).all():
        answers[kind].append(score)

    total = Counts(*(sum(getattr(c, part) for c in tiers.values()) for part in ("at_start", "churned", "won")))
    return Stats(period=period, start=start, end=now, total=total, tiers=tiers,
                 churned_names=sorted(churned, key=str.casefold)[:NAMES_SHOWN],
                 scores=[Score(kind, survey_score(kind, scores), len(scores)) for kind, scores in sorted(answers.items())])
