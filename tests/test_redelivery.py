"""What Slack delivers twice is handled once: the delivery-id record behind skip_redeliveries, on each database."""

from datetime import timedelta

from sqlmodel import Session

from bot.db import make_engine
from bot.services.events import KEEP_FOR, first_delivery, forget_old_events
from tests.conftest import MONDAY_9_UTC


def test_a_delivery_id_is_first_once_and_again_after_it_is_forgotten(database_url):
    engine = make_engine(database_url)
    try:
        def first(delivery_id, now=MONDAY_9_UTC):
            with Session(engine) as session:
                seen = first_delivery(session, delivery_id=delivery_id, workspace_id="T0RAPPORT", now=now)
                session.commit()
                return seen

        trigger = "13345224609.738474920.8088930838d88f008e0"
        assert first(trigger) and not first(trigger)
        assert first("Ev0123ABC") and not first("Ev0123ABC")
        long_id = "9" * 80  # longer than the column: kept by its digest, still told apart and still caught
        assert first(long_id) and not first(long_id) and first("9" * 81)
        with Session(engine) as session:
            assert forget_old_events(session, now=MONDAY_9_UTC + KEEP_FOR + timedelta(seconds=1)) == 4
            session.commit()
        assert first(trigger)
    finally:
        engine.dispose()
