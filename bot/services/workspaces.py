"""Workspaces: created on first contact, read for their settings, paused while Slack refuses their token."""

import hashlib
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from models import DigestRun, Workspace
from models.enums import DigestStatus


def ensure_workspace(session: Session, *, workspace_id: str, now: datetime, name: str = "") -> Workspace:
    """The workspace row, created with default settings the first time a team talks to us."""
    workspace = session.get(Workspace, workspace_id)
    if workspace is not None:
        return workspace
    try:
        with session.begin_nested():
            workspace = Workspace(id=workspace_id, name=name, created_at=now)
            session.add(workspace)
    except IntegrityError:  # another process created it between our read and our insert
        workspace = session.get(Workspace, workspace_id)
    return workspace


def get_workspace(session: Session, workspace_id: str) -> Workspace:
    workspace = session.get(Workspace, workspace_id)
    if workspace is None:
        raise LookupError(f"workspace {workspace_id} is not installed")
    return workspace


# -- paused workspaces: Slack refuses their bot token ---------------------------------------------------------


def not_paused(workspace_id_column):
    """A condition for the claim queries: the row's workspace is not paused. One subquery in the same
    statement, so a tick costs the same statements for 1 workspace or 1,000."""
    return workspace_id_column.not_in(select(Workspace.id).where(Workspace.paused_at.is_not(None)))


def pause(session: Session, *, workspace_id: str, reason: str, now: datetime, token: str | None = None) -> bool:
    """Pause a workspace's scheduled work, keeping its data. True only for the call that paused it (so the
    log says why once)."""
    ensure_workspace(session, workspace_id=workspace_id, now=now)
    result = session.exec(
        update(Workspace).where(Workspace.id == workspace_id, Workspace.paused_at.is_(None))
        .values(paused_at=now, paused_reason=reason[:64], paused_token=fingerprint(token))
    )
    return bool(result.rowcount)


def resume(session: Session, *, workspace_id: str, now: datetime) -> bool:
    """A reinstall: the workspace's work goes on; what fell due meanwhile is delivered, marked late."""
    ensure_workspace(session, workspace_id=workspace_id, now=now)
    result = session.exec(
        update(Workspace).where(Workspace.id == workspace_id, Workspace.paused_at.is_not(None))
        .values(paused_at=None, paused_reason=None, paused_token=None)
    )
    # A digest that failed while paused is due again now, not after its back-off.
    session.exec(update(DigestRun).where(DigestRun.workspace_id == workspace_id,
                                         DigestRun.status == DigestStatus.failed).values(next_attempt_at=None))
    return bool(result.rowcount)


def resume_refused_elsewhere(session: Session, *, token: str, now: datetime) -> list[str]:
    """Single-workspace mode: workspaces paused for a token other than `token` (the operator configured a new
    one and restarted) resume."""
    mark = fingerprint(token)
    ids = list(session.exec(select(Workspace.id).where(Workspace.paused_at.is_not(None),
                                                       Workspace.paused_token != mark)).all())
    return [workspace_id for workspace_id in ids if resume(session, workspace_id=workspace_id, now=now)]


def fingerprint(token: str | None) -> str | None:
    """Which token was refused, without keeping the token: 16 hex digits of its SHA-256."""
    return hashlib.sha256(token.encode()).hexdigest()[:16] if token else None
