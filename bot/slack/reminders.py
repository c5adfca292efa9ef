"""Reminder delivery: claim due rows, send DMs (one agenda per owner for revisits), record what happened.

Everything here is about talking to Slack; what is due, who claims it and what a failure means are decided
by bot.services.reminders.
"""

import heapq
import logging
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta

from slack_sdk.errors import SlackApiError

from bot import metrics
from bot.db import session_scope
from bot.runtime import Runtime
from bot.services import reminders as svc
from bot.services.worktime import hours_lookup, stale_zones
from bot.slack import channels, people
from bot.slack.client import client_for, post_to_each
from bot.slack.installs import TokenRefused, WorkspacePaused
from bot.slack.render import render
from bot.slack.text import escape_mrkdwn
from models import Workspace
from models.enums import ReminderKind

log = logging.getLogger(__name__)
RENDER_FAILED = "render_failed"  # our template failed: kept with this reason, retried with back-off

LATE_SUMMARY_OVER = 5  # an owner with more late follow-ups than this gets one summary, not a flood
AGENDA_MAX_LINES = 40  # one section per line, within the 50 blocks of a message
METADATA_TYPE = "rapport_reminder"
# Sent DMs are written as delivered in groups, every RECORD_EVERY DMs or RECORD_AFTER seconds (a SQLite write
# costs milliseconds). A crash in between leaves at most those, and one DM in flight per sending thread, posted
# but still claimed; whoever takes them back finds them in the DM by their metadata instead of posting again.
RECORD_EVERY = 20
RECORD_AFTER = 0.2
# Errors after which Slack may have posted the message anyway (any HTTP 5xx too): look before posting again.
UNCERTAIN = {"timeout", "connection_error", "internal_error", "fatal_error", "service_unavailable", "request_timeout",
             "server_error", svc.LEASE_EXPIRED}


class RateLimiter:
    """At most `per_second` sends in any one-second window as Slack counts them, shared by the sending
    threads (0: no limit).

    Sends are spaced evenly, and each takes one of `per_second` tokens that it gives back when Slack has
    answered; a token can be used again one second after that. So even sends that reach Slack bunched
    together (a thread that woke late, a slow connection) never put more than `per_second` into a second."""

    def __init__(self, per_second: float):
        self.interval = 1.0 / per_second if per_second > 0 else 0.0
        self._tokens = [0.0] * max(int(per_second), 1)  # a heap: when each free token may be used again
        self._next = 0.0
        self._lock = threading.Lock()

    @contextmanager
    def slot(self):
        if not self.interval:
            yield
            return
        while True:
            with self._lock:
                now = time.monotonic()
                start = max(now, self._next, self._tokens[0] if self._tokens else now + self.interval)
                if start <= now:
                    heapq.heappop(self._tokens)
                    self._next = now + self.interval
                    break
            time.sleep(start - now)
        try:
            yield
        finally:
            with self._lock:
                heapq.heappush(self._tokens, time.monotonic() + 1.0)


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
    def __init__(self, runtime: Runtime, *, lease: timedelta = svc.LEASE):
        self.runtime = runtime
        self.lease = lease  # how long a claim is ours; after that another process may take the row back
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
        now = runtime.clock.now()
        with session_scope(runtime.engine) as session:
            owners = svc.revisit_owners(session, now=now)
        if owners:  # each agenda goes out on its owner's morning: know their time zone before planning it
            self._refresh_zones(owners, now)
            with session_scope(runtime.engine) as session:
                svc.plan_revisits(session, now=now, hours_for=hours_lookup(session, owners))
        current = self._next_batch(batch, report)
        while current is not None:
            claims, messages = current
            futures = [self.pool.submit(self._send, m) for m in messages]
            # Claim and group the next batch while this one is being sent.
            current = self._next_batch(batch, report) if len(claims) == batch else None
            self._collect(futures, report)
        return report

    def _next_batch(self, batch: int, report: Report) -> tuple[list[svc.Claim], list[Message]] | None:
        with session_scope(self.runtime.engine) as session:
            claims = svc.claim_due(session, now=self.runtime.clock.now(), process=self.runtime.process,
                                   limit=batch, lease=self.lease)
        metrics.REMINDERS_CLAIMED.inc(len(claims))
        return (claims, self._compose(claims, report)) if claims else None

    def _collect(self, futures: list, report: Report) -> None:
        """Count what the senders did and write the sent DMs as delivered, a group at a time."""
        delivered: list[tuple[list[int], str, str]] = []
        written = time.monotonic()
        try:
            for future in as_completed(futures):
                sent, reminders, error, delivery = future.result()
                report.sent += sent
                report.reminders += reminders
                metrics.REMINDERS_SENT.inc(reminders)
                if error:
                    report.errors[error] = report.errors.get(error, 0) + 1
                if delivery:
                    delivered.append(delivery)
                if len(delivered) >= RECORD_EVERY or time.monotonic() - written >= RECORD_AFTER:
                    self._record(delivered)
                    delivered, written = [], time.monotonic()
        finally:
            self._record(delivered)

    def _compose(self, claims: list[svc.Claim], report: Report) -> list[Message]:
        """Group claimed rows into DMs; rows whose owner is outside working hours now go back to wait."""
        now = self.runtime.clock.now()
        owners = {(c.reminder.workspace_id, c.reminder.owner_id) for c in claims}
        self._refresh_zones(owners, now)
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
        metrics.REMINDERS_DUE.inc(sum(len(m.claims) for m in messages))
        return messages

    def _refresh_zones(self, owners: set[tuple[str, str]], now) -> None:
        """Ask Slack for the time zones not cached or cached too long ago (outside any transaction)."""
        with session_scope(self.runtime.engine) as session:
            stale = stale_zones(session, owners, now=now)
        for workspace_id, owner_id in stale:
            try:
                client = client_for(self.runtime, workspace_id)
            except WorkspacePaused:
                continue  # its reminders are not claimed until it is reinstalled
            people.lookup(self.runtime, client, workspace_id=workspace_id, user_id=owner_id)

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

    def _send(self, message: Message) -> tuple[int, int, str | None, tuple[list[int], str, str] | None]:
        """Post one DM: (DMs sent, reminders carried, error, the delivery for the caller to record)."""
        runtime = self.runtime
        try:
            blocks, text = self.render(message)
        except Exception:  # a bug of ours in one message must not stop the others: retried with back-off
            log.exception("reminder DM %s could not be rendered", message.ids)
            self._failed(message, RENDER_FAILED, None)
            return 0, 0, RENDER_FAILED, None
        metadata = {"event_type": METADATA_TYPE, "event_payload": {"reminder_ids": message.ids}}
        if any(c.reminder.attempts for c in message.claims) and self._already_posted(message):
            return 0, len(message.ids), None, None
        try:
            with self.limiter.slot():
                if self._lease_running_out(message):  # a slow batch (rate limits): another process may take it
                    return 0, 0, svc.LEASE_EXPIRED, None
                client = client_for(runtime, message.workspace_id)
                response = client.chat_postMessage(channel=message.owner_id, text=escape_mrkdwn(text),
                                                   blocks=blocks, metadata=metadata, unfurl_links=False)
        except (WorkspacePaused, TokenRefused):  # not the reminder's fault: it waits, pending, for a reinstall
            self._put_back(message)
            return 0, 0, "workspace_paused", None
        except SlackApiError as exc:
            error = exc.response.get("error") or f"http_{exc.response.status_code}"
            retry_after = _retry_after(exc)
            self._failed(message, error, retry_after)
            return 0, 0, error, None
        except Exception as exc:  # connection refused, reset, timeout after the client's own retries
            log.warning("sending reminder DM to %s failed: %s", message.owner_id, exc)
            self._failed(message, "timeout" if "timed out" in str(exc).lower() else "connection_error", None)
            return 0, 0, "connection_error", None
        return 1, len(message.ids), None, (message.ids, response["channel"], response["ts"])

    def _lease_running_out(self, message: Message) -> bool:
        """Too late to post under our claim: the row goes back to the queue when the lease ends, unsent by us."""
        now = self.runtime.clock.now()
        return any(c.reminder.lease_expires_at is not None and now + self.lease / 4 >= c.reminder.lease_expires_at
                   for c in message.claims)

    def _record(self, delivered: list[tuple[list[int], str, str]]) -> None:
        """Write sent DMs as delivered, several per transaction (a SQLite write costs milliseconds)."""
        if not delivered:
            return
        with session_scope(self.runtime.engine) as session:
            svc.record_deliveries(session, deliveries=delivered, process=self.runtime.process,
                                  now=self.runtime.clock.now())

    def _failed(self, message: Message, error: str, retry_after: float | None) -> None:
        metrics.REMINDERS_FAILED.labels(error=error[:64]).inc(len(message.ids))
        with session_scope(self.runtime.engine) as session:
            svc.mark_failed(session, reminder_ids=message.ids, process=self.runtime.process,
                            now=self.runtime.clock.now(), error=error, retry_after=retry_after)

    def _put_back(self, message: Message) -> None:
        """Unclaimed as it was, no attempt counted: the workspace is paused and the claim query skips it."""
        metrics.REMINDERS_PAUSED.inc(len(message.claims))
        with session_scope(self.runtime.engine) as session:
            for claim in message.claims:
                svc.release(session, reminder_id=claim.reminder.id, process=self.runtime.process,
                            deliver_at=claim.reminder.deliver_at)

    def _already_posted(self, message: Message) -> bool:
        """After an attempt whose outcome we could not see (a timeout, a 5xx, a process that died holding the
        claim), look for our own message in the DM before posting again, so the reminder does not come twice."""
        if not any(c.reminder.last_error in UNCERTAIN or (c.reminder.last_error or "").startswith("http_5")
                   for c in message.claims):
            return False
        try:
            client = client_for(self.runtime, message.workspace_id)
            dm = client.conversations_open(users=message.owner_id)["channel"]["id"]
            history = client.conversations_history(channel=dm, limit=50, include_all_metadata=True)
        except Exception:  # cannot tell: post, and accept the small chance of a repeat
            return False
        found: dict[int, str] = {}  # reminder id → ts of a message of ours that carries it
        for posted in history.get("messages", []):
            metadata = posted.get("metadata") or {}
            if metadata.get("event_type") == METADATA_TYPE:
                for reminder_id in (metadata.get("event_payload") or {}).get("reminder_ids") or []:
                    found.setdefault(reminder_id, posted["ts"])
        # All carried already (maybe grouped differently by the process that died): record, do not repeat.
        if not set(message.ids) <= set(found):
            return False
        by_ts: dict[str, list[int]] = defaultdict(list)
        for reminder_id in message.ids:
            by_ts[found[reminder_id]].append(reminder_id)
        with session_scope(self.runtime.engine) as session:
            svc.record_deliveries(session, deliveries=[(ids, dm, ts) for ts, ids in by_ts.items()],
                                  process=self.runtime.process, now=self.runtime.clock.now())
        return True

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
        """The managers' channel when set (and only our team is in it), else a DM to each manager; with
        neither, the log says so (without the notice's text: it names customers)."""
        if not workspace.digest_channel and not workspace.managers:
            log.warning("workspace %s has no managers or managers' channel to tell", workspace.id)
            return 0
        try:
            client = client_for(self.runtime, workspace.id)
        except WorkspacePaused as paused:
            log.warning("could not tell the managers of %s (%s)", workspace.id, paused.reason)
            return 0
        internal = channels.managers_channel(self.runtime, client, workspace.id) if workspace.digest_channel else None
        targets = [internal] if internal else people.outsiders_dropped(self.runtime, client, workspace_id=workspace.id,
                                                                        user_ids=list(workspace.managers))
        if not targets:
            log.warning("workspace %s has no managers to tell (its managers' channel is shared)", workspace.id)
            return 0
        return post_to_each(client, targets, text=escape_mrkdwn(text), blocks=blocks)


def _retry_after(exc: SlackApiError) -> float | None:
    headers = getattr(exc.response, "headers", None) or {}
    value = headers.get("Retry-After") or headers.get("retry-after")
    if isinstance(value, list):
        value = value[0]
    try:
        return float(value) if value else None
    except ValueError:
        return None


def redraw_dm(runtime: Runtime, client, *, channel: str, ts: str, state: str | None, agenda: bool) -> None:
    """Show a reminder DM's new state in place: a single reminder with `state` (":zzz: Snoozed until …"), or
    an agenda with each line as it is now."""
    with session_scope(runtime.engine) as session:
        carried = svc.in_message(session, channel=channel, ts=ts)
    if not carried:
        return
    if len(carried) == 1 and not agenda:
        reminder, customer = carried[0]
        blocks = render("reminder_dm.j2", reminder=reminder, customer=customer, late=reminder.late, state=state)
    else:
        kind = "agenda" if carried[0][0].kind == "revisit" else "late"
        blocks = render("agenda_dm.j2", kind=kind, lines=carried)
    client.chat_update(channel=channel, ts=ts, blocks=blocks, text="Reminder updated")
