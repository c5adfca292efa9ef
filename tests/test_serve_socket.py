"""`rapport serve --socket` as a real process against the fake Slack's Socket Mode server."""

import subprocess
import time

import pytest

from bot.slack import presets
from bot.slack.fake import FakeSlack
from tests.support import check_message, text_of
from tests.test_serve import RAPPORT, clean_env

TEAM = presets.HOME_TEAM


@pytest.fixture
def socket_server(tmp_path):
    """A Socket Mode process connected to the fake; yields (fake, process)."""
    fake = FakeSlack(team_id=TEAM, strict_tokens=True).start()
    presets.install(fake)
    env = clean_env(SLACK_BOT_TOKEN=fake.issue_token(TEAM), SLACK_APP_TOKEN=fake.issue_token(TEAM, kind="app"),
                    SLACK_API_URL=fake.api_url, DATABASE_URL=f"sqlite:///{tmp_path}/socket.db")
    proc = subprocess.Popen([RAPPORT, "serve", "--socket", "--no-scheduler"], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while not fake.socket_mode.open_connections():
        assert proc.poll() is None, proc.stdout.read().decode()
        assert time.monotonic() < deadline, "rapport serve --socket did not connect within 60 s"
        fake.socket_mode.wait_connected(timeout=0.2)
    yield fake, proc
    proc.terminate()
    proc.wait(timeout=10)
    logged = proc.stdout.read().decode()
    fake.stop()
    assert "Traceback" not in logged, logged


def slash_command(text: str, *, user: str = "U0ALICE", trigger_id: str = "10.20.30") -> dict:
    """A slash command as Socket Mode carries it: the same fields as the HTTP form."""
    return {"token": "legacy", "team_id": TEAM, "team_domain": "rapport-test", "channel_id": "C0SALES",
            "channel_name": "sales", "user_id": user, "user_name": "alice", "command": "/crm", "text": text,
            "api_app_id": "A0001", "is_enterprise_install": "false", "trigger_id": trigger_id,
            "response_url": "http://127.0.0.1:9/response/unused"}


def test_crm_help_is_answered_in_the_ack(socket_server):
    fake, _proc = socket_server
    sent = fake.socket_mode.deliver("slash_commands", slash_command("help"))
    [ack] = fake.socket_mode.wait_for_ack(sent.envelope_id, timeout=10)
    assert ack.at - sent.at < 3, "Slack wants the ack within 3 seconds"
    check_message(ack.payload)
    assert "/crm help [subcommand]" in text_of(ack.payload)
    # The URL the start-up check was given served the first connection: Slack was asked once.
    assert len(fake.calls("apps.connections.open")) == 1
