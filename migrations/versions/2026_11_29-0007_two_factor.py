"""two-factor sign-in: the account's encrypted TOTP secret, last step used, recovery codes

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 15:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from advanced_alchemy.types import DateTimeUTC
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("totp_secret", "totp_enabled_at", "totp_last_step", "recovery_codes")


def upgrade() -> None:
    # Nullable columns: SQLite and PostgreSQL both add them in place (no batch copy of a
    # table that others reference). Every account starts without a second factor.
    op.add_column("app_user", sa.Column("totp_secret", sa.String(length=300), nullable=True))
    op.add_column(
        "app_user", sa.Column("totp_enabled_at", DateTimeUTC(timezone=True), nullable=True)
    )
    op.add_column("app_user", sa.Column("totp_last_step", sa.BigInteger(), nullable=True))
    op.add_column("app_user", sa.Column("recovery_codes", sa.Text(), nullable=True))


def downgrade() -> None:
    # As in 0006: SQLite ≥ 3.35 and PostgreSQL drop a plain column in place.
    for column in reversed(COLUMNS):
        op.execute(f"ALTER TABLE app_user DROP COLUMN {column}")
