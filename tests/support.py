"""Test helpers that read like the product: people run commands, click buttons, and read what Rapport said."""

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event
from waitress.server import create_server
from waitress.wasyncore import close_all

from bot.app import build_app
from bot.runtime import Runtime
from bot.server import HTTP_THREADS, WsgiApp
from bot.slack import presets
from bot.slack.fake import validate_message_blocks
from bot.slack.simulate import Person, SlackSimulator, TrackingExecutor

PEOPLE = {p.key: Person(id=p.id, name=p.name, team_id=p.team_id) for p in presets.PEOPLE}


class SlackHarness:
    def __init__(self, runtime: Runtime, fake, *, signing_secret: str):
        self.runtime = runtime
        self.fake = fake
        self.executor = TrackingExecutor()
        self.app = build_app(runtime, listener_executor=self.executor)
        base = fake.response_url("x").rsplit("/", 1)[0]
        self.sim = SlackSimulator(self.app, signing_secret=signing_secret, team_id=presets.HOME_TEAM,
                                  response_url_base=base)

    def session(self):
        from sqlmodel import Session

        return Session(self.runtime.engine)

    def in_workspace(self, team_id: str) -> "SlackHarness":
        """The same app seen from another Slack workspace (multi-workspace isolation)."""
        other = object.__new__(SlackHarness)
        other.__dict__.update(self.__dict__)
        other.sim = SlackSimulator(self.app, signing_secret=self.sim.secret, team_id=team_id,
                                   response_url_base=self.sim.response_url_base)
        # The same names, as members of that workspace (their own ids and team).
        other.people = {}
        for preset in presets.PEOPLE:
            user_id = f"{preset.id}{team_id[-3:]}"
            self.fake.add_user(user_id, name=preset.name, team_id=team_id, tz=preset.tz, is_admin=preset.is_admin)
            other.people[preset.key] = Person(id=user_id, name=preset.name, team_id=team_id)
        return other

    @property
    def router(self):
        return self.app.crm_router

    def close(self) -> None:
        self.executor.shutdown(wait=True)

    def wait(self) -> None:
        self.executor.wait_idle()
        if self.executor.errors:
            raise AssertionError(f"a listener raised: {self.executor.errors!r}")

    def person(self, key: str) -> Person:
        return getattr(self, "people", PEOPLE)[key]

    def command(self, who: str, text: str, *, channel: str = "C0SALES") -> dict:
        text = text.removeprefix("/crm ")
        """Run `/crm <text>` and return what the caller saw: the ack body, or the first respond() if acked empty."""
        before = len(self.fake.calls("response_url"))
        response = self.sim.command(self.person(who), channel, text)
        assert response.status == 200, (response.status, response.body)
        self.wait()
        body = response.json() if response.body else None
        if body:
            check_message(body)
            return body
        later = self.fake.calls("response_url")[before:]
        if later:
            return later[0].args
        return {}


def check_message(payload: dict) -> None:
    """A message Slack would refuse is a failing test."""
    blocks = payload.get("blocks")
    if blocks is not None:
        errors = validate_message_blocks(blocks)
        assert not errors, json.dumps(errors, indent=1)
    assert payload.get("text") or blocks, "a message needs text or blocks"
    for text in mrkdwn_texts(payload):
        for ping in ("<!channel", "<!here", "<!everyone", "<!subteam"):
            assert ping not in text, f"a message would ping {ping}>: {text[:200]!r}"


def mrkdwn_texts(payload: dict) -> list[str]:
    """The texts Slack parses for mentions: the top-level text and every mrkdwn text object."""
    texts = [payload.get("text") or ""]

    def walk(node):
        if isinstance(node, dict):
            if node.get("type") == "mrkdwn" and isinstance(node.get("text"), str):
                texts.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(payload.get("blocks") or [])
    return texts


def text_of(payload: dict) -> str:
    """All the human-visible text in a message: its text and every text object of its blocks."""
    parts = [payload.get("text") or ""]

    def walk(node):
        if isinstance(node, dict):
            if node.get("type") in ("mrkdwn", "plain_text") and isinstance(node.get("text"), str):
                parts.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(payload.get("blocks") or [])
    return "\n".join(parts)


def form_values(**fields) -> dict:
    """Slack's view state.values for our forms (every element's action_id is `value`)."""
    state = {}
    for block, (kind, value) in fields.items():
        element = {"type": kind}
        if kind == "plain_text_input":
            element["value"] = value
        elif kind in ("static_select", "external_select"):
            element["selected_option"] = {"text": {"type": "plain_text", "text": str(value)}, "value": value}
        elif kind == "users_select":
            element["selected_user"] = value
        elif kind == "conversations_select":
            element["selected_conversation"] = value
        state[block] = {"customer_picker" if kind == "external_select" else "value": element}
    return state


@contextmanager
def counting_queries(engine):
    """Every statement sent to the database while the block runs."""
    statements: list[str] = []

    def record(_connection, _cursor, statement, _parameters, _context, _executemany):
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


@contextmanager
def served(app, engine) -> Iterator[str]:
    """The production WSGI app under waitress on 127.0.0.1, in a thread; yields the /slack/events URL."""
    server = create_server(WsgiApp(app, engine), host="127.0.0.1", port=0, threads=HTTP_THREADS)
    thread = threading.Thread(target=server.run, name="waitress", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}/slack/events"
    finally:
        # Closed from the loop's own thread (the trigger runs thunks there), then the workers stop. Under load
        # the trigger's socket has been seen already closed (EBADF) when its loop had stopped: close here then.
        try:
            server.trigger.pull_trigger(lambda: close_all(server._map))
        except OSError:
            close_all(server._map)
        thread.join(timeout=5)
        assert not thread.is_alive(), "waitress did not stop"
        server.task_dispatcher.shutdown()
