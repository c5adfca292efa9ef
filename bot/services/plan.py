"""The relationship plan of a customer (seed 002: analyse the pressures, set measurable targets, plan the steps):
targets by a date or a quarter, the four pressures, and steps that are follow-ups of the reminders engine."""

import re
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import case
from sqlmodel import Session, select

from bot.errors import BadInput
from bot.services.customers import Actor, ensure_may_change, find_contact, record_change
from bot.services.names import clean_text
from bot.services.reminders import OPEN, create_followup
from bot.services.vocabulary import parse_choice
from bot.services.worktime import WorkingHours
from models import Contact, Customer, PlanPressure, PlanTarget, Reminder, Workspace
from models.enums import HistoryField, OrgRelationship, Pressure, RelationshipLevel, ReminderKind

STEP_SOURCE = "plan"  # Reminder.source of a plan's steps
PRESSURE_MAX = 500
STEP_MAX = 500
ORG_ORDER = [member.value for member in OrgRelationship]
_QUARTER = re.compile(r"(\d{4})-?q([1-4])")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
BY_EXAMPLE = "`by:2027-Q1` or `by:2027-03-31`"


def parse_by(text: str, *, today: date) -> tuple[date, str]:
    """A target's date: a day (`2027-03-31`) or the end of a quarter (`2027-Q1` → 31 March 2027), not past."""
    word = text.strip().lower()
    if match := _QUARTER.fullmatch(word):
        year, quarter = int(match.group(1)), int(match.group(2))
        end_month = quarter * 3
        first_of_next = date(year + end_month // 12, end_month % 12 + 1, 1)
        by, label = date.fromordinal(first_of_next.toordinal() - 1), f"{year}-Q{quarter}"
    elif _DATE.fullmatch(word):
        try:
            by = date.fromisoformat(word)
        except ValueError:
            raise BadInput(f"“{text}” is not a real date.", hint=f"Write {BY_EXAMPLE}.") from None
        label = by.isoformat()
    else:
        raise BadInput(f"I can't read “{text}” as a date or a quarter.", hint=f"Write {BY_EXAMPLE}.")
    if by < today:
        raise BadInput(f"{label} is in the past; a target is for a day to come.", hint=f"Write {BY_EXAMPLE}.")
    return by, label


def org_gap(current: str, target: str) -> int:
    """Steps of the org relationship still to climb (0 when reached or passed)."""
    return max(0, ORG_ORDER.index(target) - ORG_ORDER.index(current))


# -- writing ----------------------------------------------------------------------------------------------


def set_org_target(session: Session, *, workspace: Workspace, customer: Customer, value: str, by: str,
                   actor: Actor, now: datetime) -> PlanTarget:
    """The org relationship to reach by a date; replaces the previous one, both kept in history."""
    ensure_may_change(workspace, customer, actor)
    level = parse_choice(OrgRelationship, value).value
    by_date, label = parse_by(by, today=now.date())
    return _set_target(session, customer=customer, aim="org", contact=None, value=level, by_date=by_date,
                       label=label, actor=actor, now=now)


def set_contact_target(session: Session, *, workspace: Workspace, customer: Customer, contact_query: str,
                       level: str, by: str, actor: Actor, now: datetime) -> PlanTarget:
    """The key relationship level one person should be at by a date."""
    ensure_may_change(workspace, customer, actor)
    contact = find_contact(session, customer=customer, query=contact_query)
    value = str(int(parse_choice(RelationshipLevel, level)))
    by_date, label = parse_by(by, today=now.date())
    return _set_target(session, customer=customer, aim=f"contact:{contact.id}", contact=contact, value=value,
                       by_date=by_date, label=label, actor=actor, now=now)


def _set_target(session, *, customer, aim, contact, value, by_date, label, actor, now) -> PlanTarget:
    target = session.exec(select(PlanTarget).where(PlanTarget.customer_id == customer.id,
                                                   PlanTarget.aim == aim)).first()
    before = f"{target.value} by {target.by_label}" if target else None
    if target is None:
        target = PlanTarget(workspace_id=customer.workspace_id, customer_id=customer.id, aim=aim,
                            contact_id=contact.id if contact else None, value=value, by_date=by_date,
                            by_label=label, set_by=actor.user_id, set_at=now)
    target.value, target.by_date, target.by_label, target.set_by, target.set_at = value, by_date, label, \
        actor.user_id, now
    session.add(target)
    record_change(session, customer=customer, field=HistoryField.target, from_value=before,
                  to_value=f"{value} by {label}", actor=actor, now=now, reason=None, contact=contact)
    session.flush()
    return target


def set_pressure(session: Session, *, workspace: Workspace, customer: Customer, kind: str, text: str,
                 actor: Actor, now: datetime) -> PlanPressure:
    """One of the four pressures, in the rep's words; a new text replaces the old, both kept in history."""
    ensure_may_change(workspace, customer, actor)
    kind = parse_pressure(kind)
    text = clean_text(text, what="pressure", limit=PRESSURE_MAX)
    pressure = session.exec(select(PlanPressure).where(PlanPressure.customer_id == customer.id,
                                                       PlanPressure.kind == kind)).first()
    if pressure is None:
        pressure = PlanPressure(workspace_id=customer.workspace_id, customer_id=customer.id, kind=kind, text=text,
                                set_by=actor.user_id, set_at=now)
    pressure.text, pressure.set_by, pressure.set_at = text, actor.user_id, now
    session.add(pressure)
    record_change(session, customer=customer, field=HistoryField.pressure, from_value=None, to_value=kind,
                  actor=actor, now=now, reason=text)
    session.flush()
    return pressure


def parse_pressure(word: str) -> str:
    value = word.strip().lower()
    value = {"宏观环境": "macro", "宏观": "macro", "内部": "internal", "内部业务压力": "internal", "友商": "competitor",
             "友商竞争": "competitor", "competition": "competitor", "客户供应商挑战": "supplier",
             "供应商": "supplier"}.get(value, value)
    if value not in {p.value for p in Pressure}:
        raise BadInput(f"“{word}” is not one of the four pressures: macro, internal, competitor, supplier.",
                       hint="Example: `/crm plan acme pressure competitor Globex offers 20% off`.")
    return value


def add_step(session: Session, *, workspace: Workspace, customer: Customer, text: str, due_at: datetime,
             owner_id: str, hours: WorkingHours, actor: Actor, now: datetime) -> Reminder:
    """A step of the plan: a follow-up for its owner, delivered by the reminders engine, kept in history."""
    ensure_may_change(workspace, customer, actor)
    text = clean_text(text, what="step", limit=STEP_MAX)
    step = create_followup(session, workspace=workspace, owner_id=owner_id, hours=hours, due_at=due_at, note=text,
                           by=actor.user_id, now=now, customer=customer, source=STEP_SOURCE)
    record_change(session, customer=customer, field=HistoryField.step, from_value=None,
                  to_value=due_at.date().isoformat(), actor=actor, now=now, reason=text)
    return step


# -- reading ----------------------------------------------------------------------------------------------


@dataclass
class TargetLine:
    target: PlanTarget
    contact: Contact | None  # None: the org relationship
    current: str  # the org relationship or the level now
    gap: int  # steps still to climb; 0 when reached

    @property
    def reached(self) -> bool:
        return self.gap == 0


@dataclass
class Plan:
    customer: Customer
    targets: list[TargetLine]
    pressures: dict[str, PlanPressure]
    steps: list[Reminder]  # open steps first (by due date), then the latest done
    open_steps: int
    last_step_done_at: datetime | None
    pressure_kinds: list[str] = field(default_factory=lambda: [p.value for p in Pressure])

    @property
    def gap(self) -> int:
        return sum(line.gap for line in self.targets)

    @property
    def empty(self) -> bool:
        return not (self.targets or self.pressures or self.steps)


def plan_of(session: Session, *, customer: Customer, steps: int = 10) -> Plan:
    """The customer's plan as the plan view and the card read it (four queries)."""
    rows = session.exec(
        select(PlanTarget, Contact).outerjoin(Contact, Contact.id == PlanTarget.contact_id)
        .where(PlanTarget.customer_id == customer.id)
        .order_by(PlanTarget.contact_id.is_not(None), PlanTarget.by_date, PlanTarget.id)
    ).all()
    targets = [target_line(target, contact, customer) for target, contact in rows]
    pressures = {p.kind: p for p in session.exec(select(PlanPressure).where(PlanPressure.customer_id == customer.id))}
    is_open = Reminder.status.in_(OPEN)
    mine = [Reminder.customer_id == customer.id, Reminder.kind == ReminderKind.followup,
            Reminder.source == STEP_SOURCE]
    found = list(session.exec(
        select(Reminder).where(*mine)
        .order_by(case((is_open, 0), else_=1), case((is_open, Reminder.due_at), else_=None),
                  Reminder.done_at.desc(), Reminder.id.desc())
        .limit(steps)
    ).all())
    open_count = sum(1 for step in found if step.status in OPEN)
    done = [step.done_at for step in found if step.done_at and step.outcome != "cancelled"]
    return Plan(customer=customer, targets=targets, pressures=pressures, steps=found, open_steps=open_count,
                last_step_done_at=max(done) if done else None)


def target_line(target: PlanTarget, contact: Contact | None, customer: Customer) -> TargetLine:
    if contact is None:
        current = customer.org_relationship
        return TargetLine(target, None, current, org_gap(current, target.value))
    return TargetLine(target, contact, str(contact.level), max(0, int(target.value) - contact.level))
