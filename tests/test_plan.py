"""The relationship plan (seed 002): a rep sets targets, notes the pressures and plans steps that arrive as
follow-ups; every change is in history; the Plan button edits it in a form."""

from datetime import timedelta

from sqlmodel import select

from bot.scheduler import run_due_work
from models import PlanTarget, RelationshipChange, Reminder
from tests.support import form_values, text_of
from tests.test_bad_input import snapshot
from tests.test_customer_forms import click, inline_error, submit


def dms_to(fake, user_id):
    return [c for c in fake.calls("chat.postMessage") if c.args.get("channel") == user_id]


def test_a_rep_sets_targets_and_steps_and_the_steps_arrive_as_follow_ups(slack, clock, fake_slack):
    slack.command("alice", 'add "Acme Corp" tier:key org:supplier')
    slack.command("alice", 'contact acme "Li Wei" role:decision_maker level:2')

    shown = text_of(slack.command("alice", "plan acme target org:key_supplier by:2027-Q1"))
    assert "Target set" in shown
    assert "*Org relationship*: supplier → target key supplier by 2027-Q1 (1 step to go)" in shown
    shown = text_of(slack.command("alice", 'plan acme target "li wei" level:4 by:2027-03-31'))
    assert "*Li Wei*: acceptance (2/5) → target supportive (4/5) by 2027-03-31 (2 steps to go)" in shown
    shown = text_of(slack.command("alice", "plan acme pressure competitor Globex offers 20% off <!channel>"))
    assert "Globex offers 20% off &lt;!channel&gt;" in shown and "_not analysed yet_" in shown

    # 2026-11-23 is a Monday; a step due Wednesday reaches bob (Berlin) at the start of his working day.
    shown = text_of(slack.command("alice", "plan acme step Workshop with the IT team due:2026-11-25 <@U0BOB|bob>"))
    assert "Step added: it reaches <@U0BOB> as a follow-up" in shown
    assert "Workshop with the IT team · due" in shown and "(1 open)" in shown
    with slack.session() as session:
        step = session.exec(select(Reminder)).one()
        assert (step.kind, step.source, step.owner_id, step.note) == ("followup", "plan", "U0BOB",
                                                                      "Workshop with the IT team")
        assert sorted(session.exec(select(PlanTarget.by_label)).all()) == ["2027-03-31", "2027-Q1"]
        fields = sorted(session.exec(select(RelationshipChange.field)).all())
        assert fields.count("target") == 2 and fields.count("pressure") == 1 and fields.count("step") == 1

    clock.advance(timedelta(days=2, hours=1))  # Wednesday 10:00 UTC = 11:00 in Berlin
    run_due_work(slack.runtime)
    run_due_work(slack.runtime)
    [dm] = dms_to(fake_slack, "U0BOB")
    assert "Workshop with the IT team" in text_of(dm.args) and "Acme Corp" in text_of(dm.args)

    # Moving a target replaces it; history keeps both.
    slack.command("alice", "plan acme target org:strategic_partner by:2027-12-31")
    history = text_of(slack.command("alice", "history acme"))
    assert "target for org relationship: strategic partner by 2027-12-31 (was key supplier by 2027-Q1)" in history
    assert "target for Li Wei: supportive (4/5) by 2027-03-31" in history
    assert "competitor pressure noted" in history and "plan step added, due 2026-11-25" in history


def test_bad_plan_input_is_refused_with_how_to_write_it_and_nothing_written(slack):
    slack.command("alice", 'add "Acme Corp" tier:key')
    slack.command("alice", 'contact acme "Li Wei" level:2')
    before = snapshot(slack)
    for text, expected in [
        ("plan acme target org:key_supplier", "needs a date"),
        ("plan acme target org:key_supplier by:2025-Q4", "in the past"),
        ("plan acme target org:key_supplier by:2027-13-01", "not a real date"),
        ("plan acme target org:emperor by:2027-Q1", "org relationship"),
        ('plan acme target "Li Wei" level:9 by:2027-Q1', "1 to 5"),
        ('plan acme target "Nobody" level:3 by:2027-Q1', "no contact named"),
        ("plan acme pressure weather It rains", "four pressures"),
        ("plan acme step Call them", "due:"),
        ("plan acme step Call them due:yesterday", "past"),
        ("plan acme dance", "target"),
        ("plan globex", "No customer"),
    ]:
        answer = text_of(slack.command("alice", text))
        assert expected in answer, (text, answer)
    # bob reads the plan but may not change alice's account.
    assert "Plan · Acme Corp" in text_of(slack.command("bob", "plan acme"))
    assert "only Acme Corp's owner" in text_of(slack.command("bob", "plan acme pressure macro Rates are up"))
    assert snapshot(slack) == before


def test_the_plan_button_opens_the_form_and_saving_changes_the_plan(slack, clock):
    slack.command("alice", 'add "Acme Corp" tier:key')
    slack.command("alice", "plan acme pressure macro Rates are up")
    card = slack.command("alice", "show acme")
    form = click(slack, "alice", card, "plan.edit")
    inputs = {b["block_id"]: b["element"] for b in form["blocks"] if b["type"] == "input"}
    assert inputs["pressure_macro"]["initial_value"] == "Rates are up"

    half = form_values(org_target=("static_select", "key_supplier"))
    assert "needs both" in inline_error(submit(slack, "alice", form, half), "org_by")
    state = form_values(pressure_macro=("plain_text_input", "Rates are up"),
                        pressure_supplier=("plain_text_input", "Their chip supplier is late"),
                        org_target=("static_select", "key_supplier"), org_by=("plain_text_input", "2027-Q2"),
                        step=("plain_text_input", "Meet the CFO"), step_due=("plain_text_input", "friday"))
    assert submit(slack, "alice", form, state) == {}
    shown = text_of(slack.command("alice", "plan acme"))
    assert "Their chip supplier is late" in shown and "key supplier by 2027-Q2" in shown and "Meet the CFO" in shown
    with slack.session() as session:
        # The unchanged macro pressure wrote no second line of history.
        assert sorted(session.exec(select(RelationshipChange.field)).all()) == ["pressure", "pressure", "step",
                                                                               "target"]
