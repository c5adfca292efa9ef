"""`rapport serve` as a real process with a token Slack refuses, or no Slack to ask: one line naming the setting
and Slack's error on stderr, exit code 2, no traceback, nothing started."""

import subprocess

import pytest

from bot.slack.fake import FakeSlack
from tests.test_serve import RAPPORT, clean_env, free_port

TEAM = "T0TOKENS"


@pytest.fixture
def strict_fake():
    """A fake Slack that knows only the tokens it issued, as Slack does."""
    fake = FakeSlack(team_id=TEAM, strict_tokens=True).start()
    yield fake
    fake.stop()


def serve(tmp_path, api_url: str, *, bot_token: str, app_token: str | None = None) -> subprocess.CompletedProcess:
    env = clean_env(SLACK_BOT_TOKEN=bot_token, SLACK_SIGNING_SECRET="tokens-test-secret", SLACK_API_URL=api_url,
                    DATABASE_URL=f"sqlite:///{tmp_path}/tokens.db")
    args = [RAPPORT, "serve", "--host", "127.0.0.1", "--port", str(free_port())]
    if app_token is not None:
        env["SLACK_APP_TOKEN"] = app_token
        args.append("--socket")
    return subprocess.run(args, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=90)


def one_line(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr and not done.stdout.strip(), done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


def test_an_unknown_bot_token_is_one_line_naming_it(tmp_path, strict_fake):
    line = one_line(serve(tmp_path, strict_fake.api_url, bot_token="xoxb-never-issued"))
    assert line.startswith("rapport: SLACK_BOT_TOKEN was refused by Slack (invalid_auth): copy the Bot User OAuth")
    assert "xoxb-never-issued" not in line  # the token itself is never printed
    assert [call.method for call in strict_fake.calls()] == ["auth.test"]  # nothing went on after the refusal


def test_a_revoked_bot_token_is_refused_in_socket_mode_before_the_app_token_is_tried(tmp_path, strict_fake):
    bot = strict_fake.issue_token(TEAM)
    app = strict_fake.issue_token(TEAM, kind="app")
    strict_fake.revoke(TEAM)
    line = one_line(serve(tmp_path, strict_fake.api_url, bot_token=bot, app_token=app))
    assert line.startswith("rapport: SLACK_BOT_TOKEN was refused by Slack (invalid_auth): ")
    assert not strict_fake.calls("apps.connections.open")


@pytest.mark.parametrize("revoked", [False, True], ids=["unknown", "revoked"])
def test_a_refused_app_token_is_one_line_naming_it(tmp_path, strict_fake, revoked):
    bot = strict_fake.issue_token(TEAM)
    if revoked:
        other = "T0OTHERAPP"
        app = strict_fake.issue_token(other, kind="app")
        strict_fake.revoke(other)
    else:
        app = "xapp-1-never-issued"
    line = one_line(serve(tmp_path, strict_fake.api_url, bot_token=bot, app_token=app))
    assert line.startswith("rapport: SLACK_APP_TOKEN was refused by Slack (invalid_auth): create an App-Level Token")
    assert "connections:write" in line and app not in line
    opened = strict_fake.calls("apps.connections.open")
    assert len(opened) == 1 and opened[0].token == app  # the app token, not the bot token, was put to Slack


def test_slack_out_of_reach_at_start_is_one_line(tmp_path):
    nobody = f"http://127.0.0.1:{free_port()}/api/"  # a port nothing listens on
    line = one_line(serve(tmp_path, nobody, bot_token="xoxb-unreachable"))
    assert line.startswith(f"rapport: Slack could not be reached at {nobody} to check SLACK_BOT_TOKEN (")
    assert line.endswith("check the network and SLACK_API_URL")
