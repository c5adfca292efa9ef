"""Reminder delivery: throughput, the rate limit, the scheduler's idle cost and SQL per tick.

    .venv/bin/python bench/bench_reminders.py [--count 10000] [--limited-count 1000] [--idle-seconds 20]
                                              [--rounds 2] [--json PATH]

SQLite always; PostgreSQL too when RAPPORT_BENCH_POSTGRES_URL is set (a fresh database per run, dropped after).
The fake Slack runs in a process of its own (Slack is not in the bot's process either; sharing one
interpreter lock with the fake would mostly measure the fake); the dispatcher under test runs here, with the
settings' 4 threads.

1. Throughput: `--count` follow-ups due now for 1,000 reps (time zones cached, as after a working day), sent
   by Dispatcher.tick() with delivery_rate=0. Baseline, run just before each: the same number of the same DMs
   posted with the same WebClient from the same number of threads, with no database. Checks every reminder
   went out exactly once.
2. Rate limit: `--limited-count` follow-ups with delivery_rate=50; the most chat.postMessage calls the fake
   received in any 1-second window (from its own timestamps) and the average rate.
3. Idle CPU: a child process runs bot.scheduler.start_scheduler() on a migrated database with nothing due and
   reports its own CPU time (resource.getrusage, all threads) over `--idle-seconds`, after 3 seconds to settle.
4. SQL per tick: statements a tick (deliver + escalate) runs with 100 and with 10,000 pending reminders that
   are not due yet (SQLAlchemy before_cursor_execute), and its wall time.

The last line of stdout is ``RESULT {json}`` (also written to --json PATH when given).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, event, insert, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from bot.clock import ManualClock  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.db import make_engine, session_scope, upgrade  # noqa: E402
from bot.runtime import Runtime  # noqa: E402
from bot.services.workspaces import ensure_workspace  # noqa: E402
from bot.slack.client import make_client  # noqa: E402
from bot.slack.fake import FakeSlack  # noqa: E402
from bot.slack.reminders import METADATA_TYPE, Dispatcher  # noqa: E402
from models import Reminder, SlackUser  # noqa: E402

TEAM = "T0RAPPORT"
TOKEN = "xoxb-bench"  # a benchmark value, not a real secret
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # Monday 10:00 UTC: inside every rep's working hours
REPS = 1000
ZONES = ["UTC", "Europe/Berlin", "Europe/London"]
TARGET_RATE = 300.0
LIMIT = 50.0
IDLE_TARGET = 0.01


# -- the fake Slack, in a process of its own --------------------------------------------------------------------


class RemoteFake:
    """A FakeSlack in a child process: its URL, and the chat.postMessage calls it answered."""

    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, __file__, "--fake-child"], cwd=ROOT, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        self.api_url = self.proc.stdout.readline().strip()

    def posts(self) -> list[dict]:
        """[{"at", "status", "ids"}] for every chat.postMessage call so far."""
        self.proc.stdin.write("posts\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def add_users(self, count: int) -> None:
        self.proc.stdin.write(f"users {count}\n")
        self.proc.stdin.flush()
        self.proc.stdout.readline()

    def __enter__(self) -> RemoteFake:
        return self

    def __exit__(self, *exc) -> None:
        self.proc.stdin.close()
        self.proc.wait(10)


def fake_child() -> None:
    with FakeSlack(team_id=TEAM) as fake:
        print(fake.api_url, flush=True)
        for line in sys.stdin:
            command, *rest = line.split()
            if command == "posts":
                answer = [{"at": c.at, "status": c.status,
                           "ids": ((c.args.get("metadata") or {}).get("event_payload") or {}).get("reminder_ids")}
                          for c in fake.calls("chat.postMessage")]
            else:  # users N
                for n in range(int(rest[0])):
                    fake.add_user(f"U0REP{n:04d}", name=f"rep{n}", tz=ZONES[n % len(ZONES)])
                answer = "ok"
            print(json.dumps(answer), flush=True)


# -- databases --------------------------------------------------------------------------------------------------


class Databases:
    """Fresh, migrated databases: SQLite files in a temp dir, PostgreSQL ones created and dropped on a server."""

    def __init__(self, tmp: Path, postgres_url: str | None):
        self.tmp = tmp
        self.postgres = create_engine(postgres_url, isolation_level="AUTOCOMMIT") if postgres_url else None
        self.pg_url = make_url(postgres_url) if postgres_url else None
        self.created: list[str] = []

    def new(self, kind: str) -> str:
        if kind == "sqlite":
            url = f"sqlite:///{self.tmp / f'{uuid.uuid4().hex[:8]}.db'}"
        else:
            name = f"bench_reminders_{uuid.uuid4().hex[:8]}"
            with self.postgres.connect() as connection:
                connection.execute(text(f'CREATE DATABASE "{name}"'))
            self.created.append(name)
            url = self.pg_url.set(database=name).render_as_string(hide_password=False)
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        return url

    def drop_all(self) -> None:
        for name in self.created:
            with self.postgres.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        if self.postgres is not None:
            self.postgres.dispose()


def runtime_for(url: str, fake, *, rate: float) -> Runtime:
    settings = Settings(database_url=url, slack_api_url=fake.api_url, slack_bot_token=TOKEN, delivery_rate=rate,
                        _env_file=None)
    return Runtime(settings=settings, engine=make_engine(url), clock=ManualClock(NOW),
                   client=make_client(base_url=fake.api_url, token=TOKEN))


def add_reminders(runtime: Runtime, count: int, *, due: datetime) -> None:
    """`count` follow-ups for REPS reps, due at `due`; the reps' time zones cached as fresh."""
    with session_scope(runtime.engine) as session:
        ensure_workspace(session, workspace_id=TEAM, now=NOW)
        session.flush()
        known = {u for (u,) in session.execute(text("SELECT user_id FROM slack_user")).all()}
        people = [{"workspace_id": TEAM, "user_id": f"U0REP{n:04d}", "team_id": TEAM, "name": f"rep{n}",
                   "tz": ZONES[n % len(ZONES)], "fetched_at": NOW} for n in range(REPS)
                  if f"U0REP{n:04d}" not in known]
        if people:
            session.execute(insert(SlackUser), people)
        for start in range(0, count, 5000):
            session.execute(insert(Reminder), [
                {"workspace_id": TEAM, "kind": "followup", "source": "manual", "owner_id": f"U0REP{n % REPS:04d}",
                 "note": f"Follow up #{n}: send the renewal proposal", "due_at": due, "deliver_at": due,
                 "next_attempt_at": due, "status": "pending", "created_at": NOW}
                for n in range(start, min(count, start + 5000))
            ])


def posted_ids(posts: list[dict]) -> Counter:
    counts = Counter()
    for post in posts:
        if post["status"] == 200 and post["ids"]:
            counts.update(post["ids"])
    return counts


# -- 1. throughput ----------------------------------------------------------------------------------------------


def throughput(url: str, count: int) -> dict:
    with RemoteFake() as fake:
        fake.add_users(REPS)
        runtime = runtime_for(url, fake, rate=0)
        add_reminders(runtime, count, due=NOW - timedelta(minutes=1))
        with Dispatcher(runtime) as dispatcher:
            started = time.perf_counter()
            report = dispatcher.tick()
            seconds = time.perf_counter() - started
        sent = posted_ids(fake.posts())
        runtime.engine.dispose()
    return {"reminders": count, "seconds": seconds, "per_second": count / seconds, "messages": report.sent,
            "exactly_once": len(sent) == count and set(sent.values()) == {1}, "errors": report.errors}


def baseline(count: int, threads: int) -> dict:
    """The same DMs through the same client and thread count, with nothing but Slack in the way."""
    from bot.slack.render import render
    from bot.slack.text import escape_mrkdwn

    with RemoteFake() as fake:
        client = make_client(base_url=fake.api_url, token=TOKEN)
        due = NOW - timedelta(minutes=1)

        def post(n: int) -> None:
            reminder = Reminder(id=n, workspace_id=TEAM, owner_id=f"U0REP{n % REPS:04d}", due_at=due, deliver_at=due,
                                next_attempt_at=due, created_at=NOW, note=f"Follow up #{n}: send the renewal proposal")
            blocks = render("reminder_dm.j2", reminder=reminder, customer=None, late=False, state=None)
            client.chat_postMessage(channel=reminder.owner_id, text=escape_mrkdwn(f"Reminder: {reminder.note}"),
                                    blocks=blocks, unfurl_links=False,
                                    metadata={"event_type": METADATA_TYPE, "event_payload": {"reminder_ids": [n]}})

        with ThreadPoolExecutor(threads) as pool:
            started = time.perf_counter()
            list(pool.map(post, range(count)))
            seconds = time.perf_counter() - started
    return {"messages": count, "seconds": seconds, "per_second": count / seconds}


# -- 2. the rate limit ------------------------------------------------------------------------------------------


def max_in_window(stamps: list[float], window: float = 1.0) -> int:
    """The most timestamps in any half-open window [t, t + window)."""
    stamps, best, low = sorted(stamps), 0, 0
    for high, stamp in enumerate(stamps):
        while stamp - stamps[low] >= window:
            low += 1
        best = max(best, high - low + 1)
    return best


def rate_limited(url: str, count: int) -> dict:
    with RemoteFake() as fake:
        fake.add_users(REPS)
        runtime = runtime_for(url, fake, rate=LIMIT)
        add_reminders(runtime, count, due=NOW - timedelta(minutes=1))
        with Dispatcher(runtime) as dispatcher:
            started = time.perf_counter()
            dispatcher.tick()
            seconds = time.perf_counter() - started
        stamps = [post["at"] for post in fake.posts() if post["status"] == 200]
        runtime.engine.dispose()
    return {"messages": len(stamps), "seconds": seconds, "average_per_second": len(stamps) / seconds,
            "max_in_any_second": max_in_window(stamps), "limit": LIMIT}


# -- 3. idle CPU ------------------------------------------------------------------------------------------------


def idle_child(url: str, api_url: str, settle: float, seconds: float) -> None:
    """Run in a child: the real scheduler on a database with nothing due; prints its own CPU use (all threads)
    over `seconds`, after `settle` seconds in which the at-start run of every tick happens."""
    import resource

    from bot.clock import SystemClock
    from bot.scheduler import start_scheduler

    settings = Settings(database_url=url, slack_api_url=api_url, slack_bot_token=TOKEN, _env_file=None)
    runtime = Runtime(settings=settings, engine=make_engine(url), clock=SystemClock(),
                      client=make_client(base_url=api_url, token=TOKEN))
    scheduler = start_scheduler(runtime)
    time.sleep(settle)
    before, started = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    time.sleep(seconds)
    after, elapsed = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter() - started
    scheduler.shutdown(wait=True)
    used = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(json.dumps({"seconds": elapsed, "cpu_seconds": used}), flush=True)


def idle_cpu(url: str, seconds: float) -> dict:
    with FakeSlack(team_id=TEAM) as fake:
        child = subprocess.run(
            [sys.executable, __file__, "--idle-child", url, fake.api_url, "3", str(seconds)],
            cwd=ROOT, capture_output=True, text=True, timeout=seconds + 120, check=True)
        figures = json.loads(child.stdout.strip().splitlines()[-1])
        figures["slack_calls"] = len(fake.calls())
    figures["share_of_a_core"] = figures["cpu_seconds"] / figures["seconds"]
    return figures


# -- 4. SQL per tick --------------------------------------------------------------------------------------------


def queries_per_tick(url: str) -> dict:
    with FakeSlack(team_id=TEAM) as fake:
        runtime = runtime_for(url, fake, rate=0)
        later = NOW + timedelta(days=7)
        figures = {}
        with Dispatcher(runtime) as dispatcher:
            for total in (100, 10_000):
                add_reminders(runtime, total - sum(f["waiting"] for f in figures.values()), due=later)
                dispatcher.tick()
                dispatcher.escalate()  # warm
                statements = []

                def count(conn, cursor, statement, parameters, context, executemany, seen=statements):
                    seen.append(statement)

                event.listen(runtime.engine, "before_cursor_execute", count)
                started = time.perf_counter()
                dispatcher.tick()
                dispatcher.escalate()
                seconds = time.perf_counter() - started
                event.remove(runtime.engine, "before_cursor_execute", count)
                figures[total] = {"waiting": total, "statements": len(statements), "ms": seconds * 1000}
        runtime.engine.dispose()
    return {"100": figures[100], "10000": figures[10_000],
            "grows": figures[10_000]["statements"] > figures[100]["statements"]}


# -- the report -------------------------------------------------------------------------------------------------


def main() -> int:
    if len(sys.argv) == 6 and sys.argv[1] == "--idle-child":
        idle_child(sys.argv[2], sys.argv[3], float(sys.argv[4]), float(sys.argv[5]))
        return 0
    if sys.argv[1:] == ["--fake-child"]:
        fake_child()
        return 0
    parser = argparse.ArgumentParser(description="Reminder delivery: throughput, rate limit, idle CPU, SQL per tick")
    parser.add_argument("--count", type=int, default=10_000, help="due reminders for the throughput run")
    parser.add_argument("--limited-count", type=int, default=1_000, help="due reminders for the rate-limit run")
    parser.add_argument("--idle-seconds", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=2, help="throughput rounds (baseline, Rapport) per database")
    parser.add_argument("--json", help="also write the result here")
    args = parser.parse_args()

    threads = Settings(_env_file=None).delivery_threads
    kinds = ["sqlite"] + (["postgresql"] if os.environ.get("RAPPORT_BENCH_POSTGRES_URL") else [])
    result: dict = {"count": args.count, "threads": threads, "load_average": os.getloadavg()[0], "runs": {}}
    print(f"reminder delivery: {args.count:,} due reminders, {REPS:,} reps, {threads} sending threads; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    if "postgresql" not in kinds:
        print("PostgreSQL: skipped (set RAPPORT_BENCH_POSTGRES_URL to run it)")
    with tempfile.TemporaryDirectory(prefix="bench-reminders-") as tmp:
        databases = Databases(Path(tmp), os.environ.get("RAPPORT_BENCH_POSTGRES_URL"))
        try:
            print(f"\n1. throughput, delivery_rate=0 (target ≥ {TARGET_RATE:.0f}/s), best of {args.rounds} "
                  "alternating rounds (other work on the machine makes single runs vary)")
            for kind in kinds:
                bases, runs = [], []
                for _ in range(args.rounds):
                    bases.append(baseline(args.count, threads))
                    runs.append(throughput(databases.new(kind), args.count))
                base = max(bases, key=lambda b: b["per_second"])
                figures = max(runs, key=lambda r: r["per_second"])
                figures["ratio_to_baseline"] = figures["per_second"] / base["per_second"]
                figures["all_rounds_per_second"] = [round(r["per_second"]) for r in runs]
                figures["exactly_once"] = all(r["exactly_once"] for r in runs)
                result["runs"].setdefault(kind, {}).update(baseline=base, throughput=figures,
                                                           baseline_rounds=[round(b["per_second"]) for b in bases])
                verdict = "ok" if figures["per_second"] >= TARGET_RATE else "BELOW TARGET"
                print(f"  {'baseline (WebClient only)':<28} {base['per_second']:8.0f} DMs/s  "
                      f"(rounds: {', '.join(str(round(b['per_second'])) for b in bases)})")
                print(f"  {'Rapport on ' + kind:<28} {figures['per_second']:8.0f} reminders/s  "
                      f"(rounds: {', '.join(map(str, figures['all_rounds_per_second']))}; {figures['messages']:,} DMs, "
                      f"{figures['ratio_to_baseline']:.2f}× baseline, exactly once: {figures['exactly_once']}) "
                      f"{verdict}")

            print(f"\n2. rate limit, delivery_rate={LIMIT:.0f} ({args.limited_count:,} reminders)")
            for kind in kinds:
                figures = result["runs"][kind]["rate_limited"] = rate_limited(databases.new(kind), args.limited_count)
                verdict = "ok" if figures["max_in_any_second"] <= LIMIT else "ABOVE LIMIT"
                print(f"  {kind:<10} max {figures['max_in_any_second']} in any 1-second window, average "
                      f"{figures['average_per_second']:.1f}/s over {figures['seconds']:.1f} s  {verdict}")

            print(f"\n3. scheduler idle, nothing due, {args.idle_seconds:.0f} s (target < {IDLE_TARGET:.0%} of a core)")
            figures = result["idle"] = idle_cpu(databases.new("sqlite"), args.idle_seconds)
            verdict = "ok" if figures["share_of_a_core"] < IDLE_TARGET else "ABOVE TARGET"
            print(f"  {figures['cpu_seconds']:.4f} CPU s in {figures['seconds']:.1f} s = "
                  f"{figures['share_of_a_core']:.3%} of a core, {figures['slack_calls']} Slack calls  {verdict}")

            print("\n4. SQL per tick (deliver + escalate), pending reminders not yet due")
            for kind in kinds:
                figures = result["runs"][kind]["queries"] = queries_per_tick(databases.new(kind))
                print(f"  {kind:<10} 100 waiting: {figures['100']['statements']} statements "
                      f"({figures['100']['ms']:.1f} ms); 10,000 waiting: {figures['10000']['statements']} statements "
                      f"({figures['10000']['ms']:.1f} ms)  {'GROWS' if figures['grows'] else 'ok: constant'}")
        finally:
            databases.drop_all()
    line = json.dumps(result)
    if args.json:
        Path(args.json).write_text(line + "\n", encoding="utf-8")
    print("RESULT " + line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
