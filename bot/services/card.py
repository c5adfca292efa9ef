"""Read models for Slack surfaces: the customer card, the urgent-first account list, App Home."""

from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import and_, case, func
from sqlmodel import Session, select

from bot.services.chain import tree
from bot.services.coverage import Coverage, touches_of
from bot.services.coverage import compute as compute_coverage
from bot.services.customers import Partner, ecosystem, history
from bot.services.health import Health, score_customer, week_start
from bot.services.reminders import OPEN, overdue_followups
from bot.services.scores import format_score, survey_score
from models import (
    Contact,
    Customer,
    HealthSnapshot,
    Interaction,
    RelationshipChange,
    Reminder,
    Survey,
    SurveyResponse,
    Workspace,
)
from models.enums import ContactRole, ContactStatus, HealthBand, ReminderKind, Tier

ROLE_ORDER = {role.value: index for index, role in enumerate(ContactRole)}


@dataclass
class SurveyResult:
    kind: str
    score: float | None
    answers: int
    at: datetime

    @property
    def label(self) -> str:
        return format_score(self.kind, self.score, self.answers)


@dataclass
class Card:
    customer: Customer
    contacts: list[Contact]
    touches: list[Interaction]
    contact_names: dict[int, str]  # the decision chain by id: touches and changes name people with it
    followups: list[Reminder]
    latest_survey: SurveyResult | None
    health: Health
    changes: list[RelationshipChange]
    revisit_overdue: bool
    partners: list[Partner]
    chain: list[tuple[int, Contact]]  # the decision-chain map as a tree: (depth, person)
    rivals: dict[int, str]  # competitors people lean to, by id
    coverage: Coverage  # our people × their contacts, last 90 days


def customer_card(session: Session, *, workspace: Workspace, customer: Customer, now: datetime,
                  touches: int = 5, changes: int = 5) -> Card:
    contacts = list(session.exec(select(Contact).where(Contact.customer_id == customer.id)).all())
    contacts.sort(key=lambda c: (ROLE_ORDER.get(c.role, 99), -c.level, c.name_key))
    recent = list(
        session.exec(
            select(Interaction)
            .where(Interaction.customer_id == customer.id)
            .order_by(Interaction.at.desc(), Interaction.id.desc())
            .limit(touches)
        ).all()
    )
    # The next open follow-ups, each row also counting all the overdue ones (a window over the whole set, taken
    # before the limit): what health needs, without a query of its own. By the customer's reminder index; with
    # a workspace condition SQLite would pick the workspace-wide overdue index and scan every overdue reminder.
    overdue_all = func.sum(case((and_(Reminder.due_at <= now, Reminder.deliver_at <= now), 1), else_=0)).over()
    rows = session.exec(
        select(Reminder, overdue_all)
        .where(Reminder.customer_id == customer.id, Reminder.kind == ReminderKind.followup,
               Reminder.status.in_(OPEN))
        .order_by(Reminder.due_at)
        .limit(5)
    ).all()
    followups = [reminder for reminder, _overdue in rows]
    recent_changes = history(session, customer=customer, limit=changes)
    touches_now = touches_of(session, customer_id=customer.id, now=now)
    partners = ecosystem(session, customer=customer)
    rivals = {p.customer.id: p.customer.name for p in partners}
    missing = {c.leans_to_id for c in contacts if c.leans_to_id and c.leans_to_id not in rivals}
    if missing:
        rivals.update(session.exec(select(Customer.id, Customer.name).where(Customer.id.in_(missing))).all())
    return Card(
        customer=customer,
        contacts=contacts,
        touches=recent,
        contact_names={c.id: c.name for c in contacts},  # loaded above: touches and changes need no query
        followups=followups,
        latest_survey=latest_survey(session, customer_id=customer.id),
        health=score_customer(session, workspace=workspace, customer=customer, contacts=contacts,
                              overdue_followups=int(rows[0][1] or 0) if rows else 0, touches=touches_now, now=now),
        coverage=compute_coverage(touches_now, [(c.id, c.name, c.role, c.level) for c in contacts
                                                if c.status == ContactStatus.active]),
        changes=recent_changes,
        revisit_overdue=customer.revisit_due_at <= now,
        partners=partners,
        chain=tree(contacts),
        rivals=rivals,
    )


def latest_survey(session: Session, *, customer_id: int) -> SurveyResult | None:
    """The newest survey that has answers: its score, number of answers and date (one round trip)."""
    newest = (
        select(Survey.id)
        .where(Survey.customer_id == customer_id,
               select(SurveyResponse.id).where(SurveyResponse.survey_id == Survey.id).exists())
        .order_by(Survey.created_at.desc())
        .limit(1)
        .scalar_subquery()
    )
    rows = session.exec(
        select(Survey.kind, Survey.created_at, Survey.closed_at, SurveyResponse.score)
        .join(SurveyResponse, SurveyResponse.survey_id == Survey.id)
        .where(Survey.id == newest)
    ).all()
    if not rows:
        return None
    kind, created_at, closed_at = rows[0][:3]
    scores = [row[3] for row in rows]
    return SurveyResult(kind=kind, score=survey_score(kind, scores), answers=len(scores), at=closed_at or created_at)


@dataclass
class AccountLine:
    customer: Customer
    overdue_followups: int = 0
    reasons: list[str] = field(default_factory=list)
    score: float | None = None  # this week's health snapshot; None: not scored yet, or insufficient data
    band: str | None = None


LIST_SCOPES = ("mine", "key", "at-risk", "attention", "all")
PAGE = 20


@dataclass
class Page:
    lines: list[AccountLine]
    total: int
    offset: int = 0

    @property
    def more(self) -> bool:
        return self.offset + len(self.lines) < self.total


def list_accounts(session: Session, *, workspace: Workspace, scope: str, user_id: str, now: datetime,
                  limit: int = PAGE, offset: int = 0, owner_id: str | None = None,
                  tier: str | None = None) -> Page:
    """A page of accounts, with this week's score and band. `at-risk`: the at-risk band, lowest score first.
    Every other scope most urgent first: overdue follow-ups, then the longest past (or nearest to) its revisit;
    `attention` holds the at-risk and watch bands and any account with an overdue follow-up.

    Short queries instead of one ordering the whole workspace: the accounts with overdue follow-ups, then the
    rest in revisit order from the customer index, and the counts. No list of ids is sent: a workspace can have
    more overdue accounts than a statement can take parameters."""
    in_scope = [Customer.workspace_id == workspace.id]
    if scope == "mine":
        in_scope.append(Customer.owner_id == user_id)
    elif scope == "key":
        in_scope.append(Customer.tier == Tier.key)
    if owner_id:
        in_scope.append(Customer.owner_id == owner_id)
    if tier:
        in_scope.append(Customer.tier == tier)
    week = week_start(now, workspace.timezone)
    this_week = [HealthSnapshot.customer_id == Customer.id, HealthSnapshot.week_start == week]
    if scope == "at-risk":
        rows = session.exec(
            select(Customer, HealthSnapshot.score)
            .join(HealthSnapshot, and_(*this_week))
            .where(*in_scope, HealthSnapshot.band == HealthBand.at_risk)
            .order_by(HealthSnapshot.score.is_(None), HealthSnapshot.score, Customer.name_key, Customer.id)
            .offset(offset).limit(limit)
        ).all()
        total = session.exec(select(func.count(Customer.id)).join(HealthSnapshot, and_(*this_week))
                             .where(*in_scope, HealthSnapshot.band == HealthBand.at_risk)).one()
        return _page(session, [(customer, 0) for customer, _score in rows], total, offset, now, week)
    overdue = overdue_followups(now)
    if scope in ("all", "attention") and not owner_id:
        # Start from the workspace's overdue follow-ups (their own index). A rep's accounts or the key
        # accounts are better walked one by one; given the workspace condition SQLite would start from the
        # workspace's overdue follow-ups anyway: 22 ms instead of 3 with 6,700 of them.
        overdue.append(Reminder.workspace_id == workspace.id)
    is_overdue = select(Reminder.id).where(Reminder.customer_id == Customer.id, *overdue).exists()
    in_rest = list(in_scope)
    if scope == "attention":
        # Watch or at risk by this week's health snapshot (kept fresh by the scheduler), or overdue follow-ups.
        banded = Customer.id.in_(
            select(HealthSnapshot.customer_id)
            .where(HealthSnapshot.workspace_id == workspace.id,
                   HealthSnapshot.week_start == week,
                   HealthSnapshot.band.in_((HealthBand.at_risk, HealthBand.watch))))
        in_rest.append(banded)
    overdue_total = session.exec(select(func.count(Customer.id)).where(*in_scope, is_overdue)).one()
    rest_total = session.exec(select(func.count(Customer.id)).where(*in_rest, ~is_overdue)).one()
    rows: list = []
    if offset < overdue_total:
        rows = list(session.exec(
            select(Customer, func.count(Reminder.id).label("n"))
            .join(Reminder, Reminder.customer_id == Customer.id)
            .where(*in_scope, *overdue)
            .group_by(Customer.id)
            .order_by(func.count(Reminder.id).desc(), Customer.revisit_due_at, Customer.id)
            .offset(offset).limit(limit)
        ).all())
    if len(rows) < limit:
        rows += [(customer, 0) for customer in session.exec(
            select(Customer).where(*in_rest, ~is_overdue)
            .order_by(Customer.revisit_due_at, Customer.id)
            .offset(max(0, offset - overdue_total)).limit(limit - len(rows))).all()]
    return _page(session, rows, overdue_total + rest_total, offset, now, week)


def _page(session: Session, rows: list, total: int, offset: int, now: datetime, week: date) -> Page:
    ids = [customer.id for customer, _n in rows]
    scores = {customer_id: (score, band) for customer_id, score, band in session.exec(
        select(HealthSnapshot.customer_id, HealthSnapshot.score, HealthSnapshot.band)
        .where(HealthSnapshot.customer_id.in_(ids), HealthSnapshot.week_start == week)
    ).all()} if ids else {}
    lines = []
    for customer, overdue_n in rows:
        score, band_ = scores.get(customer.id, (None, None))
        line = AccountLine(customer=customer, overdue_followups=overdue_n, score=score, band=band_)
        if overdue_n:
            line.reasons.append(f"{overdue_n} overdue follow-up" + ("s" if overdue_n > 1 else ""))
        if customer.revisit_due_at <= now:
            days = (now - (customer.last_touch_at or customer.created_at)).days
            line.reasons.append(f"no touch for {days} days" if customer.last_touch_at else "never touched")
        lines.append(line)
    return Page(lines=lines, total=total, offset=offset)


@dataclass
class Home:
    accounts: list[AccountLine]
    total_accounts: int
    followups: list[tuple[Reminder, str | None]]  # (reminder, customer name)
    surveys: list[tuple[Survey, str, SurveyResult]]  # (survey, customer name, result)


def home(session: Session, *, workspace: Workspace, user_id: str, now: datetime) -> Home:
    """The user's App Home: their accounts most urgent first, their open follow-ups, recent survey results."""
    page = list_accounts(session, workspace=workspace, scope="mine", user_id=user_id, now=now, limit=15)
    accounts, total = page.lines, page.total
    followups = session.exec(
        select(Reminder, Customer.name)
        .outerjoin(Customer, Customer.id == Reminder.customer_id)
        .where(Reminder.workspace_id == workspace.id, Reminder.owner_id == user_id,
               Reminder.status.in_(OPEN))
        .order_by(Reminder.due_at)
        .limit(10)
    ).all()
    recent = session.exec(
        select(Survey, Customer.name)
        .join(Customer, Customer.id == Survey.customer_id)
        .where(Survey.workspace_id == workspace.id, Customer.owner_id == user_id)
        .order_by(Survey.created_at.desc())
        .limit(5)
    ).all()
    surveys = []
    if recent:
        ids = [survey.id for survey, _name in recent]
        scores: dict[int, list[int]] = {}
        for survey_id, score in session.exec(
            select(SurveyResponse.survey_id, SurveyResponse.score).where(SurveyResponse.survey_id.in_(ids))
        ).all():
            scores.setdefault(survey_id, []).append(score)
        for survey, name in recent:
            answers = scores.get(survey.id, [])
            surveys.append((survey, name, SurveyResult(kind=survey.kind, score=survey_score(survey.kind, answers),
                                                       answers=len(answers), at=survey.created_at)))
    return Home(accounts=accounts, total_accounts=total, followups=list(followups), surveys=surveys)
