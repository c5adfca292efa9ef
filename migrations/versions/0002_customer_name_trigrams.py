"""customer names searchable by any part on PostgreSQL (pg_trgm)

The customer picker searches as you type: names starting with the text first, then names containing it.
"Containing" is a LIKE '%text%', which no b-tree answers: PostgreSQL scanned the workspace's customers in
name order (about 30 ms over 100,000 for a rare text). A trigram index answers it in about 1 ms.

The index is on lower(name_key), which equals name_key (names are already folded), so that lookups of names by
equality never use it: pg_trgm's GIN answers `=` too (PostgreSQL 14+), and the planner chose it for the import's
1,000-name IN lists on a fresh table, 3.4 s per batch instead of 5 ms. Searches for a part of a name ask for
lower(name_key) on PostgreSQL (bot/services/customers.py: search_customers).

pg_trgm ships with PostgreSQL and is a trusted extension (PostgreSQL 13+): a database owner may create it.
Where it cannot be created, nothing fails: the search scans as before, and the warning says how to add it by
hand. The index is built with a plain CREATE INDEX (about 0.5 s for 100,000 customers, writes to customer
wait meanwhile); downgrading drops it and leaves the extension. SQLite scans its (workspace_id,
name_key) index, which holds the names (8 ms over 100,000).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

import logging
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("alembic.runtime.migration")
INDEX = "ix_customer_name_trgm"


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    if not _trigrams(bind):
        log.warning("pg_trgm cannot be created by this database user: the customer picker scans for names "
                    "containing the typed text instead of using an index. To add it, as a superuser: CREATE "
                    "EXTENSION pg_trgm; CREATE INDEX %s ON customer USING gin (lower(name_key) gin_trgm_ops);",
                    INDEX)
        return
    op.execute(sa.text(f"CREATE INDEX IF NOT EXISTS {INDEX} ON customer USING gin (lower(name_key) gin_trgm_ops)"))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(sa.text(f"DROP INDEX IF EXISTS {INDEX}"))


def _trigrams(bind) -> bool:
    if bind.execute(sa.text("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")).first():
        return True
    if not bind.execute(sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")).first():
        return False
    try:
        with bind.begin_nested():  # a refusal must not abort the migration's transaction
            bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
    except sa.exc.DBAPIError:
        return False
    return True
