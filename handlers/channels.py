"""channel_shared: when the managers' channel is shared with another organisation, internal posts stop there."""

from slack_bolt import App

from bot.slack import channels
from handlers.crm import Router


def register(app: App, router: Router) -> None:
    @app.event("channel_shared")
    def channel_shared(event, context, client):
        channels.became_shared(context["runtime"], client, workspace_id=context["team_id"],
                               channel_id=event.get("channel") or "")
