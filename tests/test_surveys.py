"""Surveys: one click from a customer, counted once, closed on time; low scores start service recovery."""

from datetime import date, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from bot.scheduler import run_due_work
from bot.services.scores import csat, nps
from bot.slack.simulate import Person
from models import Reminder, SurveyResponse
from tests.support import check_message, text_of

CAROL = Person(id="U0CAROL", name="carol", team_id="T0CUSTOMER")


def test_nps_arithmetic():
    assert nps([9, 10, 7, 8, 0, 6]) == pytest.approx(100 * (2 - 2) / 6)
    assert nps([10, 10, 3]) == pytest.approx(100 / 3)
    assert nps([]) is None
    assert csat([5, 4, 3, 1]) == 50.0


def post_survey(slack, fake, text='survey "Acme Corp" nps'):
    slack.command("alice", 'add "Acme Corp" tier:key channel:<#C0ACME|acme-shared>')
    reply = slack.command("alice", text)
    posted = [c for c in fake.calls("chat.postMessage") if c.args.get("channel") == "C0ACME"]
    return reply, posted


def click(slack, fake, who: Person, score: int):
    message = fake.messages("C0ACME")[-1]
    button = next(e for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]
                  if e["text"]["text"] == str(score))
    before = len(fake.calls("response_url"))
    response = slack.sim.click(who, action=button, channel_id="C0ACME", message=message)
    assert response.status == 200
    slack.wait()
    replies = fake.calls("response_url")[before:]
    return replies[-1].args if replies else None


def test_a_survey_is_posted_in_the_customers_channel_with_one_button_per_score(slack, fake_slack):
    reply, posted = post_survey(slack, fake_slack)
    assert "survey posted" in text_of(reply)
    assert len(posted) == 1
    check_message(posted[0].args)
    buttons = [e["text"]["text"] for b in posted[0].args["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert buttons == [str(n) for n in range(11)]
    assert "recommend us" in text_of(posted[0].args)


def test_a_customer_clicks_9_twice_and_it_counts_once_then_changes_to_3(slack, fake_slack):
    post_survey(slack, fake_slack)
    thanks = click(slack, fake_slack, CAROL, 9)
    assert "You answered *9*" in text_of(thanks)
    click(slack, fake_slack, CAROL, 9)
    with slack.session() as session:
        assert [r.score for r in session.exec(select(SurveyResponse)).all()] == [9]
    changed = click(slack, fake_slack, CAROL, 3)
    assert "changed from 9" in text_of(changed)
    with slack.session() as session:
        responses = session.exec(select(SurveyResponse)).all()
        assert [r.score for r in responses] == [3]
        assert nps([r.score for r in responses]) == -100  # from promoter to detractor
        recovery = session.exec(select(Reminder).where(Reminder.source == "survey")).all()
        assert len(recovery) == 1
    alerts = [c for c in fake_slack.calls("chat.postMessage") if c.args.get("channel") == "U0ALICE"]
    assert any("NPS 3" in text_of(a.args) for a in alerts)


def test_the_message_shows_a_live_count_and_never_who_answered(slack, fake_slack):
    post_survey(slack, fake_slack)
    click(slack, fake_slack, CAROL, 10)
    message = fake_slack.messages("C0ACME")[-1]
    shown = text_of(message)
    assert "1 response so far" in shown
    assert "U0CAROL" not in str(message) and "carol" not in shown


def test_our_own_team_gets_a_polite_note_and_is_not_counted(slack, fake_slack):
    post_survey(slack, fake_slack)
    note = click(slack, fake_slack, Person(id="U0BOB", name="bob", team_id="T0RAPPORT"), 2)
    assert "aren't counted" in note["text"]
    with slack.session() as session:
        assert session.exec(select(SurveyResponse)).all() == []
    slack.command("mei", "config survey-internal on")
    click(slack, fake_slack, Person(id="U0BOB", name="bob", team_id="T0RAPPORT"), 8)
    with slack.session() as session:
        assert len(session.exec(select(SurveyResponse)).all()) == 1


def test_a_guest_from_our_workspace_is_counted(slack, fake_slack):
    fake_slack.add_user("U0GUEST", name="gus", team_id="T0RAPPORT", is_restricted=True)
    post_survey(slack, fake_slack)
    click(slack, fake_slack, Person(id="U0GUEST", name="gus", team_id="T0RAPPORT"), 7)
    with slack.session() as session:
        assert len(session.exec(select(SurveyResponse)).all()) == 1


def test_survey_fatigue_and_force(slack, fake_slack, clock):
    post_survey(slack, fake_slack)
    clock.advance(timedelta(days=10))
    refused = slack.command("alice", 'survey "Acme Corp" csat')
    assert "survey fatigue" in refused["text"] and "force" in refused["text"]
    assert "survey posted" in text_of(slack.command("alice", 'survey "Acme Corp" csat force'))


def test_a_bot_not_in_the_channel_an_archived_or_unknown_channel_are_refused(slack, fake_slack):
    fake_slack.add_channel("C0OUT", name="outside", is_member=False)
    fake_slack.add_channel("C0OLD", name="old", is_archived=True)
    slack.command("alice", 'add "Acme Corp"')
    assert "I'm not in #outside" in slack.command("alice", "survey acme <#C0OUT|outside>")["text"]
    assert "archived" in slack.command("alice", "survey acme <#C0OLD|old>")["text"]
    assert "can't see that channel" in slack.command("alice", "survey acme <#C0GONE|gone>")["text"]
    assert "no shared channel" in slack.command("alice", "survey acme")["text"]
    with slack.session() as session:
        from models import Survey

        assert session.exec(select(Survey)).all() == []


def test_a_survey_closes_after_7_days_and_the_owner_gets_the_summary(slack, fake_slack, clock):
    post_survey(slack, fake_slack)
    click(slack, fake_slack, CAROL, 9)
    clock.advance(timedelta(days=7, minutes=1))
    run_due_work(slack.runtime)
    closed = fake_slack.messages("C0ACME")[-1]
    assert "This survey is closed" in text_of(closed)
    assert not [b for b in closed["blocks"] if b["type"] == "actions"]
    summaries = [c for c in fake_slack.calls("chat.postMessage")
                 if c.args.get("channel") == "U0ALICE" and "Survey closed" in text_of(c.args)]
    assert len(summaries) == 1
    assert "NPS 100* from 1 answer" in text_of(summaries[0].args)
    run_due_work(slack.runtime)
    assert len([c for c in fake_slack.calls("chat.postMessage") if "Survey closed" in text_of(c.args)]) == 1


def test_a_click_on_a_closed_survey_gets_a_clear_answer(slack, fake_slack):
    post_survey(slack, fake_slack)
    message = fake_slack.messages("C0ACME")[-1]
    slack.command("alice", "survey close acme")
    button = next(e for b in message["blocks"] if b["type"] == "actions" for e in b["elements"])
    before = len(fake_slack.calls("response_url"))
    slack.sim.click(CAROL, action=button, channel_id="C0ACME", message=message)
    slack.wait()
    assert "closed" in fake_slack.calls("response_url")[before:][-1].args["text"]


def test_the_fatigue_rule_follows_the_configured_cooldown(slack, fake_slack, clock):
    assert "within 7 days" in text_of(slack.command("mei", "config survey-cooldown 7"))
    post_survey(slack, fake_slack)
    clock.advance(timedelta(days=5))
    refused = slack.command("alice", 'survey "Acme Corp" csat')
    assert "survey fatigue" in refused["text"] and "due from 2026-11-30" in refused["text"]
    clock.advance(timedelta(days=3))
    assert "survey posted" in text_of(slack.command("alice", 'survey "Acme Corp" csat'))
    slack.command("mei", "config survey-cooldown 0")  # 0: no cooldown at all
    assert "survey posted" in text_of(slack.command("alice", 'survey "Acme Corp" nps'))


# -- the Send survey form, from the customer card ------------------------------------------------------------


def open_survey_form(slack, fake) -> dict:
    """The card's Send survey button, as the rep who added the customer sees it; returns the opened form."""
    card = slack.command("alice", 'add "Acme Corp" tier:key channel:<#C0ACME|acme-shared>')
    button = next(e for b in card["blocks"] if b["type"] == "actions" for e in b["elements"]
                  if e["action_id"] == "card.survey")
    opened = len(fake.calls("views.open"))
    response = slack.sim.click(slack.person("alice"), action=button, channel_id="C0SALES",
                               message={"ts": "1700000000.000001", "text": "", "blocks": card["blocks"]},
                               ephemeral=True)
    assert response.status == 200
    slack.wait()
    call = fake.calls("views.open")[opened:][-1]
    assert call.response["ok"], call.response
    return call.response["view"]


def survey_form(channel: str, kind: str = "nps", force: bool = False) -> dict:
    """Slack's state.values for the Send survey form."""
    forced = [{"text": {"type": "plain_text", "text": "Send anyway"}, "value": "force"}] if force else []
    return {
        "kind": {"value": {"type": "static_select",
                           "selected_option": {"text": {"type": "plain_text", "text": kind}, "value": kind}}},
        "channel": {"value": {"type": "conversations_select", "selected_conversation": channel}},
        "force": {"value": {"type": "checkboxes", "selected_options": forced}},
    }


def submit_survey_form(slack, view: dict, values: dict) -> dict:
    response = slack.sim.submit(slack.person("alice"), view, values)
    slack.wait()
    assert response.status == 200, response.body
    return response.json() or {}


def test_the_send_survey_form_names_the_channel_problem_under_the_channel_field(slack, fake_slack):
    fake_slack.add_channel("C0OUT", name="outside", is_member=False)
    fake_slack.add_channel("C0OLD", name="old", is_archived=True)
    form = open_survey_form(slack, fake_slack)
    assert form["callback_id"] == "survey_form" and "Acme Corp" in text_of(form)
    not_in = submit_survey_form(slack, form, survey_form("C0OUT"))
    assert not_in["response_action"] == "errors"
    assert list(not_in["errors"]) == ["channel"] and "I'm not in #outside" in not_in["errors"]["channel"]
    archived = submit_survey_form(slack, form, survey_form("C0OLD"))
    assert list(archived["errors"]) == ["channel"] and "archived" in archived["errors"]["channel"]
    with slack.session() as session:
        from models import Survey

        assert session.exec(select(Survey)).all() == []

    posted = submit_survey_form(slack, form, survey_form("C0ACME", kind="csat"))
    assert posted == {}  # the form closes
    assert [b for m in fake_slack.messages("C0ACME") for b in m.get("blocks", []) if b["type"] == "actions"]
    dm = fake_slack.messages("U0ALICE")[-1]
    assert "CSAT survey posted in <#C0ACME>" in text_of(dm)


def test_the_send_survey_form_puts_survey_fatigue_on_its_checkbox(slack, fake_slack, clock):
    slack.command("mei", "config survey-cooldown 14")
    form = open_survey_form(slack, fake_slack)
    assert "Send even if surveyed in the last 14 days" in text_of(form)
    assert submit_survey_form(slack, form, survey_form("C0ACME")) == {}
    clock.advance(timedelta(days=10))
    refused = submit_survey_form(slack, form, survey_form("C0ACME"))
    assert list(refused["errors"]) == ["force"]
    assert "survey fatigue" in refused["errors"]["force"] and "/crm" not in refused["errors"]["force"]
    assert submit_survey_form(slack, form, survey_form("C0ACME", force=True)) == {}


# -- CSAT ------------------------------------------------------------------------------------------------------


def test_csat_from_buttons_to_summary_share_of_4_and_5_and_a_2_starts_recovery(slack, fake_slack, clock):
    _, posted = post_survey(slack, fake_slack, 'survey "Acme Corp" csat')
    buttons = [e["text"]["text"] for b in posted[0].args["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert buttons == ["1", "2", "3", "4", "5"]
    assert "How satisfied are you with our service?" in text_of(posted[0].args)
    assert "1 = very dissatisfied · 5 = very satisfied" in text_of(posted[0].args)

    def followups(session):
        return session.exec(select(Reminder).where(Reminder.source == "survey")).all()

    def alerts():
        return [c for c in fake_slack.calls("chat.postMessage") if c.args.get("channel") == "U0ALICE"
                and "Low CSAT" in (c.args.get("text") or "")]

    for n, score in enumerate((5, 4, 3)):
        click(slack, fake_slack, Person(id=f"U0CUST{n}", name=f"c{n}", team_id="T0CUSTOMER"), score)
    with slack.session() as session:
        assert followups(session) == []  # a 3 is not low on CSAT
    assert alerts() == []

    thanks = click(slack, fake_slack, CAROL, 2)
    assert "You answered *2*" in text_of(thanks)
    with slack.session() as session:
        [followup] = followups(session)
        assert "CSAT 2" in followup.note and followup.owner_id == "U0ALICE"
        # Monday 09:00 UTC: due the next working day, Tuesday, in the owner's time zone
        assert followup.due_at.astimezone(ZoneInfo("America/New_York")).date() == date(2026, 11, 24)
        assert csat([r.score for r in session.exec(select(SurveyResponse)).all()]) == 50.0
    [alert] = alerts()
    assert "CSAT 2" in text_of(alert.args) and "next working day" in text_of(alert.args)

    clock.advance(timedelta(days=7, minutes=1))
    run_due_work(slack.runtime)
    [summary] = [c for c in fake_slack.calls("chat.postMessage")
                 if c.args.get("channel") == "U0ALICE" and "Survey closed" in text_of(c.args)]
    assert "CSAT 50%* from 4 answers" in text_of(summary.args)


def test_a_click_is_acknowledged_once_stored_and_one_overtaken_by_a_newer_click_is_dropped():
    import threading
    import time

    from bot.slack.surveys import ClickOrder

    order, events = ClickOrder(), []
    storing, finish = threading.Event(), threading.Event()

    def click(score: str, *, hold: bool = False) -> None:
        with order.turn("1", "U0CAROL", then=lambda: events.append(f"ack {score}")) as latest:
            events.append((score, latest))
            if hold:
                storing.set()
                finish.wait(5)

    first = threading.Thread(target=click, args=("9",), kwargs={"hold": True})
    first.start()
    assert storing.wait(5)
    # Two more clicks of hers arrive while the first is being stored (she did not wait for its ack).
    later = [threading.Thread(target=click, args=(score,)) for score in ("3", "7")]
    for n, thread in enumerate(later, start=2):
        thread.start()
        while order._people[("1", "U0CAROL")].issued < n:
            time.sleep(0.001)
    assert events == [("9", True)]  # not acknowledged while it is being stored
    finish.set()
    for thread in (first, *later):
        thread.join(5)
    assert events[:2] == [("9", True), "ack 9"]
    assert set(events[2:]) == {("3", False), "ack 3", ("7", True), "ack 7"}  # the older is dropped, the newest stored
    for score in ("3", "7"):
        assert events.index(next(e for e in events if isinstance(e, tuple) and e[0] == score)) < events.index(
            f"ack {score}")
    assert not order._people  # nothing kept once no click is in flight


def test_a_customer_from_another_organisation_answers_then_explains_the_score_in_a_comment(slack, fake_slack):
    from tests.support import form_values

    post_survey(slack, fake_slack)
    thanks = click(slack, fake_slack, CAROL, 3)
    comment = next(e for b in thanks["blocks"] if b["type"] == "actions" for e in b["elements"]
                   if e["text"]["text"] == "Add a comment")
    opened = len(fake_slack.calls("views.open"))
    assert slack.sim.click(CAROL, action=comment, channel_id="C0ACME").status == 200
    slack.wait()
    [form] = [c.response["view"] for c in fake_slack.calls("views.open")[opened:]]
    answer = slack.sim.submit(CAROL, form, form_values(comment=("plain_text_input", "Support took <!channel> 3 days")))
    slack.wait()
    assert answer.status == 200 and not answer.body  # the form closes
    with slack.session() as session:
        [response] = session.exec(select(SurveyResponse)).all()
        assert (response.respondent_id, response.score, response.comment) == (
            "U0CAROL", 3, "Support took <!channel> 3 days")
    alerts = [c for c in fake_slack.calls("chat.postMessage") if c.args.get("channel") == "U0ALICE"]
    assert any("Support took &lt;!channel&gt; 3 days" in str(a.args["blocks"]) for a in alerts)  # pings nobody


def test_people_outside_our_team_can_read_help_in_any_spelling_but_nothing_else(slack):
    for text in ("help", "HELP", "?", "", "help show"):
        assert "/crm" in text_of(slack.command("carol", text, channel="C0ACME")), text
    for text in ("list", '"help', "show acme"):
        assert "for members of our own team" in slack.command("carol", text, channel="C0ACME")["text"], text
