"""A channel shared with another organisation never receives internal content. Choosing one for the digest is
refused with the reason; when the managers' channel becomes shared later (the `channel_shared` event, or found
so before a post), Rapport records it, stops posting there — the digest and escalations reach the managers by
DM — and tells the admins once."""

from datetime import timedelta

from bot.scheduler import run_due_work
from models import Workspace
from tests.support import check_message, text_of
from tests.test_digest import digests_in, setup_accounts
from tests.test_reminders_delivery import followup, posted


def workspace_row(slack) -> Workspace:
    with slack.session() as session:
        return session.get(Workspace, "T0RAPPORT")


def told_shared(fake, user: str = "U0MEI") -> list:
    return [c for c in posted(fake, user) if "is now shared with another organisation" in text_of(c.args)]


def test_a_shared_or_invited_channel_cannot_become_the_managers_channel(slack, fake_slack):
    fake_slack.add_channel("C0INVITED", name="invited", members=("U0MEI",), is_pending_ext_shared=True)
    slack.command("mei", "config digest-channel <#C0MANAGERS|managers>")
    for mention, state in (("<#C0ACME|acme-shared>", "is shared with another organisation"),
                           ("<#C0INVITED|invited>", "has a pending invitation to another organisation")):
        answer = slack.command("mei", f"config digest-channel {mention}")
        check_message(answer)
        channel_id = mention[2:mention.index("|")]
        assert answer["response_type"] == "ephemeral"
        assert f"<#{channel_id}> {state}" in answer["text"], answer["text"]
        assert "cannot receive the key-account digest, escalations or manager notices" in answer["text"]
        assert "Nothing was changed" in answer["text"]
    fake_slack.add_channel("C0HIDDEN", name="hidden", is_private=True, is_member=False)
    assert "I can't see <#C0HIDDEN>" in slack.command("mei", "config digest-channel <#C0HIDDEN|hidden>")["text"]
    assert workspace_row(slack).digest_channel == "C0MANAGERS"


def test_the_managers_channel_shared_later_gets_no_digest_and_the_admins_are_told_once(slack, clock, fake_slack):
    slack.command("mei", "config managers add <@U0MEI|mei>")
    setup_accounts(slack, clock)  # #managers receives the digest; the last one is caught up now
    run_due_work(slack.runtime, everything=True)
    assert len(digests_in(fake_slack, "C0MANAGERS")) == 1

    event = fake_slack.share_channel("C0MANAGERS", with_team="T0CUSTOMER")
    assert slack.sim.event(event, event_id="Ev0SHARED1").status == 200
    assert slack.sim.event(event, event_id="Ev0SHARED1", retry_num=1).status == 200  # Slack's retry
    assert slack.sim.event(event, event_id="Ev0SHARED2").status == 200  # shared with a second organisation
    slack.wait()
    [told] = told_shared(fake_slack)
    check_message(told.args)
    assert "<#C0MANAGERS>" in text_of(told.args) and "/crm config digest-channel" in text_of(told.args)
    assert workspace_row(slack).digest_channel_shared_at == clock.now()
    assert "shared with another organisation, so nothing is posted there" in text_of(slack.command("mei", "config"))

    clock.advance(timedelta(days=2, minutes=5))  # Monday 09:05: the next digest
    run_due_work(slack.runtime, everything=True)
    run_due_work(slack.runtime, everything=True)
    assert len(digests_in(fake_slack, "C0MANAGERS")) == 1  # only the one from before the share
    assert len(digests_in(fake_slack, "U0MEI")) == 1  # the manager has it by DM instead
    assert len(told_shared(fake_slack)) == 1

    # Escalations follow: a reminder that cannot be delivered is told to the manager by DM.
    fake_slack.add_user("U0GONE", name="gone", tz="Europe/Berlin", deleted=True)
    followup(slack.runtime, owner="U0GONE", due_at=clock.now(), note="Quarterly review")
    for _ in range(2):
        run_due_work(slack.runtime)
        clock.advance(timedelta(hours=1))
    assert not [c for c in posted(fake_slack, "C0MANAGERS") if "could not be delivered" in text_of(c.args)]
    assert [c for c in posted(fake_slack, "U0MEI") if "could not be delivered" in text_of(c.args)]

    # Choosing an internal channel again: the digest goes there.
    fake_slack.add_channel("C0LEADS", name="leads", members=("U0MEI",))
    assert "The digest goes to <#C0LEADS>" in text_of(slack.command("mei", "config digest-channel <#C0LEADS|leads>"))
    assert workspace_row(slack).digest_channel_shared_at is None
    clock.advance(timedelta(days=7))
    run_due_work(slack.runtime, everything=True)
    assert len(digests_in(fake_slack, "C0LEADS")) == 1


def test_a_share_rapport_did_not_hear_about_is_found_before_the_digest_is_posted(slack, clock, fake_slack):
    slack.command("mei", "config managers add <@U0MEI|mei>")
    setup_accounts(slack, clock)
    fake_slack.share_channel("C0MANAGERS", with_team="T0CUSTOMER")  # no event reaches Rapport
    run_due_work(slack.runtime, everything=True)
    run_due_work(slack.runtime, everything=True)
    assert digests_in(fake_slack, "C0MANAGERS") == []
    assert len(digests_in(fake_slack, "U0MEI")) == 1
    assert len(told_shared(fake_slack)) == 1


def test_a_channel_shared_that_is_not_the_managers_channel_changes_nothing(slack, fake_slack):
    slack.command("mei", "config digest-channel <#C0MANAGERS|managers>")
    fake_slack.add_channel("C0OTHER", name="other", members=("U0ALICE",))
    assert slack.sim.event(fake_slack.share_channel("C0OTHER", with_team="T0CUSTOMER")).status == 200
    slack.wait()
    assert told_shared(fake_slack) == [] and workspace_row(slack).digest_channel_shared_at is None


def test_outsiders_named_before_the_gate_get_no_digest_escalation_or_notice(slack, clock, fake_slack):
    """carol and a guest made manager and subscriber before Rapport checked (straight in the database): the
    background work that DMs internal content leaves them out; mei still gets everything."""
    fake_slack.add_user("U0GUEST", name="gus", team_id="T0RAPPORT", is_restricted=True)
    setup_accounts(slack, clock)
    with slack.session() as session:
        workspace = session.get(Workspace, "T0RAPPORT")
        workspace.managers = ["U0CAROL", "U0GUEST", "U0MEI"]
        workspace.digest_subscribers = ["U0CAROL", "U0GUEST"]
        session.add(workspace)
        session.commit()
    slack.sim.event(fake_slack.share_channel("C0MANAGERS", with_team="T0CUSTOMER"))
    slack.wait()
    run_due_work(slack.runtime, everything=True)
    clock.advance(timedelta(days=2, minutes=5))  # Monday 09:05, inside working hours
    fake_slack.add_user("U0GONE", name="gone", tz="Europe/Berlin", deleted=True)
    followup(slack.runtime, owner="U0GONE", due_at=clock.now(), note="Internal: push the 20% discount")
    for _ in range(2):
        run_due_work(slack.runtime)
        clock.advance(timedelta(hours=1))
    assert len(told_shared(fake_slack)) == 1 and len(digests_in(fake_slack, "U0MEI")) == 2
    assert [c for c in posted(fake_slack, "U0MEI") if "could not be delivered" in text_of(c.args)]
    for outsider in ("U0CAROL", "U0GUEST"):
        assert posted(fake_slack, outsider) == [], outsider
