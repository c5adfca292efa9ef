"""The fake Slack's Socket Mode, driven by slack_sdk's own Socket Mode client: apps.connections.open checks the
app-level token as Slack does, a connection gets hello, envelopes arrive as Slack shapes them, acks are recorded,
a refresh makes the client open a new connection, a used ticket is refused."""

import threading

import pytest
import requests
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.socket_mode.builtin import SocketModeClient
from slack_sdk.socket_mode.response import SocketModeResponse

from bot.slack.fake import FakeSlack

TEAM = "T0SOCKET"


@pytest.fixture
def fake():
    fake = FakeSlack(team_id=TEAM, strict_tokens=True).start()
    yield fake
    fake.stop()


@pytest.fixture
def client(fake):
    """slack_sdk's built-in Socket Mode client, acking every envelope with a payload naming it."""
    app_token = fake.issue_token(TEAM, kind="app")
    received: list[dict] = []
    socket_client = SocketModeClient(app_token=app_token, web_client=WebClient(base_url=fake.api_url))
    seen = threading.Condition()

    def listener(client, request):
        with seen:
            received.append({"type": request.type, "envelope_id": request.envelope_id, "payload": request.payload,
                             "accepts_response_payload": request.accepts_response_payload,
                             "retry_attempt": request.retry_attempt})
            seen.notify_all()
        client.send_socket_mode_response(SocketModeResponse(envelope_id=request.envelope_id,
                                                            payload={"text": f"got {request.envelope_id}"}))

    socket_client.socket_mode_request_listeners.append(listener)
    socket_client.connect()
    yield socket_client, received
    socket_client.close()


def test_apps_connections_open_wants_a_valid_app_level_token(fake):
    web = WebClient(base_url=fake.api_url)
    url = web.apps_connections_open(app_token=fake.issue_token(TEAM, kind="app"))["url"]
    assert url.startswith("ws://127.0.0.1:") and "ticket=" in url
    for token, error in [(fake.issue_token(TEAM), "not_allowed_token_type"), ("xapp-1-never-issued", "invalid_auth"),
                         ("", "not_authed")]:
        with pytest.raises(SlackApiError) as refused:
            WebClient(base_url=fake.api_url, token=token or None).apps_connections_open(app_token=token or None)
        assert refused.value.response["error"] == error
    revoked = fake.issue_token("T0GONE", kind="app")
    fake.revoke("T0GONE")
    with pytest.raises(SlackApiError, match="invalid_auth"):
        web.apps_connections_open(app_token=revoked)


def test_envelopes_arrive_as_slack_shapes_them_and_acks_are_recorded(fake, client):
    socket_client, received = client
    server = fake.socket_mode
    [connection] = server.wait_connected()
    command = {"command": "/crm", "text": "help", "team_id": TEAM, "user_id": "U1", "trigger_id": "1.2.3"}
    sent = server.deliver("slash_commands", command)
    [ack] = server.wait_for_ack(sent.envelope_id)
    assert ack.payload == {"text": f"got {sent.envelope_id}"} and ack.connection == connection
    assert ack.at >= sent.at
    event = {"type": "event_callback", "event_id": "Ev1", "team_id": TEAM, "event": {"type": "app_home_opened"}}
    again = server.deliver("events_api", event, retry_attempt=1, retry_reason="timeout")
    server.wait_for_ack(again.envelope_id)
    click = server.deliver("interactive", {"type": "block_actions", "trigger_id": "4.5.6", "actions": []})
    server.wait_for_ack(click.envelope_id)
    by_type = {r["type"]: r for r in received}
    assert by_type["slash_commands"]["payload"] == command and by_type["slash_commands"]["accepts_response_payload"]
    assert by_type["events_api"]["retry_attempt"] == 1 and not by_type["events_api"]["accepts_response_payload"]
    assert by_type["interactive"]["payload"]["trigger_id"] == "4.5.6"
    assert [a.envelope_id for a in server.acks()] == [sent.envelope_id, again.envelope_id, click.envelope_id]


def test_a_refresh_request_makes_the_client_open_a_new_connection(fake, client):
    server = fake.socket_mode
    [first] = server.wait_connected()
    server.refresh()
    [second] = server.wait_connected(after=first)
    assert second > first
    sent = server.deliver("slash_commands", {"command": "/crm", "text": "help"})
    [ack] = server.wait_for_ack(sent.envelope_id)
    assert ack.connection == second
    assert len(fake.calls("apps.connections.open")) == 2  # a new URL for the new connection


def test_an_abruptly_dropped_connection_is_gone_from_the_server(fake, client):
    server = fake.socket_mode
    [first] = server.wait_connected()
    assert server.drop(first) == first
    assert first not in server.open_connections()
    with pytest.raises(RuntimeError, match=f"no open Socket Mode connection {first}"):
        server.deliver("slash_commands", {"command": "/crm"}, connection=first)


def test_a_connection_url_works_once(fake):
    url = WebClient(base_url=fake.api_url).apps_connections_open(app_token=fake.issue_token(TEAM, kind="app"))["url"]
    used = SocketModeClient(app_token="xapp-unused", web_client=WebClient(base_url=fake.api_url))
    used.wss_uri = url
    used.connect()
    try:
        fake.socket_mode.wait_connected()
        refused = requests.get(url.replace("ws://", "http://"), timeout=5)
        assert refused.status_code == 401
    finally:
        used.close()
    assert not fake.socket_mode.deliveries()
