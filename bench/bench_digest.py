"""The weekly digest at scale: what the Monday job does (score every customer, save the week's snapshots, build the
key-account digest and render it), on SQLite and on PostgreSQL, at full size and at a tenth.

    .venv/bin/python bench/bench_digest.py [--customers 10000] [--key 1000] [--touches 1000000]
        [--answers 100000] [--scales 1,0.1] [--runs 2] [--json PATH]

    RAPPORT_BENCH_POSTGRES_URL=postgresql+psycopg://user@host/db   also run on PostgreSQL (a fresh database per
                                                                   run is created beside that one and dropped)

1. Seed (timed on its own): a fresh database migrated by Alembic, one workspace with 10,000 customers (1,000 key),
   2 contacts each (the second on Slack), 1,000,000 touches (customers' last_touch_at is their newest touch),
   100,000 survey answers (surveys of key and general accounts over the last 360 days, so within and beyond the
   180-day window, 4-10 answers each from a pool of 10 people per customer, 2 of whom are known Slack users),
   follow-ups (a third overdue), this month's relationship changes, and 7 weeks of health snapshots; SQLAlchemy
   Core executemany in batches of 10,000, one transaction.
2. Measure in a child process (so its peak RSS is the job's own), as `post_weekly` does: `score_workspace` over
   the key accounts + `save_snapshots` (one transaction), then `build_digest` from those scores, then rendering
   (`blocks_for` + `split`, reported apart). Wall and CPU time per phase, and the child's peak RSS (VmHWM). Run
   `--runs` times: the first inserts the week's snapshots (the Monday job), later ones replace them. Then once
   more over every customer, as the 6-hourly `refresh_snapshots` scores them, for reference.
3. Baseline in the same child: the SELECTs the job sent, replayed on a raw DBAPI cursor and fetched (the database's
   share of the work), and a plain `SELECT count(*)` of every table the job reads. Ratio = job / bare SQL.

Targets: Monday job (score + save + build) under 2 s, child peak RSS under 300 MB, at full size.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import column, create_engine, event, insert, table, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.pool import NullPool  # noqa: E402

from bench.common import VENV_BIN, batches, rss_kb  # noqa: E402

TEAM_ID = "T0BENCH"
BATCH = 10_000
REPS = [f"U0REP{n:02d}" for n in range(50)]
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # a Monday, digest time
TARGET_SECONDS = 2.0
TARGET_RSS_MB = 300.0
READ_TABLES = ("customer", "contact", "survey", "survey_response", "slack_user", "reminder", "health_snapshot",
               "relationship_change")


# -- databases -------------------------------------------------------------------------------------------------


class Database:
    """A fresh, migrated database of one kind; `drop()` removes it."""

    def __init__(self, kind: str, admin_url: str | None = None):
        from bot.db import make_engine, upgrade

        self.kind = kind
        if kind == "sqlite":
            self.dir = tempfile.mkdtemp(prefix="bench-digest-")
            self.url = f"sqlite:///{self.dir}/rapport.db"
        else:
            self.name = f"bench_digest_{uuid.uuid4().hex[:10]}"
            self.admin = create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
            with self.admin.connect() as connection:
                connection.execute(text(f'CREATE DATABASE "{self.name}"'))
            self.url = make_url(admin_url).set(database=self.name).render_as_string(hide_password=False)
        started = time.perf_counter()
        engine = make_engine(self.url)
        upgrade(engine)
        engine.dispose()
        self.migrate_s = time.perf_counter() - started

    def drop(self) -> None:
        if self.kind == "sqlite":
            for path in Path(self.dir).iterdir():
                path.unlink()
            Path(self.dir).rmdir()
        else:
            with self.admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
            self.admin.dispose()


def seeding_engine(url: str):
    """For bulk loading: on SQLite no journal, no fsync, no foreign-key checks and a large cache."""
    if make_url(url).get_backend_name() != "sqlite":
        from bot.db import make_engine

        return make_engine(url)
    engine = create_engine(url, poolclass=NullPool)

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection, _record):
        cursor = dbapi_connection.cursor()
        for pragma in ("journal_mode=OFF", "synchronous=OFF", "foreign_keys=OFF", "cache_size=-262144",
                       "temp_store=MEMORY"):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    return engine


# -- seeding ---------------------------------------------------------------------------------------------------


def seed(db: Database, *, customers: int, key: int, touches: int, answers: int, rng: random.Random) -> dict:
    """Bulk-insert the data set; returns seconds and rows per table."""
    from bot.db import make_engine, session_scope
    from bot.services.workspaces import ensure_workspace

    engine = make_engine(db.url)
    with session_scope(engine) as session:
        workspace = ensure_workspace(session, workspace_id=TEAM_ID, now=NOW - timedelta(days=800), name="Bench")
        workspace.digest_channel, workspace.managers = "C0MANAGERS", ["U0MEI"]
        session.add(workspace)
    engine.dispose()

    postgres = db.kind == "postgresql"
    # Times go in as the columns store them (naive UTC; on SQLite SQLAlchemy's text form) through lightweight
    # table() constructs, skipping per-value type processing; JSON goes in as its text.
    stamp = (lambda d: d.replace(tzinfo=None)) if postgres else (
        lambda d: d.replace(tzinfo=None).isoformat(" ", "microseconds"))
    day = (lambda d: d) if postgres else (lambda d: d.isoformat())
    now = NOW
    created = now - timedelta(days=730)
    tiers = ["key"] * key + [rng.choice(["general", "general", "longtail"]) for _ in range(customers - key)]
    rng.shuffle(tiers)
    cadence = {"key": 14, "general": 45, "longtail": 90}

    # Touches: key accounts get four times the share; every customer's last touch is its newest touch.
    share = [4 if t == "key" else 1 for t in tiers]
    per = touches / sum(share)
    counts = [int(s * per) for s in share]
    for i in rng.sample(range(customers), touches - sum(counts)):
        counts[i] += 1
    last_touch = [now - timedelta(days=rng.uniform(0, 60 if tiers[i] == "key" else 150), seconds=1)
                  for i in range(customers)]

    def customer_rows():
        for i in range(customers):
            name = f"Customer {i:06d} {rng.choice(['Systems', 'Foods', 'Energy', 'Labs', 'Motors'])}"
            yield {"id": i + 1, "workspace_id": TEAM_ID, "name": name, "name_key": name.casefold(), "tier": tiers[i],
                   "stage": "active", "org_relationship": rng.choice(["vendor", "supplier", "key_supplier",
                                                                      "strategic_partner"]),
                   "owner_id": REPS[i % len(REPS)], "channel_id": None, "created_by": REPS[i % len(REPS)],
                   "created_at": stamp(created), "updated_at": stamp(last_touch[i]),
                   "last_touch_at": stamp(last_touch[i]),
                   "revisit_due_at": stamp(last_touch[i] + timedelta(days=cadence[tiers[i]]))}

    def contact_rows():
        for i in range(customers):
            for j, (role, slack_id) in enumerate((("decision_maker", None), ("champion", f"U{i:06d}R0"))):
                person = f"Person {i}-{j}"
                yield {"id": 2 * i + j + 1, "workspace_id": TEAM_ID, "customer_id": i + 1, "name": person,
                       "name_key": person.casefold(), "role": role, "level": rng.randint(1, 5),
                       "slack_user_id": slack_id, "created_at": stamp(created), "updated_at": stamp(created)}

    def slack_user_rows():  # two more of each customer's people are known Slack users (Slack Connect)
        for i in range(customers):
            for r in (1, 2):
                yield {"workspace_id": TEAM_ID, "user_id": f"U{i:06d}R{r}", "team_id": "T0CUSTOMER",
                       "name": f"Buyer {i}-{r}", "email": None, "tz": "UTC", "is_admin": False, "is_owner": False,
                       "is_restricted": False, "is_bot": False, "deleted": False, "fetched_at": stamp(now)}

    def touch_rows():
        random_ = rng.random
        for i, n in enumerate(counts):
            owner = REPS[i % len(REPS)]
            span = (last_touch[i] - created).total_seconds()
            for k in range(n):
                at = stamp(last_touch[i] if k == 0 else created + timedelta(seconds=random_() * span))
                yield {"workspace_id": TEAM_ID, "customer_id": i + 1, "kind": "call", "summary": "Discussed the renewal.",
                       "by_user": owner, "at": at, "contact_id": None, "link": None, "created_at": at}

    # Surveys: key accounts five times as often, sent over the last 360 days; 4-10 answers each.
    sizes = []
    while sum(sizes) < answers:
        sizes.append(min(rng.randint(4, 10), answers - sum(sizes)))
    surveyed = rng.choices(range(customers), [5 if t == "key" else 1 for t in tiers], k=len(sizes))
    surveys = [(i, now - timedelta(days=rng.uniform(0, 360)), n, rng.choice(["nps", "csat"]))
               for i, n in zip(surveyed, sizes, strict=True)]

    def survey_rows():
        for s, (i, sent, _n, kind) in enumerate(surveys):
            yield {"id": s + 1, "workspace_id": TEAM_ID, "customer_id": i + 1, "kind": kind,
                   "channel_id": f"C{i:06d}", "message_ts": None, "status": "closed", "forced": False,
                   "created_by": REPS[i % len(REPS)], "created_at": stamp(sent),
                   "closes_at": stamp(sent + timedelta(days=7)), "closed_at": stamp(sent + timedelta(days=7)),
                   "shown_count": 0, "message_updated_at": None, "summary_sent_at": None}

    def answer_rows():
        for s, (i, sent, n, kind) in enumerate(surveys):
            for r in rng.sample(range(10), n):
                at = stamp(sent + timedelta(hours=rng.uniform(0, 150)))
                score = rng.randint(0, 10) if kind == "nps" else rng.randint(1, 5)
                yield {"workspace_id": TEAM_ID, "survey_id": s + 1, "customer_id": i + 1,
                       "respondent_id": f"U{i:06d}R{r}", "respondent_team_id": "T0CUSTOMER", "score": score,
                       "comment": "Slow answers from support." if score <= 2 else None,
                       "answered_at": at, "updated_at": at}

    def reminder_rows():
        for i in rng.sample(range(customers), customers // 5):
            due = now + timedelta(days=rng.uniform(-10, 20))
            yield {"workspace_id": TEAM_ID, "customer_id": i + 1, "kind": "followup", "source": "manual",
                   "owner_id": REPS[i % len(REPS)], "note": "Send the proposal", "due_at": stamp(due),
                   "deliver_at": stamp(due), "next_attempt_at": stamp(due),
                   "status": "delivered" if due <= now else "pending", "attempts": 0, "late": False,
                   "created_by": REPS[i % len(REPS)], "created_at": stamp(due - timedelta(days=7))}

    def change_rows():
        for i in rng.sample(range(customers), customers // 20):
            before = rng.randint(1, 5)
            after = min(5, max(1, before + rng.choice([-1, 1])))
            yield {"workspace_id": TEAM_ID, "customer_id": i + 1, "field": "level", "contact_id": 2 * i + 1,
                   "from_value": str(before), "to_value": str(after), "by_user": REPS[i % len(REPS)],
                   "at": stamp(now - timedelta(days=rng.uniform(0, 30))), "reason": None}

    this_week = (now - timedelta(days=now.weekday())).date()
    components = json.dumps({name: {"value": 60.0, "reason": "as last week"}
                             for name in ("engagement", "satisfaction", "relationship", "followup")})

    def snapshot_rows():
        for i in range(customers):
            base = rng.uniform(10, 95)
            for w in range(1, 8):
                score = round(min(100.0, max(0.0, base + rng.uniform(-15, 15))), 1)
                band = "healthy" if score >= 70 else "watch" if score >= 40 else "at_risk"
                yield {"workspace_id": TEAM_ID, "customer_id": i + 1, "week_start": day(this_week - timedelta(weeks=w)),
                       "score": score, "band": band, "components": components, "reasons": '["as last week"]',
                       "computed_at": stamp(now - timedelta(weeks=w))}

    result = {"seconds": {"migrate": db.migrate_s}, "rows": {}}
    engine = seeding_engine(db.url)
    started = time.perf_counter()
    from models import (
        Contact,
        Customer,
        HealthSnapshot,
        Interaction,
        RelationshipChange,
        Reminder,
        SlackUser,
        Survey,
        SurveyResponse,
    )

    with engine.begin() as connection:
        for label, model, rows in (("customers", Customer, customer_rows()), ("contacts", Contact, contact_rows()),
                                   ("slack users", SlackUser, slack_user_rows()),
                                   ("touches", Interaction, touch_rows()), ("surveys", Survey, survey_rows()),
                                   ("answers", SurveyResponse, answer_rows()),
                                   ("follow-ups", Reminder, reminder_rows()),
                                   ("changes", RelationshipChange, change_rows()),
                                   ("snapshots", HealthSnapshot, snapshot_rows())):
            t0, n = time.perf_counter(), 0
            statement = insert(table(model.__tablename__, *(column(c.name) for c in model.__table__.columns)))
            for batch in batches(rows, BATCH):
                connection.execute(statement, batch)
                n += len(batch)
            result["seconds"][label], result["rows"][label] = time.perf_counter() - t0, n
        if postgres:  # explicit ids were given: move the sequences past them
            for name in ("customer", "contact", "survey"):
                connection.execute(text(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                                        f"(SELECT max(id) FROM {name}))"))
    t0 = time.perf_counter()
    if postgres:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("ANALYZE"))  # what autovacuum would do soon after a load like this
    else:
        with engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA journal_mode=WAL")
    result["seconds"]["finish"] = time.perf_counter() - t0
    result["seconds"]["seed total"] = time.perf_counter() - started
    engine.dispose()
    return result


# -- the measured job, in a child process ----------------------------------------------------------------------


def child(url: str, runs: int) -> dict:
    """Run the weekly job `runs` times and the baselines; returns timings, CPU and peak RSS (printed as JSON)."""
    from bot.db import make_engine, session_scope
    from bot.services import digest as digest_svc
    from bot.services import health
    from bot.slack.digest import blocks_for, split
    from models import Workspace

    engine = make_engine(url)
    with engine.connect():  # connect (and pool) before timing, as a running bot would be
        pass
    rss_start_kb = rss_kb(os.getpid(), include_children=False)
    statements: list[tuple[str, object]] = []

    def record(_conn, _cursor, statement, parameters, _context, executemany):
        if not executemany and statement.lstrip().upper().startswith("SELECT"):
            statements.append((statement, parameters))

    results = []
    for run in range(runs + 1):
        # post_weekly scores and saves the key accounts only; the last run is, for reference, the 6-hourly
        # refresh_snapshots over every customer (which builds no digest, but is measured the same way).
        tier = None if run == runs else "key"
        statements.clear()
        event.listen(engine, "before_cursor_execute", record)
        cpu0, t0 = time.process_time(), time.perf_counter()
        with session_scope(engine) as session:  # as post_weekly: score and save in the claim's transaction
            workspace = session.get(Workspace, TEAM_ID)
            scored = health.score_workspace(session, workspace=workspace, now=NOW, tier=tier)
            cpu_scored, t_scored = time.process_time(), time.perf_counter()
            health.save_snapshots(session, workspace=workspace, scored=scored, now=NOW)
        cpu_saved, t_saved = time.process_time(), time.perf_counter()
        with session_scope(engine) as session:
            workspace = session.get(Workspace, TEAM_ID)
            built = digest_svc.build_digest(session, workspace=workspace, now=NOW, scored=scored)
        cpu_built, t_built = time.process_time(), time.perf_counter()
        event.remove(engine, "before_cursor_execute", record)
        messages = split(blocks_for(built, workspace))
        t_rendered = time.perf_counter()
        del scored
        # Baseline: the same SELECTs on a raw DBAPI cursor, rows fetched, no ORM and no Python scoring.
        raw = engine.raw_connection()
        try:
            cursor = raw.cursor()
            b0 = time.perf_counter()
            fetched = 0
            for statement, parameters in statements:
                cursor.execute(statement, parameters)
                fetched += len(cursor.fetchall())
            bare = time.perf_counter() - b0
            c0 = time.perf_counter()
            for name in READ_TABLES:
                cursor.execute(f"SELECT count(*) FROM {name}")  # noqa: S608 (our own table names)
                cursor.fetchall()
            counts = time.perf_counter() - c0
            cursor.close()
            raw.rollback()
        finally:
            raw.close()
        results.append({
            "scope": tier or "workspace", "score": t_scored - t0, "save": t_saved - t_scored, "build": t_built - t_saved,
            "job": t_built - t0, "render": t_rendered - t_built, "cpu": cpu_built - cpu0,
            "cpu_score": cpu_scored - cpu0, "cpu_save": cpu_saved - cpu_scored, "cpu_build": cpu_built - cpu_saved,
            "selects": len(statements),
            "rows_fetched": fetched, "bare_sql": bare, "count_scan": counts, "accounts": built.total,
            "messages": len(messages), "blocks": sum(len(m) for m in messages),
        })
    engine.dispose()
    # VmHWM, not ru_maxrss: Linux carries the forking parent's high-water mark into ru_maxrss across exec, and
    # the parent held the seeding data.
    return {"runs": results, "rss_start_mb": rss_start_kb / 1024, "peak_rss_mb": peak_rss_kb() / 1024}


def peak_rss_kb() -> int:
    """This process's peak resident set (VmHWM), in kB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def measure(url: str, runs: int) -> dict:
    started = time.perf_counter()
    proc = subprocess.run([str(VENV_BIN / "python"), __file__, "--child", url, "--runs", str(runs)],
                          capture_output=True, text=True, cwd=ROOT, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"the measuring process failed:\n{proc.stderr[-4000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["process_wall"] = time.perf_counter() - started
    return result


# -- reporting -------------------------------------------------------------------------------------------------


def report(kind: str, scale: float, sizes: dict, seeded: dict, measured: dict) -> dict:
    print(f"\n== {kind}, scale {scale:g}: {sizes['customers']:,} customers ({sizes['key']:,} key), "
          f"{sizes['touches']:,} touches, {sizes['answers']:,} answers")
    s = seeded["seconds"]
    print("  seed: " + ", ".join(f"{label} {seconds:.1f} s" for label, seconds in s.items()))
    print(f"  child process: {measured['process_wall']:.1f} s wall with start-up; RSS after imports "
          f"{measured['rss_start_mb']:.0f} MB, peak {measured['peak_rss_mb']:.0f} MB")
    for n, run in enumerate(measured["runs"], start=1):
        what = ("Monday job, as post_weekly: key accounts (inserts snapshots)" if n == 1
                else "for reference, every customer as refresh_snapshots scores them" if run["scope"] == "workspace"
                else "again (replaces snapshots)")
        ratio = run["job"] / run["bare_sql"] if run["bare_sql"] else float("nan")
        print(f"  run {n}, {what}: job {run['job']:.2f} s = score {run['score']:.2f} + save {run['save']:.2f} "
              f"+ build {run['build']:.2f}; render {run['render']:.2f} s ({run['messages']} messages, "
              f"{run['blocks']} blocks, {run['accounts']} key accounts)")
        print(f"         CPU of the job {run['cpu']:.2f} s = {run['cpu_score']:.2f} + {run['cpu_save']:.2f} + "
              f"{run['cpu_build']:.2f} (this process: SQLite's work included, PostgreSQL's is in its server)")
        print(f"         baseline: the job's {run['selects']} SELECTs replayed bare {run['bare_sql']:.2f} s "
              f"({run['rows_fetched']:,} rows) → job/bare ×{ratio:.1f}; count(*) of {len(READ_TABLES)} tables "
              f"{run['count_scan']:.2f} s")
    first = measured["runs"][0]
    verdict = {"job_s": first["job"], "peak_rss_mb": measured["peak_rss_mb"],
               "job_ok": first["job"] < TARGET_SECONDS, "rss_ok": measured["peak_rss_mb"] < TARGET_RSS_MB}
    print(f"  target: job {first['job']:.2f} s < {TARGET_SECONDS:g} s {'PASS' if verdict['job_ok'] else 'FAIL'}; "
          f"peak RSS {measured['peak_rss_mb']:.0f} MB < {TARGET_RSS_MB:g} MB "
          f"{'PASS' if verdict['rss_ok'] else 'FAIL'}")
    return verdict


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--key", type=int, default=1_000)
    parser.add_argument("--touches", type=int, default=1_000_000)
    parser.add_argument("--answers", type=int, default=100_000)
    parser.add_argument("--scales", default="1,0.1", help="fractions of the sizes to run, e.g. 1,0.1")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--only", choices=["sqlite", "postgresql"])
    parser.add_argument("--json", type=Path)
    parser.add_argument("--child", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.runs)))
        return 0

    kinds = [("sqlite", None)]
    pg_url = os.environ.get("RAPPORT_BENCH_POSTGRES_URL")
    if pg_url:
        kinds.append(("postgresql", pg_url))
    else:
        print("RAPPORT_BENCH_POSTGRES_URL not set: SQLite only")
    if args.only:
        kinds = [k for k in kinds if k[0] == args.only]
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (wall times stretch with load; CPU times"
          " much less)")
    results, ok = [], True
    for kind, admin in kinds:
        for scale in (float(x) for x in args.scales.split(",")):
            sizes = {name: max(1, round(getattr(args, name) * scale))
                     for name in ("customers", "key", "touches", "answers")}
            db = Database(kind, admin)
            try:
                seeded = seed(db, **sizes, rng=random.Random(48))
                measured = measure(db.url, args.runs)
            finally:
                db.drop()
            verdict = report(kind, scale, sizes, seeded, measured)
            if scale == 1:
                ok = ok and verdict["job_ok"] and verdict["rss_ok"]
            results.append({"database": kind, "scale": scale, "sizes": sizes, "seed": seeded, **measured,
                            "verdict": verdict})
    print("\n== how it scales (first run, the Monday job; 10× the data)")
    for kind, _admin in kinds:
        mine = sorted((r for r in results if r["database"] == kind), key=lambda r: r["scale"])
        for small, large in zip(mine, mine[1:], strict=False):
            a, b = small["runs"][0], large["runs"][0]
            print(f"  {kind}: scale {small['scale']:g} → {large['scale']:g}: job {a['job']:.2f} → {b['job']:.2f} s "
                  f"(×{b['job'] / a['job']:.1f}), CPU {a['cpu']:.2f} → {b['cpu']:.2f} s (×{b['cpu'] / a['cpu']:.1f}), "
                  f"peak RSS {small['peak_rss_mb']:.0f} → {large['peak_rss_mb']:.0f} MB")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
