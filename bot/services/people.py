"""What we know about Slack people (time zone, admin flags, team), cached from users.info."""

from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from models import SlackUser

FRESH_FOR = timedelta(hours=12)


def cached_person(session: Session, *, workspace_id: str, user_id: str, now: datetime) -> SlackUser | None:
    """The cached profile while fresh; None when it must be asked of Slack again."""
    person = session.get(SlackUser, (workspace_id, user_id))
    if person is None or now - person.fetched_at > FRESH_FOR:
        return None
    return person


def any_cached_person(session: Session, *, workspace_id: str, user_id: str) -> SlackUser | None:
    """The cached profile however old: better than nothing when Slack cannot be asked."""
    return session.get(SlackUser, (workspace_id, user_id))


def outsider(team_id: str | None, is_restricted: bool, *, workspace_id: str) -> bool:
    """A guest of our workspace, or someone from another organisation (Slack Connect): not one of our team."""
    return bool(is_restricted or (team_id and team_id != workspace_id))


def not_teammate(person: SlackUser | None, *, workspace_id: str) -> str | None:
    """Why this person is not a member of our own team — "unknown", "other_org", "guest", "bot", "deleted" — or
    None when they are. The one rule behind who may use Rapport and who may be an owner, a manager, a digest
    subscriber or an escalation target."""
    if person is None:
        return "unknown"
    if person.team_id and person.team_id != workspace_id:
        return "other_org"
    if person.is_restricted:
        return "guest"
    if person.is_bot:
        return "bot"
    if person.deleted:
        return "deleted"
    return None


def remember_person(session: Session, *, workspace_id: str, info: dict, now: datetime) -> SlackUser:
    """Store a users.info `user` object (only the fields we use). Two lookups of the same new person may race:
    the row is created in a savepoint, and the loser updates the winner's row."""
    profile = info.get("profile") or {}
    person = session.get(SlackUser, (workspace_id, info["id"]))
    if person is None:
        try:
            with session.begin_nested():
                person = SlackUser(workspace_id=workspace_id, user_id=info["id"], fetched_at=now)
                session.add(person)
        except IntegrityError:
            person = session.get(SlackUser, (workspace_id, info["id"]))
    person.team_id = info.get("team_id")
    person.name = (profile.get("display_name") or info.get("real_name") or info.get("name") or "")[:200]
    person.email = profile.get("email")
    person.tz = info.get("tz") or "UTC"
    person.is_admin = bool(info.get("is_admin"))
    person.is_owner = bool(info.get("is_owner"))
    person.is_restricted = bool(info.get("is_restricted") or info.get("is_ultra_restricted"))
    person.is_bot = bool(info.get("is_bot"))
    person.deleted = bool(info.get("deleted"))
    person.fetched_at = now
    session.add(person)
    return person
