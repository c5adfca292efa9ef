"""Survey messages in Slack: posting with clear refusals, a throttled live count, closing with a summary."""

import contextlib
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from slack_sdk.errors import SlackApiError

from bot.db import session_scope
from bot.errors import BadInput
from bot.runtime import Runtime
from bot.services import surveys as svc
from bot.services.workspaces import get_workspace
from bot.slack import channels
from bot.slack.client import client_for
from bot.slack.installs import WorkspacePaused
from bot.slack.render import esc, render
from models import Customer, Survey
from models.enums import SurveyKind

log = logging.getLogger(__name__)

REDRAW_EVERY = timedelta(seconds=3)  # chat.update is Tier 3 (~50/min per workspace); one survey stays far below
TIMER_MARGIN = 0.25  # seconds: a timer set from this process's memory fires after the database's window ended


def message(survey: Survey, count: int) -> tuple[list, str]:
    kind = SurveyKind(survey.kind)
    blocks = render("survey_message.j2", survey=survey, count=count, closed=survey.status == "closed",
                    question=svc.QUESTIONS[kind], scale=list(svc.SCALES[kind]))
    return blocks, svc.QUESTIONS[kind]


def check_channel(client, channel_id: str) -> dict:
    """Refuse clearly before writing anything: unknown, archived, or a channel the bot is not in."""
    try:
        info = client.conversations_info(channel=channel_id)["channel"]
    except SlackApiError as exc:
        error = exc.response.get("error")
        if error == "channel_not_found":
            raise BadInput("I can't see that channel: it does not exist or it is private and I'm not in it.",
                           hint="Invite me first with `/invite @Rapport`, or name another channel.") from None
        raise
    if info.get("is_archived"):
        raise BadInput(f"#{info.get('name', channel_id)} is archived; surveys need a live channel.")
    if not info.get("is_member", True):
        raise BadInput(f"I'm not in #{info.get('name', channel_id)}.",
                       hint="Invite me with `/invite @Rapport` in that channel, then send the survey again.")
    return info


def post_survey(runtime: Runtime, client, *, workspace_id: str, customer_id: int, kind: str,
                channel_id: str | None, by: str, force: bool) -> tuple[Survey, Customer]:
    with session_scope(runtime.engine) as session:
        customer = session.get(Customer, customer_id)
        channel_id = channel_id or customer.channel_id
        allow_internal = get_workspace(session, workspace_id).survey_allow_internal
    if not channel_id:
        raise BadInput(f"{customer.name} has no shared channel yet.",
                       hint=f'Name one: `/crm survey "{customer.name}" nps #channel`, or set it with Edit.')
    info = check_channel(client, channel_id)
    # Only customers' answers count (unless internal answers are on): a survey where no customer is gets none.
    if not allow_internal and not channels.customers_in(runtime, client, workspace_id=workspace_id, info=info):
        raise channels.refusal(channel_id, why="internal", purpose="survey", info=info, field="channel")
    try:
        with session_scope(runtime.engine) as session:
            workspace = get_workspace(session, workspace_id)
            survey = svc.start_survey(session, workspace=workspace, customer=customer, kind=kind,
                                      channel_id=channel_id, by=by, now=runtime.clock.now(), force=force)
    except BadInput as exc:  # survey fatigue: in the Send survey form, it belongs to the "force" checkbox
        exc.field = exc.field or "force"
        raise
    blocks, text = message(survey, 0)
    try:
        response = client.chat_postMessage(channel=channel_id, blocks=blocks, text=text, unfurl_links=False)
    except SlackApiError as exc:
        # Nothing half-done stays behind: the survey that could not be posted is removed again.
        with session_scope(runtime.engine) as session:
            session.delete(session.get(Survey, survey.id))
        raise BadInput(f"Slack refused the survey: {exc.response.get('error')}.") from None
    with session_scope(runtime.engine) as session:
        svc.posted(session, survey=session.get(Survey, survey.id), ts=response["ts"])
    survey.message_ts = response["ts"]
    return survey, customer


class ClickOrder:
    """A person's clicks on a survey are stored in the order they were made, the last one winning (in this process),
    and each is acknowledged only once it is stored (or a newer click of theirs has taken its place).

    Each click takes a ticket when it arrives; a person's clicks then store one at a time, and a click that is no
    longer their newest when its turn comes is dropped: the newer one stores its own answer (and sends its own
    thank-you). The ack (`then`) is sent after the turn, so an acknowledged click is in the database: a process
    killed after Slack saw the ack loses nothing. Two clicks Slack delivers together (neither waiting for the
    other's ack), or to two processes, are stored in arrival order: settling those needs Slack's action_ts
    stored with the answer."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._people: dict[tuple[str, str], _Tickets] = {}

    @contextmanager
    def turn(self, survey_id: str, person: str, then: Callable[[], object]) -> Iterator[bool]:
        """Take a ticket, hold this person's turn to store, then call `then` (the ack); yields False when a
        newer click of theirs came in meanwhile. `then` is called even when storing raised, so the error
        reaches the person (through respond) rather than Slack's timeout."""
        key = (survey_id, person)
        with self._lock:
            tickets = self._people.get(key)
            if tickets is None:
                tickets = self._people[key] = _Tickets()
            tickets.issued += 1
            ticket = tickets.issued
        try:
            with tickets.turn:
                yield ticket == tickets.issued
        finally:
            with self._lock:
                tickets.done += 1
                if tickets.done == tickets.issued:
                    del self._people[key]
            then()


@dataclass
class _Tickets:
    issued: int = 0
    done: int = 0
    turn: threading.Lock = field(default_factory=threading.Lock)


class CountRedrawer:
    """Keeps each survey message's response count current without calling chat.update on every click:
    at most one redraw per REDRAW_EVERY per survey (claimed in the database, so across processes too), and a
    timer makes sure the last click's count is shown once the window has passed."""

    def __init__(self, runtime: Runtime):
        self.runtime = runtime
        self._timers: dict[int, threading.Timer] = {}
        self._redrawn: dict[int, float] = {}  # survey id -> time.monotonic() of this process's last redraw
        self._lock = threading.Lock()

    def clicked(self, survey_id: int) -> None:
        """After a click was stored: redraw now if the window is free, else leave it to one timer."""
        # Decided in memory first: asking the database on every click made each one a second write
        # transaction, which on SQLite's single writer became a queue the next clicks' acks waited in.
        with self._lock:
            if survey_id in self._timers:
                return  # the timer reads the count when it fires, after this click was stored
            wait = REDRAW_EVERY.total_seconds() - (time.monotonic() - self._redrawn.get(survey_id, -math.inf))
            if wait > 0:
                self._schedule(survey_id, wait + TIMER_MARGIN)
                return
            self._redrawn[survey_id] = time.monotonic()  # this click redraws; clicks meanwhile set the timer
        if not self.redraw(survey_id):
            self._later(survey_id)

    def redraw(self, survey_id: int) -> bool:
        """Redraw now if this process may; False when throttled."""
        with session_scope(self.runtime.engine) as session:
            survey = session.get(Survey, survey_id)
            if survey is None or survey.message_ts is None:
                return True
            count = svc.count(session, survey_id=survey_id)
            if count == survey.shown_count and survey.status == "open":
                return True
            # Slack's rate limits run on real time, not on the domain clock.
            now = datetime.now(UTC)
            if not svc.claim_redraw(session, survey_id=survey_id, now=now, every=REDRAW_EVERY):
                return False
            svc.shown(session, survey_id=survey_id, shown_count=count)
        with self._lock:
            self._redrawn[survey_id] = time.monotonic()
        blocks, text = message(survey, count)
        try:
            client_for(self.runtime, survey.workspace_id).chat_update(channel=survey.channel_id, ts=survey.message_ts,
                                                                      blocks=blocks, text=text)
        except WorkspacePaused:
            log.info("survey %s not redrawn: its workspace is paused", survey_id)
            with session_scope(self.runtime.engine) as session:
                svc.shown(session, survey_id=survey_id, shown_count=-1)  # redrawn once it is reinstalled
        except SlackApiError as exc:
            log.warning("could not redraw survey %s: %s", survey_id, exc.response.get("error"))
            with session_scope(self.runtime.engine) as session:
                svc.shown(session, survey_id=survey_id, shown_count=-1)  # try again on the next pass
        finally:
            # The window starts when Slack got the update, not when it was claimed: a slow call must not let
            # the next one in less than REDRAW_EVERY after it.
            with session_scope(self.runtime.engine) as session:
                svc.redrawn(session, survey_id=survey_id, at=datetime.now(UTC))
            with self._lock:
                self._redrawn[survey_id] = time.monotonic()
        return True

    def _later(self, survey_id: int) -> None:
        with self._lock:
            self._schedule(survey_id, REDRAW_EVERY.total_seconds())

    def _schedule(self, survey_id: int, seconds: float) -> None:
        """One timer per survey; the caller holds self._lock."""
        if survey_id in self._timers:
            return
        timer = threading.Timer(seconds, self._fire, args=[survey_id])
        timer.daemon = True
        self._timers[survey_id] = timer
        timer.start()

    def _fire(self, survey_id: int) -> None:
        with self._lock:
            self._timers.pop(survey_id, None)
        try:
            if not self.redraw(survey_id):
                self._later(survey_id)
        except Exception:  # a missed redraw is caught up by the scheduler's pass over stale counts
            log.exception("redrawing survey %s failed", survey_id)

    def catch_up(self) -> None:
        with session_scope(self.runtime.engine) as session:
            stale = svc.stale_counts(session)
        for survey_id in stale:
            self.clicked(survey_id)


def close_and_report(runtime: Runtime, client, survey: Survey) -> bool:
    """Close, show it on the message, then send the owner the summary. Only the closing process redraws."""
    with session_scope(runtime.engine) as session:
        survey = session.get(Survey, survey.id)
        if not svc.close(session, survey=survey, now=runtime.clock.now()):
            return False
        answers = svc.count(session, survey_id=survey.id)
    if survey.message_ts:
        blocks, text = message(survey, answers)
        try:
            client.chat_update(channel=survey.channel_id, ts=survey.message_ts, blocks=blocks, text=text)
        except SlackApiError as exc:
            log.warning("could not mark survey %s closed: %s", survey.id, exc.response.get("error"))
    send_summary(runtime, client, survey)
    return True


def send_summary(runtime: Runtime, client, survey: Survey) -> None:
    """The owner's summary DM, claimed first so it goes once; released again when Slack refuses, so the next
    pass retries it."""
    with session_scope(runtime.engine) as session:
        if not svc.claim_summary(session, survey_id=survey.id, now=runtime.clock.now()):
            return
        summary = svc.summarize(session, survey=session.get(Survey, survey.id))
    owner = summary.customer.owner_id or survey.created_by
    try:
        client.chat_postMessage(channel=owner, blocks=render("survey_summary.j2", summary=summary),
                                text=f"Survey closed: {esc(summary.customer.name, 80)}, {summary.answers} answers")
    except SlackApiError as exc:
        log.warning("could not send the survey summary to %s: %s", owner, exc.response.get("error"))
        with session_scope(runtime.engine) as session:
            svc.unclaim_summary(session, survey_id=survey.id)


def close_due(runtime: Runtime) -> int:
    """The scheduler's pass: close what is due, and send summaries still owed from earlier failures."""
    with session_scope(runtime.engine) as session:
        due = svc.due_to_close(session, now=runtime.clock.now())
    closed = 0
    for survey in due:
        with contextlib.suppress(WorkspacePaused):  # paused since the query: its survey closes after a reinstall
            closed += close_and_report(runtime, client_for(runtime, survey.workspace_id), survey)
    with session_scope(runtime.engine) as session:
        owed = svc.summaries_owed(session)
    for survey in owed:
        with contextlib.suppress(WorkspacePaused):
            send_summary(runtime, client_for(runtime, survey.workspace_id), survey)
    CountRedrawer(runtime).catch_up()  # counts left stale by a crash or a failed redraw
    return closed
