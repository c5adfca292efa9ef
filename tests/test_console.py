"""`rapport console`: scripts in, readable Slack out; buttons, modals and the clock through the real dispatch."""

import io
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.clock import ManualClock
from bot.config import Settings
from bot.console import Console, Names, run_console, unslack

MONDAY_9_UTC = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


@pytest.fixture
def console_settings(tmp_path):
    return Settings(database_url=f"sqlite:///{tmp_path}/c.db", _env_file=None)


def run_script(settings, tmp_path, text: str) -> tuple[int, str]:
    script = tmp_path / "actions.txt"
    script.write_text(text, encoding="utf-8")
    out = io.StringIO()
    code = run_console(settings, script=str(script), out=out, clock=ManualClock(MONDAY_9_UTC))
    return code, out.getvalue()


@pytest.fixture
def console(console_settings):
    with Console(console_settings, out=io.StringIO(), clock=ManualClock(MONDAY_9_UTC)) as console:
        yield console


def output(console: Console) -> str:
    """What the console printed since the last call (the buffer is emptied)."""
    text = console.out.getvalue()
    console.out.seek(0)
    console.out.truncate()
    return text


# -- scripts ----------------------------------------------------------------------------------------------------


def test_a_script_runs_crm_help_and_shows_it_as_an_ephemeral_reply(console_settings, tmp_path):
    code, out = run_script(console_settings, tmp_path, "/crm help\n")
    assert code == 0
    assert "> /crm help" in out
    assert "[ephemeral to alice in #sales]" in out
    assert "/crm help [subcommand]" in out
    assert "== Rapport — /crm ==" in out


def test_comments_and_blank_lines_are_ignored(console_settings, tmp_path):
    code, out = run_script(console_settings, tmp_path, "# /crm help\n\n   \n# as bob\n")
    assert code == 0
    assert out == ""


def test_an_unknown_action_is_one_error_line_and_the_script_goes_on(console_settings, tmp_path):
    code, out = run_script(console_settings, tmp_path, "dance wildly\n/crm help\n")
    assert code == 0
    lines = out.splitlines()
    error = lines.index("> dance wildly") + 1
    assert lines[error].startswith("! unknown action 'dance'")
    assert lines[error + 1] == "> /crm help"
    assert "/crm help [subcommand]" in out


def test_acting_as_the_customer_contact(console_settings, tmp_path):
    code, out = run_script(console_settings, tmp_path, "as carol\nin #acme-shared\n/crm help\n")
    assert code == 0
    assert "[ephemeral to carol in #acme-shared]" in out
    assert "/crm help [subcommand]" in out


def test_an_unknown_person_is_refused(console):
    console.run_line("as dave")
    assert "no person 'dave'" in output(console)
    assert console.person == "alice"


def test_an_unknown_subcommand_is_answered(console_settings, tmp_path):
    _, out = run_script(console_settings, tmp_path, "/crm hepl @mei\n")
    assert "There is no `/crm hepl`" in out


def test_advance_moves_the_clock_and_prints_the_new_time(console_settings, tmp_path):
    code, out = run_script(console_settings, tmp_path, "advance 2h\nadvance 1d\nadvance soon\n")
    assert code == 0
    assert "(it is now Mon 23 Nov 2026 11:00 UTC)" in out
    assert "(it is now Tue 24 Nov 2026 11:00 UTC)" in out
    assert "! usage: advance" in out


def test_a_week_passes_in_a_few_seconds_and_scheduled_posts_carry_their_time(console):
    from bot import scheduler

    def post_at_noon(runtime):
        if runtime.clock.now().hour == 12 and runtime.clock.now().minute < 15:
            runtime.client.chat_postMessage(channel="C0SALES", text="lunch time")

    scheduler.TICKS.append(("test-noon", 60, post_at_noon))
    try:
        console.run_line("advance 7d")
    finally:
        scheduler.TICKS.remove(("test-noon", 60, post_at_noon))
    out = output(console)
    assert out.count("lunch time") == 7
    assert "── Mon 23 Nov 2026 12:00 UTC ──" in out
    assert "(it is now Mon 30 Nov 2026 09:00 UTC)" in out


def test_a_missing_script_file_is_exit_code_2(console_settings, tmp_path):
    assert run_console(console_settings, script=str(tmp_path / "nope.txt"), out=io.StringIO()) == 2


def test_quit_ends_the_script(console_settings, tmp_path):
    _, out = run_script(console_settings, tmp_path, "quit\n/crm help\n")
    assert "/crm help [subcommand]" not in out


# -- what the app receives --------------------------------------------------------------------------------------


def test_mentions_and_special_characters_arrive_the_way_slack_sends_them(console):
    received = []

    @console.app.command("/echo")
    def echo(ack, body):
        received.append(body["text"])
        ack(text=body["text"])

    console.run_line("/echo @mei & <b> see #managers, not #nowhere or bob@rapport.example")
    assert received == [
        "<@U0MEI|mei> &amp; &lt;b&gt; see <#C0MANAGERS|managers>, not #nowhere or bob@rapport.example"
    ]
    assert "@mei & <b> see #managers, not #nowhere" in output(console)


def test_a_new_channel_is_created_with_the_current_person_in_it(console):
    received = []
    console.app.command("/echo")(lambda ack, body: (received.append(body), ack()))
    console.run_line("as bob")
    console.run_line("in #deals")
    console.run_line("/echo #deals")
    channel = received[0]["channel_id"]
    assert channel.startswith("C")
    assert received[0]["text"] == f"<#{channel}|deals>"
    assert received[0]["user_id"] == "U0BOB"
    assert console.prompt == "bob in #deals> "
    info = console.runtime.client.conversations_members(channel=channel)
    assert info["members"] == ["U0BOB"]


def test_an_http_error_from_the_app_is_shown(console):
    console.run_line("/nope")
    assert "! HTTP 404" in output(console)


# -- buttons ----------------------------------------------------------------------------------------------------


def button_message(value="42"):
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": "Follow up with <@U0BOB> &amp; co?"}},
        {
            "type": "actions",
            "block_id": "follow-up",
            "elements": [
                {"type": "button", "action_id": "test_button", "value": value,
                 "text": {"type": "plain_text", "text": "Mark done"}},
                {"type": "button", "action_id": "test_snooze", "value": value,
                 "text": {"type": "plain_text", "text": "Snooze a day"}},
            ],
        },
    ]


def test_clicking_a_button_on_a_channel_message(console):
    pressed = []

    @console.app.action("test_button")
    def done(ack, body, client):
        ack()
        action = body["actions"][0]
        pressed.append((action["value"], action["block_id"], body["container"]["channel_id"], body["message"]["ts"]))
        client.chat_postMessage(channel=body["channel"]["id"], text=f"<@{body['user']['id']}> marked it done")

    posted = console.runtime.client.chat_postMessage(channel="C0SALES", text="follow up", blocks=button_message())
    console.run_line("click mark DONE")
    out = output(console)
    assert "[#sales]\n  Follow up with @bob & co?\n  [ Mark done ]  [ Snooze a day ]" in out
    assert "@alice marked it done" in out
    assert pressed == [("42", "follow-up", "C0SALES", posted["ts"])]


def test_a_unique_prefix_picks_the_button_and_the_latest_message_wins(console):
    pressed = []

    @console.app.action("test_snooze")
    def snooze(ack, body, respond):
        ack()
        pressed.append(body["actions"][0]["value"])
        respond(replace_original=True, text="Snoozed until tomorrow")

    console.runtime.client.chat_postMessage(channel="C0SALES", text="old", blocks=button_message("old"))
    console.runtime.client.chat_postMessage(channel="C0SALES", text="new", blocks=button_message("new"))
    console.run_line("click snooze")
    assert pressed == ["new"]
    assert "[#sales] (updated)\n  Snoozed until tomorrow" in output(console)


def test_an_ambiguous_or_missing_button_is_an_error(console):
    console.runtime.client.chat_postMessage(channel="C0SALES", text="x", blocks=button_message())
    console.run_line("click nothing like it")
    assert "no button 'nothing like it'" in output(console)
    console.runtime.client.chat_postMessage(channel="C0SALES", text="x", blocks=[
        {"type": "actions", "elements": [
            {"type": "button", "action_id": "a", "text": {"type": "plain_text", "text": "Snooze 1 day"}},
            {"type": "button", "action_id": "b", "text": {"type": "plain_text", "text": "Snooze 1 week"}},
        ]},
    ])
    console.run_line("click snooze 1")
    assert "could be 'Snooze 1 day', 'Snooze 1 week'" in output(console)


def test_a_dm_is_labelled_and_only_its_reader_can_click_it(console):
    pressed = []
    console.app.action("test_button")(lambda ack, body: (ack(), pressed.append(body["user"]["id"])))
    console.runtime.client.chat_postMessage(channel="U0BOB", text="for bob", blocks=button_message())
    console.run_line("click mark done")
    out = output(console)
    assert "[DM to bob]" in out
    assert "no button 'mark done' on any message or view alice can see" in out
    console.run_line("as bob")
    console.run_line("click mark done")
    assert pressed == ["U0BOB"]


def test_ephemeral_replies_are_labelled_and_clickable(console):
    @console.app.command("/ask")
    def ask(ack):
        ack(blocks=button_message(), text="ask")

    clicked = []

    @console.app.action("test_button")
    def done(ack, body, respond):
        ack()
        clicked.append(body["container"]["is_ephemeral"])
        respond(text="Done, thanks", response_type="ephemeral")

    console.run_line("/ask")
    console.run_line("click Mark done")
    out = output(console)
    assert out.count("[ephemeral to alice in #sales]") == 2
    assert "Done, thanks" in out
    assert clicked == [True]


# -- modals -----------------------------------------------------------------------------------------------------


FORM = {
    "type": "modal",
    "callback_id": "test_form",
    "title": {"type": "plain_text", "text": "New customer"},
    "submit": {"type": "plain_text", "text": "Save"},
    "blocks": [
        {"type": "input", "block_id": "name", "label": {"type": "plain_text", "text": "Name"},
         "element": {"type": "plain_text_input", "action_id": "value"}},
        {"type": "input", "block_id": "tier", "label": {"type": "plain_text", "text": "Tier"},
         "element": {"type": "static_select", "action_id": "value",
                     "options": [{"text": {"type": "plain_text", "text": t}, "value": t.lower()}
                                 for t in ("Key", "General", "Longtail")],
                     "initial_option": {"text": {"type": "plain_text", "text": "General"}, "value": "general"}}},
        {"type": "input", "block_id": "owner", "label": {"type": "plain_text", "text": "Owner"},
         "element": {"type": "users_select", "action_id": "value"}},
        {"type": "input", "block_id": "due", "optional": True, "label": {"type": "plain_text", "text": "Next call"},
         "element": {"type": "datepicker", "action_id": "value", "initial_date": "2026-12-01"}},
        {"type": "input", "block_id": "flags", "optional": True, "label": {"type": "plain_text", "text": "Flags"},
         "element": {"type": "checkboxes", "action_id": "value",
                     "options": [{"text": {"type": "plain_text", "text": t}, "value": t.lower()}
                                 for t in ("Renewal", "Upsell")]}},
        {"type": "actions", "elements": [{"type": "button", "action_id": "test_in_modal",
                                          "text": {"type": "plain_text", "text": "Suggest a name"}}]},
    ],
}


@pytest.fixture
def form(console):
    submitted = []

    @console.app.command("/form")
    def open_form(ack, body, client):
        ack()
        client.views_open(trigger_id=body["trigger_id"], view=FORM)

    @console.app.view("test_form")
    def save(ack, body, view, client):
        values = view["state"]["values"]
        submitted.append(values)
        if values["name"]["value"]["value"] == "bad":
            ack(response_action="errors", errors={"name": "That name is taken"})
            return
        ack()
        client.chat_postMessage(channel=body["user"]["id"], text=f"Saved {values['name']['value']['value']}")

    return submitted


def test_a_modal_is_shown_filled_and_submitted_with_slack_shaped_values(console, form):
    console.run_line("/form")
    out = output(console)
    assert '[modal "New customer"]' in out
    assert "[input] Name (plain_text_input)\n" in out
    assert "[input] Tier (static_select) = General    options: Key, General, Longtail" in out
    assert "[input] Next call (datepicker, optional) = 2026-12-01" in out
    for line in ("fill name: Acme & Co", "fill tier: key", "fill OWN: @bob", "fill flags: renewal, Upsell", "submit"):
        console.run_line(line)
    values = form[0]
    assert values["name"] == {"value": {"type": "plain_text_input", "value": "Acme & Co"}}
    assert values["tier"]["value"] == {
        "type": "static_select", "selected_option": {"text": {"type": "plain_text", "text": "Key"}, "value": "key"}
    }
    assert values["owner"]["value"] == {"type": "users_select", "selected_user": "U0BOB"}
    assert values["due"]["value"] == {"type": "datepicker", "selected_date": "2026-12-01"}
    assert [o["value"] for o in values["flags"]["value"]["selected_options"]] == ["renewal", "upsell"]
    out = output(console)
    assert "(modal closed)" in out
    assert "[DM to alice]\n  Saved Acme & Co" in out


def test_a_required_input_must_be_filled_before_submitting(console, form):
    console.run_line("/form")
    console.run_line("submit")
    assert "! fill these first: Name, Owner" in output(console)
    assert form == []


def test_errors_from_the_app_are_shown_and_the_modal_stays_open(console, form):
    console.run_line("/form")
    console.run_line("fill name: bad")
    console.run_line("fill owner: mei")
    console.run_line("submit")
    out = output(console)
    assert "Name: That name is taken" in out
    console.run_line("fill name: good")
    console.run_line("submit")
    assert "Saved good" in output(console)
    assert len(form) == 2


def test_fill_checks_options_and_dates(console, form):
    console.run_line("/form")
    output(console)
    console.run_line("fill tier: platinum")
    console.run_line("fill next call: someday")
    console.run_line("fill colour: blue")
    out = output(console)
    assert "no option 'platinum'" in out
    assert "a date is YYYY-MM-DD" in out
    assert "no input 'colour'" in out


def test_a_button_in_a_modal_sends_the_view_and_its_state(console, form):
    seen = []

    @console.app.action("test_in_modal")
    def suggest(ack, body, client):
        ack()
        seen.append(body["view"]["state"]["values"]["name"]["value"]["value"])
        updated = {**FORM, "title": {"type": "plain_text", "text": "Suggested"}}
        client.views_update(view_id=body["view"]["id"], view=updated)

    console.run_line("/form")
    console.run_line("fill name: Glob")
    console.run_line("click suggest a name")
    assert seen == ["Glob"]
    assert '[modal "Suggested"] (updated)' in output(console)
    console.run_line("fill owner: bob")
    console.run_line("submit")
    assert form[0]["name"]["value"]["value"] == "Glob"  # kept across the update, as Slack does


def test_without_a_modal_fill_and_submit_say_so(console):
    console.run_line("fill name: x")
    console.run_line("submit")
    assert output(console).count("alice has no modal open") == 2


# -- rendering --------------------------------------------------------------------------------------------------


def test_mrkdwn_is_shown_as_people_read_it():
    names = Names()
    text = ("<@U0ALICE> and <@U0BOB|bob> in <#C0SALES> on <!date^1795424400^{date}|Nov 23> "
            "<https://acme.example|Acme> <!here> &lt;b&gt; &amp;")
    assert unslack(text, names) == "@alice and @bob in #sales on Nov 23 Acme (https://acme.example) @here <b> &"


# -- the command line -------------------------------------------------------------------------------------------


def test_rapport_console_reads_a_script_from_stdin(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DATABASE_URL"))}
    rapport = Path(sys.executable).with_name("rapport")
    done = subprocess.run(
        [str(rapport), "console", "--script", "-"],
        input="/crm help\n", capture_output=True, text=True, cwd=tmp_path, env=env, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "/crm help [subcommand]" in done.stdout
    assert (tmp_path / "data" / "rapport.db").exists()


def test_share_makes_a_channel_shared_and_the_managers_hear_of_it_once(console_settings, tmp_path):
    code, out = run_script(console_settings, tmp_path, "as mei\nshare #managers\nshare #managers\nshare #nowhere\n"
                                                       "/crm config digest-channel #acme-shared\n")
    assert code == 0
    assert out.count("(#managers is now shared with carol's company)") == 2
    assert out.count("[DM to mei]") == 1 and "#managers is now shared with another organisation" in out
    assert "! usage: share #channel-name" in out
    assert "#acme-shared is shared with another organisation (Slack Connect), so it cannot receive" in out
