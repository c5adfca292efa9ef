"""App Home: the user's accounts most urgent first, follow-ups and surveys; refreshed each time it is opened."""

from slack_bolt import Ack, App

from bot.db import read_scope
from bot.errors import RapportError
from bot.runtime import Runtime
from bot.services.card import home
from bot.services.customers import may_change
from bot.services.digest import build_digest
from bot.services.workspaces import get_workspace
from bot.slack.people import actor, member
from bot.slack.render import render
from bot.slack.state import action_value
from handlers import forms
from handlers.crm import Router

PORTFOLIO_AT_RISK = 10


def publish_home(runtime: Runtime, client, *, workspace_id: str, user_id: str) -> None:
    """The user's accounts; managers (and admins) also see the key-account portfolio. Guests and people from
    other organisations are shown nothing (customer records are internal)."""
    try:
        person = member(runtime, client, workspace_id=workspace_id, user_id=user_id)
    except RapportError:
        return
    manager = actor(runtime, client, workspace_id=workspace_id, user_id=user_id, person=person)
    with read_scope(runtime.engine) as session:
        workspace = get_workspace(session, workspace_id)
        now = runtime.clock.now()
        data = home(session, workspace=workspace, user_id=user_id, now=now)
        portfolio = (build_digest(session, workspace=workspace, now=now)
                     if may_change(workspace, None, manager) else None)
    client.views_publish(user_id=user_id, view=render("home.j2", home=data, portfolio=portfolio,
                                                      at_risk_shown=PORTFOLIO_AT_RISK))


def register(app: App, router: Router) -> None:
    @app.event("app_home_opened")
    def home_opened(event, context, client):
        if event.get("tab") != "home":  # the event also fires for the Messages tab
            return
        publish_home(context["runtime"], client, workspace_id=context["team_id"], user_id=event["user"])

    @app.action("home.refresh")
    def refresh(ack: Ack, body, context, client):
        ack()
        publish_home(context["runtime"], client, workspace_id=context["team_id"], user_id=body["user"]["id"])

    @app.action("home.add_customer")
    def add_customer(ack: Ack, body, context, client):
        ack()
        forms.open_customer_form(context["runtime"], client, trigger_id=body["trigger_id"],
                                 workspace_id=context["team_id"], user_id=body["user"]["id"])

    @app.action("home.account")
    def account_menu(ack: Ack, body, context, client):
        ack()
        what, _, customer_id = action_value(body).partition(":")
        runtime, team = context["runtime"], context["team_id"]
        if what == "touch":
            forms.open_touch_form(runtime, client, trigger_id=body["trigger_id"], workspace_id=team,
                                  customer_id=customer_id)
        elif what == "remind":
            forms.open_remind_form(runtime, client, trigger_id=body["trigger_id"], workspace_id=team,
                                   customer_id=customer_id)
        else:
            forms.open_card_modal(runtime, client, trigger_id=body["trigger_id"], workspace_id=team,
                                  customer_id=customer_id)
