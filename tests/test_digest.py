"""The weekly key-account digest: posted once per workspace per week to the managers' channel and subscribers."""

from datetime import timedelta

from sqlmodel import select

from bot.scheduler import run_due_work
from models import DigestRun
from tests.support import check_message, text_of


def digests_in(fake, channel):
    return [c for c in fake.calls("chat.postMessage")
            if c.args.get("channel") == channel and "Key-account digest" in text_of(c.args)]


def setup_accounts(slack, clock):
    slack.command("mei", "config digest-channel <#C0MANAGERS|managers>")
    slack.command("alice", 'add "Acme Corp" tier:key')
    slack.command("alice", 'contact acme "Li Wei" role:decision_maker level:1')
    slack.command("alice", 'add "Globex" tier:key')
    slack.command("alice", 'contact globex "Ann" role:decision_maker level:5')
    slack.command("alice", "org globex strategic_partner")
    slack.command("alice", 'add "Initech"')  # a general account: not in the digest
    clock.advance(timedelta(days=40))
    slack.command("alice", "log globex visit quarterly review")


def test_the_digest_arrives_monday_9_once_and_covers_key_accounts(slack, clock, fake_slack):
    setup_accounts(slack, clock)  # Monday 09:00 + 40 days = Saturday 2027-01-02 09:00
    run_due_work(slack.runtime, everything=True)
    run_due_work(slack.runtime, everything=True)
    assert len(digests_in(fake_slack, "C0MANAGERS")) == 1  # last Monday's, missed while "down": caught up once
    clock.advance(timedelta(days=2, minutes=5))  # Monday 09:05
    run_due_work(slack.runtime, everything=True)
    run_due_work(slack.runtime, everything=True)
    posted = digests_in(fake_slack, "C0MANAGERS")
    assert len(posted) == 2
    check_message(posted[1].args)
    shown = text_of(posted[1].args)
    assert "Acme Corp" in shown and "Globex" in shown and "Initech" not in shown
    assert "At risk" in shown  # Acme: no touch for 42 days, decision maker at level 1
    assert "Visit or call — never touched in 42 days" in shown  # the one thing to do
    with slack.session() as session:
        runs = session.exec(select(DigestRun)).all()
        assert sorted((r.period, r.status) for r in runs) == [("2026-W53", "posted"), ("2027-W01", "posted")]


def test_a_workspace_installed_after_its_digest_time_waits_for_the_next_one(slack, clock, fake_slack):
    clock.advance(timedelta(hours=2))  # Monday 11:00: this week's digest time has passed before install
    slack.command("mei", "config digest-channel <#C0MANAGERS|managers>")
    slack.command("alice", 'add "Acme Corp" tier:key')
    run_due_work(slack.runtime, everything=True)
    assert digests_in(fake_slack, "C0MANAGERS") == []


def test_a_manager_previews_and_subscribes(slack, clock, fake_slack):
    setup_accounts(slack, clock)
    preview = slack.command("mei", "digest preview")
    assert "Key-account digest · preview" in text_of(preview)
    assert "only the managers" in slack.command("bob", "digest subscribe")["text"]
    slack.command("mei", "digest subscribe")
    run_due_work(slack.runtime, everything=True)
    assert len(digests_in(fake_slack, "U0MEI")) == 1
