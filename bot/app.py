"""build_app(runtime) -> App: the one place middleware, the error handler and every listener are wired."""

import json
import logging
import os
import time
import uuid
from concurrent.futures import Executor

from slack_bolt import App, BoltRequest, BoltResponse
from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped
from slack_bolt.oauth.oauth_settings import OAuthSettings
from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore

import handlers
from bot import metrics
from bot.db import session_scope
from bot.errors import LookupFailed, RapportError
from bot.logs import request_context
from bot.runtime import Runtime
from bot.services.events import first_delivery
from bot.services.workspaces import ensure_workspace
from bot.slack import people
from bot.slack.acks import AckWaitingExecutor, after_answer, wait_for_ack
from bot.slack.client import quick
from bot.slack.installs import RequestAuthorize, clients_of
from bot.slack.state import workspace_of
from handlers import surveys
from models import oauth

log = logging.getLogger(__name__)


class _SameToken(logging.Filter):
    """Bolt reads SLACK_BOT_TOKEN from the environment itself and then warns that it "will be unused" because
    we pass a client. When the client carries that very token, the warning only alarms operators."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != warning_client_prioritized_and_token_skipped()


_SAME_TOKEN = _SameToken()

BOT_SCOPES = [
    "commands",
    "chat:write",
    "chat:write.public",
    "im:write",
    "im:history",  # conversations.history: a retried reminder looks for its first attempt before posting again
    "users:read",
    "users:read.email",
    "channels:read",
    "groups:read",
]


LISTENER_THREADS = 16


class RapportApp(App):
    """Bolt's App, plus the `/crm` router so help, tests and the manifest check can see what exists."""

    crm_router: "handlers.crm.Router"
    signing_secret: str | None  # the HTTP edge verifies every request with it (bot/server.py)

    def dispatch(self, req: BoltRequest) -> BoltResponse:
        """Every request, over HTTP or Socket Mode, counted with the time to its answer (the ack), and logged
        with its workspace and a request id of its own."""
        started = time.perf_counter()
        with request_context(workspace=req.context.team_id, request_id=uuid.uuid4().hex[:12]):
            response = super().dispatch(req)
        metrics.request_answered(kind=metrics.kind_of(req.body), status=response.status,
                                 seconds=time.perf_counter() - started)
        return response


def build_app(
    runtime: Runtime, *, token_verification: bool = True, listener_executor: Executor | None = None
) -> RapportApp:
    settings = runtime.settings
    bolt_log = logging.getLogger("slack_bolt.App")
    if os.environ.get("SLACK_BOT_TOKEN") == runtime.client.token:
        bolt_log.addFilter(_SAME_TOKEN)  # adding it twice keeps one
    else:
        bolt_log.removeFilter(_SAME_TOKEN)
    common = dict(
        signing_secret=settings.slack_signing_secret,
        client=runtime.client,
        request_verification_enabled=True,
        process_before_response=False,
        # Listeners ack first and answer within Slack's 3 seconds; the pool is larger than Bolt's 5
        # because a listener may wait on the database or on Slack's Web API after acking. Its submit
        # returns when the listener acks (wait_for_ack in attach_runtime), not at Bolt's next 10 ms poll.
        listener_executor=listener_executor or AckWaitingExecutor(LISTENER_THREADS),
    )
    if settings.oauth:
        app = RapportApp(
            oauth_settings=OAuthSettings(
                client_id=settings.slack_client_id,
                client_secret=settings.slack_client_secret,
                scopes=BOT_SCOPES,
                installation_store=clients_of(runtime).store,  # a save (reinstall) resumes a paused workspace
                token_rotation_expiration_minutes=clients_of(runtime).minutes_before_expiration,
                state_store=SQLAlchemyOAuthStateStore(
                    expiration_seconds=600, engine=runtime.engine, table_name=oauth.OAUTH_STATES_TABLE
                ),
            ),
            authorize=RequestAuthorize(runtime),  # refreshes a rotating token as background work does
            **common,
        )
    else:
        # The token travels in runtime.client (Bolt takes it from there).
        app = RapportApp(token_verification_enabled=token_verification, **common)

    _wire_middleware(app, runtime)
    app.error(_handle_error)
    app.crm_router = handlers.register_all(app)
    app.signing_secret = settings.slack_signing_secret
    _guard_listeners(app)
    return app


_GUARD_ARGS = ("ack", "body", "respond", "client", "context", "logger")


def _guard_listeners(app: App) -> None:
    """Answer errors raised after a listener acked, here rather than in Bolt.

    Bolt's thread runner sets `ack.response` back to None when a listener raises after acking, so the
    HTTP side, still polling for the ack, times out and answers 404: the user would see Slack's own error
    instead of ours. Each listener is wrapped once: an error before the ack still goes to Bolt's error
    handler (which answers in the HTTP response), an error after it is told to the user through respond."""
    for listener in app._listeners:  # Bolt keeps no public list of listeners
        if listener.lazy_functions:
            # A lazy function runs on the same pool, after the listener acked: see bot/slack/acks.py.
            raise ValueError("Rapport's listeners ack, then carry on; lazy listeners are not supported")
        original, names = listener.ack_function, list(listener.arg_names)

        def guarded(__original=original, __names=names, **kwargs):
            try:
                return __original(**{name: kwargs[name] for name in __names})
            except Exception as error:
                ack = kwargs["ack"]
                if ack is None or ack.response is None:
                    raise
                _handle_error(error, kwargs["body"], kwargs["logger"], None, kwargs["respond"], kwargs["client"],
                              kwargs["context"])
                return None

        listener.ack_function = guarded
        listener.arg_names = names + [name for name in _GUARD_ARGS if name not in names]


def _wire_middleware(app: App, runtime: Runtime) -> None:
    known_workspaces: set[str] = set()

    @app.middleware
    def attach_runtime(context, body, next):
        # Bolt's request verification runs before every middleware of ours: from here on the body is Slack's.
        context["verified"] = True
        wait_for_ack(context)  # the answer leaves when the listener acks (bot/slack/acks.py)
        context["runtime"] = runtime
        team_id = workspace_of(body, context)
        if team_id and team_id not in known_workspaces:
            with session_scope(runtime.engine) as session:
                ensure_workspace(session, workspace_id=team_id, now=runtime.clock.now())
            known_workspaces.add(team_id)
        return next()

    @app.middleware
    def members_only(body, context, client, respond, logger, next):
        """Customer records are internal: everything people do in Rapport is for members of our own team,
        except what customers do (answer and comment on surveys) and `/crm help`. Denied unless allowed, so a
        new kind of payload is closed until someone opens it."""
        if body.get("type") == "event_callback":
            return next()  # events are not people acting; App Home checks its reader itself
        user_id = _acting_user(body)
        if user_id is None:  # a payload that names nobody is let through to nothing
            logger.warning("refused a %s payload that names no user", body.get("type") or "command")
            if body.get("type") == "block_suggestion":
                return _json_response({"options": []})
            return BoltResponse(status=200, body="")
        if surveys.for_customers(body) or _asks_for_help(app, body):
            return next()
        workspace_id = workspace_of(body, context) or ""
        try:
            # Someone not yet cached is looked up quickly, so a slow or rate-limiting Slack cannot make this
            # request miss its 3 seconds.
            context["person"] = people.member(runtime, quick(client), workspace_id=workspace_id, user_id=user_id)
        except RapportError as refused:  # not a member, or Slack cannot say who this is
            kind = body.get("type")
            if isinstance(refused, LookupFailed) and "command" in body and body.get("response_url"):
                # "One moment" now; the command runs once Slack has said who this is (nobody unknown gets in).
                after_answer(app.listener_runner.listener_executor, _run_when_known, app, runtime, client, body,
                             workspace_id, user_id, respond)
                return _json_response({"response_type": "ephemeral", "text": ONE_MOMENT})
            if isinstance(refused, LookupFailed):
                refused = LookupFailed(LOOKUP_SLOW)
            if kind == "block_suggestion":
                return _json_response({"options": []})  # the picker names no customer
            answer = _handle_error(refused, body, logger, BoltResponse(status=200, body=""), respond, client,
                                   context)
            return answer or BoltResponse(status=200, body="")
        return next()

    @app.middleware
    def skip_redeliveries(req, body, context, next):
        """What Slack delivers again is handled once, whichever process it reaches (the ids are recorded in the
        database): a Socket Mode envelope by its envelope_id (sent again after a lost ack, or on another of the
        app's connections); an Events API retry (HTTP or Socket Mode) by its event_id; in Socket Mode, a
        command, click or form by its trigger_id, which stays the same when Slack sends it in a new envelope.
        Over HTTP Slack never resends those, and a replayed request fails its signature."""
        delivery_ids = _delivery_ids(body, context, socket_mode=req.mode == "socket_mode")
        if delivery_ids:
            with session_scope(runtime.engine) as session:
                first = [first_delivery(session, delivery_id=delivery_id, workspace_id=context.get("team_id") or "",
                                        now=runtime.clock.now()) for delivery_id in delivery_ids]
            if not all(first):
                log.info("%s %s already handled; delivered again, ignored", body.get("type") or "command",
                         delivery_ids[first.index(False)])
                return BoltResponse(status=200, body="")
        return next()


def _delivery_ids(body: dict, context, *, socket_mode: bool) -> list[str]:
    """The ids a delivery is known by: its envelope's (Socket Mode; bot/slack/socket_mode.py puts it in the
    context), and its event_id or trigger_id. An options request changes nothing and is always answered."""
    ids = []
    envelope_id = context.get("envelope_id")
    if envelope_id and body.get("type") != "block_suggestion":
        ids.append(f"envelope:{envelope_id}")
    if body.get("type") == "event_callback":
        ids.append(body.get("event_id"))
    elif socket_mode:
        ids.append(body.get("trigger_id"))
    return [i for i in ids if isinstance(i, str) and i]


ONE_MOMENT = ":hourglass_flowing_sand: One moment — checking with Slack that you are on our team…"
LOOKUP_SLOW = "Slack is slow to say who you are just now; please try again in a moment."


def _run_when_known(app: "RapportApp", runtime: Runtime, client, body: dict, workspace_id: str, user_id: str,
                    respond) -> None:
    """A command whose sender Slack could not name in time: asked again (with the client's retries, waiting out
    a 429), then run as if just sent, its answer delivered through response_url."""
    try:
        people.member(runtime, client, workspace_id=workspace_id, user_id=user_id)
    except RapportError as refused:
        respond(text=refused.mrkdwn(), response_type="ephemeral", replace_original=True)
        return
    # Verified already; Socket Mode's form of a request carries the parsed body as it is.
    answer = app.dispatch(BoltRequest(body=body, mode="socket_mode"))
    if answer.status == 200 and answer.body:
        respond(**{**json.loads(answer.body), "replace_original": True})


def _asks_for_help(app: "RapportApp", body: dict) -> bool:
    if "command" not in body:
        return False
    try:
        subcommand, _sub, _args = app.crm_router.parse(body.get("text") or "")
    except RapportError:  # an unclosed quote: not help
        return False
    return subcommand is not None and subcommand.name == "help"


def _acting_user(body: dict) -> str | None:
    """Who typed, pressed, searched or submitted: any command or interactive payload."""
    user_id = body.get("user_id") if "command" in body else (body.get("user") or {}).get("id")
    return user_id if isinstance(user_id, str) and user_id else None


def user_message(error: Exception) -> tuple[str, str | None]:
    """The words a user sees for an error (escaped mrkdwn) and, for unexpected ones, a reference for the log."""
    if isinstance(error, RapportError):
        return error.mrkdwn(), None
    reference = uuid.uuid4().hex[:8]
    return (
        f":warning: Something went wrong on our side and nothing was saved. Please try again; "
        f"if it keeps happening, tell your admin the reference `{reference}`.",
        reference,
    )


def _handle_error(error, body, logger, response, respond, client, context):
    if not context.get("verified"):
        # Raised before Bolt's verification finished: the body may be anyone's, so nothing is posted anywhere.
        logger.warning("refused a request that failed before verification: %s", type(error).__name__)
        return BoltResponse(status=401, body="")
    text, reference = user_message(error)
    if reference:
        logger.error("unhandled error (ref %s) in %s", reference, body.get("type") or "command", exc_info=error)
    if body.get("type") == "view_submission" and response is not None:
        # Keep the modal open with the reason under the field, so nothing typed is lost.
        field = getattr(error, "field", None) or _first_input_block(body)
        if field:
            plain = error.user_text() if isinstance(error, RapportError) else "Something went wrong; please try again."
            return _json_response({"response_action": "errors", "errors": {field: plain[:300]}})
    if response is not None and "command" in body:
        return _json_response({"response_type": "ephemeral", "text": text})
    if body.get("response_url") or body.get("response_urls"):
        respond(text=text, response_type="ephemeral", replace_original=False)
        # Raised before the ack: the person has been told, so Slack gets an ack rather than a 500.
        return BoltResponse(status=200, body="") if response is not None else None
    user = (body.get("user") or {}).get("id") or body.get("user_id")
    channel = (body.get("channel") or {}).get("id") or body.get("channel_id")
    if user and channel:
        try:
            client.chat_postEphemeral(channel=channel, user=user, text=text)
        except Exception:  # the error is already logged; failing to tell the user must not raise again
            logger.warning("could not tell %s about an error", user, exc_info=True)
    elif user:
        try:
            client.chat_postMessage(channel=user, text=text)
        except Exception:
            logger.warning("could not tell %s about an error", user, exc_info=True)
    return None


def _first_input_block(body: dict) -> str | None:
    for block in (body.get("view") or {}).get("blocks", []):
        if block.get("type") == "input":
            return block.get("block_id")
    return None


def _json_response(payload: dict) -> BoltResponse:
    return BoltResponse(
        status=200, body=json.dumps(payload), headers={"content-type": ["application/json;charset=utf-8"]}
    )
