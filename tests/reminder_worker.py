"""One bot process for the multi-process delivery tests: dispatch due reminders until none is left to send.

    python -m tests.reminder_worker

Reads DATABASE_URL, SLACK_API_URL, SLACK_BOT_TOKEN and DELIVERY_RATE like the bot does, and from the test:
RAPPORT_TEST_LEASE_SECONDS (a short lease, so a killed process's claims come back quickly),
RAPPORT_TEST_BATCH (claims per round), RAPPORT_TEST_CLOCK_SHIFT (seconds added to the real time, so every
process agrees on a working-hours "now" while leases still run out in real time) and RAPPORT_TEST_DEADLINE.
"""

import os
import sys
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import func
from sqlmodel import select

from bot.config import Settings
from bot.db import session_scope
from bot.runtime import open_runtime
from bot.slack.reminders import Dispatcher
from models import Reminder
from models.enums import ReminderStatus


class ShiftedClock:
    """Real time moved by a fixed amount: it runs (leases expire) but reads as the test's working day."""

    def __init__(self, shift: timedelta):
        self.shift = shift

    def now(self) -> datetime:
        return datetime.now(UTC) + self.shift


def unsent(runtime) -> int:
    with session_scope(runtime.engine) as session:
        return session.exec(
            select(func.count()).select_from(Reminder)
            .where(Reminder.status.in_([ReminderStatus.pending, ReminderStatus.claimed]))
        ).one()


def main() -> int:
    settings = Settings(_env_file=None)
    clock = ShiftedClock(timedelta(seconds=float(os.environ.get("RAPPORT_TEST_CLOCK_SHIFT", "0"))))
    runtime = open_runtime(settings, clock=clock, migrate=False)
    lease = timedelta(seconds=float(os.environ.get("RAPPORT_TEST_LEASE_SECONDS", "120")))
    batch = int(os.environ.get("RAPPORT_TEST_BATCH", "100"))
    deadline = time.monotonic() + float(os.environ.get("RAPPORT_TEST_DEADLINE", "60"))
    print("ready", flush=True)
    with Dispatcher(runtime, lease=lease) as dispatcher:
        while time.monotonic() < deadline:
            dispatcher.tick(batch=batch)
            if unsent(runtime) == 0:
                return 0
            time.sleep(0.1)  # the rest is claimed by others, or waits for a lease to run out
    print("deadline passed with reminders unsent", file=sys.stderr, flush=True)
    return 1


if __name__ == "__main__":
    sys.exit(main())
