"""/crm config: show and change workspace settings (managers and workspace admins only)."""

from bot.services import settings as svc
from bot.slack import channels
from bot.slack.render import render
from handlers.crm import Command, Reply, Router, Subcommand


def config(command: Command) -> Reply:
    if not command.args:
        with command.read() as (_session, workspace):
            rows = svc.describe(workspace)
        return Reply(text="Rapport settings", blocks=render("config.j2", rows=rows, keys=svc.KEYS))
    key = command.args[0].text
    values = [token.user_id or token.channel_id or token.text for token in command.args[1:]]
    if key.lower() == "managers" and values and values[0].lower() == "add":
        for token in command.args[2:]:
            if token.user_id:  # a word that is no mention is refused by the setting itself
                command.ensure_teammate(token.user_id, role="manager")
    if key.lower() == "digest-channel" and values and command.args[1].channel_id:
        channels.ensure_internal(command.client, command.args[1].channel_id)
    actor = command.actor()
    with command.work() as (session, workspace):
        message = svc.configure(session, workspace=workspace, actor=actor, key=key, args=values)
    # The message is built from validated values only (ids, numbers, zone names), so it is safe mrkdwn.
    return Reply(text="Setting saved", blocks=render("notice.j2", text=f":white_check_mark: {message}"))


CONFIG = Subcommand(
    name="config",
    usage="/crm config [setting value…]",
    summary="workspace settings: managers, cadences, hours, time zone, digest, surveys, health weights",
    examples=["/crm config", "/crm config managers add @mei", "/crm config cadence key 10",
              "/crm config hours 08:30-17:30", "/crm config timezone Asia/Shanghai",
              "/crm config digest-channel #managers"],
    run=config,
    aliases=("settings",),
    group="Admin",
)


def register(app, router: Router) -> None:
    router.add(CONFIG)
