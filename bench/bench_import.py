"""Benchmark of `rapport import`: rows/s and peak memory for 10k, 50k and 100k customers, on SQLite (and PostgreSQL).

    .venv/bin/python bench/bench_import.py [--sizes 10000,50000,100000]

Each import runs in its own subprocess against a fresh database, so its peak RSS (VmHWM) is its own. The 100k
file is then imported a second time into the same database (the update path: every row unchanged). A raw
`sqlite3` executemany of the same rows into equivalent tables is the floor to compare with. With
RAPPORT_BENCH_POSTGRES_URL set (e.g. from `scripts/pg start DIR`), the same runs are made on PostgreSQL, each in
a database created for it and dropped afterwards.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

WORKSPACE = "T0BENCH"
BY = "U0BENCHADMIN"
TARGET_ROWS_PER_S = 5000
FLAT_FACTOR = 1.3
PEOPLE = [(f"U0REP{i:02d}", f"rep{i}@bench.example") for i in range(20)]
TIERS = ["key", "general", "longtail", "关键", "普遍", "长尾"]
STAGES = ["prospect", "converting", "active", "expanding", "churned"]
ORGS = ["vendor", "supplier", "key_supplier", "strategic_partner"]
ROLES = ["decision_maker", "influencer", "evaluator", "user", "procurement", "champion"]


# -- the files -------------------------------------------------------------------------------------------------


def write_csv(path: Path, rows: int) -> None:
    """`rows` customers with 2 contacts each; owners alternate between user ids and e-mails."""
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["name", "tier", "stage", "org", "owner", "channel", "contacts"])
        for i in range(rows):
            user_id, email = PEOPLE[i % len(PEOPLE)]
            contacts = (f"Contact {i} A:{ROLES[i % 6]}:{i % 5 + 1}; "
                        f"Contact {i} B:{ROLES[(i + 3) % 6]}:{(i + 2) % 5 + 1}")
            writer.writerow([
                f"Customer {i:07d} 客户", TIERS[i % len(TIERS)], STAGES[i % len(STAGES)], ORGS[i % len(ORGS)],
                email if i % 2 else user_id, f"C{i:08d}" if i % 3 == 0 else "", contacts,
            ])


# -- one import, in a child process ----------------------------------------------------------------------------


def _queued() -> float:
    """Seconds this process has waited for a CPU while runnable (/proc/self/schedstat): a busy machine's toll."""
    try:
        return int(Path("/proc/self/schedstat").read_text().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


def _vm(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def child(url: str, path: str) -> None:
    """Import `path` into `url` (migrated, workspace and people created first); print figures as JSON."""
    from datetime import UTC, datetime

    from bot.db import make_engine, session_scope, upgrade
    from bot.services.transfer import import_customers
    from bot.services.workspaces import ensure_workspace
    from models import SlackUser

    engine = make_engine(url)
    upgrade(engine)
    now = datetime.now(UTC)
    with session_scope(engine) as session:
        ensure_workspace(session, workspace_id=WORKSPACE, now=now)
        for user_id, email in PEOPLE:
            if session.get(SlackUser, (WORKSPACE, user_id)) is None:
                session.add(SlackUser(workspace_id=WORKSPACE, user_id=user_id, email=email, fetched_at=now))
    before_kb = _vm("VmHWM")
    started, cpu_started, queued = time.perf_counter(), time.process_time(), _queued()
    with session_scope(engine) as session, open(path, encoding="utf-8-sig", newline="") as file:
        workspace = ensure_workspace(session, workspace_id=WORKSPACE, now=now)
        report = import_customers(session, workspace=workspace, rows=file, by=BY, now=now)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    queued = _queued() - queued
    engine.dispose()
    print(json.dumps({
        "queued_seconds": queued, "rows": report.rows, "created": report.created, "updated": report.updated, "unchanged": report.unchanged,
        "contacts_added": report.contacts_added, "bad": len(report.bad), "seconds": seconds, "cpu_seconds": cpu_seconds,
        "peak_kb": _vm("VmHWM"), "before_kb": before_kb,
    }))


def child_export(url: str, path: str) -> None:
    """Export the bench workspace of `url` to `path`; print figures as JSON."""
    from bot.db import make_engine, session_scope
    from bot.services.transfer import export_customers

    engine = make_engine(url)
    with session_scope(engine) as session:  # (connect first: the figures are the export's alone)
        session.connection()
    before_kb = _vm("VmHWM")
    started, cpu_started, queued = time.perf_counter(), time.process_time(), _queued()
    with session_scope(engine) as session, open(path, "w", encoding="utf-8", newline="") as out:
        count = export_customers(session, workspace_id=WORKSPACE, out=out)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    queued = _queued() - queued
    engine.dispose()
    print(json.dumps({"queued_seconds": queued, "rows": count, "seconds": seconds, "cpu_seconds": cpu_seconds, "peak_kb": _vm("VmHWM"),
                      "before_kb": before_kb}))


def run_child(url: str, path: Path, mode: str = "import") -> dict:
    done = subprocess.run(
        [sys.executable, __file__, "--child", mode, url, str(path)], capture_output=True, text=True, cwd=ROOT,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{mode} of {path.name} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- the floor: raw sqlite3 ------------------------------------------------------------------------------------


def raw_sqlite(path: Path, db: Path) -> dict:
    """Rows/s of a bare sqlite3 executemany of the same customers and contacts (no validation, no history)."""
    connection = sqlite3.connect(db, isolation_level=None)
    connection.executescript("""
        PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;
        CREATE TABLE customer (id INTEGER PRIMARY KEY, workspace_id VARCHAR(32) NOT NULL, name VARCHAR(200) NOT NULL,
            name_key VARCHAR(600) NOT NULL, tier VARCHAR(16) NOT NULL, stage VARCHAR(16) NOT NULL,
            org_relationship VARCHAR(24) NOT NULL, owner_id VARCHAR(32), channel_id VARCHAR(32),
            created_by VARCHAR(32), created_at DATETIME NOT NULL, updated_at DATETIME NOT NULL,
            last_touch_at DATETIME, revisit_due_at DATETIME NOT NULL, UNIQUE (workspace_id, name_key));
        CREATE INDEX ix_owner ON customer (workspace_id, owner_id);
        CREATE INDEX ix_tier ON customer (workspace_id, tier);
        CREATE INDEX ix_revisit ON customer (workspace_id, revisit_due_at);
        CREATE TABLE contact (id INTEGER PRIMARY KEY, workspace_id VARCHAR(32) NOT NULL,
            customer_id INTEGER NOT NULL REFERENCES customer (id), name VARCHAR(200) NOT NULL,
            name_key VARCHAR(600) NOT NULL, role VARCHAR(16) NOT NULL, level INTEGER NOT NULL,
            slack_user_id VARCHAR(32), created_at DATETIME NOT NULL, updated_at DATETIME NOT NULL,
            UNIQUE (customer_id, name_key));
        CREATE INDEX ix_contact_ws ON contact (workspace_id);
        CREATE INDEX ix_contact_customer ON contact (customer_id);
    """)
    now = "2026-11-23 09:00:00.000000"
    started, queued = time.perf_counter(), _queued()
    with path.open(encoding="utf-8", newline="") as file:
        reader = csv.reader(file)
        next(reader)
        rows = list(reader)
    connection.execute("BEGIN IMMEDIATE")
    connection.executemany(
        "INSERT INTO customer (workspace_id, name, name_key, tier, stage, org_relationship, owner_id, channel_id,"
        " created_by, created_at, updated_at, revisit_due_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
        ((WORKSPACE, r[0], r[0].lower(), r[1], r[2], r[3], r[4], r[5] or None, BY, now, now, now) for r in rows),
    )
    ids = dict(connection.execute("SELECT name, id FROM customer"))
    connection.executemany(
        "INSERT INTO contact (workspace_id, customer_id, name, name_key, role, level, created_at, updated_at)"
        " VALUES (?,?,?,?,?,?,?,?)",
        ((WORKSPACE, ids[r[0]], name, name.lower(), role, int(level), now, now)
         for r in rows for name, role, level in (part.strip().split(":") for part in r[6].split(";"))),
    )
    connection.execute("COMMIT")
    seconds, queued = time.perf_counter() - started, _queued() - queued
    connection.close()
    return {"rows": len(rows), "seconds": seconds, "queued_seconds": queued}


# -- PostgreSQL databases --------------------------------------------------------------------------------------


class PostgresDatabases:
    """A fresh database per run on the server of RAPPORT_BENCH_POSTGRES_URL, dropped when done."""

    def __init__(self, url: str):
        from sqlalchemy import create_engine
        from sqlalchemy.engine import make_url

        self.url = make_url(url)
        self.admin = create_engine(url, isolation_level="AUTOCOMMIT")

    def create(self) -> tuple[str, str]:
        from sqlalchemy import text

        name = f"bench_import_{uuid.uuid4().hex[:8]}"
        with self.admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        return name, self.url.set(database=name).render_as_string(hide_password=False)

    def drop(self, name: str) -> None:
        from sqlalchemy import text

        with self.admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


# -- the report -------------------------------------------------------------------------------------------------


def _mb(kb: int) -> str:
    return f"{kb / 1024:6.1f} MB"


def line(label: str, figures: dict) -> str:
    rate = figures["rows"] / figures["seconds"]
    grown = figures["peak_kb"] - figures["before_kb"]
    return (f"  {label:<20} {figures['rows']:>8,} rows {figures['seconds']:6.2f} s {rate:7,.0f} rows/s "
            f"({unqueued(figures):7,.0f} without the {figures['queued_seconds']:5.1f} s queued for a CPU)  "
            f"peak RSS {_mb(figures['peak_kb'])} (+{grown / 1024:.1f} MB during the run)")


def unqueued(figures: dict) -> float:
    """Rows/s had the machine been idle: wall time minus the time the process waited for a CPU (schedstat)."""
    return figures["rows"] / max(figures["seconds"] - figures["queued_seconds"], 1e-9)


def best(runs: list[dict]) -> dict:
    """The fastest of repeated runs (noise only ever slows a run down), with the highest peak RSS of them all."""
    fastest = min(runs, key=lambda figures: figures["seconds"])
    return {**fastest, "peak_kb": max(figures["peak_kb"] for figures in runs)}


def bench(database: str, files: dict[int, Path], make_url, drop, *, repeat: int) -> dict:
    """Imports of each file into a fresh database (best of `repeat`), then a re-import and an export of the
    largest; returns the figures."""
    results: dict = {}
    print(f"{database}:" + (f" (best of {repeat} runs each)" if repeat > 1 else ""))
    largest = max(files)
    for size, path in sorted(files.items()):
        runs = []
        for attempt in range(repeat):
            name, url = make_url(size)
            try:
                figures = run_child(url, path)
                assert figures["created"] == size and figures["bad"] == 0, figures
                runs.append(figures)
                if size != largest or attempt < repeat - 1:
                    continue
                results[size] = best(runs)
                print(line(f"import {size:,}", results[size]))
                again = [run_child(url, path) for _ in range(repeat)]
                assert all(a["unchanged"] == size and a["created"] == a["updated"] == 0 for a in again), again
                results["reimport"] = best(again)
                print(line(f"re-import {size:,}", results["reimport"]))
                out = path.with_suffix(".export.csv")
                dumped = [run_child(url, out, "export") for _ in range(repeat)]
                assert all(d["rows"] == size for d in dumped), dumped
                print(line(f"export {size:,}", best(dumped)))
                out.unlink()
            finally:
                drop(name)
        if size != largest:
            results[size] = best(runs)
            print(line(f"import {size:,}", results[size]))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,50000,100000", help="comma-separated numbers of customers")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each measurement; the fastest is shown")
    parser.add_argument("--child", nargs=3, metavar=("MODE", "URL", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, url, path = args.child
        (child if mode == "import" else child_export)(url, path)
        return
    sizes = [int(size) for size in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="rapport-bench-import-") as tmp:
        tmp_dir = Path(tmp)
        files = {}
        for size in sizes:
            files[size] = tmp_dir / f"customers_{size}.csv"
            write_csv(files[size], size)
        print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (rows/s are wall-clock; on a shared machine"
              " the time a run waited for a CPU is shown and taken out too)")
        print(f"files: {', '.join(f'{s:,} customers ({files[s].stat().st_size / 2**20:.1f} MB)' for s in sizes)}, "
              "2 contacts each")

        def sqlite_url(size):
            path = tmp_dir / f"bench_{size}_{uuid.uuid4().hex[:6]}.db"
            return path, f"sqlite:///{path}"

        def sqlite_drop(path):
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)

        results = bench("SQLite", files, sqlite_url, sqlite_drop, repeat=args.repeat)
        largest = max(sizes)
        raw_db = tmp_dir / "raw.db"
        raw_runs = []
        for _ in range(args.repeat):
            sqlite_drop(raw_db)
            raw_runs.append(raw_sqlite(files[largest], raw_db))
        raw = min(raw_runs, key=lambda figures: figures["seconds"])
        print(f"  raw sqlite3 executemany of the same {largest:,} customers and contacts: "
              f"{raw['rows'] / raw['seconds']:,.0f} rows/s ({unqueued(raw):,.0f} without the time queued for a CPU);"
              f" rapport import is {unqueued(results[largest]) / unqueued(raw):.2f}x of it (it also validates, "
              "resolves e-mails, checks duplicates and writes history)")

        postgres_url = os.environ.get("RAPPORT_BENCH_POSTGRES_URL")
        if postgres_url:
            databases = PostgresDatabases(postgres_url)
            bench("PostgreSQL", files, lambda size: databases.create(), databases.drop, repeat=args.repeat)
            databases.admin.dispose()
        else:
            print("PostgreSQL: skipped (set RAPPORT_BENCH_POSTGRES_URL to run it)")

    smallest = min(sizes)
    slowest = min(results[size]["rows"] / results[size]["seconds"] for size in sizes)
    slowest_unqueued = min(unqueued(results[size]) for size in sizes)
    ratio = results[largest]["peak_kb"] / results[smallest]["peak_kb"]
    print(f"target: >= {TARGET_ROWS_PER_S:,} rows/s on SQLite -> {'PASS' if slowest >= TARGET_ROWS_PER_S else 'FAIL'}"
          f" (slowest run {slowest:,.0f} rows/s wall-clock; {slowest_unqueued:,.0f} rows/s without the time queued for"
          f" a CPU on this machine: {'PASS' if slowest_unqueued >= TARGET_ROWS_PER_S else 'FAIL'})")
    print(f"memory: flat -> {'PASS' if ratio <= FLAT_FACTOR else 'FAIL'} "
          f"(peak at {largest:,} is {ratio:.2f}x the peak at {smallest:,}; limit {FLAT_FACTOR}x)")


if __name__ == "__main__":
    main()
