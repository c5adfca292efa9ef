"""The Slack Web API client: base URL from settings, retries for 429 (Retry-After), and for 5xx and connection errors
only where a repeat is harmless; and notices posted to several people at once."""

import logging

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry import HttpRequest
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)

from bot.metrics import COUNTING

log = logging.getLogger(__name__)
TIMEOUT_SECONDS = 10


# Methods that add something each time they run. After a reset connection or a 5xx, Slack may have done the
# work, so the HTTP layer must not send them again blind: the caller decides (the reminder dispatcher looks in
# the DM's history first). A 429 means Slack did nothing, so it is waited out and retried for every method.
NOT_REPEATABLE = frozenset({
    "chat.postMessage", "chat.postEphemeral", "chat.scheduleMessage", "chat.meMessage",
    "files.upload", "files.completeUploadExternal", "conversations.create",
})


def repeatable(request: HttpRequest) -> bool:
    return request.url.rsplit("/", 1)[-1].split("?")[0] not in NOT_REPEATABLE


class _OnlyRepeatable:
    def _can_retry(self, *, state, request, response=None, error=None) -> bool:
        return repeatable(request) and super()._can_retry(state=state, request=request, response=response,
                                                          error=error)


class ConnectionRetry(_OnlyRepeatable, ConnectionErrorRetryHandler):
    """slack_sdk's connection-error retries, for methods a repeat cannot duplicate."""


class ServerErrorRetry(_OnlyRepeatable, ServerErrorRetryHandler):
    """slack_sdk's 5xx retries, for methods a repeat cannot duplicate."""


def retry_handlers(max_retries: int = 3) -> list:
    """Slack's own retry handlers, after the one that counts every attempt for /metrics (it must come first:
    slack_sdk stops asking at the first handler that retries)."""
    return [
        COUNTING,
        ConnectionRetry(max_retry_count=max_retries),
        RateLimitErrorRetryHandler(max_retry_count=max_retries),
        ServerErrorRetry(max_retry_count=max_retries),
    ]


def make_client(*, base_url: str, token: str | None = None, timeout: int = TIMEOUT_SECONDS) -> WebClient:
    """Bolt copies this client's base_url and retry handlers into every per-request client."""
    return WebClient(token=token, base_url=base_url, timeout=timeout, retry_handlers=retry_handlers())


QUICK_SECONDS = 1.5  # a look-up inside a request leaves the rest of Slack's 3 seconds for the answer


def quick(patient: WebClient) -> WebClient:
    """The same workspace's client for a look-up that must not make a request miss Slack's 3 seconds: one try,
    a short timeout, no waiting out a 429 (the caller finishes the work later instead)."""
    # COUNTING only counts the attempt for /metrics; it never retries.
    return WebClient(token=patient.token, base_url=patient.base_url, timeout=QUICK_SECONDS,
                     retry_handlers=[COUNTING])


def client_for(runtime, team_id: str) -> WebClient:
    """The Slack client for workspace `team_id`, for work outside a request (a request uses Bolt's client).
    Raises bot.slack.installs.WorkspacePaused when Slack refuses the workspace's token or it is not installed."""
    from bot.slack.installs import clients_of

    return clients_of(runtime).for_team(team_id)


def post_to_each(client: WebClient, targets: list[str], *, text: str, blocks: list) -> int:
    """A notice (to managers, say) posted to each target; one that fails is logged, not raised, so the others
    still get it. Returns how many got it. `text` is the notification fallback, already safe mrkdwn."""
    sent = 0
    for target in targets:
        try:
            client.chat_postMessage(channel=target, text=text, blocks=blocks)
            sent += 1
        except (SlackApiError, OSError) as exc:
            error = exc.response.get("error") if isinstance(exc, SlackApiError) else exc
            log.warning("could not post a notice to %s: %s", target, error)
    return sent
