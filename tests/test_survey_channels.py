"""Surveys go only where customers are — a channel shared with another organisation, or one with a guest in
it — since only customers' answers count; an internal channel is refused with the reason and how to switch
internal answers on, and with internal answers on it is allowed."""

from sqlmodel import select

from models import Survey
from tests.support import check_message, text_of
from tests.test_surveys import open_survey_form, submit_survey_form, survey_form


def surveys(slack) -> list[Survey]:
    with slack.session() as session:
        return list(session.exec(select(Survey)).all())


def survey_posts(fake, channel: str) -> list:
    return [c for c in fake.calls("chat.postMessage") if c.args.get("channel") == channel]


def test_a_survey_in_an_internal_channel_is_refused_with_how_to_switch_internal_answers_on(slack, fake_slack):
    slack.command("alice", 'add "Müller GmbH" tier:key channel:<#C0ACME|acme-shared>')
    refused = slack.command("alice", "survey müller nps <#C0SALES|sales>")
    check_message(refused)
    assert refused["response_type"] == "ephemeral"
    text = refused["text"]
    assert "<#C0SALES> has no customers in it" in text and "no answer there would count" in text, text
    assert "`/crm config survey-internal on`" in text
    assert surveys(slack) == [] and survey_posts(fake_slack, "C0SALES") == []

    slack.command("mei", "config survey-internal on")  # a trial with our own team
    assert "survey posted in <#C0SALES>" in text_of(slack.command("alice", "survey müller nps <#C0SALES|sales>"))
    assert len(survey_posts(fake_slack, "C0SALES")) == 1 and len(surveys(slack)) == 1


def test_a_channel_with_a_guest_in_it_is_where_customers_are(slack, fake_slack):
    fake_slack.add_user("U0GUEST", name="gus", team_id="T0RAPPORT", is_restricted=True)
    fake_slack.add_channel("C0GUESTS", name="acme-guests", members=("U0ALICE", "U0BOB", "U0GUEST"))
    slack.command("alice", 'add "Acme Corp" tier:key')
    assert "survey posted in <#C0GUESTS>" in text_of(slack.command("alice", "survey acme nps <#C0GUESTS|acme-guests>"))
    assert len(survey_posts(fake_slack, "C0GUESTS")) == 1


def test_a_channel_only_invited_to_share_has_no_customers_yet(slack, fake_slack):
    fake_slack.add_channel("C0INVITED", name="invited", members=("U0ALICE",), is_pending_ext_shared=True)
    slack.command("alice", 'add "Acme Corp" tier:key')
    assert "has no customers in it" in slack.command("alice", "survey acme nps <#C0INVITED|invited>")["text"]
    assert surveys(slack) == []


def test_the_send_survey_form_says_so_under_the_channel_field(slack, fake_slack):
    form = open_survey_form(slack, fake_slack)
    refused = submit_survey_form(slack, form, survey_form("C0SALES"))
    assert refused["response_action"] == "errors" and list(refused["errors"]) == ["channel"]
    assert refused["errors"]["channel"].startswith("#sales has no customers in it"), refused["errors"]
    assert surveys(slack) == []
    assert submit_survey_form(slack, form, survey_form("C0ACME")) in ({}, {"response_action": "clear"})
    assert len(surveys(slack)) == 1
