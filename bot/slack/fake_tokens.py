"""The fake Slack's tokens and OAuth, as Slack documents them: `oauth.v2.access` (a code, or a refresh token),
a token per team, and the token check every Web API method makes.

Mixed into bot.slack.fake.FakeSlack. Deliberate choices:

* Without `strict_tokens`, a bot or user token the fake has not issued is taken as the home team's (the tests'
  and the console's preset tokens); with it, such a token is `invalid_auth`. A revoked token is always
  `invalid_auth`, an expired rotating token `token_expired`, no token `not_authed`, an app-level token
  (`xapp-`) on a Web API method `not_allowed_token_type`.
* Codes are single-use and expire after 10 minutes. Refresh tokens are single-use too (each refresh answers a
  new one), so two processes refreshing with the same one cannot both succeed; the access token they replace
  keeps working until it expires, as Slack's does.
* A call is answered in its token's team: auth.test, team.info and posted messages name that team.
"""

from __future__ import annotations

import base64
import itertools
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

CODE_SECONDS = 600
ROTATING_TOKEN_SECONDS = 12 * 3600  # Slack's rotating bot tokens expire after 12 hours
BOT_SCOPES = "commands,chat:write,chat:write.public,im:write,im:history,users:read,users:read.email,channels:read"
# Methods that authenticate otherwise: the OAuth exchange (client id and secret) and response URLs.
NO_TOKEN_METHODS = frozenset({"oauth.v2.access", "response_url"})
APP_TOKEN_METHODS = frozenset({"apps.connections.open"})


@dataclass
class _Token:
    team_id: str
    kind: str  # bot, user, app
    expires_at: float | None = None
    revoked: bool = False


@dataclass
class _Grant:
    team_id: str
    user_id: str
    rotating: bool
    expires_at: float


class FakeTokens:
    """State and methods for tokens; FakeSlack calls `_token_refusal` for every request."""

    team_id: str
    team_name: str
    bot_user_id: str
    app_id: str
    _lock: threading.Lock

    def _init_tokens(self, *, strict_tokens: bool) -> None:
        self.strict_tokens = strict_tokens
        self._tokens: dict[str, _Token] = {}
        self._teams: dict[str, str] = {self.team_id: self.team_name}
        self._grants: dict[str, _Grant] = {}
        self._refresh_tokens: dict[str, str] = {}  # refresh token -> team, until used
        self._oauth_app: tuple[str, str] | None = None
        self._serial = itertools.count(1)
        self._local = threading.local()

    # -- what a test sets up -----------------------------------------------------------------------------

    def set_oauth_app(self, client_id: str, client_secret: str) -> None:
        """The app's credentials, which oauth.v2.access checks."""
        self._oauth_app = (client_id, client_secret)

    def add_team(self, team_id: str, name: str | None = None) -> None:
        with self._lock:
            self._teams[team_id] = name or f"Team {team_id}"

    def authorize(self, team_id: str, *, user_id: str = "U0INSTALLER", rotating: bool = False) -> str:
        """Someone in `team_id` approves the install on Slack's page: the code Slack puts on the redirect."""
        self.add_team(team_id, self._teams.get(team_id))
        code = f"code-{secrets.token_hex(8)}"
        with self._lock:
            self._grants[code] = _Grant(team_id, user_id, rotating, time.time() + CODE_SECONDS)
        return code

    def issue_token(self, team_id: str, *, kind: str = "bot", expires_in: float | None = None) -> str:
        prefix = {"bot": "xoxb", "user": "xoxp", "app": "xapp"}[kind]
        token = f"{'xoxe.' if expires_in and kind != 'app' else ''}{prefix}-{team_id}-{next(self._serial)}-" \
                f"{secrets.token_hex(6)}"
        with self._lock:
            self._tokens[token] = _Token(team_id, kind, time.time() + expires_in if expires_in else None)
        return token

    def revoke(self, team_id: str) -> None:
        """The workspace uninstalled the app, or an admin revoked its tokens: every one of them is refused."""
        with self._lock:
            for token in self._tokens.values():
                if token.team_id == team_id:
                    token.revoked = True
            for refresh, team in list(self._refresh_tokens.items()):
                if team == team_id:
                    del self._refresh_tokens[refresh]

    def expire(self, token: str) -> None:
        with self._lock:
            self._tokens[token].expires_at = time.time() - 1

    def team_of(self, token: str | None) -> str | None:
        """The team a token belongs to (the home team for the preset tokens of a non-strict fake)."""
        with self._lock:
            known = self._tokens.get(token or "")
        if known is not None:
            return known.team_id
        return None if self.strict_tokens or not token else self.team_id

    # -- the check every call goes through ------------------------------------------------------------------

    def _token_refusal(self, method: str, token: str | None) -> str | None:
        """Slack's error for this call's token, or None; remembers the token's team for the answer."""
        self._local.team = self.team_id
        if method in NO_TOKEN_METHODS:
            return None
        if not token:
            return "not_authed"
        with self._lock:
            known = self._tokens.get(token)
            if known is None and not self.strict_tokens and token.startswith(("xoxb-", "xoxp-", "xapp-")):
                kind = {"xoxb": "bot", "xoxp": "user", "xapp": "app"}[token[:4]]
                known = self._tokens[token] = _Token(self.team_id, kind)
        if known is None or known.revoked:
            return "invalid_auth"
        if known.expires_at is not None and known.expires_at <= time.time():
            return "token_expired"
        if (known.kind == "app") != (method in APP_TOKEN_METHODS):
            return "not_allowed_token_type"
        self._local.team = known.team_id
        return None

    def _answering_team(self) -> str:
        return getattr(self._local, "team", None) or self.team_id

    # -- oauth.v2.access ---------------------------------------------------------------------------------

    def _oauth_v2_access(self, args: dict[str, Any]) -> dict[str, Any]:
        client = self._local.basic or (args.get("client_id"), args.get("client_secret"))
        if self._oauth_app is None or client[0] != self._oauth_app[0]:
            return {"ok": False, "error": "invalid_client_id"}
        if client[1] != self._oauth_app[1]:
            return {"ok": False, "error": "bad_client_secret"}
        if args.get("grant_type") == "refresh_token":
            with self._lock:
                team_id = self._refresh_tokens.pop(args.get("refresh_token") or "", None)
            if team_id is None:
                return {"ok": False, "error": "invalid_refresh_token"}
            return self._grant(team_id, None, rotating=True)
        if args.get("grant_type") not in (None, "", "authorization_code"):
            return {"ok": False, "error": "invalid_grant_type"}
        with self._lock:
            grant = self._grants.pop(args.get("code") or "", None)
        if grant is None or grant.expires_at < time.time():
            return {"ok": False, "error": "invalid_code"}
        return self._grant(grant.team_id, grant.user_id, rotating=grant.rotating)

    def _grant(self, team_id: str, user_id: str | None, *, rotating: bool) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "ok": True,
            "access_token": self.issue_token(team_id, expires_in=ROTATING_TOKEN_SECONDS if rotating else None),
            "token_type": "bot",
            "scope": BOT_SCOPES,
            "bot_user_id": self.bot_user_id,
            "app_id": self.app_id,
            "team": {"id": team_id, "name": self._teams.get(team_id, team_id)},
            "enterprise": None,
            "is_enterprise_install": False,
        }
        if user_id:
            answer["authed_user"] = {"id": user_id}
        if rotating:
            refresh = f"xoxe-1-{secrets.token_hex(10)}"
            with self._lock:
                self._refresh_tokens[refresh] = team_id
            answer.update(refresh_token=refresh, expires_in=ROTATING_TOKEN_SECONDS)
        return answer

    @staticmethod
    def _basic_auth(header: str) -> tuple[str, str] | None:
        if not header.startswith("Basic "):
            return None
        try:
            client_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return None
        return client_id, secret
