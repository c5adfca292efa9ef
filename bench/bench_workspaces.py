"""Many workspaces installed by OAuth: reminder throughput with each workspace's own token, and the Monday digest.

    .venv/bin/python bench/bench_workspaces.py [--workspaces 1000] [--customers 100] [--reminders 10000]
                                               [--processes 3] [--json PATH]

PostgreSQL only (several processes on one database): RAPPORT_BENCH_POSTGRES_URL, else RAPPORT_TEST_POSTGRES_URL;
a fresh database is created for the run and dropped after. The fake Slack runs in a process of its own with
strict tokens (a call with no token, or one it did not issue, is refused) and issues one bot token per
workspace; the installation store holds one installation per workspace with that token.

1. Reminders: `--reminders` follow-ups due now, spread evenly over the workspaces (10 reps each, time zones
   cached), delivered by `--processes` worker processes (tests/reminder_worker.py's loop: Dispatcher.tick, the
   settings' 4 sending threads, DELIVERY_RATE=0) in OAuth mode, each looking up each workspace's token in the
   installation store. Figures: reminders/s from the first to the last chat.postMessage the fake answered,
   duplicates (reminder ids posted more than once), calls whose token was not their workspace's, peak RSS of
   each process. Baseline, same run: the same DMs posted with one WebClient per workspace token from
   processes × 4 threads, no database.
2. Digest: every workspace's weekly digest due (Monday 09:00 workspace time, caught up as at a start), posted
   by `--processes` processes running bot.slack.digest.run_weekly once each. Figures: seconds until the last
   workspace's digest is out, digests per workspace (must be 1), the most messages any one channel got within
   one second (Slack's rate: about 1 message per second per channel), peak RSS of each process.

The last line of stdout is ``RESULT {json}`` (also written to --json PATH when given).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, insert, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from bot.db import make_engine, upgrade  # noqa: E402
from bot.slack.fake import FakeSlack  # noqa: E402
from bot.slack.reminders import METADATA_TYPE  # noqa: E402
from models import Customer, Reminder, SlackUser, Workspace  # noqa: E402

CLIENT_ID, CLIENT_SECRET = "9999.1111", "bench-client-secret"  # benchmark values, not real secrets
REPS = 10  # per workspace
KEY_SHARE = 5  # one customer in KEY_SHARE is a key account
TARGET_RATE = 300.0
DIGEST_LIMIT = 600.0


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg()) + f" ({os.cpu_count()} CPUs)"


def team(n: int) -> str:
    return f"TW{n:05d}"


def rep(n: int, k: int) -> str:
    return f"UW{n:05d}R{k}"


def digest_channel(n: int) -> str:
    return f"CW{n:05d}"


def team_of_target(target: str) -> str | None:
    """The workspace a DM or digest channel belongs to, from its id."""
    if target.startswith(("UW", "CW")):
        return "TW" + target[2:7]
    return None


# -- the fake Slack, in a process of its own --------------------------------------------------------------------


class RemoteFake:
    def __init__(self, workspaces: int):
        self.proc = subprocess.Popen([sys.executable, __file__, "--fake-child", str(workspaces)], cwd=ROOT,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.api_url = self.proc.stdout.readline().strip()
        self.tokens = json.loads(self.proc.stdout.readline())

    def posts(self) -> list[dict]:
        self.proc.stdin.write("posts\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def __enter__(self) -> RemoteFake:
        return self

    def __exit__(self, *exc) -> None:
        self.proc.stdin.close()
        self.proc.wait(10)


def fake_child(workspaces: int) -> None:
    with FakeSlack(team_id="TW99999", strict_tokens=True) as fake:
        fake.set_oauth_app(CLIENT_ID, CLIENT_SECRET)
        tokens = {}
        for n in range(workspaces):
            fake.add_team(team(n))
            tokens[team(n)] = fake.issue_token(team(n))
            fake.add_channel(digest_channel(n), name=f"managers-{n}")
        print(fake.api_url, flush=True)
        print(json.dumps(tokens), flush=True)
        for line in sys.stdin:
            if line.strip() == "posts":
                answer = [{"at": c.at, "ok": bool(c.response.get("ok")), "token": c.token,
                           "channel": c.args.get("channel"), "thread": bool(c.args.get("thread_ts")),
                           "ids": ((c.args.get("metadata") or {}).get("event_payload") or {}).get("reminder_ids")}
                          for c in fake.calls("chat.postMessage")]
                refused = [c.method for c in fake.calls() if not c.response.get("ok")]
                print(json.dumps({"posts": answer, "refused": Counter(refused)}), flush=True)


# -- the database -----------------------------------------------------------------------------------------------


def new_database(server_url: str) -> tuple[str, str]:
    name = f"bench_workspaces_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return name, url


def drop_database(server_url: str, name: str) -> None:
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def fill(url: str, tokens: dict[str, str], *, workspaces: int, customers: int, reminders: int) -> float:
    """Workspaces, their installations, customers, reps (time zones cached) and due follow-ups. Seconds taken."""
    from slack_sdk.oauth.installation_store import Installation
    from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore

    from models import oauth

    started = time.perf_counter()
    now = datetime.now(UTC)
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(insert(Workspace), [
            {"id": team(n), "name": f"Workspace {n}", "created_at": now - timedelta(days=60), "timezone": "UTC",
             "digest_channel": digest_channel(n), "digest_weekday": 0, "digest_time": "09:00",
             "cadence_key_days": 14, "cadence_general_days": 45, "cadence_longtail_days": 90,
             "work_start": "00:00", "work_end": "23:59", "work_days": [0, 1, 2, 3, 4, 5, 6], "days_off": [],
             "health_weights": {"engagement": 30, "satisfaction": 30, "relationship": 25, "followup": 15},
             "managers": [], "digest_subscribers": [], "survey_cooldown_days": 30, "survey_close_days": 7,
             "survey_allow_internal": False}
            for n in range(workspaces)])
        connection.execute(insert(SlackUser), [
            {"workspace_id": team(n), "user_id": rep(n, k), "team_id": team(n), "name": f"rep{k}", "tz": "UTC",
             "fetched_at": now} for n in range(workspaces) for k in range(REPS)])
        rows = [{"workspace_id": team(n), "name": f"Customer {c}", "name_key": f"customer {c}",
                 "tier": "key" if c % KEY_SHARE == 0 else "general", "owner_id": rep(n, c % REPS),
                 "created_at": now - timedelta(days=60), "updated_at": now - timedelta(days=60),
                 "last_touch_at": now - timedelta(days=c % 30), "revisit_due_at": now + timedelta(days=30)}
                for n in range(workspaces) for c in range(customers)]
        for start in range(0, len(rows), 10000):
            connection.execute(insert(Customer), rows[start:start + 10000])
        due = now - timedelta(minutes=1)
        connection.execute(insert(Reminder), [
            {"workspace_id": team(i % workspaces), "kind": "followup", "source": "manual",
             "owner_id": rep(i % workspaces, (i // workspaces) % REPS), "note": f"Follow up #{i}",
             "due_at": due, "deliver_at": due, "next_attempt_at": due, "status": "pending", "created_at": now}
            for i in range(reminders)])
    store = SQLAlchemyInstallationStore(CLIENT_ID, engine, bots_table_name=oauth.BOTS_TABLE,
                                        installations_table_name=oauth.INSTALLATIONS_TABLE)
    for n in range(workspaces):
        store.save(Installation(app_id="A0001", team_id=team(n), team_name=f"Workspace {n}", user_id=rep(n, 0),
                                bot_token=tokens[team(n)], bot_id="B0001", bot_user_id="UBOT",
                                bot_scopes="chat:write,im:write,users:read"))
    engine.dispose()
    return time.perf_counter() - started


# -- worker processes -------------------------------------------------------------------------------------------


def worker_env(url: str, api_url: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DATABASE_URL"))}
    return {**env, "DATABASE_URL": url, "SLACK_API_URL": api_url, "SLACK_CLIENT_ID": CLIENT_ID,
            "SLACK_CLIENT_SECRET": CLIENT_SECRET, "DELIVERY_RATE": "0", "RAPPORT_TEST_DEADLINE": "300",
            "LOG_LEVEL": "WARNING", "PYTHONPATH": str(ROOT)}


def run_workers(kind: str, count: int, env: dict) -> tuple[float, list[dict]]:
    started = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, __file__, f"--{kind}-child"], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, text=True) for _ in range(count)]
    reports = []
    for proc in procs:
        out, _ = proc.communicate(timeout=900)
        last = [line for line in out.splitlines() if line.startswith("CHILD ")]
        reports.append({"exit": proc.returncode, **(json.loads(last[-1][6:]) if last else {})})
    return time.perf_counter() - started, reports


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM; getrusage's ru_maxrss would carry the parent's peak over
    the fork and exec)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def reminder_child() -> None:
    from tests.reminder_worker import main

    code = main()
    print("CHILD " + json.dumps({"peak_rss_mb": peak_rss_mb()}), flush=True)
    sys.exit(code)


def digest_child() -> None:
    from bot.config import Settings
    from bot.runtime import open_runtime
    from bot.slack.digest import run_weekly

    runtime = open_runtime(Settings(_env_file=None), migrate=False)
    started = time.perf_counter()
    posted = run_weekly(runtime)
    print("CHILD " + json.dumps({"posted": posted, "seconds": time.perf_counter() - started,
                                 "peak_rss_mb": peak_rss_mb()}),
          flush=True)


# -- measuring ----------------------------------------------------------------------------------------------------


def wrong_tokens(posts: list[dict], tokens: dict[str, str]) -> int:
    return sum(1 for p in posts if team_of_target(p["channel"] or "") and
               tokens.get(team_of_target(p["channel"])) != p["token"])


def busiest_second(posts: list[dict]) -> int:
    """The most messages one channel received within any one second."""
    by_channel: dict[str, list[float]] = defaultdict(list)
    for post in posts:
        by_channel[post["channel"]].append(post["at"])
    most = 0
    for times in by_channel.values():
        times.sort()
        start = 0
        for end, at in enumerate(times):
            while at - times[start] >= 1.0:
                start += 1
            most = max(most, end - start + 1)
    return most


def baseline(api_url: str, tokens: dict[str, str], *, workspaces: int, reminders: int, threads: int) -> float:
    """The same DMs through one WebClient per workspace token and the same number of threads: DMs/s."""
    from bot.slack.client import make_client
    from bot.slack.render import render

    clients = {t: make_client(base_url=api_url, token=token) for t, token in tokens.items()}
    due = datetime.now(UTC)

    def post(i: int) -> None:
        n = i % workspaces
        reminder = Reminder(id=i, workspace_id=team(n), owner_id=rep(n, 0), due_at=due, deliver_at=due,
                            next_attempt_at=due, created_at=due, note=f"Follow up #{i}")
        blocks = render("reminder_dm.j2", reminder=reminder, customer=None, late=False, state=None)
        clients[team(n)].chat_postMessage(channel=rep(n, 0), text=f"Reminder: {reminder.note}", blocks=blocks,
                                          unfurl_links=False, metadata={"event_type": METADATA_TYPE,
                                                                        "event_payload": {"reminder_ids": [-i]}})

    with ThreadPoolExecutor(threads) as pool:
        started = time.perf_counter()
        list(pool.map(post, range(reminders)))
        return reminders / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workspaces", type=int, default=1000)
    parser.add_argument("--customers", type=int, default=100)
    parser.add_argument("--reminders", type=int, default=10000)
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--json")
    args = parser.parse_args()
    server = os.environ.get("RAPPORT_BENCH_POSTGRES_URL") or os.environ.get("RAPPORT_TEST_POSTGRES_URL")
    if not server:
        print("set RAPPORT_BENCH_POSTGRES_URL (several processes on one database need PostgreSQL)", file=sys.stderr)
        return 2
    print(f"load average at start: {load()}")
    name, url = new_database(server)
    result: dict = {"workspaces": args.workspaces, "customers_per_workspace": args.customers,
                    "reminders": args.reminders, "processes": args.processes}
    try:
        with RemoteFake(args.workspaces) as fake:
            result["setup_seconds"] = fill(url, fake.tokens, workspaces=args.workspaces, customers=args.customers,
                                           reminders=args.reminders)
            print(f"set up {args.workspaces:,} workspaces × {args.customers} customers, {args.reminders:,} reminders "
                  f"in {result['setup_seconds']:.1f} s")
            env = worker_env(url, fake.api_url)

            wall, reports = run_workers("reminder", args.processes, env)
            seen = fake.posts()
            posts = [p for p in seen["posts"] if p["ok"] and p["ids"]]
            ids = Counter(i for p in posts for i in p["ids"])
            span = max(p["at"] for p in posts) - min(p["at"] for p in posts) if posts else float("nan")
            result["reminder_delivery"] = {
                "wall_seconds": wall, "delivered": len(ids), "duplicates": sum(c - 1 for c in ids.values()),
                "per_second": len(ids) / span if span else None, "wrong_token": wrong_tokens(posts, fake.tokens),
                "refused_calls": seen["refused"], "workers": reports}
            rate = result["reminder_delivery"]["per_second"] or 0
            print(f"reminders: {len(ids):,} of {args.reminders:,} delivered in {span:.1f} s = {rate:.0f}/s "
                  f"(target ≥ {TARGET_RATE:.0f}/s), {result['reminder_delivery']['duplicates']} duplicates, "
                  f"{result['reminder_delivery']['wrong_token']} with another workspace's token; "
                  f"peak RSS per process {[round(r.get('peak_rss_mb', 0)) for r in reports]} MB; "
                  f"load {load()}")
            base = baseline(fake.api_url, fake.tokens, workspaces=args.workspaces, reminders=args.reminders,
                            threads=args.processes * 4)
            result["baseline_per_second"] = base
            print(f"baseline (same DMs, per-workspace clients, {args.processes * 4} threads, no database): "
                  f"{base:.0f}/s; ratio Rapport/baseline {rate / base:.2f}")

            before = len(fake.posts()["posts"])
            wall, reports = run_workers("digest", args.processes, env)
            digests = [p for p in fake.posts()["posts"][before:] if p["ok"] and (p["channel"] or "").startswith("CW")]
            per_workspace = Counter(p["channel"] for p in digests if not p["thread"])
            result["digest"] = {
                "wall_seconds": wall, "workspaces_posted": len(per_workspace),
                "more_than_once": sum(1 for c in per_workspace.values() if c > 1),
                "messages": len(digests), "busiest_channel_second": busiest_second(digests),
                "wrong_token": wrong_tokens(digests, fake.tokens), "workers": reports}
            print(f"digest: {len(per_workspace):,} of {args.workspaces:,} workspaces posted in {wall:.1f} s "
                  f"(limit {DIGEST_LIMIT:.0f} s), {result['digest']['more_than_once']} twice, {len(digests):,} "
                  f"messages, at most {result['digest']['busiest_channel_second']} per channel in one second, "
                  f"{result['digest']['wrong_token']} with another workspace's token; peak RSS per process "
                  f"{[round(r.get('peak_rss_mb', 0)) for r in reports]} MB; load {load()}")
    finally:
        drop_database(server, name)
    result["load_average"] = load()
    line = json.dumps(result)
    if args.json:
        Path(args.json).write_text(line)
    print("RESULT " + line)
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--fake-child":
        fake_child(int(sys.argv[2]))
    elif len(sys.argv) > 1 and sys.argv[1] == "--reminder-child":
        reminder_child()
    elif len(sys.argv) > 1 and sys.argv[1] == "--digest-child":
        digest_child()
    else:
        sys.exit(main())
