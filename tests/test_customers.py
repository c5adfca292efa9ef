"""Customers through /crm: a rep adds, finds, touches and moves relationships; history keeps every change."""

import re

from sqlmodel import select

from tests.support import check_message, mrkdwn_texts, text_of


def test_a_rep_adds_a_key_customer_and_sees_its_card(slack):
    reply = slack.command("alice", '/crm add "Acme Corp" tier:key owner:<@U0ALICE|alice> channel:<#C0ACME|acme-shared>'
                          .removeprefix("/crm "))
    shown = text_of(reply)
    assert "Acme Corp" in shown
    assert "key" in shown and "<@U0ALICE>" in shown and "<#C0ACME>" in shown
    buttons = [e["text"]["text"] for b in reply["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert buttons[:4] == ["Log touch", "Remind me", "Send survey", "Edit"]


def test_names_resolve_by_prefix_case_and_width(slack):
    slack.command("alice", 'add "Acme Corp"')
    slack.command("alice", 'add "Globex"')
    assert "Acme Corp" in text_of(slack.command("alice", "show acme"))
    assert "Acme Corp" in text_of(slack.command("alice", "show ＡＣＭＥ"))  # full-width letters


def test_an_ambiguous_or_unknown_name_answers_with_the_closest(slack):
    slack.command("alice", 'add "Acme Corp"')
    slack.command("alice", 'add "Acme Labs"')
    ambiguous = slack.command("alice", "show acme")
    assert "matches several customers" in ambiguous["text"]
    assert "Acme Corp" in ambiguous["text"] and "Acme Labs" in ambiguous["text"]
    unknown = slack.command("alice", "show acne")
    assert "No customer named" in unknown["text"] and "Acme" in unknown["text"]


def test_cjk_and_accented_names(slack):
    slack.command("alice", 'add "北京科技有限公司" tier:key')
    slack.command("alice", 'add "Société Générale"')
    assert "北京科技有限公司" in text_of(slack.command("alice", "show 北京"))
    assert "Société Générale" in text_of(slack.command("alice", "show société"))


def test_a_rep_logs_a_call_and_the_revisit_moves(slack, clock):
    from datetime import timedelta

    slack.command("alice", 'add "Acme Corp" tier:key')
    clock.advance(timedelta(days=10))
    reply = slack.command("alice", 'log "Acme Corp" call Talked renewal with Li Wei, wants a proposal')
    shown = text_of(reply)
    assert "Logged a call" in shown
    assert "Talked renewal with Li Wei, wants a proposal" in shown
    with slack.session() as session:
        from models import Customer

        customer = session.exec(select(Customer)).one()
        assert customer.last_touch_at == clock.now()
        assert customer.revisit_due_at == clock.now() + timedelta(days=14)


def test_the_decision_chain_shows_roles_and_levels(slack):
    slack.command("alice", 'add "Acme Corp"')
    slack.command("alice", 'contact "Acme Corp" "Li Wei" role:decision_maker level:4')
    card = text_of(slack.command("alice", "show acme"))
    assert "*Li Wei*, decision maker, supportive (4/5)" in card


def test_every_change_goes_into_history(slack):
    slack.command("alice", 'add "Acme Corp"')
    slack.command("alice", 'contact acme "Li Wei" role:decision_maker level:2')
    slack.command("alice", 'level acme "li" 4 after the workshop')
    slack.command("alice", "tier acme key renewal doubled")
    slack.command("alice", "stage acme active")
    slack.command("alice", "org acme key_supplier")
    slack.command("alice", "owner acme <@U0BOB|bob> taking over APAC")
    shown = text_of(slack.command("alice", "history acme"))
    for expected in ["Li Wei 2 → supportive (4/5)", "after the workshop", "tier general → key", "renewal doubled",
                     "stage prospect → active", "org relationship vendor → key supplier",
                     "owner <@U0ALICE> → <@U0BOB>", "taking over APAC"]:
        assert expected in shown


def test_only_the_owner_managers_and_admins_change_state(slack):
    slack.command("alice", 'add "Acme Corp"')
    refused = slack.command("bob", "tier acme key")
    assert "only" in refused["text"] and "<@U0ALICE>" in refused["text"]
    assert "key" not in text_of(slack.command("bob", "show acme")).split("*Tier*\n")[1][:10]
    assert "→ key" in text_of(slack.command("mei", "tier acme key"))  # mei is a workspace admin


def test_hostile_names_are_stored_faithfully_and_ping_nobody(slack):
    hostile = "<!channel> & <@U0MEI> \u202eevil 😀 数据"
    reply = slack.command("alice", f'add "{hostile}"')
    assert "&lt;!channel&gt; &amp; &lt;@U0MEI&gt;" in "\n".join(mrkdwn_texts(reply))
    assert not any("<!channel>" in text or "<@U0MEI>" in text for text in mrkdwn_texts(reply))
    with slack.session() as session:
        from models import Customer

        assert session.exec(select(Customer)).one().name == hostile


def test_a_workspace_sees_only_its_own_customers(slack):
    slack.command("alice", 'add "Acme Corp"')
    other = slack.in_workspace("T0OTHER")
    assert "No customer named" in other.command("alice", "show acme")["text"]


def test_an_admin_configures_the_workspace_and_a_rep_cannot(slack):
    assert "only the managers and workspace admins" in slack.command("alice", "config cadence key 10")["text"]
    assert "Revisit key accounts after 10 days" in text_of(slack.command("mei", "config cadence key 10"))
    assert "Managers: <@U0BOB>" in text_of(slack.command("mei", "config managers add <@U0BOB|bob>"))
    assert "Working hours 08:30-17:30" in text_of(slack.command("bob", "config hours 08:30-17:30"))
    assert "Did you mean" in slack.command("mei", "config timezone Asia/Shangai")["text"]
    shown = text_of(slack.command("alice", "config"))
    assert "key 10 d" in shown and "08:30-17:30" in shown and "<@U0BOB>" in shown


def test_a_guest_or_someone_from_another_organisation_cannot_read_cards(slack, fake_slack):
    slack.command("alice", 'add "Acme Corp"')
    fake_slack.add_user("U0GUEST", name="gus", team_id="T0RAPPORT", is_restricted=True)
    from bot.slack.simulate import Person

    guest = slack.sim.command(Person(id="U0GUEST", name="gus", team_id="T0RAPPORT"), "C0ACME", "show acme").json()
    carol = slack.command("carol", "show acme", channel="C0ACME")
    for refused in (guest, carol):
        assert "for members of our own team" in refused["text"] and "Acme Corp" not in str(refused.get("blocks"))
        assert refused["response_type"] == "ephemeral"
    assert "/crm" in text_of(slack.command("carol", "help", channel="C0ACME"))


def test_a_card_costs_the_same_queries_for_a_busy_customer_as_for_a_new_one(slack, clock):
    """The card reads each part once, whatever the customer has: no query per contact, touch, change or answer."""
    from datetime import timedelta

    from tests.support import counting_queries

    slack.command("alice", 'add "Quiet Ltd" tier:key')
    slack.command("alice", 'add "Busy Corp" tier:key channel:<#C0BUSY|busy-shared>')
    for n in range(8):
        slack.command("alice", f'contact "Busy Corp" "Person {n}" role:influencer level:{n % 5 + 1}')
        slack.command("alice", f'level "Busy Corp" "Person {n}" {5 - n % 5} promoted after the workshop')
    for n in range(12):
        slack.command("alice", f'log "Busy Corp" call Call number {n}')
        slack.command("alice", f'remind "Busy Corp" tomorrow follow-up {n}')
    slack.command("alice", 'survey "Busy Corp" nps')
    for n in range(6):  # an ecosystem both ways
        slack.command("alice", f'add "Partner {n}"')
        slack.command("alice", f'link "Busy Corp" "Partner {n}" integrator')
        slack.command("alice", f'link "Partner {n}" "Busy Corp" channel_partner')
    clock.advance(timedelta(days=3))

    def card_queries(name: str) -> list[str]:
        show = f'show "{name}"'
        slack.command("alice", show)  # warm: the member cache, the workspace
        with counting_queries(slack.runtime.engine) as statements:
            reply = slack.command("alice", show)
        assert name in text_of(reply)
        return statements

    busy = text_of(slack.command("alice", 'show "Busy Corp"'))
    assert "Person 0" in busy and "Call number 11" in busy and "follow-up" in busy
    assert "12 overdue follow-ups" in busy  # health counts all of them, though the card lists the next 5
    quiet, busy_queries = card_queries("Quiet Ltd"), card_queries("Busy Corp")
    assert len(busy_queries) == len(quiet) <= 13, busy_queries  # 13: coverage (one grouped query of touches)


def listed(reply: dict) -> tuple[str, list[str]]:
    """(the header, the account names in order) of a /crm list answer."""
    header = reply["blocks"][0]["text"]["text"]
    names = [b["text"]["text"].split("*")[1] for b in reply["blocks"]
             if b["type"] == "section" and (b.get("accessory") or {}).get("action_id") == "card.open"]
    return header, names


def test_lists_put_overdue_follow_ups_first_then_the_longest_untouched_in_every_scope(slack, clock):
    from datetime import timedelta

    from bot.scheduler import refresh_snapshots

    slack.command("alice", 'add "Acme" tier:key')
    slack.command("alice", 'add "Globex" tier:key')
    slack.command("alice", 'add "Initech"')
    slack.command("bob", 'add "Bobcat" tier:key')
    slack.command("bob", 'add "Bobland"')
    for name in ("Globex", "Bobcat"):  # a decision maker who barely knows us
        slack.command("mei", f'contact {name} "Li Wei" role:decision_maker level:1')
    clock.advance(timedelta(days=40))
    slack.command("alice", "log Acme call check-in")
    slack.command("bob", "log Bobland call check-in")
    slack.command("alice", "remind Initech in 1h Send the contract")
    slack.command("bob", "remind Bobland in 1h Call back")
    slack.command("bob", "remind Bobland in 2h Call back again")
    clock.advance(timedelta(days=3))  # Tuesday: the follow-ups set on Saturday were delivered Monday, overdue now
    refresh_snapshots(slack.runtime)  # this week's health, which `at-risk` reads

    assert listed(slack.command("alice", "list")) == ("Your accounts (3)", ["Initech", "Globex", "Acme"])
    assert listed(slack.command("alice", "list key")) == ("Key accounts (3)", ["Globex", "Bobcat", "Acme"])
    assert listed(slack.command("alice", "list all")) == (
        "All accounts (5)", ["Bobland", "Initech", "Globex", "Bobcat", "Acme"])
    # At risk by this week's health: the key accounts untouched for 41 days whose decision maker barely knows
    # us, lowest score first — and only those, whatever their follow-ups.
    at_risk = slack.command("alice", "list at-risk")
    header, names = listed(at_risk)
    assert header == "At-risk accounts (2)" and sorted(names) == ["Bobcat", "Globex"]
    scores = [int(n) for n in re.findall(r":red_circle: (\d+) at risk", text_of(at_risk))]
    assert len(scores) == 2 and scores == sorted(scores)
    # Needing attention: overdue follow-ups first (however healthy), then the watch and at-risk bands.
    attention = slack.command("alice", "list attention")
    assert listed(attention)[0].startswith("Accounts needing attention")
    assert listed(attention)[1][:4] == ["Bobland", "Initech", "Globex", "Bobcat"]
    every = text_of(slack.command("alice", "list all"))
    assert "2 overdue follow-ups" in every and every.count(" · :") == 5  # each line: its score and band


def test_a_long_list_shows_the_most_urgent_and_says_how_many_there_are(slack, clock):
    from bot.services import customers as svc
    from bot.services.workspaces import ensure_workspace

    with slack.session() as session:
        workspace = ensure_workspace(session, workspace_id="T0RAPPORT", now=clock.now())
        for n in range(45):
            svc.create_customer(session, workspace=workspace, name=f"Account {n:02d}", by="U0ALICE", now=clock.now())
        session.commit()
    reply = slack.command("alice", "list")
    header, names = listed(reply)
    assert header == "Your accounts (45)" and names == [f"Account {n:02d}" for n in range(20)]
    assert "Showing 1–20 of 45, most urgent first." in text_of(reply)
    seen = list(names)
    for shown in ("Showing 21–40 of 45", "Showing 41–45 of 45"):
        more = next(e for b in reply["blocks"] if b["type"] == "actions" for e in b["elements"]
                    if e["action_id"] == "list.more")
        before = len(slack.fake.calls("response_url"))
        assert slack.sim.click(slack.person("alice"), action=more, channel_id="C0SALES").status == 200
        slack.wait()
        [call] = slack.fake.calls("response_url")[before:]
        reply = call.args
        check_message(reply)
        assert shown in text_of(reply) and reply["replace_original"] is True
        seen += listed(reply)[1]
    assert seen == [f"Account {n:02d}" for n in range(45)]  # every account once, in order
    assert not [b for b in reply["blocks"] if b["type"] == "actions"]  # the last page has no More


def test_lists_filter_by_owner_and_tier(slack):
    slack.command("alice", 'add "Acme" tier:key')
    slack.command("alice", 'add "Initech"')
    slack.command("bob", 'add "Bobcat" tier:key')
    assert listed(slack.command("alice", "list all tier:key"))[1] == ["Acme", "Bobcat"]
    assert listed(slack.command("alice", "list all owner:<@U0BOB|bob>"))[1] == ["Bobcat"]
    only = slack.command("alice", "list all tier:key owner:<@U0ALICE|alice>")
    assert listed(only)[1] == ["Acme"] and "Only key accounts owned by <@U0ALICE>" in text_of(only)
    assert "is not a tier" in slack.command("alice", "list all tier:gold")["text"]


def test_when_slack_cannot_say_who_someone_is_a_known_member_carries_on_and_a_stranger_waits(slack, fake_slack,
                                                                                            clock):
    from datetime import timedelta

    slack.command("alice", 'add "Acme Corp"')  # alice is in the people cache now
    clock.advance(timedelta(days=2))  # …but her entry is old: Slack would be asked again
    fake_slack.add_user("U0NEW", name="nina", team_id="T0RAPPORT")
    fake_slack.inject("users.info", "fatal_error", times=10)
    assert "Acme Corp" in text_of(slack.command("alice", "show acme"))
    from bot.slack.simulate import Person

    before = len(fake_slack.calls("response_url"))
    stranger = slack.sim.command(Person(id="U0NEW", name="nina", team_id="T0RAPPORT"), "C0SALES", "show acme").json()
    slack.wait()
    assert "One moment" in stranger["text"] and "Acme" not in str(stranger)  # asked again, patiently
    [later] = fake_slack.calls("response_url")[before:]
    assert "could not check with Slack" in text_of(later.args) and "Acme" not in str(later.args)


def test_a_guest_opening_app_home_is_shown_nothing_and_a_member_their_accounts(slack, fake_slack):
    fake_slack.add_user("U0GUEST", name="gus", team_id="T0RAPPORT", is_restricted=True)
    for who in ("U0GUEST", "U0ALICE"):
        response = slack.sim.event({"type": "app_home_opened", "user": who, "channel": f"D{who}", "tab": "home",
                                    "event_ts": "1700000000.000100"})
        slack.wait()
        assert response.status == 200
    assert [c.args["user_id"] for c in fake_slack.calls("views.publish")] == ["U0ALICE"]


def test_a_rep_maps_the_ecosystem_around_a_customer_and_the_card_shows_it_both_ways(slack):
    for name in ("Acme Corp", "Globex", "Initech"):
        slack.command("alice", f'add "{name}" tier:key')
    shown = text_of(slack.command("alice", 'link "Acme Corp" Globex 集成商'))  # the seed articles' word
    assert "Globex* joined the ecosystem of *Acme Corp* as integrator" in shown
    assert "*Ecosystem* · *Globex* (integrator)" in shown
    slack.command("alice", "link initech acme reseller")  # Acme is Initech's channel partner
    acme = text_of(slack.command("alice", "show acme"))
    assert "*Globex* (integrator) · channel partner of *Initech*" in acme
    assert "is now in the ecosystem of *Acme Corp* as supplier" in text_of(
        slack.command("alice", "link acme globex supplier"))  # a new kind, not a second link
    assert "only" in slack.command("bob", "link acme initech")["text"]  # bob owns neither
    assert "left the ecosystem" in text_of(slack.command("alice", "unlink acme globex"))
    acme = text_of(slack.command("alice", "show acme"))
    assert "Globex" not in acme and "channel partner of *Initech*" in acme
    with slack.session() as session:
        from models import EcosystemLink

        assert len(session.exec(select(EcosystemLink)).all()) == 1
    other = slack.in_workspace("T0OTHER")
    other.command("alice", 'add "Zeta"')
    assert "No customer named" in other.command("alice", "link zeta acme")["text"]


def test_while_slack_cannot_be_asked_a_cached_admin_reads_but_does_not_administer(slack, fake_slack, clock):
    from datetime import timedelta

    slack.command("alice", 'add "Acme Corp"')
    assert "Working hours" in text_of(slack.command("mei", "config hours 08:00-17:00"))  # mei: a Slack admin
    clock.advance(timedelta(days=2))  # the cache is old: Slack is asked again…
    fake_slack.inject("users.info", "fatal_error", times=10)  # …and cannot answer
    assert "Acme Corp" in text_of(slack.command("mei", "show acme"))  # still one of us
    assert "only the managers" in slack.command("mei", "config hours 09:00-18:00")["text"]  # not admin on old news
    fake_slack.clear_faults()
    clock.advance(timedelta(days=6))
    fake_slack.inject("users.info", "user_not_found", times=10)  # Slack knows: gone
    assert "not an active member" in slack.command("alice", "show acme")["text"]
