"""Possible duplicates, and what still points at a visit merged into another

Revision ID: 0010
Revises: 0013
Create Date: 2026-12-06 02:10:00

`possible_duplicate` marks a second open visit of a subject already present at the site,
until staff merge the two or keep both; `visit_merge` keeps a merged visit's private link,
reference and id. Two new tables: the `visit` table itself is not touched.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from advanced_alchemy.types import DateTimeUTC
from alembic import op

revision: str = "0010"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "possible_duplicate",
        sa.Column("visit_id", sa.Integer(), nullable=False),
        sa.Column("duplicate_of_id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("created_at", DateTimeUTC(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["duplicate_of_id"],
            ["visit.id"],
            name=op.f("fk_possible_duplicate_duplicate_of_id_visit"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["site_id"],
            ["site.id"],
            name=op.f("fk_possible_duplicate_site_id_site"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["visit_id"],
            ["visit.id"],
            name=op.f("fk_possible_duplicate_visit_id_visit"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("visit_id", name=op.f("pk_possible_duplicate")),
    )
    op.create_index(
        op.f("ix_possible_duplicate_duplicate_of_id"), "possible_duplicate", ["duplicate_of_id"]
    )
    op.create_index(op.f("ix_possible_duplicate_site_id"), "possible_duplicate", ["site_id"])
    op.create_table(
        "visit_merge",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("visit_id", sa.Integer(), nullable=False),
        sa.Column("merged_visit_id", sa.Integer(), nullable=False),
        sa.Column("merged_reference", sa.String(length=16), nullable=False),
        sa.Column("private_token_hash", sa.String(length=64), nullable=False),
        sa.Column("at", DateTimeUTC(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["site_id"], ["site.id"], name=op.f("fk_visit_merge_site_id_site"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["visit_id"],
            ["visit.id"],
            name=op.f("fk_visit_merge_visit_id_visit"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_visit_merge")),
        sa.UniqueConstraint("merged_visit_id", name=op.f("uq_visit_merge_merged_visit_id")),
        sa.UniqueConstraint("private_token_hash", name=op.f("uq_visit_merge_private_token_hash")),
    )
    op.create_index(op.f("ix_visit_merge_site_id"), "visit_merge", ["site_id"])
    op.create_index(op.f("ix_visit_merge_visit_id"), "visit_merge", ["visit_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_visit_merge_visit_id"), table_name="visit_merge")
    op.drop_index(op.f("ix_visit_merge_site_id"), table_name="visit_merge")
    op.drop_table("visit_merge")
    op.drop_index(op.f("ix_possible_duplicate_site_id"), table_name="possible_duplicate")
    op.drop_index(op.f("ix_possible_duplicate_duplicate_of_id"), table_name="possible_duplicate")
    op.drop_table("possible_duplicate")
