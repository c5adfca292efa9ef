"""Reading "when" as reps type it: `in 3d`, `in 2 days`, `tomorrow`, `next tuesday 3pm`, `2026-12-01 14:00`."""

import re
from datetime import date, datetime, time, timedelta

from bot.errors import BadInput
from bot.services.worktime import WorkingHours

EXAMPLES = ("`in 3d`, `in 2 days`, `in 4h`, `in 3 weeks`, `tomorrow`, `next tuesday`, `friday 3pm`, "
            "`2026-12-01` or `2026-12-01 14:30`")
_UNIT = r"(m|min|mins|minutes?|h|hrs?|hours?|d|days?|w|wks?|weeks?)"
_RELATIVE = re.compile(rf"^in\s*(\d{{1,4}})\s*{_UNIT}$")
_NUMBER_UNIT = re.compile(rf"^\d{{1,4}}\s*{_UNIT}$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TIME = re.compile(r"^(\d{1,2})(?::(\d{2}))?\s*(am|pm)?$")
_WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_PAST = ("yesterday", "last")


def _is_time(word: str) -> bool:
    """`3pm`, `3:30pm`, `15:00` (a bare number is not a time: `in 3` means nothing)."""
    match = _TIME.match(word.lower())
    return bool(match and (match.group(2) or match.group(3)))


def _weekday(word: str) -> int | None:
    word = word.lower()
    if len(word) >= 3:
        for n, name in enumerate(_WEEKDAYS):
            if name.startswith(word):
                return n
    return None


def _is_day(word: str) -> bool:
    return word.lower() in ("today", "tomorrow") or _weekday(word) is not None or bool(_DATE.match(word))


def when_words(words: list[str]) -> int:
    """How many of the leading words make up the `when`: `in 3d`, `in 2 days`, `next tuesday 3pm`,
    `2026-12-01 14:00`, `3pm`."""
    if not words:
        return 0
    first = words[0].lower()
    if first == "in" and len(words) > 1:
        if len(words) > 2 and words[1].isdigit() and _NUMBER_UNIT.match(f"{words[1]} {words[2].lower()}"):
            return 3
        return 2
    count = 1
    if first in ("next", "last") and len(words) > 1 and _weekday(words[1]) is not None:
        count = 2
    if _is_day(words[count - 1]) and len(words) > count and _is_time(words[count]):
        count += 1
    return count


def _clock(text: str) -> time:
    match = _TIME.match(text)
    hour, minute, half = int(match.group(1)), int(match.group(2) or 0), match.group(3)
    if half:
        if not 1 <= hour <= 12:
            raise ValueError
        hour = hour % 12 + (12 if half == "pm" else 0)
    return time(hour, minute)


def parse_when(text: str, *, now: datetime, hours: WorkingHours) -> datetime:
    """The due moment in UTC. A bare day means the start of working hours that day, in the owner's zone; a time
    after a day (`friday 3pm`, `2026-12-24 15:00`) is that time there."""
    text = " ".join(text.lower().split())
    local_now = now.astimezone(hours.tz)
    due = None
    words = text.split(" ")
    if match := _RELATIVE.match(text):
        amount, unit = int(match.group(1)), _UNITS[match.group(2)[0]]
        if amount == 0:
            raise BadInput("“in 0…” is now; give a time in the future.", hint=f"Examples: {EXAMPLES}.")
        if unit in ("days", "weeks"):  # whole days keep the local clock time across a daylight-saving change
            due = hours.at(local_now.date() + timedelta(**{unit: amount}), local_now.time())
        else:
            due = now + timedelta(**{unit: amount})
    elif words[0] in _PAST:
        raise BadInput(f"“{text}” is in the past; give a time to come.", hint=f"Examples: {EXAMPLES}.")
    else:
        clock_text = words[-1] if len(words) > 1 and _is_time(words[-1]) else None
        if len(words) == 1 and _is_time(words[0]):
            clock_text, day_words = words[0], ["today"]
        else:
            day_words = words[:-1] if clock_text else words
        if day_words and day_words[0] == "next" and len(day_words) == 2:
            day_words = day_words[1:]  # `next tuesday`: the coming Tuesday, as a bare `tuesday`
        day_text = " ".join(day_words)
        try:
            day = _day(day_text, local_now.date())
            clock = _clock(clock_text) if clock_text else None
        except ValueError:
            raise BadInput(f"“{text}” is not a real date or time.", hint=f"Examples: {EXAMPLES}.") from None
        if day is not None:
            if clock is None:
                due = now if day_text == "today" else hours.at(day, hours.start)
            else:
                due = hours.at(day, clock)
    if due is None:
        raise BadInput(f"I can't read “{text}” as a time.", hint=f"Examples: {EXAMPLES}.")
    if due <= now:
        raise BadInput(f"“{text}” is in the past.", hint=f"Examples: {EXAMPLES}.")
    if due > now + timedelta(days=3 * 365):
        raise BadInput("That is more than three years away.", hint=f"Examples: {EXAMPLES}.")
    return due


def _day(text: str, today: date) -> date | None:
    if text == "today":
        return today
    if text == "tomorrow":
        return today + timedelta(days=1)
    target = _weekday(text) if " " not in text else None
    if target is not None:
        return today + timedelta(days=(target - today.weekday()) % 7 or 7)
    if _DATE.match(text):
        return date.fromisoformat(text)  # ValueError for a date that does not exist
    return None
