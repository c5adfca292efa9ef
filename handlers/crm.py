"""The `/crm` command: one listener that reads the subcommand and hands the rest to the feature that owns it."""

import logging
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field

from rapidfuzz import process as fuzzy
from slack_bolt import Ack, App, Respond

from bot.db import read_scope, session_scope
from bot.errors import BadInput
from bot.runtime import Runtime
from bot.services.customers import Actor
from bot.services.workspaces import get_workspace
from bot.slack import people
from bot.slack.text import Token, UnclosedQuote, escape_mrkdwn, tokenize
from models import SlackUser

log = logging.getLogger(__name__)


@dataclass
class Reply:
    """What a subcommand answers: ephemeral to the caller unless `in_channel`."""

    text: str
    blocks: list | None = None
    in_channel: bool = False

    def payload(self) -> dict:
        # `text` is the notification fallback and Slack parses it as mrkdwn: it names customers, so escape it.
        body = {"response_type": "in_channel" if self.in_channel else "ephemeral", "text": escape_mrkdwn(self.text)}
        if self.blocks is not None:
            body["blocks"] = self.blocks
        return body


@dataclass
class Command:
    """One `/crm` invocation, parsed: the words after the subcommand and who asked where."""

    runtime: Runtime
    workspace_id: str
    user_id: str
    channel_id: str
    text: str
    sub: str
    args: list[Token]
    body: dict
    client: object
    respond: Respond
    ack: Ack
    trigger_id: str | None = None
    acked: bool = False
    person: SlackUser | None = None  # the caller, as the members-only middleware looked them up

    @property
    def now(self):
        return self.runtime.clock.now()

    @contextmanager
    def work(self):
        """One database transaction with this workspace: all of it is written, or none of it."""
        with session_scope(self.runtime.engine) as session:
            yield session, get_workspace(session, self.workspace_id)

    @contextmanager
    def read(self):
        """A read-only unit of work (cards, lists): on SQLite it runs beside writers instead of queueing."""
        with read_scope(self.runtime.engine) as session:
            yield session, get_workspace(session, self.workspace_id)

    def actor(self) -> Actor:
        return people.actor(self.runtime, self.client, workspace_id=self.workspace_id, user_id=self.user_id,
                            person=self.person)

    def ensure_teammate(self, user_id: str, *, role: str) -> None:
        """Refuse (NotOurTeam) before anything is written when `user_id` cannot take `role` (bot/slack/people.py)."""
        people.ensure_teammate(self.runtime, self.client, workspace_id=self.workspace_id, user_id=user_id, role=role)

    def ack_now(self) -> None:
        """Acknowledge before slow work (opening a modal, posting to a channel); answer later via respond."""
        if not self.acked:
            self.ack()
            self.acked = True


@dataclass
class Subcommand:
    name: str
    usage: str
    summary: str
    run: Callable[[Command], Reply | None]
    examples: list[str] = field(default_factory=list)
    aliases: tuple[str, ...] = ()
    group: str = "Customers"

    def usage_hint(self) -> str:
        lines = [f"Usage: `{self.usage}`"]
        if self.examples:
            lines.append("Example: `" + self.examples[0] + "`")
        return "\n".join(lines)


class Router:
    """The subcommands that exist; `/crm help` lists exactly these."""

    def __init__(self) -> None:
        self._by_name: dict[str, Subcommand] = {}
        self.subcommands: list[Subcommand] = []

    def add(self, subcommand: Subcommand) -> None:
        for name in (subcommand.name, *subcommand.aliases):
            if name in self._by_name:
                raise ValueError(f"/crm {name} registered twice")
            self._by_name[name] = subcommand
        self.subcommands.append(subcommand)

    def find(self, name: str) -> Subcommand | None:
        return self._by_name.get(name.lower())

    def suggest(self, name: str) -> list[str]:
        matches = fuzzy.extract(name.lower(), list(self._by_name), limit=3, score_cutoff=60)
        return [match[0] for match in matches]

    def unknown(self, name: str) -> BadInput:
        """The answer to a subcommand that does not exist: the closest ones, and where the list is."""
        suggestions = self.suggest(name)
        hint = "Try " + ", ".join(f"`/crm {s}`" for s in suggestions) + "." if suggestions else ""
        return BadInput(f"There is no `/crm {name}`. {hint}".strip(), hint="`/crm help` lists every subcommand.")

    def parse(self, text: str) -> tuple[Subcommand | None, str, list[Token]]:
        try:
            tokens = tokenize(text)
        except UnclosedQuote as exc:
            raise BadInput(f"I could not read that: {exc}.", hint='Put names with spaces in quotes: `"Acme Corp"`.') from None
        if not tokens:
            return self.find("help"), "help", []
        sub = tokens[0].text.lower()
        return self.find(sub), sub, tokens[1:]


def register(app: App, router: Router) -> None:
    @app.command("/crm")
    def crm_command(ack: Ack, body: dict, context, client, respond: Respond):
        runtime: Runtime = context["runtime"]
        text = body.get("text") or ""
        subcommand, sub, args = router.parse(text)
        if subcommand is None:
            raise router.unknown(sub)
        command = Command(
            runtime=runtime,
            workspace_id=context["team_id"],
            user_id=body["user_id"],
            channel_id=body.get("channel_id", ""),
            text=text,
            sub=sub,
            args=args,
            body=body,
            client=client,
            respond=respond,
            ack=ack,
            trigger_id=body.get("trigger_id"),
            person=context.get("person"),
        )
        try:
            reply = subcommand.run(command)
        except BadInput as exc:
            # Services say what is wrong with a value ("the limit is 200"); the user also needs how to write it.
            exc.hint = exc.hint or subcommand.usage_hint()
            raise
        if command.acked:
            if reply is not None:
                respond(**reply.payload())
        elif reply is None:
            ack()
        else:
            ack(**reply.payload())
