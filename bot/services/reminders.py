"""Follow-ups and revisits: created, claimed once by one process, delivered, done or snoozed, never lost.

The rows are the truth. A dispatcher in every process claims due rows atomically with a lease
(PostgreSQL: FOR UPDATE SKIP LOCKED; SQLite: the write lock of BEGIN IMMEDIATE), so a reminder is sent by
one process only, and the claims of a process that died return to the queue when their lease runs out.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, bindparam, case, literal, or_, update
from sqlmodel import Session, select

from bot.errors import BadInput, NotFound, PermissionDenied
from bot.services.names import clean_text
from bot.services.workspaces import not_paused
from bot.services.worktime import WorkingHours
from models import Customer, Reminder, Workspace
from models.enums import ReminderKind, ReminderStatus, Tier

NOTE_MAX = 1000
LEASE = timedelta(minutes=2)
MAX_ATTEMPTS = 8
LEASE_EXPIRED = "lease_expired"  # last_error of a row taken back from a claimant that did not finish
LATE_AFTER = timedelta(minutes=15)  # delivered this long after it was due: say it is late
ESCALATE_AFTER_WORKING_DAYS = 2
OPEN = (ReminderStatus.pending, ReminderStatus.claimed, ReminderStatus.delivered)


def overdue_followups(now: datetime) -> list:
    """What makes a follow-up overdue: still open, past due, and past its delivery time — a follow-up due on a
    Saturday that Rapport delivers on Monday morning, or one snoozed, is not overdue before the owner was told
    (the card, lists, health and the digest)."""
    return [Reminder.kind == ReminderKind.followup, Reminder.status.in_(OPEN), Reminder.due_at <= now,
            Reminder.deliver_at <= now]
# Slack errors that retrying cannot fix: the reminder fails with its reason and a manager is told.
PERMANENT_ERRORS = {
    "user_not_found", "account_inactive", "channel_not_found", "is_archived", "not_in_channel",
    "user_disabled", "cannot_dm_bot", "invalid_auth", "not_authed", "token_revoked", "missing_scope",
    "invalid_blocks", "msg_too_long", "no_text",
}


def backoff(attempts: int) -> timedelta:
    """30 s, 1 min, 2 min … capped at 30 min."""
    return timedelta(seconds=min(30 * 2 ** max(attempts - 1, 0), 1800))


# -- creating and changing ----------------------------------------------------------------------------------


def create_followup(
    session: Session,
    *,
    workspace: Workspace,
    owner_id: str,
    hours: WorkingHours,
    due_at: datetime,
    note: str,
    by: str,
    now: datetime,
    customer: Customer | None = None,
    source: str = "manual",
    survey_response_id: int | None = None,
) -> Reminder:
    note = clean_text(note, what="note", limit=NOTE_MAX, required=False)
    deliver_at = hours.move_into(due_at)
    reminder = Reminder(
        workspace_id=workspace.id,
        customer_id=customer.id if customer else None,
        kind=ReminderKind.followup,
        source=source,
        owner_id=owner_id,
        note=note,
        due_at=due_at,
        deliver_at=deliver_at,
        next_attempt_at=deliver_at,
        created_by=by,
        created_at=now,
        survey_response_id=survey_response_id,
    )
    session.add(reminder)
    session.flush()
    return reminder


def get_reminder(session: Session, *, workspace_id: str, reminder_id: int | None) -> Reminder:
    reminder = session.get(Reminder, reminder_id) if reminder_id is not None else None
    if reminder is None or reminder.workspace_id != workspace_id:
        raise NotFound("That reminder no longer exists.")
    return reminder


def _ensure_owner(reminder: Reminder, user_id: str) -> None:
    if reminder.owner_id != user_id:
        raise PermissionDenied("This reminder belongs to someone else.", allowed=[reminder.owner_id])


def complete(session: Session, *, reminder: Reminder, user_id: str, now: datetime, outcome: str = "done") -> bool:
    """Done (or cancelled). False when it was already closed (a second click changes nothing)."""
    _ensure_owner(reminder, user_id)
    if reminder.status not in OPEN:
        return False
    reminder.status = ReminderStatus.cancelled if outcome == "cancelled" else ReminderStatus.done
    reminder.outcome, reminder.done_at = outcome, now
    session.add(reminder)
    return True


def snooze(session: Session, *, reminder: Reminder, user_id: str, hours: WorkingHours, delay: timedelta,
           now: datetime) -> datetime:
    """Back to the queue, due again after `delay` (moved into working hours)."""
    _ensure_owner(reminder, user_id)
    if reminder.status not in OPEN:
        raise BadInput("This reminder is already closed.")
    reminder.due_at = now + delay
    reminder.deliver_at = reminder.next_attempt_at = hours.move_into(reminder.due_at)
    reminder.status, reminder.outcome = ReminderStatus.pending, f"snoozed {delay.days}d"
    reminder.claimed_by = reminder.lease_expires_at = None
    reminder.attempts, reminder.escalated_at, reminder.late = 0, None, False
    session.add(reminder)
    return reminder.deliver_at


def open_reminders(session: Session, *, workspace_id: str, owner_id: str, limit: int = 20):
    return session.exec(
        select(Reminder, Customer.name)
        .outerjoin(Customer, Customer.id == Reminder.customer_id)
        .where(Reminder.workspace_id == workspace_id, Reminder.owner_id == owner_id, Reminder.status.in_(OPEN))
        .order_by(Reminder.due_at)
        .limit(limit)
    ).all()


def cancel_revisits(session: Session, *, customer_id: int, now: datetime) -> None:
    """A logged touch moves the revisit: an undelivered revisit for the customer is no longer due."""
    session.exec(
        update(Reminder)
        .where(Reminder.customer_id == customer_id, Reminder.kind == ReminderKind.revisit,
               Reminder.status == ReminderStatus.pending)
        .values(status=ReminderStatus.cancelled, outcome="touched", done_at=now)
    )


@dataclass
class Handover:
    followups: int  # open follow-ups on the account now the new owner's
    revisits: int
    kept: int  # follow-ups left with the previous owner (keep-followups)


def hand_over(session: Session, *, customer: Customer, previous: str | None, new: str, keep_followups: bool,
              now: datetime) -> Handover:
    """An owner change moves the account's promises: its revisits, and (unless kept) the previous owner's open
    follow-ups on it. One already delivered to the previous owner is delivered again, to the new one; one being
    delivered right now (claimed) finishes where it was going."""
    def move(kind: str) -> int:
        rows = session.exec(select(Reminder).where(
            Reminder.customer_id == customer.id, Reminder.kind == kind, Reminder.owner_id == previous,
            Reminder.status.in_((ReminderStatus.pending, ReminderStatus.delivered)))).all()
        for row in rows:
            row.owner_id = new
            if row.status == ReminderStatus.delivered:
                row.status, row.deliver_at, row.next_attempt_at = ReminderStatus.pending, now, now
                row.delivered_at = row.dm_channel = row.message_ts = None
                row.attempts, row.escalated_at = 0, None
            session.add(row)
        return len(rows)

    if previous is None:
        return Handover(followups=0, revisits=0, kept=0)
    revisits = move(ReminderKind.revisit)
    if keep_followups:
        kept = len(session.exec(select(Reminder.id).where(
            Reminder.customer_id == customer.id, Reminder.kind == ReminderKind.followup,
            Reminder.owner_id == previous, Reminder.status.in_(OPEN))).all())
        return Handover(followups=0, revisits=revisits, kept=kept)
    return Handover(followups=move(ReminderKind.followup), revisits=revisits, kept=0)


# -- revisits ---------------------------------------------------------------------------------------------


REVISIT_HORIZON = timedelta(hours=36)


def _revisits_to_plan(now: datetime, horizon: timedelta, limit: int):
    open_revisit = (
        select(Reminder.id)
        .where(Reminder.customer_id == Customer.id, Reminder.kind == ReminderKind.revisit,
               Reminder.status.in_(OPEN))
        .exists()
    )
    return (
        select(Customer.id, Customer.workspace_id, Customer.owner_id, Customer.revisit_due_at)
        .where(Customer.revisit_due_at <= now + horizon, Customer.owner_id.is_not(None),
               Customer.stage != "churned", ~open_revisit, not_paused(Customer.workspace_id))
        .order_by(Customer.revisit_due_at)
        .limit(limit)
    )


def revisit_owners(session: Session, *, now: datetime, horizon: timedelta = REVISIT_HORIZON,
                   limit: int = 5000) -> set[tuple[str, str]]:
    """(workspace, owner) of the revisits plan_revisits would plan now: their time zones must be known first,
    or the agenda is planned for the workspace's morning instead of the owner's."""
    return {(w, o) for _, w, o, _ in session.exec(_revisits_to_plan(now, horizon, limit)).all()}


def plan_revisits(session: Session, *, now: datetime, hours_for, horizon: timedelta = REVISIT_HORIZON,
                  limit: int = 5000) -> int:
    """Rows for customers whose revisit falls due soon and that have no open revisit yet, each to be
    delivered at the start of the owner's working day it falls on, so one morning agenda carries them all."""
    due = session.exec(_revisits_to_plan(now, horizon, limit)).all()
    for customer_id, workspace_id, owner_id, due_at in due:
        hours: WorkingHours = hours_for(workspace_id, owner_id)
        morning = hours.next_start(due_at.astimezone(hours.tz).date())
        deliver_at = morning if morning >= now else hours.move_into(now)
        session.add(Reminder(
            workspace_id=workspace_id, customer_id=customer_id, kind=ReminderKind.revisit, source="revisit",
            owner_id=owner_id, note="", due_at=due_at, deliver_at=deliver_at, next_attempt_at=deliver_at,
            created_at=now,
        ))
    return len(due)


# -- the dispatcher's side --------------------------------------------------------------------------------


@dataclass
class Claim:
    reminder: Reminder
    customer: Customer | None


def claim_due(session: Session, *, now: datetime, process: str, limit: int = 100,
              lease: timedelta = LEASE) -> list[Claim]:
    """Atomically take up to `limit` due rows (or rows whose claimant's lease ran out) for this process."""
    due = or_(
        and_(Reminder.status == ReminderStatus.pending, Reminder.next_attempt_at <= now),
        and_(Reminder.status == ReminderStatus.claimed, Reminder.lease_expires_at < now),
    )
    # By owner, so that one owner's backlog after an outage lands in one claim and goes out as one summary.
    # A paused workspace's rows wait where they are (Slack refuses its token): skipped in this same statement.
    candidates = select(Reminder.id).where(due, not_paused(Reminder.workspace_id)).order_by(Reminder.workspace_id, Reminder.owner_id,
                                                         Reminder.next_attempt_at).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        candidates = candidates.with_for_update(skip_locked=True)
    # Pick the ids first (locked until commit), then update them. As a subquery of the UPDATE, PostgreSQL
    # may plan a nested-loop semi join that re-runs the LIMIT once per row and claims every due row.
    picked = session.exec(candidates).all()
    if not picked:
        return []
    # A row taken back from a claimant whose lease ran out counts as an attempt with an unknown outcome:
    # it may have been posted just before that process died, so the dispatcher looks before posting it.
    reclaimed = Reminder.status == ReminderStatus.claimed
    ids = session.exec(
        update(Reminder)
        .where(Reminder.id.in_(picked), due)
        .values(status=ReminderStatus.claimed, claimed_by=process, lease_expires_at=now + lease,
                attempts=case((reclaimed, Reminder.attempts + 1), else_=Reminder.attempts),
                last_error=case((reclaimed, literal(LEASE_EXPIRED)), else_=Reminder.last_error))
        .returning(Reminder.id)
    ).scalars().all()
    if not ids:
        return []
    rows = session.exec(
        select(Reminder, Customer).outerjoin(Customer, Customer.id == Reminder.customer_id)
        .where(Reminder.id.in_(ids)).order_by(Reminder.owner_id, Reminder.deliver_at)
    ).all()
    return [Claim(reminder=r, customer=c) for r, c in rows]


def release(session: Session, *, reminder_id: int, process: str, deliver_at: datetime) -> None:
    """Give a claimed row back, to be sent at `deliver_at` (moved into the owner's working hours)."""
    session.exec(
        update(Reminder)
        .where(Reminder.id == reminder_id, Reminder.claimed_by == process, Reminder.status == ReminderStatus.claimed)
        .values(status=ReminderStatus.pending, claimed_by=None, lease_expires_at=None,
                deliver_at=deliver_at, next_attempt_at=deliver_at)
    )


def record_deliveries(session: Session, *, deliveries: list[tuple[list[int], str, str]], process: str,
                      now: datetime) -> int:
    """Sent DMs (reminder ids, channel, ts) as delivered, in one statement run for every row (the ORM's
    per-statement work would cost more than the DMs themselves). Only the claimant records delivery: a process
    whose lease ran out finds nothing to update."""
    rows = [{"b_id": reminder_id, "b_channel": channel, "b_ts": ts}
            for reminder_ids, channel, ts in deliveries for reminder_id in reminder_ids]
    if not rows:
        return 0
    table = Reminder.__table__
    result = session.connection().execute(
        update(table)
        .where(table.c.id == bindparam("b_id"), table.c.claimed_by == process,
               table.c.status == ReminderStatus.claimed)
        .values(status=ReminderStatus.delivered, delivered_at=now, dm_channel=bindparam("b_channel"),
                message_ts=bindparam("b_ts"), lease_expires_at=None, late=table.c.deliver_at < now - LATE_AFTER,
                last_error=None),
        rows,
    )
    return result.rowcount or 0


def mark_failed(session: Session, *, reminder_ids: list[int], process: str, now: datetime, error: str,
                retry_after: float | None = None) -> tuple[list[int], list[int]]:
    """A Slack error: permanent → failed with its reason; otherwise back to the queue with back-off.

    Returns (failed ids, retried ids)."""
    rows = session.exec(
        select(Reminder).where(Reminder.id.in_(reminder_ids), Reminder.claimed_by == process,
                               Reminder.status == ReminderStatus.claimed)
    ).all()
    failed, retried = [], []
    for reminder in rows:
        reminder.attempts += 1
        reminder.last_error = error
        reminder.claimed_by = reminder.lease_expires_at = None
        if error in PERMANENT_ERRORS or reminder.attempts >= MAX_ATTEMPTS:
            reminder.status = ReminderStatus.failed
            failed.append(reminder.id)
        else:
            wait = timedelta(seconds=retry_after) if retry_after else backoff(reminder.attempts)
            reminder.status, reminder.next_attempt_at = ReminderStatus.pending, now + wait
            retried.append(reminder.id)
        session.add(reminder)
    return failed, retried


def due_escalations(session: Session, *, now: datetime, hours_for) -> list[Claim]:
    """Key-account follow-ups delivered and left untouched for 2 working days of their owner."""
    rows = session.exec(
        select(Reminder, Customer)
        .join(Customer, Customer.id == Reminder.customer_id)
        .where(Reminder.status == ReminderStatus.delivered, Reminder.kind == ReminderKind.followup,
               Reminder.escalated_at.is_(None), Customer.tier == Tier.key, not_paused(Reminder.workspace_id),
               Reminder.delivered_at <= now - timedelta(days=ESCALATE_AFTER_WORKING_DAYS))
        .limit(500)
    ).all()
    due = []
    for reminder, customer in rows:
        hours: WorkingHours = hours_for(reminder.workspace_id, reminder.owner_id)
        if hours.add_working_days(reminder.delivered_at, ESCALATE_AFTER_WORKING_DAYS) <= now:
            due.append(Claim(reminder=reminder, customer=customer))
    return due


def mark_escalated(session: Session, *, reminder_id: int, now: datetime) -> bool:
    """Claim the escalation: true for the one process that gets to send it."""
    result = session.exec(
        update(Reminder).where(Reminder.id == reminder_id, Reminder.escalated_at.is_(None)).values(escalated_at=now)
    )
    return bool(result.rowcount)


def failed_unreported(session: Session, *, limit: int = 100) -> list[Reminder]:
    return list(session.exec(
        select(Reminder)
        .where(Reminder.status == ReminderStatus.failed, Reminder.failure_reported_at.is_(None),
               not_paused(Reminder.workspace_id))
        .limit(limit)
    ).all())


def mark_failure_reported(session: Session, *, reminder_id: int, now: datetime) -> bool:
    result = session.exec(
        update(Reminder).where(Reminder.id == reminder_id, Reminder.failure_reported_at.is_(None))
        .values(failure_reported_at=now)
    )
    return bool(result.rowcount)




def in_message(session: Session, *, channel: str, ts: str) -> list[tuple[Reminder, Customer | None]]:
    """The reminders a delivered DM carries, to redraw it after a click."""
    return list(session.exec(
        select(Reminder, Customer).outerjoin(Customer, Customer.id == Reminder.customer_id)
        .where(Reminder.dm_channel == channel, Reminder.message_ts == ts).order_by(Reminder.id)
    ).all())
