"""Asking Slack whether a channel is internal before internal content goes there, and what happens when the
managers' channel turns out shared with another organisation (the rules: bot/services/channels.py)."""

import logging

from slack_sdk.errors import SlackApiError

from bot.db import read_scope, session_scope
from bot.errors import ChannelRefused, LookupFailed
from bot.runtime import Runtime
from bot.services import channels as svc
from bot.services.people import not_teammate
from bot.services.workspaces import get_workspace
from bot.slack import people
from bot.slack.client import post_to_each
from bot.slack.render import render
from models import Workspace

log = logging.getLogger(__name__)


def channel_info(client, channel_id: str) -> dict | None:
    """conversations.info's `channel`; None when the channel does not exist or is private without us in it.
    LookupFailed when Slack cannot be asked now."""
    try:
        return client.conversations_info(channel=channel_id)["channel"]
    except SlackApiError as exc:
        error = exc.response.get("error") or f"http_{exc.response.status_code}"
        if error == "channel_not_found":
            return None
        raise LookupFailed(f"I could not check that channel with Slack just now ({error}). Please try again in "
                           "a minute.") from None
    except OSError as exc:
        raise LookupFailed("I could not check that channel with Slack just now. Please try again in a minute.") \
            from exc


def refusal(channel_id: str, *, why: str, purpose: str, info: dict | None = None,
            field: str | None = None) -> ChannelRefused:
    words = render("channel_refused.j2", channel_id=channel_id, why=why, purpose=purpose,
                   name=(info or {}).get("name") or "")
    return ChannelRefused(mrkdwn=words["mrkdwn"], plain=words["plain"], field=field)


def ensure_internal(client, channel_id: str) -> dict:
    """For a setting that sends internal content to a channel (the managers' channel): refused, with the reason,
    when the channel is shared with another organisation, invited to be, or cannot be seen."""
    info = channel_info(client, channel_id)
    if info is None:
        raise refusal(channel_id, why="unseen", purpose="managers")
    why = svc.sharing(info)
    if why is not None:
        raise refusal(channel_id, why=why, purpose="managers", info=info)
    return info


MEMBERS_LOOKED_UP = 100  # people of a channel with no sharing checked for a guest (users.info is Tier 4)


def customers_in(runtime: Runtime, client, *, workspace_id: str, info: dict) -> bool:
    """Are customers in this channel: is it shared with another organisation, or is a guest of ours in it?
    Only the first MEMBERS_LOOKED_UP members are asked about (most of them from the people cache): a channel
    that large with no sharing is taken for an internal one."""
    if svc.sharing(info) == "shared":
        return True
    try:
        members = client.conversations_members(channel=info["id"], limit=MEMBERS_LOOKED_UP)["members"]
    except SlackApiError as exc:
        error = exc.response.get("error") or f"http_{exc.response.status_code}"
        raise LookupFailed(f"I could not check who is in that channel with Slack just now ({error}). Please try "
                           "again in a minute.") from None
    for user_id in members[:MEMBERS_LOOKED_UP]:
        person = people.lookup(runtime, client, workspace_id=workspace_id, user_id=user_id)
        if person is not None and not person.is_bot and not_teammate(person, workspace_id=workspace_id) in (
                "guest", "other_org"):
            return True
    return False


def managers_channel(runtime: Runtime, client, workspace_id: str) -> str | None:
    """The managers' channel if internal content may go there now. Slack is asked first, since a share may have
    happened while Rapport was not listening; a channel found shared is recorded (and the admins told once)
    and None returned. When Slack cannot say, the channel is kept: the post itself then fails or goes through,
    as before this check."""
    with read_scope(runtime.engine) as session:
        channel = svc.managers_channel(get_workspace(session, workspace_id))
    if channel is None:
        return None
    try:
        info = channel_info(client, channel)
    except LookupFailed:
        return channel
    if info is not None and svc.sharing(info) is not None:
        became_shared(runtime, client, workspace_id=workspace_id, channel_id=channel)
        return None
    return channel


def became_shared(runtime: Runtime, client, *, workspace_id: str, channel_id: str) -> bool:
    """A channel was shared with another organisation (the `channel_shared` event, or found so before a post).
    When it is the managers' channel, Rapport stops posting there and tells the managers and admins, once.
    True when this was news."""
    with session_scope(runtime.engine) as session:
        if not svc.mark_managers_channel_shared(session, workspace_id=workspace_id, channel_id=channel_id,
                                                now=runtime.clock.now()):
            return False
        told = svc.people_to_tell(session, workspace=session.get(Workspace, workspace_id))
    log.info("the managers' channel %s of %s is shared with another organisation: internal posts stop there",
             channel_id, workspace_id)
    told = people.outsiders_dropped(runtime, client, workspace_id=workspace_id, user_ids=told)
    sent = post_to_each(client, told, blocks=render("channel_shared.j2", channel_id=channel_id),
                        text="The managers' channel is shared with another organisation now")
    if not sent:
        log.warning("no manager or admin of %s could be told that %s is shared", workspace_id, channel_id)
    return True
