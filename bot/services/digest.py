"""The weekly key-account digest as data: bands and their change, drops, at-risk accounts with the one thing
to do, overdue follow-ups by owner, the week's surveys, relationship moves, accounts without a survey, and
8-week sparklines. Built in a fixed number of queries, whatever the number of accounts."""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from bot.services import health as health_svc
from bot.services.reminders import overdue_followups
from bot.services.scores import survey_score
from models import (
    Contact,
    Customer,
    DigestRun,
    HealthSnapshot,
    RelationshipChange,
    Reminder,
    Survey,
    SurveyResponse,
    Workspace,
)
from models.enums import DigestStatus, HealthBand, Stage, Tier

SPARK = "▁▂▃▄▅▆▇█"
WEEKS = 8
NO_SURVEY_DAYS = 90
TOP_DROPS = 5
BANDS = (HealthBand.healthy, HealthBand.watch, HealthBand.at_risk, HealthBand.insufficient)
ORDER = {
    "tier": ["longtail", "general", "key"],
    "org": ["vendor", "supplier", "key_supplier", "strategic_partner"],
    "stage": ["churned", "prospect", "converting", "active", "expanding"],
}


def sparkline(values: list[float | None]) -> str:
    """▁…█ on the absolute 0–100 scale, so lines compare with each other; · where a week had no score."""
    return "".join("·" if v is None else SPARK[min(int(v / 100 * len(SPARK)), len(SPARK) - 1)] for v in values)


def period_of(moment: datetime, zone: str) -> str:
    """The ISO week `moment` falls in, in the workspace's own time zone `zone` (its Monday 09:00 at UTC+10 is
    still Sunday in UTC)."""
    year, week, _ = moment.astimezone(ZoneInfo(zone)).isocalendar()
    return f"{year}-W{week:02d}"


def due_moment(workspace: Workspace, now: datetime) -> datetime:
    """The most recent digest time (weekday + time in the workspace zone) at or before now."""
    tz = ZoneInfo(workspace.timezone)
    local = now.astimezone(tz)
    hour, minute = (int(part) for part in workspace.digest_time.split(":"))
    days_back = (local.weekday() - workspace.digest_weekday) % 7
    candidate = (local - timedelta(days=days_back)).replace(hour=hour, minute=minute, second=0, microsecond=0)
    if candidate > local:
        candidate -= timedelta(days=7)
    return candidate.astimezone(now.tzinfo)


def one_thing_to_do(item: health_svc.Scored, overdue: int) -> str:
    """The single most useful action for an account, from its weakest component."""
    h = item.health
    if h.score is None:
        return "Record the decision chain and log your touches: there is too little data to score it."
    weakest = min((c.value, name) for name, c in h.components.items() if c.value is not None)[1]
    reason = h.components[weakest].reason
    return {
        "engagement": f"Visit or call — {reason}.",
        "satisfaction": f"Call them about the survey — {reason}.",
        "relationship": f"Work on the relationship — {reason}.",
        "followup": f"Close the overdue follow-up{'s' if overdue != 1 else ''} — {reason}.",
    }[weakest]


@dataclass
class AccountLine:
    customer: Customer
    score: float | None
    band: str
    previous: float | None
    trend: str
    sparkline: str
    reasons: list[str]
    moved: list[str]
    action: str

    @property
    def drop(self) -> float:
        if self.score is None or self.previous is None:
            return 0.0
        return self.previous - self.score


@dataclass
class SurveyLine:
    customer: Customer
    kind: str
    score: float | None
    answers: int
    comments: list[tuple[int, str]]


@dataclass
class Move:
    customer: Customer
    field: str
    contact: str | None
    before: str | None
    after: str
    by: str
    up: bool


@dataclass
class Digest:
    period: str
    total: int
    bands: dict[str, int]
    band_changes: dict[str, int]
    accounts: list[AccountLine]
    drops: list[AccountLine]
    at_risk: list[AccountLine]
    overdue_by_owner: list[tuple[str, list[tuple[Customer, int]]]]
    surveys: list[SurveyLine]
    upgrades: list[Move]
    downgrades: list[Move]
    no_survey: list[Customer]
    no_owner: list[Customer] = field(default_factory=list)  # nobody gets their revisits
    churned: list[Customer] = field(default_factory=list)  # key accounts that churned this week
    portfolio: str = ""


def _direction(change: RelationshipChange) -> bool | None:
    if change.from_value is None:
        return None
    if change.field == "level":
        return int(change.to_value) > int(change.from_value)
    order = ORDER.get(change.field)
    if order is None or change.from_value not in order or change.to_value not in order:
        return None
    return order.index(change.to_value) > order.index(change.from_value)


def build_digest(session: Session, *, workspace: Workspace, now: datetime,
                 scored: list[health_svc.Scored] | None = None, period: str | None = None) -> Digest:
    """`scored`: the whole workspace's health as the weekly job just computed it, so the key accounts are not
    scored a second time (a third of the job's time with 10,000 customers)."""
    if scored is None:
        scored = health_svc.score_workspace(session, workspace=workspace, now=now, tier=Tier.key)
    # A churned account has no health to watch: it leaves the bands and is named once, the week it churned.
    scored = [item for item in scored if item.customer.tier == Tier.key and item.customer.stage != Stage.churned]
    key_ids = select(Customer.id).where(Customer.workspace_id == workspace.id, Customer.tier == Tier.key)
    week = health_svc.week_start(now, workspace.timezone)
    history: dict[int, dict] = defaultdict(dict)
    for customer_id, week_start, score in session.exec(
        select(HealthSnapshot.customer_id, HealthSnapshot.week_start, HealthSnapshot.score)
        .where(HealthSnapshot.workspace_id == workspace.id, HealthSnapshot.customer_id.in_(key_ids),
               HealthSnapshot.week_start >= week - timedelta(weeks=WEEKS - 1), HealthSnapshot.week_start < week)
    ).all():
        history[customer_id][week_start] = score
    weeks = [week - timedelta(weeks=n) for n in range(WEEKS - 1, 0, -1)]
    overdue_rows = session.exec(
        select(Reminder.owner_id, Reminder.customer_id, func.count())
        .where(Reminder.workspace_id == workspace.id, *overdue_followups(now), Reminder.customer_id.in_(key_ids))
        .group_by(Reminder.owner_id, Reminder.customer_id)
    ).all()
    overdue_by_customer: dict[int, int] = defaultdict(int)
    for _owner, customer_id, n in overdue_rows:
        overdue_by_customer[customer_id] += n

    accounts = []
    for item in scored:
        past = history.get(item.customer.id, {})
        previous_score = item.previous.score if item.previous else None
        accounts.append(AccountLine(
            customer=item.customer, score=item.health.score, band=item.health.band, previous=previous_score,
            trend=health_svc.trend(item.health.score, previous_score),
            sparkline=sparkline([past.get(w) for w in weeks] + [item.health.score]),
            reasons=item.health.reasons,
            moved=health_svc.moved(item.health, item.previous.components if item.previous else None,
                                   workspace.health_weights),
            action=one_thing_to_do(item, overdue_by_customer.get(item.customer.id, 0)),
        ))
    accounts.sort(key=lambda a: (a.score is None, a.score if a.score is not None else 0, a.customer.name_key))
    bands = {band: sum(1 for a in accounts if a.band == band) for band in BANDS}
    before = {band: sum(1 for item in scored if item.previous and item.previous.band == band) for band in BANDS}
    have_previous = any(item.previous for item in scored)
    band_changes = {band: bands[band] - before[band] for band in BANDS} if have_previous else {}
    drops = sorted((a for a in accounts if a.drop >= health_svc.TREND_THRESHOLD), key=lambda a: -a.drop)[:TOP_DROPS]
    at_risk = [a for a in accounts if a.band == HealthBand.at_risk]

    by_id = {a.customer.id: a.customer for a in accounts}
    owners: dict[str, list[tuple[Customer, int]]] = defaultdict(list)
    for owner, customer_id, n in overdue_rows:
        if customer_id in by_id:
            owners[owner].append((by_id[customer_id], n))
    for accounts_of_owner in owners.values():  # the database returns groups in any order: most overdue first
        accounts_of_owner.sort(key=lambda item: (-item[1], item[0].name_key))
    overdue_by_owner = sorted(owners.items(), key=lambda kv: (-sum(n for _, n in kv[1]), kv[0]))

    week_ago = now - timedelta(days=7)
    survey_rows = session.exec(
        select(Survey.id, Survey.customer_id, Survey.kind, SurveyResponse.score, SurveyResponse.comment)
        .join(SurveyResponse, SurveyResponse.survey_id == Survey.id)
        .where(Survey.workspace_id == workspace.id, Survey.customer_id.in_(key_ids),
               SurveyResponse.updated_at >= week_ago)
    ).all()
    per_survey: dict[int, list] = defaultdict(list)
    for survey_id, customer_id, kind, score, comment in survey_rows:
        per_survey[survey_id].append((customer_id, kind, score, comment))
    surveys = []
    for rows in per_survey.values():
        customer_id, kind = rows[0][0], rows[0][1]
        scores = [r[2] for r in rows]
        surveys.append(SurveyLine(customer=by_id[customer_id], kind=kind, score=survey_score(kind, scores),
                                  answers=len(scores), comments=[(r[2], r[3]) for r in rows if r[3]]))
    surveys.sort(key=lambda s: (s.score if s.score is not None else 0))

    changes = session.exec(
        select(RelationshipChange, Contact.name)
        .outerjoin(Contact, Contact.id == RelationshipChange.contact_id)
        .where(RelationshipChange.workspace_id == workspace.id, RelationshipChange.at >= week_ago,
               RelationshipChange.field.in_(("level", "tier", "org", "stage")),
               RelationshipChange.customer_id.in_(key_ids))
        .order_by(RelationshipChange.at)
    ).all()
    upgrades, downgrades = [], []
    for change, contact_name in changes:
        direction = _direction(change)
        if direction is None or change.customer_id not in by_id:
            continue
        move = Move(by_id[change.customer_id], change.field, contact_name, change.from_value, change.to_value,
                    change.by_user, direction)
        (upgrades if direction else downgrades).append(move)

    last_survey = dict(session.exec(
        select(Survey.customer_id, func.max(Survey.created_at))
        .where(Survey.workspace_id == workspace.id, Survey.customer_id.in_(key_ids))
        .group_by(Survey.customer_id)
    ).all())
    cutoff = now - timedelta(days=NO_SURVEY_DAYS)
    # Counted from the account's own start: one created last week has not gone 90 days without a survey.
    no_survey = [a.customer for a in accounts if a.customer.created_at <= cutoff
                 and (last_survey.get(a.customer.id) is None or last_survey[a.customer.id] < cutoff)]
    churned_ids = session.exec(
        select(RelationshipChange.customer_id)
        .where(RelationshipChange.workspace_id == workspace.id, RelationshipChange.field == "stage",
               RelationshipChange.to_value == Stage.churned.value, RelationshipChange.at >= week_ago,
               RelationshipChange.customer_id.in_(key_ids))
    ).all()
    churned = sorted(session.exec(
        select(Customer).where(Customer.id.in_(set(churned_ids)), Customer.stage == Stage.churned)
    ).all(), key=lambda c: c.name_key) if churned_ids else []

    portfolio_weeks = [
        _mean([history[c][w] for c in history if history[c].get(w) is not None]) for w in weeks
    ] + [_mean([a.score for a in accounts if a.score is not None])]
    return Digest(
        period=period or period_of(now, workspace.timezone), total=len(accounts), bands=bands,
        band_changes=band_changes, accounts=accounts, drops=drops, at_risk=at_risk,
        overdue_by_owner=overdue_by_owner, surveys=surveys, upgrades=upgrades, downgrades=downgrades,
        no_survey=no_survey, no_owner=[a.customer for a in accounts if not a.customer.owner_id], churned=churned,
        portfolio=sparkline(portfolio_weeks),
    )


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


# -- exactly once per workspace per period ----------------------------------------------------------------

STALE_CLAIM = timedelta(minutes=10)
FIRST_RETRY, LAST_RETRY = timedelta(minutes=5), timedelta(hours=6)


def retry_after(attempts: int) -> timedelta:
    """5 min, 10 min, 20 min … at most 6 hours: a digest Slack keeps refusing is not rebuilt every pass."""
    return min(FIRST_RETRY * 2 ** max(attempts - 1, 0), LAST_RETRY)


def settled(session: Session, *, periods: set[str], now: datetime) -> set[tuple[str, str]]:
    """(workspace, period) of the runs claim_run would not hand out now: posted, being posted, or waiting for
    their next attempt. One query however many workspaces there are, so the scheduler's pass asks claim_run
    only about the digests still to post."""
    if not periods:
        return set()
    busy = (DigestRun.status == DigestStatus.claimed) & (DigestRun.claimed_at >= now - STALE_CLAIM)
    waiting = (DigestRun.status == DigestStatus.failed) & (DigestRun.next_attempt_at > now)
    rows = session.exec(select(DigestRun.workspace_id, DigestRun.period).where(
        DigestRun.period.in_(sorted(periods)), (DigestRun.status == DigestStatus.posted) | busy | waiting))
    return {(workspace_id, period) for workspace_id, period in rows}


def claim_run(session: Session, *, workspace_id: str, period: str, process: str, now: datetime) -> DigestRun | None:
    """The run for this period if this process may post it: it inserted the row, took over a claim left by a
    process that died mid-way, or retries a failed run whose wait is over. None when the digest is posted,
    someone else is posting it now, or its next attempt is not due."""
    run = session.exec(select(DigestRun).where(DigestRun.workspace_id == workspace_id,
                                               DigestRun.period == period)).first()
    if run is None:
        try:
            with session.begin_nested():
                run = DigestRun(workspace_id=workspace_id, period=period, claimed_by=process, claimed_at=now)
                session.add(run)
            return run
        except IntegrityError:  # another process inserted it first: it posts
            return None
    if run.status == DigestStatus.posted:
        return None
    abandoned = (DigestRun.status == DigestStatus.claimed) & (DigestRun.claimed_at < now - STALE_CLAIM)
    due_again = (DigestRun.status == DigestStatus.failed) & (
        DigestRun.next_attempt_at.is_(None) | (DigestRun.next_attempt_at <= now))
    taken = session.exec(
        update(DigestRun)
        .where(DigestRun.id == run.id, abandoned | due_again)
        .values(claimed_by=process, claimed_at=now, status=DigestStatus.claimed)
    )
    if not taken.rowcount:
        return None
    session.refresh(run)
    return run


def keep_claim(session: Session, *, run_id: int, process: str, now: datetime) -> bool:
    """The heartbeat of a posting run: its claim is renewed, so a long run (a big workspace scored, threads of
    many parts, Retry-After waits) is not taken over as abandoned while it is still posting; a process that died
    stops beating and its claim goes stale after STALE_CLAIM. False when the claim is no longer this process's
    (it was taken over, or finished): the run must stop posting."""
    kept = session.exec(
        update(DigestRun)
        .where(DigestRun.id == run_id, DigestRun.claimed_by == process, DigestRun.status == DigestStatus.claimed)
        .values(claimed_at=now)
    )
    return kept.rowcount == 1


def record_delivery(session: Session, *, run_id: int, destination: str, now: datetime, channel: str | None = None,
                    ts: str | None = None) -> None:
    """One destination served; the claim is renewed with it, so a long run (Retry-After waits) is not taken
    over as abandoned while it is still posting."""
    run = session.get(DigestRun, run_id, with_for_update=True)
    run.delivered_to = [*run.delivered_to, destination]
    run.claimed_at = now
    if channel and run.channel_id is None:
        run.channel_id, run.message_ts = channel, ts
    session.add(run)


def finish_run(session: Session, *, run_id: int, process: str, now: datetime, errors: dict[str, str],
               permanent: set[str]) -> dict[str, str]:
    """Close this process's attempt. `errors`: {destination: Slack error} of this attempt; those in `permanent`
    are given up for the period, the others make the run wait and try again. Returns the newly given up.
    Nothing is written when another process has taken the run over meanwhile: its attempt decides."""
    run = session.get(DigestRun, run_id, with_for_update=True)
    if run.claimed_by != process or run.status != DigestStatus.claimed:
        return {}
    given_up = {dest: error for dest, error in errors.items() if error in permanent}
    retry = {dest: error for dest, error in errors.items() if error not in permanent}
    run.given_up = {**run.given_up, **given_up}
    run.attempts += 1
    run.error = "; ".join(f"{dest}: {error}" for dest, error in {**run.given_up, **retry}.items()) or None
    if retry:
        run.status, run.next_attempt_at, run.posted_at = DigestStatus.failed, now + retry_after(run.attempts), None
    else:  # nothing left to try this period: posted where Slack let us
        run.status, run.next_attempt_at, run.posted_at = DigestStatus.posted, None, now
    session.add(run)
    return given_up


def subscribe(session: Session, *, workspace: Workspace, user_id: str, on: bool) -> bool:
    subscribers = [u for u in workspace.digest_subscribers if u != user_id] + ([user_id] if on else [])
    changed = set(subscribers) != set(workspace.digest_subscribers)
    workspace.digest_subscribers = subscribers
    session.add(workspace)
    return changed
