"""Reminder delivery as promised: once, in the owner's working hours, never lost, through Slack's faults.

Stories through the real dispatch (console, signed requests, the dispatcher and the fake Slack), and three
real bot processes sharing one PostgreSQL.
"""

import io
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from slack_sdk import WebClient
from sqlalchemy import func, insert
from sqlmodel import Session, select

from bot.clock import ManualClock
from bot.config import Settings
from bot.console import Console
from bot.db import make_engine, session_scope
from bot.scheduler import run_due_work, start_scheduler
from bot.services import reminders as svc
from bot.services.workspaces import ensure_workspace
from bot.services.worktime import WorkingHours
from bot.slack import presets
from bot.slack.client import make_client, retry_handlers
from bot.slack.reminders import METADATA_TYPE, Dispatcher
from models import Reminder
from tests.support import counting_queries, text_of

ROOT = Path(__file__).resolve().parent.parent
MONDAY_9_UTC = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
MONDAY_15_UTC = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # working hours in New York and in Berlin


# -- reading what Slack received --------------------------------------------------------------------------------


def posted(fake, channel: str | None = None):
    """chat.postMessage calls Slack carried out (a call answered late after a timeout counts: it was posted)."""
    return [c for c in fake.calls("chat.postMessage")
            if c.status == 200 and c.response.get("ok") and (channel is None or c.args.get("channel") == channel)]


def reminder_ids_posted(fake) -> Counter:
    """How many times each reminder id went out, read from the messages' metadata."""
    counts = Counter()
    for call in posted(fake):
        metadata = call.args.get("metadata") or {}
        if metadata.get("event_type") == METADATA_TYPE:
            counts.update(metadata["event_payload"]["reminder_ids"])
    return counts


def rows(engine) -> list[Reminder]:
    with Session(engine) as session:
        return list(session.exec(select(Reminder).order_by(Reminder.id)).all())


def buttons(call) -> dict[str, dict]:
    return {e["text"]["text"]: e for b in call.args["blocks"] if b["type"] == "actions" for e in b["elements"]}


def click(slack, who: str, call, label: str) -> None:
    """`who` presses a button on a DM the bot posted."""
    message = {"ts": call.response["ts"], "blocks": call.args["blocks"]}
    slack.sim.click(slack.person(who), action=buttons(call)[label], channel_id=call.response["channel"],
                    message=message)
    slack.wait()


def followup(runtime, *, owner: str, due_at: datetime, note: str = "") -> int:
    """A follow-up made by the service, moved into the owner's working hours as /crm remind does."""
    with session_scope(runtime.engine) as session:
        workspace = ensure_workspace(session, workspace_id=presets.HOME_TEAM, now=runtime.clock.now())
        tz = next((p.tz for p in presets.PEOPLE if p.id == owner), None)
        reminder = svc.create_followup(session, workspace=workspace, owner_id=owner,
                                       hours=WorkingHours.of(workspace, tz), due_at=due_at, note=note,
                                       by=owner, now=runtime.clock.now())
        return reminder.id


def at(clock, moment: datetime, runtime) -> None:
    """The clock shows `moment` and the scheduler's ticks run, as they would in the bot."""
    clock.set(moment)
    run_due_work(runtime)


# -- 1. the console ---------------------------------------------------------------------------------------------


def test_in_the_console_a_reminder_arrives_with_buttons_and_done_updates_it(tmp_path):
    settings = Settings(database_url=f"sqlite:///{tmp_path}/console.db", _env_file=None)
    with Console(settings, out=io.StringIO(), clock=ManualClock(MONDAY_9_UTC)) as console:
        for line in ('/crm add "Acme Corp" tier:key', '/crm remind "Acme Corp" in 2d Send proposal', "advance 3d"):
            console.run_line(line)
        out = console.out.getvalue()
        dm = out[out.index("[DM to alice]"):]
        assert "Follow up with Acme Corp" in dm and "Send proposal" in dm
        assert "[ Done ]  [ Snooze 1 day ]  [ Snooze 1 week ]  [ Log touch ]" in dm
        assert out.count("[DM to alice]") == 1
        console.out.seek(0)
        console.out.truncate()
        console.run_line("click Done")
        clicked = console.out.getvalue()
    assert "[DM to alice] (updated)" in clicked
    assert ":white_check_mark: Done" in clicked
    assert "[ Done ]" not in clicked


# -- 2. working hours and time zones ----------------------------------------------------------------------------


def test_due_saturday_night_in_shanghai_it_waits_the_weekend_and_arrives_monday_9(slack, clock, fake_slack):
    slack.command("mei", 'add "Acme Corp"')  # mei works in Asia/Shanghai
    clock.set(datetime(2026, 11, 27, 12, 0, tzinfo=UTC))  # Friday 20:00 in Shanghai
    slack.command("mei", "remind acme 2026-11-28 03:00 Weekend thought")
    monday_9_shanghai = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)
    while clock.now() + timedelta(hours=3) < monday_9_shanghai:  # Saturday 03:00 passes, then Sunday
        clock.advance(timedelta(hours=3))
        run_due_work(slack.runtime)
        assert posted(fake_slack, "U0MEI") == [], f"sent at {clock.now()}"
    at(clock, monday_9_shanghai - timedelta(minutes=1), slack.runtime)
    assert posted(fake_slack, "U0MEI") == []
    at(clock, monday_9_shanghai, slack.runtime)
    [dm] = posted(fake_slack, "U0MEI")
    assert "Weekend thought" in text_of(dm.args) and "Late" not in text_of(dm.args)
    assert rows(slack.runtime.engine)[0].delivered_at == monday_9_shanghai


def test_across_the_us_fall_back_a_reminder_for_monday_arrives_at_9_local(slack, clock, fake_slack):
    clock.set(datetime(2026, 10, 30, 15, 0, tzinfo=UTC))  # Friday 11:00 EDT in New York
    slack.command("alice", 'add "Acme Corp"')
    slack.command("alice", "remind acme monday Call back")
    # 09:00 EDT would be 13:00 UTC; on Monday 2 November New York is on EST, so 09:00 is 14:00 UTC.
    at(clock, datetime(2026, 11, 2, 13, 0, tzinfo=UTC), slack.runtime)
    assert posted(fake_slack, "U0ALICE") == []
    at(clock, datetime(2026, 11, 2, 14, 0, tzinfo=UTC), slack.runtime)
    assert len(posted(fake_slack, "U0ALICE")) == 1


# -- 4. nothing lost while the bot is down ----------------------------------------------------------------------


def test_what_fell_due_while_the_bot_was_down_arrives_on_start_late_and_batched(runtime, clock, fake_slack):
    # Fifty follow-ups fall due on Monday and Tuesday while no bot process runs.
    owners = ["U0ALICE"] * 30 + ["U0MEI"] * 15 + ["U0BOB"] * 5
    ids = [followup(runtime, owner=owner, due_at=MONDAY_9_UTC + timedelta(minutes=37 * n), note=f"call {n}")
           for n, owner in enumerate(owners)]
    clock.set(datetime(2026, 11, 26, 12, 0, tzinfo=UTC))  # Thursday: the bot starts again
    scheduler = start_scheduler(runtime)
    try:
        fake_slack.wait_for("chat.postMessage", count=7, timeout=20)
        time.sleep(0.3)  # anything more would arrive now
    finally:
        scheduler.shutdown(wait=True)

    assert reminder_ids_posted(fake_slack) == Counter(ids)  # all fifty, each once
    alice, mei, bob = posted(fake_slack, "U0ALICE"), posted(fake_slack, "U0MEI"), posted(fake_slack, "U0BOB")
    assert len(alice) == 1 and "30 reminders fell due while Rapport was offline" in text_of(alice[0].args)
    assert len(mei) == 1 and "15 reminders fell due" in text_of(mei[0].args)
    assert len(bob) == 5  # five is not a flood: one DM each
    assert all("Late" in text_of(c.args) for c in bob)
    assert {(r.status, r.late) for r in rows(runtime.engine)} == {("delivered", True)}


def test_after_a_long_outage_each_rep_gets_a_summary_not_a_flood(runtime, clock, fake_slack):
    # More late follow-ups than one claim holds (100), falling due turn about between twelve reps.
    reps = [f"U0REP{n:02d}" for n in range(12)]
    for rep in reps:
        fake_slack.add_user(rep, name=rep.lower(), tz="Europe/Berlin")
    ids = [followup(runtime, owner=reps[n % 12], due_at=MONDAY_9_UTC + timedelta(minutes=n), note=f"call {n}")
           for n in range(132)]
    clock.set(datetime(2026, 11, 25, 10, 0, tzinfo=UTC))  # Wednesday
    with Dispatcher(runtime) as dispatcher:
        dispatcher.tick()
    assert reminder_ids_posted(fake_slack) == Counter(ids)
    per_rep = Counter(c.args["channel"] for c in posted(fake_slack))
    assert max(per_rep.values()) <= 2, per_rep  # a summary (and at most one more where a claim ends)
    assert sum(per_rep.values()) <= len(reps) + 1


# -- 5. Slack's faults ------------------------------------------------------------------------------------------


def test_a_429_is_waited_out_with_retry_after_and_the_dm_sent_once(runtime, clock, fake_slack):
    clock.set(MONDAY_15_UTC)
    followup(runtime, owner="U0ALICE", due_at=clock.now(), note="Call Li Wei")
    fake_slack.inject("chat.postMessage", "ratelimited", retry_after=2)
    started = time.monotonic()
    with Dispatcher(runtime) as dispatcher:
        report = dispatcher.tick()
    assert time.monotonic() - started >= 2  # slack_sdk's RateLimitErrorRetryHandler slept Retry-After
    assert [c.status for c in fake_slack.calls("chat.postMessage")] == [429, 200]
    assert report.sent == 1 and len(fake_slack.messages("U0ALICE")) == 1
    assert rows(runtime.engine)[0].status == "delivered"


def test_when_the_clients_retries_are_used_up_the_row_waits_for_retry_after_then_goes_once(
        runtime, clock, fake_slack):
    clock.set(MONDAY_15_UTC)
    # A client without retries: the dispatcher sees the 429 and the 500 itself (with the default three
    # retries the outcome is the same, only seconds later).
    client = WebClient(token="xoxb-test", base_url=fake_slack.api_url, retry_handlers=retry_handlers(0))
    runtime = replace(runtime, client=client)
    limited = followup(runtime, owner="U0ALICE", due_at=clock.now(), note="rate limited")
    broken = followup(runtime, owner="U0BOB", due_at=clock.now(), note="server error")
    # Each fault for its own DM: the dispatcher sends both at once, in no fixed order.
    fake_slack.inject("chat.postMessage", "ratelimited", retry_after=120, channel="U0ALICE")
    fake_slack.inject("chat.postMessage", "server_error", channel="U0BOB")
    start = clock.now()
    with Dispatcher(runtime) as dispatcher:
        report = dispatcher.tick()
        assert report.sent == 0 and sorted(report.errors) == ["ratelimited", "server_error"]
        by_id = {r.id: r for r in rows(runtime.engine)}
        assert (by_id[limited].status, by_id[limited].last_error) == ("pending", "ratelimited")
        assert by_id[limited].next_attempt_at == start + timedelta(seconds=120)  # Retry-After, not back-off
        assert (by_id[broken].status, by_id[broken].last_error) == ("pending", "server_error")
        assert by_id[broken].next_attempt_at == start + svc.backoff(1)

        clock.advance(timedelta(seconds=119))
        dispatcher.tick()
        assert set(reminder_ids_posted(fake_slack)) == {broken}
        assert fake_slack.calls("conversations.history")  # a 500 may have posted: looked before posting again
        clock.advance(timedelta(seconds=1))
        dispatcher.tick()
        dispatcher.tick()
    assert reminder_ids_posted(fake_slack) == Counter({limited: 1, broken: 1})
    assert {r.status for r in rows(runtime.engine)} == {"delivered"}


def test_a_500_on_a_dm_is_not_sent_again_blind_the_next_attempt_looks_first_and_it_goes_once(
        runtime, clock, fake_slack):
    clock.set(MONDAY_15_UTC)
    followup(runtime, owner="U0BOB", due_at=clock.now(), note="Renewal")
    fake_slack.inject("chat.postMessage", "server_error")
    with Dispatcher(runtime) as dispatcher:
        assert dispatcher.tick().sent == 0  # Slack may have posted: the client does not repeat it
        assert [c.status for c in fake_slack.calls("chat.postMessage")] == [500]
        clock.advance(svc.backoff(1))
        assert dispatcher.tick().sent == 1
    assert fake_slack.calls("conversations.history")  # looked for the first attempt before posting again
    assert len(fake_slack.messages("U0BOB")) == 1


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_connection_reset_after_slack_posted_the_dm_does_not_post_it_twice(runtime, clock, fake_slack):
    clock.set(MONDAY_15_UTC)
    reminder_id = followup(runtime, owner="U0ALICE", due_at=clock.now(), note="Send the deck")
    fake_slack.inject("chat.postMessage", "reset")  # Slack posts it; the answer never arrives
    with Dispatcher(runtime) as dispatcher:
        assert dispatcher.tick().sent == 0
        assert len(fake_slack.calls("chat.postMessage")) == 1  # slack_sdk's connection retry did not re-send it
        [row] = rows(runtime.engine)
        assert row.status == "pending" and row.last_error
        clock.advance(svc.backoff(1))
        dispatcher.tick()
        dispatcher.tick()
    assert reminder_ids_posted(fake_slack) == Counter({reminder_id: 1})
    assert len(fake_slack.messages("U0ALICE")) == 1
    assert {r.status for r in rows(runtime.engine)} == {"delivered"}


def test_a_timeout_after_slack_posted_is_found_by_its_metadata_and_not_posted_again(runtime, clock, fake_slack):
    clock.set(MONDAY_15_UTC)
    runtime = replace(runtime, client=make_client(base_url=fake_slack.api_url, token="xoxb-test", timeout=1))
    reminder_id = followup(runtime, owner="U0ALICE", due_at=clock.now(), note="Send the deck")
    fake_slack.inject("chat.postMessage", "timeout", delay=2.5)  # Slack posts it, then answers too late
    with Dispatcher(runtime) as dispatcher:
        assert dispatcher.tick().errors == {"connection_error": 1}
        [row] = rows(runtime.engine)
        assert (row.status, row.last_error, row.attempts) == ("pending", "timeout", 1)
        clock.advance(svc.backoff(1))
        dispatcher.tick()
        dispatcher.tick()
    [call] = fake_slack.calls("chat.postMessage")  # one post, the one that timed out
    assert fake_slack.calls("conversations.history")
    [row] = rows(runtime.engine)
    assert row.status == "delivered" and row.message_ts == call.response["ts"]
    assert reminder_ids_posted(fake_slack) == Counter({reminder_id: 1})


def test_a_rep_whose_account_is_gone_fails_with_the_reason_and_a_manager_is_told_once(slack, clock, fake_slack):
    fake_slack.add_user("U0GONE", name="gone", tz="Europe/Berlin", deleted=True)
    slack.command("mei", "config digest-channel <#C0MANAGERS|managers>")
    reminder_id = followup(slack.runtime, owner="U0GONE", due_at=clock.now(), note="Quarterly review")
    run_due_work(slack.runtime)
    clock.advance(timedelta(hours=1))
    run_due_work(slack.runtime)
    [row] = rows(slack.runtime.engine)
    assert (row.id, row.status, row.last_error) == (reminder_id, "failed", "account_inactive")
    assert len(fake_slack.calls("chat.postMessage")) - len(posted(fake_slack)) == 1  # tried once, not retried
    [told] = [c for c in posted(fake_slack, "C0MANAGERS") if "could not be delivered" in text_of(c.args)]
    assert "account_inactive" in text_of(told.args)
    assert "Quarterly review" in text_of(told.args)


# -- 6. escalation ----------------------------------------------------------------------------------------------


def test_a_key_account_follow_up_left_untouched_two_working_days_is_raised_once(slack, clock, fake_slack):
    slack.command("mei", "config managers add <@U0MEI|mei>")
    for name, tier in (("Acme Corp", "key"), ("Globex", "general"), ("Initech", "key")):
        slack.command("alice", f'add "{name}" tier:{tier}')
    clock.set(datetime(2026, 11, 26, 15, 0, tzinfo=UTC))  # Thursday 10:00 in New York
    for name in ("Acme", "Globex", "Initech"):
        slack.command("alice", f"remind {name} in 1h Send contract to {name}")
    at(clock, datetime(2026, 11, 26, 16, 0, tzinfo=UTC), slack.runtime)  # delivered Thursday 11:00 New York
    dms = {c.args["text"].split(":")[0]: c for c in posted(fake_slack, "U0ALICE")}
    assert len(dms) == 3
    click(slack, "alice", dms["Reminder about Initech"], "Done")

    def escalations():
        return [c for c in posted(fake_slack, "U0MEI") if "untouched" in text_of(c.args)]

    # Friday is one working day; the weekend does not count, though two calendar days pass on Saturday.
    for moment in (datetime(2026, 11, 28, 16, 5), datetime(2026, 11, 29, 16, 5), datetime(2026, 11, 30, 15, 55)):
        at(clock, moment.replace(tzinfo=UTC), slack.runtime)
        assert escalations() == [], moment
    at(clock, datetime(2026, 11, 30, 16, 0, tzinfo=UTC), slack.runtime)  # Monday 11:00: two working days
    at(clock, datetime(2026, 12, 1, 16, 0, tzinfo=UTC), slack.runtime)
    [raised] = escalations()
    assert "Acme Corp" in text_of(raised.args)  # not Globex (general), not Initech (done)


# -- 7. revisits ------------------------------------------------------------------------------------------------


def test_key_accounts_due_a_revisit_come_in_one_morning_agenda_and_a_logged_touch_cancels_one(
        slack, clock, fake_slack):
    for name in ("Acme Corp", "Globex", "Initech"):
        slack.command("alice", f'add "{name}" tier:key')
    slack.command("alice", 'add "Hooli"')  # general: revisited after 45 days, not 14
    slack.command("bob", 'add "Umbrella" tier:key')
    at(clock, datetime(2026, 12, 6, 12, 0, tzinfo=UTC), slack.runtime)  # Sunday: revisits planned for Monday
    with slack.session() as session:
        assert session.exec(select(func.count()).where(Reminder.kind == "revisit")).one() == 4
    slack.command("alice", "log globex call Caught up on the renewal")  # a touch before the agenda goes out
    at(clock, datetime(2026, 12, 7, 8, 0, tzinfo=UTC), slack.runtime)  # 09:00 in Berlin
    [bobs] = posted(fake_slack, "U0BOB")
    assert "1 account to revisit today" in text_of(bobs.args)
    at(clock, datetime(2026, 12, 7, 13, 59, tzinfo=UTC), slack.runtime)
    assert posted(fake_slack, "U0ALICE") == []
    at(clock, datetime(2026, 12, 7, 14, 0, tzinfo=UTC), slack.runtime)  # 09:00 in New York
    at(clock, datetime(2026, 12, 7, 15, 0, tzinfo=UTC), slack.runtime)
    [agenda] = posted(fake_slack, "U0ALICE")
    shown = text_of(agenda.args)
    assert "2 accounts to revisit today" in shown and "Acme Corp" in shown and "Initech" in shown
    assert "Globex" not in shown and "Hooli" not in shown
    with slack.session() as session:
        globex = session.exec(select(Reminder).where(Reminder.kind == "revisit", Reminder.status == "cancelled")).one()
    assert globex.outcome == "touched"


# -- cost of a tick -----------------------------------------------------------------------------------------------


def add_waiting(engine, count: int, *, now: datetime, start: int = 0) -> None:
    """`count` follow-ups due next week: pending, not due, never looked at by a tick."""
    later = now + timedelta(days=7)
    with session_scope(engine) as session:
        ensure_workspace(session, workspace_id=presets.HOME_TEAM, now=now)
        session.flush()
        session.execute(insert(Reminder), [
            {"workspace_id": presets.HOME_TEAM, "kind": "followup", "source": "manual",
             "owner_id": f"U0REP{(start + n) % 500:03d}", "note": "later", "due_at": later, "deliver_at": later,
             "next_attempt_at": later, "status": "pending", "created_at": now}
            for n in range(count)
        ])


def test_a_tick_runs_the_same_number_of_queries_for_100_or_10000_waiting_reminders(runtime):
    def one_tick():
        with Dispatcher(runtime) as dispatcher:
            dispatcher.tick()
            dispatcher.escalate()

    add_waiting(runtime.engine, 100, now=runtime.clock.now())
    one_tick()  # warm caches (first connection, pragmas)
    with counting_queries(runtime.engine) as few:
        one_tick()
    add_waiting(runtime.engine, 9_900, now=runtime.clock.now(), start=100)
    with counting_queries(runtime.engine) as many:
        one_tick()
    assert len(few) == len(many), (few, many)
    assert len(few) <= 10


# -- 3. several bot processes on one PostgreSQL -------------------------------------------------------------------

WORKERS = 3
REMINDERS = 2_000
REPS = 400  # five each: one DM per reminder, as none is late
LEASE_SECONDS = 4
BATCH = 25


@pytest.fixture
def shared_postgres(database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("several processes sharing one database is a PostgreSQL deployment")
    engine = make_engine(database_url)
    yield database_url, engine
    engine.dispose()


def fill_queue(engine, fake, now: datetime) -> list[int]:
    """REMINDERS follow-ups that fell due a minute ago, for REPS reps in UTC and Europe."""
    zones = ["UTC", "Europe/Berlin", "Europe/London"]
    for n in range(REPS):
        fake.add_user(f"U0REP{n:03d}", name=f"rep{n}", tz=zones[n % len(zones)])
    due = now - timedelta(minutes=1)
    with session_scope(engine) as session:
        ensure_workspace(session, workspace_id=presets.HOME_TEAM, now=now)
        session.flush()
        session.execute(insert(Reminder), [
            {"workspace_id": presets.HOME_TEAM, "kind": "followup", "source": "manual", "owner_id": f"U0REP{n % REPS:03d}",
             "note": f"follow-up {n}", "due_at": due, "deliver_at": due, "next_attempt_at": due,
             "status": "pending", "created_at": now}
            for n in range(REMINDERS)
        ])
    with Session(engine) as session:
        return list(session.exec(select(Reminder.id)).all())


def start_workers(database_url, fake, shift: timedelta, logs: Path) -> list[subprocess.Popen]:
    env = {
        **os.environ, "DATABASE_URL": database_url, "SLACK_API_URL": fake.api_url, "SLACK_BOT_TOKEN": "xoxb-test",
        "DELIVERY_RATE": "0", "RAPPORT_TEST_LEASE_SECONDS": str(LEASE_SECONDS), "RAPPORT_TEST_BATCH": str(BATCH),
        "RAPPORT_TEST_CLOCK_SHIFT": str(shift.total_seconds()), "RAPPORT_TEST_DEADLINE": "90",
    }
    workers = []
    for n in range(WORKERS):
        with open(logs / f"worker{n}.log", "wb") as log:
            workers.append(subprocess.Popen([sys.executable, "-m", "tests.reminder_worker"], cwd=ROOT, env=env,
                                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))
    return workers


def wait_all(workers, logs: Path, timeout: float = 100) -> None:
    deadline = time.monotonic() + timeout
    try:
        for n, worker in enumerate(workers):
            code = worker.wait(max(deadline - time.monotonic(), 0.1))
            if code not in (0, -signal.SIGKILL):
                raise AssertionError(f"worker {n} exited {code}:\n{(logs / f'worker{n}.log').read_text()[-3000:]}")
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()


def test_three_processes_on_one_postgres_deliver_2000_reminders_exactly_once(shared_postgres, fake_slack, tmp_path):
    database_url, engine = shared_postgres
    shift = (MONDAY_9_UTC + timedelta(hours=1)) - datetime.now(UTC)  # every process reads Monday 10:00 UTC
    ids = fill_queue(engine, fake_slack, datetime.now(UTC) + shift)
    wait_all(start_workers(database_url, fake_slack, shift, tmp_path), tmp_path)
    assert reminder_ids_posted(fake_slack) == Counter(ids)  # every id, each exactly once
    assert len(posted(fake_slack)) == REMINDERS
    assert {r.status for r in rows(engine)} == {"delivered"}
    assert len({r.claimed_by for r in rows(engine)}) >= 2  # the work really was shared


def test_a_process_killed_mid_run_loses_nothing_and_repeats_at_most_what_it_held(
        shared_postgres, fake_slack, tmp_path):
    database_url, engine = shared_postgres
    shift = (MONDAY_9_UTC + timedelta(hours=1)) - datetime.now(UTC)
    ids = fill_queue(engine, fake_slack, datetime.now(UTC) + shift)
    fake_slack.latency("chat.postMessage", 0.01)  # keep sends in flight, where a kill hurts most
    workers = start_workers(database_url, fake_slack, shift, tmp_path)
    victim = workers[0]

    def held_by_victim() -> set[int]:
        with Session(engine) as session:
            return set(session.exec(select(Reminder.id).where(
                Reminder.status == "claimed", Reminder.claimed_by.contains(f":{victim.pid}:"))).all())

    deadline = time.monotonic() + 60
    while not (len(posted(fake_slack)) >= REMINDERS // 10 and held_by_victim()):
        assert time.monotonic() < deadline, "the victim never held a claim"
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    time.sleep(0.2)  # a request it had fully sent is still carried out by Slack
    held = held_by_victim()  # its claims, frozen until the lease runs out
    exposed = held & set(reminder_ids_posted(fake_slack))  # posted, not yet written as delivered
    wait_all(workers, tmp_path)

    sent = reminder_ids_posted(fake_slack)
    assert set(sent) == set(ids)  # nothing lost
    assert {r.status for r in rows(engine)} == {"delivered"}
    repeated = sum(n - 1 for n in sent.values())
    print(f"\nkilled holding {len(held)} claims (batch {BATCH}, one claimed ahead); {len(exposed)} of them already "
          f"posted but not written as delivered; {repeated} sent twice")
    # Without looking, at most the posted-but-unwritten claims would repeat (≤ held); the process that takes
    # them back finds them in the DMs by their metadata, so none does.
    assert len(exposed) <= len(held)
    assert repeated == 0


def test_a_reminder_that_cannot_be_rendered_waits_with_its_reason_and_the_others_still_go(runtime, clock, fake_slack,
                                                                                         monkeypatch):
    clock.set(MONDAY_15_UTC)
    broken = followup(runtime, owner="U0ALICE", due_at=clock.now(), note="breaks the template")
    fine = followup(runtime, owner="U0BOB", due_at=clock.now(), note="Call Li Wei")
    render = Dispatcher.render

    def render_or_fail(self, message):
        if broken in message.ids:
            raise ValueError("a template bug")
        return render(self, message)

    monkeypatch.setattr(Dispatcher, "render", render_or_fail)
    with Dispatcher(runtime) as dispatcher:
        report = dispatcher.tick()
    assert report.sent == 1 and report.errors == {"render_failed": 1}
    assert reminder_ids_posted(fake_slack) == Counter({fine: 1})
    waiting = {r.id: r for r in rows(runtime.engine)}[broken]
    assert (waiting.status, waiting.last_error, waiting.attempts) == ("pending", "render_failed", 1)
    assert waiting.next_attempt_at > clock.now()  # retried with back-off, once the template is fixed

    monkeypatch.setattr(Dispatcher, "render", render)  # the fix is deployed
    at(clock, waiting.next_attempt_at, runtime)
    assert reminder_ids_posted(fake_slack) == Counter({fine: 1, broken: 1})
