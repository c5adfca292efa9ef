"""The Slack Web API client: base URL from settings, retries for 429 (Retry-After), 5xx and connection errors;
and notices posted to several people at once."""

import logging

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)

from bot.metrics import COUNTING

log = logging.getLogger(__name__)
TIMEOUT_SECONDS = 10


def retry_handlers(max_retries: int = 3) -> list:
    """Slack's own retry handlers, after the one that counts every attempt for /metrics (it must come first:
    slack_sdk stops asking at the first handler that retries)."""
    return [
        COUNTING,
        ConnectionErrorRetryHandler(max_retry_count=max_retries),
        RateLimitErrorRetryHandler(max_retry_count=max_retries),
        ServerErrorRetryHandler(max_retry_count=max_retries),
    ]


def make_client(*, base_url: str, token: str | None = None, timeout: int = TIMEOUT_SECONDS) -> WebClient:
    """Bolt copies this client's base_url and retry handlers into every per-request client."""
    return WebClient(token=token, base_url=base_url, timeout=timeout, retry_handlers=retry_handlers())


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
