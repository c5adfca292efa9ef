"""Customer health (PRODUCT.md §6): a weighted sum of engagement, satisfaction, relationship and follow-up
discipline, with components lacking data left out and the rest renormalised, reasons in words, and the
inputs that moved it since last week. Scores for a whole workspace are computed in a fixed number of queries.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Row, and_, func, insert, update
from sqlmodel import Session, select

from bot.services import coverage as coverage_svc
from bot.services.coverage import Coverage
from bot.services.customers import cadence_days
from bot.services.reminders import overdue_followups
from bot.services.scores import csat, nps
from models import Contact, Customer, HealthSnapshot, Reminder, SlackUser, Survey, SurveyResponse, Workspace
from models.enums import ContactStatus, HealthBand

SURVEY_WINDOW = timedelta(days=180)
ROLE_WEIGHT = {"decision_maker": 3.0, "champion": 2.0, "influencer": 1.5, "evaluator": 1.5, "procurement": 1.0,
               "user": 1.0}
ORG_SCORE = {"vendor": 0.0, "supplier": 100 / 3, "key_supplier": 200 / 3, "strategic_partner": 100.0}
CHAIN_SHARE = 0.7  # of the relationship component; the org relationship is the rest
OVERDUE_PENALTY = 25
COVERAGE_PENALTY = 15  # relationship points per coverage finding (single-threaded, each named risk)
TREND_THRESHOLD = 5
COMPONENTS = ("engagement", "satisfaction", "relationship", "followup")
LABELS = {"engagement": "engagement", "satisfaction": "satisfaction", "relationship": "relationship",
          "followup": "follow-up discipline"}


@dataclass
class Inputs:
    """Everything the score reads about one customer, as plain values."""

    cadence_days: int
    last_touch_at: datetime | None
    created_at: datetime
    org_relationship: str
    contacts: list[tuple[str, int, str]] = field(default_factory=list)  # (role, level 1..5, name)
    answers: list[tuple[str, int, str | None]] = field(default_factory=list)  # (kind, score, respondent)
    overdue_followups: int = 0
    coverage: Coverage | None = None  # who touched whom in the last 90 days (None: not judged)


@dataclass
class Component:
    value: float | None  # 0..100, None = no data
    reason: str


@dataclass
class Health:
    score: float | None  # None: insufficient data
    band: str
    components: dict[str, Component]
    reasons: list[str]

    def snapshot_components(self) -> dict:
        return {name: {"value": c.value, "reason": c.reason} for name, c in self.components.items()}


def band(score: float | None) -> str:
    if score is None:
        return HealthBand.insufficient
    if score >= 70:
        return HealthBand.healthy
    if score >= 40:
        return HealthBand.watch
    return HealthBand.at_risk


def engagement(inputs: Inputs, now: datetime) -> Component:
    cadence = inputs.cadence_days
    if inputs.last_touch_at is None:
        days = (now - inputs.created_at).days
        if days <= cadence:
            return Component(None, "not touched yet")
        return Component(_falling(days, cadence), f"never touched in {days} days")
    days = max((now - inputs.last_touch_at).days, 0)
    value = _falling(days, cadence)
    if value >= 100:
        return Component(100.0, f"last touch {days} day{'s' if days != 1 else ''} ago")
    return Component(value, f"no touch for {days} days, cadence {cadence}")


def _falling(days: int, cadence: int) -> float:
    """100 within the cadence, falling linearly to 0 at three cadences."""
    if days <= cadence:
        return 100.0
    return max(0.0, 100.0 * (3 * cadence - days) / (2 * cadence))


def satisfaction(inputs: Inputs) -> Component:
    by_kind: dict[str, list[int]] = defaultdict(list)
    for kind, score, _who in inputs.answers:
        by_kind[kind].append(score)
    if not by_kind:
        return Component(None, "no survey data")
    parts, total, words = 0.0, 0, []
    for kind, scores in sorted(by_kind.items()):
        if kind == "nps":
            value, mapped = nps(scores), (nps(scores) + 100) / 2
            words.append(f"NPS {value:+.0f} from {len(scores)} answer{'s' if len(scores) != 1 else ''}")
        else:
            value = mapped = csat(scores)
            words.append(f"CSAT {value:.0f}% from {len(scores)} answer{'s' if len(scores) != 1 else ''}")
        parts += mapped * len(scores)
        total += len(scores)
    lows = [(kind, score, who) for kind, score, who in inputs.answers
            if (kind == "nps" and score <= 6) or (kind == "csat" and score <= 2)]
    for kind, score, who in sorted(lows, key=lambda a: a[1])[:2]:
        words.append(f"{kind.upper()} {score}" + (f" from {who}" if who else ""))
    return Component(parts / total, ", ".join(words))


def relationship(inputs: Inputs) -> Component:
    org = ORG_SCORE.get(inputs.org_relationship, 0.0)
    org_words = f"org relationship {inputs.org_relationship.replace('_', ' ')}"
    if not inputs.contacts:
        return Component(None, "no decision chain recorded")
    weights = [(ROLE_WEIGHT.get(role, 1.0), (level - 1) * 25.0) for role, level, _ in inputs.contacts]
    chain = sum(w * v for w, v in weights) / sum(w for w, _ in weights)
    value = CHAIN_SHARE * chain + (1 - CHAIN_SHARE) * org
    makers = [(level, name) for role, level, name in inputs.contacts if role == "decision_maker"]
    if makers:
        level, name = min(makers)
        words = f"decision maker {name} at level {level}/5"
    else:
        words = "no decision maker in the chain"
    words = f"{words}, {org_words}"
    # Breadth across their people (普遍客户关系): an account that hangs on one thread, or whose chain has no one
    # high enough where it matters, is weaker than its levels alone say.
    coverage = inputs.coverage
    if coverage is not None:
        for said in ([coverage.single_threaded] if coverage.single_threaded else []) + coverage.risks:
            value -= COVERAGE_PENALTY
            words += f"; {said}"
    return Component(max(0.0, value), words)


def followup(inputs: Inputs) -> Component:
    n = inputs.overdue_followups
    if n == 0:
        return Component(100.0, "no overdue follow-ups")
    return Component(max(0.0, 100.0 - OVERDUE_PENALTY * n), f"{n} overdue follow-up{'s' if n != 1 else ''}")


def compute(inputs: Inputs, *, weights: dict[str, int], now: datetime) -> Health:
    components = {
        "engagement": engagement(inputs, now),
        "satisfaction": satisfaction(inputs),
        "relationship": relationship(inputs),
        "followup": followup(inputs),
    }
    total = sum(weights.get(name, 0) for name in COMPONENTS)
    present = {name: c for name, c in components.items() if c.value is not None and weights.get(name, 0) > 0}
    present_weight = sum(weights[name] for name in present)
    reasons = [c.reason for name, c in components.items() if weights.get(name, 0) > 0]
    if total == 0 or present_weight * 2 < total:
        return Health(None, HealthBand.insufficient, components, reasons)
    score = sum(weights[name] * c.value for name, c in present.items()) / present_weight
    return Health(round(score, 1), band(score), components, reasons)


def trend(score: float | None, previous: float | None) -> str:
    if score is None or previous is None or abs(score - previous) < TREND_THRESHOLD:
        return "→"
    return "↑" if score > previous else "↓"


def moved(current: Health, previous: dict | None, weights: dict[str, int]) -> list[str]:
    """Which inputs moved the score since the last snapshot, biggest effect first: "engagement 100 → 60 (no
    touch for 32 days)"."""
    if not previous:
        return []
    total = sum(weights.get(name, 0) for name in COMPONENTS) or 1
    changes = []
    for name in COMPONENTS:
        now_value = current.components[name].value
        before = (previous.get(name) or {}).get("value")
        if now_value == before or (now_value is not None and before is not None and abs(now_value - before) < 1):
            continue
        effect = abs((now_value or 0) - (before or 0)) * weights.get(name, 0) / total
        shown = lambda v: "no data" if v is None else f"{v:.0f}"  # noqa: E731
        changes.append((effect, f"{LABELS[name]} {shown(before)} → {shown(now_value)} ({current.components[name].reason})"))
    return [words for _effect, words in sorted(changes, reverse=True)]


def week_start(moment: datetime, zone: str) -> date:
    """The Monday of `moment`'s week in the workspace's own time zone `zone`: at UTC+10, Monday 09:00 is still
    Sunday in UTC, and its snapshots belong to the new week all the same."""
    day = moment.astimezone(ZoneInfo(zone)).date()
    return day - timedelta(days=day.weekday())


# -- a whole workspace at once ---------------------------------------------------------------------------


@dataclass
class Scored:
    customer: Customer
    health: Health
    previous: Row | None  # last week's snapshot: customer_id, week_start, score, band, components


def score_workspace(session: Session, *, workspace: Workspace, now: datetime, tier: str | None = None) -> list[Scored]:
    """Health for every customer of the workspace (or one tier), with last week's snapshot, in five queries."""
    query = select(Customer).where(Customer.workspace_id == workspace.id)
    if tier is not None:
        query = query.where(Customer.tier == tier)
    customers = list(session.exec(query).all())
    if not customers:
        return []
    # A subquery, not a list of ids: keeps the statement small for tens of thousands of customers.
    scoped_ids = select(Customer.id).where(query.whereclause)
    contacts: dict[int, list] = defaultdict(list)
    for customer_id, role, level, name, slack_user, contact_id in session.exec(
        select(Contact.customer_id, Contact.role, Contact.level, Contact.name, Contact.slack_user_id, Contact.id)
        .where(Contact.customer_id.in_(scoped_ids), Contact.status == ContactStatus.active)
    ).all():
        contacts[customer_id].append((role, level, name, slack_user, contact_id))
    answers = _answers(session, workspace=workspace, now=now, scoped_ids=scoped_ids, contacts=contacts)
    touches = coverage_svc.touches_by_customer(session, workspace_id=workspace.id, scoped_ids=scoped_ids, now=now)
    overdue = _overdue(session, now=now, scoped_ids=scoped_ids, workspace_id=workspace.id)
    this_week = week_start(now, workspace.timezone)
    # Last week's snapshot as a plain row, not an ORM object: what the digest compares with, for thousands.
    previous = {snapshot.customer_id: snapshot for snapshot in session.exec(
        select(HealthSnapshot.customer_id, HealthSnapshot.week_start, HealthSnapshot.score, HealthSnapshot.band,
               HealthSnapshot.components)
        .where(HealthSnapshot.workspace_id == workspace.id, HealthSnapshot.week_start < this_week,
               HealthSnapshot.week_start >= this_week - timedelta(weeks=1),
               HealthSnapshot.customer_id.in_(scoped_ids))
    ).all()}
    return [Scored(customer, _health(workspace, customer, contacts, answers, overdue, now, touches),
                   previous.get(customer.id)) for customer in customers]


def score_customer(session: Session, *, workspace: Workspace, customer: Customer, contacts: list[Contact],
                   overdue_followups: int, touches: list, now: datetime) -> Health:
    """One customer's health now, for the card, which has already loaded the customer, its decision chain, its
    overdue follow-ups and its touches of the coverage window: one query (its survey answers)."""
    chain = {customer.id: [(c.role, c.level, c.name, c.slack_user_id, c.id) for c in contacts
                           if c.status == ContactStatus.active]}
    answers = _answers(session, workspace=workspace, now=now, scoped_ids=[customer.id], contacts=chain)
    return _health(workspace, customer, chain, answers, {customer.id: overdue_followups}, now,
                   {customer.id: touches})


def _answers(session: Session, *, workspace: Workspace, now: datetime, scoped_ids, contacts: dict[int, list]
             ) -> dict[int, list]:
    """Survey answers of the last 180 days per customer: (kind, score, who answered)."""
    # Respondents are named from the decision chain, else from the Slack user cache, joined here rather than
    # looked up with a list of ids: a big workspace has tens of thousands of them, past SQLite's 32,766 and
    # PostgreSQL's 65,535 bound parameters.
    names = {slack_user: name for chain in contacts.values() for _r, _l, name, slack_user, _id in chain if slack_user}
    rows = session.exec(
        select(SurveyResponse.customer_id, Survey.kind, SurveyResponse.score, SurveyResponse.respondent_id,
               SlackUser.name)
        .join(Survey, Survey.id == SurveyResponse.survey_id)
        .outerjoin(SlackUser, and_(SlackUser.workspace_id == SurveyResponse.workspace_id,
                                   SlackUser.user_id == SurveyResponse.respondent_id))
        .where(SurveyResponse.workspace_id == workspace.id, SurveyResponse.updated_at >= now - SURVEY_WINDOW,
               SurveyResponse.customer_id.in_(scoped_ids))
    ).all()
    answers: dict[int, list] = defaultdict(list)
    for customer_id, kind, score, respondent, slack_name in rows:
        answers[customer_id].append((kind, score, names.get(respondent) or slack_name or None))
    return answers


def _overdue(session: Session, *, now: datetime, scoped_ids, workspace_id: str) -> dict[int, int]:
    """Open follow-ups past due, counted per customer."""
    return dict(session.exec(
        select(Reminder.customer_id, func.count())
        .where(*overdue_followups(now), Reminder.customer_id.in_(scoped_ids), Reminder.workspace_id == workspace_id)
        .group_by(Reminder.customer_id)
    ).all())


def _health(workspace: Workspace, customer: Customer, contacts: dict[int, list], answers: dict[int, list],
            overdue: dict[int, int], now: datetime, touches: dict[int, list]) -> Health:
    chain = contacts.get(customer.id, [])
    inputs = Inputs(
        cadence_days=cadence_days(workspace, customer.tier), last_touch_at=customer.last_touch_at,
        created_at=customer.created_at, org_relationship=customer.org_relationship,
        contacts=[(role, level, name) for role, level, name, _slack_user, _id in chain],
        answers=answers.get(customer.id, []), overdue_followups=overdue.get(customer.id, 0),
        coverage=coverage_svc.compute(touches.get(customer.id, []),
                                      [(contact_id, name, role, level) for role, level, name, _u, contact_id in chain]),
    )
    return compute(inputs, weights=workspace.health_weights, now=now)


def save_snapshots(session: Session, *, workspace: Workspace, scored: list[Scored], now: datetime) -> int:
    """This week's snapshot per customer, replaced when recomputed within the week (kept weekly for trends).
    Written in bulk (one executemany to insert, one to update): an ORM object per customer took seconds for
    10,000 customers (SQLModel's constructor inspects default factories on every instance, and the flush
    inserted row by row to fetch ids nobody reads)."""
    week = week_start(now, workspace.timezone)
    existing = dict(session.exec(
        select(HealthSnapshot.customer_id, HealthSnapshot.id)
        .where(HealthSnapshot.workspace_id == workspace.id, HealthSnapshot.week_start == week)
    ).all())
    new, changed = [], []
    for item in scored:
        values = {"score": item.health.score, "band": item.health.band,
                  "components": item.health.snapshot_components(), "reasons": item.health.reasons,
                  "computed_at": now}
        snapshot_id = existing.get(item.customer.id)
        if snapshot_id is None:
            new.append({"workspace_id": workspace.id, "customer_id": item.customer.id, "week_start": week, **values})
        else:
            changed.append({"id": snapshot_id, **values})
    if new:
        session.exec(insert(HealthSnapshot), params=new)
    if changed:
        session.exec(update(HealthSnapshot), params=changed)
    return len(scored)
