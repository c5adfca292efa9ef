"""The weekly key-account digest: posted once per workspace per week to the managers' channel and subscribers."""

from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace

import pytest
from sqlmodel import select

from bot.db import session_scope
from bot.scheduler import run_due_work
from bot.services.digest import build_digest, sparkline
from bot.services.health import band as health_band
from bot.services.health import week_start as health_week_start
from bot.services.workspaces import ensure_workspace
from bot.slack.client import client_for
from bot.slack.digest import run_weekly
from bot.slack.lines import no_survey_line
from bot.slack.presets import HOME_TEAM
from models import (
    Contact,
    Customer,
    DigestRun,
    HealthSnapshot,
    RelationshipChange,
    Reminder,
    Survey,
    SurveyResponse,
    Workspace,
)
from tests.support import check_message, text_of


def digests_in(fake, channel):
    """The digests Slack accepted in `channel`."""
    return [c for c in fake.calls("chat.postMessage")
            if c.args.get("channel") == channel and "Key-account digest" in text_of(c.args) and c.response.get("ok")]


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


# -- the digest's content, computed by hand ------------------------------------------------------------------


def hand_made_week(runtime, now):
    """Five key accounts and one general account, with last week's snapshots and this week's events.

    Acme     last touch 32 days ago, decision maker Li Wei at 3/5, vendor, no survey, 1 overdue (alice)
             engagement 100·(42−32)/28 = 35.7, relationship 0.7·50 = 35, follow-up 75, satisfaction left out
             → (30·35.7 + 25·35 + 15·75) / 70 = 43.9 watch; last week 80 healthy, 8 weeks ·,10,30,50,70,90,80
    Globex   touched 3 days ago, Ann at 5/5 (up from 4 this week), strategic partner, NPS 10 and 9 this week
             → 100 healthy; last week 90 healthy
    Initech  touched 10 days ago, Bob Li at 2/5 (down from 3 this week), vendor, CSAT 2 and 4 this week,
             2 overdue (bob); relationship 0.7·25 − 15 (no decision maker at level 3 or above) = 2.5
             → (30·100 + 30·50 + 25·2.5 + 15·50) / 100 = 53.1 watch; last week 60 watch
    Hooli    touched 60 days ago, no chain, no survey, 1 overdue (bob): 45 of 100 weight has data
             → insufficient; last week 45 watch
    Umbrella touched 40 days ago, Yuki at 1/5, vendor, NPS 3 100 days ago, 1 overdue (alice)
             → (30·7.1 + 30·0 + 25·0 + 15·75) / 100 = 13.4 at risk; last week 20 at risk
    Initrode a general account: never in the digest
    """
    week = health_week_start(now, "UTC")
    long_ago = now - timedelta(days=400)
    with session_scope(runtime.engine) as session:
        workspace = ensure_workspace(session, workspace_id=HOME_TEAM, now=now - timedelta(days=90))
        workspace.digest_channel, workspace.managers = "C0MANAGERS", ["U0MEI"]
        session.add(workspace)
        ids = {}
        for name, tier, days, owner, org in (("Acme", "key", 32, "U0ALICE", "vendor"),
                                             ("Globex", "key", 3, "U0ALICE", "strategic_partner"),
                                             ("Initech", "key", 10, "U0BOB", "vendor"),
                                             ("Hooli", "key", 60, "U0BOB", "vendor"),
                                             ("Umbrella", "key", 40, "U0ALICE", "vendor"),
                                             ("Initrode", "general", 200, "U0BOB", "vendor")):
            touched = now - timedelta(days=days)
            customer = Customer(workspace_id=HOME_TEAM, name=name, name_key=name.lower(), tier=tier,
                                org_relationship=org, owner_id=owner, created_at=long_ago, updated_at=touched,
                                last_touch_at=touched, revisit_due_at=touched + timedelta(days=14))
            session.add(customer)
            session.flush()
            ids[name] = customer.id
        contacts = {}
        for customer, person, level, slack_id in (("Acme", "Li Wei", 3, None), ("Globex", "Ann", 5, "U0ANN"),
                                                  ("Initech", "Bob Li", 2, None), ("Umbrella", "Yuki", 1, None)):
            contact = Contact(workspace_id=HOME_TEAM, customer_id=ids[customer], name=person,
                              name_key=person.lower(), role="decision_maker", level=level, slack_user_id=slack_id,
                              created_at=long_ago, updated_at=long_ago)
            session.add(contact)
            session.flush()
            contacts[customer] = contact.id
        for customer, kind, days, answers in (("Globex", "nps", 2, [(10, "U0ANN", "Great quarter"), (9, "U0CAROL", None)]),
                                              ("Initech", "csat", 2, [(2, "U0CAROL", "Slow support"), (4, "U0DAN", None)]),
                                              ("Umbrella", "nps", 100, [(3, "U0CAROL", "Too expensive")])):
            sent = now - timedelta(days=days)
            survey = Survey(workspace_id=HOME_TEAM, customer_id=ids[customer], kind=kind, channel_id="C0ACME",
                            status="closed", created_by="U0ALICE", created_at=sent, closes_at=sent + timedelta(days=7))
            session.add(survey)
            session.flush()
            for score, who, comment in answers:
                session.add(SurveyResponse(workspace_id=HOME_TEAM, survey_id=survey.id, customer_id=ids[customer],
                                           respondent_id=who, score=score, comment=comment,
                                           answered_at=sent + timedelta(hours=1), updated_at=sent + timedelta(hours=1)))
        for customer, owner, count in (("Acme", "U0ALICE", 1), ("Initech", "U0BOB", 2), ("Hooli", "U0BOB", 1),
                                       ("Umbrella", "U0ALICE", 1), ("Initrode", "U0BOB", 1)):
            for _ in range(count):
                due = now - timedelta(days=3)
                session.add(Reminder(workspace_id=HOME_TEAM, customer_id=ids[customer], kind="followup",
                                     owner_id=owner, note="send the proposal", due_at=due, deliver_at=due,
                                     next_attempt_at=due, status="delivered", created_at=due - timedelta(days=7)))
        for customer, field, contact, before, after, by, days in (
                ("Globex", "level", contacts["Globex"], "4", "5", "U0ALICE", 2),
                ("Initech", "level", contacts["Initech"], "3", "2", "U0BOB", 1),
                ("Acme", "level", contacts["Acme"], None, "3", "U0ALICE", 1),  # added to the chain: not a move
                ("Acme", "owner", None, "U0BOB", "U0ALICE", "U0MEI", 1),  # not a relationship move
                ("Umbrella", "org", None, "supplier", "vendor", "U0ALICE", 8),  # last week's
                ("Initrode", "org", None, "vendor", "supplier", "U0BOB", 1)):  # a general account
            session.add(RelationshipChange(workspace_id=HOME_TEAM, customer_id=ids[customer], field=field,
                                           contact_id=contact, from_value=before, to_value=after, by_user=by,
                                           at=now - timedelta(days=days)))
        engaged = {"value": 100.0, "reason": "last touch 4 days ago"}
        last_week = {"Acme": (80.0, {"engagement": engaged, "satisfaction": {"value": None, "reason": "no survey data"},
                                     "relationship": {"value": 35.0, "reason": "decision maker Li Wei at level 3/5"},
                                     "followup": {"value": 100.0, "reason": "no overdue follow-ups"}}),
                     "Globex": (90.0, {}), "Initech": (60.0, {}), "Hooli": (45.0, {}), "Umbrella": (20.0, {})}
        for name, (score, components) in last_week.items():
            session.add(HealthSnapshot(workspace_id=HOME_TEAM, customer_id=ids[name], week_start=week - timedelta(weeks=1),
                                       score=score, band=health_band(score), components=components, reasons=[],
                                       computed_at=now - timedelta(weeks=1)))
        for weeks_ago, score in ((6, 10.0), (5, 30.0), (4, 50.0), (3, 70.0), (2, 90.0)):  # none 7 weeks ago
            session.add(HealthSnapshot(workspace_id=HOME_TEAM, customer_id=ids["Acme"],
                                       week_start=week - timedelta(weeks=weeks_ago), score=score,
                                       band=health_band(score), components={}, reasons=[],
                                       computed_at=now - timedelta(weeks=weeks_ago)))
    return ids


def test_the_digest_content_matches_a_week_computed_by_hand(runtime, clock, fake_slack):
    now = clock.now()
    hand_made_week(runtime, now)
    with session_scope(runtime.engine) as session:
        built = build_digest(session, workspace=session.get(Workspace, HOME_TEAM), now=now)
    line = {a.customer.name: a for a in built.accounts}
    assert [(a.customer.name, a.score, a.band) for a in built.accounts] == [
        ("Umbrella", 13.4, "at_risk"), ("Acme", 43.9, "watch"), ("Initech", 53.1, "watch"),
        ("Globex", 100.0, "healthy"), ("Hooli", None, "insufficient")]
    assert built.bands == {"healthy": 1, "watch": 2, "at_risk": 1, "insufficient": 1}
    assert built.band_changes == {"healthy": -1, "watch": 0, "at_risk": 0, "insufficient": +1}  # was 2, 2, 1, 0
    assert [(a.customer.name, round(a.drop, 1)) for a in built.drops] == [("Acme", 36.1), ("Initech", 6.9),
                                                                         ("Umbrella", 6.6)]
    assert line["Acme"].moved == ["engagement 100 → 36 (no touch for 32 days, cadence 14)",
                                  "follow-up discipline 100 → 75 (1 overdue follow-up)"]
    assert [a.customer.name for a in built.at_risk] == ["Umbrella"]
    assert line["Umbrella"].action == ("Work on the relationship — decision maker Yuki at level 1/5, org relationship "
                                       "vendor; no decision maker at level 3 or above.")
    assert [(owner, [(c.name, n) for c, n in accounts]) for owner, accounts in built.overdue_by_owner] == [
        ("U0BOB", [("Initech", 2), ("Hooli", 1)]), ("U0ALICE", [("Acme", 1), ("Umbrella", 1)])]
    assert [(s.customer.name, s.kind, s.score, s.answers, s.comments) for s in built.surveys] == [
        ("Initech", "csat", 50.0, 2, [(2, "Slow support")]), ("Globex", "nps", 100.0, 2, [(10, "Great quarter")])]
    assert [(m.customer.name, m.contact, m.before, m.after, m.by) for m in built.upgrades] == [
        ("Globex", "Ann", "4", "5", "U0ALICE")]
    assert [(m.customer.name, m.contact, m.before, m.after, m.by) for m in built.downgrades] == [
        ("Initech", "Bob Li", "3", "2", "U0BOB")]
    assert [c.name for c in built.no_survey] == ["Umbrella", "Acme", "Hooli"]  # Umbrella's was 100 days ago
    # 8 weeks on the 0–100 scale (▁ 0–12, ▂ 12.5–24, … █ 87.5–100), · for a week without a score
    assert line["Acme"].sparkline == "·▁▃▅▆█▇▄"  # —, 10, 30, 50, 70, 90, 80, now 43.9
    assert line["Hooli"].sparkline == "······▄·"  # only last week's 45; insufficient data now
    assert built.portfolio == "·▁▃▅▆█▅▅"  # last week's mean 59, this week's (13.4 + 43.9 + 53.1 + 100) / 4 = 52.6

    run_weekly(runtime)
    [posted] = digests_in(fake_slack, "C0MANAGERS")
    check_message(posted.args)
    shown = text_of(posted.args)
    assert "Healthy *1* (-1)" in shown and "Watch *2*" in shown and "Insufficient data *1* (+1)" in shown
    assert "*Acme* · 44 ↓ `·▁▃▅▆█▇▄` · <@U0ALICE>\n80 → 44\nengagement 100 → 36 (no touch for 32 days" in shown
    assert "• <@U0BOB> *3* — Initech (2), Hooli (1)\n• <@U0ALICE> *2* — Acme (1), Umbrella (1)" in shown
    assert "• *Initech* CSAT 50% (n=2)\n      > 2: Slow support" in shown
    assert "• *Globex* NPS +100 (n=2)\n      > 10: Great quarter" in shown
    assert ":arrow_up: *Globex*: Ann supportive (4/5) → exclusive (5/5) (by <@U0ALICE>)" in shown
    assert ":arrow_down: *Initech*: Bob Li favorable (3/5) → acceptance (2/5) (by <@U0BOB>)" in shown
    assert "*No survey for 90 days* (3): Umbrella, Acme, Hooli" in shown
    assert "Initrode" not in shown


def test_sparklines_put_8_weeks_on_the_0_to_100_scale():
    assert sparkline([0, 12.5, 25, 37.5, 50, 62.5, 75, 100]) == "▁▂▃▄▅▆▇█"
    assert sparkline([None, 12.4, 99.9, None, 40, 39.9, 70, 69.9]) == "·▁█·▄▄▆▆"


def test_the_no_survey_list_says_how_many_it_leaves_out_even_with_long_names():
    accounts = [SimpleNamespace(name=f"Industrial and Commercial Bank of China Limited, Branch {n:03d}")
                for n in range(67)]
    line = no_survey_line(accounts)
    assert len(line) <= 2900  # one section, not cut by the 3,000-character limit in the middle of a name
    shown = line.split(": ", 1)[1].rsplit(" and ", 1)[0].split(", Industrial")
    assert line.startswith("*No survey for 90 days* (67): Industrial and Commercial Bank of China Limited, Branch 000")
    assert line.endswith(f" and {67 - len(shown)} more")
    assert no_survey_line(accounts[:3]).endswith("Branch 002")


# -- when Slack refuses ---------------------------------------------------------------------------------------


def test_a_digest_channel_slack_refuses_is_given_up_for_the_week_and_the_managers_told_once(slack, clock, fake_slack):
    slack.command("mei", "config managers add <@U0MEI|mei>")
    setup_accounts(slack, clock)
    slack.command("mei", "digest subscribe")
    fake_slack.inject("chat.postMessage", "not_in_channel", times=1)  # the channel's post, the first one
    for _ in range(3):
        run_due_work(slack.runtime, everything=True)
        clock.advance(timedelta(hours=7))
    assert digests_in(fake_slack, "C0MANAGERS") == []
    told = [c for c in fake_slack.calls("chat.postMessage")
            if c.args.get("channel") == "U0MEI" and "could not be posted" in text_of(c.args)]
    assert len(told) == 1 and "<#C0MANAGERS>" in text_of(told[0].args) and "/invite @Rapport" in text_of(told[0].args)
    assert len(digests_in(fake_slack, "U0MEI")) == 1  # the subscriber has it, once
    tries = [c for c in fake_slack.calls("chat.postMessage") if c.args.get("channel") == "C0MANAGERS"]
    assert len(tries) == 1  # refused for good: not asked again this week
    with slack.session() as session:
        [run] = session.exec(select(DigestRun)).all()
        assert (run.status, run.given_up, run.delivered_to) == ("posted", {"C0MANAGERS": "not_in_channel"}, ["U0MEI"])
        assert "C0MANAGERS: not_in_channel" in run.error


def test_a_digest_slack_cannot_take_now_waits_longer_each_time_and_goes_out_once(slack, clock, fake_slack):
    setup_accounts(slack, clock)
    # The client does not send a post again blind after a 500 (Slack may have posted): each attempt meets one.
    fake_slack.inject("chat.postMessage", "server_error", times=2)
    run_due_work(slack.runtime, everything=True)
    with slack.session() as session:
        [run] = session.exec(select(DigestRun)).all()
        assert (run.status, run.attempts, run.next_attempt_at) == ("failed", 1, clock.now() + timedelta(minutes=5))
    calls = len(fake_slack.calls("chat.postMessage"))
    clock.advance(timedelta(minutes=4))
    run_due_work(slack.runtime, everything=True)
    assert len(fake_slack.calls("chat.postMessage")) == calls  # still waiting: not rebuilt, not re-sent
    clock.advance(timedelta(minutes=2))  # the second attempt fails too: wait 10 minutes
    run_due_work(slack.runtime, everything=True)
    with slack.session() as session:
        [run] = session.exec(select(DigestRun)).all()
        assert (run.status, run.attempts, run.next_attempt_at) == ("failed", 2, clock.now() + timedelta(minutes=10))
    clock.advance(timedelta(minutes=10))
    run_due_work(slack.runtime, everything=True)
    run_due_work(slack.runtime, everything=True)
    assert len(digests_in(fake_slack, "C0MANAGERS")) == 1
    with slack.session() as session:
        [run] = session.exec(select(DigestRun)).all()
        assert (run.status, run.attempts, run.error) == ("posted", 3, None)


def test_a_digest_that_fails_on_our_side_waits_and_retries_like_one_slack_refused(slack, clock, fake_slack,
                                                                                  monkeypatch):
    import bot.slack.digest as posting

    setup_accounts(slack, clock)
    blocks_for = posting.blocks_for

    def broken(*args, **kwargs):
        raise ValueError("a template bug")

    monkeypatch.setattr(posting, "blocks_for", broken)
    run_due_work(slack.runtime, everything=True)
    with slack.session() as session:
        [run] = session.exec(select(DigestRun)).all()
        assert (run.status, run.attempts, run.error) == ("failed", 1, "digest: internal_error")
        assert run.next_attempt_at == clock.now() + timedelta(minutes=5)
    monkeypatch.setattr(posting, "blocks_for", blocks_for)  # fixed
    clock.advance(timedelta(minutes=5))
    run_due_work(slack.runtime, everything=True)
    run_due_work(slack.runtime, everything=True)
    assert len(digests_in(fake_slack, "C0MANAGERS")) == 1


def test_when_the_thread_of_a_long_digest_fails_the_top_message_is_not_posted_again(slack, clock, fake_slack,
                                                                                    monkeypatch):
    import bot.slack.digest as posting

    setup_accounts(slack, clock)
    monkeypatch.setattr(posting, "split", lambda blocks: [blocks[:3], blocks[3:]])  # a digest in two messages
    client = client_for(slack.runtime, HOME_TEAM)  # the client the digest is posted with
    post = client.chat_postMessage

    def refuse_the_thread(**kwargs):
        if kwargs.get("thread_ts"):
            from slack_sdk.errors import SlackApiError

            raise SlackApiError("refused", {"ok": False, "error": "msg_too_long"})
        return post(**kwargs)

    monkeypatch.setattr(client, "chat_postMessage", refuse_the_thread)
    for _ in range(3):
        run_due_work(slack.runtime, everything=True)
        clock.advance(timedelta(hours=1))
    assert len(digests_in(fake_slack, "C0MANAGERS")) == 1
    with slack.session() as session:
        [run] = session.exec(select(DigestRun)).all()
        assert (run.status, run.delivered_to, run.given_up) == ("posted", ["C0MANAGERS"], {})


def test_the_digest_names_key_accounts_nobody_owns_since_nobody_is_reminded_to_revisit_them(slack, clock):
    setup_accounts(slack, clock)
    with slack.session() as session:  # as a CSV import without an owner column leaves it
        globex = session.exec(select(Customer).where(Customer.name == "Globex")).one()
        globex.owner_id = None
        session.add(globex)
        session.commit()
    shown = text_of(slack.command("mei", "digest"))
    assert "*No owner* — nobody is reminded to revisit these" in shown
    line = next(part for part in shown.split("\n") if part.startswith("*No owner*"))
    assert line.endswith("(1): Globex")


def test_a_churned_key_account_leaves_the_bands_and_is_named_once_the_week_it_churned(slack, clock, fake_slack):
    setup_accounts(slack, clock)  # Saturday 2027-01-02; Acme at risk, Globex healthy
    slack.command("alice", "stage acme churned lost to a competitor")
    clock.advance(timedelta(days=2, minutes=5))  # Monday 09:05
    run_due_work(slack.runtime, everything=True)
    shown = text_of(digests_in(fake_slack, "C0MANAGERS")[-1].args)
    assert "1 key accounts" in shown and "*Churned this week* (1): Acme Corp" in shown
    assert "At risk (" not in shown  # Acme was the one at risk: it is not an account to watch any more
    clock.advance(timedelta(days=7))
    run_due_work(slack.runtime, everything=True)
    assert "Churned this week" not in text_of(digests_in(fake_slack, "C0MANAGERS")[-1].args)


def test_an_account_created_this_week_is_not_one_without_a_survey_for_90_days(slack, clock, fake_slack):
    slack.command("mei", "config digest-channel <#C0MANAGERS|managers>")
    slack.command("alice", 'add "Old Co" tier:key')
    clock.advance(timedelta(days=100))
    slack.command("alice", 'add "New Co" tier:key')
    with session_scope(slack.runtime.engine) as session:
        digest = build_digest(session, workspace=session.get(Workspace, HOME_TEAM), now=clock.now())
    assert [c.name for c in digest.no_survey] == ["Old Co"]


def test_health_weights_must_add_up_to_100(slack):
    refused = slack.command("mei", "config weights engagement=100 satisfaction=100")
    assert "must add up to 100" in refused["text"] and "add up to 240" in refused["text"]
    assert "engagement=30 satisfaction=30" in refused["text"]  # an example that works
    saved = slack.command("mei", "config weights engagement=40 satisfaction=20 relationship=25 followup=15")
    assert "engagement=40" in text_of(saved)
    with slack.session() as session:
        assert session.get(Workspace, HOME_TEAM).health_weights["engagement"] == 40


# -- the workspace's own week ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("zone", "monday_9_in_utc"), [
    ("Australia/Brisbane", datetime(2026, 11, 29, 23, 0, tzinfo=UTC)),  # UTC+10: still Sunday in UTC
    ("Pacific/Tongatapu", datetime(2026, 11, 29, 20, 0, tzinfo=UTC)),  # UTC+13
    ("America/Los_Angeles", datetime(2026, 11, 30, 17, 0, tzinfo=UTC)),  # UTC-8
])
def test_the_digest_week_is_the_workspace_own_local_week(slack, clock, fake_slack, zone, monday_9_in_utc):
    slack.command("mei", f"config timezone {zone}")
    slack.command("mei", "config digest-channel <#C0MANAGERS|managers>")
    slack.command("alice", 'add "Acme Corp" tier:key')
    clock.set(monday_9_in_utc - timedelta(minutes=1))  # Sunday 08:59 where the workspace is: last week's done
    run_due_work(slack.runtime, everything=True)
    before = len(digests_in(fake_slack, "C0MANAGERS"))
    clock.set(monday_9_in_utc + timedelta(minutes=5))  # Monday 09:05 there
    run_due_work(slack.runtime, everything=True)
    run_due_work(slack.runtime, everything=True)
    posted = digests_in(fake_slack, "C0MANAGERS")[before:]
    assert len(posted) == 1
    assert "Key-account digest · 2026-W49" in text_of(posted[0].args)  # the week of Monday 30 November there
    with slack.session() as session:
        run = session.exec(select(DigestRun).where(DigestRun.period == "2026-W49")).one()
        assert run.status == "posted"
        weeks = set(session.exec(select(HealthSnapshot.week_start)).all())
        assert date(2026, 11, 30) in weeks  # this week's snapshot is filed under that Monday, not the last one
    clock.set(monday_9_in_utc + timedelta(days=7) - timedelta(minutes=1))
    run_due_work(slack.runtime, everything=True)
    assert len(digests_in(fake_slack, "C0MANAGERS")) == before + 1  # nothing until the next local Monday
    clock.set(monday_9_in_utc + timedelta(days=7, minutes=5))
    run_due_work(slack.runtime, everything=True)
    assert "2026-W50" in text_of(digests_in(fake_slack, "C0MANAGERS")[-1].args)
