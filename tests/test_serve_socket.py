"""`rapport serve --socket` as a real process against the fake Slack's Socket Mode server."""

import subprocess
import time
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, select

from bot.slack import presets
from bot.slack.fake import FakeSlack
from models import Interaction
from tests.support import check_message, text_of
from tests.test_serve import RAPPORT, clean_env

TEAM = presets.HOME_TEAM


@contextmanager
def socket_processes(tmp_path, count: int = 1, *, fake: FakeSlack | None = None, database: str | None = None,
                     extra: tuple[str, ...] = ("--no-scheduler",)):
    """`count` Socket Mode processes on one database (`database`, else tmp_path/socket.db), each connected to the
    fake in turn (`fake`, else a new one, stopped after); yields the fake."""
    own = fake is None
    if own:
        fake = FakeSlack(team_id=TEAM, strict_tokens=True).start()
        presets.install(fake)
    env = clean_env(SLACK_BOT_TOKEN=fake.issue_token(TEAM), SLACK_APP_TOKEN=fake.issue_token(TEAM, kind="app"),
                    SLACK_API_URL=fake.api_url, DATABASE_URL=database or f"sqlite:///{tmp_path}/socket.db")
    connected = len(fake.socket_mode.open_connections())
    procs = []
    try:
        for started in range(connected + 1, connected + count + 1):
            proc = subprocess.Popen([RAPPORT, "serve", "--socket", *extra], env=env, cwd=tmp_path,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            procs.append(proc)
            deadline = time.monotonic() + 60
            while len(fake.socket_mode.open_connections()) < started:
                assert proc.poll() is None, proc.stdout.read().decode()
                assert time.monotonic() < deadline, "rapport serve --socket did not connect within 60 s"
                fake.socket_mode.wait_connected(started, timeout=0.2)
        yield fake
    finally:
        for proc in procs:
            proc.terminate()
        logged, codes = "", []
        for proc in procs:
            codes.append(proc.wait(timeout=10))
            logged += proc.stdout.read().decode()
        if own:
            fake.stop()
    # SIGTERM closes the connection and stops cleanly, as systemd and docker stop expect.
    assert "Traceback" not in logged and codes == [0] * count, (codes, logged)
    assert logged.count("Socket Mode connection closed; Rapport stopped") == count, logged


@pytest.fixture
def socket_server(tmp_path):
    """One Socket Mode process connected to the fake; yields the fake."""
    with socket_processes(tmp_path) as fake:
        yield fake


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
    add = server.deliver("slash_commands", slash_command('add "Acme Corp"', trigger_id="1.1"))
    assert "Acme Corp" in text_of(answer(server, add))
    log = slash_command("log acme call Talked renewal", trigger_id="2.1")
    first = server.deliver("slash_commands", log)
    assert "Logged a call" in text_of(answer(server, first))
    # Slack sends the envelope again (its ack was lost with a connection), then once more on another envelope.
    assert answer(server, server.deliver("slash_commands", log, envelope_id=first.envelope_id), count=2) == {}
    assert answer(server, server.deliver("slash_commands", log)) == {}
    # A new command (its own trigger_id) is still done.
    assert "Logged a call" in text_of(answer(server, server.deliver("slash_commands", slash_command(
        "log acme call Sent the proposal", trigger_id="2.2"))))
    assert touches(tmp_path) == ["Talked renewal", "Sent the proposal"]


def touches(tmp_path, url: str | None = None) -> list[str]:
    engine = create_engine(url or f"sqlite:///{tmp_path}/socket.db")
    try:
        with engine.connect() as connection:
            return list(connection.execute(select(Interaction.summary).order_by(Interaction.id)).scalars())
    finally:
        engine.dispose()


def answer(server, delivery, count=1) -> dict:
    acks = server.wait_for_ack(delivery.envelope_id, count=count, timeout=10)
    assert len(acks) == count, f"no ack for {delivery.type} {delivery.envelope_id}"
    return acks[-1].payload or {}


@pytest.mark.slow  # two processes
def test_two_socket_mode_processes_side_by_side_record_a_command_redelivered_to_the_other_once(tmp_path):
    with socket_processes(tmp_path, count=2) as fake:
        server = fake.socket_mode
        first_process, second_process = server.open_connections()
        add = server.deliver("slash_commands", slash_command('add "Acme Corp"', trigger_id="5.1"),
                             connection=first_process)
        assert "Acme Corp" in text_of(answer(server, add))
        log = slash_command("log acme meeting Quarterly review", trigger_id="5.2")
        assert "Logged a meeting" in text_of(answer(server, server.deliver("slash_commands", log,
                                                                            connection=first_process)))
        # Slack sends it again on the app's other connection, to the other process.
        again = server.deliver("slash_commands", log, connection=second_process)
        assert answer(server, again) == {}
        assert again.connection == second_process and server.acks(again.envelope_id)[0].connection == second_process
        # Each process answers what is its own.
        for n, connection in enumerate((first_process, second_process)):
            sent = server.deliver("slash_commands", slash_command("help", trigger_id=f"5.3.{n}"),
                                  connection=connection)
            assert "/crm help [subcommand]" in text_of(answer(server, sent))
        assert touches(tmp_path) == ["Quarterly review"]


@pytest.mark.slow  # two processes
def test_an_envelope_delivered_again_to_the_other_process_is_handled_once_by_its_envelope_id(tmp_path, database_url):
    with socket_processes(tmp_path, count=2, database=database_url) as fake:
        server = fake.socket_mode
        first_process, second_process = server.open_connections()
        assert "Acme Corp" in text_of(answer(server, server.deliver(
            "slash_commands", slash_command('add "Acme Corp"', trigger_id="8.1"), connection=first_process)))
        # A payload without a trigger_id (nor an event_id): only its envelope says it is the same delivery.
        log = {k: v for k, v in slash_command("log acme call Renewal talk").items() if k != "trigger_id"}
        sent = server.deliver("slash_commands", log, connection=first_process)
        assert "Logged a call" in text_of(answer(server, sent))
        # Slack sends the same envelope again, on the app's other connection: the other process records nothing.
        again = server.deliver("slash_commands", log, envelope_id=sent.envelope_id, connection=second_process)
        assert answer(server, again, count=2) == {}
        assert server.acks(sent.envelope_id)[-1].connection == second_process
        assert touches(tmp_path, database_url) == ["Renewal talk"]
        # The same words in an envelope of their own are a new command, done again.
        assert "Logged a call" in text_of(answer(server, server.deliver("slash_commands", log,
                                                                        connection=second_process)))
        assert touches(tmp_path, database_url) == ["Renewal talk", "Renewal talk"]


def test_an_envelope_waiting_on_slack_does_not_hold_up_the_others(socket_server):
    fake = socket_server
    server = fake.socket_mode
    fake.latency("users.info", 1.2)  # Slack is slow to say who bob is: his command waits on it before its ack
    slow = server.deliver("slash_commands", slash_command("list", user="U0BOB", trigger_id="6.0"))
    quick = [server.deliver("slash_commands", slash_command("help", trigger_id=f"6.{n}")) for n in range(1, 6)]
    for sent in quick:
        [ack] = server.wait_for_ack(sent.envelope_id, timeout=10)
        assert ack.at - sent.at < 1, f"/crm help waited {ack.at - sent.at:.2f} s behind another envelope"
    [slow_ack] = server.wait_for_ack(slow.envelope_id, timeout=10)
    assert slow_ack.at - slow.at >= 1.2  # it really was held up, and the others did not wait for it


def help_acked_within_3_seconds(server, connection: int) -> float:
    sent = server.deliver("slash_commands", slash_command("help", trigger_id=f"3.{connection}"), connection=connection)
    acks = server.wait_for_ack(sent.envelope_id, timeout=10)
    assert acks, "the command on the new connection was never acked"
    assert "/crm help [subcommand]" in text_of(acks[0].payload)
    seconds = acks[0].at - sent.at
    assert seconds < 3, f"acked after {seconds:.2f} s on the new connection; Slack gives up after 3"
    return seconds


def test_after_a_refresh_the_first_envelope_on_the_new_connection_is_acked_within_3_seconds(socket_server):
    server = socket_server.socket_mode
    [old] = server.open_connections()
    server.refresh(old)
    new = server.wait_connected(after=old, timeout=10)
    assert new, "no new connection within 10 s of Slack's refresh_requested"
    help_acked_within_3_seconds(server, new[-1])


@pytest.mark.slow  # waits for the client to notice, a few seconds of real time each
@pytest.mark.parametrize("silently", [False, True], ids=["abrupt", "silent"])
def test_a_dropped_connection_is_replaced_within_10_seconds_and_answers(socket_server, silently):
    server = socket_server.socket_mode
    [old] = server.open_connections()
    dropped_at = time.monotonic()
    server.drop(old, silently=silently)
    new = server.wait_connected(after=old, timeout=10)
    assert new, f"the {'silently' if silently else 'abruptly'} dropped connection was not replaced within 10 s"
    assert time.monotonic() - dropped_at < 10
    help_acked_within_3_seconds(server, new[-1])
