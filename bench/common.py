"""Helpers shared by the benchmarks: percentiles, RSS, server processes, signed Slack requests, open-loop load.

Everything here is plain functions with simple arguments so other benchmarks can reuse them:

* ``percentile(values, p)`` / ``summarize(latencies)`` — latency statistics (seconds in, seconds out).
* ``rss_kb(pid)`` / ``cpu_seconds(pid)`` — resident memory / CPU time of a process and its descendants (/proc).
* ``free_port()``, ``start_process(argv, ...)``, ``wait_healthy(url, proc, started)``, ``stop_process(proc)``.
* ``slash_command_form(...)`` / ``signed_command(secret, ...)`` — a Slack slash-command body and its signed headers.
* ``open_loop(send, rate=..., count=...)`` — fixed-rate, open-loop load without coordinated omission.
"""

from __future__ import annotations

import itertools
import math
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import requests

from bot.slack.simulate import sign

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"

# -- statistics -----------------------------------------------------------------------------------------------


def batches(rows: Iterable, size: int) -> Iterator[list]:
    """Lists of `size` items from an iterable (the last one shorter), for bulk inserts while seeding."""
    batch = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (0..100) of ``values``, linearly interpolated between closest ranks; nan if empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    if len(ordered) == 1:
        return float(ordered[0])
    rank = (len(ordered) - 1) * p / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return float(ordered[low] + (ordered[high] - ordered[low]) * (rank - low))


def summarize(latencies: Sequence[float]) -> dict[str, float]:
    """{"n", "p50", "p90", "p99", "max", "mean"} of latencies in seconds (values stay in seconds)."""
    if not latencies:
        return {"n": 0, "p50": math.nan, "p90": math.nan, "p99": math.nan, "max": math.nan, "mean": math.nan}
    return {
        "n": len(latencies),
        "p50": percentile(latencies, 50),
        "p90": percentile(latencies, 90),
        "p99": percentile(latencies, 99),
        "max": float(max(latencies)),
        "mean": float(sum(latencies) / len(latencies)),
    }


# -- memory ---------------------------------------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    """Direct children of ``pid`` (from /proc/<pid>/task/*/children, falling back to a /proc scan)."""
    found: list[int] = []
    task_dir = Path(f"/proc/{pid}/task")
    try:
        for task in task_dir.iterdir():
            try:
                found.extend(int(c) for c in (task / "children").read_text().split())
            except OSError:
                continue
        return found
    except OSError:
        pass
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Field 4 (ppid) follows the parenthesised command name, which may itself contain spaces.
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def _vmrss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_kb(pid: int, *, include_children: bool = True) -> int:
    """VmRSS of ``pid`` in kB (from /proc/<pid>/status), plus every descendant's when ``include_children``."""
    total = _vmrss_kb(pid)
    if include_children:
        seen = {pid}
        stack = _children(pid)
        while stack:
            child = stack.pop()
            if child in seen:
                continue
            seen.add(child)
            total += _vmrss_kb(child)
            stack.extend(_children(child))
    return total


def cpu_seconds(pid: int, *, include_children: bool = True) -> float:
    """User + system CPU time used so far by ``pid`` (and its live descendants), from /proc/<pid>/stat."""
    tick = os.sysconf("SC_CLK_TCK")
    pids = [pid]
    if include_children:
        seen, stack = {pid}, _children(pid)
        while stack:
            child = stack.pop()
            if child not in seen:
                seen.add(child)
                pids.append(child)
                stack.extend(_children(child))
    total = 0
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / tick


# -- processes ------------------------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_process(
    argv: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    cwd: str | Path | None = None,
    log_path: str | Path | None = None,
) -> tuple[subprocess.Popen, float]:
    """Start ``argv`` in its own process group; returns (process, time.perf_counter() just before Popen).

    Output (stdout and stderr) goes to ``log_path`` if given, else is discarded. Stop it with ``stop_process``.
    """
    out = open(log_path, "wb") if log_path else subprocess.DEVNULL  # noqa: SIM115 (closed with the process)
    started = time.perf_counter()
    proc = subprocess.Popen(
        list(argv),
        env=env,
        cwd=cwd,
        stdout=out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    if log_path:
        out.close()  # the child holds its own descriptor
    return proc, started


def wait_healthy(
    url: str, proc: subprocess.Popen, started: float, *, timeout: float = 60.0, interval: float = 0.01
) -> float:
    """Poll GET ``url`` every ``interval`` s until it answers 200; returns seconds since ``started``.

    Raises RuntimeError if the process exits first or ``timeout`` passes.
    """
    deadline = started + timeout
    with requests.Session() as session:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"process {proc.args!r} exited with {proc.returncode} before {url} was healthy"
                )
            try:
                if session.get(url, timeout=1.0).status_code == 200:
                    return time.perf_counter() - started
            except requests.RequestException:
                pass
            if time.perf_counter() > deadline:
                raise RuntimeError(f"{url} not healthy after {timeout:.0f} s")
            time.sleep(interval)


def stop_process(proc: subprocess.Popen | None, *, timeout: float = 5.0) -> None:
    """SIGTERM the process group, then SIGKILL it if still alive after ``timeout`` s. Safe to call twice."""
    if proc is None or proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, timeout)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


# -- Slack requests -------------------------------------------------------------------------------------------

_request_ids = itertools.count(1)


class Server:
    """One server subprocess on a free loopback port: each start is a fresh process with its own log, healthy
    once GET /healthz answers."""

    def __init__(self, name: str, argv_for_port, env: dict[str, str], *, cwd: Path, log_dir: Path,
                 timeout: float = 60.0):
        self.name, self.argv_for_port, self.env = name, argv_for_port, env
        self.cwd, self.log_dir, self.timeout = cwd, log_dir, timeout
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.starts = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def events(self) -> str:
        return f"{self.base}/slack/events"

    def start(self) -> float:
        """Start a fresh process; returns seconds from Popen to the first healthy /healthz."""
        self.stop()
        self.port = free_port()
        self.starts += 1
        log = self.log_dir / f"{self.name}-{self.starts}.log"
        self.proc, started = start_process(self.argv_for_port(self.port), env=self.env, cwd=self.cwd, log_path=log)
        try:
            return wait_healthy(f"{self.base}/healthz", self.proc, started, timeout=self.timeout)
        except RuntimeError:
            tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
            raise RuntimeError(f"{self.name} did not become healthy; log tail:\n{tail}") from None

    def stop(self) -> None:
        stop_process(self.proc)
        self.proc = None


def slash_command_form(
    *,
    command: str = "/crm",
    text: str = "help",
    team_id: str = "T0RAPPORT",
    response_url: str,
    user_id: str = "U0BENCH",
    channel_id: str = "C0BENCH",
    api_app_id: str = "A0RAPPORT",
) -> str:
    """The form-encoded body Slack POSTs for a slash command (fresh trigger_id each call)."""
    n = next(_request_ids)
    return urlencode(
        {
            "token": "legacy",
            "team_id": team_id,
            "team_domain": "rapport-bench",
            "channel_id": channel_id,
            "channel_name": "bench",
            "user_id": user_id,
            "user_name": "bench",
            "command": command,
            "text": text,
            "api_app_id": api_app_id,
            "response_url": response_url,
            "trigger_id": f"{n}.{int(time.time())}.bench",
        }
    )


def signed_command(secret: str, **form) -> tuple[str, dict[str, str]]:
    """(body, headers) for a slash command signed now with ``secret``; ``form`` goes to ``slash_command_form``."""
    body = slash_command_form(**form)
    headers = {"Content-Type": "application/x-www-form-urlencoded", **sign(secret, body)}
    return body, headers


# -- load -----------------------------------------------------------------------------------------------------


@dataclass
class Sample:
    """One request of a load run: seconds after the run's start it was due, its latency, and whether it passed."""

    scheduled: float
    latency: float
    ok: bool
    error: str | None = None


def open_loop(
    send: Callable[[requests.Session], bool | tuple[bool, str | None]],
    *,
    rate: float,
    count: int,
    workers: int = 32,
) -> list[Sample]:
    """Call ``send(session)`` ``count`` times at a fixed ``rate`` per second, open loop.

    Request i is due at start + i/rate whatever happened to earlier ones; its latency runs from that due time to
    the end of ``send`` (so time spent waiting for a free worker counts: no coordinated omission). Each worker
    thread has its own ``requests.Session``. ``send`` returns ok (or (ok, error text)); an exception is an error.
    Returns the samples in schedule order.
    """
    local = threading.local()
    samples: list[Sample | None] = [None] * count
    sessions: list[requests.Session] = []

    def session() -> requests.Session:
        s = getattr(local, "session", None)
        if s is None:
            s = local.session = requests.Session()
            sessions.append(s)
        return s

    def run(i: int, due: float) -> None:
        error = None
        try:
            result = send(session())
            ok, error = result if isinstance(result, tuple) else (bool(result), None)
        except Exception as exc:  # a failed request is a data point, not a crash
            ok, error = False, f"{type(exc).__name__}: {exc}"
        samples[i] = Sample(scheduled=due - start, latency=time.perf_counter() - due, ok=ok, error=error)

    with ThreadPoolExecutor(workers, thread_name_prefix="load") as pool:
        start = time.perf_counter() + 0.05
        for i in range(count):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            pool.submit(run, i, due)
    for s in sessions:
        s.close()
    return [s for s in samples if s is not None]
