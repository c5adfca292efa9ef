"""A Slack-compatible fake Web API on 127.0.0.1, for the test-suite, benchmarks and the local console simulator."""

from __future__ import annotations

import contextlib
import copy
import itertools
import json
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo

from jsonschema import Draft202012Validator, ValidationError, validators
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from bot.slack.fake_socket import FakeSocketMode
from bot.slack.fake_tokens import FakeTokens

__all__ = [
    "Call",
    "FakeSlack",
    "MAX_BLOCKS_PER_MESSAGE",
    "MAX_BLOCKS_PER_VIEW",
    "MAX_MESSAGE_TEXT",
    "validate_message_blocks",
    "validate_view",
]

SCHEMA_PATH = Path(__file__).with_name("block-kit.schema.json")
MAX_BLOCKS_PER_MESSAGE = 50
MAX_BLOCKS_PER_VIEW = 100
MAX_MESSAGE_TEXT = 40_000
MAX_TABLES_PER_MESSAGE = 1
MAX_MARKDOWN_PER_MESSAGE = 12_000
# Reporting every error of a badly broken payload only buries the first one.
_MAX_REPORTED_ERRORS = 20

# Fields slack_sdk (and hand-written callers) may send as JSON text inside a form body.
_JSON_FIELDS = frozenset({"blocks", "attachments", "view", "metadata", "unfurls", "users"})


# --------------------------------------------------------------------------------------------------------------
# Block Kit validation
# --------------------------------------------------------------------------------------------------------------


def _union_branches(branches: list[Any], defs: dict[str, Any]) -> list[tuple[str, str]] | None:
    """(type const, $ref) per branch when a oneOf is a union told apart by ``type``; None otherwise."""
    found: list[tuple[str, str]] = []
    for branch in branches:
        if (
            not isinstance(branch, dict)
            or set(branch) != {"$ref"}
            or not branch["$ref"].startswith("#/$defs/")
        ):
            return None
        target = defs.get(branch["$ref"].rsplit("/", 1)[-1])
        if not isinstance(target, dict):
            return None
        if set(target) == {"oneOf"}:
            nested = _union_branches(target["oneOf"], defs)
            if nested is None:
                return None
            found.extend(nested)
            continue
        const = target.get("properties", {}).get("type", {}).get("const")
        if not isinstance(const, str) or "type" not in target.get("required", ()):
            return None
        found.append((const, branch["$ref"]))
    consts = [const for const, _ in found]
    return found if len(set(consts)) == len(consts) else None


def _dispatch_unions(node: Any, defs: dict[str, Any]) -> None:
    """Rewrite every ``type``-discriminated ``oneOf`` as an ``x-dispatch`` keyword, in place.

    Equivalent for every payload, but only the branch whose ``type`` matches is validated instead of all of
    them (jsonschema's oneOf made a single button cost ~0.5 ms), and the errors come from the element the
    author meant rather than "not valid under any of the given schemas".
    """
    if isinstance(node, list):
        for item in node:
            _dispatch_unions(item, defs)
        return
    if not isinstance(node, dict):
        return
    for value in node.values():
        _dispatch_unions(value, defs)
    branches = _union_branches(node["oneOf"], defs) if "oneOf" in node else None
    if branches is not None:
        del node["oneOf"]
        node["x-dispatch"] = dict(branches)


def _x_dispatch(validator: Any, mapping: dict[str, str], instance: Any, schema: Any) -> Any:
    if not isinstance(instance, dict):
        yield ValidationError("must be an object", validator="type", validator_value="object")
        return
    kind = instance.get("type")
    if kind is None:
        yield ValidationError("'type' is a required property", validator="required", validator_value=["type"])
        return
    ref = mapping.get(kind) if isinstance(kind, str) else None
    if ref is None:
        yield ValidationError(
            f"{kind!r} is not allowed here (allowed: {', '.join(mapping)})",
            validator="x-dispatch",
            validator_value=list(mapping),
            path=["type"],
        )
        return
    yield from validator.descend(instance, {"$ref": ref})


_Validator = validators.extend(Draft202012Validator, {"x-dispatch": _x_dispatch})


@cache
def _validators() -> tuple[dict[str, Any], dict[str, Any]]:
    """Compile once: per-block-type validators and view "shells" whose blocks are checked block by block.

    A block is validated against its own definition, picked by ``type``, instead of the 21-way ``oneOf`` of
    ``$defs/block``: faster, and the error is about the block's own fields.
    """
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    defs = schema["$defs"]
    block_defs = {
        defs[name]["properties"]["type"]["const"]: name
        for name in (ref["$ref"].rsplit("/", 1)[-1] for ref in defs["block"]["oneOf"])
    }
    _dispatch_unions(defs, defs)
    for surface in ("modal", "home"):
        shell = copy.deepcopy(defs[f"{surface}_view"])
        shell["properties"]["blocks"]["items"] = True
        defs[f"_{surface}_shell"] = shell
    registry = DRAFT202012.create_resource(schema) @ Registry()
    base = schema["$id"]

    def compile_def(name: str) -> Draft202012Validator:
        return _Validator({"$ref": f"{base}#/$defs/{name}"}, registry=registry)

    blocks = {block_type: compile_def(name) for block_type, name in block_defs.items()}
    views = {surface: compile_def(f"_{surface}_shell") for surface in ("modal", "home")}
    return blocks, views


def _render_path(prefix: str, path: Any) -> str:
    return prefix + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)


def _reason(err: Any) -> str:
    v, inst = err.validator, err.instance
    limit = err.validator_value
    if v == "maxLength":
        return f"must be at most {limit} characters (got {len(inst)})"
    if v == "minLength":
        return f"must be at least {limit} character{'s' if limit != 1 else ''} (got {len(inst)})"
    if v == "maxItems":
        return f"must have at most {limit} items (got {len(inst)})"
    if v == "minItems":
        return f"must have at least {limit} item{'s' if limit != 1 else ''} (got {len(inst)})"
    if v == "const":
        return f"must be {limit!r}"
    if v == "enum":
        return f"must be one of {limit!r}"
    if v == "type":
        return f"must be of type {limit!r}"
    message = err.message
    return message if len(message) <= 200 else message[:197] + "..."


def _is_discriminator_miss(err: Any) -> bool:
    """True when a oneOf/anyOf branch failed only because it describes another kind of object."""
    rel = list(err.relative_path)
    return (err.validator == "const" and rel == ["type"]) or (err.validator == "type" and not rel)


def _describe(err: Any, prefix: str) -> list[str]:
    if err.validator in ("oneOf", "anyOf") and err.context:
        branches: dict[Any, list[Any]] = defaultdict(list)
        for sub in err.context:
            branches[sub.relative_schema_path[0]].append(sub)
        live = [errs for errs in branches.values() if not any(_is_discriminator_miss(e) for e in errs)]
        where = _render_path(prefix, err.absolute_path)
        if not live:
            kind = err.instance.get("type") if isinstance(err.instance, dict) else type(err.instance).__name__
            return [f"{where}: {kind!r} is not allowed here"]
        if len(live) > 1 and all(e.validator == "required" for errs in live for e in errs):
            names = sorted({repr(name) for errs in live for e in errs for name in e.validator_value})
            return [f"{where}: needs one of {', '.join(names)}"]
        # Several kinds still fit: the one that got furthest into the payload is the one the author meant.
        best = max(live, key=lambda errs: max(len(e.absolute_path) for e in errs))
        return [line for e in best for line in _describe(e, prefix)]
    return [f"{_render_path(prefix, err.absolute_path)}: {_reason(err)}"]


_block_cache: dict[str, tuple[str, ...]] = {}
_BLOCK_CACHE_SIZE = 4096


def _block_errors(validator: Any, block: dict[str, Any]) -> tuple[str, ...]:
    """Errors of one block, paths relative to it; memoised because bots send the same blocks over and over."""
    try:
        key = json.dumps(block, sort_keys=True)
    except (TypeError, ValueError):
        key = None
    if key is not None and (hit := _block_cache.get(key)) is not None:
        return hit
    found = tuple(line for err in validator.iter_errors(block) for line in _describe(err, ""))
    if key is not None:
        if len(_block_cache) >= _BLOCK_CACHE_SIZE:
            _block_cache.clear()
        _block_cache[key] = found
    return found


def _validate_blocks(blocks: Any, prefix: str, max_blocks: int | None, surface: str) -> list[str]:
    if not isinstance(blocks, list):
        return [f"{prefix}: must be an array of blocks"]
    errors: list[str] = []
    if max_blocks is not None and len(blocks) > max_blocks:
        errors.append(f"{prefix}: at most {max_blocks} blocks per {surface} (got {len(blocks)})")
    by_type, _ = _validators()
    for i, block in enumerate(blocks):
        where = f"{prefix}[{i}]"
        if not isinstance(block, dict):
            errors.append(f"{where}: must be an object")
            continue
        validator = by_type.get(block.get("type"))  # type: ignore[arg-type]
        if validator is None:
            if "type" not in block:
                errors.append(f"{where}: 'type' is a required property")
            else:
                errors.append(f"{where}.type: unknown block type {block['type']!r}")
            continue
        errors.extend(where + reason for reason in _block_errors(validator, block))
        if len(errors) >= _MAX_REPORTED_ERRORS:
            break
    return errors[:_MAX_REPORTED_ERRORS]


def validate_message_blocks(blocks: Any) -> list[str]:
    """Reasons Slack would refuse these message blocks (``invalid_blocks``); empty list when valid.

    An empty list of blocks is valid (Slack treats it as "no blocks"); the message then needs ``text``.
    """
    if isinstance(blocks, list) and not blocks:
        return []
    errors = _validate_blocks(blocks, "blocks", MAX_BLOCKS_PER_MESSAGE, "message")
    if isinstance(blocks, list):
        # Payload-level rules the schema cannot express.
        tables = sum(1 for b in blocks if isinstance(b, dict) and b.get("type") == "table")
        if tables > MAX_TABLES_PER_MESSAGE:
            errors.append(f"blocks: at most {MAX_TABLES_PER_MESSAGE} table block per message (got {tables})")
        markdown = sum(
            len(b["text"])
            for b in blocks
            if isinstance(b, dict) and b.get("type") == "markdown" and isinstance(b.get("text"), str)
        )
        if markdown > MAX_MARKDOWN_PER_MESSAGE:
            errors.append(
                f"blocks: markdown blocks may hold at most {MAX_MARKDOWN_PER_MESSAGE} characters "
                f"in total (got {markdown})"
            )
    return errors


def validate_view(view: Any, surface: str = "modal") -> list[str]:
    """Reasons Slack would refuse this view (``invalid_arguments``); ``surface`` is "modal" or "home"."""
    if surface not in ("modal", "home"):
        raise ValueError(f"surface must be 'modal' or 'home', not {surface!r}")
    if not isinstance(view, dict):
        return ["view: must be an object"]
    _, shells = _validators()
    errors: list[str] = []
    for err in shells[surface].iter_errors(view):
        errors.extend(_describe(err, "view"))
    blocks = view.get("blocks")
    if isinstance(blocks, list) and blocks:
        # The schema's maxItems (MAX_BLOCKS_PER_VIEW) already caps the count; this checks each block.
        errors.extend(_validate_blocks(blocks, "view.blocks", None, f"{surface} view"))
    return errors[:_MAX_REPORTED_ERRORS]


def _message_problems(args: dict[str, Any], *, need_content: bool) -> tuple[str, list[str]] | None:
    """The (error, reasons) Slack would answer for a message payload, or None when it is acceptable."""
    text, blocks = args.get("text"), args.get("blocks")
    if need_content and not text and not blocks and not args.get("attachments"):
        return "no_text", []
    if isinstance(text, str) and len(text) > MAX_MESSAGE_TEXT:
        return "msg_too_long", [f"text: must be at most {MAX_MESSAGE_TEXT} characters (got {len(text)})"]
    if blocks is not None:
        reasons = validate_message_blocks(blocks)
        if reasons:
            return "invalid_blocks", reasons
    return None


def _refusal(error: str, reasons: list[str]) -> dict[str, Any]:
    body: dict[str, Any] = {"ok": False, "error": error}
    if reasons:
        body["errors"] = reasons
        body["response_metadata"] = {"messages": [f"[ERROR] {r}" for r in reasons]}
    return body


# --------------------------------------------------------------------------------------------------------------
# The fake
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One request the fake answered (including refused and fault-injected ones)."""

    method: str
    args: dict[str, Any]
    response: dict[str, Any]
    status: int
    at: float
    path: str = ""
    token: str | None = None  # the token it carried: tests check each workspace's calls carry its own


@dataclass
class _Fault:
    method: str
    error: str
    remaining: int
    retry_after: float | None
    status: int | None
    delay: float | None
    channel: str | None = None


@dataclass
class _Channel:
    id: str
    name: str
    members: list[str]
    is_archived: bool = False
    is_ext_shared: bool = False
    is_private: bool = False
    is_member: bool = True
    is_mpim: bool = False
    created: int = field(default_factory=lambda: int(time.time()))
    # Slack Connect: `is_ext_shared` once another organisation joined, `is_pending_ext_shared` while it is
    # invited; `is_shared` is true for either kind of sharing, `is_org_shared` for workspaces of our own org.
    is_pending_ext_shared: bool = False
    is_org_shared: bool = False

    def to_api(self, team_id: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "is_channel": not self.is_private and not self.is_mpim,
            "is_group": self.is_private and not self.is_mpim,
            "is_im": False,
            "is_mpim": self.is_mpim,
            "is_private": self.is_private or self.is_mpim,
            "is_archived": self.is_archived,
            "is_general": False,
            "is_shared": self.is_ext_shared or self.is_org_shared,
            "is_ext_shared": self.is_ext_shared,
            "is_org_shared": self.is_org_shared,
            "is_pending_ext_shared": self.is_pending_ext_shared,
            "is_member": self.is_member,
            "context_team_id": team_id,
            "created": self.created,
            "num_members": len(self.members),
            "topic": {"value": "", "creator": "", "last_set": 0},
            "purpose": {"value": "", "creator": "", "last_set": 0},
        }


_TZ_LABELS = {
    "PST": "Pacific Standard Time",
    "PDT": "Pacific Daylight Time",
    "MST": "Mountain Standard Time",
    "MDT": "Mountain Daylight Time",
    "EST": "Eastern Standard Time",
    "EDT": "Eastern Daylight Time",
    "GMT": "Greenwich Mean Time",
    "BST": "British Summer Time",
    "CET": "Central European Time",
    "CEST": "Central European Summer Time",
    "JST": "Japan Standard Time",
    "UTC": "Coordinated Universal Time",
}


def _tz_snapshot(tz: str) -> tuple[int, str]:
    now = datetime.now(ZoneInfo(tz))
    offset = now.utcoffset()
    abbr = now.tzname() or tz
    # "CST" is both US Central and China Standard Time; only name the US zones we can tell apart by region.
    label = (
        _TZ_LABELS.get(abbr, abbr) if tz.startswith(("America/", "Europe/", "Asia/Tokyo", "UTC")) else abbr
    )
    return int(offset.total_seconds()) if offset else 0, label


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # Benchmarks open many short connections at once (urllib sends "Connection: close"); 5 is too few.
    request_queue_size = 256

    fake: FakeSlack


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body are two writes; without TCP_NODELAY a keep-alive client can stall on delayed ACKs.
    disable_nagle_algorithm = True
    # Idle keep-alive connections otherwise pin a thread forever.
    timeout = 30
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.server.fake._handle(self)

    def do_POST(self) -> None:
        self.server.fake._handle(self)

    def send_json(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        body = json.dumps(payload).encode()
        self.send_response_only(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up first (an injected timeout did its job).
            self.close_connection = True


class FakeSlack(FakeTokens):
    """A Slack Web API double served over real HTTP.

    Point a real client at it: ``WebClient(token="xoxb-test", base_url=fake.api_url)``.

    Deliberate choices (where Slack's behaviour has several readings):

    * Message blocks that break Block Kit answer ``invalid_blocks`` with ``errors`` (and the same reasons under
      ``response_metadata.messages``). Views answer ``invalid_arguments`` the way Slack does, with the reasons under
      ``response_metadata.messages`` and, for convenience, also under ``errors``.
    * An invalid ``response_url`` body answers HTTP 400 with ``{"ok": false, "error": "invalid_blocks", ...}``
      (Slack's response URLs answer 4xx, and Bolt's ``respond()`` does not raise, so the status is what tests read).
    * Unregistered ``U…``/``D…`` ids are accepted (posting to a user opens the DM); only users registered with
      ``deleted=True`` are refused (``account_inactive``). Unregistered ``C…``/``G…`` ids are ``channel_not_found``,
      and so is a private channel the bot is not in (Slack hides those); a public one is ``not_in_channel``.
    * ``chat.getPermalink`` does not require the message to be stored: bots link to users' messages too.
    * Payload rules the Block Kit schema cannot express are checked by hand: 50 blocks per message, one table
      block per message, 12,000 characters of ``markdown`` blocks per message, ``text`` up to 40,000
      (``msg_too_long``), ``text`` or ``blocks`` required (``no_text``). Every per-field limit is the schema's.
    """

    def __init__(
        self,
        *,
        team_id: str = "T0001",
        bot_user_id: str = "UBOT",
        bot_id: str = "B0001",
        team_name: str = "Rapport Test",
        team_domain: str = "rapport-test",
        app_id: str = "A0001",
        port: int = 0,
        strict_tokens: bool = False,
    ) -> None:
        self.team_id = team_id
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.team_name = team_name
        self.team_domain = team_domain
        self.app_id = app_id
        self._port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

        self._lock = threading.Lock()
        self._called = threading.Condition(self._lock)
        self._calls: list[Call] = []
        self._faults: list[_Fault] = []
        self._latency: dict[str, float] = {}
        self._ts = itertools.count(100, 100)
        self._ids = itertools.count(1)

        self._users: dict[str, dict[str, Any]] = {}
        self._channels: dict[str, _Channel] = {}
        self._dm_of_user: dict[str, str] = {}
        self._user_of_dm: dict[str, str] = {}
        self._messages: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
        self._ephemeral: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self._views: dict[str, dict[str, Any]] = {}
        self._home: dict[str, dict[str, Any]] = {}
        self._init_tokens(strict_tokens=strict_tokens)  # tokens, teams and OAuth: bot/slack/fake_tokens.py

        self._methods = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.update": self._chat_update,
            "chat.delete": self._chat_delete,
            "chat.getPermalink": self._chat_get_permalink,
            "conversations.open": self._conversations_open,
            "conversations.info": self._conversations_info,
            "conversations.members": self._conversations_members,
            "conversations.join": self._conversations_join,
            "conversations.history": self._conversations_history,
            "users.info": self._users_info,
            "users.lookupByEmail": self._users_lookup_by_email,
            "team.info": self._team_info,
            "views.open": self._views_open,
            "views.push": self._views_push,
            "views.update": self._views_update,
            "views.publish": self._views_publish,
            "reactions.add": self._reactions_add,
            "oauth.v2.access": self._oauth_v2_access,
            "apps.connections.open": self._apps_connections_open,
        }
        # Socket Mode: started on the first apps.connections.open (bot/slack/fake_socket.py).
        self.socket_mode = FakeSocketMode(app_id=app_id)
        self.add_user(bot_user_id, name="rapport", is_bot=True)

    # -- lifecycle -------------------------------------------------------------------------------------------

    def start(self) -> FakeSlack:
        if self._server is not None:
            return self
        self._stopping.clear()
        _validators()  # compile now, so the first request of a benchmark is not the slow one
        server = _Server(("127.0.0.1", self._port), _Handler)
        server.fake = self
        self._server = server
        # A short poll interval keeps stop() fast; the idle cost is negligible.
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-slack", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()  # wakes handlers sleeping on an injected timeout or latency
        self.socket_mode.stop()
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeSlack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeSlack is not started")
        return self._server.server_address[1]

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    def response_url(self, name: str = "x") -> str:
        return f"http://127.0.0.1:{self.port}/response/{name}"

    # -- recorded calls ----------------------------------------------------------------------------------------

    def calls(self, method: str | None = None) -> list[Call]:
        with self._lock:
            if method is None:
                return list(self._calls)
            return [c for c in self._calls if c.method == method]

    def last(self, method: str) -> Call | None:
        with self._lock:
            return next((c for c in reversed(self._calls) if c.method == method), None)

    def clear(self) -> None:
        with self._lock:
            self._calls.clear()

    def wait_for(self, method: str, count: int = 1, timeout: float = 5.0) -> list[Call]:
        """Block until ``count`` calls of ``method`` were recorded (for code posting from other threads)."""
        deadline = time.monotonic() + timeout
        with self._called:
            while True:
                found = [c for c in self._calls if c.method == method]
                remaining = deadline - time.monotonic()
                if len(found) >= count or remaining <= 0:
                    return found
                self._called.wait(remaining)

    # -- fault injection ---------------------------------------------------------------------------------------

    def inject(
        self,
        method: str,
        error: str,
        *,
        times: int = 1,
        retry_after: float | None = None,
        status: int | None = None,
        delay: float | None = None,
        channel: str | None = None,
    ) -> None:
        """Make the next ``times`` calls of ``method`` ("*" for any; only those naming ``channel``, if given) fail
        with ``error``.

        "ratelimited" → HTTP 429 + Retry-After; "server_error" → HTTP 500 (or ``status``); "timeout" → the call is
        carried out and recorded, then the answer is held back ``delay`` seconds (default 5), so the client's
        own timeout fires after Slack did the work, as happens for real; "reset" → the call is carried out and
        recorded, then the connection is closed with no answer (a reset after Slack did the work); anything else
        → HTTP 200 ``{"ok": false, "error": error}``.
        """
        with self._lock:
            self._faults.append(_Fault(method, error, times, retry_after, status, delay, channel))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def latency(self, method: str, seconds: float) -> None:
        """Answer every call of ``method`` ("*" for any) ``seconds`` late; 0 removes it."""
        with self._lock:
            if seconds:
                self._latency[method] = seconds
            else:
                self._latency.pop(method, None)

    def _take_fault(self, method: str, args: dict[str, Any]) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.method in (method, "*") and fault.channel in (None, args.get("channel")):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    # -- state -------------------------------------------------------------------------------------------------

    def add_user(
        self,
        id: str,
        *,
        name: str,
        team_id: str | None = None,
        tz: str = "America/Los_Angeles",
        is_admin: bool = False,
        is_owner: bool = False,
        is_restricted: bool = False,
        is_ultra_restricted: bool = False,
        email: str | None = None,
        deleted: bool = False,
        is_bot: bool = False,
        real_name: str | None = None,
        display_name: str | None = None,
    ) -> dict[str, Any]:
        tz_offset, tz_label = _tz_snapshot(tz)
        real = real_name if real_name is not None else name
        profile: dict[str, Any] = {
            "real_name": real,
            "display_name": display_name if display_name is not None else name,
            "email": email,
            "team": team_id or self.team_id,
        }
        if is_bot:
            profile["bot_id"] = self.bot_id if id == self.bot_user_id else f"B{id[1:]}"
        user = {
            "id": id,
            "team_id": team_id or self.team_id,
            "name": name,
            "real_name": real,
            "tz": tz,
            "tz_offset": tz_offset,
            "tz_label": tz_label,
            "is_admin": is_admin,
            "is_owner": is_owner,
            "is_primary_owner": False,
            "is_restricted": is_restricted,
            "is_ultra_restricted": is_ultra_restricted,
            "is_bot": is_bot,
            "is_app_user": False,
            "deleted": deleted,
            "updated": int(time.time()),
            "profile": profile,
        }
        with self._lock:
            self._users[id] = user
        return copy.deepcopy(user)

    def add_channel(
        self,
        id: str,
        *,
        name: str,
        members: tuple[str, ...] | list[str] = (),
        is_archived: bool = False,
        is_ext_shared: bool = False,
        is_private: bool = False,
        is_member: bool = True,
        is_pending_ext_shared: bool = False,
        is_org_shared: bool = False,
    ) -> dict[str, Any]:
        channel = _Channel(id, name, list(members), is_archived, is_ext_shared, is_private, is_member,
                           is_pending_ext_shared=is_pending_ext_shared, is_org_shared=is_org_shared)
        with self._lock:
            self._channels[id] = channel
            return channel.to_api(self.team_id)

    def share_channel(self, id: str, *, with_team: str, pending: bool = False) -> dict[str, Any]:
        """Another organisation joins the channel (Slack Connect), or is invited (`pending`); returns the
        `channel_shared` event Slack sends for it (none while the invitation is pending: that event comes when
        it is accepted)."""
        with self._lock:
            channel = self._channels[id]
            channel.is_pending_ext_shared, channel.is_ext_shared = pending, not pending
        return {"type": "channel_shared", "connected_team_id": with_team, "channel": id,
                "event_ts": f"{time.time():.6f}"}

    def dm_channel(self, user: str) -> str:
        """The DM channel id the fake gives ``user`` (stable for the fake's lifetime)."""
        with self._lock:
            return self._dm_for(user)

    def messages(self, channel: str) -> list[dict[str, Any]]:
        """Messages stored in ``channel`` (a user id means their DM), oldest first, updates applied."""
        with self._lock:
            return copy.deepcopy(list(self._messages.get(self._storage_id(channel), {}).values()))

    def message(self, channel: str, ts: str) -> dict[str, Any] | None:
        with self._lock:
            found = self._messages.get(self._storage_id(channel), {}).get(ts)
            return copy.deepcopy(found) if found is not None else None

    def ephemeral_messages(self, channel: str, user: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            found = self._ephemeral.get(self._storage_id(channel), [])
            return copy.deepcopy([m for m in found if user is None or m["user"] == user])

    def home_view(self, user: str) -> dict[str, Any] | None:
        with self._lock:
            view = self._home.get(user)
            return copy.deepcopy(view) if view is not None else None

    def view(self, view_id: str) -> dict[str, Any] | None:
        with self._lock:
            view = self._views.get(view_id)
            return copy.deepcopy(view) if view is not None else None

    # Callers below hold self._lock.

    def _dm_for(self, user: str) -> str:
        dm = self._dm_of_user.get(user)
        if dm is None:
            dm = f"D{user[1:]}"
            self._dm_of_user[user] = dm
            self._user_of_dm[dm] = user
        return dm

    def _storage_id(self, channel: str) -> str:
        if channel[:1] in ("U", "W"):
            return self._dm_of_user.get(channel, f"D{channel[1:]}")
        return channel

    def _is_inactive(self, user: str | None) -> bool:
        return bool(user and self._users.get(user, {}).get("deleted"))

    def _resolve(self, channel: Any, *, post: bool) -> tuple[str | None, str | None]:
        """(channel id, error) for a channel argument, as chat.* methods see it."""
        if not isinstance(channel, str) or not channel:
            return None, "channel_not_found"
        if channel[:1] in ("U", "W"):
            if self._is_inactive(channel):
                return None, "account_inactive"
            return self._dm_for(channel), None
        if channel[:1] == "D" and channel not in self._channels:
            if self._is_inactive(self._user_of_dm.get(channel)):
                return None, "account_inactive"
            return channel, None
        found = self._channels.get(channel)
        if found is None:
            wanted = channel.lstrip("#")
            found = next((c for c in self._channels.values() if c.name == wanted), None)
        if found is None or (found.is_private and not found.is_member):
            return None, "channel_not_found"
        if post and found.is_archived:
            return None, "is_archived"
        if post and not found.is_member:
            return None, "not_in_channel"
        return found.id, None

    def _next_ts(self) -> str:
        n = next(self._ts)
        return f"{1_700_000_000 + n // 1_000_000}.{n % 1_000_000:06d}"

    # -- HTTP plumbing -----------------------------------------------------------------------------------------

    def _handle(self, req: _Handler) -> None:
        at = time.time()
        url = urlsplit(req.path)
        try:
            args = self._read_args(req, url.query)
        except ValueError:
            args, parse_error = {}, True
        else:
            parse_error = False

        if url.path.startswith("/response/"):
            self._serve(req, "response_url", args, at, url.path, parse_error, token=None)
            return
        if not url.path.startswith("/api/"):
            req.send_json(404, {"ok": False, "error": "not_found"})
            return
        method = url.path[len("/api/") :]
        auth = req.headers.get("Authorization", "")
        token = auth[len("Bearer "):].strip() if auth.startswith("Bearer ") else args.get("token")
        self._local.basic = self._basic_auth(auth)
        self._serve(req, method, args, at, url.path, parse_error, token=token or None)

    def _serve(
        self,
        req: _Handler,
        method: str,
        args: dict[str, Any],
        at: float,
        path: str,
        parse_error: bool,
        *,
        token: str | None,
    ) -> None:
        delay = self._latency.get(method) or self._latency.get("*")
        if delay:
            self._stopping.wait(delay)

        headers: dict[str, str] | None = None
        hold_back = 0.0
        refused = self._token_refusal(method, token)
        fault = self._take_fault(method, args) if not refused and not parse_error else None
        if refused:
            status, response = 200, {"ok": False, "error": refused}
        elif parse_error:
            status, response = 200, {"ok": False, "error": "invalid_json"}
        elif fault is not None and fault.error == "ratelimited":
            retry_after = 1 if fault.retry_after is None else fault.retry_after
            status, response = fault.status or 429, {"ok": False, "error": "ratelimited"}
            headers = {"Retry-After": str(int(retry_after))}
        elif fault is not None and fault.error == "server_error":
            status, response = fault.status or 500, {"ok": False, "error": "server_error"}
        elif fault is not None and fault.error not in ("timeout", "reset"):
            status, response = fault.status or 200, {"ok": False, "error": fault.error}
        else:
            if fault is not None and fault.error == "timeout":
                hold_back = 5.0 if fault.delay is None else fault.delay
            status, response = self._dispatch(method, args)

        call = Call(method, args, response, status, at, path, token)
        with self._called:
            self._calls.append(call)
            self._called.notify_all()
        if hold_back:
            self._stopping.wait(hold_back)
        if fault is not None and fault.error == "reset":
            req.close_connection = True  # no status line at all: the client sees the connection end
            return
        req.send_json(status, response, headers)

    def _dispatch(self, method: str, args: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        try:
            if method == "response_url":
                return self._response_url(args)
            handler = self._methods.get(method)
            if handler is None:
                return 200, {"ok": False, "error": "unknown_method"}
            return 200, handler(args)
        except Exception as exc:  # a bug in the fake must show up in the test, not hang it
            return 500, {"ok": False, "error": "fatal_error", "detail": repr(exc)}

    @staticmethod
    def _read_args(req: _Handler, query: str) -> dict[str, Any]:
        args: dict[str, Any] = dict(parse_qsl(query, keep_blank_values=True)) if query else {}
        length = int(req.headers.get("Content-Length") or 0)
        raw = req.rfile.read(length) if length else b""
        if raw:
            ctype = req.headers.get("Content-Type", "")
            if "json" in ctype:
                body = json.loads(raw)
                if not isinstance(body, dict):
                    raise ValueError("JSON body must be an object")
                args.update(body)
            elif ctype.startswith("multipart/"):
                pass  # file uploads: not faked
            else:
                args.update(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
        for key in _JSON_FIELDS.intersection(args):
            value = args[key]
            if isinstance(value, str) and value[:1] in ("[", "{"):
                # Left as text when it is not JSON; validation then says it is not an array/object.
                with contextlib.suppress(ValueError):
                    args[key] = json.loads(value)
        return args

    # -- methods -----------------------------------------------------------------------------------------------

    def _apps_connections_open(self, args: dict[str, Any]) -> dict[str, Any]:
        # Reached only with a valid app-level token (the token check refuses the others as Slack does).
        return {"ok": True, "url": self.socket_mode.open_url(self._answering_team())}

    def _auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        team_id = self._answering_team()
        return {
            "ok": True,
            "url": f"https://{self.team_domain}.slack.com/",
            "team": self._teams.get(team_id, self.team_name),
            "user": "rapport",
            "team_id": team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "app_id": self.app_id,
            "is_enterprise_install": False,
        }

    def _new_message(self, args: dict[str, Any], ts: str) -> dict[str, Any]:
        message: dict[str, Any] = {
            "type": "message",
            "user": self.bot_user_id,
            "bot_id": self.bot_id,
            "app_id": self.app_id,
            "team": self._answering_team(),
            "text": args.get("text") or "",
            "ts": ts,
        }
        for key in ("blocks", "attachments", "thread_ts", "metadata"):
            if args.get(key):
                message[key] = args[key]
        return message

    def _chat_post_message(self, args: dict[str, Any]) -> dict[str, Any]:
        problem = _message_problems(args, need_content=True)
        if problem:
            return _refusal(*problem)
        with self._lock:
            channel, error = self._resolve(args.get("channel"), post=True)
            if error:
                return {"ok": False, "error": error}
            assert channel is not None
            ts = self._next_ts()
            message = self._new_message(args, ts)
            self._messages[channel][ts] = message
            return {"ok": True, "channel": channel, "ts": ts, "message": copy.deepcopy(message)}

    def _chat_post_ephemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        problem = _message_problems(args, need_content=True)
        if problem:
            return _refusal(*problem)
        user = args.get("user")
        with self._lock:
            channel, error = self._resolve(args.get("channel"), post=True)
            if error:
                return {"ok": False, "error": error}
            assert channel is not None
            if not user:
                return {"ok": False, "error": "user_not_found"}
            if self._is_inactive(user):
                return {"ok": False, "error": "user_not_in_channel"}
            registered = self._channels.get(channel)
            if registered is not None and registered.members and user not in registered.members:
                return {"ok": False, "error": "user_not_in_channel"}
            ts = self._next_ts()
            self._ephemeral[channel].append({**self._new_message(args, ts), "user": user})
            return {"ok": True, "message_ts": ts}

    def _chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        problem = _message_problems(args, need_content=False)
        if problem:
            return _refusal(*problem)
        with self._lock:
            channel, error = self._resolve(args.get("channel"), post=False)
            if error:
                return {"ok": False, "error": error}
            assert channel is not None
            ts = args.get("ts")
            message = self._messages.get(channel, {}).get(ts)  # type: ignore[arg-type]
            if message is None:
                return {"ok": False, "error": "message_not_found"}
            # Like Slack, fields the update leaves out keep their previous value.
            for key in ("text", "blocks", "attachments", "metadata"):
                if key in args:
                    message[key] = args[key]
            message["edited"] = {"user": self.bot_user_id, "ts": self._next_ts()}
            return {
                "ok": True,
                "channel": channel,
                "ts": ts,
                "text": message.get("text", ""),
                "message": copy.deepcopy(message),
            }

    def _chat_delete(self, args: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            channel, error = self._resolve(args.get("channel"), post=False)
            if error:
                return {"ok": False, "error": error}
            assert channel is not None
            ts = args.get("ts")
            if self._messages.get(channel, {}).pop(ts, None) is None:  # type: ignore[arg-type]
                return {"ok": False, "error": "message_not_found"}
            return {"ok": True, "channel": channel, "ts": ts}

    def _chat_get_permalink(self, args: dict[str, Any]) -> dict[str, Any]:
        ts = args.get("message_ts")
        if not ts:
            return {"ok": False, "error": "message_not_found"}
        with self._lock:
            channel, error = self._resolve(args.get("channel"), post=False)
        if error:
            return {"ok": False, "error": error}
        link = f"https://{self.team_domain}.slack.com/archives/{channel}/p{str(ts).replace('.', '')}"
        return {"ok": True, "channel": channel, "permalink": link}

    def _conversations_open(self, args: dict[str, Any]) -> dict[str, Any]:
        users = args.get("users")
        if isinstance(users, str):
            users = [u for u in users.split(",") if u]
        with self._lock:
            if args.get("channel"):
                channel, error = self._resolve(args["channel"], post=False)
                if error:
                    return {"ok": False, "error": error}
                return {"ok": True, "no_op": True, "already_open": True, "channel": {"id": channel}}
            if not users:
                return {"ok": False, "error": "users_list_not_supplied"}
            for user in users:
                if self._is_inactive(user):
                    return {"ok": False, "error": "account_inactive"}
            if len(users) > 8:
                return {"ok": False, "error": "too_many_users"}
            if len(users) == 1:
                already = users[0] in self._dm_of_user
                dm = self._dm_for(users[0])
                answer: dict[str, Any] = {"ok": True, "channel": {"id": dm}}
                if already:
                    answer.update(no_op=True, already_open=True)
                return answer
            members = sorted({*users, self.bot_user_id})
            mpim_id = "G" + format(abs(hash(tuple(members))) % 16**10, "010X")
            if mpim_id not in self._channels:
                name = "mpdm-" + "--".join(members) + "-1"
                self._channels[mpim_id] = _Channel(mpim_id, name, members, is_mpim=True)
            return {"ok": True, "channel": {"id": mpim_id}}

    def _conversations_info(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = args.get("channel") or ""
        with self._lock:
            if channel.startswith("D") and channel not in self._channels:
                user = self._user_of_dm.get(channel)
                if user is None:
                    return {"ok": False, "error": "channel_not_found"}
                return {
                    "ok": True,
                    "channel": {
                        "id": channel,
                        "is_im": True,
                        "user": user,
                        "is_user_deleted": self._is_inactive(user),
                    },
                }
            found = self._channels.get(channel)
            if found is None or (found.is_private and not found.is_member):
                return {"ok": False, "error": "channel_not_found"}
            return {"ok": True, "channel": found.to_api(self.team_id)}

    def _conversations_members(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = args.get("channel") or ""
        with self._lock:
            if channel.startswith("D") and channel in self._user_of_dm:
                members = [self._user_of_dm[channel], self.bot_user_id]
            else:
                found = self._channels.get(channel)
                if found is None or (found.is_private and not found.is_member):
                    return {"ok": False, "error": "channel_not_found"}
                members = list(found.members)
        # Paginate like Slack so callers' cursor loops get exercised.
        start = int(args.get("cursor") or 0)
        limit = int(args.get("limit") or 100)
        page = members[start : start + limit]
        next_cursor = str(start + limit) if start + limit < len(members) else ""
        return {"ok": True, "members": page, "response_metadata": {"next_cursor": next_cursor}}

    def _conversations_history(self, args: dict[str, Any]) -> dict[str, Any]:
        # Newest first, like Slack; `oldest` is exclusive. Metadata is returned with include_all_metadata.
        with self._lock:
            channel, error = self._resolve(args.get("channel"), post=False)
            if error:
                return {"ok": False, "error": error}
            oldest = float(args.get("oldest") or 0)
            limit = int(args.get("limit") or 100)
            with_metadata = str(args.get("include_all_metadata", "")).lower() in ("1", "true")
            found = [
                {k: v for k, v in copy.deepcopy(m).items() if with_metadata or k != "metadata"}
                for ts, m in self._messages.get(channel or "", {}).items()
                if float(ts) > oldest
            ]
        found.sort(key=lambda m: float(m["ts"]), reverse=True)
        return {"ok": True, "messages": found[:limit], "has_more": len(found) > limit}

    def _conversations_join(self, args: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            found = self._channels.get(args.get("channel") or "")
            if found is None or found.is_private:
                # Slack answers this for private channels, which a bot cannot join by itself.
                error = (
                    "channel_not_found"
                    if found is None or not found.is_member
                    else "method_not_supported_for_channel_type"
                )
                return {"ok": False, "error": error}
            if found.is_archived:
                return {"ok": False, "error": "is_archived"}
            answer: dict[str, Any] = {"ok": True}
            if found.is_member:
                answer["warning"] = "already_in_channel"
            found.is_member = True
            if self.bot_user_id not in found.members:
                found.members.append(self.bot_user_id)
            answer["channel"] = found.to_api(self.team_id)
            return answer

    def _users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            user = self._users.get(args.get("user") or "")
            if user is None:
                return {"ok": False, "error": "user_not_found"}
            return {"ok": True, "user": copy.deepcopy(user)}

    def _users_lookup_by_email(self, args: dict[str, Any]) -> dict[str, Any]:
        email = (args.get("email") or "").lower()
        with self._lock:
            for user in self._users.values():
                if email and (user["profile"].get("email") or "").lower() == email:
                    return {"ok": True, "user": copy.deepcopy(user)}
        return {"ok": False, "error": "users_not_found"}

    def _team_info(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "team": {
                "id": self._answering_team(),
                "name": self._teams.get(self._answering_team(), self.team_name),
                "domain": self.team_domain,
                "email_domain": "",
                "url": f"https://{self.team_domain}.slack.com/",
                "icon": {"image_default": True},
            },
        }

    def _view_object(
        self, view: dict[str, Any], view_id: str, *, root: str | None, previous: str | None
    ) -> dict:
        counter = next(self._ids)
        return {
            "id": view_id,
            "team_id": self.team_id,
            "app_id": self.app_id,
            "bot_id": self.bot_id,
            "app_installed_team_id": self.team_id,
            "type": view.get("type"),
            "title": view.get("title"),
            "submit": view.get("submit"),
            "close": view.get("close"),
            "blocks": view.get("blocks", []),
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "external_id": view.get("external_id", ""),
            "clear_on_close": bool(view.get("clear_on_close", False)),
            "notify_on_close": bool(view.get("notify_on_close", False)),
            "state": {"values": {}},
            "hash": f"{int(time.time())}.{counter:08d}",
            "root_view_id": root or view_id,
            "previous_view_id": previous,
        }

    def _check_view(self, args: dict[str, Any], surface: str) -> dict[str, Any] | None:
        view = args.get("view")
        if view is None:
            return _refusal("invalid_arguments", ["view: missing required field"])
        reasons = validate_view(view, surface)
        if reasons:
            return _refusal("invalid_arguments", reasons)
        return None

    def _open_view(self, args: dict[str, Any]) -> dict[str, Any]:
        if not args.get("trigger_id") and not args.get("interactivity_pointer"):
            return _refusal("invalid_arguments", ["trigger_id: missing required field"])
        refused = self._check_view(args, "modal")
        if refused:
            return refused
        view = args["view"]
        with self._lock:
            external = view.get("external_id")
            if external and any(v.get("external_id") == external for v in self._views.values()):
                return {"ok": False, "error": "duplicate_external_id"}
            view_id = f"V{next(self._ids):010d}"
            stored = self._view_object(view, view_id, root=None, previous=None)
            self._views[view_id] = stored
            return {"ok": True, "view": copy.deepcopy(stored)}

    def _views_open(self, args: dict[str, Any]) -> dict[str, Any]:
        return self._open_view(args)

    def _views_push(self, args: dict[str, Any]) -> dict[str, Any]:
        return self._open_view(args)

    def _views_update(self, args: dict[str, Any]) -> dict[str, Any]:
        view = args.get("view")
        with self._lock:
            if args.get("view_id"):
                current = self._views.get(args["view_id"])
            else:
                external = args.get("external_id")
                current = next(
                    (v for v in self._views.values() if external and v["external_id"] == external), None
                )
            if current is None:
                return {"ok": False, "error": "not_found"}
            if args.get("hash") and args["hash"] != current["hash"]:
                return {"ok": False, "error": "hash_conflict"}
            surface = "home" if current["type"] == "home" else "modal"
        refused = self._check_view(args, surface)
        if refused:
            return refused
        assert isinstance(view, dict)
        with self._lock:
            stored = self._view_object(
                view, current["id"], root=current["root_view_id"], previous=current["previous_view_id"]
            )
            self._views[current["id"]] = stored
            for user, home in self._home.items():
                if home["id"] == current["id"]:
                    self._home[user] = stored
            return {"ok": True, "view": copy.deepcopy(stored)}

    def _views_publish(self, args: dict[str, Any]) -> dict[str, Any]:
        user = args.get("user_id")
        if not user:
            return _refusal("invalid_arguments", ["user_id: missing required field"])
        refused = self._check_view(args, "home")
        if refused:
            return refused
        with self._lock:
            if self._is_inactive(user):
                return {"ok": False, "error": "account_inactive"}
            current = self._home.get(user)
            if current is not None and args.get("hash") and args["hash"] != current["hash"]:
                return {"ok": False, "error": "hash_conflict"}
            view_id = current["id"] if current is not None else f"V{next(self._ids):010d}"
            stored = self._view_object(args["view"], view_id, root=None, previous=None)
            self._views[view_id] = stored
            self._home[user] = stored
            return {"ok": True, "view": copy.deepcopy(stored)}

    def _reactions_add(self, args: dict[str, Any]) -> dict[str, Any]:
        name = args.get("name")
        if not name:
            return {"ok": False, "error": "invalid_name"}
        with self._lock:
            channel, error = self._resolve(args.get("channel"), post=False)
            if error:
                return {"ok": False, "error": error}
            assert channel is not None
            message = self._messages.get(channel, {}).get(args.get("timestamp"))  # type: ignore[arg-type]
            if message is None:
                return {"ok": False, "error": "message_not_found"}
            reactions = message.setdefault("reactions", [])
            reaction = next((r for r in reactions if r["name"] == name), None)
            if reaction is None:
                reactions.append({"name": name, "users": [self.bot_user_id], "count": 1})
            elif self.bot_user_id in reaction["users"]:
                return {"ok": False, "error": "already_reacted"}
            else:
                reaction["users"].append(self.bot_user_id)
                reaction["count"] += 1
            return {"ok": True}

    def _response_url(self, args: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        problem = _message_problems(args, need_content=False)
        if problem:
            return 400, _refusal(*problem)
        return 200, {"ok": True}
