"""/crm digest: preview the weekly key-account digest now, and subscribe to it by DM."""

from bot.errors import BadInput
from bot.services import digest as svc
from bot.services.customers import ensure_may_change
from bot.slack.digest import fallback_text, preview_blocks
from bot.slack.render import render
from handlers.crm import Command, Reply, Router, Subcommand

DIGEST = Subcommand(
    name="digest",
    usage="/crm digest [preview|subscribe|unsubscribe]",
    summary="the weekly key-account health digest: see it as of now, or get it by DM",
    examples=["/crm digest", "/crm digest subscribe"],
    run=lambda command: digest(command),
    group="Managers",
)


def digest(command: Command) -> Reply:
    action = command.args[0].text.lower() if command.args else "preview"
    if len(command.args) > 1 or action not in ("preview", "subscribe", "unsubscribe"):
        raise BadInput("I could not read that.", hint=DIGEST.usage_hint())
    if action == "preview":
        with command.read() as (session, workspace):
            built = svc.build_digest(session, workspace=workspace, now=command.now)
            blocks = preview_blocks(built, workspace)
        return Reply(text=fallback_text(built), blocks=blocks)
    actor = command.actor()
    with command.work() as (session, workspace):
        if action == "subscribe":
            ensure_may_change(workspace, None, actor)  # the digest shows every key account: managers only
        svc.subscribe(session, workspace=workspace, user_id=command.user_id, on=action == "subscribe")
    text = (":white_check_mark: You'll get the key-account digest by DM every week." if action == "subscribe"
            else ":white_check_mark: You won't get the digest by DM any more.")
    return Reply(text="Digest subscription saved", blocks=render("notice.j2", text=text))


def register(app, router: Router) -> None:
    router.add(DIGEST)
