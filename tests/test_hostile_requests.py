"""Hostile and broken requests, through the real HTTP server (waitress) in front of the real Bolt app: refused
before anything happens, or answered clearly — never a traceback, never a call to Slack on an unverified word."""

import hashlib
import hmac
import json
import logging
import time
from datetime import timedelta
from urllib.parse import urlencode

import pytest
import requests
from sqlmodel import select

from bot.scheduler import run_due_work
from bot.slack.simulate import Person, Response
from models import Customer, Reminder, SurveyResponse
from tests.support import form_values, served, text_of

CAROL = Person(id="U0CAROL", name="carol", team_id="T0CUSTOMER")
SECRET_OF_NOBODY = "not-the-signing-secret"


@pytest.fixture
def http(slack):
    """The harness's simulator, sending every request over HTTP to the production WSGI app under waitress."""
    with served(slack.app, slack.runtime.engine) as url:
        def transport(body: str, headers: dict) -> Response:
            answer = requests.post(url, data=body.encode(), headers=headers, timeout=10)
            return Response(status=answer.status_code, body=answer.text, headers=dict(answer.headers))

        slack.sim.transport = transport
        slack.url = url
        yield slack


def post(url: str, body: bytes, *, content_type="application/x-www-form-urlencoded", timestamp=None,
         secret: str | None = None) -> requests.Response:
    """A raw POST; signed with `secret` (over the bytes as sent) when given, with `timestamp` as the header says."""
    headers = {"content-type": content_type}
    if timestamp is not None:
        headers["x-slack-request-timestamp"] = timestamp
    if secret is not None:
        stamp = timestamp if timestamp is not None else str(int(time.time()))
        headers["x-slack-request-timestamp"] = stamp
        digest = hmac.new(secret.encode(), b"v0:" + stamp.encode() + b":" + body, hashlib.sha256).hexdigest()
        headers["x-slack-signature"] = f"v0={digest}"
    return requests.post(url, data=body, headers=headers, timeout=10)


def command_body(fake, text: str, *, user="U0ALICE", channel="C0SALES") -> bytes:
    return urlencode({"token": "legacy", "team_id": "T0RAPPORT", "channel_id": channel, "user_id": user,
                      "command": "/crm", "text": text, "response_url": fake.response_url("evil"),
                      "trigger_id": "1.2.3"}).encode()


def nothing_happened(slack, calls_before: int, caplog) -> None:
    assert len(slack.fake.calls()) == calls_before, [c.method for c in slack.fake.calls()[calls_before:]]
    with slack.session() as session:
        assert session.exec(select(Customer)).all() == []
    logged = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    assert "Traceback" not in logged and not [r for r in caplog.records if r.levelno >= logging.ERROR], logged


# -- 1. a timestamp that is not a number ----------------------------------------------------------------------


@pytest.mark.parametrize("timestamp", ["abc", "", "1.7e9", "1700000000.5", "-1"])
def test_a_timestamp_that_is_not_an_integer_is_refused_and_the_body_is_never_acted_on(http, timestamp, caplog):
    before = len(http.fake.calls())
    body = command_body(http.fake, 'add "Evil Co"')
    for secret in (None, SECRET_OF_NOBODY, "test-signing-secret"):
        answer = post(http.url, body, timestamp=timestamp, secret=secret)
        assert answer.status_code == 401, (secret, answer.status_code, answer.text)
    nothing_happened(http, before, caplog)  # no response_url call, no post, no write
    refusals = [r for r in caplog.records if "refused a request" in r.getMessage()]
    assert len(refusals) == 3 and all(r.levelno == logging.WARNING for r in refusals)


def test_an_unsigned_command_gets_401_and_a_signed_one_is_answered(http, caplog):
    before = len(http.fake.calls())
    assert post(http.url, command_body(http.fake, 'add "Evil Co"')).status_code == 401
    nothing_happened(http, before, caplog)
    assert "Acme" in text_of(http.command("alice", 'add "Acme"'))


# -- 2. bodies Slack never sends --------------------------------------------------------------------------------


BROKEN = [
    (b"\xff\xfe\xfa", "application/x-www-form-urlencoded"),
    (b"payload=not-json", "application/x-www-form-urlencoded"),
    (b"payload=%7Bbroken", "application/x-www-form-urlencoded"),
    (b"payload=%5B1%2C2%5D", "application/x-www-form-urlencoded"),
    (b"payload=null", "application/x-www-form-urlencoded"),
    (b"text=%FF%FE", "application/x-www-form-urlencoded"),
    (b"{broken", "application/json"),
    (b"[]", "application/json"),
    (b"null", "application/json"),
    (b'{"type": "block_actions", "user": "U0ALICE", "actions": []}', "application/json"),
]


@pytest.mark.parametrize("body,content_type", BROKEN)
def test_a_body_slack_never_sends_is_refused_signed_or_not_without_a_traceback(http, body, content_type, caplog):
    before = len(http.fake.calls())
    assert post(http.url, body, content_type=content_type).status_code == 401
    signed = post(http.url, body, content_type=content_type, secret="test-signing-secret")
    assert signed.status_code == 400, signed.text
    nothing_happened(http, before, caplog)


def test_signed_actions_that_are_empty_or_a_survey_button_without_a_value(http, caplog):
    payload = {"type": "block_actions", "user": {"id": "U0CAROL", "team_id": "T0CUSTOMER"},
               "team": {"id": "T0RAPPORT"}, "actions": [], "response_url": http.fake.response_url("x")}
    before = len(http.fake.calls())
    empty = post(http.url, urlencode({"payload": json.dumps(payload)}).encode(), secret="test-signing-secret")
    assert empty.status_code == 400
    nothing_happened(http, before, caplog)

    no_value = http.sim.click(CAROL, action={"action_id": "survey.answer.3"}, channel_id="C0ACME")
    http.wait()
    assert no_value.status == 200
    [told] = http.fake.calls("response_url")
    assert "This survey no longer exists" in text_of(told.args)


def test_a_command_that_mentions_the_word_payload_is_read_as_typed(http):
    http.command("alice", 'add "Acme Corp"')
    reply = http.command("alice", "log acme call discussed the payload size")
    assert "Touch logged" in text_of(reply) or "logged" in text_of(reply).lower(), text_of(reply)


# -- 8. a payload that names no user ----------------------------------------------------------------------------


def test_a_signed_payload_that_names_no_user_gets_nothing(http, caplog):
    http.command("alice", 'add "Acme Corp" tier:key')
    with http.session() as session:
        customer_id = session.exec(select(Customer.id)).one()
    before = len(http.fake.calls())
    for payload in (
        {"type": "block_actions", "team": {"id": "T0RAPPORT"}, "trigger_id": "1.2",
         "actions": [{"action_id": "card.open", "value": str(customer_id)}]},
        {"type": "block_actions", "team": {"id": "T0RAPPORT"}, "user": {"team_id": "T0RAPPORT"}, "trigger_id": "1.2",
         "actions": [{"action_id": "card.open", "value": str(customer_id)}]},
    ):
        answer = post(http.url, urlencode({"payload": json.dumps(payload)}).encode(), secret="test-signing-secret")
        assert answer.status_code == 200 and "Acme" not in answer.text
    picker = post(http.url, urlencode({"payload": json.dumps(
        {"type": "block_suggestion", "team": {"id": "T0RAPPORT"}, "action_id": "customer_picker", "value": "ac"})}
    ).encode(), secret="test-signing-secret")
    assert picker.json() == {"options": []}
    http.wait()
    assert len(http.fake.calls()) == before  # no card, no modal, no message


# -- 9. lone surrogates -----------------------------------------------------------------------------------------


def test_lone_surrogates_in_a_form_or_a_search_are_answered_clearly(http):
    http.command("alice", "add")
    view = http.fake.last("views.open").response["view"]
    answer = http.sim.submit(http.person("alice"), view, form_values(
        name=("plain_text_input", "Acme \ud800 Corp"), tier=("static_select", "key"),
        stage=("static_select", "prospect"), org=("static_select", "vendor"), owner=("users_select", "U0ALICE")))
    http.wait()
    assert answer.status == 200
    assert "U+D800" in answer.json()["errors"]["name"]
    with http.session() as session:
        assert session.exec(select(Customer)).all() == []
    search = http.sim.options(http.person("alice"), action_id="customer_picker", value="ac\udfff")
    assert search.status == 200 and search.json() == {"options": []}


# -- 10. forged survey button values ----------------------------------------------------------------------------


def post_survey(slack) -> dict:
    slack.command("alice", 'add "Acme Corp" tier:key channel:<#C0ACME|acme-shared>')
    slack.command("alice", 'survey "Acme Corp" nps')
    return slack.fake.messages("C0ACME")[-1]


@pytest.mark.parametrize("value,answer", [
    ("abc:5", "This survey no longer exists"), ("9" * 20 + ":5", "This survey no longer exists"),
    ("1:abc", "That is not a score"), ("1", "That is not a score"), ("1:99", "That is not a score"),
    ("", "This survey no longer exists"),
])
def test_a_forged_survey_button_value_gets_a_clear_answer_and_stores_nothing(http, value, answer):
    message = post_survey(http)
    before = len(http.fake.calls("response_url"))
    response = http.sim.click(CAROL, action={"action_id": "survey.answer.5", "value": value}, channel_id="C0ACME",
                              message=message)
    http.wait()
    assert response.status == 200
    told = [text_of(c.args) for c in http.fake.calls("response_url")[before:]]
    assert told and answer in told[0], told
    assert "Something went wrong" not in "\n".join(told)
    with http.session() as session:
        assert session.exec(select(SurveyResponse)).all() == []


# -- 11. names that forge or hide lines ---------------------------------------------------------------------------


@pytest.mark.parametrize("name,why", [
    ("\u200b", "no visible letter"), ("\u200b\u200c\u2060", "no visible letter"),
    ("Fake\n*Health*\n100/100 · healthy", "one line"),
])
def test_a_name_must_be_one_visible_line_in_the_command_and_in_the_form(http, name, why):
    typed = http.command("alice", f"add 「{name}」")
    assert why in text_of(typed), text_of(typed)
    http.command("alice", "add")
    view = http.fake.last("views.open").response["view"]
    submitted = http.sim.submit(http.person("alice"), view, form_values(
        name=("plain_text_input", name), tier=("static_select", "key"), stage=("static_select", "prospect"),
        org=("static_select", "vendor"), owner=("users_select", "U0ALICE")))
    assert why in submitted.json()["errors"]["name"]
    contact = http.command("alice", 'add "Acme Corp"') and http.command("alice", f'contact acme 「{name}」')
    assert why in text_of(contact)
    with http.session() as session:
        assert session.exec(select(Customer.name)).all() == ["Acme Corp"]


# -- 12. org-wide (Enterprise Grid) clicks --------------------------------------------------------------------------


def test_an_org_wide_click_with_team_null_on_a_reminder_button_works(http, clock):
    http.command("alice", 'add "Acme Corp"')
    http.command("alice", "remind acme in 4h Call back")
    clock.advance(timedelta(hours=5))
    run_due_work(http.runtime)
    [posted] = [c for c in http.fake.calls("chat.postMessage") if c.args.get("channel") == "U0ALICE"]
    done = next(e for b in posted.args["blocks"] if b["type"] == "actions" for e in b["elements"]
                if e["action_id"] == "reminder.done")
    message = {"ts": posted.response["ts"], "blocks": posted.args["blocks"]}
    payload = {
        "type": "block_actions", "team": None, "enterprise": {"id": "E0GRID"}, "is_enterprise_install": False,
        "user": {"id": "U0ALICE", "team_id": "T0RAPPORT"}, "trigger_id": "1.2", "api_app_id": "A0RAPPORT",
        "container": {"type": "message", "message_ts": posted.response["ts"], "channel_id": posted.response["channel"]},
        "channel": {"id": posted.response["channel"]}, "message": message,
        "response_url": http.fake.response_url("grid"),
        "actions": [{"action_id": "reminder.done", "block_id": "b", "value": done["value"], "type": "button"}],
    }
    answer = http.sim._payload(payload)
    http.wait()
    assert answer.status == 200
    with http.session() as session:
        assert session.exec(select(Reminder.status)).one() == "done"
    assert "Done" in text_of(http.fake.last("chat.update").args)


# -- 7. a person Slack is slow to name ----------------------------------------------------------------------------


def test_a_first_command_while_slack_rate_limits_users_info_gets_one_moment_then_its_answer(http):
    http.fake.inject("users.info", "ratelimited", retry_after=0)  # the quick look-up meets a 429, once
    first = http.command("alice", 'add "Acme Corp" tier:key')
    assert "One moment" in text_of(first)  # answered at once, not after waiting out Retry-After
    [later] = http.fake.calls("response_url")
    assert "Acme Corp" in text_of(later.args) and later.args["replace_original"] is True
    with http.session() as session:
        assert session.exec(select(Customer.name)).all() == ["Acme Corp"]
    assert [c.status for c in http.fake.calls("users.info")] == [429, 200]
    assert "Acme Corp" in text_of(http.command("alice", "show acme"))  # known now: answered in the ack


def test_nobody_unknown_gets_in_while_slack_cannot_say_who_they_are(http):
    http.fake.inject("users.info", "fatal_error", times=2)  # the quick look-up, then the patient one
    assert "One moment" in text_of(http.command("alice", 'add "Acme Corp"'))
    [later] = http.fake.calls("response_url")
    assert "could not check with Slack" in text_of(later.args)
    with http.session() as session:
        assert session.exec(select(Customer)).all() == []
    assert len(http.fake.calls("users.info")) == 2


# -- 6. acknowledged means stored ----------------------------------------------------------------------------------


def test_a_survey_click_is_in_the_database_when_slack_gets_its_ack(http):
    message = post_survey(http)
    http.fake.add_user("U0GUEST", name="gus", team_id="T0RAPPORT", is_restricted=True)  # counted: a guest
    http.fake.latency("users.info", 0.3)  # the guest is looked up before the answer can be stored
    seven = next(e for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]
                 if e["text"]["text"] == "7")
    answer = http.sim.click(Person(id="U0GUEST", name="gus", team_id="T0RAPPORT"), action=seven,
                            channel_id="C0ACME", message=message)
    assert answer.status == 200
    with http.session() as session:  # at the moment of the ack, before any work after it
        assert session.exec(select(SurveyResponse.score)).all() == [7]
    http.wait()
