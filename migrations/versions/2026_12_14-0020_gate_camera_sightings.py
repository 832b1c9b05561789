"""Gate cameras: sightings, the per-site switch with its DPIA reference, the `sensor` token role

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-14 09:00:00

`sighting`: one plate read by a gate camera (in or out) at a site, as the camera system posted
it (issue 19). Unique per site, camera, time and plate key, so that a repeated post stores
nothing new. `site.cameras_enabled` and `site.cameras_dpia_reference`: the switch that lets
sightings in, off for every existing site. An API token may have the role `sensor`.

Widening `ck_api_token_role` on SQLite edits the table's stored definition in place, as 0013
does for the visit's source (batch mode would copy the table and drop the old one, which
cascades to `api_token_site` with foreign keys on); the constraint only grows.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from advanced_alchemy.types import DateTimeUTC
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_ROLES = "role IN ('admin', 'harbour_master', 'security', 'analyst', 'auditor')"
NEW_ROLES = "role IN ('admin', 'harbour_master', 'security', 'analyst', 'auditor', 'sensor')"


def upgrade() -> None:
    op.create_table(
        "sighting",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("camera", sa.String(length=64), nullable=False),
        sa.Column("seen_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("direction", sa.String(length=3), nullable=False),
        sa.Column("plate", sa.String(length=20), nullable=False),
        sa.Column("subject_key", sa.String(length=240), nullable=False),
        sa.Column("received_at", DateTimeUTC(timezone=True), nullable=False),
        sa.CheckConstraint("direction IN ('in', 'out')", name=op.f("ck_sighting_direction")),
        sa.ForeignKeyConstraint(
            ["site_id"], ["site.id"], name=op.f("fk_sighting_site_id_site"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sighting")),
        sa.UniqueConstraint(
            "site_id",
            "camera",
            "seen_at",
            "subject_key",
            name=op.f("uq_sighting_site_id_camera_seen_at_subject_key"),
        ),
    )
    op.create_index(
        "ix_sighting_site_subject_seen", "sighting", ["site_id", "subject_key", "seen_at"]
    )
    op.create_index("ix_sighting_site_seen", "sighting", ["site_id", "seen_at"])
    op.create_index("ix_sighting_received_at", "sighting", ["received_at"])
    # Plain ADD COLUMN: in place on SQLite and PostgreSQL, no batch copy.
    op.add_column(
        "site",
        sa.Column("cameras_enabled", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.add_column(
        "site",
        sa.Column(
            "cameras_dpia_reference", sa.String(length=100), server_default="", nullable=False
        ),
    )
    _token_roles(OLD_ROLES, NEW_ROLES)


def downgrade() -> None:
    # A sensor token cannot stay under the narrower constraint: it goes (its sites with it).
    op.execute("DELETE FROM api_token WHERE role = 'sensor'")
    _token_roles(NEW_ROLES, OLD_ROLES)
    op.execute("ALTER TABLE site DROP COLUMN cameras_dpia_reference")
    op.execute("ALTER TABLE site DROP COLUMN cameras_enabled")
    op.drop_index("ix_sighting_received_at", table_name="sighting")
    op.drop_index("ix_sighting_site_seen", table_name="sighting")
    op.drop_index("ix_sighting_site_subject_seen", table_name="sighting")
    op.drop_table("sighting")


def _token_roles(old: str, new: str) -> None:
    """Replace the api_token table's CHECK on `role` (see the module's docstring for SQLite)."""
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        op.drop_constraint(op.f("ck_api_token_role"), "api_token", type_="check")
        op.create_check_constraint(op.f("ck_api_token_role"), "api_token", new)
        return
    stored = bind.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'api_token'"
    ).scalar_one()
    if old not in stored:
        raise RuntimeError(f"the api_token table's CHECK on role is not {old!r}")
    version = bind.exec_driver_sql("PRAGMA schema_version").scalar_one()
    bind.exec_driver_sql("PRAGMA writable_schema=ON")
    try:
        bind.exec_driver_sql(
            "UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = 'api_token'",
            (stored.replace(old, new),),
        )
        bind.exec_driver_sql(f"PRAGMA schema_version={int(version) + 1}")
    finally:
        bind.exec_driver_sql("PRAGMA writable_schema=OFF")
    problems = bind.exec_driver_sql("PRAGMA quick_check(api_token)").scalars().all()
    if problems != ["ok"]:
        raise RuntimeError(f"the api_token table after widening its CHECK: {problems}")
