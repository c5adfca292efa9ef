"""Commands read exactly what they say: option words a subcommand does not know are refused, never folded into a
name; the command and the forms read `when` with one grammar."""

from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import select

from models import Contact, Customer, Reminder
from tests.support import text_of


def test_an_unknown_option_word_is_refused_with_the_options_and_a_suggestion(slack):
    refused = slack.command("alice", 'add "Bad4" foo:bar')
    assert "`foo:` is not an option here" in refused["text"] and "`tier:`" in refused["text"]
    assert '"… foo:bar"' in refused["text"]  # how to write a name that holds a colon
    assert "Did you mean `tier:`?" in slack.command("alice", "add Acme tire:key")["text"]
    slack.command("alice", 'add "Acme Corp"')
    contact = slack.command("alice", 'contact "Acme Corp" "Li Wei" role:influencer tier:key')
    assert "`tier:` is not an option here" in contact["text"] and "`role:`" in contact["text"]
    with slack.session() as session:
        assert session.exec(select(Customer.name)).all() == ["Acme Corp"]
        assert session.exec(select(Contact)).all() == []
    assert "Re: Work" in text_of(slack.command("alice", 'add "Re: Work" tier:key'))  # quoted: a name


OPTION_WORDS = st.from_regex(r"[a-z][a-z_]{0,8}:[a-z0-9@#]{1,6}", fullmatch=True)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(words=st.lists(OPTION_WORDS, min_size=1, max_size=3), which=st.sampled_from(["add", "contact"]))
def test_random_option_words_never_end_up_in_a_stored_name(slack, words, which):
    slack.command("alice", 'add "Base Co"')
    typed = " ".join(words)
    if which == "add":
        slack.command("alice", f"add New {typed}")
    else:
        slack.command("alice", f'contact "Base Co" Li {typed}')
    with slack.session() as session:
        names = session.exec(select(Customer.name)).all() + session.exec(select(Contact.name)).all()
    assert not [name for name in names if ":" in name], (typed, names)


def test_the_command_reads_in_2_days_and_a_time_after_a_date(slack, clock):
    slack.command("alice", 'add "Acme Corp"')
    reply = slack.command("alice", "remind acme in 2 days Send the deck")
    assert "Send the deck" in text_of(reply)
    slack.command("alice", "remind acme in 3 weeks Check in")
    slack.command("alice", "remind acme 2026-12-24 3pm Send it")
    slack.command("alice", "remind acme next tuesday 15:00 Call")
    with slack.session() as session:
        rows = {r.note: r.due_at for r in session.exec(select(Reminder).where(Reminder.kind == "followup")).all()}
    now = clock.now()  # Monday 2026-11-23 09:00 UTC; alice works in New York
    assert rows["Send the deck"] == now + timedelta(days=2)
    assert rows["Check in"] == now + timedelta(weeks=3)
    assert rows["Send it"].isoformat() == "2026-12-24T20:00:00+00:00"  # 3pm in New York
    assert rows["Call"].isoformat() == "2026-11-24T20:00:00+00:00"  # the coming Tuesday, 15:00 there


def test_yesterday_is_in_the_past_and_a_vague_time_says_what_it_expects(slack):
    slack.command("alice", 'add "Acme Corp"')
    assert "is in the past" in slack.command("alice", "remind acme yesterday Call")["text"]
    vague = slack.command("alice", "remind acme someday Call")["text"]
    assert "in 3 days" in vague or "in 3d" in vague
