"""The Slack Web API client: base URL from settings, retries for 429 (Retry-After), 5xx and connection errors."""

from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)

TIMEOUT_SECONDS = 10


def retry_handlers(max_retries: int = 3) -> list:
    return [
        ConnectionErrorRetryHandler(max_retry_count=max_retries),
        RateLimitErrorRetryHandler(max_retry_count=max_retries),
        ServerErrorRetryHandler(max_retry_count=max_retries),
    ]


def make_client(*, base_url: str, token: str | None = None, timeout: int = TIMEOUT_SECONDS) -> WebClient:
    """Bolt copies this client's base_url and retry handlers into every per-request client."""
    return WebClient(token=token, base_url=base_url, timeout=timeout, retry_handlers=retry_handlers())
