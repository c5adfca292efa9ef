"""Looking people up in Slack (users.info) through the cache, for permissions and time zones."""

import logging

from slack_sdk.errors import SlackApiError

from bot.db import read_scope, session_scope
from bot.errors import LookupFailed, PermissionDenied
from bot.runtime import Runtime
from bot.services.customers import Actor
from bot.services.people import any_cached_person, cached_person, outsider, remember_person
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
    except (SlackApiError, OSError, ValueError) as exc:  # Slack said no, or could not be reached / read
        reason = exc.response.get("error") if isinstance(exc, SlackApiError) else str(exc) or type(exc).__name__
        log.warning("users.info %s failed: %s; using what is cached, if anything", user_id, reason)
        with read_scope(runtime.engine) as session:
            return any_cached_person(session, workspace_id=workspace_id, user_id=user_id)
    with session_scope(runtime.engine) as session:
        return remember_person(session, workspace_id=workspace_id, info=info, now=now)


def member(runtime: Runtime, client, *, workspace_id: str, user_id: str) -> SlackUser | None:
    """The caller, if a member of our own team. Guests and people from other organisations (who may share a
    channel with us) are politely turned away: customer records are internal. LookupFailed when Slack cannot
    say who this is (and they were never seen before)."""
    person = lookup(runtime, client, workspace_id=workspace_id, user_id=user_id)
    if person is None:  # never seen, and Slack cannot be asked now: customer records stay closed
        raise LookupFailed("I could not check with Slack that you are a member of our team just now. Please try "
                           "again in a minute.")
    if outsider(person.team_id, person.is_restricted, workspace_id=workspace_id):
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
