"""Working hours in a person's own time zone: when a reminder may arrive, and "the next working day"."""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from models import Workspace


@dataclass(frozen=True)
class WorkingHours:
    tz: ZoneInfo
    start: time
    end: time
    days: frozenset[int]  # 0 = Monday
    off: frozenset[date]

    @classmethod
    def of(cls, workspace: Workspace, tz_name: str | None) -> "WorkingHours":
        return cls(
            tz=zone(tz_name or workspace.timezone),
            start=time.fromisoformat(workspace.work_start),
            end=time.fromisoformat(workspace.work_end),
            days=frozenset(workspace.work_days),
            off=frozenset(date.fromisoformat(d) for d in workspace.days_off),
        )

    def is_workday(self, day: date) -> bool:
        return day.weekday() in self.days and day not in self.off

    def at(self, day: date, clock: time) -> datetime:
        """`day` at `clock` local time, as UTC. In a DST gap the clock moves forward by the gap (02:30 →
        03:30); on a repeated hour the first occurrence is taken."""
        local = datetime.combine(day, clock, tzinfo=self.tz)
        utc = local.astimezone(UTC)
        back = utc.astimezone(self.tz)
        if back.replace(tzinfo=None) != local.replace(tzinfo=None):  # nonexistent local time
            utc = (local + (back.utcoffset() - local.utcoffset())).astimezone(UTC)
        return utc

    def next_start(self, day: date) -> datetime:
        """The start of the first working day on or after `day`."""
        for offset in range(0, 370):
            candidate = day + timedelta(days=offset)
            if self.is_workday(candidate):
                return self.at(candidate, self.start)
        return self.at(day, self.start)  # no working day configured at all: do not hold reminders forever

    def move_into(self, moment: datetime) -> datetime:
        """The moment itself when it falls in working hours, else the next start of working hours."""
        local = moment.astimezone(self.tz)
        today = local.date()
        if self.is_workday(today):
            if local.time() < self.start:
                return self.at(today, self.start)
            if local.time() < self.end:
                return moment.astimezone(UTC)
        return self.next_start(today + timedelta(days=1))

    def next_working_day(self, moment: datetime) -> datetime:
        """The start of the working day after the one `moment` is in (service recovery: "next working day")."""
        local = moment.astimezone(self.tz)
        return self.next_start(local.date() + timedelta(days=1))

    def add_working_days(self, moment: datetime, days: int) -> datetime:
        """The same local time `days` working days later (escalation: "2 working days after delivery")."""
        local = moment.astimezone(self.tz)
        day, left = local.date(), days
        for _ in range(370):
            if left == 0:
                break
            day += timedelta(days=1)
            left -= self.is_workday(day)
        return self.at(day, local.time().replace(tzinfo=None))


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def stale_zones(session, owners: set[tuple[str, str]], *, now: datetime) -> set[tuple[str, str]]:
    """The (workspace, user) pairs whose cached time zone is missing or too old: only these need users.info."""
    from sqlmodel import select

    from bot.services.people import FRESH_FOR
    from models import SlackUser

    if not owners:
        return set()
    fresh = session.exec(
        select(SlackUser.workspace_id, SlackUser.user_id)
        .where(SlackUser.user_id.in_({u for _, u in owners}), SlackUser.fetched_at >= now - FRESH_FOR)
    ).all()
    return set(owners) - {(w, u) for w, u in fresh}


def hours_lookup(session, owners: set[tuple[str, str]] = frozenset()):
    """A `hours_for(workspace_id, user_id)` reading workspaces and cached time zones, prefetched in two queries."""
    from sqlmodel import select

    from models import SlackUser

    workspaces: dict[str, Workspace] = {}
    zones: dict[tuple[str, str], str] = {}
    if owners:
        for workspace in session.exec(select(Workspace).where(Workspace.id.in_({w for w, _ in owners}))).all():
            workspaces[workspace.id] = workspace
        users = {u for _, u in owners}
        for person in session.exec(select(SlackUser).where(SlackUser.user_id.in_(users))).all():
            zones[(person.workspace_id, person.user_id)] = person.tz

    def hours_for(workspace_id: str, user_id: str) -> WorkingHours:
        workspace = workspaces.get(workspace_id)
        if workspace is None:
            workspace = workspaces[workspace_id] = session.get(Workspace, workspace_id)
        if (workspace_id, user_id) not in zones and not owners:
            person = session.get(SlackUser, (workspace_id, user_id))
            zones[(workspace_id, user_id)] = person.tz if person else None
        return WorkingHours.of(workspace, zones.get((workspace_id, user_id)))

    return hours_for
