"""Two workspaces installed by OAuth into one real `rapport serve` process: each gets its reminder DM, agenda,
survey redraw, survey summary and weekly digest, every Web API call with its own token; one of them revoked
waits, paused, and a reinstall delivers what fell due, marked late, once."""

import json
import re
import subprocess
import time
from datetime import UTC, datetime, timedelta

import pytest
import requests
from sqlalchemy import update
from sqlmodel import Session, select

from bot.db import make_engine
from bot.slack.fake import FakeSlack
from bot.slack.simulate import Person, SlackSimulator
from models import Customer, Reminder, Survey, Workspace
from tests.test_serve import RAPPORT, clean_env, free_port
from tests.test_workspaces import assert_own_tokens

SECRET = "serve-oauth-secret"  # test values
CLIENT_ID, CLIENT_SECRET = "111.222", "serve-client-secret"
TEAMS = {
    # team: owner (rep), manager, customer (another organisation), managers' channel, shared channel
    "T0ACME": ("UA0OWNER", "UA0BOSS", "UA0CUST", "CA0MGRS", "CA0SHARED"),
    "T0BETA": ("UB0OWNER", "UB0BOSS", "UB0CUST", "CB0MGRS", "CB0SHARED"),
}
ACME, BETA = TEAMS


class OverHttp(SlackSimulator):
    """Slack's signed requests, sent to the serve process over HTTP."""

    def __init__(self, base: str, team_id: str, response_url_base: str):
        super().__init__(None, signing_secret=SECRET, team_id=team_id, response_url_base=response_url_base)
        self.base = base

    def send(self, body, content_type, *, extra_headers=None):
        from bot.slack.simulate import Response, sign

        headers = {"content-type": content_type, **sign(self.secret, body), **(extra_headers or {})}
        answer = requests.post(f"{self.base}/slack/events", data=body.encode(), headers=headers, timeout=10)
        return Response(status=answer.status_code, body=answer.text, headers=dict(answer.headers))


@pytest.fixture
def fake():
    fake = FakeSlack(team_id="T0NOBODY", strict_tokens=True).start()
    fake.set_oauth_app(CLIENT_ID, CLIENT_SECRET)
    for team, (owner, boss, customer, managers, shared) in TEAMS.items():
        fake.add_team(team)
        fake.add_user(owner, name=f"owner-{team}", team_id=team, tz="UTC")
        fake.add_user(boss, name=f"boss-{team}", team_id=team, tz="UTC", is_admin=True)
        fake.add_user(customer, name=f"customer-{team}", team_id=f"{team}CUST", tz="UTC")
        fake.add_channel(managers, name="managers", members=(boss,))
        fake.add_channel(shared, name="customer-shared", members=(owner, customer), is_ext_shared=True)
    yield fake
    fake.stop()


class Serve:
    """`rapport serve` processes, one at a time, on one database."""

    def __init__(self, tmp_path, fake):
        self.tmp_path, self.fake = tmp_path, fake
        self.url = f"sqlite:///{tmp_path}/serve.db"
        self.proc, self.logs = None, []

    def start(self, *, scheduler: bool):
        port = free_port()
        env = clean_env(SLACK_CLIENT_ID=CLIENT_ID, SLACK_CLIENT_SECRET=CLIENT_SECRET, SLACK_SIGNING_SECRET=SECRET,
                        SLACK_API_URL=self.fake.api_url, DATABASE_URL=self.url)
        args = [RAPPORT, "serve", "--host", "127.0.0.1", "--port", str(port)] + ([] if scheduler else ["--no-scheduler"])
        self.proc = subprocess.Popen(args, env=env, cwd=self.tmp_path, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        self.base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.base}/healthz", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:  # not listening yet, or slow to answer on a busy machine
                time.sleep(0.05)
            assert self.proc.poll() is None, self.proc.stdout.read().decode()
        raise AssertionError("rapport serve did not start")

    def stop(self):
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=20)
            self.logs.append(self.proc.stdout.read().decode())
            self.proc = None

    def install(self, team: str) -> None:
        """An admin of `team` clicks Add to Slack, approves on Slack's page, and Slack redirects back."""
        page = requests.get(f"{self.base}/slack/install", timeout=10)
        state = re.search(r"state=([\w-]+)", page.text).group(1)
        # Bolt's state cookie is Secure (HTTPS in production): sent back by hand over the test's plain HTTP.
        done = requests.get(f"{self.base}/slack/oauth_redirect", timeout=10, cookies=page.cookies.get_dict(),
                            params={"code": self.fake.authorize(team, user_id=TEAMS[team][1]), "state": state})
        assert done.status_code == 200, done.text[:500]

    def slack(self, team: str) -> OverHttp:
        return OverHttp(self.base, team, self.fake.response_url("x").rsplit("/", 1)[0])


def person(team: str, index: int) -> Person:
    user = TEAMS[team][index]
    return Person(id=user, name=user.lower(), team_id=team if index < 2 else f"{team}CUST")


def team_of_target(fake, call) -> str | None:
    target = call.args.get("channel") or call.args.get("user") or call.args.get("users")
    for team, ids in TEAMS.items():
        if target in ids or target in {fake.dm_channel(ids[0]), fake.dm_channel(ids[1])}:
            return team
    return None


def posts_to(fake, target: str, team: str) -> list:
    return [c for c in fake.calls("chat.postMessage") if c.response.get("ok")
            and c.response["channel"] in (target, fake.dm_channel(target)) and fake.team_of(c.token) == team]


def wait_until(check, seconds: float = 45):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    assert check()


def set_up_accounts(serve: Serve, team: str) -> None:
    """Through Slack: a key account with its shared channel, a follow-up, a survey the customer answers."""
    owner, _boss, customer, _managers, shared = TEAMS[team]
    slack = serve.slack(team)
    rep = person(team, 0)
    for text in (f'add "Acme of {team}" tier:key owner:<@{owner}|owner> channel:<#{shared}|customer-shared>',
                 f'remind "Acme of {team}" in 2d Send the proposal', f'survey "Acme of {team}" nps'):
        answered = slack.command(rep, "C0ANY", text)
        assert answered.status == 200, answered.body
    wait_until(lambda: any(c.args.get("channel") == shared for c in serve.fake.calls("chat.postMessage")), 10)
    survey = next(c for c in serve.fake.calls("chat.postMessage") if c.args.get("channel") == shared)
    nine = next(e for b in survey.args["blocks"] if b["type"] == "actions" for e in b["elements"]
                if e["text"]["text"] == "9")
    message = {"ts": survey.response["ts"], "blocks": survey.args["blocks"]}
    assert slack.click(person(team, 2), action=nine, channel_id=shared, message=message).status == 200


def everything_falls_due(url: str) -> None:
    """Time passes (the serve process runs on the real clock): the follow-up, the revisit, the survey's close
    and this week's digest are all due; BETA's follow-up fell due an hour ago, after it was uninstalled."""
    now = datetime.now(UTC)
    engine = make_engine(url)
    with Session(engine) as session:
        for team, ago in ((ACME, timedelta(minutes=1)), (BETA, timedelta(hours=1))):  # BETA's while it was paused
            session.exec(update(Reminder).where(Reminder.workspace_id == team)
                         .values(due_at=now - ago, deliver_at=now - ago, next_attempt_at=now - ago))
        session.exec(update(Customer).values(revisit_due_at=now - timedelta(days=1)))
        session.exec(update(Survey).values(closes_at=now - timedelta(minutes=1)))
        for team, (_owner, boss, _customer, managers, _shared) in TEAMS.items():
            session.exec(update(Workspace).where(Workspace.id == team).values(
                created_at=now - timedelta(days=30), digest_channel=managers, managers=[boss],
                work_days=[0, 1, 2, 3, 4, 5, 6], work_start="00:00", work_end="23:59"))
        session.commit()
    engine.dispose()


def paused(url: str, team: str) -> bool:
    engine = make_engine(url)
    with Session(engine) as session:
        found = session.get(Workspace, team).paused_at is not None
    engine.dispose()
    return found


def reminder_rows(url: str) -> dict[str, list[tuple[str, bool]]]:
    engine = make_engine(url)
    with Session(engine) as session:
        found: dict[str, list] = {}
        for r in session.exec(select(Reminder).order_by(Reminder.id)).all():
            found.setdefault(r.workspace_id, []).append((r.kind, str(r.status), r.late))
    engine.dispose()
    return found


def delivered_everything(fake, team: str) -> bool:
    owner, _boss, _customer, managers, shared = TEAMS[team]
    to_owner = " ".join(json.dumps(c.args.get("blocks")) for c in posts_to(fake, owner, team))
    return ("Send the proposal" in to_owner and "to revisit" in " ".join(c.args.get("text", "") for c in
            posts_to(fake, owner, team)) and "Survey closed" in " ".join(c.args.get("text", "") for c in
            posts_to(fake, owner, team)) and bool(posts_to(fake, managers, team)))


@pytest.mark.slow
def test_two_oauth_workspaces_in_one_serve_each_with_its_own_token_and_a_revoked_one_waits(tmp_path, fake):
    serve = Serve(tmp_path, fake)
    try:
        serve.start(scheduler=False)
        for team in TEAMS:
            serve.install(team)
            set_up_accounts(serve, team)
        for team, (_o, _b, _c, _m, shared) in TEAMS.items():  # the customer's click redrew the count, in-team
            wait_until(lambda shared=shared: any(c.args.get("channel") == shared for c in fake.calls("chat.update")), 10)
            redraws = [c for c in fake.calls("chat.update") if c.args.get("channel") == shared]
            assert redraws and "1 response" in json.dumps(redraws[-1].args["blocks"])
            assert fake.team_of(redraws[-1].token) == team
        # BETA removes the app: Slack revokes its tokens and tells us.
        fake.revoke(BETA)
        revoked = len(fake.calls())
        assert serve.slack(BETA).event({"type": "tokens_revoked", "tokens": {"oauth": [], "bot": ["U0BOT"]}}).status == 200
        wait_until(lambda: paused(serve.url, BETA), 10)  # the listener runs after the ack
        serve.stop()
        everything_falls_due(serve.url)
        serve.start(scheduler=True)
        wait_until(lambda: delivered_everything(fake, ACME))
        time.sleep(1)  # BETA's work, were it not paused, would have gone out in the same pass
        rows = reminder_rows(serve.url)
        assert [status for _kind, status, _late in rows[BETA] if _kind == "followup"] == ["pending"]
        assert not any(status == "failed" for _kind, status, _late in rows[BETA] + rows[ACME])
        # Nothing at all was tried for BETA while paused: no refused calls, no retries in a loop.
        assert not [c.method for c in fake.calls()[revoked:] if fake.team_of(c.token) == BETA]

        serve.install(BETA)  # reinstalled: the redirect completes for BETA again
        serve.stop()
        serve.start(scheduler=True)  # the next pass (here: at start) delivers what waited
        wait_until(lambda: delivered_everything(fake, BETA))
        time.sleep(1)
    finally:
        serve.stop()
    for team in TEAMS:
        owner = TEAMS[team][0]
        followups = [c for c in posts_to(fake, owner, team) if "Send the proposal" in json.dumps(c.args["blocks"])]
        assert len(followups) == 1, f"{team}: the follow-up came {len(followups)} times"
        assert ("*Late*" in json.dumps(followups[0].args["blocks"])) == (team == BETA)
        assert len(posts_to(fake, TEAMS[team][3], team)) == 1  # one weekly digest
    rows = reminder_rows(serve.url)
    assert all(status == "delivered" for kind, status, _late in rows[ACME] + rows[BETA])
    assert [late for kind, _status, late in rows[BETA] if kind == "followup"] == [True]
    assert not [c for c in fake.calls() if c.response.get("error") in ("not_authed", "invalid_auth")]
    assert_own_tokens(fake, lambda call: team_of_target(fake, call))
    logs = "\n".join(serve.logs)
    assert logs.count("T0BETA paused") == 1 and "Traceback" not in logs, logs
