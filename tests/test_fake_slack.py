"""Tests of the fake Slack Web API (bot/slack/fake.py), driven through the real slack_sdk clients."""

from __future__ import annotations

import threading
import time
from urllib.error import URLError

import pytest
import requests
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler, ServerErrorRetryHandler
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator
from slack_sdk.webhook import WebhookClient

from bot.slack.fake import Call, FakeSlack, validate_message_blocks, validate_view


@pytest.fixture
def fake():
    with FakeSlack() as server:
        server.add_user("UALICE", name="alice", email="alice@example.com", tz="Europe/Berlin")
        server.add_user("UGONE", name="gone", deleted=True)
        server.add_channel("C1", name="general", members=("UALICE", "UBOT"))
        server.add_channel("COLD", name="old", is_archived=True)
        server.add_channel("COUT", name="outside", is_member=False)
        server.add_channel("GSECRET", name="secret", is_private=True, is_member=False)
        yield server


@pytest.fixture
def client(fake):
    return WebClient(token="xoxb-test", base_url=fake.api_url, timeout=5)


def section(text: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def plain(text: str) -> dict:
    return {"type": "plain_text", "text": text}


def button(**fields) -> dict:
    return {"type": "button", "text": plain(fields.pop("text", "Go")), "action_id": "go", **fields}


def option(text: str = "o", value: str = "v") -> dict:
    return {"text": plain(text), "value": value}


def select(options: list[dict]) -> dict:
    return {"type": "static_select", "action_id": "pick", "options": options}


# -- happy paths -----------------------------------------------------------------------------------------------


def test_auth_test_and_api_url(fake, client):
    assert fake.api_url == f"http://127.0.0.1:{fake.port}/api/"
    answer = client.auth_test()
    assert answer["team_id"] == "T0001" and answer["user_id"] == "UBOT" and answer["bot_id"]
    assert fake.last("auth.test").status == 200


def test_post_update_ephemeral_recorded(fake, client):
    posted = client.chat_postMessage(channel="C1", text="hello", blocks=[section("*hello*")])
    assert posted["channel"] == "C1" and posted["message"]["text"] == "hello"
    second = client.chat_postMessage(channel="C1", text="again")
    assert float(second["ts"]) > float(posted["ts"])

    client.chat_update(channel="C1", ts=posted["ts"], text="bye", blocks=[section("*bye*")])
    stored = fake.message("C1", posted["ts"])
    assert stored["text"] == "bye" and stored["blocks"][0]["text"]["text"] == "*bye*" and "edited" in stored
    assert [m["ts"] for m in fake.messages("C1")] == [posted["ts"], second["ts"]]

    ephemeral = client.chat_postEphemeral(channel="C1", user="UALICE", text="psst")
    assert ephemeral["message_ts"]
    assert fake.ephemeral_messages("C1", "UALICE")[0]["text"] == "psst"

    assert [c.method for c in fake.calls()] == [
        "chat.postMessage",
        "chat.postMessage",
        "chat.update",
        "chat.postEphemeral",
    ]
    call = fake.last("chat.postMessage")
    assert isinstance(call, Call) and call.args["text"] == "again" and call.response["ok"] and call.at > 0
    assert fake.last("views.open") is None
    fake.clear()
    assert fake.calls() == []


def test_update_delete_permalink_reaction(fake, client):
    ts = client.chat_postMessage(channel="C1", text="x")["ts"]
    with pytest.raises(SlackApiError) as missing:
        client.chat_update(channel="C1", ts="1.000000", text="y")
    assert missing.value.response["error"] == "message_not_found"

    link = client.chat_getPermalink(channel="C1", message_ts=ts)["permalink"]
    assert link == f"https://rapport-test.slack.com/archives/C1/p{ts.replace('.', '')}"

    client.reactions_add(channel="C1", timestamp=ts, name="eyes")
    assert fake.message("C1", ts)["reactions"] == [{"name": "eyes", "users": ["UBOT"], "count": 1}]
    with pytest.raises(SlackApiError) as again:
        client.reactions_add(channel="C1", timestamp=ts, name="eyes")
    assert again.value.response["error"] == "already_reacted"

    client.chat_delete(channel="C1", ts=ts)
    assert fake.messages("C1") == []


def test_users_and_conversations(fake, client):
    alice = client.users_info(user="UALICE")["user"]
    assert alice["tz"] == "Europe/Berlin" and alice["tz_offset"] in (3600, 7200)
    assert alice["profile"]["email"] == "alice@example.com" and alice["team_id"] == "T0001"
    assert client.users_lookupByEmail(email="ALICE@example.com")["user"]["id"] == "UALICE"
    with pytest.raises(SlackApiError) as unknown:
        client.users_info(user="UNOBODY")
    assert unknown.value.response["error"] == "user_not_found"

    dm = client.conversations_open(users="UALICE")["channel"]["id"]
    assert dm.startswith("D") and client.conversations_open(users=["UALICE"])["channel"]["id"] == dm
    posted = client.chat_postMessage(channel="UALICE", text="hi")  # a user id opens the DM, as on Slack
    assert posted["channel"] == dm and fake.messages("UALICE") == fake.messages(dm)

    info = client.conversations_info(channel="C1")["channel"]
    assert info["name"] == "general" and info["is_member"] and not info["is_archived"]
    members = client.conversations_members(channel="C1", limit=1)
    assert members["members"] == ["UALICE"] and members["response_metadata"]["next_cursor"] == "1"
    client.conversations_join(channel="COUT")
    assert client.chat_postMessage(channel="COUT", text="in now")["ok"]
    assert client.team_info()["team"]["id"] == "T0001"


def test_form_encoded_blocks_are_decoded(fake):
    # Hand-written callers (and some slack_sdk methods) send blocks as JSON text inside a form body.
    answer = requests.post(
        fake.api_url + "chat.postMessage",
        data={"channel": "C1", "text": "t", "blocks": '[{"type": "divider"}]'},
        headers={"Authorization": "Bearer xoxb-test"},
        timeout=5,
    ).json()
    assert answer["ok"] and fake.last("chat.postMessage").args["blocks"] == [{"type": "divider"}]


def test_not_authed_and_unknown_method(fake, client):
    answer = requests.post(fake.api_url + "auth.test", timeout=5).json()
    assert answer == {"ok": False, "error": "not_authed"}
    with pytest.raises(SlackApiError) as unknown:
        client.api_call("chat.scheduleTeleport")
    assert unknown.value.response["error"] == "unknown_method"


# -- Block Kit validation --------------------------------------------------------------------------------------


def test_section_text_over_3000_refused(fake, client):
    client.chat_postMessage(channel="C1", text="ok", blocks=[section("x" * 3000)])
    with pytest.raises(SlackApiError) as refused:
        client.chat_postMessage(channel="C1", text="no", blocks=[section("x" * 3001)])
    assert refused.value.response["error"] == "invalid_blocks"
    assert refused.value.response["errors"] == [
        "blocks[0].text.text: must be at most 3000 characters (got 3001)"
    ]
    assert fake.last("chat.postMessage").response["error"] == "invalid_blocks"
    assert len(fake.messages("C1")) == 1


def test_message_block_count(fake, client):
    client.chat_postMessage(channel="C1", text="50", blocks=[{"type": "divider"}] * 50)
    with pytest.raises(SlackApiError) as refused:
        client.chat_postMessage(channel="C1", text="51", blocks=[{"type": "divider"}] * 51)
    assert refused.value.response["error"] == "invalid_blocks"
    assert "50" in refused.value.response["errors"][0]


def test_home_view_block_count(fake, client):
    view = {"type": "home", "blocks": [{"type": "divider"}] * 100}
    client.views_publish(user_id="UALICE", view=view)
    assert len(fake.home_view("UALICE")["blocks"]) == 100
    with pytest.raises(SlackApiError) as refused:
        client.views_publish(user_id="UALICE", view={"type": "home", "blocks": [{"type": "divider"}] * 101})
    assert refused.value.response["error"] == "invalid_arguments"
    assert refused.value.response["response_metadata"]["messages"]
    assert len(fake.home_view("UALICE")["blocks"]) == 100


def test_modal_rules(fake, client):
    field = {
        "type": "input",
        "label": plain("Name"),
        "element": {"type": "plain_text_input", "action_id": "n"},
    }
    modal = {"type": "modal", "title": plain("New customer"), "submit": plain("Save"), "blocks": [field]}
    opened = client.views_open(trigger_id="1.2.abc", view=modal)["view"]
    client.views_update(view_id=opened["id"], hash=opened["hash"], view={**modal, "title": plain("Edit")})
    assert fake.view(opened["id"])["title"]["text"] == "Edit"
    with pytest.raises(SlackApiError) as stale:
        client.views_update(view_id=opened["id"], hash=opened["hash"], view=modal)
    assert stale.value.response["error"] == "hash_conflict"
    with pytest.raises(SlackApiError) as no_submit:
        client.views_push(trigger_id="1.2.abc", view={k: v for k, v in modal.items() if k != "submit"})
    assert no_submit.value.response["error"] == "invalid_arguments"
    assert no_submit.value.response["errors"] == ["view: 'submit' is a required property"]


@pytest.mark.parametrize(
    ("blocks", "expected"),
    [
        (
            [{"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11}],
            "fields: must have at most 10",
        ),
        (
            [{"type": "section", "fields": [{"type": "mrkdwn", "text": "f" * 2001}]}],
            "fields[0].text: must be at most 2000",
        ),
        ([{"type": "header", "text": plain("h" * 151)}], "text.text: must be at most 150"),
        (
            [{"type": "actions", "elements": [button(action_id=f"b{i}") for i in range(26)]}],
            "elements: must have at most 25",
        ),
        (
            [{"type": "context", "elements": [{"type": "mrkdwn", "text": "c"}] * 11}],
            "elements: must have at most 10",
        ),
        (
            [{"type": "actions", "elements": [button(text="b" * 76)]}],
            "elements[0].text.text: must be at most 75",
        ),
        (
            [{"type": "actions", "elements": [button(value="v" * 2001)]}],
            "elements[0].value: must be at most 2000",
        ),
        ([{"type": "actions", "elements": [button(action_id="a" * 256)]}], "action_id: must be at most 255"),
        ([{"type": "divider", "block_id": "b" * 256}], "block_id: must be at most 255"),
        (
            [{"type": "actions", "elements": [select([option(value=str(i)) for i in range(101)])]}],
            "options: must have at most 100",
        ),
        (
            [{"type": "actions", "elements": [select([option(text="o" * 76)])]}],
            "options[0].text.text: must be at most 75",
        ),
        (
            [{"type": "actions", "elements": [select([option(value="v" * 151)])]}],
            "options[0].value: must be at most 150",
        ),
        (
            [
                {
                    **section("s"),
                    "accessory": {
                        "type": "overflow",
                        "action_id": "o",
                        "options": [option(value=str(i)) for i in range(6)],
                    },
                }
            ],
            "accessory.options: must have at most 5",
        ),
        ([{**section("s"), "accessory": {"type": "nope"}}], "accessory.type: 'nope' is not allowed here"),
        ([{"type": "bogus"}], "unknown block type 'bogus'"),
    ],
)
def test_platform_limits_enforced(blocks, expected):
    errors = validate_message_blocks(blocks)
    assert len(errors) == 1 and expected in errors[0], errors


def test_view_limits_enforced():
    good = {"type": "modal", "title": plain("t" * 24), "close": plain("c"), "blocks": [section("s")]}
    assert validate_view(good) == []
    assert "title.text: must be at most 24" in validate_view({**good, "title": plain("t" * 25)})[0]
    assert "submit.text: must be at most 24" in validate_view({**good, "submit": plain("s" * 25)})[0]
    assert "private_metadata" in validate_view({**good, "private_metadata": "p" * 3001})[0]
    assert validate_view({**good, "type": "home"}, surface="home") != []  # a home view has no title
    assert validate_view({"type": "home", "blocks": [section("s")]}, surface="home") == []


def test_message_text_rules(fake, client):
    with pytest.raises(SlackApiError) as empty, pytest.warns(UserWarning, match="text"):
        client.chat_postMessage(channel="C1")
    assert empty.value.response["error"] == "no_text"
    with pytest.raises(SlackApiError) as long:
        client.chat_postMessage(channel="C1", text="x" * 40_001)
    assert long.value.response["error"] == "msg_too_long"


# -- channel and user errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("channel", "error"),
    [
        ("CNOPE", "channel_not_found"),
        ("GSECRET", "channel_not_found"),  # Slack hides private channels the bot is not in
        ("COLD", "is_archived"),
        ("COUT", "not_in_channel"),
        ("UGONE", "account_inactive"),
    ],
)
def test_post_errors(fake, client, channel, error):
    with pytest.raises(SlackApiError) as refused:
        client.chat_postMessage(channel=channel, text="x")
    assert refused.value.response["error"] == error
    assert fake.last("chat.postMessage").response["error"] == error


def test_deleted_user_dm(fake, client):
    with pytest.raises(SlackApiError) as refused:
        client.conversations_open(users="UGONE")
    assert refused.value.response["error"] == "account_inactive"


# -- response_url ----------------------------------------------------------------------------------------------


def test_response_url_recorded(fake):
    url = fake.response_url("survey-1")
    answer = WebhookClient(url).send(text="Thanks!", replace_original=True, blocks=[section("Thanks!")])
    assert answer.status_code == 200
    call = fake.last("response_url")
    assert call.args["replace_original"] is True and call.args["text"] == "Thanks!"
    assert call.path == "/response/survey-1"

    refused = WebhookClient(url).send(text="no", blocks=[section("x" * 3001)])
    assert refused.status_code == 400 and fake.last("response_url").response["error"] == "invalid_blocks"


# -- fault injection -------------------------------------------------------------------------------------------


def test_ratelimited_retry_after_honoured(fake, client):
    client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=1))
    fake.inject("chat.postMessage", "ratelimited", retry_after=1)
    started = time.monotonic()
    assert client.chat_postMessage(channel="C1", text="x")["ok"]
    calls = fake.calls("chat.postMessage")
    assert [c.status for c in calls] == [429, 200]
    assert calls[0].response == {"ok": False, "error": "ratelimited"}
    assert calls[1].at - calls[0].at >= 1.0 and time.monotonic() - started >= 1.0


def test_retry_after_header_without_handler(fake, client):
    fake.inject("*", "ratelimited", retry_after=7)
    with pytest.raises(SlackApiError) as limited:
        client.users_info(user="UALICE")
    assert limited.value.response.status_code == 429
    assert limited.value.response.headers["Retry-After"] == "7"


def test_server_error_retried(fake, client):
    client.retry_handlers.append(
        ServerErrorRetryHandler(
            max_retry_count=1, interval_calculator=FixedValueRetryIntervalCalculator(0.01)
        )
    )
    fake.inject("chat.postMessage", "server_error")
    assert client.chat_postMessage(channel="C1", text="x")["ok"]
    assert [c.status for c in fake.calls("chat.postMessage")] == [500, 200]


def test_injected_slack_error_then_recovery(fake, client):
    fake.inject("users.info", "user_not_found", times=2)
    for _ in range(2):
        with pytest.raises(SlackApiError) as refused:
            client.users_info(user="UALICE")
        assert refused.value.response["error"] == "user_not_found"
    assert client.users_info(user="UALICE")["ok"]


def test_timeout_carries_out_the_call(fake):
    impatient = WebClient(token="xoxb-test", base_url=fake.api_url, timeout=0.2, retry_handlers=[])
    fake.inject("chat.postMessage", "timeout", delay=2)
    with pytest.raises((TimeoutError, URLError)):
        impatient.chat_postMessage(channel="C1", text="maybe")
    # Slack did the work before the answer was lost: the source of duplicate posts on retry.
    assert len(fake.messages("C1")) == 1 and fake.last("chat.postMessage").status == 200


def test_latency(fake, client):
    fake.latency("auth.test", 0.1)
    started = time.monotonic()
    client.auth_test()
    assert time.monotonic() - started >= 0.1
    fake.latency("auth.test", 0)


# -- concurrency -----------------------------------------------------------------------------------------------


def test_concurrent_posts_get_distinct_ts(fake):
    results: list[str] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        client = WebClient(token="xoxb-test", base_url=fake.api_url, timeout=5)
        for i in range(50):
            ts = client.chat_postMessage(channel="C1", text=f"{n}-{i}")["ts"]
            with lock:
                results.append(ts)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 400 and len(set(results)) == 400
    assert len(fake.calls("chat.postMessage")) == 400 and len(fake.messages("C1")) == 400
    assert fake.wait_for("chat.postMessage", 400, timeout=0.1)


def test_bolt_app_starts_against_the_fake(fake):
    from slack_bolt import App

    app = App(
        client=WebClient(token="xoxb-test", base_url=fake.api_url),
        signing_secret="secret",
    )
    assert app.client.base_url == fake.api_url
    assert fake.last("auth.test") is not None
