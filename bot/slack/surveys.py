"""Survey messages in Slack: posting with clear refusals, a throttled live count, closing with a summary."""

import logging
import threading
from datetime import UTC, datetime, timedelta

from slack_sdk.errors import SlackApiError

from bot.db import session_scope
from bot.errors import BadInput
from bot.runtime import Runtime
from bot.services import surveys as svc
from bot.services.workspaces import get_workspace
from bot.slack.render import render
from models import Customer, Survey
from models.enums import SurveyKind

log = logging.getLogger(__name__)

REDRAW_EVERY = timedelta(seconds=3)  # chat.update is Tier 3 (~50/min per workspace); one survey stays far below


def message(survey: Survey, count: int) -> tuple[list, str]:
    kind = SurveyKind(survey.kind)
    blocks = render("survey_message.j2", survey=survey, count=count, closed=survey.status == "closed",
                    question=svc.QUESTIONS[kind], scale=list(svc.SCALES[kind]))
    return blocks, svc.QUESTIONS[kind]


def check_channel(client, channel_id: str) -> None:
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


def post_survey(runtime: Runtime, client, *, workspace_id: str, customer_id: int, kind: str,
                channel_id: str | None, by: str, force: bool) -> tuple[Survey, Customer]:
    with session_scope(runtime.engine) as session:
        customer = session.get(Customer, customer_id)
        channel_id = channel_id or customer.channel_id
    if not channel_id:
        raise BadInput(f"{customer.name} has no shared channel yet.",
                       hint=f'Name one: `/crm survey "{customer.name}" nps #channel`, or set it with Edit.')
    check_channel(client, channel_id)
    with session_scope(runtime.engine) as session:
        workspace = get_workspace(session, workspace_id)
        survey = svc.start_survey(session, workspace=workspace, customer=customer, kind=kind, channel_id=channel_id,
                                  by=by, now=runtime.clock.now(), force=force)
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


class CountRedrawer:
    """Keeps each survey message's response count current without calling chat.update on every click:
    at most one redraw per REDRAW_EVERY per survey (claimed in the database, so across processes too), and a
    timer makes sure the last click's count is shown once the window has passed."""

    def __init__(self, runtime: Runtime, client):
        self.runtime = runtime
        self.client = client
        self._timers: dict[int, threading.Timer] = {}
        self._lock = threading.Lock()

    def clicked(self, survey_id: int) -> None:
        if not self.redraw(survey_id):
            self._later(survey_id)

    def redraw(self, survey_id: int) -> bool:
        """Redraw now if this process may; False when throttled."""
        now = datetime.now(UTC)  # Slack's rate limits run on real time, not on the domain clock
        with session_scope(self.runtime.engine) as session:
            survey = session.get(Survey, survey_id)
            if survey is None or survey.message_ts is None:
                return True
            count = svc.count(session, survey_id=survey_id)
            if count == survey.shown_count and survey.status == "open":
                return True
            if not svc.claim_redraw(session, survey_id=survey_id, now=now, every=REDRAW_EVERY):
                return False
            svc.shown(session, survey_id=survey_id, shown_count=count)
        blocks, text = message(survey, count)
        try:
            self.client.chat_update(channel=survey.channel_id, ts=survey.message_ts, blocks=blocks, text=text)
        except SlackApiError as exc:
            log.warning("could not redraw survey %s: %s", survey_id, exc.response.get("error"))
            with session_scope(self.runtime.engine) as session:
                svc.shown(session, survey_id=survey_id, shown_count=-1)  # try again on the next pass
        return True

    def _later(self, survey_id: int) -> None:
        with self._lock:
            if survey_id in self._timers:
                return
            timer = threading.Timer(REDRAW_EVERY.total_seconds(), self._fire, args=[survey_id])
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
                                text=f"Survey closed: {summary.customer.name}, {summary.answers} answers")
    except SlackApiError as exc:
        log.warning("could not send the survey summary to %s: %s", owner, exc.response.get("error"))
        with session_scope(runtime.engine) as session:
            svc.unclaim_summary(session, survey_id=survey.id)


def close_due(runtime: Runtime) -> int:
    """The scheduler's pass: close what is due, and send summaries still owed from earlier failures."""
    with session_scope(runtime.engine) as session:
        due = svc.due_to_close(session, now=runtime.clock.now())
    closed = sum(close_and_report(runtime, runtime.client, survey) for survey in due)
    with session_scope(runtime.engine) as session:
        owed = svc.summaries_owed(session)
    for survey in owed:
        send_summary(runtime, runtime.client, survey)
    CountRedrawer(runtime, runtime.client).catch_up()  # counts left stale by a crash or a failed redraw
    return closed
