"""Workspaces: created on first contact, read for their settings."""

from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from models import Workspace


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
