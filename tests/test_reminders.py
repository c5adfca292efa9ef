"""Reminders: set with /crm remind, delivered once as a DM in working hours, Done and Snooze update in place."""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from bot.scheduler import run_due_work
from bot.services.when import parse_when
from bot.services.worktime import WorkingHours
from models import Customer, Reminder
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


def test_logging_a_touch_from_the_dm_handles_the_follow_up_so_it_never_escalates(slack, clock, fake_slack):
    from tests.support import form_values

    slack.command("mei", "config managers add <@U0MEI|mei>")
    for name in ("Acme Corp", "Globex"):
        slack.command("alice", f'add "{name}" tier:key')
        slack.command("alice", f'remind "{name}" in 4h Call about the {name} renewal')
    clock.advance(timedelta(hours=5))
    run_due_work(slack.runtime)
    posted = next(c for c in dms_to(fake_slack, "U0ALICE") if "Acme" in c.args["text"])
    message = {"ts": posted.response["ts"], "blocks": posted.args["blocks"]}
    log_touch = next(e for b in posted.args["blocks"] if b["type"] == "actions" for e in b["elements"]
                     if e["action_id"] == "reminder.log_touch")
    opened = len(fake_slack.calls("views.open"))
    slack.sim.click(slack.person("alice"), action=log_touch, channel_id=posted.response["channel"], message=message)
    slack.wait()
    [form] = [c.response["view"] for c in fake_slack.calls("views.open")[opened:]]
    state = form_values(kind=("static_select", "call"), summary=("plain_text_input", "Renewal agreed in principle"))
    answer = slack.sim.submit(slack.person("alice"), form, state)
    slack.wait()
    assert answer.status == 200 and answer.json()["response_action"] == "update"
    with slack.session() as session:
        outcomes = {r.note: (r.status, r.outcome) for r in session.exec(select(Reminder)).all()}
    assert outcomes["Call about the Acme Corp renewal"] == ("done", "touched")
    assert outcomes["Call about the Globex renewal"] == ("delivered", None)
    update = fake_slack.last("chat.update")
    assert update.args["ts"] == posted.response["ts"] and "Touch logged" in text_of(update.args)

    for _ in range(4):  # well past two working days: only the follow-up nobody handled is raised
        clock.advance(timedelta(days=1))
        run_due_work(slack.runtime)
    raised = [c for c in dms_to(fake_slack, "U0MEI") if "untouched" in text_of(c.args)]
    assert len(raised) == 1 and "Globex" in text_of(raised[0].args) and "Acme" not in text_of(raised[0].args)


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


# -- daylight saving: the local hour stays right --------------------------------------------------------------

CHANGES = [  # (zone, the Sunday its clocks change)
    ("America/New_York", date(2026, 11, 1)),  # fall back: 02:00 EDT → 01:00 EST
    ("America/New_York", date(2027, 3, 14)),  # spring forward: 02:00 EST → 03:00 EDT
    ("Europe/Berlin", date(2026, 10, 25)),  # fall back: 03:00 CEST → 02:00 CET
    ("Europe/Berlin", date(2027, 3, 28)),  # spring forward: 02:00 CET → 03:00 CEST
]


def hours_in(zone: str, days=range(5)) -> WorkingHours:
    return WorkingHours(tz=ZoneInfo(zone), start=time(9), end=time(18), days=frozenset(days), off=frozenset())


def local(zone: str, day: date, clock: time) -> datetime:
    return datetime.combine(day, clock, tzinfo=ZoneInfo(zone))


@pytest.mark.parametrize(("zone", "change"), CHANGES)
def test_tomorrow_said_the_day_before_the_clocks_change_is_9_local_after_it(zone, change):
    saturday_noon = local(zone, change - timedelta(days=1), time(12))
    every_day = hours_in(zone, days=range(7))
    due = parse_when("tomorrow", now=saturday_noon, hours=every_day).astimezone(ZoneInfo(zone))
    assert (due.date(), due.time()) == (change, time(9))
    assert due.utcoffset() != saturday_noon.utcoffset()  # the clocks did change in between
    monday = hours_in(zone).move_into(due).astimezone(ZoneInfo(zone))  # Monday–Friday: the next working day
    assert (monday.date(), monday.time()) == (change + timedelta(days=1), time(9))


@pytest.mark.parametrize(("zone", "change"), CHANGES)
def test_in_2d_across_the_change_keeps_the_local_clock_time(zone, change):
    saturday_ten = local(zone, change - timedelta(days=1), time(10))
    due = parse_when("in 2d", now=saturday_ten, hours=hours_in(zone)).astimezone(ZoneInfo(zone))
    assert (due.date(), due.time()) == (change + timedelta(days=1), time(10))
    four_hours = parse_when("in 4h", now=saturday_ten, hours=hours_in(zone))
    assert four_hours - saturday_ten == timedelta(hours=4)  # hours are elapsed time, whatever the clocks say


@pytest.mark.parametrize(("zone", "day", "expected_utc"), [
    ("America/New_York", date(2027, 3, 14), datetime(2027, 3, 14, 7, 30, tzinfo=UTC)),  # 03:30 EDT
    ("Europe/Berlin", date(2027, 3, 28), datetime(2027, 3, 28, 1, 30, tzinfo=UTC)),  # 03:30 CEST
])
def test_a_time_in_the_spring_forward_gap_moves_forward_by_the_gap(zone, day, expected_utc):
    week_before = local(zone, day - timedelta(days=7), time(10))
    every_day = hours_in(zone, days=range(7))
    assert every_day.at(day, time(2, 30)) == expected_utc
    assert parse_when(f"{day} 02:30", now=week_before, hours=every_day) == expected_utc


@pytest.mark.parametrize(("zone", "day", "expected_utc"), [
    ("America/New_York", date(2026, 11, 1), datetime(2026, 11, 1, 5, 30, tzinfo=UTC)),  # 01:30 EDT, not EST
    ("Europe/Berlin", date(2026, 10, 25), datetime(2026, 10, 25, 0, 30, tzinfo=UTC)),  # 02:30 CEST, not CET
])
def test_a_repeated_hour_takes_its_first_occurrence(zone, day, expected_utc):
    week_before = local(zone, day - timedelta(days=7), time(10))
    every_day = hours_in(zone, days=range(7))
    assert every_day.at(day, time(1 if zone.startswith("America") else 2, 30)) == expected_utc
    typed = "01:30" if zone.startswith("America") else "02:30"
    assert parse_when(f"{day} {typed}", now=week_before, hours=every_day) == expected_utc


def test_two_working_days_after_a_friday_delivery_skip_the_weekend_and_the_change():
    berlin = hours_in("Europe/Berlin")
    friday_ten = datetime(2026, 10, 23, 8, 0, tzinfo=UTC)  # 10:00 CEST
    assert berlin.add_working_days(friday_ten, 2) == datetime(2026, 10, 27, 9, 0, tzinfo=UTC)  # Tuesday 10:00 CET


def test_a_handover_moves_three_follow_ups_and_the_due_revisit_to_the_new_owner_and_tells_both(
        slack, clock, fake_slack):
    slack.command("alice", 'add "Acme Corp" tier:key')
    for note in ("Send the deck", "Call Li Wei", "Book the QBR"):
        slack.command("alice", f"remind acme in 14 days {note}")
    clock.advance(timedelta(days=13, hours=12))
    run_due_work(slack.runtime)  # the revisit (key accounts: every 14 days) is planned for alice
    with slack.session() as session:
        assert session.exec(select(Reminder.owner_id).where(Reminder.kind == "revisit")).all() == ["U0ALICE"]
    assert dms_to(fake_slack, "U0ALICE") == []
    reply = slack.command("mei", "owner acme <@U0BOB|bob> taking over APAC")
    assert "3 open follow-ups and 1 revisit went with it" in text_of(reply)
    assert "3 open follow-ups and" in text_of(reply) and "went with it" in text_of(reply)
    [welcome] = dms_to(fake_slack, "U0BOB")
    assert "You now own *Acme Corp*" in text_of(welcome.args) and "Open follow-ups" in text_of(welcome.args)
    [note] = dms_to(fake_slack, "U0ALICE")
    assert "now belongs to <@U0BOB>" in text_of(note.args)
    before_alice, before_bob = len(dms_to(fake_slack, "U0ALICE")), len(dms_to(fake_slack, "U0BOB"))
    clock.advance(timedelta(days=1))  # everything falls due
    run_due_work(slack.runtime)
    run_due_work(slack.runtime)
    assert len(dms_to(fake_slack, "U0ALICE")) == before_alice  # nothing more for alice
    delivered = "\n".join(text_of(c.args) for c in dms_to(fake_slack, "U0BOB")[before_bob:])
    for what in ("Send the deck", "Call Li Wei", "Book the QBR", "Acme Corp"):
        assert what in delivered
    with slack.session() as session:
        rows = session.exec(select(Reminder).where(Reminder.status != "cancelled")).all()
        assert {r.owner_id for r in rows} == {"U0BOB"} and len(rows) == 4
    assert "Send the deck" in text_of(slack.command("bob", "reminders"))


def test_keep_followups_leaves_them_with_the_previous_owner(slack, clock, fake_slack):
    slack.command("alice", 'add "Acme Corp" tier:key')
    slack.command("alice", "remind acme in 3h Send the deck")
    reply = slack.command("alice", "owner acme <@U0BOB|bob> keep-followups")
    assert "<@U0ALICE> keeps 1 follow-up on it" in text_of(reply)
    with slack.session() as session:
        assert session.exec(select(Reminder.owner_id).where(Reminder.kind == "followup")).one() == "U0ALICE"
        assert session.exec(select(Customer.owner_id)).one() == "U0BOB"


def test_a_follow_up_is_overdue_only_once_its_delivery_time_has_passed(slack, clock):
    from bot.services.card import list_accounts
    from bot.services.workspaces import get_workspace

    slack.command("alice", 'add "Acme Corp" tier:key')
    clock.set(datetime(2026, 11, 28, 15, 0, tzinfo=UTC))  # Saturday: alice works Monday to Friday
    slack.command("alice", "remind acme in 1h Send the deck")
    with slack.session() as session:
        [row] = session.exec(select(Reminder).where(Reminder.kind == "followup")).all()
        assert row.deliver_at.weekday() == 0  # Rapport moved it to Monday morning

    def overdue() -> int:
        with slack.session() as session:
            page = list_accounts(session, workspace=get_workspace(session, "T0RAPPORT"), scope="all",
                                 user_id="U0ALICE", now=clock.now())
            return page.lines[0].overdue_followups

    clock.advance(timedelta(hours=20))  # Sunday: past due, but alice has not been told yet
    assert overdue() == 0
    clock.set(row.deliver_at + timedelta(minutes=1))
    assert overdue() == 1
