"""/crm survey, the Send survey button, answering with one click, comments, and closing."""

import re

from slack_bolt import Ack, App

from bot.db import session_scope
from bot.errors import BadInput, NotFound
from bot.runtime import Runtime
from bot.services import customers as customer_svc
from bot.services import surveys as svc
from bot.services.workspaces import get_workspace
from bot.services.worktime import WorkingHours
from bot.slack import people
from bot.slack.render import day, esc, render
from bot.slack.state import action_value, metadata, read_state, row_id
from bot.slack.surveys import ClickOrder, CountRedrawer, close_and_report, post_survey
from handlers import forms
from handlers.args import joined
from handlers.crm import Command, Reply, Router, Subcommand
from models import Customer

# What people outside our team (customers in a shared channel, guests) may do: answer and comment. Everything
# else is for members (the members-only middleware in bot/app.py asks `for_customers`).
ANSWER = re.compile(r"^survey\.answer\.\d+$")
COMMENT_BUTTON, COMMENT_FORM = "survey.comment", "survey_comment"


def for_customers(body: dict) -> bool:
    """Is this payload a survey answer or comment, which customers send?"""
    if body.get("type") == "block_actions":
        actions = body.get("actions") or []
        return bool(actions) and all(ANSWER.fullmatch(a.get("action_id", "")) or a.get("action_id") == COMMENT_BUTTON
                                     for a in actions)
    if body.get("type") in ("view_submission", "view_closed"):
        return (body.get("view") or {}).get("callback_id") == COMMENT_FORM
    return False


SURVEY = Subcommand(
    name="survey",
    usage="/crm survey <customer> [nps|csat] [#channel] [force]   ·   /crm survey close <customer>",
    summary="post a one-click survey in the customer's channel; `close` ends it and sends you the summary",
    examples=['/crm survey "Acme Corp" nps', "/crm survey acme csat #acme-shared force", "/crm survey close acme"],
    run=lambda command: survey(command),
    group="Surveys",
)


def survey(command: Command) -> Reply:
    if not command.args:
        raise BadInput("Which customer?", hint=SURVEY.usage_hint())
    if command.args[0].text.lower() == "close" and not command.args[0].quoted and len(command.args) > 1:
        return close_command(command)
    words = [t for t in command.args if not t.channel_id]
    channels = [t.channel_id for t in command.args if t.channel_id]
    flags = {t.text.lower() for t in words[1:] if not t.quoted}
    kinds = flags & {"nps", "csat"}
    unknown = flags - {"nps", "csat", "force"}
    if len(channels) > 1 or len(kinds) > 1 or unknown:
        raise BadInput("I could not read that.", hint=SURVEY.usage_hint())
    with command.work() as (session, workspace):
        customer = customer_svc.find_customer(session, workspace_id=workspace.id, query=words[0].text)
    command.ack_now()  # posting talks to Slack; answer the command first
    posted, customer = post_survey(command.runtime, command.client, workspace_id=command.workspace_id,
                                   customer_id=customer.id, kind=kinds.pop() if kinds else "nps",
                                   channel_id=channels[0] if channels else None, by=command.user_id,
                                   force="force" in flags)
    text = (f":white_check_mark: {posted.kind.upper()} survey posted in <#{posted.channel_id}> for "
            f"*{esc(customer.name, 80)}*; it closes {day(posted.closes_at)} and you'll get the summary.")
    return Reply(text="Survey posted", blocks=render("notice.j2", text=text))


def close_command(command: Command) -> Reply:
    with command.work() as (session, workspace):
        customer = customer_svc.find_customer(session, workspace_id=workspace.id, query=joined(command.args[1:]))
        open_survey = svc.latest_open(session, customer=customer)
    command.ack_now()
    close_and_report(command.runtime, command.client, open_survey)
    return Reply(text="Survey closed", blocks=render("notice.j2", text=(
        f":white_check_mark: The survey for *{esc(customer.name, 80)}* is closed; the summary is in your DMs.")))


def survey_of(value) -> int:
    """The survey a button or form names; a forged or mangled value names none."""
    survey_id = row_id(value)
    if survey_id is None:
        raise NotFound("This survey no longer exists.")
    return survey_id


def answer_of(value: str) -> tuple[int, int]:
    """An answer button's value, `<survey id>:<score>`."""
    survey_text, _, score_text = value.partition(":")
    survey_id, score = survey_of(survey_text), row_id(score_text)
    if score is None:
        raise BadInput("That is not a score of this survey.")
    return survey_id, score


def register(app: App, router: Router) -> None:
    router.add(SURVEY)
    redrawers: list[CountRedrawer] = []  # one per app: it owns the timers of throttled redraws
    click_order = ClickOrder()  # one per app: the order of each person's clicks in flight

    def redrawer(runtime: Runtime) -> CountRedrawer:
        if not redrawers:
            redrawers.append(CountRedrawer(runtime))  # each survey redrawn with its workspace's client
        return redrawers[0]

    @app.action(ANSWER)
    def answered(ack: Ack, body, context, client, respond):
        runtime: Runtime = context["runtime"]
        survey_id, score = answer_of(action_value(body))
        user = body["user"]
        team = context["team_id"]  # the installed workspace, even when the clicker is from another org
        respondent_team = user.get("team_id")
        # Stored in this person's order, then acked (see ClickOrder): an acknowledged click is never lost.
        with click_order.turn(survey_id, user["id"], then=ack) as latest:
            if not latest:
                return  # a newer click of theirs came in meanwhile: it stores and thanks for itself
            is_guest = False
            if respondent_team in (None, team):  # people from other orgs are judged by their team, not looked up
                person = people.lookup(runtime, client, workspace_id=team, user_id=user["id"])
                is_guest = bool(person and person.is_restricted)
            now = runtime.clock.now()
            with session_scope(runtime.engine) as session:
                workspace = get_workspace(session, team)
                survey = svc.get_survey(session, workspace_id=team, survey_id=survey_id)
                result = svc.answer(session, survey=survey, workspace=workspace, respondent_id=user["id"],
                                    respondent_team_id=respondent_team, is_guest=is_guest, score=score,
                                    now=now)
                customer = session.get(Customer, survey.customer_id) if result.became_low else None
        if not result.counted:
            respond(response_type="ephemeral", replace_original=False, text="Thanks! Answers from our own team aren't counted — this survey is for our customers.")
            return
        changed = f" (changed from {result.previous})" if result.previous is not None and result.previous != result.score else ""
        respond(response_type="ephemeral", replace_original=False, text=f"Thank you! You answered {result.score}.",
                blocks=render("survey_thanks.j2", survey=survey, comment_button=True,
                              text=f":pray: Thank you! You answered *{result.score}*{changed}. You can change it by clicking another score."))
        redrawer(runtime).clicked(survey.id)
        if customer is not None and customer.owner_id:
            recover(runtime, client, survey, customer, result, respondent=user["id"])

    @app.action(COMMENT_BUTTON)
    def comment_button(ack: Ack, body, context, client):
        ack()
        runtime: Runtime = context["runtime"]
        with session_scope(runtime.engine) as session:
            survey = svc.get_survey(session, workspace_id=context["team_id"], survey_id=survey_of(action_value(body)))
        client.views_open(trigger_id=body["trigger_id"], view=render("survey_comment_form.j2", survey=survey))

    @app.view(COMMENT_FORM)
    def comment_submitted(ack: Ack, body, context, client):
        runtime: Runtime = context["runtime"]
        user_id = body["user"]["id"]
        with session_scope(runtime.engine) as session:
            survey = svc.get_survey(session, workspace_id=context["team_id"],
                                    survey_id=survey_of(metadata(body["view"]).get("survey_id")))
            try:
                response = svc.add_comment(session, survey=survey, respondent_id=user_id,
                                           comment=read_state(body["view"]).get("comment") or "",
                                           now=runtime.clock.now())
            except BadInput as exc:
                exc.field = "comment"
                raise
            customer = session.get(Customer, survey.customer_id)
            low = svc.is_low(survey.kind, response.score)
            score, comment = response.score, response.comment
        ack()
        if low and customer.owner_id:
            client.chat_postMessage(channel=customer.owner_id, text=f"A comment on a low {survey.kind.upper()} score",
                                    blocks=render("survey_alert.j2", survey=survey, score=score, respondent=user_id,
                                                  customer=customer, comment=comment, followup=False))

    @app.action("card.survey")
    def survey_button(ack: Ack, body, context, client):
        ack()
        runtime: Runtime = context["runtime"]
        with session_scope(runtime.engine) as session:
            customer = forms.customer_in(session, context["team_id"], action_value(body))
            cooldown_days = get_workspace(session, context["team_id"]).survey_cooldown_days
        opener = client.views_push if (body.get("view") or {}).get("type") == "modal" else client.views_open
        opener(trigger_id=body["trigger_id"], view=render("survey_form.j2", customer=customer,
                                                          cooldown_days=cooldown_days))

    @app.view("survey_form")
    def survey_form_submitted(ack: Ack, body, context, client):
        runtime: Runtime = context["runtime"]
        values, meta = read_state(body["view"]), metadata(body["view"])
        team = context["team_id"]
        with session_scope(runtime.engine) as session:
            customer = forms.customer_in(session, team, meta.get("customer_id"))
        try:
            posted, customer = post_survey(runtime, client, workspace_id=team, customer_id=customer.id,
                                           kind=values.get("kind") or "nps", channel_id=values.get("channel"),
                                           by=body["user"]["id"], force="force" in (values.get("force") or []))
        except BadInput as exc:
            if exc.field == "force":
                exc.hint = "Tick the box to send it anyway."  # the `force` of the command, in the form
            exc.field = exc.field or "channel"
            raise
        ack()
        client.chat_postMessage(channel=body["user"]["id"], text="Survey posted", blocks=render("notice.j2", text=(
            f":white_check_mark: {posted.kind.upper()} survey posted in <#{posted.channel_id}> for "
            f"*{esc(customer.name, 80)}*; it closes {day(posted.closes_at)}.")))


def recover(runtime: Runtime, client, survey, customer, result, *, respondent: str) -> None:
    """Service recovery: alert the owner now and set them a follow-up for the next working day."""
    tz = people.lookup(runtime, client, workspace_id=survey.workspace_id, user_id=customer.owner_id)
    now = runtime.clock.now()
    with session_scope(runtime.engine) as session:
        workspace = get_workspace(session, survey.workspace_id)
        svc.start_recovery(session, workspace=workspace, survey=survey, customer=session.get(Customer, customer.id),
                           owner_hours=WorkingHours.of(workspace, tz.tz if tz else None), score=result.score,
                           response_id=result.response_id, now=now)
    client.chat_postMessage(channel=customer.owner_id, text=f"Low {survey.kind.upper()} score from a customer",
                            blocks=render("survey_alert.j2", survey=survey, score=result.score, respondent=respondent,
                                          customer=customer, comment=None, followup=True))
