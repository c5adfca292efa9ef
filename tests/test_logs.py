"""`rapport serve --log-format json`: one JSON object a line on stderr, with the workspace and request a line
belongs to; never a token, never the text people typed."""

import json
import logging
import time

import pytest
import requests

from bot.logs import configure, mask_tokens, request_context
from bot.slack import presets
from bot.slack.simulate import sign
from tests import test_metrics
from tests.test_metrics import ALICE, Serve
from tests.test_serve import SECRET

fake = test_metrics.fake  # the fake Slack with alice, as the /metrics test has it

SECRET_WORD = "hunter2-passphrase"  # what a rep might paste into a touch summary
TOKEN_IN_TEXT = "xoxb-1234567890-0987654321-AbCdEfGhIjKlMnOpQrStUvWx"


def app_home_opened(event_id: str) -> tuple[str, dict]:
    body = json.dumps({"token": "legacy", "team_id": presets.HOME_TEAM, "api_app_id": "A0", "type": "event_callback",
                       "event_id": event_id, "event_time": int(time.time()),
                       "event": {"type": "app_home_opened", "user": ALICE, "channel": "D0ALICE", "tab": "home"}})
    return body, {"content-type": "application/json", **sign(SECRET, body)}


@pytest.mark.slow
def test_json_logs_are_one_object_a_line_with_workspace_and_request_and_no_secrets(tmp_path, fake):
    serve = Serve(tmp_path, fake)
    try:
        serve.start(scheduler=True, extra=("--log-format", "json"))
        serve.command(f'add "Acme Corp" tier:key owner:<@{ALICE}|alice>')
        serve.command(f"log acme call Gave them {SECRET_WORD} and {TOKEN_IN_TEXT} by mistake")
        card = json.dumps(serve.command("show acme"))
        assert SECRET_WORD in card  # the touch was recorded, text and all, and shown back to its reader
        body, headers = app_home_opened("Ev0LOGS1")
        for _ in range(2):  # Slack retries the event: the second is logged as ignored, inside its request
            assert requests.post(f"{serve.base}/slack/events", data=body, headers=headers, timeout=10).status_code == 200
    finally:
        serve.stop()
    lines = [line for line in serve.logs[0].splitlines() if line.strip()]
    assert lines, "serve logged nothing"
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    for record in records:
        assert {"time", "level", "logger", "message"} <= set(record), record
        assert set(record) <= {"time", "level", "logger", "message", "workspace", "request_id", "exc_info"}
        assert record["time"].endswith("+00:00")
    everything = "\n".join(lines) + serve.stdout
    assert SECRET_WORD not in everything and "xoxb-" + "1234567890" not in everything
    assert "xoxb-metrics" not in everything  # the configured token either
    assert any(r["message"].startswith("Rapport listening") for r in records)
    retried = [r for r in records if "already handled" in r["message"]]
    assert len(retried) == 1
    assert retried[0]["workspace"] == presets.HOME_TEAM and len(retried[0]["request_id"]) == 12
    in_requests = {r["request_id"] for r in records if r.get("request_id")}
    assert len(in_requests) >= 1


def test_tokens_are_masked_in_any_log_line_and_listeners_log_with_their_request(capsys):
    assert mask_tokens(f"token={TOKEN_IN_TEXT} app=xapp-1-A0-123-abc") == "token=xoxb-… app=xapp-…"
    configure(level="INFO", log_format="json")
    try:
        log = logging.getLogger("rapport.test")
        with request_context(workspace="T0LOGS", request_id="abc123abc123"):
            log.warning("Slack said %s", TOKEN_IN_TEXT)
        log.info("outside any request")
        lines = capsys.readouterr().err.splitlines()
    finally:
        configure(level="INFO", log_format="text")
    first, second = (json.loads(line) for line in lines)
    assert first["message"] == "Slack said xoxb-…" and first["workspace"] == "T0LOGS"
    assert first["request_id"] == "abc123abc123" and first["level"] == "WARNING" and first["logger"] == "rapport.test"
    assert second["message"] == "outside any request" and "workspace" not in second


def test_at_debug_level_slacks_libraries_never_log_what_people_typed(capsys):
    configure(level="DEBUG", log_format="json")
    try:
        logging.getLogger("slack_bolt.App").debug("Responding with status: 200 body: %s", SECRET_WORD)
        logging.getLogger("slack_sdk.web.base_client").debug("Received the following response: %s", SECRET_WORD)
        logging.getLogger("bot.slack.reminders").debug("claimed 3 reminders")
        logging.getLogger("slack_bolt.App").warning("a listener is slow")
    finally:
        configure(level="INFO", log_format="text")
    logged = capsys.readouterr().err
    assert SECRET_WORD not in logged
    assert "claimed 3 reminders" in logged and "a listener is slow" in logged
