"""Churn and retention per period (PRODUCT §2), read from the stage history, and the period's survey scores.

For a period (the last 7, 30, 90 or 365 days): the accounts we had at its start (created before it and not
churned then), how many of those churned during it, the churn rate (churned / at start) and the retention rate
(the rest), and the accounts won meanwhile, by tier (as it is now). A customer's stage at the start is the
`from` of its first stage change since then, or its stage now when it has not changed: the history keeps every
change, so nothing is guessed. A fixed number of queries, whatever the number of customers.
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

    # Accounts before the period by tier, as churned or not now (one grouped count).
    is_churned = Customer.stage == CHURNED
    for tier, churned_now, count in session.exec(
        select(Customer.tier, is_churned, func.count())
        .where(Customer.workspace_id == workspace.id, Customer.created_at < start)
        .group_by(Customer.tier, is_churned)
    ).all():
        if not churned_now:
            tiers[tier].at_start += count

    # Those whose stage changed since the start: their stage then, and whether they churned since.
    changes = session.exec(
        select(RelationshipChange.customer_id, RelationshipChange.from_value, RelationshipChange.to_value)
        .where(RelationshipChange.workspace_id == workspace.id, RelationshipChange.field == HistoryField.stage,
               RelationshipChange.at >= start, RelationshipChange.at <= now)
        .order_by(RelationshipChange.customer_id, RelationshipChange.at, RelationshipChange.id)
    ).all()
    stage_then: dict[int, str | None] = {}
    churned_since: set[int] = set()
    churned: list[str] = []
    for customer_id, from_value, to_value in changes:
        stage_then.setdefault(customer_id, from_value)
        if to_value == CHURNED:
            churned_since.add(customer_id)
    if stage_then:
        changed = (select(RelationshipChange.customer_id)
                   .where(RelationshipChange.workspace_id == workspace.id,
                          RelationshipChange.field == HistoryField.stage, RelationshipChange.at >= start))
        for customer_id, tier, stage, name in session.exec(
            select(Customer.id, Customer.tier, Customer.stage, Customer.name)
            .where(Customer.workspace_id == workspace.id, Customer.created_at < start, Customer.id.in_(changed))
        ).all():
            was_ours, counted = stage_then[customer_id] != CHURNED, stage != CHURNED
            tiers[tier].at_start += int(was_ours) - int(counted)  # counted above by its stage now
            if was_ours and customer_id in churned_since:
                tiers[tier].churned += 1
                churned.append(name)

    for tier, count in session.exec(
        select(Customer.tier, func.count())
        .where(Customer.workspace_id == workspace.id, Customer.created_at >= start, Customer.created_at <= now)
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
