"""A workspace's lifecycle: uninstalled, or its bot token revoked, pauses its scheduled work (data kept)."""

from slack_bolt import App

from bot.slack.installs import clients_of
from handlers.crm import Router


def register(app: App, router: Router) -> None:
    @app.event("app_uninstalled")
    def uninstalled(context):
        clients_of(context["runtime"]).paused(context["team_id"], "app_uninstalled")

    @app.event("tokens_revoked")
    def revoked(event, context):
        if (event.get("tokens") or {}).get("bot"):  # a user's token only: the bot still works
            clients_of(context["runtime"]).paused(context["team_id"], "tokens_revoked")
