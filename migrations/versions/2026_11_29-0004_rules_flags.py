"""anomaly rules: flags and their visits, observations, the watchlist, job runs and leases

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 03:41:24.179147

Also a per-site JSON of rule thresholds and an index on visit.updated_at for the
incremental scan.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from advanced_alchemy.types import DateTimeUTC
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "job_lease",
        sa.Column("job", sa.String(length=40), nullable=False),
        sa.Column("holder", sa.String(length=120), nullable=False),
        sa.Column("expires_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("last_slot", DateTimeUTC(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("job", name=op.f("pk_job_lease")),
    )
    op.create_table(
        "job_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job", sa.String(length=40), nullable=False),
        sa.Column("trigger", sa.String(length=300), nullable=False),
        sa.Column("holder", sa.String(length=120), nullable=False),
        sa.Column("started_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("finished_at", DateTimeUTC(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("counts", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint("status IN ('running', 'ok', 'failed')", name=op.f("ck_job_run_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_run")),
    )
    with op.batch_alter_table("job_run", schema=None) as batch_op:
        batch_op.create_index("ix_job_run_job_started", ["job", "started_at"], unique=False)

    op.create_table(
        "watchlist_entry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("expires_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("list_ref", sa.String(length=120), nullable=False),
        sa.Column("imported_at", DateTimeUTC(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_watchlist_entry")),
        sa.UniqueConstraint("digest", name=op.f("uq_watchlist_entry_digest")),
    )
    with op.batch_alter_table("watchlist_entry", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_watchlist_entry_expires_at"), ["expires_at"], unique=False
        )

    op.create_table(
        "observation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("visit_id", sa.Integer(), nullable=True),
        sa.Column("location", sa.String(length=120), nullable=False),
        sa.Column("indicators", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("observed_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("author", sa.String(length=300), nullable=False),
        sa.Column("created_at", DateTimeUTC(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["site_id"], ["site.id"], name=op.f("fk_observation_site_id_site"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["visit_id"],
            ["visit.id"],
            name=op.f("fk_observation_visit_id_visit"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_observation")),
    )
    with op.batch_alter_table("observation", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_observation_site_id"), ["site_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_observation_visit_id"), ["visit_id"], unique=False)

    op.create_table(
        "flag",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("rule", sa.String(length=32), nullable=False),
        sa.Column("subject", sa.String(length=240), nullable=False),
        sa.Column("dedupe_key", sa.String(length=320), nullable=False),
        sa.Column("window_start", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("window_end", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("reason_params", sa.Text(), nullable=False),
        sa.Column("thresholds", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("restricted", sa.Boolean(), nullable=False),
        sa.Column("created_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("reviewed_by", sa.String(length=300), nullable=True),
        sa.Column("reviewed_at", DateTimeUTC(timezone=True), nullable=True),
        sa.Column("review_reason", sa.Text(), nullable=True),
        sa.Column("observation_id", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "status IN ('open', 'watching', 'dismissed', 'forwarded', 'expired')",
            name=op.f("ck_flag_status"),
        ),
        sa.ForeignKeyConstraint(
            ["observation_id"],
            ["observation.id"],
            name=op.f("fk_flag_observation_id_observation"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["site_id"], ["site.id"], name=op.f("fk_flag_site_id_site"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_flag")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_flag_dedupe_key")),
    )
    with op.batch_alter_table("flag", schema=None) as batch_op:
        batch_op.create_index("ix_flag_rule_subject", ["rule", "subject"], unique=False)
        batch_op.create_index(
            "ix_flag_site_status_updated", ["site_id", "status", "updated_at"], unique=False
        )

    op.create_table(
        "flag_visit",
        sa.Column("flag_id", sa.Integer(), nullable=False),
        sa.Column("visit_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["flag_id"], ["flag.id"], name=op.f("fk_flag_visit_flag_id_flag"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["visit_id"],
            ["visit.id"],
            name=op.f("fk_flag_visit_visit_id_visit"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("flag_id", "visit_id", name=op.f("pk_flag_visit")),
    )
    with op.batch_alter_table("flag_visit", schema=None) as batch_op:
        batch_op.create_index("ix_flag_visit_visit_id", ["visit_id"], unique=False)

    with op.batch_alter_table("site", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("rule_thresholds", sa.Text(), server_default="{}", nullable=False)
        )

    with op.batch_alter_table("visit", schema=None) as batch_op:
        batch_op.create_index("ix_visit_updated_at", ["updated_at"], unique=False)
        batch_op.create_index("ix_visit_vessel_name", ["vessel_name"], unique=False)
        # The scan groups the register by subject (and by MMSI) with the departure and the
        # site: indexes that cover them replace the narrower ones of 0001.
        batch_op.create_index(
            "ix_visit_subject_scan",
            ["subject_key", "arrived_at", "departed_at", "site_id"],
            unique=False,
        )
        batch_op.create_index(
            "ix_visit_mmsi_scan", ["mmsi", "arrived_at", "departed_at", "site_id"], unique=False
        )
        batch_op.drop_index("ix_visit_subject_arrived")
        batch_op.drop_index("ix_visit_mmsi_arrived")


def downgrade() -> None:
    with op.batch_alter_table("visit", schema=None) as batch_op:
        batch_op.create_index("ix_visit_mmsi_arrived", ["mmsi", "arrived_at"], unique=False)
        batch_op.create_index(
            "ix_visit_subject_arrived", ["subject_key", "arrived_at"], unique=False
        )
        batch_op.drop_index("ix_visit_mmsi_scan")
        batch_op.drop_index("ix_visit_subject_scan")
        batch_op.drop_index("ix_visit_vessel_name")
        batch_op.drop_index("ix_visit_updated_at")

    with op.batch_alter_table("site", schema=None) as batch_op:
        batch_op.drop_column("rule_thresholds")

    with op.batch_alter_table("flag_visit", schema=None) as batch_op:
        batch_op.drop_index("ix_flag_visit_visit_id")

    op.drop_table("flag_visit")
    with op.batch_alter_table("flag", schema=None) as batch_op:
        batch_op.drop_index("ix_flag_site_status_updated")
        batch_op.drop_index("ix_flag_rule_subject")

    op.drop_table("flag")
    with op.batch_alter_table("observation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_observation_visit_id"))
        batch_op.drop_index(batch_op.f("ix_observation_site_id"))

    op.drop_table("observation")
    with op.batch_alter_table("watchlist_entry", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_watchlist_entry_expires_at"))

    op.drop_table("watchlist_entry")
    with op.batch_alter_table("job_run", schema=None) as batch_op:
        batch_op.drop_index("ix_job_run_job_started")

    op.drop_table("job_run")
    op.drop_table("job_lease")
