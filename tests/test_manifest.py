"""The Slack app manifest and the app agree: what Slack will send has a listener, and the scopes are what the code calls.

manifest.json is JSON, not YAML: PyYAML is not a dependency, and Slack accepts either form.
"""

import json
import re
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.app import BOT_SCOPES, build_app
from bot.clock import ManualClock
from bot.config import Settings
from bot.db import make_engine
from bot.runtime import Runtime
from bot.slack.client import make_client

ROOT = Path(__file__).resolve().parent.parent
MANIFEST_PATH = ROOT / "manifest.json"
EVENTS_PATH = "/slack/events"

# Scopes each Web API method needs for what *we* do with it (docs.slack.dev, "Required scopes", bot token).
# A call the table does not know fails the scope test below: add the method here with its scopes.
METHOD_SCOPES: dict[str, set[str]] = {
    "auth.test": set(),
    "chat.delete": {"chat:write"},
    "chat.getPermalink": set(),
    "chat.postEphemeral": {"chat:write"},
    "chat.postMessage": {"chat:write"},
    "chat.update": {"chat:write"},
    "conversations.history": {"im:history"},  # only on the bot's own DMs (reminder de-duplication)
    "conversations.info": {"channels:read", "groups:read"},  # customers' channels, public or private
    "conversations.members": {"channels:read", "groups:read"},  # a survey channel: is a guest in it?
    "conversations.open": {"im:write"},
    "team.info": {"team:read"},
    "users.info": {"users:read"},
    "users.lookupByEmail": {"users:read.email"},
    "views.open": set(),
    "views.publish": set(),
    "views.push": set(),
    "views.update": set(),
}
# Scopes that no single call shows, and why we ask for them.
DELIBERATE_SCOPES = {
    "commands": "the /crm slash command and the message shortcut",
    "chat:write.public": "posting to the managers' channel and customers' public channels without an invitation",
    "users:read.email": "users.info returns profile.email only with it; imports match owners by email",
}
# Where the code calls Slack; the fake Slack and the simulator only answer or build requests.
SCANNED = ("bot", "handlers")
NOT_SCANNED = {"bot/slack/fake.py", "bot/slack/simulate.py"}
CALL = re.compile(r"\bclient\.([a-z]+)_([A-Za-z]+)\b|\bapi_call\(\s*[\"']([a-z]+\.[A-Za-z.]+)[\"']")


@pytest.fixture(scope="module")
def manifest() -> dict:
    return json.loads(MANIFEST_PATH.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def app():
    """The real app as `build_app` wires it, without a database or Slack behind it (nothing is dispatched)."""
    settings = Settings(slack_bot_token="xoxb-manifest-test", slack_signing_secret="manifest-test-secret",
                        slack_api_url="http://127.0.0.1:9/api/", database_url="sqlite://", _env_file=None)
    engine = make_engine(settings.database)
    runtime = Runtime(settings=settings, engine=engine, clock=ManualClock(datetime(2026, 11, 23, 9, tzinfo=UTC)),
                      client=make_client(base_url=settings.slack_api_url, token=settings.slack_bot_token))
    executor = ThreadPoolExecutor(1)
    yield build_app(runtime, token_verification=False, listener_executor=executor)
    executor.shutdown(wait=False)
    engine.dispose()


def declared(manifest: dict) -> dict[str, list[str]]:
    features, settings = manifest["features"], manifest["settings"]
    return {
        "command": [c["command"] for c in features.get("slash_commands", [])],
        "shortcut": [s["callback_id"] for s in features.get("shortcuts", [])],
        "event": list(settings.get("event_subscriptions", {}).get("bot_events", [])),
    }


# -- Bolt introspection ----------------------------------------------------------------------------------

# Bolt's builtin matchers (slack_bolt/listener_matcher/builtins.py) are closures named `<kind>.<locals>.func`
# holding what they match in a free variable; (matcher name) -> (our kind, free variable).
MATCHERS = {
    "command": ("command", "command"),
    "shortcut": ("shortcut", "callback_id"),
    "global_shortcut": ("shortcut", "callback_id"),
    "message_shortcut": ("shortcut", "callback_id"),
    "event": ("event", "event_type"),
    "message_event": ("event", None),
    "options": ("options", "constraints"),
    "block_suggestion": ("options", "action_id"),
    "action": ("action", "constraints"),
    "block_action": ("action", "constraints"),
    "view": ("view", "constraints"),
    "view_submission": ("view", "callback_id"),
    "view_closed": ("view", "callback_id"),
}


def registered(app) -> dict[str, list]:
    """What the app listens to: {kind: [name or compiled pattern, ...]} read from each listener's first matcher."""
    found: dict[str, list] = {}
    for listener in app._listeners:
        func = getattr(listener.matchers[0], "func", None)
        assert func is not None, f"listener {listener!r}: its first matcher is not one of Bolt's builtins"
        maker = func.__qualname__.split(".<locals>", 1)[0]
        assert maker in MATCHERS, f"unknown Bolt matcher {func.__qualname__}: teach MATCHERS in this test about it"
        kind, variable = MATCHERS[maker]
        cells = dict(zip(func.__code__.co_freevars, (c.cell_contents for c in func.__closure__ or ()), strict=True))
        if maker == "message_event":
            value = "message"  # app.message(...): needs message.* events in the manifest
        elif maker == "event" and "constraints" in cells:
            value = cells["constraints"]["type"]
        else:
            value = cells[variable]
            if isinstance(value, dict):  # {"callback_id": ..., "type": ...} style constraints
                value = value.get("callback_id") or value.get("action_id") or value.get("type")
        found.setdefault(kind, []).append(value)
    return found


def matches(pattern, name: str) -> bool:
    return bool(pattern.search(name)) if isinstance(pattern, re.Pattern) else pattern == name


# -- the manifest on its own -----------------------------------------------------------------------------


def test_the_manifest_points_every_request_at_bolts_endpoint(manifest):
    settings = manifest["settings"]
    urls = {
        "slash_commands[].url": [c["url"] for c in manifest["features"]["slash_commands"]],
        "event_subscriptions.request_url": [settings["event_subscriptions"]["request_url"]],
        "interactivity.request_url": [settings["interactivity"]["request_url"]],
        "interactivity.message_menu_options_url": [settings["interactivity"]["message_menu_options_url"]],
    }
    for where, values in urls.items():
        for url in values:
            assert url.startswith("https://") and url.endswith(EVENTS_PATH), f"{where} is {url}"
    assert all(url.endswith("/slack/oauth_redirect") for url in manifest["oauth_config"]["redirect_urls"])
    hosts = {url.split("/")[2] for values in urls.values() for url in values}
    hosts |= {url.split("/")[2] for url in manifest["oauth_config"]["redirect_urls"]}
    assert len(hosts) == 1, f"one host for every URL, found {sorted(hosts)}"


def test_the_manifest_settings_are_the_ones_rapport_is_built_for(manifest):
    features, settings = manifest["features"], manifest["settings"]
    for command in features["slash_commands"]:
        # With escaping, users and channels arrive as <@U…|name> / <#C…|name>: handlers/args.py reads those.
        assert command["should_escape"] is True, command["command"]
    assert features["bot_user"]["always_online"] is True
    assert features["app_home"] == {"home_tab_enabled": True, "messages_tab_enabled": True,
                                    "messages_tab_read_only_enabled": False}
    assert settings["interactivity"]["is_enabled"] is True
    assert settings["socket_mode_enabled"] is False  # HTTP mode; Socket Mode is an opt-in (README)
    assert settings["org_deploy_enabled"] is False
    assert settings["token_rotation_enabled"] is False
    assert all(s["type"] in ("message", "global") for s in features["shortcuts"])


def test_the_manifest_fits_slacks_field_limits(manifest):
    info = manifest["display_information"]
    assert len(info["name"]) <= 35 and len(info["description"]) <= 140
    assert 175 <= len(info["long_description"]) <= 4000
    assert re.fullmatch(r"#[0-9a-fA-F]{6}", info["background_color"])
    assert len(manifest["features"]["bot_user"]["display_name"]) <= 80
    for command in manifest["features"]["slash_commands"]:
        assert re.fullmatch(r"/[a-z0-9_-]{1,31}", command["command"])
        assert len(command["description"]) <= 2000 and len(command["usage_hint"]) <= 1000
    for shortcut in manifest["features"]["shortcuts"]:
        assert len(shortcut["name"]) <= 24 and len(shortcut["description"]) <= 150
        assert len(shortcut["callback_id"]) <= 255


def test_the_usage_hint_names_only_subcommands_that_exist(manifest, app):
    for command in manifest["features"]["slash_commands"]:
        top_level = re.sub(r"\[[^\]]*\]|<[^>]*>", "", command["usage_hint"])  # drop [options] and <args>
        words = [part.split()[0] for part in top_level.split("|") if part.strip()]
        assert words, command["usage_hint"]
        missing = [word for word in words if app.crm_router.find(word) is None]
        assert not missing, f"the usage hint of {command['command']} offers {missing}, which the router lacks"


# -- manifest <-> listeners ------------------------------------------------------------------------------


def test_every_command_shortcut_and_event_the_app_listens_to_is_in_the_manifest(manifest, app):
    listening = registered(app)
    wanted = declared(manifest)
    assert listening.get("command"), "the app registers no slash command: the introspection is broken"
    for kind in ("command", "shortcut", "event"):
        undeclared = [p for p in listening.get(kind, []) if not any(matches(p, name) for name in wanted[kind])]
        assert not undeclared, f"the app listens to {kind} {undeclared} but manifest.json does not declare it"
    if listening.get("options"):
        assert manifest["settings"]["interactivity"].get("message_menu_options_url"), (
            f"options listeners {listening['options']} need interactivity.message_menu_options_url"
        )
    if listening.get("action") or listening.get("view") or listening.get("shortcut"):
        assert manifest["settings"]["interactivity"]["is_enabled"]


def test_every_manifest_entry_has_a_listener_by_introspection(manifest, app):
    listening = registered(app)
    for kind, names in declared(manifest).items():
        unheard = [n for n in names if not any(matches(p, n) for p in listening.get(kind, []))]
        assert not unheard, f"manifest.json declares {kind} {unheard} but no listener in build_app handles it"


def test_slack_requests_for_every_manifest_entry_reach_a_listener(manifest, slack):
    """Through the real dispatch, signed: Bolt answers 404 to a request no listener takes."""
    alice = slack.person("alice")
    for command in declared(manifest)["command"]:
        response = slack.sim.command(alice, "C0SALES", "help", command=command)
        assert response.status == 200, (command, response.status, response.body)
    for shortcut in manifest["features"]["shortcuts"]:
        if shortcut["type"] == "message":
            response = slack.sim.message_shortcut(alice, callback_id=shortcut["callback_id"], channel_id="C0SALES",
                                                  message={"ts": "1700000000.000100", "text": "Call with Li Wei"})
        else:
            response = slack.sim._payload({"type": "shortcut", "callback_id": shortcut["callback_id"],
                                           "trigger_id": slack.sim._trigger(), "team": slack.sim._team(),
                                           "user": slack.sim._user(alice), "token": "legacy"})
        assert response.status == 200, (shortcut["callback_id"], response.status, response.body)
    for event in declared(manifest)["event"]:
        # tab "messages": routed to the Home listener, which then has nothing to publish.
        response = slack.sim.event({"type": event, "user": alice.id, "channel": "D0ALICE", "tab": "messages",
                                    "event_ts": "1700000000.000200"})
        assert response.status == 200, (event, response.status, response.body)
    slack.wait()
    assert slack.fake.calls("views.open"), "the message shortcut should have opened the touch form"


# -- scopes ----------------------------------------------------------------------------------------------


def web_api_calls() -> dict[str, list[str]]:
    """Slack methods the code calls -> where ("bot/slack/reminders.py:200")."""
    calls: dict[str, list[str]] = {}
    for top in SCANNED:
        for path in sorted((ROOT / top).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if relative in NOT_SCANNED:
                continue
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                for match in CALL.finditer(line):
                    method = match.group(3) or f"{match.group(1)}.{match.group(2)}"
                    calls.setdefault(method, []).append(f"{relative}:{number}")
    return calls


def needed_scopes() -> dict[str, str]:
    """scope -> why, from the calls in the code and the deliberate choices above."""
    calls = web_api_calls()
    unknown = sorted(set(calls) - set(METHOD_SCOPES))
    assert not unknown, f"the code calls {unknown} ({[calls[m][0] for m in unknown]}): add them to METHOD_SCOPES"
    why = dict(DELIBERATE_SCOPES)
    for method, places in sorted(calls.items()):
        for scope in METHOD_SCOPES[method]:
            why.setdefault(scope, f"{method} at {places[0]}")
    return why


def test_the_manifest_asks_for_exactly_the_scopes_the_code_needs(manifest):
    assert web_api_calls(), "found no Web API calls: the scan is broken"
    needed = needed_scopes()
    asked = manifest["oauth_config"]["scopes"]["bot"]
    assert len(asked) == len(set(asked)), "a scope is listed twice"
    missing = {scope: needed[scope] for scope in sorted(set(needed) - set(asked))}
    unused = sorted(set(asked) - set(needed))
    assert not missing, f"manifest.json lacks scopes the code needs: {missing}"
    assert not unused, f"manifest.json asks for scopes nothing uses: {unused} (drop them, or say why above)"


def test_oauth_installs_ask_for_the_manifests_scopes(manifest):
    """bot/app.py BOT_SCOPES is what an OAuth install asks for; it must equal the manifest's list."""
    needed = needed_scopes()
    asked, oauth = set(manifest["oauth_config"]["scopes"]["bot"]), set(BOT_SCOPES)
    if asked == oauth:
        return
    # Whichever list strays from what the code needs is the wrong one (both can be).
    problems = []
    for where, scopes in (("bot/app.py BOT_SCOPES", oauth), ("manifest.json", asked)):
        missing = {scope: needed[scope] for scope in sorted(set(needed) - scopes)}
        unused = sorted(scopes - set(needed))
        if missing or unused:
            problems.append(f"{where} is wrong: lacks {missing}, has unused {unused}")
    pytest.fail("BOT_SCOPES and manifest.json differ. " + "; ".join(problems or ["(both match the code?)"]))
