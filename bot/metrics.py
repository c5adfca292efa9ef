"""What one process counts for GET /metrics (Prometheus text format, prometheus_client's default registry).

Each `rapport serve` process exposes its own figures; Prometheus scrapes every replica and sums them. Labels
carry only bounded values — a request's kind, a Slack method, a Slack error code, a tick's name — never a
workspace, a person or any text.
"""

from prometheus_client import Counter, Histogram
from slack_sdk.http_retry.handler import RetryHandler

# Slack gives up on an unacknowledged request after 3 seconds: the buckets are dense around it.
ACK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 2.5, 3.0, 5.0, 10.0)
TICK_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)

REQUESTS = Counter("rapport_requests", "Requests from Slack answered, by kind and HTTP status", ["kind", "status"])
ACK_SECONDS = Histogram("rapport_ack_seconds", "From dispatching a request from Slack to its answer (the ack)",
                        ["kind"], buckets=ACK_BUCKETS)
SLACK_API_CALLS = Counter("rapport_slack_api_calls", "Slack Web API calls, each HTTP attempt, by method",
                          ["method"])
SLACK_API_ERRORS = Counter("rapport_slack_api_errors",
                           "Slack Web API attempts that failed, by method and Slack's error (or http_<status>, "
                           "or the exception for no answer)", ["method", "error"])
REMINDERS_CLAIMED = Counter("rapport_reminders_claimed", "Reminders claimed by this process for delivery")
REMINDERS_DUE = Counter("rapport_reminders_due",
                        "Claimed reminders whose delivery time had come (the rest wait for working hours)")
REMINDERS_SENT = Counter("rapport_reminders_sent", "Reminders delivered (carried by a DM Slack accepted)")
REMINDERS_FAILED = Counter("rapport_reminders_failed", "Reminder delivery attempts that failed, by error",
                           ["error"])
REMINDERS_PAUSED = Counter("rapport_reminders_paused",
                           "Reminders put back unsent because their workspace is paused (token refused)")
DIGEST_RUNS = Counter("rapport_digest_runs", "Weekly digests this process claimed or skipped, by outcome",
                      ["outcome"])
TICK_SECONDS = Histogram("rapport_scheduler_tick_seconds", "How long each scheduled tick ran", ["tick"],
                         buckets=TICK_BUCKETS)
TICK_FAILURES = Counter("rapport_scheduler_tick_failures", "Scheduled ticks that raised", ["tick"])

# Slack's payload types as the kinds operators know them; anything else is "other" (labels stay bounded).
_KINDS = {
    "block_actions": "action",
    "interactive_message": "action",
    "view_submission": "view_submission",
    "view_closed": "view_closed",
    "block_suggestion": "block_suggestion",
    "shortcut": "shortcut",
    "message_action": "shortcut",
    "event_callback": "event",
    "url_verification": "url_verification",
    "ssl_check": "ssl_check",
}


def kind_of(body: dict | None) -> str:
    body = body or {}
    if "command" in body:
        return "command"
    return _KINDS.get(body.get("type") or "", "other")


def request_answered(*, kind: str, status: int, seconds: float) -> None:
    REQUESTS.labels(kind=kind, status=str(status)).inc()
    ACK_SECONDS.labels(kind=kind).observe(seconds)


def _method_of(url: str) -> str:
    return url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1] or "unknown"


class CountingRetryHandler(RetryHandler):
    """Counts every Web API attempt of every client it is given to, and never retries.

    slack_sdk hands each HTTP answer (a 200 included, with its parsed body) and each connection error to the
    client's retry handlers in turn, until one of them retries: first in the list, this one sees them all.
    Bolt copies the app client's handlers into every per-request client, so one hook covers requests and
    background work alike."""

    def __init__(self):
        super().__init__(max_retry_count=0)

    def can_retry(self, *, state, request, response=None, error=None) -> bool:
        method = _method_of(request.url)
        SLACK_API_CALLS.labels(method=method).inc()
        failure = None
        if response is None:
            failure = type(error).__name__ if error is not None else "no_response"
        elif response.status_code != 200:
            failure = f"http_{response.status_code}"
        elif isinstance(response.body, dict) and response.body.get("ok") is False:
            failure = str(response.body.get("error") or "unknown")[:64]
        if failure is not None:
            SLACK_API_ERRORS.labels(method=method, error=failure).inc()
        return False


COUNTING = CountingRetryHandler()
