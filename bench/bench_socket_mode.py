"""Which of Bolt's Socket Mode adapters holds: each one runs Rapport's app against the fake Slack's Socket Mode
server, which then refreshes the connection, drops it abruptly (no close frame) and drops it silently (no more
pongs, nothing read). Measured: how long until a new connection is open, and how long a `/crm help` sent on it
right away waits for its ack (Slack's limit is 3 s; issue 10 asks for a replaced connection within 10 s).

    .venv/bin/python bench/bench_socket_mode.py [builtin websocket_client aiohttp rapport] [--ping SECONDS]

`rapport` is the adapter `rapport serve --socket` runs, with its own settings (bot/slack/socket_mode.py).
"""

import argparse
import asyncio
import logging
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.app import build_app  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.runtime import open_runtime  # noqa: E402
from bot.slack import presets  # noqa: E402
from bot.slack.fake import FakeSlack  # noqa: E402

GIVE_UP = 90.0  # seconds to wait for a new connection before calling it lost


def command(text: str, n: int) -> dict:
    return {"token": "legacy", "team_id": presets.HOME_TEAM, "channel_id": "C0SALES", "user_id": "U0ALICE",
            "user_name": "alice", "command": "/crm", "text": text, "api_app_id": "A0001",
            "trigger_id": f"9.{n}.{time.time_ns()}", "response_url": "http://127.0.0.1:9/response/bench"}


class Adapter:
    """One of Bolt's adapters around the app: connect() and close(), whatever its concurrency model."""

    def __init__(self, name: str, app, app_token: str, api_url: str, ping: float | None):
        self.name = name
        extra = {} if ping is None else {"ping_interval": ping}
        self.loop = None
        if name == "builtin":
            from slack_bolt.adapter.socket_mode import SocketModeHandler
            self.handler = SocketModeHandler(app, app_token, **extra)
        elif name == "websocket_client":
            from slack_bolt.adapter.socket_mode.websocket_client import SocketModeHandler
            self.handler = SocketModeHandler(app, app_token, **extra)
        elif name == "rapport":  # what rapport serve --socket runs (bot/slack/socket_mode.py)
            from bot.slack.socket_mode import RapportSocketModeHandler
            self.loop = asyncio.new_event_loop()
            threading.Thread(target=self.loop.run_forever, daemon=True).start()

            async def make_ours():
                return RapportSocketModeHandler(app, app_token, **extra)

            self.handler = asyncio.run_coroutine_threadsafe(make_ours(), self.loop).result(30)
        elif name == "aiohttp":
            from slack_bolt.adapter.socket_mode.aiohttp import SocketModeHandler
            from slack_sdk.web.async_client import AsyncWebClient
            self.loop = asyncio.new_event_loop()
            threading.Thread(target=self.loop.run_forever, daemon=True).start()

            async def make():  # its aiohttp session wants a running loop; its default web client is the app's
                return SocketModeHandler(app, app_token, web_client=AsyncWebClient(base_url=api_url), **extra)

            self.handler = asyncio.run_coroutine_threadsafe(make(), self.loop).result(30)
        else:
            raise SystemExit(f"unknown adapter {name}")

    def connect(self) -> None:
        if self.loop is None:
            self.handler.connect()
        else:
            asyncio.run_coroutine_threadsafe(self.handler.connect_async(), self.loop).result(30)

    def close(self) -> None:
        if self.loop is None:
            self.handler.close()
        else:
            asyncio.run_coroutine_threadsafe(self.handler.close_async(), self.loop).result(30)
            self.loop.call_soon_threadsafe(self.loop.stop)


def ack_seconds(server, n: int) -> float | None:
    sent = server.deliver("slash_commands", command("help", n))
    acks = server.wait_for_ack(sent.envelope_id, timeout=10)
    return acks[0].at - sent.at if acks else None


def replaced(server, old: int, started: float) -> tuple[float | None, float | None]:
    """Seconds until a connection newer than `old` is open, and the ack time of a command sent on it then."""
    new = server.wait_connected(after=old, timeout=GIVE_UP)
    if not new:
        return None, None
    return time.time() - started, ack_seconds(server, new[-1])


def run(name: str, ping: float | None) -> dict:
    fake = FakeSlack(team_id=presets.HOME_TEAM).start()
    presets.install(fake)
    with tempfile.TemporaryDirectory() as data:
        settings = Settings(slack_bot_token="xoxb-bench", slack_app_token="xapp-bench", slack_api_url=fake.api_url,
                            database_url=f"sqlite:///{data}/bench.db", log_level="WARNING", _env_file=None)
        runtime = open_runtime(settings)
        adapter = Adapter(name, build_app(runtime), "xapp-1-bench", fake.api_url, ping)
        server = fake.socket_mode
        result: dict = {"adapter": name, "ping": ping}
        try:
            adapter.connect()
            [first] = server.wait_connected(timeout=30)
            result["ack"] = ack_seconds(server, 1)
            started = time.time()
            server.refresh(first)
            result["refresh_new"], result["refresh_ack"] = replaced(server, first, started)
            current = server.open_connections()[-1]
            started = time.time()
            server.drop(current)
            result["drop_new"], result["drop_ack"] = replaced(server, current, started)
            current = server.open_connections()[-1]
            started = time.time()
            server.drop(current, silently=True)
            result["silent_new"], result["silent_ack"] = replaced(server, current, started)
        finally:
            adapter.close()
            runtime.engine.dispose()
            fake.stop()
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("adapters", nargs="*", default=["builtin", "websocket_client", "aiohttp", "rapport"])
    parser.add_argument("--ping", type=float, default=None, help="ping_interval (default: the adapter's)")
    options = parser.parse_args()
    logging.basicConfig(level=logging.CRITICAL)

    def show(value):
        return "lost" if value is None else f"{value:6.2f}"

    print("adapter           ping   ack  refresh:new   ack  drop:new   ack  silent:new   ack   (seconds)")
    for name in options.adapters:
        try:
            r = run(name, options.ping)
        except ImportError as missing:  # websocket-client is not a dependency of Rapport
            print(f"{name:16} not installed ({missing.name}): pip install it to measure", flush=True)
            continue
        print(f"{name:16} {show(r['ping']) if r['ping'] else ' dflt'} {show(r['ack'])} {show(r['refresh_new'])} "
              f"{show(r['refresh_ack'])} {show(r['drop_new'])} {show(r['drop_ack'])} {show(r['silent_new'])} "
              f"{show(r['silent_ack'])}", flush=True)


if __name__ == "__main__":
    main()
