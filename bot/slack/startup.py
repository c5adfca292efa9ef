"""Before `rapport serve` starts: Slack is asked about each token it was given, and a refusal is one line for the
operator (ConfigError: `rapport: SLACK_APP_TOKEN was refused by Slack (invalid_auth): …`, exit code 2), not the
traceback Bolt's start-up check and the Socket Mode client would print."""

import logging

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.config import ConfigError

# Slack's answers that mean "this token will not do", and what the operator does about each.
_NEW_BOT_STEPS = ("copy the Bot User OAuth Token (xoxb-…) again from OAuth & Permissions in the app's settings, "
                  "and reinstall the app to the workspace if it was removed")
_NEW_APP_STEPS = ("create an App-Level Token with the connections:write scope under Basic Information → "
                  "App-Level Tokens in the app's settings, and set it")
_WHAT_TO_DO = {
    "SLACK_BOT_TOKEN": {
        "invalid_auth": _NEW_BOT_STEPS,
        "not_authed": _NEW_BOT_STEPS,
        "token_revoked": "the token was revoked; " + _NEW_BOT_STEPS,
        "account_inactive": "the app was removed from the workspace or the workspace is gone; " + _NEW_BOT_STEPS,
        "not_allowed_token_type": "this is not a bot token; " + _NEW_BOT_STEPS,
        "token_expired": ("this token rotates and has expired; turn token rotation off in OAuth & Permissions, or "
                          "install by OAuth with SLACK_CLIENT_ID and SLACK_CLIENT_SECRET instead"),
    },
    "SLACK_APP_TOKEN": {
        "invalid_auth": _NEW_APP_STEPS,
        "not_authed": _NEW_APP_STEPS,
        "token_revoked": "the token was revoked; " + _NEW_APP_STEPS,
        "account_inactive": "the app or its workspace is gone; " + _NEW_APP_STEPS,
        "not_allowed_token_type": "this is not an App-Level Token; " + _NEW_APP_STEPS,
        "missing_scope": "the App-Level Token lacks the connections:write scope; " + _NEW_APP_STEPS,
    },
}


class SlackRefused(ConfigError):
    """Slack refused a token at start, or could not be asked; the message is one line naming the setting."""


def check_bot_token(client: WebClient, *, setting: str = "SLACK_BOT_TOKEN") -> dict:
    """auth.test with the configured bot token; its answer (team, bot user) or SlackRefused."""
    return _ask(setting, "auth.test", client, lambda quiet: quiet.auth_test())


def open_socket_url(client: WebClient, app_token: str, *, setting: str = "SLACK_APP_TOKEN") -> str:
    """apps.connections.open with the app-level token: the ws(s):// URL to connect to, or SlackRefused."""
    answer = _ask(setting, "apps.connections.open", client, lambda quiet: quiet.apps_connections_open(app_token=app_token))
    return answer["url"]


# slack_sdk logs every connection retry (an ERROR and an INFO line each); at start the one line below says it all.
_QUIET = logging.getLogger(__name__ + ".client")
_QUIET.propagate = False
_QUIET.addHandler(logging.NullHandler())


def _quiet(web: WebClient) -> WebClient:
    """The same client (token, base URL, timeout, retries) with its retry chatter kept out of the start-up output."""
    return WebClient(token=web.token, base_url=web.base_url, timeout=web.timeout,
                     retry_handlers=web.retry_handlers, logger=_QUIET)


def _ask(setting: str, method: str, web: WebClient, call) -> dict:
    try:
        return call(_quiet(web)).data
    except SlackApiError as exc:
        error = str(exc.response.get("error") or f"HTTP {exc.response.status_code}")
        what_to_do = _WHAT_TO_DO[setting].get(error)
        if what_to_do is None:
            raise SlackRefused(f"Slack did not check {setting} ({method}: {error}): try again in a minute; if it "
                               "goes on, see https://slack-status.com") from None
        raise SlackRefused(f"{setting} was refused by Slack ({error}): {what_to_do}") from None
    except OSError as exc:  # refused connection, DNS, TLS, timeout: urllib's errors are all OSErrors
        reason = getattr(exc, "reason", None) or exc
        raise SlackRefused(f"Slack could not be reached at {web.base_url} to check {setting} "
                           f"({type(reason).__name__}): check the network and SLACK_API_URL") from None
