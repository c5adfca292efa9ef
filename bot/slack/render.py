"""Jinja2 templates → Block Kit. Every value a template prints must go through a filter that escapes it."""

import json
from functools import lru_cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

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


def raw_mrkdwn(value: str) -> Fragment:
    """mrkdwn built by our own code (mentions like <@U1>, links) that must not be escaped again."""
    return Fragment(json.dumps(str(value), ensure_ascii=False))


def _finalize(value):
    if isinstance(value, Markup):
        return value
    if value is None or isinstance(value, bool | int | float):
        return Fragment(json.dumps(value))
    raise TypeError(f"template printed {value!r} without |mrkdwn, |plain or |json: user text must be escaped")


def _strip_trailing_commas(source: str) -> str:
    """Allow `[a, b, ]` in templates (loops and conditionals end cleanly); string contents are untouched."""
    out: list[str] = []
    in_string = escaped = False
    pending_comma = None
    for ch in source:
        if in_string:
            out.append(ch)
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
            continue
        if ch.isspace():
            (pending_comma if pending_comma is not None else out).append(ch)
            continue
        if pending_comma is not None:
            if ch not in "]}":
                out.append(",")
            out.extend(pending_comma)
            pending_comma = None
        if ch == ",":
            pending_comma = []
            continue
        if ch == '"':
            in_string = True
        out.append(ch)
    return "".join(out)


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        finalize=_finalize,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(mrkdwn=mrkdwn, plain=plain, json=to_json, raw_mrkdwn=raw_mrkdwn)
    return env


def render(template: str, **context):
    """Render a template to the Python structure it describes (a list of blocks or a view)."""
    text = environment().get_template(template).render(**context)
    try:
        return json.loads(_strip_trailing_commas(text))
    except json.JSONDecodeError as exc:
        raise ValueError(f"template {template} rendered invalid JSON: {exc}") from exc
