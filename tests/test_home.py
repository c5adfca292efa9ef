"""App Home: opening the Home tab shows the rep's own accounts, most urgent first, each with a menu."""

from datetime import timedelta

from bot.services import customers as svc
from bot.services.workspaces import ensure_workspace
from tests.support import text_of


def open_home(slack, who: str = "alice", tab: str = "home") -> dict | None:
    """Open a tab of Rapport as `who`; the Home view published for them, if any."""
    published = len(slack.fake.calls("views.publish"))
    person = slack.person(who)
    response = slack.sim.event({"type": "app_home_opened", "user": person.id, "channel": f"D{person.id}",
                                "tab": tab, "event_ts": "1700000000.000100"})
    slack.wait()
    assert response.status == 200
    calls = slack.fake.calls("views.publish")[published:]
    if not calls:
        return None
    assert len(calls) == 1 and calls[0].response["ok"], calls[0].response
    assert calls[0].args["user_id"] == person.id
    return calls[0].args["view"]


def account_lines(view: dict) -> list[str]:
    """The accounts listed, in order: the bold name at the start of each section with a menu."""
    return [b["text"]["text"].split("*")[1] for b in view["blocks"]
            if b["type"] == "section" and (b.get("accessory") or {}).get("action_id") == "home.account"]


def test_the_home_tab_lists_my_accounts_overdue_follow_ups_first_then_longest_untouched(slack, clock):
    for name in ("Acme", "Globex", "Initech", "Umbrella"):
        slack.command("alice", f'add "{name}"')
    slack.command("bob", 'add "Bob Corp"')  # not alice's: never on her Home
    clock.advance(timedelta(days=30))
    slack.command("alice", "log Globex call kick-off")
    clock.advance(timedelta(days=20))
    slack.command("alice", "log Acme call check-in")
    slack.command("alice", "remind Umbrella in 1h Send the contract")
    clock.advance(timedelta(days=1))  # the follow-up is overdue now

    view = open_home(slack)
    assert account_lines(view) == ["Umbrella", "Initech", "Globex", "Acme"]
    shown = text_of({"blocks": view["blocks"]})
    assert "1 overdue follow-up" in shown and "Send the contract" in shown and "Bob Corp" not in shown
    menu = next(b["accessory"] for b in view["blocks"] if (b.get("accessory") or {}).get("action_id") == "home.account")
    assert [o["text"]["text"] for o in menu["options"]] == ["Open card", "Log touch", "Remind me"]
    buttons = [e["action_id"] for b in view["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert buttons == ["home.add_customer", "home.refresh"]

    assert open_home(slack, tab="messages") is None  # the event also fires for the Messages tab
    empty = open_home(slack, "mei")
    assert account_lines(empty) == [] and "You own no accounts yet" in text_of({"blocks": empty["blocks"]})


def test_a_rep_with_many_accounts_sees_the_most_urgent_within_block_kit_limits(slack, clock):
    with slack.session() as session:
        workspace = ensure_workspace(session, workspace_id="T0RAPPORT", now=clock.now())
        for n in range(120):
            svc.create_customer(session, workspace=workspace, name=f"Account {n:03d} " + "名" * 150, by="U0ALICE",
                                now=clock.now() + timedelta(minutes=n))
        session.commit()
    view = open_home(slack)  # the fake refuses a view over 100 blocks or with a field over its limit
    assert len(view["blocks"]) <= 100
    assert [line[:11] for line in account_lines(view)][:3] == ["Account 000", "Account 001", "Account 002"]
    assert "most urgent of your 120 accounts" in text_of({"blocks": view["blocks"]})


def test_the_account_menu_and_buttons_open_the_card_the_touch_and_the_remind_forms(slack):
    slack.command("alice", 'add "Acme Corp" tier:key')
    view = open_home(slack)
    menu = next(b["accessory"] for b in view["blocks"] if (b.get("accessory") or {}).get("action_id") == "home.account")
    home_view = {**view, "id": slack.fake.last("views.publish").response["view"]["id"]}

    opened = {}
    for option in menu["options"]:
        before = len(slack.fake.calls("views.open"))
        response = slack.sim.click(slack.person("alice"), view=home_view,
                                   action={"type": "overflow", "action_id": "home.account", "selected_option": option})
        slack.wait()
        assert response.status == 200
        calls = slack.fake.calls("views.open")[before:]
        assert len(calls) == 1 and calls[0].response["ok"], calls[0].response
        opened[option["text"]["text"]] = calls[0].args["view"]
    assert "Acme Corp" in text_of({"blocks": opened["Open card"]["blocks"]})
    assert opened["Log touch"]["callback_id"] == "touch_form"
    assert opened["Remind me"]["callback_id"] == "remind_form"

    before = len(slack.fake.calls("views.open"))
    slack.sim.click(slack.person("alice"), view=home_view, action={"action_id": "home.add_customer"})
    slack.wait()
    assert slack.fake.calls("views.open")[before:][0].args["view"]["callback_id"] == "customer_form"

    published = len(slack.fake.calls("views.publish"))
    slack.sim.click(slack.person("alice"), view=home_view, action={"action_id": "home.refresh"})
    slack.wait()
    assert len(slack.fake.calls("views.publish")) == published + 1

    # A forged menu value for a customer that is not there: told by DM, nothing opened.
    before = len(slack.fake.calls("views.open"))
    forged = {"text": {"type": "plain_text", "text": "Open card"}, "value": "open:99999"}
    slack.sim.click(slack.person("alice"), view=home_view,
                    action={"type": "overflow", "action_id": "home.account", "selected_option": forged})
    slack.wait()
    assert len(slack.fake.calls("views.open")) == before
    assert "no longer exists" in slack.fake.last("chat.postMessage").args["text"]


def test_a_managers_home_shows_the_key_account_portfolio(slack, clock, fake_slack):
    from datetime import timedelta

    slack.command("mei", "config managers add <@U0MEI|mei>")
    slack.command("alice", 'add "Acme Corp" tier:key')
    slack.command("alice", 'contact acme "Li Wei" role:decision_maker level:1')
    clock.advance(timedelta(days=45))
    slack.sim.event({"type": "app_home_opened", "user": "U0MEI", "tab": "home", "channel": "D0MEI"})
    slack.sim.event({"type": "app_home_opened", "user": "U0BOB", "tab": "home", "channel": "D0BOB"})
    slack.wait()
    views = {c.args["user_id"]: c.args["view"] for c in fake_slack.calls("views.publish")}
    manager = str(views["U0MEI"])
    assert "Key-account portfolio" in manager and "Acme Corp" in manager and "At risk" in manager
    assert "Key-account portfolio" not in str(views["U0BOB"])
