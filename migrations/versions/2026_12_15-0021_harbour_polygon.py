"""AIS: a site's harbour area may be a polygon

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-15 09:00:00

`site.ais_area_polygon`: the harbour area as a polygon, its corners as JSON text
(`[[lat, lon], ...]`, the first not repeated), instead of the circle of `ais_area_lat`,
`ais_area_lon` and `ais_area_radius_m`; a site has one or the other (the application clears
one when it sets the other). Empty for every existing site: their circles stay as they are.

The downgrade cannot keep a polygon as a circle: a site with a polygon keeps no area, and
AIS is switched off there (it would otherwise listen with no area).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN: in place on SQLite and PostgreSQL, no batch copy of `site`.
    op.add_column("site", sa.Column("ais_area_polygon", sa.Text(), nullable=True))


def downgrade() -> None:
    op.execute(
        "UPDATE site SET ais_enabled = false "
        "WHERE ais_area_polygon IS NOT NULL AND ais_area_radius_m IS NULL"
    )
    # SQLite ≥ 3.35 and PostgreSQL drop a plain column in place.
    op.execute("ALTER TABLE site DROP COLUMN ais_area_polygon")
