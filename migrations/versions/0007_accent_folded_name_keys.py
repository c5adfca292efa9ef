"""name keys fold accents: `muller` finds Müller

Names are compared by their key (bot/services/names.py name_key). Keys now also drop the accents of Latin and
Greek letters, so the keys stored before are computed again. Two names of one workspace (or two contacts of
one customer) that differed only by accents would now share a key, which the unique constraint forbids: a name
whose folded key is taken keeps its old key (found by its exact spelling, as before) and the upgrade says so.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

import logging
import unicodedata
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("alembic.runtime.migration")


def _key(name: str) -> str:
    """bot.services.names.name_key as of this revision (a copy: the function may change later)."""
    kept, base = [], ""
    for ch in unicodedata.normalize("NFKD", name):
        if unicodedata.combining(ch) and base and ord(base) < 0x0400:
            continue
        kept.append(ch)
        if not unicodedata.combining(ch):
            base = ch
    return " ".join(unicodedata.normalize("NFKC", "".join(kept)).casefold().split())


def _old_key(name: str) -> str:
    """name_key before this revision: accents kept."""
    return " ".join(unicodedata.normalize("NFKC", name).casefold().split())


def _refold(table: str, scope: str, key=_key) -> None:
    connection = op.get_bind()
    rows = connection.execute(sa.text(f"SELECT id, {scope}, name, name_key FROM {table} ORDER BY id")).all()
    taken = {(row[1], row[3]) for row in rows}
    for row_id, owner, name, old in rows:
        new = key(name)
        if new == old:
            continue
        if (owner, new) in taken:
            log.warning("%s %s keeps its name key: another name of the same %s folds to it", table, row_id, scope)
            continue
        connection.execute(sa.text(f"UPDATE {table} SET name_key = :new WHERE id = :id"), {"new": new, "id": row_id})
        taken.discard((owner, old))
        taken.add((owner, new))


def upgrade() -> None:
    _refold("customer", "workspace_id")
    _refold("contact", "customer_id")


def downgrade() -> None:
    _refold("customer", "workspace_id", _old_key)
    _refold("contact", "customer_id", _old_key)
