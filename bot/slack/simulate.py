"""Slack-shaped, signed requests into the real Bolt dispatch: used by the console and by the tests."""

import hashlib
import hmac
import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode

from slack_bolt import App
from slack_sdk.signature import SignatureVerifier

from bot.slack.acks import AckWaitingExecutor
from bot.slack.requests import Refused, read_request, refusal

_ids = itertools.count(1)


def sign(secret: str, body: str, timestamp: int | None = None) -> dict[str, str]:
    """The two headers Slack adds: HMAC-SHA256 over `v0:{timestamp}:{body}` with the signing secret."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    base = f"v0:{timestamp}:{body}".encode()
    digest = hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {"x-slack-request-timestamp": str(timestamp), "x-slack-signature": f"v0={digest}"}


@dataclass
class Person:
    id: str
    name: str
    team_id: str


@dataclass
class Response:
    status: int
    body: str
    headers: dict

    def json(self):
        return json.loads(self.body) if self.body else None


class SlackSimulator:
    """Builds the payloads Slack sends (commands, clicks, modal submissions, shortcuts, options, events)."""

    def __init__(self, app: App, *, signing_secret: str, team_id: str, response_url_base: str, app_id="A0RAPPORT"):
        self.app = app
        self.secret = signing_secret
        self.verifier = SignatureVerifier(signing_secret=signing_secret)
        self.team_id = team_id
        self.app_id = app_id
        self.response_url_base = response_url_base.rstrip("/")
        # Sends a signed request some other way (over HTTP to a real server): (body, headers) -> Response.
        self.transport: Callable[[str, dict], Response] | None = None

    # -- transport ----------------------------------------------------------------------------------
    def send(self, body: str, content_type: str, *, extra_headers: dict | None = None) -> Response:
        headers = {"content-type": content_type, **sign(self.secret, body), **(extra_headers or {})}
        if self.transport is not None:
            return self.transport(body, headers)
        try:  # read as the HTTP edge reads it
            request = read_request(body.encode(), headers, self.verifier)
        except Refused as refused:
            response = refusal(refused)
        else:
            response = self.app.dispatch(request)
        return Response(status=response.status, body=response.body, headers=response.headers)

    def _form(self, fields: dict) -> Response:
        return self.send(urlencode(fields), "application/x-www-form-urlencoded")

    def _payload(self, payload: dict) -> Response:
        return self._form({"payload": json.dumps(payload)})

    def response_url(self, kind: str) -> str:
        return f"{self.response_url_base}/{kind}-{next(_ids)}"

    def _trigger(self) -> str:
        return f"{next(_ids)}.{int(time.time())}.trigger"

    def _user(self, person: Person) -> dict:
        return {"id": person.id, "username": person.name, "name": person.name, "team_id": person.team_id}

    def _team(self) -> dict:
        return {"id": self.team_id, "domain": "rapport-sim"}

    # -- what people do -----------------------------------------------------------------------------
    def command(self, person: Person, channel_id: str, text: str, *, channel_name="channel", command="/crm"):
        return self._form(
            {
                "token": "legacy",
                "team_id": self.team_id,
                "team_domain": "rapport-sim",
                "channel_id": channel_id,
                "channel_name": channel_name,
                "user_id": person.id,
                "user_name": person.name,
                "command": command,
                "text": text,
                "api_app_id": self.app_id,
                "is_enterprise_install": "false",
                "response_url": self.response_url("commands"),
                "trigger_id": self._trigger(),
            }
        )

    def click(self, person: Person, *, action: dict, channel_id: str | None = None, message: dict | None = None,
              view: dict | None = None, ephemeral: bool = False) -> Response:
        """Press a button (or pick from a menu): `action` is the element as rendered, e.g. a button dict."""
        payload = {
            "type": "block_actions",
            "user": self._user(person),
            "api_app_id": self.app_id,
            "token": "legacy",
            "trigger_id": self._trigger(),
            "team": self._team(),
            "enterprise": None,
            "is_enterprise_install": False,
            "actions": [
                {
                    "type": action.get("type", "button"),
                    "action_id": action["action_id"],
                    "block_id": action.get("block_id", "b"),
                    "text": action.get("text", {"type": "plain_text", "text": ""}),
                    "value": action.get("value", ""),
                    "action_ts": f"{time.time():.6f}",
                    **({"selected_option": action["selected_option"]} if "selected_option" in action else {}),
                }
            ],
        }
        if view is not None:
            payload["container"] = {"type": "view", "view_id": view.get("id", "V0")}
            payload["view"] = view
        else:
            ts = (message or {}).get("ts", "0000000000.000000")
            payload["container"] = {"type": "message", "message_ts": ts, "channel_id": channel_id,
                                    "is_ephemeral": ephemeral}
            payload["channel"] = {"id": channel_id, "name": "channel"}
            payload["message"] = message or {"ts": ts, "text": ""}
            payload["response_url"] = self.response_url("actions")
        return self._payload(payload)

    def submit(self, person: Person, view: dict, values: dict) -> Response:
        """Submit a modal. `values` is Slack's state.values: {block_id: {action_id: {...}}}."""
        submitted = {
            **view,
            "id": view.get("id", f"V{next(_ids)}"),
            "team_id": self.team_id,
            "app_installed_team_id": self.team_id,
            "state": {"values": values},
            "hash": "h",
        }
        payload = {
            "type": "view_submission",
            "team": self._team(),
            "user": self._user(person),
            "api_app_id": self.app_id,
            "token": "legacy",
            "trigger_id": self._trigger(),
            "view": submitted,
            "response_urls": [],
            "is_enterprise_install": False,
            "enterprise": None,
        }
        return self._payload(payload)

    def message_shortcut(self, person: Person, *, callback_id: str, channel_id: str, message: dict) -> Response:
        return self._payload(
            {
                "type": "message_action",
                "callback_id": callback_id,
                "trigger_id": self._trigger(),
                "team": self._team(),
                "user": self._user(person),
                "channel": {"id": channel_id, "name": "channel"},
                "message": message,
                "message_ts": message.get("ts"),
                "response_url": self.response_url("shortcuts"),
                "token": "legacy",
                "is_enterprise_install": False,
            }
        )

    def options(self, person: Person, *, action_id: str, value: str, block_id: str = "b",
                view: dict | None = None) -> Response:
        return self._payload(
            {
                "type": "block_suggestion",
                "user": self._user(person),
                "team": self._team(),
                "api_app_id": self.app_id,
                "token": "legacy",
                "action_id": action_id,
                "block_id": block_id,
                "value": value,
                **({"view": {**view, "app_installed_team_id": self.team_id}} if view else {}),
            }
        )

    def event(self, event: dict, *, event_id: str | None = None, retry_num: int | None = None) -> Response:
        body = json.dumps(
            {
                "token": "legacy",
                "team_id": self.team_id,
                "api_app_id": self.app_id,
                "event": event,
                "type": "event_callback",
                "event_id": event_id or f"Ev{next(_ids):08d}",
                "event_time": int(time.time()),
                "authorizations": [{"team_id": self.team_id, "user_id": "UBOT", "is_bot": True}],
            }
        )
        extra = {}
        if retry_num is not None:
            extra = {"x-slack-retry-num": str(retry_num), "x-slack-retry-reason": "http_timeout"}
        return self.send(body, "application/json", extra_headers=extra)


class TrackingExecutor(AckWaitingExecutor):
    """Rapport's listener pool, able to say when every listener has finished (the console and tests wait on it)."""

    def __init__(self, max_workers: int = 8):
        super().__init__(max_workers)
        self._busy = 0
        self._idle = threading.Condition()
        self.errors: list[BaseException] = []

    def submit(self, fn, /, *args, **kwargs):
        with self._idle:
            self._busy += 1

        def run():
            try:
                return fn(*args, **kwargs)
            except BaseException as exc:  # recorded for tests; Bolt's own runner already logged it
                self.errors.append(exc)
                raise
            finally:
                with self._idle:
                    self._busy -= 1
                    self._idle.notify_all()

        return super().submit(run)

    @property
    def busy(self) -> int:
        """Listeners running or queued now."""
        with self._idle:
            return self._busy

    def wait_idle(self, timeout: float = 10.0) -> None:
        with self._idle:
            if not self._idle.wait_for(lambda: self._busy == 0, timeout=timeout):
                raise TimeoutError(f"{self._busy} listener(s) still running after {timeout}s")
