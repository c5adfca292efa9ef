"""Bad input to /crm: every subcommand says what is wrong and how to write it, ephemerally, and writes nothing."""

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import SQLModel

from tests.support import text_of

# Written by design on any contact, so not "a write" of a refused command: the users.info cache and the
# Events API de-duplication table. Everything else (workspace settings included) must stay as it was.
CACHES = {"slack_user", "processed_event"}
INTERNAL = ("Traceback", 'File "', "Exception", "Error:", "sqlalchemy", "psycopg", "Something went wrong on our side")
# A helpful refusal names the usage, an example or the accepted choices.
HELPFUL = re.compile(r"Usage:|Example|e\.g\.|Choose one of|Levels:|`/crm |like `|Did you mean|Settings:|Put names|such as")


def snapshot(slack) -> dict[str, list[str]]:
    """Every row of every table (but the caches): a refused command leaves this exactly as it was."""
    engine = slack.runtime.engine
    tables = [table.name for table in SQLModel.metadata.sorted_tables if table.name not in CACHES]
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":  # one round trip instead of one per table
            rows = connection.exec_driver_sql(
                " UNION ALL ".join(f"SELECT '{name}', t::text FROM \"{name}\" t" for name in tables)).all()
        else:
            rows = [(name, repr(tuple(row))) for name in tables
                    for row in connection.exec_driver_sql(f'SELECT * FROM "{name}"')]
    found: dict[str, list[str]] = {name: [] for name in tables}
    for name, row in rows:
        found[name].append(row)
    return {name: sorted(rows) for name, rows in found.items()}


def answer(slack, who: str, text: str, *, channel: str = "C0SALES") -> dict:
    """Run a command; whatever it is, the caller gets an ephemeral answer (or a modal) with no internals in it."""
    opened = len(slack.fake.calls("views.open"))
    responses = len(slack.fake.calls("response_url"))
    reply = slack.command(who, text, channel=channel)  # asserts HTTP 200 and a message Slack accepts
    for call in slack.fake.calls("response_url")[responses:]:
        assert call.status == 200, call.response
        assert call.args.get("response_type") != "in_channel", call.args
    if not reply:
        views = slack.fake.calls("views.open")[opened:]
        assert views and all(v.response["ok"] for v in views), f"/crm {text!r} answered nothing"
        return reply
    assert reply.get("response_type", "ephemeral") == "ephemeral", reply
    shown = text_of(reply)
    assert shown.strip(), f"/crm {text!r} answered an empty message"
    for leak in INTERNAL:
        assert leak not in shown, f"/crm {text!r} leaked {leak!r}: {shown[:300]}"
    return reply


def is_refusal(reply: dict) -> bool:
    """Refusals are the error handler's plain text; every successful answer carries blocks."""
    return bool(reply) and "blocks" not in reply


def refused(slack, who: str, text: str, *, channel: str = "C0SALES") -> str:
    """Run a command that must be refused: it says why and how, and nothing in the database moves."""
    before = snapshot(slack)
    reply = answer(slack, who, text, channel=channel)
    assert is_refusal(reply), f"/crm {text!r} was not refused: {text_of(reply)[:300]}"
    assert snapshot(slack) == before, f"/crm {text!r} was refused but wrote something"
    return reply["text"]


@pytest.fixture
def world(slack):
    """Alice owns Acme Corp, with Li Wei in its decision chain; mei (a workspace admin) has been seen."""
    slack.command("alice", 'add "Acme Corp" tier:key')
    slack.command("alice", 'contact "Acme Corp" "Li Wei" role:decision_maker level:2')
    slack.command("mei", "config")
    return slack


# (who, command, what the answer must say). Each is refused, helpful, and writes nothing.
REFUSALS = [
    # add
    ("alice", "add tier:key", "needs a name"),
    ("alice", 'add "Acme Corp"', "already exists"),
    ("alice", 'add "ACME  corp"', "already exists"),  # the same name, case and spacing aside
    ("alice", "add Globex tier:bogus", "is not a tier"),
    ("alice", "add Globex stage:nope", "is not a stage"),
    ("alice", "add Globex org:nope", "is not an org"),
    ("alice", "add Globex tier:", "needs a value"),
    ("alice", "add Globex tier:key tier:general", "given twice"),
    ("alice", "add Globex owner:bob", "takes a person"),
    ("alice", "add Globex channel:sales", "takes a channel"),
    ("alice", "add Globex <@U0BOB|bob>", "owner:@name"),
    ("alice", 'add "Globex', "not closed"),
    ("alice", "add " + "G" * 201, "limit is 200"),
    ("alice", 'add "Glo\x00bex"', "control character"),
    # show / list / history
    ("alice", "show", "Which customer"),
    ("alice", "show Globex", "No customer named"),
    ("alice", "show \x00", "control character"),
    ("alice", 'show "Acme', "not closed"),
    ("alice", "list bogus", "mine, key, at-risk, attention, all"),
    ("alice", "list all extra", "mine, key, at-risk, attention, all"),
    ("alice", "history", "Which customer"),
    ("alice", "history Globex", "No customer named"),
    # log
    ("alice", "log", "missing"),
    ("alice", "log acme", "missing"),
    ("alice", "log acme call", "missing"),
    ("alice", "log acme dance hello", "is not a kind of touch"),
    ("alice", "log Globex call hello", "No customer named"),
    ("alice", "log acme call " + "x" * 2001, "limit is 2,000"),
    ("alice", "log acme call hello\x00there", "control character"),
    # contact / level
    ("alice", "contact", "missing"),
    ("alice", "contact acme", "missing"),
    ("alice", "contact acme Zhang role:boss", "is not a role"),
    ("alice", "contact acme Zhang level:9", "1 to 5"),
    ("alice", "contact acme Zhang level:", "needs a value"),
    ("alice", "contact acme Zhang user:bob", "takes a person"),
    ("alice", "contact acme Zhang <@U0BOB|bob> <@U0MEI|mei>", "One Slack user"),
    ("alice", "contact Globex Zhang", "No customer named"),
    ("bob", "contact acme Zhang", "only"),
    ("alice", "level", "missing"),
    ("alice", 'level acme "Li Wei"', "missing"),
    ("alice", 'level acme "Li Wei" 7', "1 to 5"),
    ("alice", 'level acme "Li Wei" great', "is not a relationship level"),
    ("alice", "level acme Zhang 3", "no contact named"),
    # tier / stage / org / owner
    ("alice", "tier", "missing"),
    ("alice", "tier acme", "missing"),
    ("alice", "tier acme platinum", "is not a tier"),
    ("alice", "stage acme sleeping", "is not a stage"),
    ("alice", "org acme friend", "is not an org"),
    ("alice", "org Globex vendor", "No customer named"),
    ("bob", "tier acme general", "only"),
    ("alice", "owner acme", "missing"),
    ("alice", "owner acme bob", "@someone"),
    ("alice", "owner Globex <@U0BOB|bob>", "No customer named"),
    # link / unlink (the ecosystem)
    ("alice", "link", "missing"),
    ("alice", "link acme", "missing"),
    ("alice", "link acme acme", "partner of itself"),
    ("alice", "link acme Globex", "No customer named"),
    ("alice", "link Globex acme", "No customer named"),
    ("alice", "link acme acme integrator extra", "quotes"),
    ("alice", "unlink acme", "missing"),
    ("alice", "unlink acme Globex", "No customer named"),
    # stats
    ("alice", "stats decade", "week, month, quarter, year"),
    ("alice", "stats month extra", "one period"),
    # config
    ("alice", "config cadence key 10", "only the managers"),
    ("mei", "config bogus 1", "no setting"),
    ("mei", "config cadence key -1", "1 to 730"),
    ("mei", "config cadence key 9999", "1 to 730"),
    ("mei", "config cadence", "could not read"),
    ("mei", "config hours 25:00-26:00", "not a time"),
    ("mei", "config timezone Mars/Olympus", "not a time zone"),
    # remind / reminders
    ("alice", "remind", "Which customer"),
    ("alice", "remind acme", "Which customer"),
    ("alice", "remind acme whenever call back", "as a time"),
    ("alice", "remind acme in 0d call back", "is now"),
    ("alice", "remind acme 2020-01-01 call back", "in the past"),
    ("alice", "remind acme 2026-02-30 call back", "not a real date"),
    ("alice", "remind Globex tomorrow call back", "No customer named"),
    ("alice", "reminders extra", "takes no arguments"),
    # no such subcommand
    ("alice", "bogus", "There is no"),
    ("alice", "help bogus", "There is no `/crm bogus`"),
    ("alice", "shwo acme", "/crm show"),
]


def test_a_wrong_command_is_refused_with_the_reason_and_how_to_write_it(world, subtests):
    for who, command, expected in REFUSALS:
        with subtests.test(command[:60]):
            text = refused(world, who, command)
            assert expected.lower() in text.lower(), text
            assert HELPFUL.search(text) or "only" in text, f"no usage, example or choices in: {text}"
    for command in ("", "help", "?", "help add", "help add extra words"):
        with subtests.test(f"help: {command!r}"):
            shown = text_of(answer(world, "alice", command))
            assert "/crm add" in shown and "e.g." in shown, command


def test_every_subcommand_survives_hostile_arguments(world):
    """Whatever follows any registered subcommand or alias: an answer, never an internal error, never half a write."""
    names = [sub.name for sub in world.router.subcommands]
    assert {"help", "add", "show", "list", "log", "contact", "level", "org", "stage", "tier", "owner", "history",
            "config", "remind", "reminders"} <= set(names)
    aliases = [alias for sub in world.router.subcommands for alias in sub.aliases]
    tails = [
        "",
        '"unclosed',
        "x" * 5000,
        "\x00",
        "<@U0MEI|mei> <#C0ACME|acme-shared>",
        "&lt;!channel&gt; &amp; <!channel> <!here>",
        "一 二 😀 \u202e",
        "acme call " + "y" * 3000,
    ]
    runs = [(name, tail) for name in names for tail in tails] + [(alias, tail) for alias in aliases for tail in tails[1:2]]
    for name, tail in runs:
        before = snapshot(world)
        reply = answer(world, "mei", f"{name} {tail}")
        if is_refusal(reply):
            assert snapshot(world) == before, f"/crm {name} {tail[:40]!r} was refused but wrote something"


def test_config_managers_takes_only_people(world):
    """`managers add` must take @mentions only: a bare word that starts with U is not a person."""
    for word in ("U<!channel>", "Ubob"):
        refused(world, "mei", f"config managers add {word}")


# -- random commands ------------------------------------------------------------------------------------------

TOKENS = st.one_of(
    st.sampled_from([
        '"', "'", "“", "”", "「", '""', '"Acme Corp"', '"Acme', "acme", "Acme", "ACME", "globex", "Li", '"Li Wei"',
        "call", "note", "key", "general", "4", "0", "99", "-1", "supportive", "in", "3d", "tomorrow", "monday",
        "2026-12-01", "14:30", "cadence", "hours", "managers", "add", "remove", "timezone", "Asia/Shanghai",
        "<@U0BOB|bob>", "<@U0MEI>", "<@W0X|a b>", "<#C0ACME|acme-shared>", "<#C0SALES>", "<!channel>", "<!here>",
        "&lt;", "&gt;", "&amp;", "&lt;!channel&gt;", "<", ">", "&", "😀", "👩‍👩‍👧", "北京", "科技", "\u202e", "\u200f",
        "\x00", "\t", "\n", "x" * 3000, "长" * 500,
    ]),
    st.builds(lambda k, v: f"{k}:{v}", st.sampled_from(["tier", "stage", "org", "owner", "channel", "role", "level",
                                                       "user", "x", ""]),
              st.sampled_from(["", "key", "bogus", "<@U0BOB|bob>", "<#C0ACME|a>", "4", ":", '"q"', "😀"])),
    st.text(max_size=12),
)
WORDS = st.builds(
    lambda tokens, spaces: "".join(space + token for space, token in zip(spaces, tokens, strict=False)),
    st.lists(TOKENS, max_size=7),
    st.lists(st.sampled_from([" ", "  ", "\n", " \t"]), min_size=7, max_size=7),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(who=st.sampled_from(["alice", "bob", "mei"]), data=st.data(), words=WORDS)
def test_random_commands_always_get_an_answer_and_a_refusal_writes_nothing(world, who, data, words):
    """Any registered subcommand (or a made-up one) followed by random words, through the real dispatch."""
    names = sorted(name for sub in world.router.subcommands for name in (sub.name, *sub.aliases))
    command = data.draw(st.one_of(st.sampled_from(names), st.text(max_size=8)), label="subcommand") + words
    before = snapshot(world)
    reply = answer(world, who, command)
    if is_refusal(reply):
        assert snapshot(world) == before, f"/crm {command!r} was refused but wrote something"
