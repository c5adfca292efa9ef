"""The HTTP edge: every request to /slack/events verified and read before Bolt sees it."""

import json
import logging
import re
from urllib.parse import parse_qsl

from slack_bolt import App, BoltRequest, BoltResponse
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_bolt.adapter.wsgi.http_request import WsgiHttpRequest
from slack_bolt.request.internals import build_context
from slack_sdk.signature import SignatureVerifier

from bot.slack.state import malformed

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1 << 20  # Slack's largest payloads (a modal's state) are far smaller
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}")


class Refused(Exception):
    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status, self.reason = status, reason


class VerifiedHandler(SlackRequestHandler):
    """Bolt's WSGI handler, with every request to /slack/events verified and read before Bolt sees it.

    Bolt's own check crashes on a timestamp that is not an integer and hands the crash, with the unverified body,
    to the error handler; its body parser raises on invalid UTF-8 or broken JSON (a 500 with a traceback) and
    reads any form body containing the word "payload" — a command typed as `/crm log acme payload size` — as
    empty. Here a request is refused (400/401, one warning line, nothing done) unless its signature holds and
    its body is one Slack could have sent; then Bolt gets it already parsed."""

    def __init__(self, app: App, *, signing_secret: str):
        super().__init__(app)
        self.verifier = SignatureVerifier(signing_secret=signing_secret)

    def dispatch(self, request: WsgiHttpRequest) -> BoltResponse:
        try:
            bolt_request = self.read(request.environ)
        except Refused as refused:
            return refusal(refused)
        return self.app.dispatch(bolt_request)

    def read(self, environ) -> BoltRequest:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            raise Refused(400, "Content-Length is not a number") from None
        if length > MAX_BODY_BYTES:
            raise Refused(413, "the body is too large")
        raw = environ["wsgi.input"].read(length) if length > 0 else b""
        headers = {key[5:].lower().replace("_", "-"): value for key, value in environ.items()
                   if key.startswith("HTTP_X_SLACK_")}  # the signature, the retry number and reason
        headers["content-type"] = environ.get("CONTENT_TYPE") or ""
        return read_request(raw, headers, self.verifier)


def read_request(raw: bytes, headers: dict[str, str], verifier: SignatureVerifier) -> BoltRequest:
    """A Bolt request for a body Slack signed and shaped as Slack does (`headers` in lower case), or Refused."""
    timestamp = headers.get("x-slack-request-timestamp", "")
    signature = headers.get("x-slack-signature", "")
    if not _TIMESTAMP.fullmatch(timestamp) or not _SIGNATURE.fullmatch(signature):
        raise Refused(401, "no valid signature headers")
    try:
        body = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused(400, "the body is not UTF-8") from None
    if not verifier.is_valid(body, timestamp, signature):
        raise Refused(401, "the signature does not match or is too old")
    parsed = _parse(body, headers.get("content-type", "").split(";")[0].strip().lower())
    reason = malformed(parsed)
    if reason:
        raise Refused(400, reason)
    bolt_request = BoltRequest(body="", headers=headers)
    # Bolt's own verification reads raw_body again; listeners read the body as parsed here.
    bolt_request.raw_body, bolt_request.body = body, parsed
    bolt_request.context = build_context(bolt_request.context, parsed)
    return bolt_request


def refusal(refused: Refused) -> BoltResponse:
    log.warning("refused a request: %s", refused.reason)
    return BoltResponse(status=refused.status, body=json.dumps({"error": refused.reason}),
                        headers={"content-type": ["application/json;charset=utf-8"]})


def _parse(body: str, content_type: str) -> dict:
    """The body as Slack sends it: JSON (events), or a form whose `payload` field is JSON (interactivity), or a
    plain form (slash commands)."""
    try:
        if content_type == "application/json":
            parsed = json.loads(body)
        else:
            fields = parse_qsl(body, keep_blank_values=True, errors="strict")
            if not fields:
                raise Refused(400, "the body is empty")
            form = dict(fields)
            parsed = json.loads(form["payload"]) if "payload" in form else form
    except (ValueError, UnicodeError):  # JSONDecodeError is a ValueError
        raise Refused(400, "the body is not JSON or a form Slack sends") from None
    if not isinstance(parsed, dict):
        raise Refused(400, "the body is not a JSON object")
    return parsed


