"""Rate limits counted in the database, shared by every app instance

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-11 09:00:00

`rate_count`: one row per limited key and fixed window (nightreg.ratelimit). On PostgreSQL
the table is UNLOGGED: its writes skip the write-ahead log (a check-in's count costs no
fsync), and a crash empties it, which only forgets the counts of the current minute. SQLite
keeps its counts in memory and never writes here.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from advanced_alchemy.types import DateTimeUTC
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rate_count",
        sa.Column("window_start", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("hits", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("window_start", "key", name=op.f("pk_rate_count")),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE rate_count SET UNLOGGED")


def downgrade() -> None:
    op.drop_table("rate_count")
