"""Looking people up in Slack (users.info) through the cache, for permissions and time zones."""

import logging
from datetime import timedelta

from slack_sdk.errors import SlackApiError

from bot.db import read_scope, session_scope
from bot.errors import LookupFailed, NotOurTeam, PermissionDenied
from bot.runtime import Runtime
from bot.services.customers import Actor
from bot.services.names import USER_ID
from bot.services.people import any_cached_person, cached_person, not_teammate, remember_person
from bot.slack.render import render
from models import SlackUser

log = logging.getLogger(__name__)
DEFINITE = {"user_not_found", "account_inactive", "user_disabled"}  # users.info answers that are not outages
STALE_AT_MOST = timedelta(days=7)  # how old a cached profile may be to stand in while Slack cannot be asked


def lookup(runtime: Runtime, client, *, workspace_id: str, user_id: str) -> SlackUser | None:
    return _lookup(runtime, client, workspace_id=workspace_id, user_id=user_id)[0]


def _lookup(runtime: Runtime, client, *, workspace_id: str, user_id: str) -> tuple[SlackUser | None, bool]:
    """The person (cached, or as Slack describes them), and whether Slack is known to have said there is no such
    person (rather than could not be asked)."""
    now = runtime.clock.now()
    with read_scope(runtime.engine) as session:  # the usual case: a cache hit, no write lock needed
        person = cached_person(session, workspace_id=workspace_id, user_id=user_id, now=now)
    if person is not None:
        return person, False
    try:
        info = client.users_info(user=user_id)["user"]
    except SlackApiError as exc:
        error = exc.response.get("error") or f"http_{exc.response.status_code}"
        log.warning("users.info %s failed: %s", user_id, error)
        if error in DEFINITE:  # Slack knows: this person is gone, whatever we cached
            return None, True
        return _last_known(runtime, workspace_id=workspace_id, user_id=user_id, now=now), False
    except (OSError, ValueError) as exc:  # Slack could not be reached, or its answer read
        log.warning("users.info %s failed: %s", user_id, str(exc) or type(exc).__name__)
        return _last_known(runtime, workspace_id=workspace_id, user_id=user_id, now=now), False
    with session_scope(runtime.engine) as session:
        return remember_person(session, workspace_id=workspace_id, info=info, now=now), False


def _last_known(runtime: Runtime, *, workspace_id: str, user_id: str, now) -> SlackUser | None:
    """While Slack cannot be asked: the cached profile if under a week old, as a copy without admin rights (those
    are only granted from a fresh answer)."""
    with read_scope(runtime.engine) as session:
        cached = any_cached_person(session, workspace_id=workspace_id, user_id=user_id)
    if cached is None or now - cached.fetched_at > STALE_AT_MOST:
        return None
    fields = {name: getattr(cached, name) for name in SlackUser.model_fields}
    return SlackUser(**{**fields, "is_admin": False, "is_owner": False})  # a new object: the row is not changed


def member(runtime: Runtime, client, *, workspace_id: str, user_id: str) -> SlackUser | None:
    """The caller, if a member of our own team. Guests and people from other organisations (who may share a
    channel with us) are politely turned away: customer records are internal. LookupFailed when Slack cannot
    say who this is (and they were never seen before)."""
    person, gone = _lookup(runtime, client, workspace_id=workspace_id, user_id=user_id)
    if gone:
        raise PermissionDenied("Sorry, Slack says you are not an active member of this workspace, so customer "
                               "records stay closed to you.")
    if person is None:  # never seen, and Slack cannot be asked now: customer records stay closed
        raise LookupFailed("I could not check with Slack that you are a member of our team just now. Please try "
                           "again in a minute.")
    why = not_teammate(person, workspace_id=workspace_id)
    if why is not None:
        raise _refusal(why, role="crm", person=person)
    return person


def ensure_teammate(runtime: Runtime, client, *, workspace_id: str, user_id: str, role: str,
                    field: str | None = None) -> SlackUser | None:
    """The one gate for roles that are for our own team only: `role` is "owner", "manager" or "subscriber".
    NotOurTeam, naming who and why, for a guest, someone from another organisation (Slack Connect), a bot or a
    deactivated account — and for someone Slack cannot tell us about, since a role given blindly cannot be
    taken back before it leaks. Called before anything is written. A value that is no user id at all is left to
    the service to refuse in its own words (None)."""
    if not USER_ID.fullmatch(user_id):
        return None
    person = lookup(runtime, client, workspace_id=workspace_id, user_id=user_id)
    why = not_teammate(person, workspace_id=workspace_id)
    if why is not None:
        raise _refusal(why, role=role, person=person, user_id=user_id, field=field)
    return person


def outsiders_dropped(runtime: Runtime, client, *, workspace_id: str, user_ids: list[str]) -> list[str]:
    """`user_ids` (managers, digest subscribers: who background work is about to DM internal content) without
    guests and people from other organisations — named before the gate above existed, or who changed since.
    A deactivated account or one Slack cannot tell us about is kept: its post fails and is reported as before."""
    kept = []
    for user_id in user_ids:
        why = not_teammate(lookup(runtime, client, workspace_id=workspace_id, user_id=user_id),
                           workspace_id=workspace_id)
        if why in ("other_org", "guest", "bot"):
            log.warning("not sending internal content of %s to %s (%s)", workspace_id, user_id, why)
            continue
        kept.append(user_id)
    return kept


def _refusal(why: str, *, role: str, person: SlackUser | None, user_id: str | None = None,
             field: str | None = None) -> NotOurTeam:
    words = render("not_teammate.j2", why=why, role=role, user_id=user_id,
                   name=person.name if person is not None else None)
    return NotOurTeam(mrkdwn=words["mrkdwn"], plain=words["plain"], field=field)


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
