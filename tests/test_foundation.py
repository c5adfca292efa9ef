"""The foundation: signed requests through the real Bolt dispatch, /crm help, errors, event retries."""

import json
import time

from bot.slack.simulate import sign
from tests.support import text_of


def test_a_rep_asks_for_help_and_sees_every_subcommand(slack):
    reply = slack.command("alice", "help")
    assert reply["response_type"] == "ephemeral"
    shown = text_of(reply)
    for subcommand in slack.router.subcommands:
        assert subcommand.usage.replace("<", "&lt;").replace(">", "&gt;") in shown


def test_crm_with_no_words_is_help(slack):
    assert "/crm help" in text_of(slack.command("alice", ""))


def test_an_unknown_subcommand_suggests_the_closest(slack):
    reply = slack.command("alice", "hepl")
    assert reply["response_type"] == "ephemeral"
    assert "`/crm help`" in reply["text"]
    assert "There is no `/crm hepl`" in reply["text"]


def test_an_unclosed_quote_is_explained(slack):
    reply = slack.command("alice", 'help "Acme')
    assert "not closed" in reply["text"]


def test_a_request_with_a_bad_signature_is_refused(slack):
    body = "command=%2Fcrm&text=help&team_id=T0RAPPORT&user_id=U0ALICE"
    headers = {"content-type": "application/x-www-form-urlencoded", **sign("wrong-secret", body)}
    from slack_bolt import BoltRequest

    assert slack.app.dispatch(BoltRequest(body=body, headers=headers)).status == 401


def test_a_stale_request_is_refused_even_when_signed(slack):
    from slack_bolt import BoltRequest

    body = "command=%2Fcrm&text=help&team_id=T0RAPPORT&user_id=U0ALICE"
    stale = int(time.time()) - 6 * 60
    headers = {"content-type": "application/x-www-form-urlencoded", **sign(slack.sim.secret, body, stale)}
    assert slack.app.dispatch(BoltRequest(body=body, headers=headers)).status == 401


def test_slack_retrying_an_event_does_not_repeat_it(slack):
    seen = []
    slack.app.event("reaction_added")(lambda event: seen.append(event["reaction"]))
    event = {"type": "reaction_added", "user": "U0ALICE", "reaction": "tada", "item": {}, "event_ts": "1.0"}
    assert slack.sim.event(event, event_id="Ev0001").status == 200
    assert slack.sim.event(event, event_id="Ev0001", retry_num=1).status == 200
    slack.wait()
    assert seen == ["tada"]


def test_an_unexpected_error_gives_a_friendly_reply_and_no_trace(slack, caplog):
    def explode(command):
        raise RuntimeError("database on fire")

    slack.router.find("help").run = explode
    reply = slack.command("alice", "help")
    assert "Something went wrong on our side" in reply["text"]
    assert "database on fire" not in json.dumps(reply)
    assert "database on fire" in caplog.text


# -- the answer leaves when the listener acks ---------------------------------------------------------------


def test_the_pool_returns_a_listener_to_bolt_as_soon_as_it_acks_and_lets_it_carry_on():
    import threading

    from bot.slack.acks import AckWaitingExecutor, wait_for_ack

    class Ack:  # what Bolt's Ack records
        response = None

        def __call__(self, **body):
            self.response = body

    class Context(dict):  # Bolt's context: its ack is made on first use
        @property
        def ack(self):
            return self.setdefault("ack", Ack())

    pool = AckWaitingExecutor(1, ack_timeout=30)
    carry_on, finished = threading.Event(), threading.Event()
    try:
        command = Context()
        signal = wait_for_ack(command)  # the middleware, on the request thread

        def listener():
            command["ack"](text="on it")
            carry_on.wait(10)
            finished.set()

        working = pool.submit(listener)
        # Bolt checks the ack right after submit: it is there, and the listener is still at work.
        assert signal.response == {"text": "on it"}
        assert not working.done() and not finished.is_set()

        # The pool's one thread is busy: a request Bolt already acked (an event) is not held up by it.
        event = Context()
        wait_for_ack(event)()
        queued = pool.submit(lambda: "published")
        assert not queued.done()  # submit came back at once; the work waits for a thread
        carry_on.set()
        assert working.result(timeout=10) is None and queued.result(timeout=10) == "published"

        # A listener that never acks holds submit until it has ended, no longer.
        wait_for_ack(Context())
        ran = []
        ended = pool.submit(lambda: ran.append("ran"))
        assert ran == ["ran"]
        ended.result(timeout=10)
    finally:
        carry_on.set()
        pool.shutdown(wait=True)


def test_an_event_is_answered_at_once_while_its_listener_is_still_working(slack, fake_slack):
    """Bolt acks events itself before the listener runs: the 200 goes back without waiting for the listener
    (here, publishing App Home to a Slack that takes 2 seconds to answer)."""
    fake_slack.latency("views.publish", 2.0)
    response = slack.sim.event({"type": "app_home_opened", "user": "U0ALICE", "channel": "DU0ALICE", "tab": "home",
                                "event_ts": "1700000000.000100"})
    assert response.status == 200
    assert slack.executor.busy == 1  # still waiting on views.publish
    slack.wait()
    assert len(fake_slack.calls("views.publish")) == 1


# -- the schema -----------------------------------------------------------------------------------------------


def test_the_schema_goes_down_to_nothing_and_up_again_with_name_search_indexed_on_postgresql(database_url):
    from alembic import command
    from alembic.script import ScriptDirectory
    from sqlalchemy import inspect

    from bot.db import alembic_config, current_revision, make_engine, upgrade

    engine = make_engine(database_url)
    head = ScriptDirectory.from_config(alembic_config(engine)).get_current_head()  # the newest revision
    try:
        assert current_revision(engine) == head
        command.downgrade(alembic_config(engine), "base")
        assert current_revision(engine) is None and "customer" not in inspect(engine).get_table_names()
        upgrade(engine)
        assert current_revision(engine) == head
        indexes = {index["name"] for index in inspect(engine).get_indexes("customer")}
        if engine.dialect.name == "postgresql":  # names containing the typed text, found by trigrams
            assert "ix_customer_name_trgm" in indexes
        else:
            assert "ix_customer_name_trgm" not in indexes
    finally:
        engine.dispose()
