"""Customer look-ups at scale: `/crm show`, `/crm list mine` and the customer picker over 100,000 customers.

    .venv/bin/python bench/bench_customers.py [--customers 100000] [--touches 1000000] [--rate 20] [--seconds 15]
        [--profile] [--keep] [--json PATH]

    RAPPORT_BENCH_POSTGRES_URL=postgresql+psycopg://user@host/db   also run on PostgreSQL (a fresh database
                                                                   is created beside that one and dropped after)

1. Seed: a fresh database migrated by Alembic (bot.db.make_engine + upgrade), then one workspace with
   100,000 customers (1,000 key; owners spread over 50 reps), 2 contacts each, 1,000,000 touches and 20,000 open
   follow-ups, with SQLAlchemy Core executemany in batches of 10,000, in one transaction (SQLite: journal,
   sync and foreign-key checks off while seeding). Customers' last touch and revisit date agree with the touches.
2. Serve: `rapport serve --no-scheduler` (waitress, 16 threads) on that database, with a FakeSlack run in this
   process as SLACK_API_URL. Baseline: bench/bare_bolt_app.py, the same server and Bolt adapter answering `/crm`
   with a static copy of a real customer card captured from Rapport (same size, no database); the targets compare
   with it. A second baseline, for reference, is the same app with process_before_response: Bolt's fastest answer,
   without the 10 ms ack polling that Rapport's listener pool (bot/slack/acks.py) also avoids.
3. Measure over HTTP with signed requests at a fixed open-loop rate (latency from each request's scheduled time to
   the end of its response): `/crm show` by full name ("Quoted Name") and by unique prefix, half each;
   `/crm list mine` as a random rep; the customer picker (block_suggestion, action_id `customer_picker`) with a
   2-4 letter prefix of a real name. Targets: show p99 < 100 ms and <= 2x the baseline's p99; picker p95 < 50 ms.
4. --profile: the same three requests dispatched in-process through the real app (SlackSimulator) under cProfile,
   with every SQL statement timed: statements per request, the slowest statements, and the hottest functions.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import random
import re
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import requests  # noqa: E402
from sqlalchemy import column, create_engine, event, insert, table, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.pool import NullPool  # noqa: E402

from bench.common import (  # noqa: E402
    VENV_BIN,
    Server,
    batches,
    open_loop,
    percentile,
    signed_command,
)
from bot.db import make_engine, session_scope, upgrade  # noqa: E402
from bot.services.names import name_key  # noqa: E402
from bot.services.workspaces import ensure_workspace  # noqa: E402
from bot.slack.fake import FakeSlack  # noqa: E402
from bot.slack.simulate import sign  # noqa: E402
from models import Contact, Customer, Interaction, Reminder  # noqa: E402

TEAM_ID = "T0BENCH"
SIGNING_SECRET = "bench-signing-secret"  # a benchmark value, not a real secret
BOT_TOKEN = "xoxb-bench-token"
HOST = "127.0.0.1"
BATCH = 10_000
REPS = [f"U0REP{n:02d}" for n in range(50)]
KEY_CUSTOMERS = 1_000
FOLLOWUP_SHARE = 0.2
CADENCE = {"key": 14, "general": 45, "longtail": 90}  # the workspace defaults
TARGET_SHOW_P99_MS = 100.0
TARGET_SHOW_RATIO = 2.0
TARGET_PICKER_P95_MS = 50.0
WARMUP = 20

# -- names -----------------------------------------------------------------------------------------------

ONSETS = ["b", "c", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z",
          "br", "cr", "dr", "gr", "kr", "pr", "st", "tr", "ch", "sh", "qu", "fl", "gl", "pl"]
VOWELS = ["a", "e", "i", "o", "u", "ai", "ea", "io", "ou"]
CODAS = ["n", "r", "x", "s", "l", "th", "ton", "ra", "nix", "tek", "dor", "via", "ly", "co", "gen"]
SECOND = ["Systems", "Logistics", "Foods", "Robotics", "Energy", "Health", "Media", "Capital", "Motors",
          "Textiles", "Pharma", "Software", "Analytics", "Retail", "Airlines", "Chemicals", "Foundry", "Labs",
          "Networks", "Instruments", "Materials", "Mining", "Marine", "Optics", "Semiconductors", "Telecom",
          "Packaging", "Insurance", "Biotech", "Construction", "Consulting", "Devices", "Electric", "Farms",
          "Games", "Hotels", "Industries", "Kitchens", "Learning", "Machines"]
SUFFIX = ["Inc", "Ltd", "GmbH", "Corp", "Group", "AG", "SA", "LLC", "Co", "Holdings", "Partners", "BV"]
FIRST = ["Li", "Wei", "Anna", "Marco", "Priya", "Kenji", "Sara", "Omar", "Lena", "Diego", "Mei", "Ivan",
         "Chloe", "Raj", "Eva", "Tom", "Yuki", "Noah", "Fatima", "Jonas"]
LAST = ["Wang", "Smith", "Rossi", "Patel", "Sato", "Garcia", "Muller", "Kim", "Nowak", "Silva", "Chen", "Haddad",
        "Berg", "Okafor", "Dubois", "Ivanova", "Novak", "Costa", "Larsen", "Tanaka"]
KINDS = ["call", "meeting", "visit", "email", "message", "note"]
PHRASES = ["discussed the renewal", "asked for a proposal", "pricing concerns", "demo of the new module",
           "met the procurement team", "escalated a support ticket", "quarterly business review",
           "introduced to the CFO", "budget approved for next year", "evaluating a competitor",
           "wants references", "signed the pilot", "follow up on the security review"]


def company_names(count: int, rng: random.Random) -> list[str]:
    words: set[str] = set()
    while len(words) < 3000:
        words.add((rng.choice(ONSETS) + rng.choice(VOWELS) + rng.choice(ONSETS[:16]) + rng.choice(VOWELS)
                   + rng.choice(CODAS)).capitalize())
    vocabulary = sorted(words)
    names: list[str] = []
    keys: set[str] = set()
    while len(names) < count:
        name = f"{rng.choice(vocabulary)} {rng.choice(SECOND)} {rng.choice(SUFFIX)}"
        if name_key(name) not in keys:
            keys.add(name_key(name))
            names.append(name)
    return names


def unique_prefixes(names: list[str]) -> dict[str, str]:
    """name -> the shortest prefix of its key that only it starts with (and that is not another's full key)."""
    keyed = sorted((name_key(n), n) for n in names)
    found = {}
    for i, (key, name) in enumerate(keyed):
        longest = 0
        for j in (i - 1, i + 1):
            if 0 <= j < len(keyed):
                other = keyed[j][0]
                common = 0
                while common < min(len(key), len(other)) and key[common] == other[common]:
                    common += 1
                longest = max(longest, common)
        prefix = key[: longest + 1]
        if prefix.endswith(" "):  # a trailing space is lost when the command is split into words
            prefix = key[: longest + 2]
        if len(prefix) < len(key):
            found[name] = prefix
    return found


# -- seeding ---------------------------------------------------------------------------------------------


@dataclass
class Seeded:
    names: list[str]
    prefixes: dict[str, str]
    key_names: list[str]
    seconds: dict[str, float] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)


def seed(url: str, *, customers: int, touches: int, rng: random.Random) -> Seeded:
    """Migrate a fresh database, then bulk-insert the data set in one transaction; returns names and timings."""
    now = datetime.now(UTC)
    started = time.perf_counter()
    engine = make_engine(url)
    upgrade(engine)
    with session_scope(engine) as session:
        ensure_workspace(session, workspace_id=TEAM_ID, now=now - timedelta(days=800), name="Bench")
    engine.dispose()
    migrate_s = time.perf_counter() - started

    seeding_engine, postgres = _seeding_engine(url)
    # Times go in as the UTC columns store them (naive UTC; on SQLite SQLAlchemy's text form), so the rows skip
    # per-value type processing, the bulk of a Core executemany's cost; check_seeded() reads them back.
    stamp = (lambda d: d) if postgres else (lambda d: d.isoformat(" ", "microseconds"))
    now_utc = now.replace(tzinfo=None)
    created = now_utc - timedelta(days=730)

    names = company_names(customers, rng)
    keys = [name_key(n) for n in names]
    tiers = ["key"] * KEY_CUSTOMERS + [rng.choice(["general", "general", "longtail"])
                                       for _ in range(customers - KEY_CUSTOMERS)]
    rng.shuffle(tiers)
    # Touches per customer: key accounts get four times the share of the others; the total is exact.
    weights = [4 if t == "key" else 1 for t in tiers]
    per_weight = touches / sum(weights)
    counts = [int(w * per_weight * rng.uniform(0.5, 1.5)) for w in weights]
    drift = touches - sum(counts)
    while drift:  # make the total exact, one touch at a time on random customers
        i = rng.randrange(customers)
        step = 1 if drift > 0 else -1 if counts[i] else 0
        counts[i] += step
        drift -= step
    last_touch = [now_utc - timedelta(days=rng.uniform(0, 120)) if n else None for n in counts]
    stages = ["prospect", "converting", "active", "active", "expanding"]
    orgs = ["vendor", "supplier", "key_supplier", "strategic_partner"]
    created_s = stamp(created)

    def customer_rows():
        for i, name in enumerate(names):
            start = last_touch[i] or created
            owner = REPS[i % len(REPS)]
            yield {"id": i + 1, "workspace_id": TEAM_ID, "name": name, "name_key": keys[i], "tier": tiers[i],
                   "stage": rng.choice(stages), "org_relationship": rng.choice(orgs), "owner_id": owner,
                   "channel_id": None, "created_by": owner, "created_at": created_s, "updated_at": stamp(start),
                   "last_touch_at": stamp(last_touch[i]) if last_touch[i] else None,
                   "revisit_due_at": stamp(start + timedelta(days=CADENCE[tiers[i]]))}

    def contact_rows():
        for i in range(customers):
            first, second = rng.sample(FIRST, 2)
            for j, (given, role) in enumerate(((first, "decision_maker"), (second, "influencer"))):
                person = f"{given} {rng.choice(LAST)}"
                yield {"id": 2 * i + j + 1, "workspace_id": TEAM_ID, "customer_id": i + 1, "name": person,
                       "name_key": person.casefold(), "role": role, "level": rng.randint(1, 5),
                       "slack_user_id": None, "created_at": created_s, "updated_at": created_s}

    def touch_rows():
        random_, choice = rng.random, rng.choice
        for i, n in enumerate(counts):
            if not n:
                continue
            span = (last_touch[i] - created).total_seconds()
            times = sorted(created + timedelta(seconds=random_() * span) for _ in range(n - 1))
            times.append(last_touch[i])
            owner = REPS[i % len(REPS)]
            for at in times:
                at_s = stamp(at)
                yield {"workspace_id": TEAM_ID, "customer_id": i + 1, "kind": choice(KINDS),
                       "summary": f"{choice(PHRASES).capitalize()}; {choice(PHRASES)}.", "by_user": owner,
                       "at": at_s, "contact_id": 2 * i + 1 + (random_() < 0.5) if random_() < 0.3 else None,
                       "link": None, "created_at": at_s}

    def reminder_rows():
        for i in rng.sample(range(customers), int(customers * FOLLOWUP_SHARE)):
            due = now_utc + timedelta(days=rng.uniform(-10, 20))
            owner = REPS[i % len(REPS)]
            yield {"workspace_id": TEAM_ID, "customer_id": i + 1, "kind": "followup", "source": "manual",
                   "owner_id": owner, "note": rng.choice(PHRASES), "due_at": stamp(due), "deliver_at": stamp(due),
                   "next_attempt_at": stamp(due), "status": "delivered" if due <= now_utc else "pending",
                   "attempts": 0, "late": False, "created_by": owner, "created_at": stamp(due - timedelta(days=7))}

    result = Seeded(names=names, prefixes=unique_prefixes(names),
                    key_names=[n for n, t in zip(names, tiers, strict=True) if t == "key"])
    result.seconds["migrate"] = migrate_s
    with seeding_engine.begin() as connection:
        if postgres and connection.execute(text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")).scalar():
            # PostgreSQL's "foreign keys off": skip the per-row RI triggers while loading (superusers only).
            connection.execute(text("SET LOCAL session_replication_role = replica"))
        for label, model, rows in (("customers", Customer, customer_rows()), ("contacts", Contact, contact_rows()),
                                   ("touches", Interaction, touch_rows()), ("follow-ups", Reminder, reminder_rows())):
            t0, n = time.perf_counter(), 0
            statement = insert(table(model.__tablename__, *(column(c.name) for c in model.__table__.columns)))
            for batch in batches(rows, BATCH):
                connection.execute(statement, batch)
                n += len(batch)
            result.seconds[label], result.rows[label] = time.perf_counter() - t0, n
        if postgres:  # explicit ids were given: move the sequences past them
            for name in ("customer", "contact"):
                connection.execute(text(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                                        f"(SELECT max(id) FROM {name}))"))
    t0 = time.perf_counter()
    if postgres:
        with seeding_engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("ANALYZE"))  # what autovacuum would soon do; SQLite is left as the app leaves it
    else:
        with seeding_engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA journal_mode=WAL")
    result.seconds["finish"] = time.perf_counter() - t0
    seeding_engine.dispose()
    result.seconds["total"] = time.perf_counter() - started
    check_seeded(url, names[0], last_touch[0], customers, touches)
    return result


def check_seeded(url: str, name: str, last_touch: datetime | None, customers: int, touches: int) -> None:
    """Read back through the models: the counts, and a time stored without the models' types comes back equal."""
    from sqlmodel import func, select

    engine = make_engine(url)
    try:
        with session_scope(engine) as session:
            assert session.exec(select(func.count()).select_from(Customer)).one() == customers
            assert session.exec(select(func.count()).select_from(Interaction)).one() == touches
            customer = session.exec(select(Customer).where(Customer.name == name)).one()
            if last_touch is not None:
                assert customer.last_touch_at == last_touch.replace(tzinfo=UTC), (customer.last_touch_at, last_touch)
                newest = session.exec(select(Interaction).where(Interaction.customer_id == customer.id)
                                      .order_by(Interaction.at.desc()).limit(1)).one()
                assert newest.at == customer.last_touch_at, (newest.at, customer.last_touch_at)
    finally:
        engine.dispose()


def _seeding_engine(url: str):
    """An engine for bulk loading: on SQLite no journal, no fsync, no foreign-key checks, a large cache."""
    if make_url(url).get_backend_name() != "sqlite":
        return make_engine(url), True
    engine = create_engine(url, poolclass=NullPool)

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection, _record):
        cursor = dbapi_connection.cursor()
        for pragma in ("journal_mode=OFF", "synchronous=OFF", "foreign_keys=OFF", "cache_size=-262144",
                       "temp_store=MEMORY", "locking_mode=EXCLUSIVE"):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    return engine, False


# -- requests --------------------------------------------------------------------------------------------


def picker_body(typed: str, user_id: str) -> str:
    payload = {
        "type": "block_suggestion", "user": {"id": user_id, "username": "rep", "name": "rep", "team_id": TEAM_ID},
        "team": {"id": TEAM_ID, "domain": "bench"}, "api_app_id": "A0RAPPORT", "token": "legacy",
        "action_id": "customer_picker", "block_id": "customer", "value": typed,
        "container": {"type": "view", "view_id": "V0BENCH"},
        "view": {"id": "V0BENCH", "type": "modal", "callback_id": "touch_form", "app_installed_team_id": TEAM_ID},
    }
    return urlencode({"payload": json.dumps(payload)})


class Workload:
    """Random requests drawn from the seeded data; each `send_*` is an open_loop sender checking the answer."""

    def __init__(self, seeded: Seeded, url: str, response_url: str, rng: random.Random):
        self.seeded, self.url, self.response_url, self.rng = seeded, url, response_url, rng
        self.by_prefix = list(seeded.prefixes.items())

    def _post_command(self, session, text_: str, user_id: str):
        body, headers = signed_command(SIGNING_SECRET, text=text_, team_id=TEAM_ID, user_id=user_id,
                                       response_url=self.response_url)
        return session.post(self.url, data=body.encode(), headers=headers, timeout=10)

    @staticmethod
    def _json(response):
        if response.status_code == 404:  # Bolt's answer when the listener has not acked within 3 seconds
            return None, "HTTP 404: no ack within Bolt's 3 s (Slack would show a timeout)"
        if response.status_code != 200:
            return None, f"HTTP {response.status_code}"
        try:
            return response.json(), None
        except ValueError:
            return None, "body is not JSON"

    def show_text(self) -> tuple[str, str]:
        if self.rng.random() < 0.5:
            name = self.rng.choice(self.seeded.names)
            return f'show "{name}"', name
        name, prefix = self.rng.choice(self.by_prefix)
        return f"show {prefix}", name

    def send_show(self, session):
        text_, expected = self.show_text()
        payload, error = self._json(self._post_command(session, text_, self.rng.choice(REPS)))
        if error:
            return False, error
        if "blocks" not in payload or not payload.get("text", "").startswith(expected):
            return False, f"not the card of {expected}: {payload.get('text', '')[:80]}"
        return True, None

    def send_list(self, session):
        payload, error = self._json(self._post_command(session, "list mine", self.rng.choice(REPS)))
        if error:
            return False, error
        return ("blocks" in payload, None if "blocks" in payload else f"no blocks: {payload.get('text', '')[:80]}")

    def typed(self) -> str:
        return name_key(self.rng.choice(self.seeded.names))[: self.rng.randint(2, 4)]

    def send_picker(self, session):
        body = picker_body(self.typed(), self.rng.choice(REPS))
        headers = {"Content-Type": "application/x-www-form-urlencoded", **sign(SIGNING_SECRET, body)}
        payload, error = self._json(session.post(self.url, data=body.encode(), headers=headers, timeout=10))
        if error:
            return False, error
        if not payload or not payload.get("options"):
            return False, f"no options: {str(payload)[:80]}"
        return True, None


def baseline_send(url: str, response_url: str):
    def send(session):
        body, headers = signed_command(SIGNING_SECRET, text='show "anything"', team_id=TEAM_ID,
                                       response_url=response_url)
        response = session.post(url, data=body.encode(), headers=headers, timeout=10)
        return response.status_code == 200 and "blocks" in response.json(), None

    return send


# -- servers ---------------------------------------------------------------------------------------------


def measure(send, *, rate: float, seconds: float, workers: int = 32) -> dict:
    open_loop(send, rate=rate, count=WARMUP, workers=workers)
    run = open_loop(send, rate=rate, count=max(1, int(rate * seconds)), workers=workers)
    ok = [s.latency * 1000 for s in run if s.ok]
    errors = [s.error or "?" for s in run if not s.ok]
    return {"n": len(run), "p50": percentile(ok, 50), "p95": percentile(ok, 95), "p99": percentile(ok, 99),
            "max": max(ok) if ok else float("nan"), "errors": len(errors), "error_examples": sorted(set(errors))[:3]}


# -- profiling -------------------------------------------------------------------------------------------


SITE = str(Path(pstats.__file__).parent)  # shortened away in the profile listing
STATS_ROW = re.compile(r"\s*[\d/]+(\s+[\d.]+){4}\s+\S")
SELECT_LIST = re.compile(r"^SELECT (?!count).*? FROM ")


class InlineExecutor(Executor):
    """Runs each submitted call at once in the caller's thread, so cProfile sees the listeners' work."""

    def submit(self, fn, /, *args, **kwargs):
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # handed to whoever reads the future, as a pool would
            future.set_exception(exc)
        return future


def profile(url: str, seeded: Seeded, fake: FakeSlack, rng: random.Random, requests_each: int = 60) -> None:
    """The three requests in-process through the real app, under cProfile, with each SQL statement timed."""
    from bot.app import build_app
    from bot.clock import SystemClock
    from bot.config import Settings
    from bot.runtime import Runtime
    from bot.slack.client import make_client
    from bot.slack.simulate import Person, SlackSimulator

    settings = Settings(slack_bot_token=BOT_TOKEN, slack_signing_secret=SIGNING_SECRET, slack_api_url=fake.api_url,
                        database_url=url, _env_file=None)
    engine = make_engine(settings.database)
    runtime = Runtime(settings=settings, engine=engine, clock=SystemClock(),
                      client=make_client(base_url=fake.api_url, token=BOT_TOKEN))
    executor = InlineExecutor()  # listeners run on the profiled thread (Bolt would use its pool)
    app = build_app(runtime, listener_executor=executor)
    sim = SlackSimulator(app, signing_secret=SIGNING_SECRET, team_id=TEAM_ID,
                         response_url_base=fake.response_url("x").rsplit("/", 1)[0])
    workload = Workload(seeded, "", "", rng)
    statements: dict[str, list[float]] = defaultdict(list)
    current: list[list[float]] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _before(conn, cursor, statement, parameters, context, executemany):
        conn.info["t0"] = time.perf_counter()

    @event.listens_for(engine, "after_cursor_execute")
    def _after(conn, cursor, statement, parameters, context, executemany):
        elapsed = time.perf_counter() - conn.info.pop("t0", time.perf_counter())
        statements[SELECT_LIST.sub("SELECT … FROM ", " ".join(statement.split()), count=1)[:300]].append(elapsed)
        if current:
            current[-1].append(elapsed)

    kinds = {
        "show": lambda: sim.command(Person(rng.choice(REPS), "rep", TEAM_ID), "C0BENCH", workload.show_text()[0]),
        "list mine": lambda: sim.command(Person(rng.choice(REPS), "rep", TEAM_ID), "C0BENCH", "list mine"),
        "picker": lambda: sim.options(Person(rng.choice(REPS), "rep", TEAM_ID), action_id="customer_picker",
                                      value=workload.typed()),
    }
    try:
        for kind, call in kinds.items():
            call()  # warm caches and templates
            statements.clear()
            current.clear()
            profiler = cProfile.Profile()
            wall: list[float] = []
            for _ in range(requests_each):
                current.append([])
                t0 = time.perf_counter()
                profiler.enable()
                response = call()
                profiler.disable()
                wall.append((time.perf_counter() - t0) * 1000)
                assert response.status == 200, (kind, response.status, response.body[:200])
            sql_ms = [sum(times) * 1000 for times in current]
            print(f"\n== profile: {kind} ({requests_each} requests in-process) ==")
            print(f"wall p50 {percentile(wall, 50):.1f} ms, p95 {percentile(wall, 95):.1f} ms; SQL per request: "
                  f"{sum(len(c) for c in current) / len(current):.1f} statements, p50 {percentile(sql_ms, 50):.1f} ms,"
                  f" p95 {percentile(sql_ms, 95):.1f} ms")
            print("slowest statements (total ms / calls / mean ms):")
            ranked = sorted(statements.items(), key=lambda item: -sum(item[1]))[:6]
            for statement, times in ranked:
                print(f"  {sum(times) * 1000:8.1f} {len(times):5d} {sum(times) * 1000 / len(times):7.2f}  {statement}")
            for order, pattern, top, title in (
                ("cumulative", rf"{re.escape(str(ROOT))}/(bot|handlers|models)/", 14, "our code, by cumulative time"),
                ("tottime", "", 12, "hottest functions anywhere, by own time"),
            ):
                out = io.StringIO()
                stats = pstats.Stats(profiler, stream=out).sort_stats(order)
                stats.print_stats(*([pattern] if pattern else []), top)
                lines = [line.replace(str(ROOT) + "/", "").replace(SITE, "")
                         for line in out.getvalue().splitlines() if STATS_ROW.match(line)]
                print(f"{title} (calls, own s, cumulative s, where):")
                for line in lines:
                    parts = line.split(None, 5)
                    print(f"  {parts[0]:>7} {float(parts[1]):7.3f} {float(parts[3]):7.3f}  {parts[5]}")
    finally:
        engine.dispose()


# -- main ------------------------------------------------------------------------------------------------


def run_database(kind: str, url: str, args, fake: FakeSlack, tmp: Path, results: dict, baseline: dict | None,
                 rng: random.Random) -> dict | None:
    print(f"\n[{kind}] seeding {args.customers:,} customers, {args.touches:,} touches …", flush=True)
    seeded = seed(url, customers=args.customers, touches=args.touches, rng=rng)
    s = seeded.seconds
    print(f"[{kind}] seeded in {s['total']:.1f} s: migrate {s['migrate']:.1f} s, " + ", ".join(
        f"{label} {seeded.rows[label]:,} in {s[label]:.1f} s ({seeded.rows[label] / max(s[label], 1e-9):,.0f}/s)"
        for label in seeded.rows) + f", {'ANALYZE' if kind == 'postgresql' else 'WAL'} {s['finish']:.1f} s", flush=True)
    env = {**os.environ, "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET,
           "SLACK_API_URL": fake.api_url, "DATABASE_URL": url, "PYTHONUNBUFFERED": "1", "LOG_LEVEL": "WARNING"}
    for var in ("SLACK_APP_TOKEN", "SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET"):
        env.pop(var, None)
    rapport = Server(f"rapport-{kind}", lambda port: [str(VENV_BIN / "rapport"), "serve", "--host", HOST, "--port",
                                                      str(port), "--no-scheduler"], env, cwd=tmp, log_dir=tmp,
                     timeout=120)
    bare = None
    try:
        print(f"[{kind}] rapport serve up in {rapport.start():.1f} s", flush=True)
        response_url = fake.response_url("bench")
        workload = Workload(seeded, rapport.events, response_url, rng)
        if baseline is None:
            # The baseline answers with a real card of a key account (the largest cards), captured here.
            body, headers = signed_command(SIGNING_SECRET, text=f'show "{seeded.key_names[0]}"', team_id=TEAM_ID,
                                           user_id=REPS[0], response_url=response_url)
            card = requests.post(rapport.events, data=body.encode(), headers=headers, timeout=10).json()
            payload_path = tmp / "card.json"
            payload_path.write_text(json.dumps(card))
            # Two baselines: Bolt as it comes (the target's), and Bolt answering on the request thread
            # (process_before_response), which skips the 10 ms ack polling the way Rapport's pool does.
            for key, label, flags in (("baseline", "baseline", []),
                                      ("baseline_no_poll", "baseline, no ack polling", ["--process-before-response"])):
                bare = Server(key, lambda port, flags=flags: [
                    sys.executable, str(ROOT / "bench" / "bare_bolt_app.py"), "--host", HOST, "--port", str(port),
                    "--payload", str(payload_path), *flags], env, cwd=tmp, log_dir=tmp)
                bare.start()
                figures = measure(baseline_send(bare.events, response_url), rate=args.rate, seconds=args.seconds)
                figures["card_bytes"] = len(payload_path.read_bytes())
                bare.stop()
                results[key] = figures
                print(f"[{label}] static card of {figures['card_bytes']:,} bytes: p50 {figures['p50']:.1f} ms, "
                      f"p99 {figures['p99']:.1f} ms", flush=True)
            baseline = results["baseline"]
        figures = {}
        for label, send, seconds in (("show", workload.send_show, args.seconds),
                                     ("list mine", workload.send_list, args.seconds * 2 / 3),
                                     ("picker", workload.send_picker, args.seconds * 2 / 3)):
            figures[label] = measure(send, rate=args.rate, seconds=seconds)
            f = figures[label]
            print(f"[{kind}] {label:<9} p50 {f['p50']:6.1f} ms  p95 {f['p95']:6.1f} ms  p99 {f['p99']:6.1f} ms  "
                  f"errors {f['errors']}", flush=True)
        figures["seeding_s"] = seeded.seconds
        results[kind] = figures
    finally:
        rapport.stop()
        if bare is not None:
            bare.stop()
    if args.profile:
        profile(url, seeded, fake, rng)
    return baseline


def report(results: dict) -> list[tuple[str, bool]]:
    base, no_poll = results["baseline"], results["baseline_no_poll"]
    rows = [("baseline (static card)", base), ("baseline, no ack polling", no_poll)]
    for kind in ("sqlite", "postgresql"):
        for label in ("show", "list mine", "picker"):
            if kind in results:
                rows.append((f"{kind} {label}", results[kind][label]))
    print(f"\n{'':<24} {'n':>5} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8} {'p99/base':>9} "
          f"{'/no-poll':>9} {'errors':>7}")
    for label, f in rows:
        print(f"{label:<24} {f['n']:>5} {f['p50']:>8.1f} {f['p95']:>8.1f} {f['p99']:>8.1f} {f['max']:>8.1f} "
              f"{f['p99'] / base['p99']:>8.2f}x {f['p99'] / no_poll['p99']:>8.2f}x {f['errors']:>7}")
        for example in f["error_examples"]:
            print(f"{'':<26}e.g. {example}")
    verdicts = []
    for kind in ("sqlite", "postgresql"):
        if kind not in results:
            continue
        show, picker = results[kind]["show"], results[kind]["picker"]
        clean = show["errors"] == 0 and picker["errors"] == 0
        verdicts += [
            (f"[{kind}] /crm show p99 {show['p99']:.1f} ms < {TARGET_SHOW_P99_MS:.0f} ms", show["p99"] < TARGET_SHOW_P99_MS),
            (f"[{kind}] /crm show p99 {show['p99'] / base['p99']:.2f}x baseline <= {TARGET_SHOW_RATIO:.0f}x",
             show["p99"] <= TARGET_SHOW_RATIO * base["p99"]),
            (f"[{kind}] picker p95 {picker['p95']:.1f} ms < {TARGET_PICKER_P95_MS:.0f} ms",
             picker["p95"] < TARGET_PICKER_P95_MS),
            (f"[{kind}] no errors", clean),
        ]
    print()
    for line, ok in verdicts:
        print(f"{'PASS' if ok else 'FAIL'}  {line}")
    return verdicts


def main() -> int:
    parser = argparse.ArgumentParser(description="Customer look-ups over 100,000 customers, Rapport vs bare Bolt")
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--touches", type=int, default=1_000_000)
    parser.add_argument("--rate", type=float, default=20.0, help="requests per second (open loop)")
    parser.add_argument("--seconds", type=float, default=15.0, help="seconds of `show` (list and picker: 2/3)")
    parser.add_argument("--profile", action="store_true", help="then profile the requests in-process")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (database, server logs)")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON to PATH")
    parser.add_argument("--seed", type=int, default=7, help="random seed for the data set and the requests")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind through the finally blocks

    rng = random.Random(args.seed)
    tmp = Path(tempfile.mkdtemp(prefix="rapport-bench-customers-"))
    fake = FakeSlack(team_id=TEAM_ID).start()
    for rep in REPS:
        fake.add_user(rep, name=rep.lower(), team_id=TEAM_ID, tz="Europe/Berlin")
    pg_admin_url = os.environ.get("RAPPORT_BENCH_POSTGRES_URL")
    pg_name = None
    results: dict = {}
    started = time.perf_counter()
    # Other work on this machine skews every figure: say how busy it was.
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} CPUs)")
    try:
        baseline = run_database("sqlite", f"sqlite:///{tmp / 'bench.db'}", args, fake, tmp, results, None, rng)
        if pg_admin_url:
            pg_name = f"rapport_bench_{uuid.uuid4().hex[:8]}"
            admin = create_engine(pg_admin_url, isolation_level="AUTOCOMMIT")
            with admin.connect() as connection:
                connection.execute(text(f'CREATE DATABASE "{pg_name}"'))
            pg_url = make_url(pg_admin_url).set(database=pg_name).render_as_string(hide_password=False)
            run_database("postgresql", pg_url, args, fake, tmp, results, baseline, rng)
        verdicts = report(results)
        print(f"\nwhole run {time.perf_counter() - started:.0f} s; load average at the end: "
              f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        if args.json:
            Path(args.json).write_text(json.dumps({"results": results, "verdicts": verdicts}, indent=2, default=str))
        return 0 if all(ok for _line, ok in verdicts) else 1
    finally:
        fake.stop()
        if pg_name:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)'))
            admin.dispose()
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
