"""The fake Slack checks tokens and exchanges OAuth codes the way Slack documents it, so multi-workspace tests
mean something: a call with no token, a stranger's token or a revoked one fails as it would against Slack."""

import pytest
import requests
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.slack.fake import FakeSlack

CLIENT_ID, CLIENT_SECRET = "111.222", "oauth-test-secret"  # test values


@pytest.fixture
def fake():
    fake = FakeSlack(team_id="T0HOME", strict_tokens=True).start()
    fake.set_oauth_app(CLIENT_ID, CLIENT_SECRET)
    yield fake
    fake.stop()


def error_of(call) -> str:
    with pytest.raises(SlackApiError) as refused:
        call()
    return refused.value.response["error"]


def test_a_code_is_exchanged_once_for_a_token_of_its_own_team(fake):
    slack = WebClient(base_url=fake.api_url)
    code = fake.authorize("T0ACME")
    granted = slack.oauth_v2_access(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, code=code)  # HTTP Basic
    assert granted["team"]["id"] == "T0ACME" and granted["token_type"] == "bot"
    assert granted["access_token"].startswith("xoxb-") and "refresh_token" not in granted
    assert error_of(lambda: slack.oauth_v2_access(client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                                                  code=code)) == "invalid_code"
    assert WebClient(token=granted["access_token"], base_url=fake.api_url).auth_test()["team_id"] == "T0ACME"
    # The same exchange with the credentials as form fields, as some clients send them.
    form = requests.post(f"{fake.api_url}oauth.v2.access", timeout=5, data={
        "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "code": fake.authorize("T0BETA")}).json()
    assert form["ok"] and form["team"]["id"] == "T0BETA"


def test_the_client_secret_is_checked(fake):
    slack = WebClient(base_url=fake.api_url)
    assert error_of(lambda: slack.oauth_v2_access(client_id=CLIENT_ID, client_secret="wrong",
                                                  code=fake.authorize("T0ACME"))) == "bad_client_secret"
    assert error_of(lambda: slack.oauth_v2_access(client_id="999.999", client_secret=CLIENT_SECRET,
                                                  code=fake.authorize("T0ACME"))) == "invalid_client_id"


def test_a_rotating_token_is_refreshed_with_a_single_use_refresh_token(fake):
    slack = WebClient(base_url=fake.api_url)
    first = slack.oauth_v2_access(client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                                  code=fake.authorize("T0ACME", rotating=True))
    assert first["access_token"].startswith("xoxe.xoxb-") and first["expires_in"] == 43200
    refreshed = slack.oauth_v2_access(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, grant_type="refresh_token",
                                      refresh_token=first["refresh_token"])
    assert refreshed["access_token"] != first["access_token"] and refreshed["refresh_token"] != first["refresh_token"]
    assert error_of(lambda: slack.oauth_v2_access(client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                                                  grant_type="refresh_token",
                                                  refresh_token=first["refresh_token"])) == "invalid_refresh_token"
    old = WebClient(token=first["access_token"], base_url=fake.api_url)
    assert old.auth_test()["team_id"] == "T0ACME"  # the replaced token works until it expires
    fake.expire(first["access_token"])
    assert error_of(old.auth_test) == "token_expired"


def test_every_method_checks_its_token_and_answers_in_the_token_team(fake):
    acme = fake.issue_token("T0ACME")
    beta = fake.issue_token("T0BETA")
    assert error_of(WebClient(base_url=fake.api_url).auth_test) == "not_authed"
    assert error_of(WebClient(token="xoxb-made-up", base_url=fake.api_url).auth_test) == "invalid_auth"
    app_token = fake.issue_token("T0ACME", kind="app")
    assert error_of(lambda: WebClient(token=app_token, base_url=fake.api_url).chat_postMessage(
        channel="U1", text="hi")) == "not_allowed_token_type"
    posted = WebClient(token=beta, base_url=fake.api_url).chat_postMessage(channel="U1", text="hi")
    assert posted["message"]["team"] == "T0BETA"
    assert WebClient(token=acme, base_url=fake.api_url).team_info()["team"]["id"] == "T0ACME"
    fake.revoke("T0ACME")
    assert error_of(WebClient(token=acme, base_url=fake.api_url).auth_test) == "invalid_auth"
    assert WebClient(token=beta, base_url=fake.api_url).auth_test()["ok"]  # the other workspace is untouched
    # Every call is recorded with the token it carried.
    posts = fake.calls("chat.postMessage")
    assert [c.token for c in posts] == [app_token, beta] and fake.team_of(beta) == "T0BETA"


def test_a_non_strict_fake_takes_a_preset_token_as_its_home_team():
    with FakeSlack(team_id="T0HOME") as fake:
        assert WebClient(token="xoxb-preset", base_url=fake.api_url).auth_test()["team_id"] == "T0HOME"
        assert error_of(WebClient(base_url=fake.api_url).auth_test) == "not_authed"
