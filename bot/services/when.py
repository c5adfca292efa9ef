"""Reading "when" as reps type it: `in 3d`, `in 4h`, `in 2w`, `tomorrow`, `monday`, `2026-12-01 14:00`."""

import re
from datetime import date, datetime, time, timedelta

from bot.errors import BadInput
from bot.services.worktime import WorkingHours

EXAMPLES = "`in 3d`, `in 4h`, `in 2w`, `tomorrow`, `monday`, `2026-12-01` or `2026-12-01 14:30`"
_RELATIVE = re.compile(r"^in\s*(\d{1,4})\s*(m|min|mins|minutes?|h|hrs?|hours?|d|days?|w|wks?|weeks?)$")
_DATE = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:[ T](\d{1,2}:\d{2}))?$")
_WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def when_words(words: list[str]) -> int:
    """How many of the leading words make up the `when` (1 or 2: `in 3d`, `2026-12-01 14:00`)."""
    if not words:
        return 0
    first = words[0].lower()
    if first == "in" and len(words) > 1:
        return 2
    if _DATE.match(first) and len(words) > 1 and re.match(r"^\d{1,2}:\d{2}$", words[1]):
        return 2
    return 1


def parse_when(text: str, *, now: datetime, hours: WorkingHours) -> datetime:
    """The due moment in UTC. A bare day means the start of working hours that day, in the owner's zone."""
    text = " ".join(text.lower().split())
    local_now = now.astimezone(hours.tz)
    due = None
    if match := _RELATIVE.match(text):
        amount, unit = int(match.group(1)), _UNITS[match.group(2)[0]]
        if amount == 0:
            raise BadInput("“in 0…” is now; give a time in the future.", hint=f"Examples: {EXAMPLES}.")
        if unit in ("days", "weeks"):  # whole days keep the local clock time across a daylight-saving change
            due = hours.at(local_now.date() + timedelta(**{unit: amount}), local_now.time())
        else:
            due = now + timedelta(**{unit: amount})
    elif text == "tomorrow":
        due = hours.at(local_now.date() + timedelta(days=1), hours.start)
    elif text == "today":
        due = now
    elif text[:3] in [d[:3] for d in _WEEKDAYS] and any(d.startswith(text) for d in _WEEKDAYS) and len(text) >= 3:
        target = [d[:3] for d in _WEEKDAYS].index(text[:3])
        ahead = (target - local_now.weekday()) % 7 or 7
        due = hours.at(local_now.date() + timedelta(days=ahead), hours.start)
    elif match := _DATE.match(text):
        try:
            day = date.fromisoformat(match.group(1))
            clock = time.fromisoformat(match.group(2).zfill(5)) if match.group(2) else hours.start
        except ValueError:
            raise BadInput(f"“{text}” is not a real date or time.", hint=f"Examples: {EXAMPLES}.") from None
        due = hours.at(day, clock)
    if due is None:
        raise BadInput(f"I can't read “{text}” as a time.", hint=f"Examples: {EXAMPLES}.")
    if due <= now:
        raise BadInput(f"“{text}” is in the past.", hint=f"Examples: {EXAMPLES}.")
    if due > now + timedelta(days=3 * 365):
        raise BadInput("That is more than three years away.", hint=f"Examples: {EXAMPLES}.")
    return due
