"""What every listener and job needs, passed in rather than reached for: settings, database, clock, Slack client."""

import os
import socket
import uuid
from dataclasses import dataclass, field
from typing import Any

from slack_sdk import WebClient
from sqlalchemy.engine import Engine

from bot.clock import Clock
from bot.config import Settings


def process_name() -> str:
    """Identifies this process in claims and leases (host, pid and a random part, unique across restarts)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    clock: Clock
    client: WebClient
    process: str = field(default_factory=process_name)
    # When each scheduled job last ran by this runtime's clock, so a moved clock runs each at its own pace.
    last_ticks: dict = field(default_factory=dict)
    # Each workspace's Slack client for background work (see client_for in bot/slack/client.py), made on first use.
    clients: Any = None


def open_runtime(settings: Settings, *, clock: Clock | None = None, migrate: bool = True) -> Runtime:
    """Engine (schema upgraded to head), clock and Slack client for one process."""
    from bot.clock import SystemClock
    from bot.db import make_engine, upgrade
    from bot.slack.client import make_client

    engine = make_engine(settings.database)
    if migrate:
        upgrade(engine)
    client = make_client(base_url=settings.slack_api_url, token=settings.slack_bot_token)
    return Runtime(settings=settings, engine=engine, clock=clock or SystemClock(), client=client)
