"""Which channels are internal: a channel shared with another organisation never receives internal content."""

from datetime import datetime

from sqlalchemy import update
from sqlmodel import Session, select

from models import SlackUser, Workspace


def sharing(info: dict) -> str | None:
    """How a conversations.info `channel` is shared outside our organisation — "shared" (another organisation
    is in it), "pending" (one is invited) — or None for an internal channel. Sharing among the workspaces of
    our own Enterprise Grid org (`is_org_shared`) stays internal."""
    if info.get("is_ext_shared"):
        return "shared"
    if info.get("is_pending_ext_shared"):
        return "pending"
    if info.get("is_shared") and not info.get("is_org_shared"):
        return "shared"
    return None


def managers_channel(workspace: Workspace) -> str | None:
    """Where internal content for the managers (digest, escalations, notices) may be posted: the configured
    channel unless it has been found shared."""
    if workspace.digest_channel and workspace.digest_channel_shared_at is None:
        return workspace.digest_channel
    return None


def mark_managers_channel_shared(session: Session, *, workspace_id: str, channel_id: str, now: datetime) -> bool:
    """Record that the managers' channel is shared; True only for the one caller that recorded it (the admins
    are told once), False when it was known already or `channel_id` is not the managers' channel. One guarded
    UPDATE, so two processes (or Slack's event and a digest's own check) hearing it at once cannot both win."""
    marked = session.execute(
        update(Workspace)
        .where(Workspace.id == workspace_id, Workspace.digest_channel == channel_id,
               Workspace.digest_channel_shared_at.is_(None))
        .values(digest_channel_shared_at=now)
    )
    return marked.rowcount == 1


def people_to_tell(session: Session, *, workspace: Workspace) -> list[str]:
    """The managers and the workspace admins Rapport knows (from the people cache), members of our team."""
    admins = session.exec(
        select(SlackUser.user_id).where(
            SlackUser.workspace_id == workspace.id, (SlackUser.is_admin | SlackUser.is_owner),
            SlackUser.team_id == workspace.id, SlackUser.is_restricted.is_(False), SlackUser.is_bot.is_(False),
            SlackUser.deleted.is_(False))
        .order_by(SlackUser.user_id)
    ).all()
    return list(dict.fromkeys([*workspace.managers, *admins]))
