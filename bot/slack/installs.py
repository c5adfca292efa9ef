"""The Slack client for workspace T, for work done outside a request: the configured SLACK_BOT_TOKEN in
single-workspace mode, the installation store's bot token (refreshed first when it rotates) in OAuth mode.

A workspace whose bot token Slack refuses is paused here: its scheduled work waits, its data is kept, and the
OAuth redirect completing for it again (the installation store's save) resumes it.
"""

import logging
import threading
import time
from datetime import UTC, datetime

from slack_bolt.authorization.authorize import InstallationStoreAuthorize
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackTokenRotationError
from slack_sdk.oauth.installation_store import Installation
from slack_sdk.oauth.installation_store.models.bot import Bot
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from slack_sdk.oauth.sqlalchemy_utils import normalize_datetime_for_db
from slack_sdk.oauth.token_rotation import TokenRotator
from sqlalchemy import desc, select

from bot.db import session_scope
from bot.runtime import Runtime
from bot.services import workspaces
from bot.slack.client import make_client
from models import Workspace, oauth

log = logging.getLogger(__name__)

# Slack's answers that mean "this token is no good" (for a recipient, account_inactive means the person is
# deactivated: auth.test tells the two apart).
TOKEN_REFUSED = {"invalid_auth", "token_revoked", "account_inactive", "not_authed"}
CACHE_SECONDS = 60.0  # a client (and a pause) is remembered this long; a reinstall elsewhere is seen after it
# Refresh a rotating token this long before it expires: Bolt's own default for requests, so whichever comes first
# (a request or the scheduler) refreshes, and the other finds the new token.
ROTATE_MINUTES_BEFORE = 120


class WorkspacePaused(Exception):
    """Scheduled work asked for a workspace whose token Slack refuses, or that is not installed."""

    def __init__(self, team_id: str, reason: str):
        super().__init__(f"workspace {team_id} is paused ({reason})")
        self.team_id, self.reason = team_id, reason


class TokenRefused(SlackApiError):
    """Slack refused the workspace's own bot token; the workspace is paused (or its stale token forgotten)."""


class WorkspaceClient(WebClient):
    """A WebClient for one workspace that tells its owner when Slack refuses its token."""

    def __init__(self, *, team_id: str, on_refused, **kwargs):
        super().__init__(**kwargs)
        self.team_id, self.on_refused = team_id, on_refused

    def api_call(self, api_method: str, **kwargs):
        try:
            return super().api_call(api_method, **kwargs)
        except SlackApiError as exc:
            error = exc.response.get("error")
            if api_method == "auth.test" or error not in TOKEN_REFUSED or not self._token_refused():
                raise
            self.on_refused(self.team_id, error, self.token)
            raise TokenRefused(exc.args[0], exc.response) from exc

    def _token_refused(self) -> bool:
        try:
            WebClient.api_call(self, "auth.test")
        except SlackApiError as exc:
            return exc.response.get("error") in TOKEN_REFUSED
        except Exception:  # Slack could not be asked: not a reason to pause anyone
            return False
        return False


class InstallationStore(SQLAlchemyInstallationStore):
    """slack_sdk's store on our tables; saving an installation (the OAuth redirect completing, or Bolt
    refreshing a token in a request) resumes the workspace."""

    def __init__(self, runtime: Runtime):
        super().__init__(runtime.settings.slack_client_id, runtime.engine, bots_table_name=oauth.BOTS_TABLE,
                         installations_table_name=oauth.INSTALLATIONS_TABLE)
        self.runtime = runtime

    def save(self, installation: Installation):
        super().save(installation)
        now = self.runtime.clock.now()
        with session_scope(self.runtime.engine) as session:
            workspaces.ensure_workspace(session, workspace_id=installation.team_id, now=now,
                                        name=installation.team_name or "")
            resumed = workspaces.resume(session, workspace_id=installation.team_id, now=now)
        if resumed:
            log.warning("workspace %s reinstalled: its scheduled work resumes", installation.team_id)
        clients_of(self.runtime).forget(installation.team_id)


class WorkspaceClients:
    """One per runtime: clients by team id, kept CACHE_SECONDS (or until their token is due to rotate)."""

    def __init__(self, runtime: Runtime, *, minutes_before_expiration: int = ROTATE_MINUTES_BEFORE):
        self.runtime = runtime
        self.minutes_before_expiration = minutes_before_expiration
        settings = runtime.settings
        self.store = InstallationStore(runtime) if settings.oauth else None
        self.rotator = TokenRotator(client_id=settings.slack_client_id, client_secret=settings.slack_client_secret,
                                    client=make_client(base_url=settings.slack_api_url)) if settings.oauth else None
        self._clients: dict[str, tuple[WebClient, float]] = {}
        self._paused: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def for_team(self, team_id: str) -> WebClient:
        now = time.monotonic()
        with self._lock:
            paused = self._paused.get(team_id)
            if paused and paused[1] > now:
                raise WorkspacePaused(team_id, paused[0])
            cached = self._clients.get(team_id)
            if cached and cached[1] > now:
                return cached[0]
        token, good_for = self._token(team_id)
        # The runtime's client sets the base URL, timeout and retry handlers (tests and the console shape it).
        shape = self.runtime.client
        client = WorkspaceClient(team_id=team_id, on_refused=self.refused, token=token, base_url=shape.base_url,
                                 timeout=shape.timeout, retry_handlers=list(shape.retry_handlers))
        with self._lock:
            self._clients[team_id] = (client, now + min(CACHE_SECONDS, good_for))
        return client

    def forget(self, team_id: str) -> None:
        with self._lock:
            self._clients.pop(team_id, None)
            self._paused.pop(team_id, None)

    def _token(self, team_id: str) -> tuple[str, float]:
        """The bot token and for how many seconds it may be kept."""
        if self.store is None:
            return self.runtime.client.token, CACHE_SECONDS
        bot = self.store.find_bot(enterprise_id=None, team_id=team_id)
        if bot is None:
            raise WorkspacePaused(team_id, "not_installed")
        if self.expiring(bot):
            bot = self.rotate(team_id)
        if bot.bot_token_expires_at is None:
            return bot.bot_token, CACHE_SECONDS
        return bot.bot_token, bot.bot_token_expires_at - time.time() - self.minutes_before_expiration * 60

    def expiring(self, bot: Bot) -> bool:
        return bool(bot.bot_refresh_token and bot.bot_token_expires_at is not None
                    and bot.bot_token_expires_at <= time.time() + self.minutes_before_expiration * 60)

    def rotate(self, team_id: str) -> Bot:
        """Refresh the workspace's bot token once, however many processes try at the same time: the refresh
        runs holding the workspace's row lock (SQLite: the write lock), and re-reads the stored bot under it,
        so whoever comes second finds the new token and does not spend the refresh token again."""
        table = self.store.bots
        now = self.runtime.clock.now()
        with session_scope(self.runtime.engine) as session:
            workspaces.ensure_workspace(session, workspace_id=team_id, now=now)
            session.exec(select(Workspace.id).where(Workspace.id == team_id).with_for_update())
            row = session.connection().execute(
                table.select()
                .where(table.c.client_id == self.store.client_id, table.c.enterprise_id.is_(None),
                       table.c.team_id == team_id, table.c.bot_token.is_not(None))
                .order_by(desc(table.c.installed_at)).limit(1)
            ).mappings().first()
            if row is None:
                raise WorkspacePaused(team_id, "not_installed")
            bot = self.store.build_bot_entity(row)
            try:
                refreshed = self.rotator.perform_bot_token_rotation(
                    bot=bot, minutes_before_expiration=self.minutes_before_expiration)
            except SlackTokenRotationError as exc:  # Slack refused the refresh token (revoked, already used…)
                log.warning("workspace %s: its bot token could not be refreshed (%s)", team_id, exc)
                raise WorkspacePaused(team_id, "refresh_failed") from exc
            if refreshed is None:
                return bot
            values = dict(bot_token=refreshed.bot_token, bot_refresh_token=refreshed.bot_refresh_token,
                          bot_token_expires_at=normalize_datetime_for_db(
                              datetime.fromtimestamp(refreshed.bot_token_expires_at, UTC)))
            session.connection().execute(table.update().where(table.c.id == row["id"]).values(**values))
            # Bolt reads a request's bot token from the installation: it gets the new one too.
            installs = self.store.installations
            session.connection().execute(
                installs.update().where(installs.c.client_id == self.store.client_id,
                                        installs.c.team_id == team_id, installs.c.bot_token == bot.bot_token)
                .values(**values))
            log.info("workspace %s: bot token refreshed", team_id)
            return refreshed

    def refused(self, team_id: str, error: str, token: str | None) -> None:
        """Slack refused `token` for `team_id`: pause the workspace, unless a newer token is stored (a reinstall
        this process had not seen yet), which is used from the next call on."""
        self.forget(team_id)
        if self.store is not None:
            current = self.store.find_bot(enterprise_id=None, team_id=team_id)
            if current is not None and current.bot_token != token:
                return
        self.paused(team_id, error, token=token)

    def paused(self, team_id: str, reason: str, *, token: str | None = None) -> None:
        """Pause the workspace's scheduled work (the log says why, once)."""
        with session_scope(self.runtime.engine) as session:
            first = workspaces.pause(session, workspace_id=team_id, reason=reason, now=self.runtime.clock.now(),
                                     token=token or (self.runtime.client.token if self.store is None else None))
        with self._lock:
            self._clients.pop(team_id, None)
            self._paused[team_id] = (reason, time.monotonic() + CACHE_SECONDS)
        if first:
            log.warning("workspace %s paused: Slack refuses its bot token (%s); its reminders and digest wait "
                        "until it is reinstalled", team_id, reason)


class RequestAuthorize(InstallationStoreAuthorize):
    """Bolt's authorization for requests, refreshing an expiring bot token the way background work does (one
    refresh under the workspace's lock), so a request and the scheduler never spend the refresh token twice."""

    def __init__(self, runtime: Runtime):
        clients = clients_of(runtime)
        super().__init__(logger=logging.getLogger("slack_bolt.App"), installation_store=clients.store,
                         client_id=runtime.settings.slack_client_id,
                         client_secret=runtime.settings.slack_client_secret,
                         token_rotation_expiration_minutes=clients.minutes_before_expiration, client=runtime.client)
        self.runtime = runtime

    def _rotate_and_save_tokens_if_necessary(self, installation):
        if installation is None or not installation.bot_refresh_token or installation.user_refresh_token:
            return super()._rotate_and_save_tokens_if_necessary(installation)  # no rotation, or a user token too
        clients = clients_of(self.runtime)
        if not clients.expiring(installation.to_bot()):
            return None
        try:
            fresh = clients.rotate(installation.team_id)
        except WorkspacePaused as paused:  # Bolt answers "authorization failed" and logs it
            raise SlackTokenRotationError(SlackApiError(paused.reason, {"ok": False, "error": paused.reason})) \
                from paused
        clients.forget(installation.team_id)
        installation.bot_token, installation.bot_refresh_token = fresh.bot_token, fresh.bot_refresh_token
        installation.bot_token_expires_at = fresh.bot_token_expires_at
        return installation


_CREATING = threading.Lock()


def clients_of(runtime: Runtime) -> WorkspaceClients:
    if runtime.clients is None or runtime.clients.runtime is not runtime:  # dataclasses.replace copies it
        with _CREATING:
            if runtime.clients is None or runtime.clients.runtime is not runtime:
                runtime.clients = WorkspaceClients(runtime)
    return runtime.clients


def resume_for_new_token(runtime: Runtime) -> None:
    """Single-workspace mode, at start: a workspace paused because Slack refused another token than the one
    configured now (the operator reinstalled and set the new token) resumes."""
    if runtime.settings.oauth or not runtime.client.token:
        return
    with session_scope(runtime.engine) as session:
        resumed = workspaces.resume_refused_elsewhere(session, token=runtime.client.token, now=runtime.clock.now())
    for team_id in resumed:
        log.warning("workspace %s resumes with the newly configured bot token", team_id)
