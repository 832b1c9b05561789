"""register search: a trigram index on visit.search_key (PostgreSQL only)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 10:00:00.000000

The register search filters `search_key LIKE '%fragment%'` within one site. A B-tree cannot
serve a leading wildcard, so a rare fragment read every visit of the site; a GIN index over
the trigrams of the search key (pg_trgm) answers it from the index. SQLite has neither the
extension nor GIN indexes: there this revision does nothing.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _is_postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    if not _is_postgresql():
        return
    # pg_trgm is a trusted extension (PostgreSQL 13+): the database owner may create it
    # without being a superuser.
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.create_index(
        "ix_visit_search_trgm",
        "visit",
        ["search_key"],
        unique=False,
        postgresql_using="gin",
        postgresql_ops={"search_key": "gin_trgm_ops"},
    )


def downgrade() -> None:
    if not _is_postgresql():
        return
    op.drop_index("ix_visit_search_trgm", table_name="visit")
    # The pg_trgm extension stays: other indexes, queries or applications in this database
    # may use it, and dropping it is not this revision's to decide.
