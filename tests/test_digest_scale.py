"""The weekly digest at scale (PRODUCT.md §6): a fixed number of queries whatever the number of key accounts,
one digest a week with two scheduler processes or a restart in the middle, and a 300-account digest that stays
within Block Kit limits, leaves no account out and pings nobody."""

import json
import os
import re
import subprocess
import sys
import threading
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, select
from sqlalchemy.engine import make_url

from bot.db import make_engine, session_scope
from bot.runtime import Runtime
from bot.scheduler import refresh_snapshots
from bot.services import digest as digest_svc
from bot.services import health
from bot.services.names import name_key
from bot.services.workspaces import ensure_workspace
from bot.slack import presets
from bot.slack.client import make_client
from bot.slack.digest import run_weekly
from models import (
    Contact,
    Customer,
    DigestRun,
    HealthSnapshot,
    RelationshipChange,
    Reminder,
    SlackUser,
    Survey,
    SurveyResponse,
    Workspace,
)
from tests.support import check_message, counting_queries, text_of

ROOT = Path(__file__).resolve().parent.parent
HOME = presets.HOME_TEAM
MANAGERS = "C0MANAGERS"
OWNERS = ("U0ALICE", "U0BOB")
SECTION_LIMIT = 3000
MESSAGE_BLOCKS = 50


# -- seeding: every kind of row the digest reads, with SQLAlchemy Core bulk inserts ---------------------------


def seed_key_accounts(engine, *, workspace_id: str, now: datetime, names: list[str], general: int = 0,
                      subscribers: tuple[str, ...] = (), weeks: int = 7) -> dict[str, int]:
    """A workspace whose digest goes to #managers, with key accounts named `names` (and `general` general
    accounts the digest leaves out). Account i has a decision maker at level i % 5 + 1 and a champion on Slack,
    a last touch i % 45 days ago, a survey 2 days ago (i % 3 == 1, answered this week by the champion with a
    comment and by a buyer known to the Slack user cache) or 100 days ago (i % 3 == 2) or none, an overdue
    follow-up (i % 4 == 0), the decision maker's move this week (i % 10 == 0: level 2 → 1, i % 10 == 4: 4 → 5)
    and health snapshots for the `weeks` weeks before this one. Returns name → customer id."""
    with session_scope(engine) as session:
        workspace = ensure_workspace(session, workspace_id=workspace_id, now=now - timedelta(days=60))
        workspace.digest_channel, workspace.managers = MANAGERS, ["U0MEI"]
        workspace.digest_subscribers = list(subscribers)
        session.add(workspace)
    created = now - timedelta(days=400)
    accounts = [(name, "key") for name in names] + [(f"General {n:05d}", "general") for n in range(general)]
    with engine.begin() as db:
        touched = [now - timedelta(days=i % 45, hours=1) for i in range(len(accounts))]
        db.execute(insert(Customer.__table__), [
            {"workspace_id": workspace_id, "name": name, "name_key": name_key(name), "tier": tier,
             "stage": "active", "org_relationship": ("vendor", "supplier", "key_supplier")[i % 3],
             "owner_id": OWNERS[i % 2], "channel_id": None, "created_by": OWNERS[i % 2], "created_at": created,
             "updated_at": touched[i], "last_touch_at": touched[i], "revisit_due_at": touched[i] + timedelta(days=14)}
            for i, (name, tier) in enumerate(accounts)])
        ids = dict(db.execute(select(Customer.name, Customer.id).where(Customer.workspace_id == workspace_id)).all())
        key_ids = [ids[name] for name in names]
        db.execute(insert(Contact.__table__), [
            {"workspace_id": workspace_id, "customer_id": ids[name], "name": person, "name_key": name_key(person),
             "role": role, "level": level, "slack_user_id": slack_id, "created_at": created, "updated_at": created}
            for i, (name, _tier) in enumerate(accounts)
            for person, role, level, slack_id in ((f"Decision Maker {i}", "decision_maker", i % 5 + 1, None),
                                                  (f"Champion {i}", "champion", 4, f"U0C{i:05d}"))])
        makers = dict(db.execute(select(Contact.customer_id, Contact.id).where(
            Contact.workspace_id == workspace_id, Contact.role == "decision_maker")).all())
        db.execute(insert(SlackUser.__table__), [
            {"workspace_id": workspace_id, "user_id": f"U0X{i:05d}", "name": f"Buyer {i}", "tz": "UTC",
             "fetched_at": now} for i in range(1, len(names), 3)])
        surveyed = [(i, cid) for i, cid in enumerate(key_ids) if i % 3]
        db.execute(insert(Survey.__table__), [
            {"workspace_id": workspace_id, "customer_id": cid, "kind": "nps" if i % 2 else "csat",
             "channel_id": "C0ACME", "created_by": OWNERS[i % 2], "status": "closed",
             "created_at": now - timedelta(days=2 if i % 3 == 1 else 100),
             "closes_at": now - timedelta(days=2 if i % 3 == 1 else 100) + timedelta(days=7)}
            for i, cid in surveyed])
        surveys = dict(db.execute(select(Survey.customer_id, Survey.id).where(Survey.workspace_id == workspace_id)).all())
        answers = []
        for i, cid in surveyed:
            at = now - timedelta(days=2 if i % 3 == 1 else 100) + timedelta(hours=1)
            high, low = (10, 3) if i % 2 else (5, 2)
            for respondent, score, comment in ((f"U0C{i:05d}", high, f"Great service {i}"), (f"U0X{i:05d}", low, None)):
                answers.append({"workspace_id": workspace_id, "survey_id": surveys[cid], "customer_id": cid,
                                "respondent_id": respondent, "respondent_team_id": "T0CUSTOMER", "score": score,
                                "comment": comment, "answered_at": at, "updated_at": at})
        db.execute(insert(SurveyResponse.__table__), answers)
        db.execute(insert(Reminder.__table__), [
            {"workspace_id": workspace_id, "customer_id": cid, "kind": "followup", "source": "manual",
             "owner_id": OWNERS[i % 2], "note": "send the proposal", "due_at": now - timedelta(days=3),
             "deliver_at": now - timedelta(days=3), "next_attempt_at": now - timedelta(days=3), "status": "delivered",
             "attempts": 1, "late": False, "created_by": OWNERS[i % 2], "created_at": now - timedelta(days=10)}
            for i, cid in enumerate(key_ids) if i % 4 == 0])
        db.execute(insert(RelationshipChange.__table__), [
            {"workspace_id": workspace_id, "customer_id": cid, "field": "level", "contact_id": makers[cid],
             "from_value": "2" if i % 10 == 0 else "4", "to_value": str(i % 5 + 1), "by_user": OWNERS[i % 2],
             "at": now - timedelta(days=2), "reason": None}
            for i, cid in enumerate(key_ids) if i % 10 in (0, 4)])
        this_week = health.week_start(now, "UTC")
        db.execute(insert(HealthSnapshot.__table__), [
            {"workspace_id": workspace_id, "customer_id": cid, "week_start": this_week - timedelta(weeks=w),
             "score": float((i * 7 + w * 3) % 100), "band": health.band(float((i * 7 + w * 3) % 100)),
             "components": {"engagement": {"value": 100.0, "reason": "last touch 1 day ago"},
                            "satisfaction": {"value": None, "reason": "no survey data"},
                            "relationship": {"value": 50.0, "reason": "decision maker at level 3/5"},
                            "followup": {"value": 100.0, "reason": "no overdue follow-ups"}},
             "reasons": ["last touch 1 day ago"], "computed_at": now - timedelta(weeks=w)}
            for i, cid in enumerate(key_ids) for w in range(1, weeks + 1)])
    return ids


def queries_to_build(engine, workspace_id: str, now: datetime) -> tuple[int, int, int]:
    """(queries for score_workspace, queries for build_digest, key accounts in the digest) on a fresh session."""
    with session_scope(engine) as session:
        workspace = session.get(Workspace, workspace_id)
        with counting_queries(engine) as scoring:
            health.score_workspace(session, workspace=workspace, now=now)
        with counting_queries(engine) as building:
            built = digest_svc.build_digest(session, workspace=workspace, now=now)
    return len(scoring), len(building), built.total


# -- 1. queries do not grow with the number of accounts --------------------------------------------------------


def test_the_digest_takes_as_many_queries_for_1000_key_accounts_as_for_10(runtime, clock):
    now = clock.now()
    seed_key_accounts(runtime.engine, workspace_id="T0SMALL", now=now, names=[f"Small {n}" for n in range(10)],
                      general=5)
    seed_key_accounts(runtime.engine, workspace_id="T0LARGE", now=now, names=[f"Large {n}" for n in range(1000)],
                      general=100, weeks=3)
    small_scoring, small_building, small_total = queries_to_build(runtime.engine, "T0SMALL", now)
    large_scoring, large_building, large_total = queries_to_build(runtime.engine, "T0LARGE", now)
    assert (small_total, large_total) == (10, 1000)
    assert large_scoring == small_scoring <= 8
    assert large_building == small_building <= 16


# -- 2. one digest, whatever the number of processes and restarts -----------------------------------------------


def digest_headers(fake, channel: str) -> list:
    """The first messages of digests posted to `channel` (thread replies continue one, they are not a digest)."""
    return [c for c in fake.calls("chat.postMessage")
            if c.args.get("channel") == channel and not c.args.get("thread_ts") and c.response.get("ok")
            and (c.args.get("blocks") or [{}])[0].get("type") == "header"
            and "Key-account digest" in text_of(c.args)]


def other_process(runtime, name: str) -> Runtime:
    """A second bot process on the same database and clock: its own engine, client and name."""
    settings = runtime.settings
    return Runtime(settings=settings, engine=make_engine(settings.database), clock=runtime.clock,
                   client=make_client(base_url=settings.slack_api_url, token=settings.slack_bot_token), process=name)


def run_side_by_side(*runtimes) -> list[int]:
    """run_weekly in every runtime at the same moment, each from its own thread."""
    start = threading.Barrier(len(runtimes))
    results: list = [None] * len(runtimes)

    def run(n: int, runtime) -> None:
        start.wait()
        try:
            results[n] = run_weekly(runtime)
        except Exception as exc:  # surfaced by the assertion below, with the thread's error
            results[n] = exc

    threads = [threading.Thread(target=run, args=(n, r)) for n, r in enumerate(runtimes)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert all(isinstance(r, int) for r in results), results
    return results


def test_two_scheduler_processes_post_one_digest_a_week(runtime, clock, fake_slack):
    seed_key_accounts(runtime.engine, workspace_id=HOME, now=clock.now(), names=[f"Acct {n}" for n in range(12)])
    runtime.process = "scheduler-a"
    second = other_process(runtime, "scheduler-b")
    try:
        for week in range(2):  # Monday 09:00 this week, then next Monday 09:00
            assert sorted(run_side_by_side(runtime, second)) == [0, 1]
            assert sorted(run_side_by_side(runtime, second)) == [0, 0]
            assert len(digest_headers(fake_slack, MANAGERS)) == week + 1
            clock.advance(timedelta(days=7))
    finally:
        second.engine.dispose()
    with session_scope(runtime.engine) as session:
        runs = session.exec(select(DigestRun).order_by(DigestRun.period)).scalars().all()
        assert [(r.period, r.status, r.delivered_to) for r in runs] == [
            ("2026-W48", "posted", [MANAGERS]), ("2026-W49", "posted", [MANAGERS])]


def claim_left_by_a_dead_process(engine, *, at: datetime, delivered_to: list[str] = (), channel_ts=None) -> None:
    with session_scope(engine) as session:
        session.add(DigestRun(workspace_id=HOME, period=digest_svc.period_of(at, "UTC"), claimed_by="host:4242:dead01",
                              claimed_at=at, delivered_to=list(delivered_to),
                              channel_id=channel_ts and channel_ts[0], message_ts=channel_ts and channel_ts[1]))


def test_a_process_that_died_after_claiming_is_taken_over_once_its_claim_is_stale(runtime, clock, fake_slack):
    seed_key_accounts(runtime.engine, workspace_id=HOME, now=clock.now(), names=[f"Acct {n}" for n in range(6)])
    claim_left_by_a_dead_process(runtime.engine, at=clock.now())  # claimed at 09:00, then the process died
    clock.advance(timedelta(minutes=5))
    assert run_weekly(runtime) == 0  # 09:05: it may still be posting
    assert digest_headers(fake_slack, MANAGERS) == []
    clock.advance(digest_svc.STALE_CLAIM)  # 09:15: the claim is stale
    assert run_weekly(runtime) == 1
    assert run_weekly(runtime) == 0
    assert len(digest_headers(fake_slack, MANAGERS)) == 1
    with session_scope(runtime.engine) as session:
        run = session.exec(select(DigestRun)).scalars().one()
        assert (run.status, run.claimed_by, run.delivered_to) == ("posted", runtime.process, [MANAGERS])


def test_a_long_posting_run_keeps_its_claim_alive_with_a_heartbeat(runtime, clock, fake_slack, monkeypatch):
    import bot.slack.digest as posting
    from bot.slack.client import client_for

    seed_key_accounts(runtime.engine, workspace_id=HOME, now=clock.now(), names=[f"Acct {n}" for n in range(6)],
                      subscribers=("U0MEI",))
    monkeypatch.setattr(posting, "split", lambda blocks: [blocks[i:i + 3] for i in range(0, 15, 3)])  # 5 parts
    runtime.process = "scheduler-a"
    second = other_process(runtime, "scheduler-b")
    client = client_for(runtime, HOME)
    post = client.chat_postMessage
    taken_over = []

    def slow_slack(**kwargs):  # every message waits 4 minutes (Retry-After), 40 minutes in all
        clock.advance(timedelta(minutes=4))
        taken_over.append(run_weekly(second))  # the other process looks in meanwhile: the claim is alive
        return post(**kwargs)

    monkeypatch.setattr(client, "chat_postMessage", slow_slack)
    try:
        assert run_weekly(runtime) == 1
        assert len(taken_over) == 10 and not any(taken_over)
        assert len(digest_headers(fake_slack, MANAGERS)) == 1 and len(digest_headers(fake_slack, "U0MEI")) == 1
        with session_scope(runtime.engine) as session:
            run = session.exec(select(DigestRun)).scalars().one()
            assert (run.status, run.claimed_by, run.delivered_to) == ("posted", "scheduler-a", [MANAGERS, "U0MEI"])

        # A process that dies after a beat: its claim still goes stale STALE_CLAIM after the last beat.
        monkeypatch.setattr(client, "chat_postMessage", post)
        clock.advance(timedelta(days=7) - timedelta(minutes=40))  # next Monday 09:00
        claim_left_by_a_dead_process(runtime.engine, at=clock.now())
        with session_scope(runtime.engine) as session:
            dead = session.exec(select(DigestRun).where(DigestRun.period == "2026-W49")).scalars().one()
        clock.advance(timedelta(minutes=3))
        with session_scope(runtime.engine) as session:
            assert digest_svc.keep_claim(session, run_id=dead.id, process="host:4242:dead01", now=clock.now())
        clock.advance(digest_svc.STALE_CLAIM - timedelta(minutes=1))
        assert run_weekly(second) == 0  # 9 minutes after its last beat: still its own
        clock.advance(timedelta(minutes=2))
        assert run_weekly(second) == 1  # 11 minutes: taken over, posted once
        with session_scope(runtime.engine) as session:
            assert not digest_svc.keep_claim(session, run_id=dead.id, process="host:4242:dead01", now=clock.now())
    finally:
        second.engine.dispose()


def test_a_takeover_does_not_post_again_where_the_dead_process_already_posted(runtime, clock, fake_slack):
    seed_key_accounts(runtime.engine, workspace_id=HOME, now=clock.now(), names=[f"Acct {n}" for n in range(6)],
                      subscribers=("U0MEI", "U0BOB"))
    # It posted to #managers and to mei, recorded both, and died before bob and before finishing the run.
    claim_left_by_a_dead_process(runtime.engine, at=clock.now(), delivered_to=[MANAGERS, "U0MEI"],
                                 channel_ts=(MANAGERS, "1700000000.000100"))
    clock.advance(digest_svc.STALE_CLAIM + timedelta(minutes=1))
    assert run_weekly(runtime) == 1
    assert digest_headers(fake_slack, MANAGERS) == []
    assert digest_headers(fake_slack, "U0MEI") == []
    assert len(digest_headers(fake_slack, "U0BOB")) == 1
    assert run_weekly(runtime) == 0
    with session_scope(runtime.engine) as session:
        run = session.exec(select(DigestRun)).scalars().one()
        assert run.status == "posted"
        assert run.delivered_to == [MANAGERS, "U0MEI", "U0BOB"]
        assert (run.channel_id, run.message_ts) == (MANAGERS, "1700000000.000100")  # the channel's message


# One scheduler process for the test below (only what the bot imports, so it starts quickly): says "ready",
# runs the weekly pass once when told "go", and prints how many digests it posted.
WORKER = """
import json, os, sys
from datetime import datetime
from bot.clock import ManualClock
from bot.config import Settings
from bot.runtime import open_runtime
from bot.slack.digest import run_weekly

clock = ManualClock(datetime.fromisoformat(os.environ["RAPPORT_TEST_NOW"]))
runtime = open_runtime(Settings(_env_file=None), clock=clock, migrate=False)
with runtime.engine.connect():  # connected before the start, so both begin the pass together
    pass
print("ready", flush=True)
sys.stdin.readline()
print(json.dumps({"process": runtime.process, "posted": run_weekly(runtime)}), flush=True)
runtime.engine.dispose()
"""


def test_two_real_processes_on_postgres_post_one_digest(database_url, runtime, clock, fake_slack, tmp_path):
    if make_url(database_url).get_backend_name() != "postgresql":
        pytest.skip("processes share a SQLite file the same way threads do; this is about PostgreSQL")
    seed_key_accounts(runtime.engine, workspace_id=HOME, now=clock.now(), names=[f"Acct {n}" for n in range(12)])
    env = {**os.environ, "DATABASE_URL": database_url, "SLACK_API_URL": fake_slack.api_url,
           "SLACK_BOT_TOKEN": "xoxb-test", "RAPPORT_TEST_NOW": clock.now().isoformat()}
    logs = [tmp_path / f"worker{n}.log" for n in range(2)]
    workers = []
    for log in logs:
        with open(log, "wb") as err:
            workers.append(subprocess.Popen([sys.executable, "-c", WORKER], cwd=ROOT, env=env,
                                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True))
    try:
        for worker in workers:
            assert worker.stdout.readline().strip() == "ready", [log.read_text()[-2000:] for log in logs]
        for worker in workers:  # both start the scheduler pass at once
            worker.stdin.write("go\n")
            worker.stdin.flush()
        outputs = [worker.communicate(timeout=60) for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
    assert [w.returncode for w in workers] == [0, 0], [log.read_text()[-2000:] for log in logs]
    results = [json.loads(out.strip().splitlines()[-1]) for out, _err in outputs]
    assert sorted(r["posted"] for r in results) == [0, 1]
    assert len(digest_headers(fake_slack, MANAGERS)) == 1
    with session_scope(runtime.engine) as session:
        run = session.exec(select(DigestRun)).scalars().one()
        assert run.claimed_by in {r["process"] for r in results} and run.status == "posted"


# -- 3. a long digest within Block Kit limits, every account in it, nobody pinged ----------------------------------


def hostile_names(count: int) -> list[str]:
    """Mentions and markup, 200-character names, emoji and CJK, in turn; each unique in its first 20 characters."""
    kinds = (lambda n: f"<!channel> Acct {n:03d} & <@U0BOB> <!here>",
             lambda n: f"Long {n:03d} " + "Very Long Industrial Holdings " * 7,
             lambda n: f"🚀🔥 Rocket {n:03d} 👍🏽 Ltd",
             lambda n: f"华为技术有限公司 {n:03d} 深圳分公司")
    return [kinds[n % 4](n)[:200] for n in range(count)]


def as_shown(name: str, limit: int = 80) -> str:
    """How a customer's name reads in a digest line: cut to the limit with an ellipsis, Slack's markup escaped."""
    cut = name if len(name) <= limit else name[: limit - 1] + "…"
    return cut.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def posted_digest(fake, channel: str) -> list[dict]:
    """The digest's first message in `channel` and its continuation in the thread, in order."""
    [first] = digest_headers(fake, channel)
    replies = [c for c in fake.calls("chat.postMessage") if c.args.get("thread_ts") == first.response["ts"]]
    return [first.args] + [c.args for c in replies]


def test_a_300_account_digest_with_hostile_names_fits_block_kit_and_leaves_no_account_out(slack, clock, fake_slack):
    names = hostile_names(300)
    seed_key_accounts(slack.runtime.engine, workspace_id=HOME, now=clock.now(), names=names, general=20)
    assert run_weekly(slack.runtime) == 1
    messages = posted_digest(fake_slack, MANAGERS)
    assert len(messages) >= 7  # 300 account lines and the sections above them: 50 blocks a message at most
    assert all(c.response["ok"] for c in fake_slack.calls("chat.postMessage"))  # Slack refused nothing
    for message in messages:
        check_message(message)  # valid Block Kit, and nothing in it would ping anyone
        assert len(message["blocks"]) <= MESSAGE_BLOCKS
        assert all(len(b["text"]["text"]) <= SECTION_LIMIT for b in message["blocks"] if b["type"] == "section")
    shown = "\n".join(text_of(message) for message in messages)
    assert [name for name in names if as_shown(name) not in shown] == []  # every account, as its name reads
    assert "&lt;!channel&gt; Acct 000 &amp; &lt;@U0BOB&gt; &lt;!here&gt;" in shown
    assert "General 00000" not in shown  # key accounts only
    assert re.search(r"\*No survey for 90 days\* \(200\): .+ and \d+ more", shown)  # the rest counted, not cut

    preview = slack.command("mei", "digest preview")  # ephemeral: no thread to continue in, so one message
    assert len(preview["blocks"]) <= MESSAGE_BLOCKS
    said = re.search(r"…(\d+) more lines in the full digest", text_of({"blocks": preview["blocks"][-2:-1]}))
    shown_sections = sum(1 for b in preview["blocks"] if b["type"] == "section")
    all_sections = sum(1 for message in messages for b in message["blocks"] if b["type"] == "section")
    assert said and int(said[1]) == all_sections - shown_sections  # every line it leaves out, counted
    assert "Health 0–100" in text_of({"blocks": preview["blocks"][-1:]})  # the legend stays


# -- the weekly snapshots, written in bulk ------------------------------------------------------------------------


def test_recomputing_within_the_week_replaces_this_weeks_snapshots(runtime, clock):
    ids = seed_key_accounts(runtime.engine, workspace_id=HOME, now=clock.now(), names=[f"Acct {n}" for n in range(6)],
                            general=2)
    assert refresh_snapshots(runtime) == 8
    clock.advance(timedelta(days=3))  # Thursday: every last touch three days older
    assert refresh_snapshots(runtime) == 8
    with session_scope(runtime.engine) as session:
        rows = session.exec(select(HealthSnapshot).where(
            HealthSnapshot.week_start == health.week_start(clock.now(), "UTC"))).scalars().all()
    assert sorted(r.customer_id for r in rows) == sorted(ids.values())  # one each, replaced
    assert {r.computed_at for r in rows} == {clock.now()}
    general = next(r for r in rows if r.customer_id == ids["General 00000"])
    assert general.components["engagement"]["reason"] == "last touch 9 days ago"  # was 6 on Monday
