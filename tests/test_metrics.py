"""GET /metrics: a real `rapport serve` answers in Prometheus' text format, and its counters move as Slack's
requests are answered and a reminder is delivered; every Web API attempt is counted by method, errors by code."""

import subprocess
import time
from datetime import UTC, datetime, timedelta

import pytest
import requests
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update
from sqlmodel import Session

from bot.db import make_engine
from bot.slack import presets
from bot.slack.client import make_client
from bot.slack.fake import FakeSlack
from models import Reminder, Workspace
from tests.test_serve import RAPPORT, SECRET, clean_env, command_body, free_port
from tests.test_serve_workspaces import wait_until

ALICE = "U0ALICE"


class Serve:
    """One `rapport serve` at a time on one SQLite file, talking to the fake Slack."""

    def __init__(self, tmp_path, fake):
        self.tmp_path, self.fake = tmp_path, fake
        self.url = f"sqlite:///{tmp_path}/metrics.db"
        self.proc, self.logs, self.stdout = None, [], ""

    def start(self, *, scheduler: bool, extra: tuple[str, ...] = ()) -> "Serve":
        port = free_port()
        env = clean_env(SLACK_BOT_TOKEN="xoxb-metrics", SLACK_SIGNING_SECRET=SECRET, SLACK_API_URL=self.fake.api_url,
                        DATABASE_URL=self.url)
        args = [RAPPORT, "serve", "--host", "127.0.0.1", "--port", str(port), *extra] + (
            [] if scheduler else ["--no-scheduler"])
        self.proc = subprocess.Popen(args, env=env, cwd=self.tmp_path, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.base}/healthz", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                time.sleep(0.05)
            assert self.proc.poll() is None, self.proc.communicate()
        raise AssertionError("rapport serve did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            out, err = self.proc.communicate(timeout=20)
            self.logs.append(err.decode())
            self.stdout = out.decode()
            self.proc = None

    def command(self, text: str) -> dict:
        body, headers = command_body(self.fake, text)
        answered = requests.post(f"{self.base}/slack/events", data=body, headers=headers, timeout=10)
        assert answered.status_code == 200, answered.text
        return answered.json() if answered.text else {}

    def metrics(self) -> dict[tuple[str, frozenset], float]:
        return scrape(self.base)


def scrape(base: str) -> dict[tuple[str, frozenset], float]:
    """GET /metrics, parsed by prometheus_client's own parser (a malformed line raises): sample → value."""
    answer = requests.get(f"{base}/metrics", timeout=10)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(answer.text) for sample in family.samples}


def healthy(base: str) -> bool:
    try:
        return requests.get(f"{base}/healthz", timeout=1).json() == {"ok": True}
    except requests.RequestException:  # not listening yet
        return False


def value(scrape: dict, name: str, **labels) -> float:
    return scrape.get((name, frozenset(labels.items())), 0.0)


def api_calls(scrape: dict) -> dict[str, float]:
    return {dict(labels)["method"]: count for (name, labels), count in scrape.items()
            if name == "rapport_slack_api_calls_total"}


def web_api_calls(fake) -> dict[str, float]:
    """The Web API calls the fake Slack answered, by method (posts to response URLs are not Web API calls)."""
    counted: dict[str, float] = {}
    for call in fake.calls():
        if call.method != "response_url":
            counted[call.method] = counted.get(call.method, 0) + 1
    return counted


@pytest.fixture
def fake():
    fake = FakeSlack(team_id=presets.HOME_TEAM).start()
    fake.add_user(ALICE, name="alice", team_id=presets.HOME_TEAM, tz="UTC")
    yield fake
    fake.stop()


def reminder_falls_due(url: str) -> None:
    """Two days pass (the serve process runs on the real clock, so the row is moved instead), inside hours."""
    now = datetime.now(UTC)
    engine = make_engine(url)
    with Session(engine) as session:
        session.exec(update(Reminder).values(due_at=now - timedelta(minutes=1), deliver_at=now - timedelta(minutes=1),
                                             next_attempt_at=now - timedelta(minutes=1)))
        session.exec(update(Workspace).values(work_days=[0, 1, 2, 3, 4, 5, 6], work_start="00:00",
                                              work_end="23:59"))
        session.commit()
    engine.dispose()


def one_reminder_counted_and_sent(delivered: dict, fake) -> None:
    """The scrape counts one reminder claimed, due and sent, none failed or paused; alice got its DM once."""
    assert value(delivered, "rapport_reminders_claimed_total") == 1
    assert value(delivered, "rapport_reminders_due_total") == 1
    assert value(delivered, "rapport_reminders_paused_total") == 0
    assert not [key for key in delivered if key[0] == "rapport_reminders_failed_total"]
    assert value(delivered, "rapport_slack_api_calls_total", method="chat.postMessage") >= 1
    assert value(delivered, "rapport_scheduler_tick_seconds_count", tick="deliver-reminders") >= 1
    dms = [c for c in fake.calls("chat.postMessage") if c.response.get("ok")
           and c.response["channel"] == fake.dm_channel(ALICE)]
    assert len(dms) == 1 and "Send the proposal" in str(dms[0].args["blocks"])


@pytest.mark.slow
def test_metrics_count_requests_slack_calls_and_a_delivered_reminder(tmp_path, fake):
    serve = Serve(tmp_path, fake)
    try:
        serve.start(scheduler=False)
        before = serve.metrics()
        assert value(before, "rapport_reminders_sent_total") == 0
        assert value(before, "rapport_requests_total", kind="command", status="200") == 0

        serve.command(f'add "Acme Corp" tier:key owner:<@{ALICE}|alice>')
        serve.command("remind acme in 2d Send the proposal")
        # Each call the fake saw, counted by its method (a listener's may still be under way after its ack).
        wait_until(lambda: api_calls(serve.metrics()) == web_api_calls(fake), 10)
        after = serve.metrics()
        assert value(after, "rapport_requests_total", kind="command", status="200") == 2
        assert value(after, "rapport_ack_seconds_count", kind="command") == 2
        assert 0 < value(after, "rapport_ack_seconds_sum", kind="command") < 6
        assert value(after, "rapport_ack_seconds_bucket", kind="command", le="3.0") == 2
        assert api_calls(after)["users.info"] >= 1  # who typed, and the owner's time zone
        serve.stop()

        reminder_falls_due(serve.url)
        serve.start(scheduler=True)  # the scheduler's pass at start delivers what is due
        wait_until(lambda: value(serve.metrics(), "rapport_reminders_sent_total") == 1, 30)
        delivered = serve.metrics()
        one_reminder_counted_and_sent(delivered, fake)
        assert sum(api_calls(delivered).values()) + sum(api_calls(after).values()) == sum(
            web_api_calls(fake).values())  # the first process's calls and the second's
    finally:
        serve.stop()
    logs = "\n".join(serve.logs) + serve.stdout
    assert "Traceback" not in logs, logs


def test_every_web_api_attempt_is_counted_by_method_and_errors_by_slack_error(fake_slack):
    client = make_client(base_url=fake_slack.api_url, token="xoxb-test")

    def sample(name, **labels):
        return REGISTRY.get_sample_value(name, labels) or 0.0

    calls = sample("rapport_slack_api_calls_total", method="users.info")
    not_found = sample("rapport_slack_api_errors_total", method="users.info", error="user_not_found")
    limited = sample("rapport_slack_api_errors_total", method="users.info", error="http_429")
    fake_slack.add_user("U0METRICS", name="metrics")
    fake_slack.inject("users.info", "ratelimited", retry_after=0)  # retried at once by slack_sdk's own handler
    assert client.users_info(user="U0METRICS")["ok"]
    fake_slack.inject("users.info", "user_not_found")
    with pytest.raises(Exception, match="user_not_found"):
        client.users_info(user="U0METRICS")
    assert sample("rapport_slack_api_calls_total", method="users.info") == calls + 3  # the 429, its retry, one more
    assert sample("rapport_slack_api_errors_total", method="users.info", error="http_429") == limited + 1
    assert sample("rapport_slack_api_errors_total", method="users.info", error="user_not_found") == not_found + 1


@pytest.mark.slow  # two Socket Mode processes, one after the other
def test_in_socket_mode_metrics_answer_on_their_port_and_count_a_delivered_reminder(tmp_path):
    from tests.test_serve_socket import TEAM, answer, slash_command, socket_processes

    fake = FakeSlack(team_id=TEAM, strict_tokens=True).start()
    presets.install(fake)
    url = f"sqlite:///{tmp_path}/socket.db"
    try:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        ops = ("--host", "127.0.0.1", "--metrics-port", str(port))
        with socket_processes(tmp_path, fake=fake, database=url, extra=("--no-scheduler", *ops)):
            wait_until(lambda: healthy(base), 10)
            assert value(scrape(base), "rapport_requests_total", kind="command", status="200") == 0
            server = fake.socket_mode
            for n, text in enumerate(['add "Acme Corp" tier:key', "remind acme in 2d Send the proposal"]):
                answer(server, server.deliver("slash_commands", slash_command(text, trigger_id=f"7.{n}")))
            wait_until(lambda: value(scrape(base), "rapport_requests_total", kind="command", status="200") == 2, 10)
            assert value(scrape(base), "rapport_ack_seconds_bucket", kind="command", le="3.0") == 2
            assert requests.get(f"{base}/slack/events", timeout=5).status_code == 404  # only metrics and health
        wait_until(lambda: not fake.socket_mode.open_connections(), 10)

        reminder_falls_due(url)
        with socket_processes(tmp_path, fake=fake, database=url, extra=ops):  # with its scheduler this time
            wait_until(lambda: value(scrape(base), "rapport_reminders_sent_total") == 1, 30)
            one_reminder_counted_and_sent(scrape(base), fake)
    finally:
        fake.stop()
