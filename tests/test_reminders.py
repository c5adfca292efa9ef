"""Reminders: set with /crm remind, delivered once as a DM in working hours, Done and Snooze update in place."""

from datetime import UTC, datetime, timedelta

from sqlmodel import select

from bot.scheduler import run_due_work
from models import Reminder
from tests.support import text_of


def dms_to(fake, user_id):
    return [c for c in fake.calls("chat.postMessage") if c.args.get("channel") == user_id]


def test_a_rep_sets_a_reminder_and_it_arrives_once_with_buttons(slack, clock, fake_slack):
    slack.command("alice", 'add "Acme Corp" tier:key')
    reply = slack.command("alice", 'remind "Acme Corp" in 2d Send proposal')
    assert "I'll remind you" in text_of(reply) and "Send proposal" in text_of(reply)
    run_due_work(slack.runtime)
    assert dms_to(fake_slack, "U0ALICE") == []
    clock.advance(timedelta(days=3))
    run_due_work(slack.runtime)
    run_due_work(slack.runtime)
    sent = dms_to(fake_slack, "U0ALICE")
    assert len(sent) == 1
    buttons = [e["text"]["text"] for b in sent[0].args["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert buttons == ["Done", "Snooze 1 day", "Snooze 1 week", "Log touch"]


def test_done_updates_the_dm_in_place(slack, clock, fake_slack):
    slack.command("alice", 'add "Acme Corp"')
    slack.command("alice", 'remind acme in 4h Call back')
    clock.advance(timedelta(hours=5))
    run_due_work(slack.runtime)
    posted = dms_to(fake_slack, "U0ALICE")[0]
    message = {"ts": posted.response["ts"], "blocks": posted.args["blocks"]}
    done = next(e for b in posted.args["blocks"] if b["type"] == "actions" for e in b["elements"]
                if e["action_id"] == "reminder.done")
    slack.sim.click(slack.person("alice"), action=done, channel_id=posted.response["channel"], message=message)
    slack.wait()
    update = fake_slack.last("chat.update")
    assert "Done" in text_of(update.args)
    with slack.session() as session:
        assert session.exec(select(Reminder)).one().status == "done"


def test_a_reminder_due_saturday_night_arrives_monday_morning_in_shanghai(slack, clock, fake_slack):
    slack.command("mei", 'add "Acme Corp"')  # mei works in Asia/Shanghai
    clock.set(datetime(2026, 11, 27, 12, 0, tzinfo=UTC))  # Friday 20:00 in Shanghai
    slack.command("mei", "remind acme 2026-11-28 03:00 Weekend thought")
    with slack.session() as session:
        reminder = session.exec(select(Reminder)).one()
    assert reminder.deliver_at == datetime(2026, 11, 30, 1, 0, tzinfo=UTC)  # Monday 09:00 Shanghai


def test_a_past_or_unreadable_time_is_refused_with_an_example(slack):
    slack.command("alice", 'add "Acme Corp"')
    assert "in the past" in slack.command("alice", "remind acme 2020-01-01 call")["text"]
    unreadable = slack.command("alice", "remind acme someday call")["text"]
    assert "can't read" in unreadable and "in 3d" in unreadable
