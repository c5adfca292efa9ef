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


def test_accents_fold_when_finding_a_customer(slack):
    slack.command("alice", 'add "Müller GmbH"')
    assert "Müller GmbH" in text_of(slack.command("alice", "show muller"))
    assert "Müller GmbH" in text_of(slack.command("alice", "show MULLER gmbh"))
    assert "already" in slack.command("alice", 'add "Muller GmbH"')["text"].lower()  # the same name, once
    slack.command("alice", 'add "Crème Brûlée Co"')
    assert "Crème Brûlée Co" in text_of(slack.command("alice", "show creme"))


def test_the_upgrade_folds_the_keys_stored_before_and_keeps_a_name_that_would_collide(database_url, clock):
    from alembic import command

    from bot.db import alembic_config, make_engine, session_scope, upgrade
    from bot.services.customers import create_customer
    from bot.services.workspaces import ensure_workspace

    engine = make_engine(database_url)
    upgrade(engine)
    with session_scope(engine) as session:
        workspace = ensure_workspace(session, workspace_id="T0RAPPORT", now=clock.now())
        create_customer(session, workspace=workspace, name="Müller GmbH", by="U0ALICE", now=clock.now())
        create_customer(session, workspace=workspace, name="Zoë Ltd", by="U0ALICE", now=clock.now())
    command.downgrade(alembic_config(engine), "0006")  # the keys as they were stored before
    with session_scope(engine) as session:
        assert sorted(session.exec(select(Customer.name_key)).all()) == ["müller gmbh", "zoë ltd"]
        # Before the upgrade, a name differing only by its accents could be added beside it.
        workspace = ensure_workspace(session, workspace_id="T0RAPPORT", now=clock.now())
        create_customer(session, workspace=workspace, name="Muller GmbH", by="U0ALICE", now=clock.now())
    upgrade(engine)
    with session_scope(engine) as session:
        keys = dict(session.exec(select(Customer.name, Customer.name_key)).all())
    assert keys == {"Zoë Ltd": "zoe ltd", "Muller GmbH": "muller gmbh", "Müller GmbH": "müller gmbh"}
    engine.dispose()
