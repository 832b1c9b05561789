"""AIS: a site's harbour area and switch, and the movements (entries and exits) of MMSIs

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-13 10:00:00

`site.ais_*`: AIS is off until an admin switches it on with a DPIA reference; the harbour
area is a centre and a radius in metres.

`ais_movement`: one MMSI entering or leaving a site's harbour area (never a position), matched
to the register's visit of that MMSI when one fits (ON DELETE CASCADE: it goes with its visit).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from advanced_alchemy.types import DateTimeUTC
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN: in place on SQLite and PostgreSQL, no batch copy of `site`.
    op.add_column(
        "site", sa.Column("ais_enabled", sa.Boolean(), server_default=sa.false(), nullable=False)
    )
    op.add_column(
        "site",
        sa.Column("ais_dpia_reference", sa.String(200), server_default="", nullable=False),
    )
    op.add_column("site", sa.Column("ais_area_lat", sa.Float(), nullable=True))
    op.add_column("site", sa.Column("ais_area_lon", sa.Float(), nullable=True))
    op.add_column("site", sa.Column("ais_area_radius_m", sa.Integer(), nullable=True))
    op.create_table(
        "ais_movement",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("mmsi", sa.String(9), nullable=False),
        sa.Column("direction", sa.String(3), nullable=False),
        sa.Column("at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("visit_id", sa.Integer(), nullable=True),
        sa.Column("recorded_at", DateTimeUTC(timezone=True), nullable=False),
        sa.CheckConstraint("direction IN ('in', 'out')", name=op.f("ck_ais_movement_direction")),
        sa.ForeignKeyConstraint(
            ["site_id"], ["site.id"], name=op.f("fk_ais_movement_site_id_site"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["visit_id"],
            ["visit.id"],
            name=op.f("fk_ais_movement_visit_id_visit"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ais_movement")),
        sa.UniqueConstraint("site_id", "mmsi", "at", "direction", name="uq_ais_movement_once"),
    )
    op.create_index("ix_ais_movement_site_mmsi_at", "ais_movement", ["site_id", "mmsi", "at"])
    op.create_index("ix_ais_movement_recorded_at", "ais_movement", ["recorded_at"])
    op.create_index(op.f("ix_ais_movement_visit_id"), "ais_movement", ["visit_id"])


def downgrade() -> None:
    op.drop_table("ais_movement")
    # SQLite ≥ 3.35 and PostgreSQL drop a plain column in place.
    for column in (
        "ais_area_radius_m", "ais_area_lon", "ais_area_lat", "ais_dpia_reference", "ais_enabled"
    ):  # fmt: skip
        op.execute(f"ALTER TABLE site DROP COLUMN {column}")
