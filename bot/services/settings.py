"""Workspace settings (/crm config): who manages, revisit cadences, working hours, time zone, digest, surveys."""

import re
from datetime import date
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from rapidfuzz import process as fuzzy
from sqlmodel import Session

from bot.errors import BadInput
from bot.services.customers import Actor, ensure_may_change
from bot.services.names import CHANNEL_ID, USER_ID
from models import Workspace
from models.workspace import DEFAULT_HEALTH_WEIGHTS

DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")

KEYS = {
    "managers": "managers add|remove @user… — who reads the digest and may change any account",
    "cadence": "cadence key|general|longtail <days> — revisit when an account has had no touch this long",
    "hours": "hours 09:00-18:00 — working hours; reminders arrive inside them, in each owner's time zone",
    "workdays": "workdays mon-fri | mon,tue,… — days reminders may arrive",
    "daysoff": "daysoff add|remove YYYY-MM-DD — holidays: no reminders",
    "timezone": "timezone Asia/Shanghai — the workspace's zone, for the digest",
    "digest-channel": "digest-channel #channel — where the weekly digest, escalations and manager notices are "
                      "posted: a channel only our team is in",
    "digest-time": "digest-time monday 09:00 — when the digest is posted (workspace time zone)",
    "survey-cooldown": "survey-cooldown <days> — do not survey a customer again within this",
    "survey-close": "survey-close <days> — surveys close after this",
    "survey-internal": "survey-internal on|off — count answers from our own team (for trials)",
    "weights": "weights engagement=30 satisfaction=30 relationship=25 followup=15 — health score weights",
}


def _int(text: str, *, what: str, low: int, high: int) -> int:
    if not text.isdigit() or not low <= int(text) <= high:
        raise BadInput(f"{what} must be a whole number from {low} to {high}, not “{text}”.")
    return int(text)


def _time(text: str) -> str:
    match = _TIME.match(text)
    if not match:
        raise BadInput(f"“{text}” is not a time like 09:00.")
    return f"{int(match.group(1)):02d}:{match.group(2)}"


def _days(text: str) -> list[int]:
    text = text.lower().replace(" ", "")
    if "-" in text and "," not in text:
        start, _, end = text.partition("-")
        if start[:3] not in DAYS or end[:3] not in DAYS:
            raise BadInput(f"“{text}” is not a range of days like mon-fri.")
        a, b = DAYS.index(start[:3]), DAYS.index(end[:3])
        return list(range(a, b + 1)) if a <= b else list(range(a, 7)) + list(range(0, b + 1))
    days = []
    for part in filter(None, text.split(",")):
        if part[:3] not in DAYS:
            raise BadInput(f"“{part}” is not a day; use mon, tue, wed, thu, fri, sat, sun.")
        days.append(DAYS.index(part[:3]))
    if not days:
        raise BadInput("Give at least one working day.")
    return sorted(set(days))


def timezone_name(text: str) -> str:
    try:
        ZoneInfo(text)
        return text
    except (ZoneInfoNotFoundError, ValueError):
        close = [m[0] for m in fuzzy.extract(text, sorted(available_timezones()), limit=3, score_cutoff=60)]
        raise BadInput(f"“{text}” is not a time zone." + (f" Did you mean {', '.join(close)}?" if close else ""),
                       hint="Use an IANA name such as Europe/Berlin or Asia/Shanghai.") from None


def describe(workspace: Workspace) -> list[tuple[str, str]]:
    """Every setting as (name, value) for `/crm config`."""
    days = ", ".join(DAYS[d] for d in workspace.work_days)
    return [
        ("managers", ", ".join(f"<@{m}>" for m in workspace.managers) or "none yet (workspace admins can add them)"),
        ("cadence", f"key {workspace.cadence_key_days} d · general {workspace.cadence_general_days} d · "
                    f"longtail {workspace.cadence_longtail_days} d"),
        ("hours", f"{workspace.work_start}-{workspace.work_end} in each owner's time zone"),
        ("workdays", days),
        ("daysoff", ", ".join(workspace.days_off) or "none"),
        ("timezone", workspace.timezone),
        ("digest-channel", (f"<#{workspace.digest_channel}>" if workspace.digest_channel else "not set")
         + (" — shared with another organisation, so nothing is posted there; choose another"
            if workspace.digest_channel and workspace.digest_channel_shared_at else "")),
        ("digest-time", f"{DAYS[workspace.digest_weekday]} {workspace.digest_time}"),
        ("survey-cooldown", f"{workspace.survey_cooldown_days} days"),
        ("survey-close", f"{workspace.survey_close_days} days"),
        ("survey-internal", "on" if workspace.survey_allow_internal else "off"),
        ("weights", " ".join(f"{k}={v}" for k, v in workspace.health_weights.items())),
    ]


def configure(session: Session, *, workspace: Workspace, actor: Actor, key: str, args: list[str]) -> str:
    """Change one setting; returns what changed, in words. Only managers and workspace admins may."""
    ensure_may_change(workspace, None, actor)
    key = key.lower()
    if key not in KEYS:
        raise BadInput(f"There is no setting “{key}”.", hint="Settings: " + ", ".join(KEYS))
    usage = f"Usage: `/crm config {KEYS[key].split(' — ')[0]}`"
    try:
        message = _apply(workspace, key, args)
    except (IndexError, ValueError):
        raise BadInput(f"I could not read that for {key}.", hint=usage) from None
    except BadInput as exc:
        exc.hint = exc.hint or usage
        raise
    session.add(workspace)
    return message


def _apply(w: Workspace, key: str, args: list[str]) -> str:
    if key == "managers":
        action, users = args[0].lower(), args[1:]
        if action not in ("add", "remove") or not users:
            raise ValueError
        strangers = [u for u in users if not USER_ID.fullmatch(u)]
        if strangers:
            raise BadInput(f"“{strangers[0]}” is not a person: name managers as @mentions.")
        managers = list(w.managers)
        for user in users:
            if action == "add" and user not in managers:
                managers.append(user)
            if action == "remove" and user in managers:
                managers.remove(user)
        w.managers = managers
        return "Managers: " + (", ".join(f"<@{m}>" for m in managers) or "none")
    if key == "cadence":
        tier, days = args[0].lower(), _int(args[1], what="A cadence", low=1, high=730)
        if tier not in ("key", "general", "longtail") or len(args) != 2:
            raise ValueError
        setattr(w, f"cadence_{tier}_days", days)
        return f"Revisit {tier} accounts after {days} days without a touch."
    if key == "hours":
        start, _, end = args[0].partition("-")
        start, end = _time(start), _time(end)
        if start >= end:
            raise BadInput("Working hours must start before they end, like 09:00-18:00.")
        w.work_start, w.work_end = start, end
        return f"Working hours {start}-{end}."
    if key == "workdays":
        w.work_days = _days("".join(args))
        return "Working days: " + ", ".join(DAYS[d] for d in w.work_days) + "."
    if key == "daysoff":
        action, day = args[0].lower(), date.fromisoformat(args[1]).isoformat()
        days = set(w.days_off)
        if action == "add":
            days.add(day)
        elif action == "remove":
            days.discard(day)
        else:
            raise ValueError
        w.days_off = sorted(days)
        return "Days off: " + (", ".join(w.days_off) or "none") + "."
    if key == "timezone":
        w.timezone = timezone_name(args[0])
        return f"Workspace time zone: {w.timezone}."
    if key == "digest-channel":
        if not CHANNEL_ID.fullmatch(args[0]):
            raise BadInput("Name the channel as #channel.")
        w.digest_channel, w.digest_channel_shared_at = args[0], None  # checked internal by the caller
        return f"The digest goes to <#{w.digest_channel}>."
    if key == "digest-time":
        day = _days(args[0])
        if len(day) != 1:
            raise BadInput("Give one day, like monday.")
        w.digest_weekday, w.digest_time = day[0], _time(args[1])
        return f"The digest is posted {DAYS[w.digest_weekday]} at {w.digest_time} ({w.timezone})."
    if key == "survey-cooldown":
        w.survey_cooldown_days = _int(args[0], what="The cooldown", low=0, high=365)
        return f"A customer is not surveyed again within {w.survey_cooldown_days} days (unless forced)."
    if key == "survey-close":
        w.survey_close_days = _int(args[0], what="The survey duration", low=1, high=90)
        return f"Surveys close after {w.survey_close_days} days."
    if key == "survey-internal":
        if args[0].lower() not in ("on", "off"):
            raise ValueError
        w.survey_allow_internal = args[0].lower() == "on"
        return "Answers from our own team " + ("count (trial mode)." if w.survey_allow_internal else "do not count.")
    if key == "weights":
        weights = dict(w.health_weights)
        for part in args:
            name, _, value = part.partition("=")
            if name not in DEFAULT_HEALTH_WEIGHTS:
                raise BadInput(f"“{name}” is not a health component; use {', '.join(DEFAULT_HEALTH_WEIGHTS)}.")
            weights[name] = _int(value, what=f"The weight of {name}", low=0, high=100)
        if not args or sum(weights.values()) == 0:
            raise BadInput("At least one weight must be above 0.")
        if sum(weights.values()) != 100:
            given = " ".join(f"{k}={v}" for k, v in weights.items())
            raise BadInput(f"The weights must add up to 100; {given} add up to {sum(weights.values())}.",
                           hint="For example: `/crm config weights engagement=30 satisfaction=30 relationship=25 "
                                "followup=15`")
        w.health_weights = weights
        return "Health weights: " + " ".join(f"{k}={v}" for k, v in weights.items()) + "."
    raise ValueError
