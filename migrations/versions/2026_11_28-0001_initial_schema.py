"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-28 10:08:14.962005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from advanced_alchemy.types import DateTimeUTC
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "app_user",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("created_at", DateTimeUTC(timezone=True), nullable=False),
        sa.CheckConstraint(
            "role IN ('admin', 'harbour_master', 'security', 'analyst', 'auditor')",
            name=op.f("ck_app_user_role"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_app_user")),
        sa.UniqueConstraint("email", name=op.f("uq_app_user_email")),
    )
    op.create_table(
        "site",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slug", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("municipality", sa.String(length=120), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("contact", sa.String(length=200), nullable=False),
        sa.Column("retention_days", sa.Integer(), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("created_at", DateTimeUTC(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('marina', 'business_park')", name=op.f("ck_site_kind")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_site")),
        sa.UniqueConstraint("slug", name=op.f("uq_site_slug")),
    )
    op.create_table(
        "checkin_point",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("kiosk_mode", sa.Boolean(), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("created_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("rotated_at", DateTimeUTC(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["site_id"], ["site.id"], name=op.f("fk_checkin_point_site_id_site"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_checkin_point")),
        sa.UniqueConstraint("site_id", "name", name=op.f("uq_checkin_point_site_id_name")),
        sa.UniqueConstraint("token", name=op.f("uq_checkin_point_token")),
    )
    with op.batch_alter_table("checkin_point", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_checkin_point_site_id"), ["site_id"], unique=False)

    op.create_table(
        "user_site",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["site_id"], ["site.id"], name=op.f("fk_user_site_site_id_site"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["app_user.id"],
            name=op.f("fk_user_site_user_id_app_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "site_id", name=op.f("pk_user_site")),
    )
    op.create_table(
        "visit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reference", sa.String(length=16), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("point_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("source", sa.String(length=10), nullable=False),
        sa.Column("arrived_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("expected_departure_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("departed_at", DateTimeUTC(timezone=True), nullable=True),
        sa.Column("persons", sa.Integer(), nullable=False),
        sa.Column("guest_name", sa.String(length=100), nullable=False),
        sa.Column("residence", sa.String(length=100), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=True),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("id_document_type", sa.String(length=20), nullable=True),
        sa.Column("berth", sa.String(length=20), nullable=True),
        sa.Column("vessel_name", sa.String(length=80), nullable=True),
        sa.Column("registration", sa.String(length=32), nullable=True),
        sa.Column("mmsi", sa.String(length=9), nullable=True),
        sa.Column("flag", sa.String(length=2), nullable=True),
        sa.Column("vessel_type", sa.String(length=12), nullable=True),
        sa.Column("length_m", sa.Numeric(precision=4, scale=1), nullable=True),
        sa.Column("last_port", sa.String(length=80), nullable=True),
        sa.Column("next_port", sa.String(length=80), nullable=True),
        sa.Column("plate", sa.String(length=16), nullable=True),
        sa.Column("plate_country", sa.String(length=2), nullable=True),
        sa.Column("vehicle_type", sa.String(length=12), nullable=True),
        sa.Column("unit", sa.String(length=40), nullable=True),
        sa.Column("company", sa.String(length=100), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("subject_key", sa.String(length=240), nullable=False),
        sa.Column("private_token_hash", sa.String(length=64), nullable=False),
        sa.Column("idempotency_key", sa.String(length=64), nullable=True),
        sa.Column("request_fingerprint", sa.String(length=64), nullable=True),
        sa.Column("created_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", DateTimeUTC(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('vessel', 'vehicle', 'stay')", name=op.f("ck_visit_kind")),
        sa.CheckConstraint("source IN ('kiosk', 'staff', 'api')", name=op.f("ck_visit_source")),
        sa.CheckConstraint("persons BETWEEN 1 AND 99", name=op.f("ck_visit_persons")),
        sa.ForeignKeyConstraint(
            ["point_id"],
            ["checkin_point.id"],
            name=op.f("fk_visit_point_id_checkin_point"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["site_id"], ["site.id"], name=op.f("fk_visit_site_id_site"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_visit")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_visit_idempotency_key")),
        sa.UniqueConstraint("private_token_hash", name=op.f("uq_visit_private_token_hash")),
        sa.UniqueConstraint("reference", name=op.f("uq_visit_reference")),
    )
    with op.batch_alter_table("visit", schema=None) as batch_op:
        batch_op.create_index("ix_visit_mmsi_arrived", ["mmsi", "arrived_at"], unique=False)
        batch_op.create_index(
            "ix_visit_present",
            ["site_id", "arrived_at"],
            unique=False,
            sqlite_where=sa.text("departed_at IS NULL"),
            postgresql_where=sa.text("departed_at IS NULL"),
        )
        batch_op.create_index("ix_visit_site_arrived", ["site_id", "arrived_at"], unique=False)
        batch_op.create_index(
            "ix_visit_subject_arrived", ["subject_key", "arrived_at"], unique=False
        )


def downgrade() -> None:

    with op.batch_alter_table("visit", schema=None) as batch_op:
        batch_op.drop_index("ix_visit_subject_arrived")
        batch_op.drop_index("ix_visit_site_arrived")
        batch_op.drop_index(
            "ix_visit_present",
            sqlite_where=sa.text("departed_at IS NULL"),
            postgresql_where=sa.text("departed_at IS NULL"),
        )
        batch_op.drop_index("ix_visit_mmsi_arrived")

    op.drop_table("visit")
    op.drop_table("user_site")
    with op.batch_alter_table("checkin_point", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_checkin_point_site_id"))

    op.drop_table("checkin_point")
    op.drop_table("site")
    op.drop_table("app_user")
