"""Acknowledgement times under a mixed load: `rapport serve` on SQLite and on PostgreSQL against a bare Bolt app.

    .venv/bin/python bench/bench_mixed_load.py [--rate 90] [--seconds 20] [--workers 16] [--postgres URL]

Slack shows the user an error when an answer takes over 3 seconds, while the write may have been kept; so what
counts is the share of acknowledgements over 1 s and over 3 s. Each target gets the same open-loop schedule
(request i due at i/rate, latency from that due time, `--workers` requests in flight at most) of a mix of
four kinds, in turn: `/crm add` (a new customer), `/crm log` (a touch on an existing one), `/crm show`, and a
survey click from a customer of another organisation. The bare Bolt app (bench/bare_bolt_app.py) answers every
request as a fixed `/crm` payload: the floor of the server, the adapter and the machine.

PostgreSQL: --postgres URL or RAPPORT_BENCH_POSTGRES_URL (a server the benchmark may create a database in), else
a throwaway cluster started with scripts/pg. The last line of stdout is ``RESULT {json}``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import requests  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from bench.common import VENV_BIN, Server, open_loop, summarize  # noqa: E402
from bot.slack import presets  # noqa: E402
from bot.slack.fake import FakeSlack  # noqa: E402
from bot.slack.simulate import Person, Response, SlackSimulator  # noqa: E402

SIGNING_SECRET = "bench-signing-secret"  # a benchmark value, not a real secret
BOT_TOKEN = "xoxb-bench-token"
HOST = "127.0.0.1"
KINDS = ("add", "log", "show", "click")
SEED_CUSTOMERS = 50
ALICE = Person(id="U0ALICE", name="alice", team_id=presets.HOME_TEAM)


class OverHttp(SlackSimulator):
    """The simulator's Slack-shaped, signed requests, POSTed with the calling thread's requests.Session."""

    def __init__(self, url: str, fake: FakeSlack):
        super().__init__(None, signing_secret=SIGNING_SECRET, team_id=presets.HOME_TEAM,
                         response_url_base=fake.response_url("x").rsplit("/", 1)[0])
        self.url = url
        self.local = threading.local()
        self.transport = self._post

    def _post(self, body: str, headers: dict) -> Response:
        session = getattr(self.local, "session", None) or requests
        answer = session.post(self.url, data=body.encode(), headers=headers, timeout=30)
        return Response(status=answer.status_code, body=answer.text, headers=dict(answer.headers))


def seed(sim: OverHttp, fake: FakeSlack) -> dict:
    """Customers to log and show, and a survey in the customer's shared channel to click on."""
    for n in range(SEED_CUSTOMERS):
        assert sim.command(ALICE, "C0SALES", f'add "Seed {n:03d}" tier:key').status == 200
    assert sim.command(ALICE, "C0SALES", 'add "Survey Co" tier:key channel:<#C0ACME|acme-shared>').status == 200
    assert sim.command(ALICE, "C0SALES", 'survey "Survey Co" nps').status == 200
    deadline = time.monotonic() + 30
    while not fake.messages("C0ACME") and time.monotonic() < deadline:  # posted after the command's ack
        time.sleep(0.05)
    message = fake.messages("C0ACME")[-1]
    buttons = [e for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]
    return {"message": message, "buttons": buttons}


def mixed_send(sim: OverHttp, state: dict, kind_of):
    counter = iter(range(10**9))
    lock = threading.Lock()

    def send(session: requests.Session):
        sim.local.session = session
        with lock:
            i = next(counter)
        kind = kind_of(i)
        if kind == "add":
            response = sim.command(ALICE, "C0SALES", f'add "Load {uuid.uuid4().hex[:10]}"')
        elif kind == "log":
            response = sim.command(ALICE, "C0SALES", f'log "Seed {i % SEED_CUSTOMERS:03d}" call checked in')
        elif kind == "show":
            response = sim.command(ALICE, "C0SALES", f'show "Seed {i % SEED_CUSTOMERS:03d}"')
        else:
            person = Person(id=f"U0EXT{i:05d}", name=f"ext{i}", team_id="T0CUSTOMER")
            button = state["buttons"][i % len(state["buttons"])]
            response = sim.click(person, action=button, channel_id="C0ACME", message=state["message"])
        if response.status != 200:
            return False, f"{kind}: HTTP {response.status}"
        return True, kind  # open_loop keeps the second value in Sample.error: here, the kind, for per-kind figures

    return send


def postgres_url(given: str | None, tmp: Path) -> tuple[str, str | None]:
    """A fresh database on the given server, or on a throwaway cluster (returned as its directory to stop)."""
    cluster = None
    if not given:
        cluster = str(tmp / "pg")
        os.makedirs(cluster)
        # scripts/pg runs the server as the postgres user, who must be able to enter the directory
        os.chmod(tmp, 0o755)  # noqa: S103
        os.chmod(cluster, 0o755)  # noqa: S103
        given = subprocess.run([str(ROOT / "scripts" / "pg"), "start", cluster], check=True, capture_output=True,
                               text=True).stdout.strip()
    name = f"bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(given, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(given).set(database=name).render_as_string(hide_password=False), cluster


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=90.0, help="requests per second (open loop)")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds per target")
    parser.add_argument("--workers", type=int, default=16, help="requests in flight at most")
    parser.add_argument("--postgres", help="a PostgreSQL URL to create the bench database in")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    tmp = Path(tempfile.mkdtemp(prefix="rapport-mixed-"))
    fake = FakeSlack(team_id=presets.HOME_TEAM).start()
    presets.install(fake)
    cluster = None
    servers: list[Server] = []
    results: dict[str, dict] = {}
    try:
        pg, cluster = postgres_url(args.postgres or os.environ.get("RAPPORT_BENCH_POSTGRES_URL"), tmp)
        base_env = {**os.environ, "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET,
                    "SLACK_API_URL": fake.api_url, "PYTHONUNBUFFERED": "1"}
        for var in ("SLACK_APP_TOKEN", "SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET"):
            base_env.pop(var, None)
        payload = tmp / "help.json"
        payload.write_text(json.dumps({"response_type": "ephemeral", "text": "ok"}))
        targets = {
            "sqlite": Server("sqlite", lambda port: [str(VENV_BIN / "rapport"), "serve", "--host", HOST, "--port",
                                                     str(port)],
                             {**base_env, "DATABASE_URL": f"sqlite:///{tmp / 'bench.db'}"}, cwd=tmp, log_dir=tmp),
            "postgresql": Server("postgresql", lambda port: [str(VENV_BIN / "rapport"), "serve", "--host", HOST,
                                                             "--port", str(port)],
                                 {**base_env, "DATABASE_URL": pg}, cwd=tmp, log_dir=tmp),
            "bare Bolt": Server("bare", lambda port: [sys.executable, str(ROOT / "bench" / "bare_bolt_app.py"),
                                                      "--host", HOST, "--port", str(port), "--payload", str(payload)],
                                base_env, cwd=tmp, log_dir=tmp),
        }
        count = max(1, int(args.rate * args.seconds))
        print(f"{count} requests per target at {args.rate:g}/s, at most {args.workers} in flight; mix: "
              f"{', '.join(KINDS)} in turn", flush=True)
        for name, server in targets.items():
            servers.append(server)
            server.start()
            sim = OverHttp(server.events, fake)
            if name == "bare Bolt":  # no listeners but /crm: every request is the fixed command
                send = mixed_send(sim, {}, lambda i: "show")
            else:
                state = seed(sim, fake)
                send = mixed_send(sim, state, lambda i: KINDS[i % len(KINDS)])
            open_loop(send, rate=args.rate, count=min(50, count), workers=args.workers)  # warm-up
            run = open_loop(send, rate=args.rate, count=count, workers=args.workers)
            server.stop()
            latencies = [s.latency for s in run if s.ok]
            errors = [s.error for s in run if not s.ok]
            results[name] = {
                **summarize(latencies),
                "over_1s": sum(1 for s in run if s.latency > 1.0),
                "over_3s": sum(1 for s in run if s.latency > 3.0),
                "errors": len(errors),
                "first_errors": errors[:3],
                "per_kind_p99_ms": {
                    kind: round(summarize([s.latency for s in run if s.ok and s.error == kind])["p99"] * 1000, 1)
                    for kind in KINDS if any(s.ok and s.error == kind for s in run)
                },
            }
            r = results[name]
            print(f"  {name:<10} p50 {r['p50'] * 1000:7.1f} ms  p99 {r['p99'] * 1000:7.1f} ms  max "
                  f"{r['max'] * 1000:7.1f} ms  >1 s {r['over_1s']:4d}  >3 s {r['over_3s']:4d}  errors "
                  f"{r['errors']}  p99 by kind {r['per_kind_p99_ms']}", flush=True)
        for name in ("sqlite", "postgresql"):
            print(f"p99 ratio {name} / bare Bolt: {results[name]['p99'] / results['bare Bolt']['p99']:.2f}")
    finally:
        for server in servers:
            server.stop()
        fake.stop()
        if cluster:
            subprocess.run([str(ROOT / "scripts" / "pg"), "stop", cluster], capture_output=True)
    print("RESULT " + json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
