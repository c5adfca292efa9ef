"""Many workspaces, each with its own token: background work uses the workspace's own client, a rotating token
is refreshed once however many processes try, and a workspace whose token Slack refuses waits, paused, until
it is reinstalled, when what fell due arrives, marked late, once."""

import logging
import os
import subprocess
import sys
import threading
from collections import Counter
from datetime import timedelta

import pytest
from slack_sdk import WebClient
from slack_sdk.oauth.installation_store import Installation
from sqlalchemy import insert
from sqlmodel import Session, select

from bot.config import Settings
from bot.db import make_engine, session_scope
from bot.runtime import Runtime
from bot.scheduler import TICKS
from bot.services import digest as digest_svc
from bot.services import reminders as svc
from bot.services import surveys as surveys_svc
from bot.services.customers import create_customer
from bot.services.workspaces import ensure_workspace
from bot.services.worktime import WorkingHours
from bot.slack.client import client_for, make_client
from bot.slack.fake import FakeSlack
from bot.slack.installs import WorkspacePaused, clients_of
from bot.slack.reminders import Dispatcher
from models import Customer, DigestRun, Reminder, Workspace
from tests.support import counting_queries

CLIENT_ID, CLIENT_SECRET = "111.222", "oauth-test-secret"  # test values
ACME, BETA = "T0ACME", "T0BETA"
OWNER = {ACME: "U0ANNA", BETA: "U0BORIS"}


@pytest.fixture
def oauth_fake():
    fake = FakeSlack(team_id="T0HOME", strict_tokens=True).start()
    fake.set_oauth_app(CLIENT_ID, CLIENT_SECRET)
    for team, owner in OWNER.items():
        fake.add_team(team)
        fake.add_user(owner, name=owner.lower(), team_id=team, tz="UTC")
    yield fake
    fake.stop()


def oauth_runtime(database_url, fake, clock) -> Runtime:
    settings = Settings(slack_client_id=CLIENT_ID, slack_client_secret=CLIENT_SECRET, slack_signing_secret="s",
                        slack_api_url=fake.api_url, database_url=database_url, _env_file=None)
    return Runtime(settings=settings, engine=make_engine(database_url), clock=clock,
                   client=make_client(base_url=fake.api_url))


@pytest.fixture
def oauth(database_url, oauth_fake, clock):
    runtime = oauth_runtime(database_url, oauth_fake, clock)
    yield runtime
    runtime.engine.dispose()


def install(runtime, fake, team: str, *, rotating: bool = False, expires_in: int | None = None) -> str:
    """What the OAuth redirect does: exchange the code Slack gave, save the installation."""
    granted = WebClient(base_url=fake.api_url).oauth_v2_access(client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                                                               code=fake.authorize(team, rotating=rotating))
    clients_of(runtime).store.save(Installation(
        app_id=granted["app_id"], team_id=team, team_name=team, user_id="U0INSTALLER",
        bot_token=granted["access_token"], bot_id="B0001", bot_user_id=granted["bot_user_id"],
        bot_scopes=granted["scope"], bot_refresh_token=granted.get("refresh_token"),
        bot_token_expires_in=expires_in or granted.get("expires_in")))
    return granted["access_token"]


def due_followup(runtime, team: str, note: str = "Call back") -> int:
    with session_scope(runtime.engine) as session:
        workspace = ensure_workspace(session, workspace_id=team, now=runtime.clock.now())
        workspace.work_days = [0, 1, 2, 3, 4, 5, 6]
        workspace.work_start, workspace.work_end = "00:00", "23:59"
        session.add(workspace)
        hours = WorkingHours.of(workspace, "UTC")
        return svc.create_followup(session, workspace=workspace, owner_id=OWNER[team], hours=hours,
                                   due_at=runtime.clock.now(), note=note, by=OWNER[team],
                                   now=runtime.clock.now()).id


def tick(runtime):
    with Dispatcher(runtime) as dispatcher:
        return dispatcher.tick()


def statuses(runtime) -> dict[str, list[str]]:
    with Session(runtime.engine) as session:
        found: dict[str, list[str]] = {}
        for reminder in session.exec(select(Reminder).order_by(Reminder.id)).all():
            found.setdefault(reminder.workspace_id, []).append(str(reminder.status))
        return found


def assert_own_tokens(fake, team_of_target=None):
    """Every Web API call carried a token, Slack took it, and it was the one of the workspace it spoke to.
    `team_of_target(call)`: the workspace a call's channel or user belongs to (None: not known)."""
    team_of_target = team_of_target or (lambda call: next(
        (t for t, owner in OWNER.items() if owner in (call.args.get("channel"), call.args.get("user"))), None))
    for call in fake.calls():
        if call.method in ("oauth.v2.access", "response_url"):
            continue
        assert call.token, f"{call.method} went out without a token"
        team = team_of_target(call)
        if team:
            assert fake.team_of(call.token) == team, f"{call.method} for {team} carried another workspace's token"


def test_each_workspace_gets_its_reminder_with_its_own_token(oauth, oauth_fake):
    for team in OWNER:
        install(oauth, oauth_fake, team)
        due_followup(oauth, team)
    report = tick(oauth)
    assert report.sent == 2 and statuses(oauth) == {ACME: ["delivered"], BETA: ["delivered"]}
    assert_own_tokens(oauth_fake)
    with pytest.raises(WorkspacePaused):  # never installed: nothing goes out without a token
        client_for(oauth, "T0NOBODY")


def test_a_revoked_workspace_waits_paused_while_the_other_goes_on_and_a_reinstall_delivers_late_once(
        oauth, oauth_fake, clock, caplog):
    tokens = {team: install(oauth, oauth_fake, team) for team in OWNER}
    oauth_fake.revoke(BETA)  # uninstalled on Slack's side; we have not heard yet
    due_followup(oauth, ACME)
    due_followup(oauth, BETA)
    with caplog.at_level(logging.WARNING, logger="bot.slack.installs"):
        tick(oauth)
        clock.advance(timedelta(hours=1))
        due_followup(oauth, ACME, "Second call")
        tick(oauth)
    assert statuses(oauth) == {ACME: ["delivered", "delivered"], BETA: ["pending"]}
    with Session(oauth.engine) as session:
        beta = session.get(Workspace, BETA)
        assert beta.paused_at is not None and beta.paused_reason == "invalid_auth"
        [waiting] = session.exec(select(Reminder).where(Reminder.workspace_id == BETA)).all()
        assert (waiting.attempts, waiting.last_error) == (0, None)  # never counted as a failed delivery
    assert sum("paused" in r.getMessage() for r in caplog.records) == 1  # the log says why, once
    refused = [c.method for c in oauth_fake.calls() if c.token == tokens[BETA]]
    assert refused == ["users.info", "auth.test"]  # the refused call and the check: no retry in a loop

    clock.advance(timedelta(hours=1))
    install(oauth, oauth_fake, BETA)  # reinstalled: the redirect saves the installation again
    tick(oauth)
    tick(oauth)
    assert statuses(oauth)[BETA] == ["delivered"]
    delivered = [c for c in oauth_fake.calls("chat.postMessage")
                 if c.args.get("channel") == OWNER[BETA] and c.response.get("ok")]
    assert len(delivered) == 1 and "late" in str(delivered[0].args["blocks"]).lower()
    with Session(oauth.engine) as session:
        assert session.exec(select(Reminder).where(Reminder.workspace_id == BETA)).one().late
    assert_own_tokens(oauth_fake)


def test_two_processes_refreshing_an_expiring_token_at_once_store_one_new_token(database_url, oauth_fake, clock):
    first, second = (oauth_runtime(database_url, oauth_fake, clock) for _ in range(2))
    old = install(first, oauth_fake, ACME, rotating=True, expires_in=60)  # due to be refreshed now
    oauth_fake.latency("oauth.v2.access", 0.3)  # both are inside the refresh at the same time
    start, tokens = threading.Barrier(2), {}

    def background_work(name, runtime):
        start.wait()
        tokens[name] = client_for(runtime, ACME).token

    threads = [threading.Thread(target=background_work, args=item) for item in (("a", first), ("b", second))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    refreshes = [c for c in oauth_fake.calls("oauth.v2.access") if c.args.get("grant_type") == "refresh_token"]
    assert len(refreshes) == 1 and refreshes[0].response["ok"]
    assert tokens["a"] == tokens["b"] != old
    stored = clients_of(first).store.find_bot(enterprise_id=None, team_id=ACME)
    assert stored.bot_token == tokens["a"] and stored.bot_refresh_token == refreshes[0].response["refresh_token"]
    for runtime in (first, second):  # and both keep working with it
        assert client_for(runtime, ACME).auth_test()["team_id"] == ACME
        runtime.engine.dispose()


def test_a_tick_costs_the_same_statements_for_one_workspace_or_many_paused_ones(oauth, oauth_fake):
    install(oauth, oauth_fake, ACME)
    due_followup(oauth, ACME, "First")
    tick(oauth)  # the owner's time zone and the workspace's token are fetched once, then cached
    due_followup(oauth, ACME)
    with counting_queries(oauth.engine) as alone:
        tick(oauth)
    for n in range(30):  # thirty more workspaces, paused, each with a reminder due
        team = f"T0P{n:03d}"
        OWNER[team] = f"U0P{n:03d}"
        try:
            due_followup(oauth, team)
        finally:
            del OWNER[team]
        clients_of(oauth).paused(team, "tokens_revoked")
    due_followup(oauth, ACME, "Again")
    with counting_queries(oauth.engine) as crowded:
        tick(oauth)
    assert statuses(oauth)[ACME] == ["delivered"] * 3
    assert len(crowded) == len(alone), "\n".join(s[:90].replace("\n"," ") for s in crowded)


def test_uninstalling_pauses_the_workspace_and_a_new_token_at_start_resumes_it(slack, fake_slack, clock):
    from bot.slack.installs import resume_for_new_token
    from bot.slack.presets import HOME_TEAM

    OWNER[HOME_TEAM] = "U0ALICE"
    try:
        due_followup(slack.runtime, HOME_TEAM, "Send the proposal")
    finally:
        del OWNER[HOME_TEAM]
    # A person's own token revoked: the bot's still works, nothing pauses.
    slack.sim.event({"type": "tokens_revoked", "tokens": {"oauth": ["U0ALICE"], "bot": []}})
    slack.sim.event({"type": "app_uninstalled"})
    slack.wait()
    tick(slack.runtime)
    assert statuses(slack.runtime) == {HOME_TEAM: ["pending"]}
    assert not fake_slack.calls("chat.postMessage")
    with Session(slack.runtime.engine) as session:
        assert session.get(Workspace, HOME_TEAM).paused_reason == "app_uninstalled"

    resume_for_new_token(slack.runtime)  # the same token at a restart: still paused
    tick(slack.runtime)
    assert statuses(slack.runtime) == {HOME_TEAM: ["pending"]}
    clock.advance(timedelta(hours=2))
    reinstalled = Runtime(settings=slack.runtime.settings, engine=slack.runtime.engine, clock=clock,
                          client=make_client(base_url=fake_slack.api_url, token="xoxb-reinstalled"))
    resume_for_new_token(reinstalled)  # the operator set the new token and restarted
    tick(reinstalled)
    [dm] = fake_slack.calls("chat.postMessage")
    assert dm.token == "xoxb-reinstalled" and "late" in str(dm.args["blocks"]).lower()
    assert statuses(reinstalled) == {HOME_TEAM: ["delivered"]}


def test_in_the_console_an_uninstalled_workspace_waits_and_reinstalling_delivers_late(tmp_path):
    import io

    from bot.clock import ManualClock
    from bot.console import Console
    from tests.conftest import MONDAY_9_UTC

    settings = Settings(database_url=f"sqlite:///{tmp_path}/console.db", _env_file=None)
    with Console(settings, out=io.StringIO(), clock=ManualClock(MONDAY_9_UTC)) as console:
        for line in ('/crm add "Acme Corp" tier:key owner:@alice', "/crm remind acme in 1d Send the proposal",
                     "uninstall", "advance 2d"):
            console.run_line(line)
        out = console.out.getvalue()
        assert "removed from the workspace" in out and "[DM to alice]" not in out
        console.run_line("reinstall")
        dm = console.out.getvalue()[len(out):]
        assert dm.count("[DM to alice]") == 1 and "*Late* — *Follow up with Acme Corp*" in dm


def test_a_request_and_background_work_refresh_an_expiring_token_once(oauth, oauth_fake):
    from bot.app import build_app
    from bot.slack.simulate import Person, SlackSimulator, TrackingExecutor

    old = install(oauth, oauth_fake, ACME, rotating=True, expires_in=60)
    executor = TrackingExecutor()
    app = build_app(oauth, listener_executor=executor)
    sim = SlackSimulator(app, signing_secret="s", team_id=ACME,
                         response_url_base=oauth_fake.response_url("x").rsplit("/", 1)[0])
    try:
        answered = sim.command(Person(OWNER[ACME], "anna", ACME), "C0ANY", "list")
        executor.wait_idle()
    finally:
        executor.shutdown(wait=True)
    assert answered.status == 200
    [refresh] = [c for c in oauth_fake.calls("oauth.v2.access") if c.args.get("grant_type") == "refresh_token"]
    fresh = refresh.response["access_token"]
    [lookup] = oauth_fake.calls("users.info")  # the request checked its user with the refreshed token
    assert lookup.token == fresh != old
    assert client_for(oauth, ACME).token == fresh  # background work finds it: no second refresh
    assert len([c for c in oauth_fake.calls("oauth.v2.access") if c.args.get("grant_type")]) == 1


# -- what a scheduler pass costs ------------------------------------------------------------------------------

PASSES = [name for name, _interval, _tick in TICKS if name != "health-snapshots"]  # that one scores each workspace


def work_falls_due(runtime, n: int) -> None:
    """In ACME: a follow-up due now and a survey whose week is over."""
    due_followup(runtime, ACME, f"Call back #{n}")
    now = runtime.clock.now()
    with session_scope(runtime.engine) as session:
        workspace = session.get(Workspace, ACME)
        customer = create_customer(session, workspace=workspace, name=f"Customer {n}", by=OWNER[ACME], now=now,
                                   owner_id=OWNER[ACME], channel_id="C0ACMESHARED")
        survey = surveys_svc.start_survey(session, workspace=workspace, customer=customer, kind="nps",
                                          channel_id="C0ACMESHARED", by=OWNER[ACME], now=now - timedelta(days=8))
        survey.closes_at = now - timedelta(days=1)
        session.add(survey)


def statements_per_pass(runtime) -> dict[str, int]:
    counted = {}
    for name, _interval, pass_ in TICKS:
        if name in PASSES:
            with counting_queries(runtime.engine) as statements:
                pass_(runtime)
            counted[name] = len(statements)
    return counted


def many_idle_workspaces(runtime, count: int) -> None:
    """`count` more workspaces, each with customers, a follow-up due later and this week's digest posted."""
    now = runtime.clock.now()
    with session_scope(runtime.engine) as session:
        acme = session.get(Workspace, ACME)
        settings = acme.model_dump(exclude={"id", "name", "paused_at", "paused_reason", "paused_token"})
        period = digest_svc.period_of(digest_svc.due_moment(acme, now), acme.timezone)
        teams = [f"T0IDLE{n:04d}" for n in range(count)]
        session.execute(insert(Workspace), [{**settings, "id": team, "name": team} for team in teams])
        session.execute(insert(Customer), [
            {"workspace_id": team, "name": f"Customer {c}", "name_key": f"customer {c}", "owner_id": "U0IDLE",
             "created_at": now, "updated_at": now, "revisit_due_at": now + timedelta(days=30)}
            for team in teams for c in range(3)])
        later = now + timedelta(days=3)
        session.execute(insert(Reminder), [
            {"workspace_id": team, "kind": "followup", "source": "manual", "owner_id": "U0IDLE", "note": "Later",
             "due_at": later, "deliver_at": later, "next_attempt_at": later, "status": "pending",
             "created_at": now} for team in teams])
        session.execute(insert(DigestRun), [
            {"workspace_id": team, "period": period, "status": "posted", "claimed_by": "elsewhere",
             "claimed_at": now, "posted_at": now, "delivered_to": [], "given_up": {}} for team in teams])


def test_every_scheduler_pass_costs_the_same_statements_for_one_workspace_or_a_thousand(oauth, oauth_fake, clock):
    oauth_fake.add_channel("C0ACMEMGR", name="managers", members=[OWNER[ACME]])
    oauth_fake.add_channel("C0ACMESHARED", name="acme-shared", members=[OWNER[ACME]])
    install(oauth, oauth_fake, ACME)
    with session_scope(oauth.engine) as session:
        acme = ensure_workspace(session, workspace_id=ACME, now=clock.now() - timedelta(days=30))
        acme.digest_channel = "C0ACMEMGR"
        acme.created_at = clock.now() - timedelta(days=30)
        session.add(acme)
    work_falls_due(oauth, 0)
    first = statements_per_pass(oauth)  # the owner's time zone, the token, the channel: fetched, then cached
    assert digests(oauth_fake) == 1 and statuses(oauth)[ACME] == ["delivered"]

    work_falls_due(oauth, 1)
    alone = statements_per_pass(oauth)
    many_idle_workspaces(oauth, 999)
    work_falls_due(oauth, 2)
    crowded = statements_per_pass(oauth)
    assert crowded == alone, (alone, crowded)
    assert statuses(oauth)[ACME] == ["delivered"] * 3
    summaries = [c for c in oauth_fake.calls("chat.postMessage") if c.response.get("ok")
                 and c.args.get("channel") == OWNER[ACME] and "Survey closed" in c.args.get("text", "")]
    assert len(summaries) == 3 and digests(oauth_fake) == 1  # each pass did its work, the digest went once
    assert first["weekly-digest"] > alone["weekly-digest"]  # the measured passes found this week's digest out
    assert_own_tokens(oauth_fake)


def digests(fake) -> int:
    return sum(1 for c in fake.calls("chat.postMessage") if c.response.get("ok")
               and c.args.get("channel") == "C0ACMEMGR" and "digest" in c.args.get("text", "").lower())


@pytest.mark.slow  # three processes
def test_three_processes_finding_a_token_about_to_expire_refresh_it_once_and_all_deliver_with_the_new_one(
        database_url, oauth_fake, tmp_path):
    from bot.clock import SystemClock
    from tests.test_reminders_delivery import ROOT, wait_all

    runtime = oauth_runtime(database_url, oauth_fake, SystemClock())  # the processes run on the real clock
    old = install(runtime, oauth_fake, ACME, rotating=True, expires_in=60)  # due to be refreshed now
    ids = [due_followup(runtime, ACME, f"Call back #{n}") for n in range(30)]
    oauth_fake.latency("oauth.v2.access", 0.5)  # whoever refreshes takes a while: the others arrive meanwhile
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DATABASE_URL"))}
    env.update(DATABASE_URL=database_url, SLACK_API_URL=oauth_fake.api_url, SLACK_CLIENT_ID=CLIENT_ID,
               SLACK_CLIENT_SECRET=CLIENT_SECRET, DELIVERY_RATE="0", RAPPORT_TEST_BATCH="5",
               RAPPORT_TEST_DEADLINE="60")
    workers = []
    for n in range(3):
        with open(tmp_path / f"worker{n}.log", "wb") as log:
            workers.append(subprocess.Popen([sys.executable, "-m", "tests.reminder_worker"], cwd=ROOT, env=env,
                                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))
    wait_all(workers, tmp_path, timeout=90)

    refreshes = [c for c in oauth_fake.calls("oauth.v2.access") if c.args.get("grant_type") == "refresh_token"]
    assert len(refreshes) == 1 and refreshes[0].response["ok"], [c.response for c in refreshes]
    new = refreshes[0].response["access_token"]
    stored = clients_of(runtime).store.find_bot(enterprise_id=None, team_id=ACME)
    assert (stored.bot_token, stored.bot_refresh_token) == (new, refreshes[0].response["refresh_token"])
    posts = [c for c in oauth_fake.calls("chat.postMessage") if c.response.get("ok")]
    carried = Counter(i for c in posts for i in c.args["metadata"]["event_payload"]["reminder_ids"])
    assert carried == Counter(ids)  # every reminder once, by whichever process
    assert {c.token for c in oauth_fake.calls() if c.method != "oauth.v2.access"} == {new} != {old}
    assert statuses(runtime)[ACME] == ["delivered"] * 30
    runtime.engine.dispose()
