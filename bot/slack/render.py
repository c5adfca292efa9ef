"""Jinja2 templates → Block Kit. Every value a template prints must go through a filter that escapes it."""

import json
import re
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from bot.services.vocabulary import human, level_label
from bot.slack.text import escape_mrkdwn

TEMPLATES = Path(__file__).resolve().parent.parent.parent / "templates"
ELLIPSIS = "…"


class Fragment(Markup):
    """A piece of JSON already encoded and escaped; the only kind of value a template may print."""


def _truncate(text: str, limit: int | None) -> str:
    if limit is not None and len(text) > limit:
        return text[: limit - 1] + ELLIPSIS
    return text


def mrkdwn(value, limit: int | None = 3000) -> Fragment:
    """A JSON string for a mrkdwn field: user text escaped (pings nobody), cut to Slack's limit."""
    return Fragment(json.dumps(_truncate(escape_mrkdwn(str(value)), limit), ensure_ascii=False))


def plain(value, limit: int | None = 3000) -> Fragment:
    """A JSON string for a plain_text field (Slack shows it verbatim), cut to the field's limit."""
    return Fragment(json.dumps(_truncate(str(value), limit), ensure_ascii=False))


def to_json(value) -> Fragment:
    """Structured values (button values, private metadata) as JSON."""
    return Fragment(json.dumps(value, ensure_ascii=False, separators=(",", ":")))


def raw_mrkdwn(value: str, limit: int = 3000) -> Fragment:
    """mrkdwn assembled in a template from |esc pieces and our own markup (mentions, dates), cut safely."""
    return Fragment(json.dumps(_cut_mrkdwn(str(value), limit), ensure_ascii=False))


def _cut_mrkdwn(text: str, limit: int) -> str:
    """Cut at a line break when possible, never inside an entity (&amp;) or markup (<@U1>)."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    newline = cut.rfind("\n")
    if newline > limit // 2:
        cut = cut[:newline]
    for opener, closer in (("<", ">"), ("&", ";")):
        start = cut.rfind(opener)
        if start >= 0 and cut.find(closer, start) < 0:
            cut = cut[:start]
    return cut + ELLIPSIS


def pack(lines, size: int = 2900, max_chunks: int = 45) -> list[str]:
    """Join lines into texts of at most `size` characters (one section each), at most `max_chunks` of them;
    what does not fit is said in the last one rather than silently dropped."""
    chunks: list[str] = []
    current = ""
    for index, line in enumerate(lines):
        line = _cut_mrkdwn(line, size)
        if current and len(current) + 1 + len(line) > size:
            if len(chunks) == max_chunks - 1:
                chunks.append(current + f"\n…and {len(lines) - index} more")
                return chunks
            chunks.append(current)
            current = line
        else:
            current = f"{current}\n{line}" if current else line
    if current:
        chunks.append(current)
    return chunks


def esc(value, limit: int | None = None) -> str:
    """A piece of user text for a |raw_mrkdwn line: cut first (so no entity is split), then escaped."""
    return escape_mrkdwn(_truncate(str(value), limit))


def one_line(value, limit: int = 75) -> str:
    """Plain text for an option or a title: white space (newlines too) collapsed, cut with an ellipsis."""
    return _truncate(" ".join(str(value).split()), limit)


_USER_ID = re.compile(r"[UWB][A-Z0-9]{1,31}")
_CHANNEL_ID = re.compile(r"[CGD][A-Z0-9]{1,31}")


def user(user_id: str | None) -> str:
    """A mention; anything that is not a Slack user id is shown as escaped text, never as markup."""
    if not user_id:
        return "nobody"
    return f"<@{user_id}>" if _USER_ID.fullmatch(user_id) else escape_mrkdwn(user_id)


def channel(channel_id: str | None) -> str:
    if not channel_id:
        return "none"
    return f"<#{channel_id}>" if _CHANNEL_ID.fullmatch(channel_id) else escape_mrkdwn(channel_id)


def slack_date(moment: datetime | None, style: str = "{date_short_pretty} {time}") -> str:
    """Shown in each reader's own time zone by Slack; the fallback (old clients, notifications) is UTC."""
    if moment is None:
        return "never"
    fallback = moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(moment.timestamp())}^{style}|{fallback}>"


def day(moment: datetime | None) -> str:
    return slack_date(moment, "{date_short_pretty}")


def _finalize(value):
    if isinstance(value, Markup):
        return value
    if value is None or isinstance(value, bool | int | float):
        return Fragment(json.dumps(value))
    raise TypeError(f"template printed {value!r} without |mrkdwn, |plain or |json: user text must be escaped")


_STRING_OR_TRAILING_COMMA = re.compile(r'"(?:[^"\\]|\\.)*"|,(?=\s*[\]}])')


def _strip_trailing_commas(source: str) -> str:
    """Allow `[a, b, ]` in templates (loops and conditionals end cleanly); string contents are untouched.
    One regex pass (strings are matched whole, so a comma inside one is never seen)."""
    return _STRING_OR_TRAILING_COMMA.sub(lambda m: "" if m.group(0) == "," else m.group(0), source)


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        auto_reload=False,  # templates ship with the code; no stat() per render
        finalize=_finalize,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        mrkdwn=mrkdwn, plain=plain, json=to_json, raw_mrkdwn=raw_mrkdwn, esc=esc, pack=pack, user=user, channel=channel,
        date=slack_date, day=day, human=human, level=level_label,
    )
    from bot.slack.lines import FILTERS  # lines.py builds on the filters above

    env.filters.update(FILTERS)
    return env


def render(template: str, **context):
    """Render a template to the Python structure it describes (a list of blocks or a view)."""
    text = environment().get_template(template).render(**context)
    try:
        return json.loads(_strip_trailing_commas(text))
    except json.JSONDecodeError as exc:
        raise ValueError(f"template {template} rendered invalid JSON: {exc}") from exc
