"""APScheduler as a clock only: every process runs the same ticks; the rows in the database decide what is due."""

import logging
from collections.abc import Callable

from apscheduler.schedulers.background import BackgroundScheduler
from sqlmodel import select

from bot import metrics
from bot.db import session_scope
from bot.runtime import Runtime
from bot.services.events import forget_old_events

log = logging.getLogger(__name__)

Tick = Callable[[Runtime], None]


def _forget_old_events(runtime: Runtime) -> None:
    with session_scope(runtime.engine) as session:
        forget_old_events(session, now=runtime.clock.now())


def _deliver_reminders(runtime: Runtime) -> None:
    from bot.slack.reminders import Dispatcher

    with Dispatcher(runtime) as dispatcher:
        dispatcher.tick()


def _escalate(runtime: Runtime) -> None:
    from bot.slack.reminders import Dispatcher

    with Dispatcher(runtime) as dispatcher:
        dispatcher.escalate()


def _close_surveys(runtime: Runtime) -> None:
    from bot.slack.surveys import close_due

    close_due(runtime)


def _weekly_digest(runtime: Runtime) -> None:
    from bot.slack.digest import run_weekly

    run_weekly(runtime)


def refresh_snapshots(runtime: Runtime) -> int:
    """Keep this week's health snapshots current (App Home, `list at-risk`), every few hours: no Slack in it."""
    from bot.services import health
    from models import Workspace

    now = runtime.clock.now()
    with session_scope(runtime.engine) as session:
        ids = list(session.exec(select(Workspace.id)).all())
    total = 0
    for workspace_id in ids:  # a transaction per workspace
        with session_scope(runtime.engine) as session:
            workspace = session.get(Workspace, workspace_id)
            total += health.save_snapshots(session, workspace=workspace, now=now,
                                           scored=health.score_workspace(session, workspace=workspace, now=now))
    return total


# (name, seconds between runs, function). Features add their ticks here; each must be safe to run in
# several processes at once and to run late.
TICKS: list[tuple[str, int, Tick]] = [
    ("deliver-reminders", 15, _deliver_reminders),
    ("escalate-reminders", 300, _escalate),
    ("close-surveys", 60, _close_surveys),
    ("weekly-digest", 300, _weekly_digest),
    ("health-snapshots", 6 * 3600, refresh_snapshots),
    ("forget-old-events", 3600, _forget_old_events),
]


def run_due_work(runtime: Runtime, *, everything: bool = False) -> None:
    """Run the ticks whose interval has passed on the runtime's clock (all of them with `everything`): the
    console's `advance` and the tests move time with this."""
    now = runtime.clock.now()
    for name, interval, tick in TICKS:
        last = runtime.last_ticks.get(name)
        if everything or last is None or (now - last).total_seconds() >= interval:
            runtime.last_ticks[name] = now
            _run_safely(name, tick, runtime)


def _run_safely(name: str, tick: Tick, runtime: Runtime) -> None:
    try:
        with metrics.TICK_SECONDS.labels(tick=name).time():
            tick(runtime)
    except Exception:  # one failing tick must not stop the others; it runs again at its next interval
        metrics.TICK_FAILURES.labels(tick=name).inc()
        log.exception("scheduled work %s failed; it will run again", name)


def start_scheduler(runtime: Runtime) -> BackgroundScheduler:
    from bot.slack.installs import resume_for_new_token

    resume_for_new_token(runtime)
    scheduler = BackgroundScheduler(timezone="UTC", job_defaults={"coalesce": True, "max_instances": 1})
    for name, interval, tick in TICKS:
        scheduler.add_job(
            _run_safely,
            "interval",
            seconds=interval,
            args=[name, tick, runtime],
            id=name,
            replace_existing=True,
            misfire_grace_time=interval,
        )
    scheduler.start()
    # Work that fell due while every process was down is picked up at once, not at the first interval.
    for name, _interval, tick in TICKS:
        scheduler.add_job(_run_safely, args=[name, tick, runtime], id=f"{name}-at-start")
    return scheduler
