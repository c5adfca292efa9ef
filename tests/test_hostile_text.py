"""Hostile text: names and notes are stored as typed and shown escaped everywhere — they ping nobody, break nothing."""

import json
import re

from sqlmodel import select

from models import Contact, Customer, Interaction, RelationshipChange, Reminder
from tests.support import check_message, mrkdwn_texts, text_of
from tests.support import form_values as values

# Everything Slack might act on or choke on, in one name (≤ 200 characters) and one note.
NAME = '<!channel> & <@U0MEI> "Acme" \'s <b>ok</b> \u202eRTL\u200f 😀 北京科技 <#C0SALES> &amp; *x*'
NOTE = ("Met <!here> & <@U0MEI> at <https://evil.example|a link>\nnext line \"q\" 'q' > < &lt; \u202e 😀 数据 "
        + "长" * 40)
SUMMARY_MAX, NAME_MAX = 2000, 200
# Our own markup in mrkdwn: mentions of the test's people, channel links, dates, safe links.
OUR_MARKUP = re.compile(r"<(?:@U0ALICE|@U0BOB|@U0CAROL|#C0[A-Z]+|!date\^[^>|]+\|[^>]*|https://rapport-test\.slack\.com/[^>|]+\|message)>")


def typed(text: str) -> str:
    """What Slack sends for text a person typed into a slash command (should_escape: true)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def assert_escaped(payload: dict) -> None:
    """Slack would accept it, it pings nobody, and every <, > and & in it is ours or an entity."""
    check_message(payload)
    for text in mrkdwn_texts(payload):
        bare = OUR_MARKUP.sub("", text)
        assert "<" not in bare and ">" not in bare, f"unescaped markup in: {text[:300]!r}"
        assert "&" not in re.sub(r"&(?:amp|lt|gt);", "", bare), f"unescaped & in: {text[:300]!r}"


def assert_view_escaped(view: dict) -> None:
    assert_escaped({"text": "view", "blocks": view.get("blocks") or []})


def add_form(name: str) -> dict:
    return values(name=("plain_text_input", name), tier=("static_select", "key"),
                  stage=("static_select", "prospect"), org=("static_select", "vendor"),
                  owner=("users_select", "U0ALICE"))


def opened_view(slack) -> dict:
    call = slack.fake.last("views.open")
    assert call.response["ok"], call.response
    return call.response["view"]


def add_by_form(slack, name: str) -> dict:
    slack.command("alice", "add")
    response = slack.sim.submit(slack.person("alice"), opened_view(slack), add_form(name))
    slack.wait()
    assert response.status == 200
    return response.json() or {}


def button(payload: dict, action_id: str) -> dict:
    for block in payload["blocks"]:
        for element in block.get("elements", []) if block["type"] == "actions" else [block.get("accessory") or {}]:
            if element.get("action_id") == action_id:
                return element
    raise AssertionError(f"no {action_id} button")


def test_a_hostile_name_typed_in_a_command_is_stored_as_typed_and_shown_escaped_on_every_surface(slack):
    # Quoted with CJK brackets so that straight quotes can be part of the name.
    card = slack.command("alice", typed(f"add 「{NAME}」 tier:key"))
    assert_escaped(card)
    with slack.session() as session:
        assert session.exec(select(Customer.name)).one() == NAME

    surfaces = {
        "card": slack.command("alice", typed("show 「<!channel> &」")),
        "list": slack.command("alice", "list all"),
        "list mine": slack.command("alice", "list"),
        "tier": slack.command("alice", typed(f"tier 「{NAME}」 general {NOTE[:300]}")),
        "history": slack.command("alice", typed(f"history 「{NAME}」")),
        "log": slack.command("alice", typed(f"log 「{NAME}」 call {NOTE}")),
        "contact": slack.command("alice", typed(f"contact 「{NAME}」 「{NAME}」 role:champion level:3")),
        "remind": slack.command("alice", typed(f"remind 「{NAME}」 tomorrow {NOTE}")),
        "reminders": slack.command("alice", "reminders"),
        "link": (slack.command("alice", 'add "Plain Partner"'),
                 slack.command("alice", typed(f"link 「{NAME}」 plain integrator")))[1],
        "partner's card": slack.command("alice", "show plain"),  # names the hostile customer as its partner
    }
    assert "integrator of *&lt;!channel&gt; &amp;" in text_of(surfaces["partner's card"])
    for surface, payload in surfaces.items():
        assert "blocks" in payload, (surface, payload)
        assert_escaped(payload)
    card = slack.command("alice", typed("show 「<!channel> &」"))
    assert_escaped(card)
    shown = text_of(card)
    assert "&lt;!channel&gt; &amp; &lt;@U0MEI&gt;" in shown  # the name, on the card, in the touch and contact lines
    assert "Met &lt;!here&gt; &amp; &lt;@U0MEI&gt; at &lt;https://evil.example|a link&gt;" in shown
    assert card["blocks"][0]["text"]["text"].startswith("<!channel> & <@U0MEI>")  # plain text header: verbatim

    with slack.session() as session:
        assert session.exec(select(Interaction.summary)).one() == NOTE
        assert session.exec(select(Contact.name)).one() == NAME
        assert session.exec(select(Reminder.note)).one() == NOTE
        assert session.exec(select(RelationshipChange.reason).where(RelationshipChange.field == "tier")).one() == NOTE[:300]


def test_limits_are_named_and_nothing_is_cut_silently(slack):
    slack.command("alice", 'add "Acme Corp"')
    name_200 = ("<!channel>&" * 20)[:NAME_MAX]
    assert "blocks" in slack.command("alice", typed(f"add 「{name_200}」"))
    assert "the limit is 200" in slack.command("alice", typed(f"add 「{name_200}x」"))["text"]
    assert "the limit is 200" in slack.command("alice", "add 「" + "名" * 5000 + "」")["text"]

    summary = ("<!channel> & <@U0MEI>\n" * 200)[:SUMMARY_MAX]
    logged = slack.command("alice", typed(f"log acme note {summary}"))
    assert_escaped(logged)
    too_long = slack.command("alice", "log acme note " + "x" * 5000)
    assert "the limit is 2,000" in too_long["text"] and "Usage:" in too_long["text"]
    nul = slack.command("alice", "log acme note before\x00after")
    assert "control character (U+0000)" in nul["text"]
    assert "control character" in slack.command("alice", "add 「nul\x00name」")["text"]
    with slack.session() as session:
        names = set(session.exec(select(Customer.name)).all())
        assert names == {"Acme Corp", name_200}
        assert session.exec(select(Interaction.summary)).all() == [summary.strip()]
    # The 200-character name is cut with an ellipsis on the card header and in the list, never mid-entity.
    card = slack.command("alice", typed(f"show 「{name_200}」"))
    assert_escaped(card)
    assert card["blocks"][0]["text"]["text"].endswith("…")
    assert_escaped(slack.command("alice", "list all"))
    assert_escaped(slack.command("alice", "history acme"))


def test_modals_show_the_name_verbatim_in_plain_text_and_escaped_in_mrkdwn(slack):
    add_by_form(slack, NAME)
    assert add_by_form(slack, NAME[:150] + "\nsecond line")["errors"]["name"] == "The customer name must be on one line."
    with_newline = NAME[:150] + " second\t'tab'"  # (a name is one line: a tab is the most it can hold)
    assert add_by_form(slack, with_newline) == {}
    with slack.session() as session:
        assert set(session.exec(select(Customer.name)).all()) == {NAME, with_newline}
    for command in (f"show 「{with_newline}」", "list all", f"history 「{with_newline}」"):
        reply = slack.command("alice", typed(command))
        assert "blocks" in reply, reply
        assert_escaped(reply)

    card = slack.command("alice", typed(f"show 「{NAME}」"))

    slack.sim.click(slack.person("alice"), action=button(card, "card.edit"), channel_id="C0SALES")
    slack.wait()
    edit = opened_view(slack)
    name_input = next(b for b in edit["blocks"] if b["block_id"] == "name")
    assert name_input["element"]["initial_value"] == NAME  # plain text: shown as typed, no entities

    for action in ("card.log_touch", "card.contact", "card.remind"):
        slack.sim.click(slack.person("alice"), action=button(card, action), channel_id="C0SALES")
        slack.wait()
        view = opened_view(slack)
        assert_view_escaped(view)
        assert "&lt;!channel&gt;" in json.dumps(view, ensure_ascii=False), action

    slack.sim.click(slack.person("alice"), action=button(card, "card.log_touch"), channel_id="C0SALES")
    slack.wait()
    touch_form = opened_view(slack)
    response = slack.sim.submit(slack.person("alice"), touch_form,
                                values(kind=("static_select", "call"), summary=("plain_text_input", NOTE)))
    slack.wait()
    logged = response.json()
    assert logged["response_action"] == "update"
    assert_view_escaped(logged["view"])
    with slack.session() as session:
        assert session.exec(select(Interaction.summary)).one() == NOTE

    nul = slack.sim.submit(slack.person("alice"), touch_form,
                           values(kind=("static_select", "call"), summary=("plain_text_input", "a\x00b")))
    assert nul.json() == {"response_action": "errors", "errors": {"summary": nul.json()["errors"]["summary"]}}
    assert "control character" in nul.json()["errors"]["summary"]


def test_log_to_customer_prefills_the_message_as_written_and_the_picker_shows_names_within_75_characters(slack):
    long_name = "<!channel> & " + "長い名前" * 30
    add_by_form(slack, NAME)
    add_by_form(slack, long_name)
    add_by_form(slack, "line one\nline two")
    # Slack sends message text with &, <, > escaped and real mentions as markup.
    message = {"ts": "1700000000.000100", "user": "U0BOB",
               "text": "ping <!channel> &amp; &lt;b&gt; from <@U0MEI>\nline 2 😀 北京"}
    response = slack.sim.message_shortcut(slack.person("alice"), callback_id="log_to_customer",
                                          channel_id="C0SALES", message=message)
    slack.wait()
    assert response.status == 200
    form = opened_view(slack)
    summary = next(b for b in form["blocks"] if b["block_id"] == "summary")
    assert summary["element"]["initial_value"] == "ping <!channel> & <b> from <@U0MEI>\nline 2 😀 北京"

    for query in ("<!channel>", "&lt;", "", "line", "\x00", "名前"):
        response = slack.sim.options(slack.person("alice"), action_id="customer_picker", value=query)
        assert response.status == 200, (query, response.body)
        options = response.json()["options"]
        for option in options:
            assert option["text"]["type"] == "plain_text"
            assert 0 < len(option["text"]["text"]) <= 75 and len(option["value"]) <= 150
            assert "\n" not in option["text"]["text"]
        if query == "<!channel>":
            assert {o["text"]["text"] for o in options} == {NAME[:74] + "…" if len(NAME) > 75 else NAME,
                                                            long_name[:74] + "…"}
            picked = next(o["value"] for o in options if o["text"]["text"].startswith(NAME[:20]))

    state = values(customer=("external_select", picked), kind=("static_select", "message"),
                   summary=("plain_text_input", summary["element"]["initial_value"]))
    logged = slack.sim.submit(slack.person("alice"), form, state)
    slack.wait()
    assert_view_escaped(logged.json()["view"])
    with slack.session() as session:
        touch = session.exec(select(Interaction)).one()
        assert touch.summary == "ping <!channel> & <b> from <@U0MEI>\nline 2 😀 北京"
        assert session.get(Customer, touch.customer_id).name == NAME
    assert_escaped(slack.command("alice", typed("show 「<!channel> & <@U0MEI>」")))


def test_app_home_escapes_names_and_notes(slack):
    add_by_form(slack, NAME)
    slack.command("alice", typed(f"remind 「{NAME}」 in 1h {NOTE}"))
    slack.command("alice", typed(f"log 「{NAME}」 note {NOTE}"))
    response = slack.sim.event({"type": "app_home_opened", "user": "U0ALICE", "channel": "D0ALICE", "tab": "home"})
    slack.wait()
    assert response.status == 200
    call = slack.fake.last("views.publish")
    assert call.response["ok"], call.response
    view = call.args["view"]
    assert_view_escaped(view)
    assert "&lt;!channel&gt; &amp; &lt;@U0MEI&gt;" in json.dumps(view, ensure_ascii=False)


POSTING = ("chat.postMessage", "chat.postEphemeral", "chat.update", "response_url", "views.open", "views.push",
           "views.update", "views.publish")


def test_every_message_and_notification_text_of_a_survey_and_a_reminder_pings_nobody(slack, clock):
    """A hostile customer name through a survey's whole life (posted, a low score with its alert and follow-up, the
    close and the summary DM), a reminder DM and the weekly digest: every text Slack would parse, the
    notification fallbacks included, is escaped."""
    from datetime import timedelta

    from bot.scheduler import run_due_work
    from bot.slack.simulate import Person

    hostile = "Evil <!here> <@U0EVIL> <https://evil.example|click me> Co"
    slack.command("mei", "config digest-channel <#C0MANAGERS|managers>")
    slack.command("alice", typed(f"add 「{hostile}」 tier:key channel:<#C0ACME|acme-shared>"))
    slack.command("alice", typed("survey 「Evil <!here>」 nps"))
    slack.command("alice", typed("remind 「Evil <!here>」 in 1h Call <!channel> back"))
    message = slack.fake.messages("C0ACME")[-1]
    two = next(e for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]
               if e["text"]["text"] == "2")
    carol = Person(id="U0CAROL", name="carol", team_id="T0CUSTOMER")
    slack.sim.click(carol, action=two, channel_id="C0ACME", message=message)
    slack.wait()
    clock.advance(timedelta(days=7, minutes=1))  # Monday again: the survey closes and the digest goes out
    run_due_work(slack.runtime, everything=True)
    run_due_work(slack.runtime, everything=True)
    assert [c for c in slack.fake.calls("chat.postMessage") if c.args.get("channel") == "C0MANAGERS"]
    calls = [c for c in slack.fake.calls() if c.method in POSTING]
    assert {c.method for c in calls} >= {"chat.postMessage", "chat.update", "response_url"}
    texts = [c.args.get("text") or "" for c in calls]
    assert any("Survey closed" in t for t in texts) and any("Low NPS" in t for t in texts)
    for call in calls:
        view = call.args.get("view")
        if isinstance(view, dict):
            assert_view_escaped(view)
        else:
            assert_escaped({"text": call.args.get("text") or "-", "blocks": call.args.get("blocks") or []})
