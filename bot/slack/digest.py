"""Posting the weekly digest: once per workspace per period, to the managers' channel and subscribers,
split into messages of at most 50 blocks with the rest in the thread."""

import logging
from collections.abc import Callable

from slack_sdk.errors import SlackApiError
from sqlmodel import select

from bot import metrics
from bot.db import session_scope
from bot.runtime import Runtime
from bot.services import digest as svc
from bot.services import health
from bot.services.digest import Digest
from bot.services.reminders import PERMANENT_ERRORS
from bot.slack import channels, people
from bot.slack.client import client_for, post_to_each
from bot.slack.installs import TokenRefused, WorkspacePaused
from bot.slack.render import channel, render, user
from bot.slack.text import escape_mrkdwn
from models import Workspace
from models.enums import Tier

log = logging.getLogger(__name__)

MESSAGE_BLOCKS = 50


def blocks_for(digest: Digest, workspace: Workspace, *, preview: bool = False) -> list:
    weights = ", ".join(f"{health.LABELS[k]} {v}%" for k, v in workspace.health_weights.items() if v)
    return render("digest.j2", digest=digest, preview=preview, weights=weights)


def preview_blocks(digest: Digest, workspace: Workspace) -> list:
    """The digest as one ephemeral message (`/crm digest`): it has no thread to continue in, so a long one is cut,
    keeping the legend and saying how many lines are in the full digest."""
    blocks = blocks_for(digest, workspace, preview=True)
    if len(blocks) <= MESSAGE_BLOCKS:
        return blocks
    kept, hidden, legend = blocks[: MESSAGE_BLOCKS - 2], blocks[MESSAGE_BLOCKS - 2 : -1], blocks[-1]
    lines = sum(1 for block in hidden if block.get("type") == "section")
    note = {"type": "context", "elements": [{"type": "mrkdwn", "text": (
        f"…{lines} more lines in the full digest, posted weekly to the managers' channel.")}]}
    return [*kept, note, legend]


def split(blocks: list, limit: int = MESSAGE_BLOCKS) -> list[list]:
    """Messages of at most `limit` blocks; a header never ends a message (it moves on with its section)."""
    messages, current = [], []
    for block in blocks:
        if len(current) == limit:
            carry = [current.pop()] if current[-1].get("type") == "header" else []
            messages.append(current)
            current = carry
        current.append(block)
    if current:
        messages.append(current)
    return messages


def fallback_text(digest: Digest) -> str:
    bands = digest.bands
    return escape_mrkdwn(
        f"Key-account digest {digest.period}: {bands['healthy']} healthy, {bands['watch']} watch, "
        f"{bands['at_risk']} at risk" + (f", {bands['insufficient']} without enough data" if bands["insufficient"] else "")
    )


class ClaimLost(Exception):
    """The run's claim went to another process (this one was taken for dead): it stops posting."""


def post_to(client, destination: str, digest: Digest, workspace: Workspace,
            delivered: Callable[[str, str], None], beat: Callable[[], None]) -> None:
    """Post the whole digest to one channel or person. `delivered(channel, ts)` is called as soon as its first
    message is out, so a failure in the thread after it never posts the digest there twice; such a failure is
    logged, not retried. `beat()` keeps the run's claim alive before each part (ClaimLost when it is gone)."""
    parts = split(blocks_for(digest, workspace))
    text = fallback_text(digest)
    first = client.chat_postMessage(channel=destination, text=text, blocks=parts[0], unfurl_links=False)
    delivered(first["channel"], first["ts"])
    for n, part in enumerate(parts[1:], start=2):
        beat()
        try:
            client.chat_postMessage(channel=first["channel"], thread_ts=first["ts"], blocks=part,
                                    text=f"{text} (continued, {n}/{len(parts)})", unfurl_links=False)
        except (SlackApiError, OSError) as exc:
            log.warning("digest %s to %s: part %d of %d failed (%s); the top message is out", digest.period,
                        destination, n, len(parts), exc)
            return


def run_weekly(runtime: Runtime) -> int:
    """The scheduler's pass: each workspace whose digest time has come and whose period is not posted yet. Two
    queries when every digest is out, whatever the number of workspaces."""
    now = runtime.clock.now()
    due: dict[str, str] = {}
    with session_scope(runtime.engine) as session:
        # A paused workspace's digest waits for its reinstall.
        for workspace in session.exec(select(Workspace).where(Workspace.paused_at.is_(None))).all():
            if not workspace.digest_channel and not workspace.digest_subscribers:
                continue
            moment = svc.due_moment(workspace, now)
            if moment < workspace.created_at:  # a workspace installed after its digest time waits for the next one
                continue
            due[workspace.id] = svc.period_of(moment, workspace.timezone)
        settled = svc.settled(session, periods=set(due.values()), now=now)
    posted = 0
    for workspace_id, period in due.items():
        if (workspace_id, period) in settled:
            continue
        try:
            posted += post_weekly(runtime, workspace_id, period)
        except Exception:  # one workspace's failure must not hold the others back; it is retried next pass
            log.exception("digest for %s failed", workspace_id)
    return posted


def post_weekly(runtime: Runtime, workspace_id: str, period: str) -> bool:
    now = runtime.clock.now()
    try:
        client = client_for(runtime, workspace_id)
    except WorkspacePaused:
        metrics.DIGEST_RUNS.labels(outcome="paused").inc()
        return False  # not claimed: it is posted after a reinstall
    with session_scope(runtime.engine) as session:  # the claim is committed on its own, whatever follows
        run = svc.claim_run(session, workspace_id=workspace_id, period=period, process=runtime.process, now=now)
        if run is None:
            return False
    def beat() -> None:
        with session_scope(runtime.engine) as session:
            if not svc.keep_claim(session, run_id=run.id, process=runtime.process, now=runtime.clock.now()):
                raise ClaimLost(run.id)

    try:
        errors, workspace = _deliver(runtime, client, run, now, beat)
    except ClaimLost:  # taken over while this process looked dead: the new claimant finishes the run
        log.warning("digest %s of %s: the claim went to another process; stopping here", period, workspace_id)
        return False
    except Exception:  # our own failure (a template, the database): it waits and retries like Slack's
        with session_scope(runtime.engine) as session:
            svc.finish_run(session, run_id=run.id, process=runtime.process, now=runtime.clock.now(),
                           errors={"digest": "internal_error"}, permanent=PERMANENT_ERRORS)
        metrics.DIGEST_RUNS.labels(outcome="failed").inc()
        raise
    with session_scope(runtime.engine) as session:
        given_up = svc.finish_run(session, run_id=run.id, process=runtime.process, now=runtime.clock.now(),
                                  errors=errors, permanent=PERMANENT_ERRORS)
    metrics.DIGEST_RUNS.labels(outcome="failed" if errors else "posted").inc()
    if given_up:
        tell_managers(client, workspace, period, given_up)
    return not errors


def _deliver(runtime: Runtime, client, run, now, beat: Callable[[], None]) -> tuple[dict[str, str], Workspace]:
    """Build the digest and post it where it has not gone yet: ({destination: Slack error}, the workspace)."""
    with session_scope(runtime.engine) as session:
        workspace = session.get(Workspace, run.workspace_id)
        # The digest covers key accounts: the job scores and snapshots those (other customers' snapshots are
        # kept current by refresh_snapshots every few hours), which keeps it well under 2 s at 10,000 customers.
        scored = health.score_workspace(session, workspace=workspace, now=now, tier=Tier.key)
        health.save_snapshots(session, workspace=workspace, scored=scored, now=now)
    beat()
    with session_scope(runtime.engine) as session:
        workspace = session.get(Workspace, run.workspace_id)
        digest = svc.build_digest(session, workspace=workspace, now=now, scored=scored, period=run.period)
    destinations = _destinations(runtime, client, workspace)
    errors: dict[str, str] = {}

    def delivered_to(destination: str):
        def record(channel: str, ts: str) -> None:
            with session_scope(runtime.engine) as session:
                svc.record_delivery(session, run_id=run.id, destination=destination, channel=channel, ts=ts,
                                    now=runtime.clock.now())
        return record

    for destination in destinations:
        if destination in run.delivered_to or destination in run.given_up:
            continue
        beat()
        try:
            post_to(client, destination, digest, workspace, delivered_to(destination), beat)
        except TokenRefused:  # the workspace is paused now: the run waits (resuming makes it due again)
            errors[destination] = "workspace_paused"
            break
        except SlackApiError as exc:
            errors[destination] = exc.response.get("error") or f"http_{exc.response.status_code}"
        except OSError as exc:  # connection refused, reset, timed out after the client's own retries
            log.warning("digest for %s to %s: %s", run.workspace_id, destination, exc)
            errors[destination] = "connection_error"
    return errors, workspace


def _destinations(runtime: Runtime, client, workspace: Workspace) -> list[str]:
    """The managers' channel and the subscribers. While the managers' channel is shared with another
    organisation, nothing goes there: the managers get the digest by DM instead."""
    subscribers = people.outsiders_dropped(runtime, client, workspace_id=workspace.id,
                                           user_ids=list(workspace.digest_subscribers))
    if not workspace.digest_channel:
        return subscribers
    internal = channels.managers_channel(runtime, client, workspace.id)
    if internal is not None:
        return [internal, *subscribers]
    managers = people.outsiders_dropped(runtime, client, workspace_id=workspace.id, user_ids=list(workspace.managers))
    return list(dict.fromkeys([*managers, *subscribers]))


def tell_managers(client, workspace: Workspace, period: str, given_up: dict[str, str]) -> None:
    """Once per period and destination: where the digest could not go, why, and what fixes it."""
    lines = [f"• {user(dest) if dest.startswith(('U', 'W')) else channel(dest)}: `{escape_mrkdwn(error)}`" + (f" — {FIXES[error]}" if error in FIXES else "")
             for dest, error in given_up.items()]
    channel_failed = any(not dest.startswith(("U", "W")) for dest in given_up)
    text = (f":warning: The key-account digest {period} could not be posted:\n" + "\n".join(lines)
            + ("\nSet its channel with `/crm config digest-channel #channel`." if channel_failed else "")
            + "\nThis week's digest is not sent again there; `/crm digest` shows it now.")
    post_to_each(client, list(workspace.managers), blocks=render("notice.j2", text=text),
                 text=f"The key-account digest {period} could not be posted everywhere")
    if not workspace.managers:
        log.warning("digest %s of %s could not be posted (%s) and no manager is configured to tell", period,
                    workspace.id, given_up)


FIXES = {
    "not_in_channel": "invite Rapport to the channel (`/invite @Rapport`)",
    "channel_not_found": "the channel is gone or private without Rapport in it",
    "is_archived": "the channel is archived",
    "user_not_found": "this person has left the workspace",
    "account_inactive": "this person's account is deactivated",
}
