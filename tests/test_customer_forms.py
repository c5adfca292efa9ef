"""Modals and buttons for customers: add and edit, log a touch (also from any message), the decision chain, the
picker; in a shared channel nothing is posted; a workspace never reaches another's customers."""

from datetime import timedelta

from sqlmodel import select

from bot.services import customers as svc
from bot.services.workspaces import ensure_workspace
from models import Contact, Customer, Interaction, RelationshipChange
from tests.support import form_values as values
from tests.support import text_of
from tests.test_bad_input import snapshot


def customer_form(name: str, *, tier="general", stage="prospect", org="vendor", owner="U0ALICE", channel=None):
    fields = dict(name=("plain_text_input", name), tier=("static_select", tier), stage=("static_select", stage),
                  org=("static_select", org), owner=("users_select", owner))
    if channel:
        fields["channel"] = ("conversations_select", channel)
    return values(**fields)


def opened_view(slack, since: int) -> dict:
    """The one modal opened since `since` views.open calls; Slack accepted it."""
    calls = slack.fake.calls("views.open")[since:]
    assert len(calls) == 1, [c.response for c in calls]
    assert calls[0].response["ok"], calls[0].response
    return calls[0].response["view"]


def click(slack, who: str, payload: dict, action_id: str, *, channel: str = "C0SALES") -> dict | None:
    """Press a button of a message; returns the modal it opened, if any."""
    opened = len(slack.fake.calls("views.open"))
    element = next(e for b in payload["blocks"] if b["type"] == "actions" for e in b["elements"]
                   if e["action_id"] == action_id)
    response = slack.sim.click(slack.person(who), action=element, channel_id=channel)
    slack.wait()
    assert response.status == 200
    calls = slack.fake.calls("views.open")[opened:]
    return opened_view(slack, opened) if calls else None


def submit(slack, who: str, view: dict, state: dict) -> dict:
    response = slack.sim.submit(slack.person(who), view, state)
    slack.wait()
    assert response.status == 200, response.body
    return response.json() or {}


def inline_error(answer: dict, field: str) -> str:
    assert answer.get("response_action") == "errors", answer
    assert list(answer["errors"]) == [field], answer
    return answer["errors"][field]


# -- add and edit -----------------------------------------------------------------------------------------------


def test_add_with_no_arguments_opens_the_form_and_a_duplicate_name_is_an_inline_error(slack):
    opened = len(slack.fake.calls("views.open"))
    assert slack.command("alice", "add") == {}
    form = opened_view(slack, opened)
    assert form["callback_id"] == "customer_form" and form["title"]["text"] == "New customer"

    assert submit(slack, "alice", form, customer_form("Acme Corp", tier="key", channel="C0ACME")) == {}
    with slack.session() as session:
        acme = session.exec(select(Customer)).one()
        assert (acme.name, acme.tier, acme.owner_id, acme.channel_id) == ("Acme Corp", "key", "U0ALICE", "C0ACME")

    before = snapshot(slack)
    for name, expected in (("ACME corp", "already exists"), ("x" * 201, "limit is 200"),
                           ("nul\x00", "control character"), ("   ", "empty")):
        assert expected in inline_error(submit(slack, "alice", form, customer_form(name)), "name"), name
    assert snapshot(slack) == before


def test_the_edit_button_opens_the_form_prefilled_and_saving_writes_history(slack):
    slack.command("alice", 'add "Acme Corp"')
    slack.command("alice", 'add "Globex"')
    card = slack.command("alice", "show acme")

    form = click(slack, "alice", card, "card.edit")
    prefilled = {b["block_id"]: b["element"] for b in form["blocks"] if b["type"] == "input"}
    assert prefilled["name"]["initial_value"] == "Acme Corp"
    assert prefilled["tier"]["initial_option"]["value"] == "general"
    assert prefilled["owner"]["initial_user"] == "U0ALICE"

    # bob may read alice's account but not change it: the refusal shows in the form, nothing is written.
    before = snapshot(slack)
    refusal = inline_error(submit(slack, "bob", form, customer_form("Acme Corp", tier="key", owner="U0BOB")), "name")
    assert "only Acme Corp's owner" in refusal
    assert inline_error(submit(slack, "alice", form, customer_form("globex")), "name").startswith("Another customer")
    # Ids we print inside <@…> and <#…> must be ids, whatever a forged submission carries.
    assert "not a Slack user" in inline_error(submit(slack, "alice", form, customer_form("Acme Corp", owner="<!channel>")),
                                              "owner")
    assert "not a Slack channel" in inline_error(
        submit(slack, "alice", form, customer_form("Acme Corp", channel="C1|x> <!here")), "channel")
    assert snapshot(slack) == before

    # Handing the account to bob in the same save as other changes: alice may make all of them.
    edited = customer_form("Acme Corporation", tier="key", owner="U0BOB", channel="C0ACME")
    assert submit(slack, "alice", form, edited) == {}
    with slack.session() as session:
        acme = session.exec(select(Customer).where(Customer.name == "Acme Corporation")).one()
        assert (acme.tier, acme.owner_id, acme.channel_id) == ("key", "U0BOB", "C0ACME")
        changes = session.exec(select(RelationshipChange.field, RelationshipChange.from_value,
                                      RelationshipChange.to_value, RelationshipChange.by_user)).all()
        assert sorted(changes) == [("owner", "U0ALICE", "U0BOB", "U0ALICE"), ("tier", "general", "key", "U0ALICE")]
    shown = text_of(slack.command("alice", "history acme"))
    assert "tier general → key" in shown and "owner <@U0ALICE> → <@U0BOB>" in shown


# -- touches and the decision chain --------------------------------------------------------------------------


def test_log_touch_button_logs_the_touch_and_the_revisit_moves(slack, clock):
    slack.command("alice", 'add "Acme Corp" tier:key')
    slack.command("alice", 'contact acme "Li Wei" role:decision_maker level:3')
    clock.advance(timedelta(days=20))
    card = slack.command("alice", "show acme")
    assert ":warning: overdue" in text_of(card)

    form = click(slack, "alice", card, "card.log_touch")
    contact_options = next(b for b in form["blocks"] if b.get("block_id") == "contact")["element"]["options"]
    li_wei = contact_options[0]["value"]

    before = snapshot(slack)
    too_long = values(kind=("static_select", "call"), summary=("plain_text_input", "x" * 2001))
    assert "the limit is 2,000" in inline_error(submit(slack, "alice", form, too_long), "summary")
    assert snapshot(slack) == before

    answer = submit(slack, "alice", form, values(kind=("static_select", "meeting"),
                                                 summary=("plain_text_input", "Renewal: wants a proposal"),
                                                 contact=("static_select", li_wei)))
    assert answer["response_action"] == "update" and "Logged a meeting" in text_of(answer["view"])
    with slack.session() as session:
        touch = session.exec(select(Interaction)).one()
        assert (touch.kind, touch.summary, touch.contact_id, touch.by_user) == (
            "meeting", "Renewal: wants a proposal", int(li_wei), "U0ALICE")
        acme = session.exec(select(Customer)).one()
        assert acme.last_touch_at == clock.now() and acme.revisit_due_at == clock.now() + timedelta(days=14)
    assert ":warning: overdue" not in text_of(slack.command("alice", "show acme"))


def test_the_contact_form_adds_a_person_with_role_and_level(slack):
    slack.command("alice", 'add "Acme Corp"')
    card = slack.command("alice", "show acme")
    form = click(slack, "alice", card, "card.contact")
    person = values(name=("plain_text_input", "Li Wei"), role=("static_select", "decision_maker"),
                    level=("static_select", "4"), user=("users_select", "U0CAROL"))

    before = snapshot(slack)
    assert "only Acme Corp's owner" in inline_error(submit(slack, "bob", form, person), "name")
    assert snapshot(slack) == before

    assert submit(slack, "alice", form, person) == {}
    with slack.session() as session:
        li = session.exec(select(Contact)).one()
        assert (li.name, li.role, li.level, li.slack_user_id) == ("Li Wei", "decision_maker", 4, "U0CAROL")
    assert "*Li Wei*, decision maker, supportive (4/5) · <@U0CAROL>" in text_of(slack.command("alice", "show acme"))


def test_log_to_customer_turns_a_message_into_a_touch_with_its_permalink(slack, clock):
    slack.command("alice", 'add "Acme Corp" tier:key')
    slack.command("alice", 'add "Acme Labs"')
    clock.advance(timedelta(days=3))
    opened = len(slack.fake.calls("views.open"))
    message = {"ts": "1700000000.000200", "user": "U0CAROL", "text": "We'd like the proposal by Friday &amp; a demo"}
    response = slack.sim.message_shortcut(slack.person("alice"), callback_id="log_to_customer", channel_id="C0ACME",
                                          message=message)
    slack.wait()
    assert response.status == 200
    form = opened_view(slack, opened)
    assert slack.fake.last("chat.getPermalink").args["message_ts"] == "1700000000.000200"
    blocks = {b.get("block_id"): b for b in form["blocks"]}
    assert blocks["summary"]["element"]["initial_value"] == "We'd like the proposal by Friday & a demo"
    assert blocks["kind"]["element"]["initial_option"]["value"] == "message"

    # The picker searches as you type.
    picked = slack.sim.options(slack.person("alice"), action_id="customer_picker", value="acme c", view=form)
    options = picked.json()["options"]
    assert [o["text"]["text"] for o in options] == ["Acme Corp"]

    before = snapshot(slack)
    nobody = values(kind=("static_select", "message"), summary=("plain_text_input", "x"))
    assert "Pick a customer" in inline_error(submit(slack, "alice", form, nobody), "customer")
    assert snapshot(slack) == before

    state = values(customer=("external_select", options[0]["value"]), kind=("static_select", "message"),
                   summary=("plain_text_input", "We'd like the proposal by Friday & a demo"))
    assert submit(slack, "alice", form, state)["response_action"] == "update"
    with slack.session() as session:
        touch = session.exec(select(Interaction)).one()
        assert touch.link == "https://rapport-test.slack.com/archives/C0ACME/p1700000000000200"
        assert touch.kind == "message" and touch.at == clock.now()
    assert "<https://rapport-test.slack.com/archives/C0ACME/p1700000000000200|message>" in text_of(
        slack.command("alice", "show acme corp"))

    # Without a permalink (Slack refuses it) the message is still worth logging.
    slack.fake.inject("chat.getPermalink", "message_not_found")
    opened = len(slack.fake.calls("views.open"))
    slack.sim.message_shortcut(slack.person("alice"), callback_id="log_to_customer", channel_id="C0ACME",
                               message={"ts": "1700000000.000300", "text": "one more"})
    slack.wait()
    form = opened_view(slack, opened)
    assert '"link":null' in form["private_metadata"]
    assert next(b for b in form["blocks"] if b.get("block_id") == "summary")["element"]["initial_value"] == "one more"


def test_the_customer_picker_offers_at_most_100_matches_each_within_75_characters(slack, clock):
    with slack.session() as session:
        workspace = ensure_workspace(session, workspace_id="T0RAPPORT", now=clock.now())
        for n in range(130):
            svc.create_customer(session, workspace=workspace, name=f"Globex {n:03d} " + "Subsidiary " * 8,
                                by="U0ALICE", now=clock.now())
        svc.create_customer(session, workspace=workspace, name="Initech", by="U0ALICE", now=clock.now())
        session.commit()
    for typed, expected in (("", 100), ("glob", 100), ("GLOBEX 12", 10), ("subsidiary", 100), ("init", 1),
                            ("zzz", 0)):
        response = slack.sim.options(slack.person("alice"), action_id="customer_picker", value=typed)
        assert response.status == 200
        options = response.json()["options"]
        assert len(options) == expected, typed
        assert all(len(o["text"]["text"]) <= 75 and len(o["value"]) <= 150 for o in options)
    first = slack.sim.options(slack.person("alice"), action_id="customer_picker", value="globex 00").json()["options"]
    assert first[0]["text"]["text"].startswith("Globex 000 Subsidiary") and first[0]["text"]["text"].endswith("…")


# -- privacy and workspaces --------------------------------------------------------------------------------------


def test_in_the_shared_channel_every_answer_is_ephemeral_and_nothing_is_posted_there(slack, clock):
    commands = ['add "Acme Corp" tier:key channel:<#C0ACME|acme-shared>', "help", "show acme", "list all",
                "list at-risk", "log acme call Discussed pricing, internal: margin is thin",
                'contact acme "Li Wei" role:decision_maker level:4', 'level acme "Li Wei" 5', "tier acme general",
                "stage acme active", "org acme supplier", "owner acme <@U0BOB|bob>", "history acme",
                "remind acme tomorrow Chase the PO", "reminders", "config", "bogus", "show nothing", "add",
                'add "Globex Inc"', "link acme globex integrator", "unlink acme globex", "stats quarter",
                "plan acme", "plan acme pressure macro Budgets frozen"]
    seen = {sub.name for sub in slack.router.subcommands}
    for command in commands:
        responses = len(slack.fake.calls("response_url"))
        reply = slack.command("alice", command, channel="C0ACME")
        assert reply == {} or reply.get("response_type") == "ephemeral", (command, reply)
        for call in slack.fake.calls("response_url")[responses:]:
            assert call.args.get("response_type") != "in_channel", (command, call.args)
        seen.discard(command.split()[0])
    assert seen <= {"survey", "digest"}, f"not tried in the shared channel: {seen}"
    # Buttons pressed on the card in the shared channel answer the presser only.
    card = slack.command("alice", "show acme", channel="C0ACME")
    responses = len(slack.fake.calls("response_url"))
    slack.sim.click(slack.person("alice"), action={"action_id": "card.open", "value": card["blocks"][-1]["elements"][0]
                                                   ["value"]}, channel_id="C0ACME")
    slack.wait()
    for call in slack.fake.calls("response_url")[responses:]:
        assert call.args.get("response_type") == "ephemeral" and call.args.get("replace_original") is False
    assert slack.fake.messages("C0ACME") == []
    assert [c for c in slack.fake.calls("chat.postMessage") if c.args.get("channel") == "C0ACME"] == []


def test_a_workspace_never_reaches_another_workspaces_customers(slack):
    slack.command("alice", 'add "Acme Corp" tier:key')
    slack.command("alice", "log acme call Secret pricing")
    slack.command("alice", "tier acme general")
    with slack.session() as session:
        acme_id = str(session.exec(select(Customer.id)).one())
    other = slack.in_workspace("T0OTHER")
    other.command("alice", 'add "Zeta"')

    assert "No customer named" in other.command("alice", "show acme")["text"]
    assert "No customer named" in other.command("alice", "history acme")["text"]
    assert "No customer named" in other.command("alice", "log acme call hi")["text"]
    listed = text_of(other.command("alice", "list all"))
    assert "Zeta" in listed and "Acme" not in listed
    options = other.sim.options(other.person("alice"), action_id="customer_picker", value="").json()["options"]
    assert [o["text"]["text"] for o in options] == ["Zeta"]
    assert other.sim.options(other.person("alice"), action_id="customer_picker", value="acme").json() == {
        "options": []}

    # Forged buttons and forms carrying Acme's id, sent from the other workspace: refused, nothing opened or written.
    before = snapshot(slack)
    opened = len(slack.fake.calls("views.open"))
    for action_id in ("card.open", "card.edit", "card.log_touch", "card.contact", "card.remind"):
        responses = len(slack.fake.calls("response_url"))
        response = other.sim.click(other.person("alice"), action={"action_id": action_id, "value": acme_id},
                                   channel_id="C0SALES")
        other.wait()
        assert response.status == 200
        said = [c.args for c in slack.fake.calls("response_url")[responses:]]
        assert len(said) == 1 and "no longer exists" in said[0]["text"], (action_id, said)
        assert said[0]["response_type"] == "ephemeral" and "Acme" not in said[0]["text"]
    for action_id in ("card.edit", "card.log_touch"):
        response = other.sim.click(other.person("alice"), action={"action_id": action_id, "value": "not-a-number"},
                                   channel_id="C0SALES")
        other.wait()
        assert "no longer exists" in slack.fake.last("response_url").args["text"]
    assert len(slack.fake.calls("views.open")) == opened

    form = {"type": "modal", "callback_id": "customer_form", "private_metadata": f'{{"customer_id":{acme_id}}}',
            "blocks": [{"type": "input", "block_id": "name"}]}
    assert "no longer exists" in inline_error(submit(other, "alice", form, customer_form("Mine now", tier="key")),
                                              "name")
    touch = {"type": "modal", "callback_id": "touch_form", "private_metadata": '{"customer_id":null,"link":null}',
             "blocks": [{"type": "input", "block_id": "customer"}]}
    state = values(customer=("external_select", acme_id), kind=("static_select", "call"),
                   summary=("plain_text_input", "hi"))
    assert "no longer exists" in inline_error(submit(other, "alice", touch, state), "customer")
    contact = {"type": "modal", "callback_id": "contact_form", "private_metadata": f'{{"customer_id":{acme_id}}}',
               "blocks": [{"type": "input", "block_id": "name"}]}
    person = values(name=("plain_text_input", "Mole"), role=("static_select", "user"), level=("static_select", "1"))
    assert "no longer exists" in inline_error(submit(other, "alice", contact, person), "name")
    assert snapshot(slack) == before


def test_the_picker_finds_a_name_by_any_part_starting_ones_first(slack, clock):
    names = ["Robotics Inc", "Acme Robotics", "Zeta Robotics", "Globex", "北京科技有限公司", "上海科技", "50% Off_Ltd",
             "500 Offices"]
    with slack.session() as session:
        workspace = ensure_workspace(session, workspace_id="T0RAPPORT", now=clock.now())
        for name in names:
            svc.create_customer(session, workspace=workspace, name=name, by="U0ALICE", now=clock.now())
        session.commit()

    def offered(typed: str) -> list[str]:
        response = slack.sim.options(slack.person("alice"), action_id="customer_picker", value=typed)
        assert response.status == 200
        return [o["text"]["text"] for o in response.json()["options"]]

    # Names starting with the text first, then names containing it, each in name order.
    assert offered("robot") == ["Robotics Inc", "Acme Robotics", "Zeta Robotics"]
    assert offered("BOTIC") == ["Acme Robotics", "Robotics Inc", "Zeta Robotics"]
    assert offered("ob") == ["Acme Robotics", "Globex", "Robotics Inc", "Zeta Robotics"]  # too short for trigrams
    assert offered("科技") == ["上海科技", "北京科技有限公司"]
    assert offered("科技有限") == ["北京科技有限公司"]
    assert offered("0% off_") == ["50% Off_Ltd"]  # % and _ are letters here, not wildcards
    assert offered("xyz") == []


def test_guests_and_other_organisations_get_no_shortcut_picker_button_or_form(slack, fake_slack):
    """Not only /crm: everything but survey answers is for members of our own team."""
    from bot.slack.simulate import Person

    card = slack.command("alice", 'add "Acme Corp" tier:key channel:<#C0ACME|acme-shared>')
    form = click(slack, "alice", card, "card.log_touch")
    fake_slack.add_user("U0GUEST", name="gus", team_id="T0RAPPORT", is_restricted=True)
    outsiders = [Person(id="U0GUEST", name="gus", team_id="T0RAPPORT"), slack.person("carol")]
    before, opened = snapshot(slack), len(fake_slack.calls("views.open"))
    for who in outsiders:
        said = len(fake_slack.calls("response_url"))
        message = {"ts": "1700000000.000300", "user": "U0ALICE", "text": "our margin on Acme is thin"}
        assert slack.sim.message_shortcut(who, callback_id="log_to_customer", channel_id="C0ACME",
                                          message=message).status == 200
        assert slack.sim.options(who, action_id="customer_picker", value="acme", view=form).json() == {"options": []}
        button = next(e for b in card["blocks"] if b["type"] == "actions" for e in b["elements"]
                      if e["action_id"] == "card.edit")
        assert slack.sim.click(who, action=button, channel_id="C0ACME").status == 200
        state = values(customer=("external_select", button["value"]), kind=("static_select", "call"),
                       summary=("plain_text_input", "sneaky"))
        answer = slack.sim.submit(who, form, state)
        slack.wait()
        assert answer.status == 200 and "for members of our own team" in str(answer.json()["errors"])
        refusals = [c.args for c in fake_slack.calls("response_url")[said:]]
        assert refusals and all("for members of our own team" in r["text"] and r["response_type"] == "ephemeral"
                                for r in refusals), refusals
    assert len(fake_slack.calls("views.open")) == opened and snapshot(slack) == before
