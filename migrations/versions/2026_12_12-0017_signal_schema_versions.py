"""Agreements say which signal format their hub accepts; a hub can acknowledge a withheld signal

Revision ID: 0017
Revises: 0015
Create Date: 2026-12-12 10:00:00

`sharing_agreement.max_schema`: the newest major version of the signal format
(`nightreg.signal/N`) the agreement's hub accepts. Every agreement made before takes 1, the
only version there was.

`signal.withheld_seen_at`: when the hub acknowledged a signal that was withheld (its agreement
ended before it left). The signal stays withheld; `unacknowledged=true` stops listing it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from advanced_alchemy.types import DateTimeUTC
from alembic import op

revision: str = "0017"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN: in place on SQLite and PostgreSQL, no batch copy.
    op.add_column(
        "sharing_agreement",
        sa.Column("max_schema", sa.Integer(), server_default=sa.text("1"), nullable=False),
    )
    op.add_column(
        "signal", sa.Column("withheld_seen_at", DateTimeUTC(timezone=True), nullable=True)
    )


def downgrade() -> None:
    # SQLite ≥ 3.35 and PostgreSQL drop a plain column in place.
    op.execute("ALTER TABLE signal DROP COLUMN withheld_seen_at")
    op.execute("ALTER TABLE sharing_agreement DROP COLUMN max_schema")
