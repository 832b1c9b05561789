"""A site's usual arrival and departure hours, and the import's remembered column mapping

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 10:00:00

An imported date without a time takes the site's usual hours (`usual_arrival_time`,
`usual_departure_time`, local "HH:MM", defaults 14:00 and 12:00). `import_mapping` (JSON) holds
what staff chose for a spreadsheet's columns the import did not recognise, by normalised
header. Plain ADD COLUMN with a server default: in place on SQLite and PostgreSQL, no batch
copy (which on SQLite would drop the referenced `site` table).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "site",
        sa.Column(
            "usual_arrival_time", sa.String(length=5), server_default="14:00", nullable=False
        ),
    )
    op.add_column(
        "site",
        sa.Column(
            "usual_departure_time", sa.String(length=5), server_default="12:00", nullable=False
        ),
    )
    op.add_column(
        "site", sa.Column("import_mapping", sa.JSON(), server_default="{}", nullable=False)
    )


def downgrade() -> None:
    # SQLite ≥ 3.35 and PostgreSQL drop a plain column in place.
    op.execute("ALTER TABLE site DROP COLUMN import_mapping")
    op.execute("ALTER TABLE site DROP COLUMN usual_departure_time")
    op.execute("ALTER TABLE site DROP COLUMN usual_arrival_time")
