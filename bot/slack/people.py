"""Looking people up in Slack (users.info) through the cache, for permissions and time zones."""

import logging

from slack_sdk.errors import SlackApiError

from bot.db import read_scope, session_scope
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


def actor(runtime: Runtime, client, *, workspace_id: str, user_id: str) -> Actor:
    person = lookup(runtime, client, workspace_id=workspace_id, user_id=user_id)
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
