"""De-duplication of Slack's Events API retries by event_id (Bolt has none)."""

from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from models import ProcessedEvent

KEEP_FOR = timedelta(days=1)  # Slack's last retry comes about 5 minutes after the first delivery


def first_delivery(session: Session, *, event_id: str, workspace_id: str, now: datetime) -> bool:
    """True the first time an event id is seen; False for a retry of something already handled."""
    try:
        with session.begin_nested():
            session.add(ProcessedEvent(event_id=event_id, workspace_id=workspace_id, received_at=now))
    except IntegrityError:
        return False
    return True


def forget_old_events(session: Session, *, now: datetime) -> int:
    result = session.exec(delete(ProcessedEvent).where(ProcessedEvent.received_at < now - KEEP_FOR))
    return result.rowcount or 0
