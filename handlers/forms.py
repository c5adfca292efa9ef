"""Modals and card buttons for customers: add/edit, log touch (also from any message), decision chain, picker."""

import logging

from slack_bolt import Ack, App
from slack_sdk.errors import SlackApiError
from sqlmodel import select

from bot.db import read_scope, session_scope
from bot.errors import BadInput, NotFound, PermissionDenied
from bot.runtime import Runtime
from bot.services import customers as svc
from bot.services import reminders as reminders_svc
from bot.services.vocabulary import human, level_label
from bot.services.workspaces import get_workspace
from bot.slack import people
from bot.slack.reminders import redraw_dm
from bot.slack.render import one_line, render, slack_date
from bot.slack.state import action_value, metadata, read_state, row_id, workspace_of
from bot.slack.text import unescape_slack
from handlers.cards import card_reply
from models import Contact, Customer
from models.enums import ContactRole, HistoryField, OrgRelationship, RelationshipLevel, Stage, Tier, TouchKind

log = logging.getLogger(__name__)

CHOICES = {
    "tiers": [(t.value, human(t.value)) for t in Tier],
    "stages": [(s.value, human(s.value)) for s in Stage],
    "orgs": [(o.value, human(o.value)) for o in OrgRelationship],
    "kinds": [(k.value, k.value) for k in TouchKind],
    "roles": [(r.value, human(r.value)) for r in ContactRole],
    "levels": [(str(int(level)), level_label(int(level))) for level in RelationshipLevel],
}
PICKER_LIMIT = 100  # Slack shows at most 100 options

def customer_in(session, workspace_id: str, customer_id) -> Customer:
    return svc.get_customer(session, workspace_id=workspace_id, customer_id=row_id(customer_id))


# -- opening the forms -----------------------------------------------------------------------------------


def open_customer_form(runtime: Runtime, client, *, trigger_id: str, workspace_id: str, user_id: str,
                       customer_id: int | str | None = None) -> None:
    customer = None
    if customer_id is not None:
        with read_scope(runtime.engine) as session:
            customer = customer_in(session, workspace_id, customer_id)
    client.views_open(trigger_id=trigger_id,
                      view=render("customer_form.j2", customer=customer, user_id=user_id, **CHOICES))


def open_touch_form(runtime: Runtime, client, *, trigger_id: str, workspace_id: str, customer_id: int | str | None = None,
                    summary: str | None = None, link: str | None = None, kind: str = "call",
                    push: bool = False, reminder: dict | None = None) -> None:
    """`reminder`: the reminder whose DM button opened the form ({"id", "channel", "ts", "agenda"}), which
    logging the touch handles."""
    customer, contacts = None, []
    if customer_id is not None:
        with read_scope(runtime.engine) as session:
            customer = customer_in(session, workspace_id, customer_id)
            contacts = [(str(c.id), one_line(c.name)) for c in session.exec(
                select(Contact).where(Contact.customer_id == customer.id).order_by(Contact.name).limit(100))]
    meta = {"customer_id": customer.id if customer else None, "link": link, "reminder": reminder}
    view = render("touch_form.j2", customer=customer, contacts=contacts, meta=meta, kind=kind,
                  summary=(summary or "")[:2000] or None, **CHOICES)
    (client.views_push if push else client.views_open)(trigger_id=trigger_id, view=view)


def open_remind_form(runtime: Runtime, client, *, trigger_id: str, workspace_id: str, customer_id: int | str,
                     push: bool = False) -> None:
    with read_scope(runtime.engine) as session:
        customer = customer_in(session, workspace_id, customer_id)
    (client.views_push if push else client.views_open)(trigger_id=trigger_id,
                                                       view=render("remind_form.j2", customer=customer))


def open_card_modal(runtime: Runtime, client, *, trigger_id: str, workspace_id: str, customer_id: int | str,
                    push: bool = False) -> None:
    """The card in a modal, for surfaces with no channel to answer in (App Home, other modals)."""
    with read_scope(runtime.engine) as session:
        workspace = get_workspace(session, workspace_id)
        customer = customer_in(session, workspace_id, customer_id)
        reply = card_reply(session, workspace, customer, runtime.clock.now())
    view = {"type": "modal", "title": {"type": "plain_text", "text": "Customer"},
            "close": {"type": "plain_text", "text": "Close"}, "blocks": reply.blocks}
    (client.views_push if push else client.views_open)(trigger_id=trigger_id, view=view)


def open_contact_form(runtime: Runtime, client, *, trigger_id: str, workspace_id: str, customer_id: int | str) -> None:
    with read_scope(runtime.engine) as session:
        customer = customer_in(session, workspace_id, customer_id)
    client.views_open(trigger_id=trigger_id, view=render("contact_form.j2", customer=customer, **CHOICES))


# -- listeners -------------------------------------------------------------------------------------------


def register(app: App, router) -> None:
    @app.action("card.open")
    def open_card(ack: Ack, body, context, client, respond):
        ack()
        runtime: Runtime = context["runtime"]
        team, customer_id = workspace_of(body, context), action_value(body)
        if body.get("container", {}).get("type") == "view":
            open_card_modal(runtime, client, trigger_id=body["trigger_id"], workspace_id=team,
                            customer_id=customer_id, push=body.get("view", {}).get("type") == "modal")
            return
        with read_scope(runtime.engine) as session:
            workspace = get_workspace(session, team)
            customer = customer_in(session, team, customer_id)
            reply = card_reply(session, workspace, customer, runtime.clock.now())
        respond(**reply.payload(), replace_original=False)

    @app.action("card.log_touch")
    def log_touch_button(ack: Ack, body, context, client):
        ack()
        open_touch_form(context["runtime"], client, trigger_id=body["trigger_id"], workspace_id=workspace_of(body, context),
                        customer_id=action_value(body), push=body.get("view", {}).get("type") == "modal")

    @app.action("card.edit")
    def edit_button(ack: Ack, body, context, client):
        ack()
        open_customer_form(context["runtime"], client, trigger_id=body["trigger_id"],
                           workspace_id=workspace_of(body, context), user_id=body["user"]["id"],
                           customer_id=action_value(body))

    @app.action("card.contact")
    def contact_button(ack: Ack, body, context, client):
        ack()
        open_contact_form(context["runtime"], client, trigger_id=body["trigger_id"],
                          workspace_id=workspace_of(body, context), customer_id=action_value(body))

    @app.shortcut("log_to_customer")
    def log_message_shortcut(ack: Ack, shortcut, context, client):
        ack()
        message = shortcut.get("message") or {}
        channel = (shortcut.get("channel") or {}).get("id")
        link = None
        try:
            link = client.chat_getPermalink(channel=channel, message_ts=message.get("ts"))["permalink"]
        except SlackApiError as exc:  # the touch is still worth logging without its link
            log.warning("no permalink for %s/%s: %s", channel, message.get("ts"), exc.response.get("error"))
        open_touch_form(context["runtime"], client, trigger_id=shortcut["trigger_id"],
                        workspace_id=context["team_id"], summary=unescape_slack(message.get("text") or ""), link=link,
                        kind="message")

    @app.options("customer_picker")
    def customer_picker(ack: Ack, body, context):
        runtime: Runtime = context["runtime"]
        with read_scope(runtime.engine) as session:
            found = svc.search_customers(session, workspace_id=workspace_of(body, context), query=body.get("value") or "",
                                         limit=PICKER_LIMIT)
        ack(options=[{"text": {"type": "plain_text", "text": one_line(c.name)}, "value": str(c.id)} for c in found])

    @app.view("customer_form")
    def customer_form_submitted(ack: Ack, body, context, client):
        runtime: Runtime = context["runtime"]
        view, user_id, team = body["view"], body["user"]["id"], workspace_of(body, context)
        values, meta = read_state(view), metadata(view)
        actor = people.actor(runtime, client, workspace_id=team, user_id=user_id, person=context.get("person"))
        owner = values.get("owner")
        if meta.get("customer_id") is not None:
            with read_scope(runtime.engine) as session:
                unchanged = customer_in(session, team, meta["customer_id"]).owner_id
        else:
            unchanged = user_id  # the one saving passed the members-only check
        if owner and owner != unchanged:
            people.ensure_teammate(runtime, client, workspace_id=team, user_id=owner, role="owner", field="owner")
        now = runtime.clock.now()
        with session_scope(runtime.engine) as session:
            workspace = get_workspace(session, team)
            if meta.get("customer_id") is None:
                svc.create_customer(session, workspace=workspace, name=values.get("name") or "", by=user_id,
                                    now=now, tier=values.get("tier") or Tier.general,
                                    stage=values.get("stage") or Stage.prospect,
                                    org_relationship=values.get("org") or OrgRelationship.vendor,
                                    owner_id=values.get("owner"),
                                    channel_id=values.get("channel"))
            else:
                customer = customer_in(session, team, meta["customer_id"])
                svc.rename_customer(session, workspace=workspace, customer=customer, name=values.get("name") or "",
                                    actor=actor, now=now)
                if values.get("channel") != customer.channel_id:
                    svc.set_channel(session, workspace=workspace, customer=customer,
                                    channel_id=values.get("channel"), actor=actor, now=now)
                # The owner last: once the account is handed over, the one saving may no longer change it.
                for field, key in ((HistoryField.tier, "tier"), (HistoryField.stage, "stage"),
                                   (HistoryField.org, "org"), (HistoryField.owner, "owner")):
                    if values.get(key):
                        svc.change_state(session, workspace=workspace, customer=customer, field=field,
                                         value=values[key], actor=actor, now=now, reason="edited in the form")
        ack()

    @app.view("touch_form")
    def touch_form_submitted(ack: Ack, body, context, client):
        runtime: Runtime = context["runtime"]
        view, user_id, team = body["view"], body["user"]["id"], workspace_of(body, context)
        values, meta = read_state(view), metadata(view)
        now = runtime.clock.now()
        with session_scope(runtime.engine) as session:
            workspace = get_workspace(session, team)
            customer_id = meta.get("customer_id") or values.get("customer")
            if not customer_id:
                raise BadInput("Pick a customer.", field="customer")
            customer = customer_in(session, team, customer_id)
            contact = None
            if values.get("contact"):
                number = row_id(values["contact"])
                contact = session.get(Contact, number) if number is not None else None
                if contact is None or contact.customer_id != customer.id:
                    raise BadInput("That person is not in this customer's decision chain.", field="contact")
            try:
                touch = svc.log_touch(session, workspace=workspace, customer=customer, kind=values.get("kind") or "",
                                      summary=values.get("summary") or "", by=user_id, now=now, contact=contact,
                                      link=meta.get("link"))
            except BadInput as exc:
                exc.field = exc.field or "summary"
                raise
            view = render("touch_logged.j2", customer=customer, kind=touch.kind)  # canonical: "lunch" → meeting
            handled = meta.get("reminder") or {}
            if handled.get("id"):  # opened from a reminder's DM: the touch handles that reminder, if still open
                try:
                    reminder = reminders_svc.get_reminder(session, workspace_id=team, reminder_id=handled["id"])
                    reminders_svc.complete(session, reminder=reminder, user_id=user_id, now=now, outcome="touched")
                except (NotFound, PermissionDenied):  # gone, or not theirs: the touch is what they asked for
                    handled = {}
        ack(response_action="update", view=view)
        if handled.get("channel") and handled.get("ts"):
            try:
                redraw_dm(runtime, client, channel=handled["channel"], ts=handled["ts"],
                          agenda=bool(handled.get("agenda")), state=f":memo: Touch logged — {slack_date(now)}")
            except SlackApiError as exc:  # the touch is saved; an old DM not redrawn is no error to show
                log.warning("could not redraw reminder DM %s: %s", handled["ts"], exc.response.get("error"))

    @app.view("contact_form")
    def contact_form_submitted(ack: Ack, body, context, client):
        runtime: Runtime = context["runtime"]
        view, user_id, team = body["view"], body["user"]["id"], workspace_of(body, context)
        values, meta = read_state(view), metadata(view)
        actor = people.actor(runtime, client, workspace_id=team, user_id=user_id, person=context.get("person"))
        with session_scope(runtime.engine) as session:
            workspace = get_workspace(session, team)
            customer = customer_in(session, team, meta.get("customer_id"))
            try:
                svc.set_contact(session, workspace=workspace, customer=customer, name=values.get("name") or "",
                                actor=actor, now=runtime.clock.now(), role=values.get("role"),
                                level=values.get("level"), slack_user_id=values.get("user"))
            except BadInput as exc:
                exc.field = exc.field or "name"
                raise
        ack()
