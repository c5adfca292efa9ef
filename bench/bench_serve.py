"""`rapport serve` against a bare Bolt app on the same server: start-up time, memory, and latency under load.

    .venv/bin/python bench/bench_serve.py [--rate 50] [--seconds 20] [--rounds 2] [--starts 3] [--json PATH]

Both servers are subprocesses (waitress, 16 threads, slack_bolt's WSGI adapter) talking to one FakeSlack run in
this process. The baseline (bench/bare_bolt_app.py) answers `/crm` with the very payload Rapport's `/crm help`
returned, so the difference is what Rapport does around Bolt (middleware, database, router, templates).

1. Start-up: Popen to first 200 from GET /healthz (polled every 10 ms), alternately R, B, ``--starts`` times.
   Rapport's first start runs the migrations on a fresh SQLite database; later ones find it migrated.
2. Memory: RSS (VmRSS, with any children) of the kept servers after ~2 s idle, and after the load runs.
3. Latency: signed `/crm help` POSTs at a fixed open-loop rate (latency from each request's scheduled time to
   the end of its response), alternating R, B per round, each preceded by a 50-request warm-up.

The last line of stdout is ``RESULT {json}`` (also written to --json PATH when given).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import requests  # noqa: E402

from bench.common import (  # noqa: E402
    VENV_BIN,
    Server,
    cpu_seconds,
    open_loop,
    rss_kb,
    signed_command,
    summarize,
)
from bot.slack.fake import FakeSlack  # noqa: E402

TEAM_ID = "T0RAPPORT"
SIGNING_SECRET = "bench-signing-secret"  # a benchmark value, not a real secret
BOT_TOKEN = "xoxb-bench-token"
HOST = "127.0.0.1"
TARGET_P99_RATIO = 1.3
WARMUP_REQUESTS = 50
IDLE_SECONDS = 2.0
NAMES = {"rapport": "Rapport", "baseline": "bare Bolt"}


def send_help(url: str, response_url: str):
    """A `send` for open_loop: one freshly signed `/crm help`; ok = HTTP 200 with "blocks" in the JSON body."""

    def send(session: requests.Session):
        body, headers = signed_command(
            SIGNING_SECRET, text="help", team_id=TEAM_ID, response_url=response_url
        )
        response = session.post(url, data=body, headers=headers, timeout=10)
        if response.status_code != 200:
            return False, f"HTTP {response.status_code}"
        try:
            payload = response.json()
        except ValueError:
            return False, "body is not JSON"
        if not isinstance(payload, dict) or "blocks" not in payload:
            return False, "no blocks in body"
        return True, None

    return send


def capture_help(server: Server, response_url: str) -> dict:
    body, headers = signed_command(SIGNING_SECRET, text="help", team_id=TEAM_ID, response_url=response_url)
    response = requests.post(server.events, data=body, headers=headers, timeout=10)
    response.raise_for_status()
    payload = response.json()
    if "blocks" not in payload:
        raise RuntimeError(f"Rapport's /crm help has no blocks: {payload!r}")
    return payload


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f}"


def ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description="Rapport vs bare Bolt: start-up, memory, latency under load")
    parser.add_argument("--rate", type=float, default=50.0, help="requests per second (open loop)")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds per target per round")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of (Rapport, baseline)")
    parser.add_argument("--starts", type=int, default=3, help="start-up measurements per server")
    parser.add_argument("--workers", type=int, default=32, help="load-generator threads")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON to PATH")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (server logs) for inspection")
    args = parser.parse_args()

    # SIGTERM unwinds through the finally below like Ctrl-C does, so no server outlives the benchmark.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    load_before = os.getloadavg()
    tmp = Path(tempfile.mkdtemp(prefix="rapport-bench-"))
    fake = None
    servers: dict[str, Server] = {}
    try:
        fake = FakeSlack(team_id=TEAM_ID).start()
        response_url = fake.response_url("cmd")
        env = {
            **os.environ,
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": fake.api_url,
            "DATABASE_URL": f"sqlite:///{tmp / 'bench.db'}",
            "PYTHONUNBUFFERED": "1",
        }
        for var in ("SLACK_APP_TOKEN", "SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET"):
            env.pop(var, None)  # HTTP mode with a bot token, whatever the caller's environment says
        payload_path = tmp / "help.json"
        servers["rapport"] = Server(
            "rapport",
            lambda port: [str(VENV_BIN / "rapport"), "serve", "--host", HOST, "--port", str(port)],
            env,
            cwd=tmp,  # no stray .env from the checkout
            log_dir=tmp,
        )
        servers["baseline"] = Server(
            "baseline",
            lambda port: [
                sys.executable,
                str(ROOT / "bench" / "bare_bolt_app.py"),
                "--host",
                HOST,
                "--port",
                str(port),
                "--payload",
                str(payload_path),
            ],
            env,
            cwd=tmp,
            log_dir=tmp,
        )

        # 1. start-up, alternating; the last process of each is kept for the rest
        print(f"start-up: {args.starts} x (Rapport, bare Bolt), polling /healthz every 10 ms", flush=True)
        start_times: dict[str, list[float]] = {"rapport": [], "baseline": []}
        for i in range(args.starts):
            for name in ("rapport", "baseline"):
                seconds = servers[name].start()
                start_times[name].append(seconds)
                print(f"  {NAMES[name]:<9} start {i + 1}: {seconds:6.3f} s", flush=True)
                if name == "rapport" and i == 0:  # the baseline answers with exactly this payload
                    payload_path.write_text(json.dumps(capture_help(servers["rapport"], response_url)))
                if i < args.starts - 1:
                    servers[name].stop()

        # 2. idle memory
        time.sleep(IDLE_SECONDS)
        rss_idle = {name: rss_kb(s.proc.pid) for name, s in servers.items()}

        # 3. latency under load
        count = max(1, int(args.rate * args.seconds))
        samples: dict[str, list] = {"rapport": [], "baseline": []}
        rounds: list[dict] = []
        cpu_used = {"rapport": 0.0, "baseline": 0.0}
        print(
            f"load: {args.rate:g} req/s open loop, {count} requests x {args.rounds} rounds per server "
            f"(+{WARMUP_REQUESTS} warm-up), {args.workers} client threads",
            flush=True,
        )
        for r in range(args.rounds):
            for name in ("rapport", "baseline"):
                server = servers[name]
                send = send_help(f"{server.base}/slack/events", response_url)
                open_loop(send, rate=args.rate, count=WARMUP_REQUESTS, workers=args.workers)
                cpu_before = cpu_seconds(server.proc.pid)
                run = open_loop(send, rate=args.rate, count=count, workers=args.workers)
                cpu = cpu_seconds(server.proc.pid) - cpu_before
                cpu_used[name] += cpu
                samples[name].extend(run)
                stats = summarize([s.latency for s in run if s.ok])
                errors = sum(1 for s in run if not s.ok)
                rounds.append(
                    {
                        "round": r + 1,
                        "server": name,
                        **stats,
                        "errors": errors,
                        "server_cpu_ms_per_request": cpu * 1000 / len(run),
                    }
                )
                print(
                    f"  round {r + 1} {NAMES[name]:<9} p50 {ms(stats['p50'])} ms  p99 {ms(stats['p99'])} ms  "
                    f"max {ms(stats['max'])} ms  errors {errors}  server CPU {cpu * 1000 / len(run):.2f} ms/req",
                    flush=True,
                )
        rss_after = {name: rss_kb(s.proc.pid) for name, s in servers.items()}

        # figures
        latency = {}
        for name, runs in samples.items():
            stats = summarize([s.latency for s in runs if s.ok])
            errors = [s for s in runs if not s.ok]
            latency[name] = {
                **stats,
                "errors": len(errors),
                "error_examples": sorted({s.error or "?" for s in errors})[:3],
                "server_cpu_ms_per_request": cpu_used[name] * 1000 / max(1, len(runs)),
            }
        result = {
            "rate": args.rate,
            "seconds": args.seconds,
            "rounds": args.rounds,
            "requests_per_server": count * args.rounds,
            "startup_s": {
                name: {"all": times, "median": statistics.median(times), "first": times[0]}
                for name, times in start_times.items()
            },
            "startup_ratio_median": ratio(
                statistics.median(start_times["rapport"]), statistics.median(start_times["baseline"])
            ),
            "rss_kb": {name: {"idle": rss_idle[name], "after_load": rss_after[name]} for name in servers},
            "latency_s": latency,
            "latency_rounds": rounds,
            "p50_ratio": ratio(latency["rapport"]["p50"], latency["baseline"]["p50"]),
            "p99_ratio": ratio(latency["rapport"]["p99"], latency["baseline"]["p99"]),
        }
        # Both servers share this machine with the load generator and the fake (and with anything else running):
        # a high load average means noisy figures, which is why the runs alternate.
        result["cpus"] = os.cpu_count()
        result["loadavg_1m"] = {"before": load_before[0], "after": os.getloadavg()[0]}
        result["target_p99_ratio"] = TARGET_P99_RATIO
        result["pass"] = bool(result["p99_ratio"] <= TARGET_P99_RATIO)
        print_table(result)
        if args.json:
            Path(args.json).write_text(json.dumps(result, indent=2))
        print("RESULT " + json.dumps(result, separators=(",", ":")), flush=True)
        return 0
    finally:
        for server in servers.values():
            server.stop()
        if fake is not None:
            fake.stop()
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def print_table(result: dict) -> None:
    r, b = "rapport", "baseline"
    up, rss, lat = result["startup_s"], result["rss_kb"], result["latency_s"]
    rows = [
        (
            "start-up, median (s)",
            f"{up[r]['median']:.3f}",
            f"{up[b]['median']:.3f}",
            f"{result['startup_ratio_median']:.2f}x",
        ),
        (
            "start-up, first (s)",
            f"{up[r]['first']:.3f}",
            f"{up[b]['first']:.3f}",
            f"{ratio(up[r]['first'], up[b]['first']):.2f}x",
        ),
        (
            "RSS idle (MiB)",
            f"{rss[r]['idle'] / 1024:.1f}",
            f"{rss[b]['idle'] / 1024:.1f}",
            f"{ratio(rss[r]['idle'], rss[b]['idle']):.2f}x",
        ),
        (
            "RSS after load (MiB)",
            f"{rss[r]['after_load'] / 1024:.1f}",
            f"{rss[b]['after_load'] / 1024:.1f}",
            f"{ratio(rss[r]['after_load'], rss[b]['after_load']):.2f}x",
        ),
    ]
    for key in ("p50", "p90", "p99", "max", "mean"):
        rows.append(
            (
                f"latency {key} (ms)",
                f"{lat[r][key] * 1000:.1f}",
                f"{lat[b][key] * 1000:.1f}",
                f"{ratio(lat[r][key], lat[b][key]):.2f}x",
            )
        )
    rows.append(("errors", str(lat[r]["errors"]), str(lat[b]["errors"]), ""))
    rows.append(
        (
            "server CPU per request (ms)",
            f"{lat[r]['server_cpu_ms_per_request']:.2f}",
            f"{lat[b]['server_cpu_ms_per_request']:.2f}",
            f"{ratio(lat[r]['server_cpu_ms_per_request'], lat[b]['server_cpu_ms_per_request']):.2f}x",
        )
    )
    width = max(len(row[0]) for row in rows)
    print()
    print(f"{'':<{width}}  {'Rapport':>10}  {'bare Bolt':>10}  {'ratio':>7}")
    for label, a, c, d in rows:
        print(f"{label:<{width}}  {a:>10}  {c:>10}  {d:>7}")
    print(
        f"start-up runs (s): Rapport {', '.join(f'{t:.3f}' for t in up[r]['all'])}; "
        f"bare Bolt {', '.join(f'{t:.3f}' for t in up[b]['all'])}  (Rapport's first migrates a fresh database)"
    )
    print(
        f"{result['requests_per_server']} requests per server at {result['rate']:g}/s; "
        f"p50 ratio {result['p50_ratio']:.2f}, p99 ratio {result['p99_ratio']:.2f}"
    )
    for name in (r, b):
        if lat[name]["errors"]:
            print(f"{NAMES[name]} errors, e.g.: {'; '.join(lat[name]['error_examples'])}")
    print(
        f"machine: {result['cpus']} CPUs, load average (1 min) {result['loadavg_1m']['before']:.2f} before, "
        f"{result['loadavg_1m']['after']:.2f} after"
    )
    if max(result["loadavg_1m"].values()) > (result["cpus"] or 1) * 0.75:
        print(
            "warning: the machine was busy with other work; start-up times and tail latencies (p99, max) are"
        )
        print(
            "         dominated by CPU contention then, so the p99 ratio (and the verdict below) is mostly noise"
        )
    verdict = "PASS" if result["pass"] else "FAIL"
    print(f"target: p99 ratio <= {result['target_p99_ratio']} -> {verdict}")


if __name__ == "__main__":
    sys.exit(main())
