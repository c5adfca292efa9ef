"""Reminder delivery: claim due rows, send DMs (one agenda per owner for revisits), record what happened.

Everything here is about talking to Slack; what is due, who claims it and what a failure means are decided
by bot.services.reminders.
"""

import logging
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from slack_sdk.errors import SlackApiError

from bot.db import session_scope
from bot.runtime import Runtime
from bot.services import reminders as svc
from bot.services.worktime import hours_lookup
from bot.slack import people
from bot.slack.render import render
from bot.slack.text import escape_mrkdwn
from models import Workspace
from models.enums import ReminderKind

log = logging.getLogger(__name__)

LATE_SUMMARY_OVER = 5  # an owner with more late follow-ups than this gets one summary, not a flood
AGENDA_MAX_LINES = 40  # one section per line, within the 50 blocks of a message
METADATA_TYPE = "rapport_reminder"
UNCERTAIN = {"timeout", "connection_error", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}


class RateLimiter:
    """At most `per_second` sends, shared by the sending threads (0: no limit)."""

    def __init__(self, per_second: float):
        self.interval = 1.0 / per_second if per_second > 0 else 0.0
        self._next = time.monotonic()
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            time.sleep(start - now)


@dataclass
class Message:
    """One DM to one owner carrying one or more reminders."""

    workspace_id: str
    owner_id: str
    claims: list[svc.Claim]
    kind: str  # single, agenda, late

    @property
    def ids(self) -> list[int]:
        return [claim.reminder.id for claim in self.claims]


@dataclass
class Report:
    sent: int = 0
    reminders: int = 0
    retried: int = 0
    failed: int = 0
    deferred: int = 0
    errors: dict[str, int] = field(default_factory=dict)


class Dispatcher:
    def __init__(self, runtime: Runtime):
        self.runtime = runtime
        self.limiter = RateLimiter(runtime.settings.delivery_rate)
        self.pool = ThreadPoolExecutor(runtime.settings.delivery_threads, thread_name_prefix="deliver")

    def __enter__(self) -> "Dispatcher":
        return self

    def __exit__(self, *exc) -> None:
        self.pool.shutdown(wait=True)

    # -- one tick ---------------------------------------------------------------------------------------

    def tick(self, *, batch: int = 100) -> Report:
        """Plan revisits, then claim and send due reminders batch by batch until none are due."""
        runtime = self.runtime
        report = Report()
        with session_scope(runtime.engine) as session:
            svc.plan_revisits(session, now=runtime.clock.now(), hours_for=hours_lookup(session))
        while True:
            now = runtime.clock.now()
            with session_scope(runtime.engine) as session:
                claims = svc.claim_due(session, now=now, process=runtime.process, limit=batch)
            if not claims:
                break
            messages = self._compose(claims, report)
            for outcome in self.pool.map(self._send, messages):
                report.sent += outcome[0]
                report.reminders += outcome[1]
                if outcome[2]:
                    report.errors[outcome[2]] = report.errors.get(outcome[2], 0) + 1
            if len(claims) < batch:
                break
        return report

    def _compose(self, claims: list[svc.Claim], report: Report) -> list[Message]:
        """Group claimed rows into DMs; rows whose owner is outside working hours now go back to wait."""
        now = self.runtime.clock.now()
        owners = {(c.reminder.workspace_id, c.reminder.owner_id) for c in claims}
        for workspace_id, owner_id in owners:  # keep each owner's time zone fresh (cached for hours)
            people.lookup(self.runtime, self.runtime.client, workspace_id=workspace_id, user_id=owner_id)
        by_owner: dict[tuple[str, str], list[svc.Claim]] = defaultdict(list)
        with session_scope(self.runtime.engine) as session:
            hours_for = hours_lookup(session, owners)
            for claim in claims:
                reminder = claim.reminder
                hours = hours_for(reminder.workspace_id, reminder.owner_id)
                # Recheck with the owner's current time zone (they may have moved): still ahead → wait.
                # A time already passed is delivered now, late if need be, rather than held again.
                deliver_at = hours.move_into(reminder.deliver_at)
                if deliver_at > now:
                    svc.release(session, reminder_id=reminder.id, process=self.runtime.process,
                                deliver_at=deliver_at)
                    report.deferred += 1
                    continue
                by_owner[(reminder.workspace_id, reminder.owner_id)].append(claim)
        messages = []
        for (workspace_id, owner_id), owned in by_owner.items():
            revisits = [c for c in owned if c.reminder.kind == ReminderKind.revisit]
            followups = [c for c in owned if c.reminder.kind != ReminderKind.revisit]
            late = [c for c in followups if c.reminder.deliver_at < now - svc.LATE_AFTER]
            for start in range(0, len(revisits), AGENDA_MAX_LINES):
                messages.append(Message(workspace_id, owner_id, revisits[start:start + AGENDA_MAX_LINES], "agenda"))
            if len(late) > LATE_SUMMARY_OVER:
                for start in range(0, len(followups), AGENDA_MAX_LINES):
                    messages.append(Message(workspace_id, owner_id, followups[start:start + AGENDA_MAX_LINES], "late"))
            else:
                messages.extend(Message(workspace_id, owner_id, [c], "single") for c in followups)
        return messages

    def render(self, message: Message) -> tuple[list, str]:
        now = self.runtime.clock.now()
        if message.kind == "single":
            claim = message.claims[0]
            blocks = render("reminder_dm.j2", reminder=claim.reminder, customer=claim.customer,
                            late=claim.reminder.deliver_at < now - svc.LATE_AFTER, state=None)
            about = f" about {claim.customer.name}" if claim.customer else ""
            return blocks, f"Reminder{about}: {claim.reminder.note or 'follow up'}"
        blocks = render("agenda_dm.j2", kind=message.kind, lines=[(c.reminder, c.customer) for c in message.claims])
        count = len(message.claims)
        if message.kind == "agenda":
            return blocks, f"{count} account{'s' if count > 1 else ''} to revisit today"
        return blocks, f"{count} reminders fell due while Rapport was offline"

    # -- sending --------------------------------------------------------------------------------------------

    def _send(self, message: Message) -> tuple[int, int, str | None]:
        runtime = self.runtime
        blocks, text = self.render(message)
        metadata = {"event_type": METADATA_TYPE, "event_payload": {"reminder_ids": message.ids}}
        if any(c.reminder.attempts for c in message.claims) and self._already_posted(message):
            return 0, len(message.ids), None
        self.limiter.wait()
        try:
            response = runtime.client.chat_postMessage(channel=message.owner_id, text=escape_mrkdwn(text), blocks=blocks,
                                                       metadata=metadata, unfurl_links=False)
        except SlackApiError as exc:
            error = exc.response.get("error") or f"http_{exc.response.status_code}"
            retry_after = _retry_after(exc)
            self._failed(message, error, retry_after)
            return 0, 0, error
        except Exception as exc:  # connection refused, reset, timeout after the client's own retries
            log.warning("sending reminder DM to %s failed: %s", message.owner_id, exc)
            self._failed(message, "timeout" if "timed out" in str(exc).lower() else "connection_error", None)
            return 0, 0, "connection_error"
        with session_scope(runtime.engine) as session:
            svc.mark_delivered(session, reminder_ids=message.ids, process=runtime.process, now=runtime.clock.now(),
                               channel=response["channel"], ts=response["ts"])
        return 1, len(message.ids), None

    def _failed(self, message: Message, error: str, retry_after: float | None) -> None:
        with session_scope(self.runtime.engine) as session:
            svc.mark_failed(session, reminder_ids=message.ids, process=self.runtime.process,
                            now=self.runtime.clock.now(), error=error, retry_after=retry_after)

    def _already_posted(self, message: Message) -> bool:
        """After an attempt whose outcome we could not see (a timeout), look for our own message in the DM
        before posting again, so a slow Slack does not get the reminder twice."""
        if not any(c.reminder.last_error in UNCERTAIN for c in message.claims):
            return False
        try:
            dm = self.runtime.client.conversations_open(users=message.owner_id)["channel"]["id"]
            history = self.runtime.client.conversations_history(channel=dm, limit=50, include_all_metadata=True)
        except Exception:  # cannot tell: post, and accept the small chance of a repeat
            return False
        for posted in history.get("messages", []):
            payload = (posted.get("metadata") or {}).get("event_payload") or {}
            if (posted.get("metadata") or {}).get("event_type") == METADATA_TYPE and \
                    set(payload.get("reminder_ids") or []) == set(message.ids):
                with session_scope(self.runtime.engine) as session:
                    svc.mark_delivered(session, reminder_ids=message.ids, process=self.runtime.process,
                                       now=self.runtime.clock.now(), channel=dm, ts=posted["ts"])
                return True
        return False

    # -- managers -------------------------------------------------------------------------------------------

    def escalate(self) -> int:
        """Raise key-account follow-ups left untouched, and failed reminders, to the managers (once each)."""
        runtime = self.runtime
        now = runtime.clock.now()
        told = 0
        with session_scope(runtime.engine) as session:
            escalations = svc.due_escalations(session, now=now, hours_for=hours_lookup(session))
            failures = svc.failed_unreported(session)
        for claim in escalations:
            with session_scope(runtime.engine) as session:
                if not svc.mark_escalated(session, reminder_id=claim.reminder.id, now=now):
                    continue  # another process raised it
                workspace = session.get(Workspace, claim.reminder.workspace_id)
            blocks = render("escalation.j2", reminder=claim.reminder, customer=claim.customer)
            told += self._tell_managers(workspace, blocks, f"Key-account follow-up untouched: {claim.customer.name}")
        for reminder in failures:
            with session_scope(runtime.engine) as session:
                if not svc.mark_failure_reported(session, reminder_id=reminder.id, now=now):
                    continue
                workspace = session.get(Workspace, reminder.workspace_id)
            blocks = render("delivery_failed.j2", reminder=reminder)
            told += self._tell_managers(workspace, blocks, "A reminder could not be delivered")
        return told

    def _tell_managers(self, workspace: Workspace, blocks: list, text: str) -> int:
        """The managers' channel when set, else a DM to each manager; with neither, the log says so."""
        targets = [workspace.digest_channel] if workspace.digest_channel else list(workspace.managers)
        if not targets:
            log.warning("workspace %s has no managers or managers' channel to tell: %s", workspace.id, text)
            return 0
        sent = 0
        for target in targets:
            try:
                self.runtime.client.chat_postMessage(channel=target, text=escape_mrkdwn(text), blocks=blocks)
                sent += 1
            except SlackApiError as exc:
                log.warning("could not tell managers at %s: %s", target, exc.response.get("error"))
        return sent


def _retry_after(exc: SlackApiError) -> float | None:
    headers = getattr(exc.response, "headers", None) or {}
    value = headers.get("Retry-After") or headers.get("retry-after")
    if isinstance(value, list):
        value = value[0]
    try:
        return float(value) if value else None
    except ValueError:
        return None
