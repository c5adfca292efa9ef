"""Survey clicks under load: acknowledgement latency of `rapport serve` against a bare Bolt app, live-count redraws.

    .venv/bin/python bench/bench_surveys.py [--rate 100] [--seconds 20] [--people 500] [--json PATH] [--keep]

1. `rapport serve` (subprocess: waitress, 16 threads, the scheduler on, as in production) on a fresh SQLite file,
   with a FakeSlack run in this process as SLACK_API_URL. A customer is added and an NPS survey posted in its
   shared channel through signed `/crm` requests, as a rep would.
2. Clicks: Slack-shaped block_actions payloads (the survey message with its 11 buttons, `team.id` the installed
   workspace, `user.team_id` the customer's own organisation, as Slack Connect sends them), signed, POSTed at a
   fixed open-loop rate; latency runs from each click's scheduled time to the end of its HTTP response (no
   coordinated omission). People are drawn from a pool of --people outside users, scores from a typical NPS
   spread (20% detractors, who start service recovery). 50 warm-up clicks first.
3. Baseline: a bare Bolt app in the same kind of subprocess (this file with --bare-bolt: waitress, 16 threads,
   slack_bolt's WSGI adapter, a 16-thread listener pool like Rapport's), acking the same clicks and doing nothing
   else. Target: Rapport's p99 under 300 ms.
4. At the fake: chat.update calls for the survey message during the run (expected: at most one per 3 s), the
   smallest gap between two, and the final count shown once the trailing redraw came; and in the database, the
   distinct respondents stored against the distinct people who clicked.

The last line of stdout is ``RESULT {json}`` (also written to --json PATH when given).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import requests  # noqa: E402

from bench.common import (  # noqa: E402
    VENV_BIN,
    cpu_seconds,
    free_port,
    open_loop,
    signed_command,
    start_process,
    stop_process,
    summarize,
    wait_healthy,
)
from bot.slack import presets  # noqa: E402
from bot.slack.fake import FakeSlack  # noqa: E402
from bot.slack.simulate import Person, SlackSimulator, sign  # noqa: E402

TEAM_ID = presets.HOME_TEAM
SIGNING_SECRET = "bench-signing-secret"  # a benchmark value, not a real secret
BOT_TOKEN = "xoxb-bench-token"
HOST = "127.0.0.1"
CHANNEL = "C0ACME"
THREADS = 16  # waitress threads and listener pool, both servers (Rapport's HTTP_THREADS and LISTENER_THREADS)
TARGET_P99_S = 0.300
WARMUP = 50
WORKERS = 96  # client threads: clicks wait for the server, not a free client (waitress accepts 100 connections)
SLACK_TIMEOUT_S = 3.0  # Slack shows the clicker an error when the ack takes longer
REDRAW_EVERY_S = 3.0
CUSTOMER_TEAMS = ("T0CUSTOMER", "T0CUSTOMER2", "T0GLOBEX")
# A typical NPS spread: 20% detractors (0-6), 30% passives (7-8), 50% promoters (9-10).
SCORE_WEIGHTS = [2, 2, 2, 2, 2, 4, 6, 15, 15, 25, 25]


# -- the baseline server ------------------------------------------------------------------------------------


def serve_bare_bolt(port: int) -> None:
    """A Bolt app that acks a survey click and does nothing else, under the server Rapport uses."""
    from concurrent.futures import ThreadPoolExecutor

    from slack_bolt import App
    from slack_bolt.adapter.wsgi import SlackRequestHandler
    from slack_sdk import WebClient
    from waitress import serve

    app = App(
        signing_secret=os.environ["SLACK_SIGNING_SECRET"],
        client=WebClient(token=os.environ["SLACK_BOT_TOKEN"], base_url=os.environ["SLACK_API_URL"]),
        listener_executor=ThreadPoolExecutor(THREADS, thread_name_prefix="listener"),
    )

    @app.action(re.compile(r"^survey\.answer\.\d+$"))
    def clicked(ack):
        ack()

    bolt = SlackRequestHandler(app)
    health = b'{"ok": true}'

    def wsgi(environ, start_response):
        if environ.get("PATH_INFO") == "/healthz":
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(health)))])
            return [health]
        return bolt(environ, start_response)

    serve(wsgi, host=HOST, port=port, threads=THREADS, ident="bare-bolt", _quiet=True)


# -- requests -----------------------------------------------------------------------------------------------


class Payloads(SlackSimulator):
    """The simulator's Slack-shaped bodies, not dispatched in-process: the benchmark POSTs them itself."""

    def __init__(self, response_url_base: str):
        super().__init__(None, signing_secret=SIGNING_SECRET, team_id=TEAM_ID, response_url_base=response_url_base)

    def send(self, body: str, content_type: str, *, extra_headers: dict | None = None):
        return body


def command(url: str, fake: FakeSlack, text: str) -> None:
    body, headers = signed_command(SIGNING_SECRET, text=text, team_id=TEAM_ID, user_id="U0ALICE",
                                   channel_id="C0SALES", response_url=fake.response_url("cmd"))
    response = requests.post(url, data=body.encode(), headers=headers, timeout=10)
    response.raise_for_status()


class Clicks:
    """Signed survey clicks for open_loop; remembers who clicked (the distinct people the survey must count)."""

    def __init__(self, url: str, message: dict, people: list[Person], payloads: Payloads, seed: int):
        self.url = url
        self.message = message
        self.buttons = {int(e["text"]["text"]): e for b in message["blocks"] if b["type"] == "actions"
                        for e in b["elements"]}
        self.people = people
        self.payloads = payloads
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.clicked: set[str] = set()

    def send(self, session: requests.Session):
        with self.lock:  # one generator for reproducible draws
            person = self.rng.choice(self.people)
            score = self.rng.choices(range(11), weights=SCORE_WEIGHTS)[0]
            self.clicked.add(person.id)
        body = self.payloads.click(person, action=self.buttons[score], channel_id=CHANNEL, message=self.message)
        headers = {"Content-Type": "application/x-www-form-urlencoded", **sign(SIGNING_SECRET, body)}
        response = session.post(self.url, data=body.encode(), headers=headers, timeout=10)
        return (True, None) if response.status_code == 200 else (False, f"HTTP {response.status_code}")


# -- measuring ----------------------------------------------------------------------------------------------


def stored_respondents(db_path: Path) -> int:
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30) as connection:
        return connection.execute("SELECT count(DISTINCT respondent_id) FROM survey_response").fetchone()[0]


def wait_for(predicate, timeout: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def load(name: str, clicks: Clicks, rate: float, count: int, pid: int) -> dict:
    open_loop(clicks.send, rate=rate, count=WARMUP, workers=WORKERS)
    cpu_before = cpu_seconds(pid)
    began = time.time()
    samples = open_loop(clicks.send, rate=rate, count=count, workers=WORKERS)
    ended = time.time()
    cpu_ms = (cpu_seconds(pid) - cpu_before) * 1000 / count  # work still queued after the last ack is missed
    stats = summarize([s.latency for s in samples if s.ok])
    errors = [s for s in samples if not s.ok]
    late = sum(1 for s in samples if s.ok and s.latency > SLACK_TIMEOUT_S)
    print(f"  {name:<9} p50 {stats['p50'] * 1000:7.1f} ms  p99 {stats['p99'] * 1000:7.1f} ms  "
          f"max {stats['max'] * 1000:7.1f} ms  errors {len(errors)}  over 3 s {late}  "
          f"server CPU {cpu_ms:.1f} ms/click", flush=True)
    return {**stats, "errors": len(errors), "error_examples": sorted({s.error or "?" for s in errors})[:3],
            "over_3s": late, "server_cpu_ms_per_click": cpu_ms, "window": (began, ended)}


def main() -> int:
    parser = argparse.ArgumentParser(description="Survey clicks: ack latency, Rapport vs bare Bolt; redraws")
    parser.add_argument("--rate", type=float, default=100.0, help="clicks per second (open loop)")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds per server")
    parser.add_argument("--people", type=int, default=500, help="outside people who click")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON to PATH")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (database, server logs)")
    parser.add_argument("--bare-bolt", action="store_true", help=argparse.SUPPRESS)  # the baseline server
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_bolt:
        serve_bare_bolt(args.port)
        return 0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind through the finally below

    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} CPUs)")
    tmp = Path(tempfile.mkdtemp(prefix="rapport-bench-surveys-"))
    db_path = tmp / "bench.db"
    fake = FakeSlack(team_id=TEAM_ID).start()
    presets.install(fake)
    env = {**os.environ, "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET,
           "SLACK_API_URL": fake.api_url, "DATABASE_URL": f"sqlite:///{db_path}", "PYTHONUNBUFFERED": "1"}
    for var in ("SLACK_APP_TOKEN", "SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET"):
        env.pop(var, None)  # HTTP mode with a bot token, whatever the caller's environment says
    count = max(1, int(args.rate * args.seconds))
    people = [Person(id=f"U0EXT{n:05d}", name=f"ext{n}", team_id=CUSTOMER_TEAMS[n % len(CUSTOMER_TEAMS)])
              for n in range(args.people)]
    payloads = Payloads(fake.response_url("x").rsplit("/", 1)[0])
    processes = []
    try:
        # 1. Rapport, and a survey posted the way a rep posts it
        port = free_port()
        rapport, started = start_process([str(VENV_BIN / "rapport"), "serve", "--host", HOST, "--port", str(port)],
                                         env=env, cwd=tmp, log_path=tmp / "rapport.log")
        processes.append(rapport)
        wait_healthy(f"http://{HOST}:{port}/healthz", rapport, started)
        url = f"http://{HOST}:{port}/slack/events"
        command(url, fake, 'add "Acme Corp" tier:key channel:<#C0ACME|acme-shared>')
        command(url, fake, 'survey "Acme Corp" nps')
        if not wait_for(lambda: fake.messages(CHANNEL), timeout=10):
            raise RuntimeError("the survey was not posted; see " + str(tmp / "rapport.log"))
        message = fake.messages(CHANNEL)[-1]
        print(f"clicks: {args.rate:g}/s open loop, {count} per server (+{WARMUP} warm-up), "
              f"{args.people} people from {len(CUSTOMER_TEAMS)} other organisations", flush=True)

        # 2. Rapport under load
        clicks = Clicks(url, message, people, payloads, args.seed)
        result_rapport = load("Rapport", clicks, args.rate, count, rapport.pid)
        expected = len(clicks.clicked)
        # Listeners ack first and store after; let them finish, then the trailing redraw come.
        wait_for(lambda: stored_respondents(db_path) >= expected, timeout=60)
        stored = stored_respondents(db_path)
        final = f"{stored} response{'s' if stored != 1 else ''} so far"
        updates = lambda: [c for c in fake.calls("chat.update") if c.args.get("ts") == message["ts"]]  # noqa: E731
        wait_for(lambda: updates() and final in json.dumps(updates()[-1].args), timeout=REDRAW_EVERY_S + 5)
        began, ended = result_rapport.pop("window")
        during = [c for c in updates() if began <= c.at <= ended]
        times = [c.at for c in updates()]
        gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
        redraws = {
            "during_load": len(during),
            "per_second": len(during) / (ended - began),
            "min_gap_s": min(gaps) if gaps else None,
            "final_count_shown": bool(updates()) and final in json.dumps(updates()[-1].args),
            "refused": sum(1 for c in updates() if not c.response.get("ok")),
        }
        stop_process(rapport)

        # 3. the bare Bolt baseline, same server, same clicks
        port = free_port()
        bare, started = start_process([sys.executable, str(Path(__file__).resolve()), "--bare-bolt", "--port",
                                       str(port)], env=env, cwd=tmp, log_path=tmp / "bare.log")
        processes.append(bare)
        wait_healthy(f"http://{HOST}:{port}/healthz", bare, started)
        baseline = Clicks(f"http://{HOST}:{port}/slack/events", message, people, payloads, args.seed)
        result_bare = load("bare Bolt", baseline, args.rate, count, bare.pid)
        result_bare.pop("window")
    finally:
        for process in processes:
            stop_process(process)
        fake.stop()
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    result = {
        "rate": args.rate,
        "clicks_per_server": count,
        "people": args.people,
        "latency_s": {"rapport": result_rapport, "baseline": result_bare},
        "p50_ratio": result_rapport["p50"] / result_bare["p50"],
        "p99_ratio": result_rapport["p99"] / result_bare["p99"],
        "target_p99_s": TARGET_P99_S,
        "pass": result_rapport["p99"] < TARGET_P99_S and not result_rapport["errors"],
        "capacity_clicks_per_s_one_core": 1000 / result_rapport["server_cpu_ms_per_click"],
        "redraws": redraws,
        "respondents": {"stored": stored, "expected": expected},
        "cpus": os.cpu_count(),
        "loadavg_1m_after": os.getloadavg()[0],
    }
    r, b = result_rapport, result_bare
    print()
    print(f"{'':<22}{'Rapport':>10}{'bare Bolt':>11}{'ratio':>8}")
    for key in ("p50", "p90", "p99", "max", "mean"):
        print(f"{'ack ' + key + ' (ms)':<22}{r[key] * 1000:>10.1f}{b[key] * 1000:>11.1f}{r[key] / b[key]:>7.2f}x")
    print(f"{'errors':<22}{r['errors']:>10}{b['errors']:>11}")
    print(f"{'acks over 3 s':<22}{r['over_3s']:>10}{b['over_3s']:>11}")
    print(f"{'server CPU (ms/click)':<22}{r['server_cpu_ms_per_click']:>10.1f}{b['server_cpu_ms_per_click']:>11.1f}"
          f"{r['server_cpu_ms_per_click'] / b['server_cpu_ms_per_click']:>7.2f}x")
    print(f"chat.update for the survey during the load: {redraws['during_load']} "
          f"({redraws['per_second']:.2f}/s; at most 1 per {REDRAW_EVERY_S:g} s = {1 / REDRAW_EVERY_S:.2f}/s); "
          f"smallest gap {redraws['min_gap_s'] or float('nan'):.2f} s; final count shown: "
          f"{redraws['final_count_shown']}; refused by Slack: {redraws['refused']}")
    print(f"distinct respondents stored: {stored}, expected {expected}")
    print(f"capacity if the server had a whole core (1000 / CPU ms per click): "
          f"{result['capacity_clicks_per_s_one_core']:.0f} clicks/s")
    print(f"target: Rapport p99 < {TARGET_P99_S * 1000:.0f} ms, no errors -> {'PASS' if result['pass'] else 'FAIL'}")
    print(f"load average after: {os.getloadavg()[0]:.2f} ({os.cpu_count()} CPUs)")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    print("RESULT " + json.dumps(result, separators=(",", ":")), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
