"""The audit chain becomes keyed, and personal values move to detail records

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 00:50:00

New events carry the id of the audit key their HMAC was made with (`key_id`) and the keyed
hash of their detail record (`detail_hash`); the personal values themselves go to the new
`audit_detail` table. The events already written keep their keyless SHA-256 hashes and get
the key id "sha256-legacy"; the anchor row records up to which event that is allowed
(`keyless_through_id`, created with the anchor when there was none): a later event with a
keyless hash fails verification, and a signed checkpoint repeats the marker so that moving it
is caught too. Nothing is re-chained: the migration does not need the key.
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from advanced_alchemy.types import DateTimeUTC
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GENESIS = "0" * 64


def upgrade() -> None:
    op.create_table(
        "audit_detail",
        sa.Column("event_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("object_type", sa.String(length=20), nullable=False),
        sa.Column("object_id", sa.Integer(), nullable=True),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("erased_at", DateTimeUTC(timezone=True), nullable=True),
        sa.Column("erased_by", sa.String(length=60), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_audit_detail")),
    )
    op.create_index("ix_audit_detail_kind_at", "audit_detail", ["kind", "at"])
    op.create_index("ix_audit_detail_object", "audit_detail", ["object_type", "object_id"])
    # Plain ADD COLUMN with a default: in place on SQLite and PostgreSQL, no batch copy.
    op.add_column(
        "audit_event",
        sa.Column("key_id", sa.String(length=40), server_default="sha256-legacy", nullable=False),
    )
    op.add_column(
        "audit_event",
        sa.Column("detail_hash", sa.String(length=64), server_default="", nullable=False),
    )
    op.add_column(
        "audit_anchor",
        sa.Column("keyless_through_id", sa.Integer(), server_default="0", nullable=False),
    )
    conn = op.get_bind()
    last = conn.scalar(sa.text("SELECT max(id) FROM audit_event"))
    if last is None:
        return
    updated = conn.execute(
        sa.text("UPDATE audit_anchor SET keyless_through_id = :last WHERE id = 1"), {"last": last}
    )
    if updated.rowcount == 0:
        anchor = sa.table(
            "audit_anchor",
            sa.column("id", sa.Integer()),
            sa.column("removed_through_id", sa.Integer()),
            sa.column("prev_hash", sa.String()),
            sa.column("removed_count", sa.BigInteger()),
            sa.column("at", DateTimeUTC(timezone=True)),
            sa.column("keyless_through_id", sa.Integer()),
        )
        op.bulk_insert(
            anchor,
            [
                {
                    "id": 1, "removed_through_id": 0, "prev_hash": GENESIS, "removed_count": 0,
                    "at": datetime.now(UTC), "keyless_through_id": last,
                }
            ],
        )  # fmt: skip


def downgrade() -> None:
    # SQLite ≥ 3.35 and PostgreSQL drop a plain column in place.
    op.execute("ALTER TABLE audit_anchor DROP COLUMN keyless_through_id")
    op.execute("ALTER TABLE audit_event DROP COLUMN detail_hash")
    op.execute("ALTER TABLE audit_event DROP COLUMN key_id")
    op.drop_index("ix_audit_detail_object", table_name="audit_detail")
    op.drop_index("ix_audit_detail_kind_at", table_name="audit_detail")
    op.drop_table("audit_detail")
