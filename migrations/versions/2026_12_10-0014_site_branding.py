"""Per-site branding: an accent colour and a logo

Revision ID: 0014
Revises: 0009
Create Date: 2026-12-10 10:00:00

A site gets an accent colour and the version of its logo; the logo itself, re-encoded by the
server, lives in `site_logo` (one row a site, deleted with the site).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from advanced_alchemy.types import DateTimeUTC
from alembic import op

revision: str = "0014"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "site_logo",
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("media_type", sa.String(length=20), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(length=16), nullable=False),
        sa.Column("updated_at", DateTimeUTC(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["site_id"], ["site.id"], name=op.f("fk_site_logo_site_id_site"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("site_id", name=op.f("pk_site_logo")),
    )
    with op.batch_alter_table("site", schema=None) as batch_op:
        batch_op.add_column(sa.Column("accent_colour", sa.String(length=7), nullable=True))
        batch_op.add_column(sa.Column("logo_version", sa.String(length=16), nullable=True))


def downgrade() -> None:
    op.drop_table("site_logo")
    # In place (SQLite >= 3.35, PostgreSQL): a batch copy of `site` would trip the foreign keys
    # of every visit that points at it.
    op.execute("ALTER TABLE site DROP COLUMN logo_version")
    op.execute("ALTER TABLE site DROP COLUMN accent_colour")
