"""De-duplication of what Slack delivers more than once (Bolt has none): Events API retries by event_id, and in
Socket Mode a slash command, click or form sent again (the same envelope redelivered after a lost ack, or on
another of the app's connections) by its trigger_id. One row per delivery id, kept a day."""

import hashlib
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from models import ProcessedEvent

KEEP_FOR = timedelta(days=1)  # Slack's last retry comes about 5 minutes after the first delivery
_ID_LENGTH = 64  # processed_event.event_id


def first_delivery(session: Session, *, delivery_id: str, workspace_id: str, now: datetime) -> bool:
    """True the first time a delivery id (an event id or a trigger id) is seen; False for a delivery of
    something already handled. Atomic: of two deliveries handled at once by two processes, one is first."""
    if len(delivery_id) > _ID_LENGTH:  # Slack's ids are shorter; a longer one is kept by its digest
        delivery_id = hashlib.sha256(delivery_id.encode()).hexdigest()
    try:
        with session.begin_nested():
            session.add(ProcessedEvent(event_id=delivery_id, workspace_id=workspace_id, received_at=now))
    except IntegrityError:
        return False
    return True


def forget_old_events(session: Session, *, now: datetime) -> int:
    result = session.exec(delete(ProcessedEvent).where(ProcessedEvent.received_at < now - KEEP_FOR))
    return result.rowcount or 0
