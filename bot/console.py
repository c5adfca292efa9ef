"""`rapport console`: try Rapport without a Slack account — the real app behind a local fake Slack, in a terminal.

Each line is one action (`help` lists them): run `/crm …` as one of the preset people in a channel, press
buttons, fill and submit modals, move the clock forward. Requests go through the same signed Bolt dispatch as
production; whatever the bot sends to Slack (the fake records it) is printed as text after every action.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import math
import os
import re
import secrets
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlencode, urlsplit

from bot.app import build_app
from bot.clock import ManualClock
from bot.config import Settings
from bot.runtime import open_runtime
from bot.scheduler import run_due_work
from bot.slack import presets
from bot.slack.fake import Call, FakeSlack
from bot.slack.simulate import Person, Response, SlackSimulator, TrackingExecutor

log = logging.getLogger(__name__)

CONSOLE_TOKEN = "xoxb-console"  # noqa: S105  (the fake Slack accepts any token; not a credential)
RULE = "─" * 40
MAX_ADVANCE = timedelta(days=366)
# Messages kept for `click`; older ones are forgotten so a long session does not grow without bound.
MAX_REMEMBERED = 500

HELP = """\
Console actions (one per line):
  /crm <text>               run a slash command (@name and #channel become mentions, as in Slack)
  as <person>               act as alice, bob, mei (admin) or carol (customer)    [default: alice]
  in #<channel>             act in a channel; a new name creates it               [default: #sales]
  click <button text>       press a button (or pick a menu option) on the latest message or view showing it
  fill <label>: <value>     fill an input of the open modal (label prefix or block_id)
  submit                    submit the open modal
  close                     close the open modal without submitting
  home                      open your App Home tab
  advance <N>m|h|d|w        move the clock forward (e.g. advance 2h, advance 7d) and run scheduled work
  now                       print the simulated time
  uninstall | reinstall     remove Rapport from the workspace (its reminders and digest wait), install it again
  share #<channel>          share a channel with carol's company (Slack Connect): Slack sends channel_shared
  help                      this list;  /crm help lists the bot's own commands
  quit | exit               leave (so does Ctrl-D)
Lines starting with # are comments."""


class ConsoleError(Exception):
    """An action the console cannot carry out; printed as one line, and the session goes on."""


# ----------------------------------------------------------------------------------------------------------
# Slack text and Block Kit → terminal text
# ----------------------------------------------------------------------------------------------------------


class Names:
    """Ids → the names people typed: preset people and channels plus channels the console created."""

    def __init__(self) -> None:
        self.users = {p.id: p.key for p in presets.PEOPLE}
        self.channels = {c.id: c.name for c in presets.CHANNELS}

    def user(self, user_id: str) -> str:
        return self.users.get(user_id, user_id)

    def channel(self, channel_id: str) -> str:
        return self.channels.get(channel_id, channel_id)


_ENTITY = re.compile(r"<([^<>]*)>")


def unslack(text: str, names: Names) -> str:
    """mrkdwn as a person reads it: mentions by name, links as `text (url)`, &lt; &gt; &amp; unescaped."""

    def entity(match: re.Match) -> str:
        inner = match.group(1)
        target, _, label = inner.partition("|")
        if target.startswith("@"):
            return "@" + (names.users.get(target[1:]) or label or target[1:])
        if target.startswith("#"):
            return "#" + (names.channels.get(target[1:]) or label or target[1:])
        if target.startswith("!date^"):
            if label:
                return label
            with contextlib.suppress(ValueError, IndexError):
                stamp = int(target.split("^")[1])
                return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d %H:%M UTC")
            return target
        if target.startswith("!subteam^"):
            return label or "@team"
        if target.startswith("!"):
            return "@" + target[1:].split("^")[0]
        return f"{label} ({target})" if label and label != target else target

    return _unescape(_ENTITY.sub(entity, text))


def _unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _text(obj: Any, names: Names) -> str:
    """A text object (mrkdwn or plain_text) or a bare string, as shown."""
    if isinstance(obj, str):
        return obj
    if not isinstance(obj, dict):
        return ""
    text = obj.get("text") or ""
    return unslack(text, names) if obj.get("type") == "mrkdwn" else text


def _rich_text(node: Any, names: Names) -> str:
    """rich_text blocks, cells and input values flattened to their words."""
    if isinstance(node, list):
        return "".join(_rich_text(item, names) for item in node)
    if not isinstance(node, dict):
        return ""
    kind = node.get("type")
    if kind == "text":
        return node.get("text", "")
    if kind == "link":
        return node.get("text") or node.get("url", "")
    if kind == "user":
        return "@" + names.user(node.get("user_id", ""))
    if kind == "channel":
        return "#" + names.channel(node.get("channel_id", ""))
    if kind == "emoji":
        return f":{node.get('name', '')}:"
    if kind == "broadcast":
        return "@" + node.get("range", "here")
    if kind == "date":
        return node.get("fallback", "")
    if kind == "rich_text_list":
        return "".join("• " + _rich_text(item, names) + "\n" for item in node.get("elements", []))
    inner = _rich_text(node.get("elements", []), names)
    return inner + "\n" if kind in ("rich_text_section", "rich_text_preformatted", "rich_text_quote") else inner


def _option_text(option: dict | None, names: Names) -> str:
    return _text((option or {}).get("text"), names) if option else ""


def _options(element: dict) -> list[dict]:
    found = list(element.get("options") or [])
    for group in element.get("option_groups") or []:
        found.extend(group.get("options") or [])
    return found


def _element(element: dict, names: Names) -> str:
    """An interactive element or image as one `[ … ]` chip."""
    kind = element.get("type", "")
    if kind in ("button", "workflow_button"):
        link = f" → {element['url']}" if element.get("url") else ""
        return f"[ {_text(element.get('text'), names)} ]{link}"
    if kind == "image":
        return f"[image {element.get('alt_text', '')}]"
    if kind == "overflow":
        return "[ ⋯ " + " | ".join(_option_text(o, names) for o in _options(element)) + " ]"
    if kind in ("static_select", "radio_buttons", "checkboxes", "multi_static_select"):
        placeholder = _text(element.get("placeholder"), names) or kind
        choices = " | ".join(_option_text(o, names) for o in _options(element))
        return f"[ {placeholder} ▾: {choices} ]"
    placeholder = _text(element.get("placeholder"), names)
    return f"[ {placeholder or kind} ▾ ]"


# Per input element: the key Slack uses in view.state.values, and the key of its initial value.
STATE_KEYS: dict[str, tuple[str, str]] = {
    "plain_text_input": ("value", "initial_value"),
    "email_text_input": ("value", "initial_value"),
    "url_text_input": ("value", "initial_value"),
    "number_input": ("value", "initial_value"),
    "rich_text_input": ("rich_text_value", "initial_value"),
    "static_select": ("selected_option", "initial_option"),
    "external_select": ("selected_option", "initial_option"),
    "radio_buttons": ("selected_option", "initial_option"),
    "multi_static_select": ("selected_options", "initial_options"),
    "multi_external_select": ("selected_options", "initial_options"),
    "checkboxes": ("selected_options", "initial_options"),
    "users_select": ("selected_user", "initial_user"),
    "multi_users_select": ("selected_users", "initial_users"),
    "conversations_select": ("selected_conversation", "initial_conversation"),
    "multi_conversations_select": ("selected_conversations", "initial_conversations"),
    "channels_select": ("selected_channel", "initial_channel"),
    "multi_channels_select": ("selected_channels", "initial_channels"),
    "datepicker": ("selected_date", "initial_date"),
    "timepicker": ("selected_time", "initial_time"),
    "datetimepicker": ("selected_date_time", "initial_date_time"),
}


def _shown_value(kind: str, value: Any, names: Names) -> str:
    """A state value (or an initial one) as the person sees it in the form."""
    if value is None or value == []:
        return ""
    if isinstance(value, list):
        return ", ".join(_shown_value(kind, item, names) for item in value)
    if isinstance(value, dict):
        return _option_text(value, names) if "text" in value else _rich_text(value, names).strip()
    if kind.endswith("users_select"):
        return "@" + names.user(value)
    if "channel" in kind or "conversation" in kind:
        return "#" + names.channel(value)
    if kind == "datetimepicker":
        return datetime.fromtimestamp(int(value), UTC).strftime("%Y-%m-%d %H:%M UTC")
    return str(value)


def render_blocks(blocks: list, names: Names) -> list[tuple[str, str | None]]:
    """Block Kit as (line, style) pairs; style "dim" for context, "bold" for headers, None for plain."""
    lines: list[tuple[str, str | None]] = []

    def add(text: str, style: str | None = None) -> None:
        lines.extend((line, style) for line in text.split("\n"))

    for block in blocks or []:
        kind = block.get("type")
        if kind == "header":
            add(f"== {_text(block.get('text'), names)} ==", "bold")
        elif kind == "section":
            if block.get("text"):
                add(_text(block["text"], names))
            for item in block.get("fields") or []:
                add(_text(item, names))
            if block.get("accessory"):
                add(_element(block["accessory"], names))
        elif kind == "divider":
            add(RULE, "dim")
        elif kind == "context":
            parts = [
                f"[image {e.get('alt_text', '')}]" if e.get("type") == "image" else _text(e, names)
                for e in block.get("elements") or []
            ]
            add("(" + " · ".join(parts) + ")", "dim")
        elif kind in ("actions", "context_actions"):
            add("  ".join(_element(e, names) for e in block.get("elements") or []))
        elif kind == "image":
            title = _text(block.get("title"), names)
            add(f"[image {block.get('alt_text', '')}]" + (f" {title}" if title else ""))
        elif kind == "input":
            element = block.get("element") or {}
            element_type = element.get("type", "?")
            initial = _shown_value(element_type, element.get(STATE_KEYS.get(element_type, ("", ""))[1]), names)
            optional = ", optional" if block.get("optional") else ""
            line = f"[input] {_text(block.get('label'), names)} ({element_type}{optional})"
            if initial:
                line += f" = {initial}"
            choices = _options(element)
            if choices:
                line += "    options: " + ", ".join(_option_text(o, names) for o in choices)
            add(line)
        elif kind == "rich_text":
            add(_rich_text(block.get("elements", []), names).rstrip("\n"))
        elif kind == "markdown":
            add(block.get("text", ""))
        elif kind == "table":
            for row in block.get("rows") or []:
                cells = [c.get("text", "") if c.get("type") == "raw_text" else _rich_text(c, names) for c in row]
                add(" | ".join(cell.strip() for cell in cells))
        elif kind in ("video", "file"):
            title = _text(block.get("title"), names) or block.get("external_id", "")
            add(f"[{kind} {title}]" if title else f"[{kind}]")
        else:
            add(f"[{kind} block]", "dim")
    return lines


def render_message(payload: dict, names: Names) -> list[tuple[str, str | None]]:
    """A message's blocks, or its text when it has none."""
    if payload.get("blocks"):
        return render_blocks(payload["blocks"], names)
    return [(line, None) for line in unslack(payload.get("text") or "", names).split("\n")]


# ----------------------------------------------------------------------------------------------------------
# What the console remembers: the messages and views a person could click on
# ----------------------------------------------------------------------------------------------------------


@dataclass
class Surface:
    """A message (in a channel, a DM or ephemeral) or a view (modal or App Home) that may hold buttons."""

    kind: str  # "message", "ephemeral", "modal" or "home"
    channel: str | None
    ts: str | None
    viewer: str | None  # the only user who sees it; None: everyone in the channel
    payload: dict  # the message (text, blocks) or the view object
    seq: int = 0

    @property
    def key(self) -> tuple:
        return (self.kind, self.channel, self.ts)

    @property
    def blocks(self) -> list:
        return self.payload.get("blocks") or []


@dataclass
class ResponseTarget:
    """Where posts to one response_url land: who acted, in which channel, and the message they replace."""

    user: str
    channel: str
    origin: tuple | None = None


@dataclass
class Candidate:
    """Something `click` can press: a button, or one option of a menu."""

    surface: Surface
    block: dict
    element: dict
    label: str
    option: dict | None = None

    def action(self) -> dict:
        action = {
            "type": self.element.get("type", "button"),
            "action_id": self.element.get("action_id") or f"console-{secrets.token_hex(3)}",
            "block_id": self.block.get("block_id") or f"console-{secrets.token_hex(3)}",
            "text": self.element.get("text") or {"type": "plain_text", "text": self.label},
            "value": self.element.get("value", ""),
        }
        if self.option is not None:
            action["selected_option"] = self.option
        return action


@dataclass
class Modal:
    """One view of a person's modal stack, with what they filled in so far (block_id → state value)."""

    view: dict
    filled: dict[str, dict] = field(default_factory=dict)


class _Simulator(SlackSimulator):
    """SlackSimulator that remembers the last response_url it handed out, so replies can be placed."""

    last_response_path = ""

    def response_url(self, kind: str) -> str:
        url = super().response_url(kind)
        self.last_response_path = urlsplit(url).path
        return url


def _normal(label: str) -> str:
    """Button text as typed: emoji codes dropped, spaces collapsed, case folded."""
    return " ".join(re.sub(r":[a-z0-9_+'-]+:", " ", label).split()).casefold()


def _pick(items: list, label_of, wanted: str, what: str):
    """Exact (case-insensitive) match first, else a unique prefix; ConsoleError when none or several fit."""
    want = _normal(wanted)
    exact = [i for i in items if _normal(label_of(i)) == want or label_of(i).casefold() == wanted.casefold()]
    if exact:
        return exact[0]
    prefixed = [i for i in items if _normal(label_of(i)).startswith(want)]
    distinct = {_normal(label_of(i)) for i in prefixed}
    if len(distinct) == 1:
        return prefixed[0]
    if prefixed:
        raise ConsoleError(f"{wanted!r} could be " + ", ".join(sorted(repr(label_of(i)) for i in prefixed)))
    raise ConsoleError(f"no {what} {wanted!r}")


# ----------------------------------------------------------------------------------------------------------
# The console
# ----------------------------------------------------------------------------------------------------------

_STYLES = {"bold": "1", "dim": "2", "label": "1;36", "error": "31", "time": "33", "echo": "1"}
_DURATION = re.compile(r"(\d+)\s*([mhdw])")
_UNITS = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}
_MENTION = re.compile(r"(?<![\w/@#])([@#])([\w][\w.-]*\w|\w)")
_OUTPUT_METHODS = frozenset(
    {"chat.postMessage", "chat.postEphemeral", "chat.update", "chat.delete", "views.open", "views.push",
     "views.update", "views.publish", "response_url"}
)


class Console:
    """The fake Slack, the real app and the simulated people; `run_line` performs one console action.

    Usable from tests: `.app` (register extra listeners), `.runtime` (post as the bot), `.fake` (what was
    sent), `.clock`, `.person` / `.channel` (who acts where).
    """

    def __init__(
        self, settings: Settings, *, out: TextIO | None = None, clock: ManualClock | None = None,
        color: bool | None = None,
    ) -> None:
        self.out = out if out is not None else sys.stdout
        if color is None:
            color = bool(getattr(self.out, "isatty", lambda: False)()) and not os.environ.get("NO_COLOR")
        self.color = color
        self.names = Names()
        self.fake = FakeSlack(team_id=presets.HOME_TEAM).start()
        try:
            presets.install(self.fake)
            secret = secrets.token_hex(16)
            # Only the Slack side is replaced: the database (and logging) stay what the settings say.
            self.settings = settings.model_copy(
                update={
                    "slack_bot_token": CONSOLE_TOKEN,
                    "slack_signing_secret": secret,
                    "slack_api_url": self.fake.api_url,
                    "slack_app_token": None,
                    "slack_client_id": None,
                    "slack_client_secret": None,
                }
            )
            self.clock = clock or ManualClock(datetime.now(UTC).replace(second=0, microsecond=0))
            self.runtime = open_runtime(self.settings, clock=self.clock)
            presets.prepare_workspace(self.runtime)
            self.executor = TrackingExecutor()
            self.app = build_app(self.runtime, listener_executor=self.executor)
            base = self.fake.response_url("x").rsplit("/", 1)[0]
            self.sim = _Simulator(self.app, signing_secret=secret, team_id=presets.HOME_TEAM,
                                  response_url_base=base)
        except BaseException:
            self.fake.stop()
            raise
        self.person = "alice"
        self.channel = "C0SALES"
        self._acting = presets.person(self.person).id
        self._seq = itertools.count(1)
        self._surfaces: dict[tuple, Surface] = {}
        self._homes: dict[str, Surface] = {}
        self._modals: dict[str, list[Modal]] = {}
        self._targets: dict[str, ResponseTarget] = {}
        self._dms = {self.fake.dm_channel(p.id): p.id for p in presets.PEOPLE}
        # Everything the fake recorded so far (auth.test at start-up) is not the bot talking to anyone.
        self._cursor = len(self.fake.calls())
        self._errors_seen = 0

    # -- lifecycle ----------------------------------------------------------------------------------------

    def close(self) -> None:
        self.executor.shutdown(wait=True)
        self.fake.stop()
        self.runtime.engine.dispose()

    def __enter__(self) -> Console:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def prompt(self) -> str:
        return f"{self.person} in {self._where(self.channel)}> "

    def interact(self) -> int:
        """The prompt loop: Ctrl-C drops the line being typed, Ctrl-D or `quit` leaves."""
        with contextlib.suppress(ImportError):
            import readline  # noqa: F401  (line editing and history for input())
        self._write("Rapport console: a local Slack simulator. `help` lists what you can do; `/crm help` "
                    "lists the bot's commands.", "dim")
        self._write(f"It is {self._time()}. You are alice in #sales.", "dim")
        while True:
            try:
                line = input(self.prompt)
            except EOFError:
                self._write("")
                return 0
            except KeyboardInterrupt:
                self._write("")
                continue
            if not self.run_line(line):
                return 0

    def run_script(self, lines: Iterable[str]) -> int:
        """Each action echoed as `> action` before its output, so the transcript reads as a conversation."""
        for raw in lines:
            line = raw.rstrip("\r\n")
            if line.strip() and not line.lstrip().startswith("#"):
                self._write("> " + line.strip(), "echo")
            if not self.run_line(line):
                break
        return 0

    # -- actions --------------------------------------------------------------------------------------------

    def run_line(self, line: str) -> bool:
        """Perform one action and print what the bot sent meanwhile; False when the session should end."""
        line = line.strip()
        if not line or line.startswith("#"):
            return True
        verb, _, rest = line.partition(" ")
        verb, rest = verb.lower(), rest.strip()
        self._acting = presets.person(self.person).id
        try:
            # Whatever reached Slack since the last action (posted by other code, other threads) comes first,
            # and is then known to `click`.
            self.sync()
            if verb in ("quit", "exit"):
                return False
            if line.startswith("/"):
                self._slash_command(line)
            elif verb == "as":
                self._act_as(rest)
            elif verb == "in":
                self._go_to(rest)
            elif verb == "click":
                self._click(rest)
            elif verb == "fill":
                self._fill(rest)
            elif verb == "submit":
                self._submit()
            elif verb == "close":
                self._close_modal()
            elif verb == "home":
                self._open_home()
            elif verb == "advance":
                self._advance(rest)
            elif verb in ("uninstall", "reinstall"):
                self._lifecycle(verb)
            elif verb == "share":
                self._share(rest)
            elif verb == "now":
                self._write(f"(it is {self._time()})", "time")
            elif verb in ("help", "?"):
                self._write(HELP)
            else:
                raise ConsoleError(f"unknown action {verb!r} (type `help` for the list)")
        except ConsoleError as exc:
            self._write(f"! {exc}", "error")
        except Exception as exc:  # a bug (ours or the bot's) must not end the session; the log has the trace
            log.exception("console action failed: %s", line)
            self._write(f"! the console failed on that line: {exc!r}", "error")
        self._flush()
        return True

    def _slash_command(self, line: str) -> None:
        command, _, text = line.partition(" ")
        response = self.sim.command(
            self._sim_person(), self.channel, self.slack_text(text.strip()),
            channel_name=self.names.channel(self.channel), command=command,
        )
        target = ResponseTarget(self._acting, self.channel)
        self._targets[self.sim.last_response_path] = target
        self._settle(response, target)

    def slack_text(self, text: str) -> str:
        """Command text the way Slack sends it with should_escape: &, <, > escaped, then mentions linked."""
        escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        users = {p.key: p.id for p in presets.PEOPLE}
        channels = {name: cid for cid, name in self.names.channels.items()}

        def link(match: re.Match) -> str:
            sigil, name = match.groups()
            if sigil == "@" and name.lower() in users:
                return f"<@{users[name.lower()]}|{name.lower()}>"
            if sigil == "#" and name.lower() in channels:
                return f"<#{channels[name.lower()]}|{name.lower()}>"
            return match.group(0)  # Slack leaves names it does not know as typed

        return _MENTION.sub(link, escaped)

    def _act_as(self, who: str) -> None:
        key = who.lstrip("@").lower()
        try:
            self.person = presets.person(key).key
        except KeyError:
            raise ConsoleError(
                f"no person {who!r}: choose " + ", ".join(p.key for p in presets.PEOPLE)
            ) from None

    def _go_to(self, where: str) -> None:
        name = where.lstrip("#").strip().lower()
        if not name or not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,79}", name):
            raise ConsoleError("usage: in #channel-name (lowercase letters, digits, - and _)")
        found = next((cid for cid, known in self.names.channels.items() if known == name), None)
        if found is None:
            found = "C" + secrets.token_hex(5).upper()
            self.fake.add_channel(found, name=name, members=(self._acting,))
            self.names.channels[found] = name
            self._write(f"(created #{name}, members: {self.person})", "dim")
        self.channel = found

    def _share(self, where: str) -> None:
        """carol's company joins a channel through Slack Connect: Slack flags it shared and sends channel_shared."""
        name = where.lstrip("#").strip().lower()
        found = next((cid for cid, known in self.names.channels.items() if known == name), None)
        if found is None:
            raise ConsoleError("usage: share #channel-name (a channel that exists, e.g. share #managers)")
        self.sim.event(self.fake.share_channel(found, with_team=presets.CUSTOMER_TEAM))
        self._write(f"(#{name} is now shared with carol's company)", "dim")
        self._settle(None, None)

    def _click(self, wanted: str) -> None:
        if not wanted:
            raise ConsoleError("usage: click <button text>")
        candidate = self._find_button(wanted)
        surface = candidate.surface
        action = candidate.action()
        if candidate.element.get("url"):
            self._write(f"(opens {candidate.element['url']})", "dim")
        if surface.kind in ("modal", "home"):
            view = surface.payload
            if surface.kind == "modal":
                view = {**view, "state": {"values": self._state_values(self._modal_stack()[-1])}}
            response = self.sim.click(self._sim_person(), action=action, view=view)
            self._settle(response, ResponseTarget(self._acting, self.channel))
            return
        message = {"type": "message", "ts": surface.ts, "text": surface.payload.get("text", ""),
                   "blocks": surface.blocks}
        response = self.sim.click(self._sim_person(), action=action, channel_id=surface.channel,
                                  message=message, ephemeral=surface.kind == "ephemeral")
        target = ResponseTarget(self._acting, surface.channel or self.channel, origin=surface.key)
        self._targets[self.sim.last_response_path] = target
        self._settle(response, target)

    def _find_button(self, wanted: str) -> Candidate:
        """On the open modal first (it covers everything else), then the newest surface showing it."""
        ordered: list[Surface] = []
        stack = self._modals.get(self._acting)
        if stack:
            top = stack[-1]
            ordered.append(Surface("modal", None, top.view.get("id"), self._acting, top.view))
        visible = [s for s in [*self._surfaces.values(), *self._homes.values()]
                   if s.viewer in (None, self._acting)]
        ordered.extend(sorted(visible, key=lambda s: s.seq, reverse=True))
        per_surface = [self._candidates(s) for s in ordered]
        want = _normal(wanted)
        for candidates in per_surface:
            for candidate in candidates:
                if _normal(candidate.label) == want or candidate.label.casefold() == wanted.casefold():
                    return candidate
        for candidates in per_surface:
            if any(_normal(c.label).startswith(want) for c in candidates):
                return _pick(candidates, lambda c: c.label, wanted, "button")
        raise ConsoleError(f"no button {wanted!r} on any message or view {self.person} can see")

    @staticmethod
    def _candidates(surface: Surface) -> list[Candidate]:
        found = []
        for block in surface.blocks:
            elements = list(block.get("elements") or []) if block.get("type") in ("actions", "context_actions") else []
            if block.get("type") == "section" and block.get("accessory"):
                elements.append(block["accessory"])
            for element in elements:
                if not isinstance(element, dict):
                    continue
                kind = element.get("type")
                if kind in ("button", "workflow_button"):
                    label = (element.get("text") or {}).get("text", "")
                    found.append(Candidate(surface, block, element, label))
                elif kind in ("overflow", "static_select", "radio_buttons"):
                    for option in _options(element):
                        found.append(Candidate(surface, block, element, (option.get("text") or {}).get("text", ""),
                                               option))
        return found

    # -- modals ---------------------------------------------------------------------------------------------

    def _modal_stack(self) -> list[Modal]:
        stack = self._modals.get(self._acting)
        if not stack:
            raise ConsoleError(f"{self.person} has no modal open")
        return stack

    def _fill(self, rest: str) -> None:
        name, colon, raw = rest.partition(":")
        if not colon or not name.strip():
            raise ConsoleError("usage: fill <label or block_id>: <value>")
        modal = self._modal_stack()[-1]
        inputs = [b for b in modal.view.get("blocks") or [] if b.get("type") == "input"]
        if not inputs:
            raise ConsoleError("this modal has no inputs")
        name, raw = name.strip(), raw.strip()
        block = next((b for b in inputs if b.get("block_id") == name), None)
        if block is None:
            block = _pick(inputs, lambda b: _text(b.get("label"), self.names), name, "input")
        element = block.get("element") or {}
        state = self._state(element, raw, block, modal.view)
        modal.filled[self._block_id(block)] = state
        kind = element.get("type", "")
        shown = _shown_value(kind, state.get(STATE_KEYS[kind][0]), self.names)
        self._write(f"  [input] {_text(block.get('label'), self.names)} = {shown}", "dim")

    def _state(self, element: dict, raw: str, block: dict, view: dict) -> dict:
        """A typed value as Slack's state.values entry for this element."""
        kind = element.get("type", "")
        if kind not in STATE_KEYS:
            raise ConsoleError(f"the console cannot fill a {kind or 'typeless'} input")
        key, _ = STATE_KEYS[kind]
        many = key.endswith("s")  # selected_options, selected_users, …: a list
        if not raw:
            return {"type": kind, key: [] if many else None}
        words = [w.strip() for w in raw.split(",") if w.strip()] if many else [raw]
        if kind in ("static_select", "radio_buttons", "multi_static_select", "checkboxes"):
            values = [self._option(_options(element), w) for w in words]
        elif kind in ("external_select", "multi_external_select"):
            values = [self._option(self._load_options(element, block, view, w), w) for w in words]
        elif kind.endswith("users_select"):
            values = [self._user_id(w) for w in words]
        elif "channel" in kind or "conversation" in kind:
            values = [self._channel_id(w) for w in words]
        elif kind == "datepicker":
            values = [self._date(raw).isoformat()]
        elif kind == "timepicker":
            if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", raw):
                raise ConsoleError("a time is HH:MM, e.g. 09:30")
            values = [raw]
        elif kind == "datetimepicker":
            try:
                moment = datetime.strptime(raw, "%Y-%m-%d %H:%M").replace(tzinfo=UTC)
            except ValueError:
                raise ConsoleError("a date and time is YYYY-MM-DD HH:MM (UTC)") from None
            values = [int(moment.timestamp())]
        elif kind == "rich_text_input":
            values = [{"type": "rich_text", "elements": [
                {"type": "rich_text_section", "elements": [{"type": "text", "text": raw}]}]}]
        else:
            values = [raw]
        return {"type": kind, key: values if many else values[0]}

    def _option(self, options: list[dict], wanted: str) -> dict:
        if not options:
            raise ConsoleError(f"no options to choose {wanted!r} from")
        try:
            return _pick(options, lambda o: (o.get("text") or {}).get("text", ""), wanted, "option")
        except ConsoleError:
            by_value = [o for o in options if str(o.get("value", "")).casefold() == wanted.casefold()]
            if by_value:
                return by_value[0]
            raise

    def _load_options(self, element: dict, block: dict, view: dict, typed: str) -> list[dict]:
        """external_select: ask the app for options the way Slack does while the person types."""
        response = self.sim.options(self._sim_person(), action_id=element.get("action_id", ""), value=typed,
                                    block_id=self._block_id(block), view=view)
        if response.status != 200:
            raise ConsoleError(f"the app answered HTTP {response.status} for options")
        return _options(response.json() or {})

    def _user_id(self, word: str) -> str:
        word = word.strip().lstrip("@")
        with contextlib.suppress(KeyError):
            return presets.person(word.lower()).id
        if re.fullmatch(r"[UW][A-Z0-9]+", word):
            return word
        raise ConsoleError(f"no person {word!r}: choose " + ", ".join(p.key for p in presets.PEOPLE))

    def _channel_id(self, word: str) -> str:
        name = word.strip().lstrip("#").lower()
        for cid, known in self.names.channels.items():
            if known == name or cid.lower() == name:
                return cid
        raise ConsoleError(f"no channel #{name}")

    def _date(self, raw: str) -> date:
        today = self.clock.now().date()
        relative = {"today": today, "tomorrow": today + timedelta(days=1), "yesterday": today - timedelta(days=1)}
        if raw.lower() in relative:
            return relative[raw.lower()]
        try:
            return date.fromisoformat(raw)
        except ValueError:
            raise ConsoleError("a date is YYYY-MM-DD (or today, tomorrow)") from None

    @staticmethod
    def _block_id(block: dict) -> str:
        # Slack gives a block without block_id a random one; a stable stand-in keeps fills attached to it.
        return block.get("block_id") or "console-" + str(abs(hash(json.dumps(block, sort_keys=True))) % 10**8)

    def _state_values(self, modal: Modal) -> dict:
        """state.values of every input: what was filled, else the initial value, else empty (as Slack sends)."""
        values: dict[str, dict] = {}
        for block in modal.view.get("blocks") or []:
            if block.get("type") != "input":
                continue
            element = block.get("element") or {}
            kind = element.get("type", "")
            block_id = self._block_id(block)
            action_id = element.get("action_id") or block_id + "-action"
            if block_id in modal.filled:
                state = modal.filled[block_id]
            elif kind in STATE_KEYS:
                key, initial = STATE_KEYS[kind]
                empty: list | None = [] if key.endswith("s") else None
                state = {"type": kind, key: element.get(initial, empty)}
            else:
                continue
            values[block_id] = {action_id: state}
        return values

    def _submit(self) -> None:
        stack = self._modal_stack()
        modal = stack[-1]
        values = self._state_values(modal)
        # Slack's client refuses to send a form with an empty required input; so does the console.
        missing = []
        for block in modal.view.get("blocks") or []:
            if block.get("type") == "input" and not block.get("optional"):
                state = next(iter(values.get(self._block_id(block), {}).values()), {})
                if all(v in (None, "", []) for k, v in state.items() if k != "type"):
                    missing.append(_text(block.get("label"), self.names))
        if missing:
            raise ConsoleError("fill these first: " + ", ".join(missing))
        response = self.sim.submit(self._sim_person(), modal.view, values)
        answer: dict = {}
        if response.status == 200 and response.body:
            try:
                answer = response.json() or {}
            except ValueError:
                answer = {}
        action = answer.get("response_action")
        if response.status == 200:
            if action == "errors":
                self._write(f'! the form says ("{self._title(modal.view)}" stays open):', "error")
                labels = {self._block_id(b): _text(b.get("label"), self.names)
                          for b in modal.view.get("blocks") or []}
                for block_id, message in (answer.get("errors") or {}).items():
                    self._write(f"  {labels.get(block_id, block_id)}: {unslack(message, self.names)}", "error")
            elif action in ("update", "push"):
                view = {"id": modal.view.get("id") if action == "update" else f"V{next(self._seq):010d}",
                        **answer.get("view", {})}
                if action == "update":
                    stack[-1] = Modal(view)
                else:
                    stack.append(Modal(view))
                self._show_modal(view, "(updated)" if action == "update" else "")
            elif action == "clear":
                self._modals.pop(self._acting, None)
                self._write("(modal closed)", "dim")
            else:
                stack.pop()
                self._write("(modal closed)", "dim")
        self._settle(response, ResponseTarget(self._acting, self.channel), ack_is_message=False)

    def _close_modal(self) -> None:
        stack = self._modal_stack()
        closed = stack.pop()
        self._write(f'(closed "{self._title(closed.view)}")', "dim")
        # A view with notify_on_close tells the app, as Slack does with view_closed.
        if closed.view.get("notify_on_close"):
            payload = {"type": "view_closed", "team": {"id": presets.HOME_TEAM}, "user": {"id": self._acting},
                       "api_app_id": self.sim.app_id, "view": closed.view, "is_cleared": False}
            response = self.sim.send(urlencode({"payload": json.dumps(payload)}),
                                     "application/x-www-form-urlencoded")
            self._settle(response, ResponseTarget(self._acting, self.channel), ack_is_message=False)

    def _open_home(self) -> None:
        before = self._homes.get(self._acting)
        seen = before.seq if before else 0
        response = self.sim.event({
            "type": "app_home_opened", "user": self._acting, "channel": self.fake.dm_channel(self._acting),
            "tab": "home", "event_ts": f"{time.time():.6f}",
        })
        if response.status == 404:
            self._write("(the app does not handle app_home_opened)", "dim")
            response = Response(200, "", {})
        self._settle(response, ResponseTarget(self._acting, self.channel), ack_is_message=False)
        home = self._homes.get(self._acting)
        if home is None:
            self._write(f"(the App Home of {self.person} is empty)", "dim")
        elif home.seq == seen:
            # Nothing new was published: show what the tab still displays.
            self._print_block(f"[App Home of {self.person}]", render_blocks(home.blocks, self.names))

    # -- time ------------------------------------------------------------------------------------------------

    def _advance(self, spec: str) -> None:
        spec = spec.replace(" ", "").lower()
        parts = _DURATION.findall(spec)
        if not parts or "".join(n + u for n, u in parts) != spec:
            raise ConsoleError("usage: advance <N>m|h|d|w, e.g. advance 30m, advance 2h, advance 7d")
        total = sum((int(n) * _UNITS[u] for n, u in parts), timedelta())
        if total <= timedelta() or total > MAX_ADVANCE:
            raise ConsoleError("advance between 1 minute and 366 days")
        # Small steps keep reminders close to their minute; coarser ones keep `advance 7d` to a few seconds.
        step = timedelta(minutes=5) if total <= timedelta(days=1) else (
            timedelta(minutes=15) if total <= timedelta(days=7) else timedelta(hours=1))
        end = self.clock.now() + total
        for _ in range(math.ceil(total / step)):
            self.clock.advance(min(step, end - self.clock.now()))
            run_due_work(self.runtime)
            self._settle(None, None, stamp=True)
        self._write(f"(it is now {self._time()})", "time")

    def _lifecycle(self, verb: str) -> None:
        """An admin removes the app (Slack revokes its token and sends app_uninstalled), or installs it again
        (a new bot token configured, as an operator would after reinstalling)."""
        from bot.slack.installs import clients_of, resume_for_new_token

        if verb == "uninstall":
            self.fake.revoke(presets.HOME_TEAM)
            self.sim.event({"type": "app_uninstalled"})
            self.executor.wait_idle()
            self._write("(Rapport was removed from the workspace: its reminders and digest wait, its data is kept)",
                        "time")
            return
        self.runtime.client.token = self.fake.issue_token(presets.HOME_TEAM)
        clients_of(self.runtime).forget(presets.HOME_TEAM)
        resume_for_new_token(self.runtime)
        self._write("(Rapport was installed again: what fell due meanwhile comes now, marked late)", "time")
        run_due_work(self.runtime, everything=True)
        self._settle(None, None, stamp=True)

    def sync(self) -> None:
        """Print (and remember) what the bot sent since the last action, without doing anything."""
        self._settle(None, None)

    def _time(self) -> str:
        now = self.clock.now()
        return now.strftime("%a %d %b %Y %H:%M UTC")

    # -- after every action: print what the bot sent --------------------------------------------------------

    def _settle(self, response: Response | None, target: ResponseTarget | None, *, ack_is_message: bool = True,
                stamp: bool = False) -> None:
        """Wait for the listeners, then print the HTTP answer and every message the bot sent since last time."""
        try:
            self.executor.wait_idle()
        except TimeoutError as exc:
            self._write(f"! {exc}", "error")
        lines: list[tuple[str, list[tuple[str, str | None]]]] = []
        if response is not None:
            if response.status != 200:
                lines.append((f"! HTTP {response.status} {response.body[:300]}".rstrip(), []))
            elif ack_is_message and response.body and target is not None:
                lines.extend(self._ack_reply(response, target))
        calls = self.fake.calls()[self._cursor:]
        self._cursor += len(calls)
        for call in calls:
            lines.extend(self._shown(call))
        errors = self.executor.errors[self._errors_seen:]
        self._errors_seen += len(errors)
        lines.extend((f"! a listener raised {error!r}", []) for error in errors)
        if lines and stamp:
            self._write(f"── {self._time()} ──", "time")
        for label, body in lines:
            self._print_block(label, body)

    def _ack_reply(self, response: Response, target: ResponseTarget) -> list:
        try:
            payload = response.json()
        except ValueError:
            payload = {"text": response.body}  # Slack shows a plain-text ack body as an ephemeral reply
        if not isinstance(payload, dict) or not (payload.get("text") or payload.get("blocks")):
            return []
        surface = self._remember_reply(payload, target)
        return [(self._label(surface), render_message(payload, self.names))]

    def _remember_reply(self, payload: dict, target: ResponseTarget) -> Surface:
        """A reply to a command or click: a channel message when in_channel, else ephemeral to the actor."""
        ts = f"{int(time.time())}.{next(self._seq):06d}"
        if payload.get("response_type") == "in_channel":
            surface = Surface("message", target.channel, ts, self._dm_user(target.channel), payload)
        else:
            surface = Surface("ephemeral", target.channel, ts, target.user, payload)
        target.origin = surface.key  # a later replace_original on the same response_url replaces this one
        return self._remember(surface)

    def _shown(self, call: Call) -> list:
        """(label, rendered lines) for one recorded Web API call; calls nobody sees are skipped."""
        if call.method not in _OUTPUT_METHODS:
            return []
        args, answer = call.args, call.response
        if call.status != 200 or not answer.get("ok"):
            reasons = "; ".join(answer.get("errors") or [])
            return [(f"! Slack refused {call.method}: {answer.get('error')}" + (f" ({reasons})" if reasons else ""),
                     [])]
        method = call.method
        if method == "chat.postMessage":
            surface = self._remember(Surface("message", answer["channel"], answer["ts"],
                                             self._dm_user(answer["channel"]), answer.get("message") or args))
            thread = " (in thread)" if args.get("thread_ts") else ""
            return [(self._label(surface) + thread, render_message(surface.payload, self.names))]
        if method == "chat.postEphemeral":
            channel = self._storage_channel(args.get("channel", ""))
            surface = self._remember(Surface("ephemeral", channel, answer.get("message_ts"), args.get("user"),
                                             {"text": args.get("text"), "blocks": args.get("blocks")}))
            return [(self._label(surface), render_message(surface.payload, self.names))]
        if method == "chat.update":
            channel = answer.get("channel") or args.get("channel", "")
            surface = self._remember(Surface("message", channel, answer.get("ts"), self._dm_user(channel),
                                             answer.get("message") or args))
            return [(self._label(surface) + " (updated)", render_message(surface.payload, self.names))]
        if method == "chat.delete":
            channel = answer.get("channel") or args.get("channel", "")
            surface = self._surfaces.pop(("message", channel, answer.get("ts")), None)
            return [(self._label(surface) if surface else f"[{self._where(channel)}]") + " (deleted)", []]
        if method == "response_url":
            return self._response_url_post(call)
        if method == "views.publish":
            user = args.get("user_id", "")
            home = Surface("home", None, answer["view"]["id"], user, answer["view"], next(self._seq))
            self._homes[user] = home
            return [(f"[App Home of {self.names.user(user)}]", render_blocks(home.blocks, self.names))]
        return self._view_call(method, answer["view"])

    def _view_call(self, method: str, view: dict) -> list:
        if method == "views.update":
            for user, home in self._homes.items():
                if home.payload.get("id") == view["id"]:
                    self._homes[user] = Surface("home", None, view["id"], user, view, next(self._seq))
                    return [(f"[App Home of {self.names.user(user)}] (updated)", render_blocks(view["blocks"],
                                                                                                self.names))]
            for stack in self._modals.values():
                for i, modal in enumerate(stack):
                    if modal.view.get("id") == view["id"]:
                        # Slack keeps what was typed into inputs whose block_id survives the update.
                        kept = {b: s for b, s in modal.filled.items()
                                if any(self._block_id(x) == b for x in view.get("blocks") or [])}
                        stack[i] = Modal(view, kept)
                        return [(self._modal_label(view, "(updated)"), self._modal_lines(view))]
            return [(self._modal_label(view, "(updated, not open)"), self._modal_lines(view))]
        stack = self._modals.setdefault(self._acting, [])
        if method == "views.open":
            stack.clear()
        stack.append(Modal(view))
        return [(self._modal_label(view, ""), self._modal_lines(view))]

    def _response_url_post(self, call: Call) -> list:
        args = call.args
        target = self._targets.get(call.path) or ResponseTarget(self._acting, self.channel)
        original = self._surfaces.get(target.origin) if target.origin else None
        if args.get("delete_original"):
            if original is not None:
                del self._surfaces[original.key]
                return [(self._label(original) + " (deleted)", [])]
            return [(f"[{self._where(target.channel)}] (deleted)", [])]
        if args.get("replace_original") and original is not None:
            payload = {"text": args.get("text") or "", "blocks": args.get("blocks") or []}
            original.payload = payload
            self._remember(original)
            return [(self._label(original) + " (updated)", render_message(payload, self.names))]
        surface = self._remember_reply(args, target)
        return [(self._label(surface), render_message(args, self.names))]

    # -- memory and labels -----------------------------------------------------------------------------------

    def _remember(self, surface: Surface) -> Surface:
        surface.seq = next(self._seq)
        self._surfaces[surface.key] = surface
        if len(self._surfaces) > MAX_REMEMBERED:
            oldest = min(self._surfaces.values(), key=lambda s: s.seq)
            del self._surfaces[oldest.key]
        return surface

    def _storage_channel(self, channel: str) -> str:
        return self.fake.dm_channel(channel) if channel[:1] in ("U", "W") else channel

    def _dm_user(self, channel: str) -> str | None:
        """The person a DM channel belongs to (None for shared channels): only they see what is in it."""
        if channel[:1] in ("U", "W"):
            return channel
        if channel[:1] != "D":
            return None
        if channel not in self._dms:
            for call in self.fake.calls("conversations.open"):
                opened = (call.response.get("channel") or {}).get("id")
                users = call.args.get("users")
                if opened and isinstance(users, str) and "," not in users:
                    self._dms[opened] = users
        # The fake names a user's DM D + the rest of their id; a fair guess for DMs opened some other way.
        return self._dms.get(channel, "U" + channel[1:])

    def _where(self, channel: str | None) -> str:
        if not channel:
            return "?"
        user = self._dm_user(channel)
        return f"DM to {self.names.user(user)}" if user else "#" + self.names.channel(channel)

    def _label(self, surface: Surface) -> str:
        if surface.kind == "ephemeral":
            return f"[ephemeral to {self.names.user(surface.viewer or '')} in {self._where(surface.channel)}]"
        return f"[{self._where(surface.channel)}]"

    @staticmethod
    def _title(view: dict) -> str:
        return (view.get("title") or {}).get("text", "")

    def _modal_label(self, view: dict, note: str) -> str:
        return f'[modal "{self._title(view)}"]' + (f" {note}" if note else "")

    def _modal_lines(self, view: dict) -> list[tuple[str, str | None]]:
        lines = render_blocks(view.get("blocks") or [], self.names)
        buttons = []
        if view.get("submit"):
            buttons.append(f"[ {_text(view['submit'], self.names)} ] (submit)")
        buttons.append(f"[ {_text(view.get('close'), self.names) or 'Cancel'} ] (close)")
        lines.append(("  ".join(buttons), "dim"))
        return lines

    def _show_modal(self, view: dict, note: str) -> None:
        self._print_block(self._modal_label(view, note), self._modal_lines(view))

    def _sim_person(self) -> Person:
        chosen = presets.person(self.person)
        return Person(id=chosen.id, name=chosen.name, team_id=chosen.team_id)

    # -- output ----------------------------------------------------------------------------------------------

    def _print_block(self, label: str, lines: list[tuple[str, str | None]]) -> None:
        self._write(label, "error" if label.startswith("!") else "label")
        for text, style in lines:
            self._write("  " + text, style)

    def _write(self, text: str, style: str | None = None) -> None:
        if self.color and style and text:
            text = f"\033[{_STYLES[style]}m{text}\033[0m"
        self.out.write(text + "\n")

    def _flush(self) -> None:
        with contextlib.suppress(Exception):
            self.out.flush()


def run_console(
    settings: Settings, *, script: str | None = None, out: TextIO | None = None, clock: ManualClock | None = None
) -> int:
    """`rapport console`: a prompt, or the actions of `script` (a file, or `-` for stdin); returns the exit code."""
    out = out if out is not None else sys.stdout
    if script is None and not sys.stdin.isatty():
        script = "-"  # piped input is a script, echoed like one
    if script not in (None, "-") and not Path(script).is_file():
        print(f"rapport console: no such script: {script}", file=sys.stderr)
        return 2
    with Console(settings, out=out, clock=clock) as console:
        if script is None:
            return console.interact()
        if script == "-":
            return console.run_script(sys.stdin)
        with open(script, encoding="utf-8") as lines:
            return console.run_script(lines)
