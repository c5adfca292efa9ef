"""Looking people up in Slack (users.info) through the cache, for permissions and time zones."""

import logging

from slack_sdk.errors import SlackApiError

from bot.db import read_scope, session_scope
from bot.errors import PermissionDenied
from bot.runtime import Runtime
from bot.services.customers import Actor
from bot.services.people import cached_person, remember_person
from bot.services.transfer import LookupFailed
from models import SlackUser

log = logging.getLogger(__name__)


def lookup(runtime: Runtime, client, *, workspace_id: str, user_id: str) -> SlackUser | None:
    now = runtime.clock.now()
    with read_scope(runtime.engine) as session:  # the usual case: a cache hit, no write lock needed
        person = cached_person(session, workspace_id=workspace_id, user_id=user_id, now=now)
    if person is not None:
        return person
    try:
        info = client.users_info(user=user_id)["user"]
    except SlackApiError as exc:
        log.warning("users.info %s failed: %s", user_id, exc.response.get("error"))
        return None
    with session_scope(runtime.engine) as session:
        return remember_person(session, workspace_id=workspace_id, info=info, now=now)


def member(runtime: Runtime, client, *, workspace_id: str, user_id: str) -> SlackUser | None:
    """The caller, if a member of our own team (None when Slack could not be asked). Guests and people from other
    organisations (who may share a channel with us) are politely turned away: customer records are internal."""
    person = lookup(runtime, client, workspace_id=workspace_id, user_id=user_id)
    if person is not None and (person.is_restricted or (person.team_id and person.team_id != workspace_id)):
        raise PermissionDenied("Sorry, Rapport is for members of our own team. Guests and people from other "
                               "organisations can answer our surveys, but customer records stay internal.")
    return person


def actor(runtime: Runtime, client, *, workspace_id: str, user_id: str, person: SlackUser | None = None) -> Actor:
    """Who is acting and whether Slack says they administer the workspace (`person`: already looked up)."""
    person = person or lookup(runtime, client, workspace_id=workspace_id, user_id=user_id)
    return Actor(user_id=user_id, is_admin=bool(person and (person.is_admin or person.is_owner)))


def find_by_email(client, email: str) -> dict | None:
    """The Slack user with this e-mail (users.lookupByEmail), None when there is none; LookupFailed when Slack
    could not say (after the client's own retries)."""
    try:
        return client.users_lookupByEmail(email=email)["user"]
    except SlackApiError as exc:
        error = exc.response.get("error")
        if error == "users_not_found":
            return None
        raise LookupFailed(error or f"HTTP {exc.response.status_code}") from None
    except OSError as exc:  # connection refused, DNS, timeouts: urllib's errors are OSErrors
        raise LookupFailed(str(exc) or type(exc).__name__) from None
