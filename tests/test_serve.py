"""`rapport serve` as a real process: health check, signatures refused or accepted, missing settings, OAuth routes."""

import io
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

import pytest
import requests

from bot.slack import presets
from bot.slack.fake import FakeSlack
from bot.slack.simulate import sign

RAPPORT = str(Path(sys.executable).with_name("rapport"))
SECRET = "serve-test-secret"  # a test value


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DATABASE_URL"))}
    return {**env, **extra}


@pytest.fixture
def server(tmp_path):
    fake = FakeSlack(team_id=presets.HOME_TEAM).start()
    port = free_port()
    env = clean_env(SLACK_BOT_TOKEN="xoxb-serve", SLACK_SIGNING_SECRET=SECRET, SLACK_API_URL=fake.api_url,
                    DATABASE_URL=f"sqlite:///{tmp_path}/serve.db")
    proc = subprocess.Popen([RAPPORT, "serve", "--host", "127.0.0.1", "--port", str(port), "--no-scheduler"],
                            env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{base}/healthz", timeout=1).status_code == 200:
                break
        except requests.ConnectionError:
            time.sleep(0.05)
        assert proc.poll() is None, proc.stdout.read().decode()
    yield base, fake
    proc.terminate()
    proc.wait(timeout=10)
    fake.stop()
    # A clean start and ordinary requests alarm no operator (Bolt used to warn about the token at each start).
    logged = proc.stdout.read().decode()
    warnings = [line for line in logged.splitlines() if "WARNING" in line and "refused a request" not in line]
    assert not warnings and "Traceback" not in logged, logged


def command_body(fake, text="help", timestamp=None):
    body = urlencode({"token": "legacy", "team_id": presets.HOME_TEAM, "channel_id": "C0SALES", "user_id": "U0ALICE",
                      "user_name": "alice", "command": "/crm", "text": text, "api_app_id": "A0",
                      "response_url": fake.response_url("serve"), "trigger_id": "1.2.3"})
    return body, {"content-type": "application/x-www-form-urlencoded", **sign(SECRET, body, timestamp)}


def test_serve_answers_health_refuses_bad_signatures_and_answers_a_signed_help(server):
    base, fake = server
    assert requests.get(f"{base}/healthz", timeout=5).json() == {"ok": True}
    body, headers = command_body(fake)
    assert requests.post(f"{base}/slack/events", data=body, timeout=5,
                         headers={"content-type": headers["content-type"]}).status_code == 401
    _, stale = command_body(fake, timestamp=int(time.time()) - 6 * 60)
    assert requests.post(f"{base}/slack/events", data=body, headers=stale, timeout=5).status_code == 401
    answered = requests.post(f"{base}/slack/events", data=body, headers=headers, timeout=5)
    assert answered.status_code == 200
    assert "/crm help" in str(answered.json()["blocks"])


def test_serve_without_credentials_names_the_missing_settings(tmp_path):
    done = subprocess.run([RAPPORT, "serve"], env=clean_env(DATABASE_URL=f"sqlite:///{tmp_path}/x.db"), cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "SLACK_SIGNING_SECRET" in done.stderr and "SLACK_BOT_TOKEN" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_malformed_setting_is_one_clear_line(tmp_path):
    done = subprocess.run([RAPPORT, "serve"], env=clean_env(SLACK_BOT_TOKEN="abc", DATABASE_URL="mysql://x"),
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "SLACK_BOT_TOKEN" in done.stderr


def test_oauth_install_routes_exist_when_client_id_and_secret_are_set(tmp_path):
    from bot.app import build_app
    from bot.config import Settings
    from bot.runtime import open_runtime
    from bot.server import WsgiApp

    settings = Settings(slack_client_id="111.222", slack_client_secret="client-secret", slack_signing_secret=SECRET,
                        database_url=f"sqlite:///{tmp_path}/oauth.db", _env_file=None)
    runtime = open_runtime(settings)
    wsgi = WsgiApp(build_app(runtime), runtime.engine)
    seen = {}

    def start_response(status, headers):
        seen["status"], seen["headers"] = status, dict(headers)

    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/slack/install", "QUERY_STRING": "",
               "SERVER_PROTOCOL": "HTTP/1.1", "SERVER_NAME": "x", "SERVER_PORT": "80", "wsgi.url_scheme": "http",
               "wsgi.input": io.BytesIO(b"")}
    page = b"".join(wsgi(environ, start_response))
    assert seen["status"].startswith(("200", "302")), page[:500]
    install_link = page.decode() + str(seen["headers"].get("Location", ""))
    assert "client_id=111.222" in install_link and "state=" in install_link


def test_rapport_without_credentials_opens_the_console(tmp_path):
    done = subprocess.run([RAPPORT], input="/crm help\n", env=clean_env(), cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "opening the local console" in done.stderr
    assert "/crm help [subcommand]" in done.stdout


def test_demo_data_then_the_digest_and_the_survey_export_in_the_terminal(tmp_path):
    env = clean_env(DATABASE_URL=f"sqlite:///{tmp_path}/demo.db")

    def rapport(*args):
        done = subprocess.run([RAPPORT, *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout + done.stderr

    assert "created 10 demo customers" in rapport("demo-data")
    assert "nothing added" in rapport("demo-data")
    digest = rapport("digest")
    assert "Key-account digest · preview" in digest and "Initech" in digest and "At risk" in digest
    assert rapport("export", "surveys").startswith("survey_id,customer,kind")
