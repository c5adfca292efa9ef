"""`rapport serve --socket` as a real process against the fake Slack's Socket Mode server."""

import subprocess
import time

import pytest
from sqlalchemy import create_engine, func, select

from bot.slack import presets
from bot.slack.fake import FakeSlack
from models import Interaction
from tests.support import check_message, text_of
from tests.test_serve import RAPPORT, clean_env

TEAM = presets.HOME_TEAM


@pytest.fixture
def socket_server(tmp_path):
    """A Socket Mode process connected to the fake; yields the fake (its database is tmp_path/socket.db)."""
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
    yield fake
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
            "response_url": "http://127.0.0.1:9/response/socket"}


def test_crm_help_is_answered_in_the_ack(socket_server):
    fake = socket_server
    sent = fake.socket_mode.deliver("slash_commands", slash_command("help"))
    [ack] = fake.socket_mode.wait_for_ack(sent.envelope_id, timeout=10)
    assert ack.at - sent.at < 3, "Slack wants the ack within 3 seconds"
    check_message(ack.payload)
    assert "/crm help [subcommand]" in text_of(ack.payload)
    # The URL the start-up check was given served the first connection: Slack was asked once.
    assert len(fake.calls("apps.connections.open")) == 1


def test_a_redelivered_crm_log_records_one_touch(socket_server, tmp_path):
    server = socket_server.socket_mode

    def answer(delivery, count=1):
        acks = server.wait_for_ack(delivery.envelope_id, count=count, timeout=10)
        assert len(acks) == count, f"no ack for {delivery.type} {delivery.envelope_id}"
        return acks[-1].payload or {}

    assert "Acme Corp" in text_of(answer(server.deliver("slash_commands", slash_command('add "Acme Corp"',
                                                                                         trigger_id="1.1"))))
    log = slash_command("log acme call Talked renewal", trigger_id="2.1")
    first = server.deliver("slash_commands", log)
    assert "Logged a call" in text_of(answer(first))
    # Slack sends the envelope again (its ack was lost with a connection), then once more on another envelope.
    assert answer(server.deliver("slash_commands", log, envelope_id=first.envelope_id), count=2) == {}
    assert answer(server.deliver("slash_commands", log)) == {}
    # A new command (its own trigger_id) is still done.
    assert "Logged a call" in text_of(answer(server.deliver("slash_commands", slash_command(
        "log acme call Sent the proposal", trigger_id="2.2"))))
    engine = create_engine(f"sqlite:///{tmp_path}/socket.db")
    try:
        with engine.connect() as connection:
            summaries = connection.execute(select(Interaction.summary).order_by(Interaction.id)).scalars().all()
            assert summaries == ["Talked renewal", "Sent the proposal"]
            assert connection.execute(select(func.count()).select_from(Interaction)).scalar() == 2
    finally:
        engine.dispose()
