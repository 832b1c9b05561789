"""retention: per-site policies, legal holds, non-personal aggregates, the audit anchor

The site's old `retention_days` column (never changeable, always 365) gives way to a
`retention_policy` row whose empty columns take the installation's defaults.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 12:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from advanced_alchemy.types import DateTimeUTC
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "retention_policy",
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("visit_days", sa.Integer(), nullable=True),
        sa.Column("open_flag_days", sa.Integer(), nullable=True),
        sa.Column("dismissed_flag_days", sa.Integer(), nullable=True),
        sa.Column("updated_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=300), nullable=False),
        sa.ForeignKeyConstraint(
            ["site_id"], ["site.id"], name=op.f("fk_retention_policy_site_id_site"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("site_id", name=op.f("pk_retention_policy")),
    )  # fmt: skip
    op.create_table(
        "legal_hold",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("scope", sa.String(length=10), nullable=False),
        sa.Column("case_reference", sa.String(length=100), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("until", sa.Date(), nullable=True),
        sa.Column("site_id", sa.Integer(), nullable=True),
        sa.Column("subject_key", sa.String(length=240), nullable=True),
        sa.Column("visit_count", sa.Integer(), nullable=False),
        sa.Column("created_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=300), nullable=False),
        sa.Column("released_at", DateTimeUTC(timezone=True), nullable=True),
        sa.Column("released_by", sa.String(length=300), nullable=True),
        sa.Column("release_reason", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "scope IN ('visits', 'subject', 'site')", name=op.f("ck_legal_hold_scope")
        ),
        sa.ForeignKeyConstraint(
            ["site_id"], ["site.id"], name=op.f("fk_legal_hold_site_id_site"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_legal_hold")),
    )
    with op.batch_alter_table("legal_hold", schema=None) as batch_op:
        batch_op.create_index("ix_legal_hold_subject_key", ["subject_key"], unique=False)
    op.create_table(
        "legal_hold_visit",
        sa.Column("hold_id", sa.Integer(), nullable=False),
        sa.Column("visit_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["hold_id"], ["legal_hold.id"], name=op.f("fk_legal_hold_visit_hold_id_legal_hold"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["visit_id"], ["visit.id"], name=op.f("fk_legal_hold_visit_visit_id_visit"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("hold_id", "visit_id", name=op.f("pk_legal_hold_visit")),
    )  # fmt: skip
    with op.batch_alter_table("legal_hold_visit", schema=None) as batch_op:
        batch_op.create_index("ix_legal_hold_visit_visit_id", ["visit_id"], unique=False)
    op.create_table(
        "visit_aggregate",
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("visits", sa.Integer(), nullable=False),
        sa.Column("persons", sa.Integer(), nullable=False),
        sa.Column("overnight_stays", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["site_id"], ["site.id"], name=op.f("fk_visit_aggregate_site_id_site"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("site_id", "day", "kind", name=op.f("pk_visit_aggregate")),
    )  # fmt: skip
    op.create_table(
        "audit_anchor",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("removed_through_id", sa.Integer(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("removed_count", sa.BigInteger(), nullable=False),
        sa.Column("at", DateTimeUTC(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_anchor")),
    )
    # Every site's retention was the fixed 365 days, which is now the default: nothing to
    # carry over. SQLite ≥ 3.35 and PostgreSQL both drop a plain column in place, which
    # spares SQLite the batch copy of a table that others reference.
    op.execute("ALTER TABLE site DROP COLUMN retention_days")


def downgrade() -> None:
    op.add_column(
        "site",
        sa.Column("retention_days", sa.Integer(), nullable=False, server_default="365"),
    )
    op.drop_table("audit_anchor")
    op.drop_table("visit_aggregate")
    with op.batch_alter_table("legal_hold_visit", schema=None) as batch_op:
        batch_op.drop_index("ix_legal_hold_visit_visit_id")
    op.drop_table("legal_hold_visit")
    with op.batch_alter_table("legal_hold", schema=None) as batch_op:
        batch_op.drop_index("ix_legal_hold_subject_key")
    op.drop_table("legal_hold")
    op.drop_table("retention_policy")
