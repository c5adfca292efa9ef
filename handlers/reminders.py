"""/crm remind and /crm reminders, the Remind me button and form, and the buttons on reminder DMs."""

from datetime import timedelta

from slack_bolt import Ack, App

from bot.db import session_scope
from bot.errors import BadInput
from bot.runtime import Runtime
from bot.services import customers as customer_svc
from bot.services import reminders as svc
from bot.services.when import EXAMPLES, parse_when, when_words
from bot.services.workspaces import get_workspace
from bot.services.worktime import WorkingHours
from bot.slack import people
from bot.slack.reminders import redraw_dm
from bot.slack.render import esc, render, slack_date
from bot.slack.state import action_value, metadata, read_state, row_id, workspace_of
from bot.slack.text import rest_after
from handlers import forms
from handlers.crm import Command, Reply, Router, Subcommand

SNOOZES = {"snooze1": timedelta(days=1), "snooze7": timedelta(weeks=1)}


def owner_tz(runtime: Runtime, client, workspace_id: str, user_id: str) -> str | None:
    """The person's time zone from Slack (cached). Asked before any transaction opens: SQLite has one writer."""
    person = people.lookup(runtime, client, workspace_id=workspace_id, user_id=user_id)
    return person.tz if person else None


def confirmation(reminder, customer_name: str | None) -> str:
    moved = reminder.deliver_at != reminder.due_at
    text = f":alarm_clock: I'll remind you {slack_date(reminder.deliver_at, '{date_long_pretty} at {time}')}"
    if customer_name:
        text += f" about *{esc(customer_name, 80)}*"
    if reminder.note:
        text += f": {esc(reminder.note, 500)}"
    if moved:
        text += f"\n_Moved into your working hours (asked for {slack_date(reminder.due_at)})._"
    return text


REMIND = Subcommand(
    name="remind",
    usage="/crm remind <customer> <when> <note…>",
    summary=f"a follow-up DM for you; when: {EXAMPLES}",
    examples=['/crm remind "Acme Corp" in 2d Send the proposal', "/crm remind acme monday Call Li Wei",
              "/crm remind globex 2026-12-01 14:30 Renewal call"],
    run=lambda command: remind(command),
    group="Reminders",
)


def remind(command: Command) -> Reply:
    if len(command.args) < 2:
        raise BadInput("Which customer, and when?", hint=REMIND.usage_hint())
    rest = command.args[1:]
    count = when_words([t.text for t in rest])
    when_text = " ".join(t.text for t in rest[:count])
    note = rest_after(command.text, rest[count - 1])
    tz = owner_tz(command.runtime, command.client, command.workspace_id, command.user_id)
    with command.work() as (session, workspace):
        customer = customer_svc.find_customer(session, workspace_id=workspace.id, query=command.args[0].text)
        hours = WorkingHours.of(workspace, tz)
        due = parse_when(when_text, now=command.now, hours=hours)
        reminder = svc.create_followup(session, workspace=workspace, owner_id=command.user_id, hours=hours,
                                       due_at=due, note=note, by=command.user_id, now=command.now, customer=customer)
        text = confirmation(reminder, customer.name)
    return Reply(text="Reminder set", blocks=render("notice.j2", text=text))


REMINDERS = Subcommand(
    name="reminders",
    usage="/crm reminders",
    summary="your open follow-ups and revisits, with Done, Snooze and Cancel",
    examples=["/crm reminders"],
    run=lambda command: reminders(command),
    group="Reminders",
)


def reminders(command: Command) -> Reply:
    if command.args:
        raise BadInput("`/crm reminders` takes no arguments.", hint=REMINDERS.usage_hint())
    with command.read() as (session, workspace):
        rows = svc.open_reminders(session, workspace_id=workspace.id, owner_id=command.user_id, limit=40)
    return Reply(text=f"{len(rows)} open reminders", blocks=render("reminders_list.j2", rows=rows))


def _redraw(runtime: Runtime, client, body: dict, respond, team: str, user_id: str, state: str | None) -> None:
    """Show the outcome in place: the DM the buttons sit on, or the ephemeral list."""
    container = body.get("container") or {}
    channel, ts = container.get("channel_id"), container.get("message_ts")
    if container.get("is_ephemeral") or not channel:
        with session_scope(runtime.engine) as session:
            rows = svc.open_reminders(session, workspace_id=team, owner_id=user_id, limit=40)
        respond(replace_original=True, text=f"{len(rows)} open reminders",
                blocks=render("reminders_list.j2", rows=rows))
        return
    redraw_dm(runtime, client, channel=channel, ts=ts, state=state, agenda=_is_agenda(body))


def _is_agenda(body: dict) -> bool:
    """An agenda or late summary starts with a header; a single reminder's DM does not."""
    return (body.get("message") or {}).get("blocks", [{}])[0].get("type") == "header"


def act(runtime: Runtime, client, body: dict, respond, team: str, what: str, reminder_id: int | None) -> None:
    """`team`: the installed workspace, from Bolt's context (org-wide installs send `team: null`)."""
    user_id = body["user"]["id"]
    now = runtime.clock.now()
    tz = owner_tz(runtime, client, team, user_id) if what in SNOOZES else None
    with session_scope(runtime.engine) as session:
        workspace = get_workspace(session, team)
        reminder = svc.get_reminder(session, workspace_id=team, reminder_id=reminder_id)
        if what in ("done", "cancel"):
            changed = svc.complete(session, reminder=reminder, user_id=user_id, now=now,
                                   outcome="cancelled" if what == "cancel" else "done")
            state = (f":white_check_mark: Done — {slack_date(now)}" if what == "done" else ":x: Cancelled") \
                if changed else "Already closed."
        elif what in SNOOZES:
            hours = WorkingHours.of(workspace, tz)
            until = svc.snooze(session, reminder=reminder, user_id=user_id, hours=hours, delay=SNOOZES[what], now=now)
            state = f":zzz: Snoozed until {slack_date(until)}"
        elif what == "touch":
            customer_id = reminder.customer_id
            state = None
        else:
            raise BadInput("That button is not known.")
    if what == "touch":
        # Logging the touch from here handles the reminder: the form closes it and redraws this DM.
        container = body.get("container") or {}
        forms.open_touch_form(runtime, client, trigger_id=body["trigger_id"], workspace_id=team,
                              customer_id=customer_id,
                              reminder={"id": reminder.id, "channel": container.get("channel_id"),
                                        "ts": container.get("message_ts"), "agenda": _is_agenda(body)})
        return
    _redraw(runtime, client, body, respond, team, user_id, state)


def register(app: App, router: Router) -> None:
    router.add(REMIND)
    router.add(REMINDERS)

    def button(what: str):
        # Bolt injects listener arguments by name, so the action's meaning is bound in a closure.
        def handler(ack: Ack, body, context, client, respond):
            ack()
            act(context["runtime"], client, body, respond, workspace_of(body, context), what,
                row_id(action_value(body)))

        return handler

    for action_id, what in (("reminder.done", "done"), ("reminder.snooze_day", "snooze1"),
                            ("reminder.snooze_week", "snooze7"), ("reminder.log_touch", "touch")):
        app.action(action_id)(button(what))

    @app.action("reminder.menu")
    def reminder_menu(ack: Ack, body, context, client, respond):
        ack()
        what, _, reminder_id = action_value(body).partition(":")
        act(context["runtime"], client, body, respond, workspace_of(body, context), what, row_id(reminder_id))

    @app.action("card.remind")
    def remind_button(ack: Ack, body, context, client):
        ack()
        forms.open_remind_form(context["runtime"], client, trigger_id=body["trigger_id"],
                               workspace_id=context["team_id"], customer_id=action_value(body),
                               push=(body.get("view") or {}).get("type") == "modal")

    @app.view("remind_form")
    def remind_submitted(ack: Ack, body, context, client):
        runtime: Runtime = context["runtime"]
        view, user_id, team = body["view"], body["user"]["id"], context["team_id"]
        values, meta = read_state(view), metadata(view)
        now = runtime.clock.now()
        tz = owner_tz(runtime, client, team, user_id)
        with session_scope(runtime.engine) as session:
            workspace = get_workspace(session, team)
            customer = forms.customer_in(session, team, meta.get("customer_id"))
            hours = WorkingHours.of(workspace, tz)
            try:
                due = parse_when(values.get("when") or "", now=now, hours=hours)
            except BadInput as exc:
                exc.field = "when"
                raise
            reminder = svc.create_followup(session, workspace=workspace, owner_id=user_id, hours=hours, due_at=due,
                                           note=values.get("note") or "", by=user_id, now=now, customer=customer,
                                           source="button")
            text = confirmation(reminder, customer.name)
        ack()
        client.chat_postMessage(channel=user_id, text="Reminder set", blocks=render("notice.j2", text=text))
