"""Night rounds and their marks; a visit's source may be `round`

Revision ID: 0013
Revises: 0014
Create Date: 2026-12-06 02:10:20

The harbour master's evening round (`night_round`) and its marks (`round_mark`: a boat seen
at its berth or not there, each with the idempotency key the phone sent it with). A boat found
on the round and added there is a visit of the new source `round`.

Widening `ck_visit_source` on SQLite: SQLite cannot alter a CHECK constraint, and batch mode
would copy the whole register into a new table and drop the old one, whose implicit DELETE
fires the ON DELETE CASCADE of every table that points at a visit (notes, flags' evidence,
observations) while foreign keys are on (they are, on every connection, and the pragma cannot
be changed inside the migration's transaction). The constraint only grows (every row valid
before stays valid), so the table's stored definition is edited in place, as SQLite documents
for loosening a constraint ("Making Other Kinds Of Table Schema Changes", lang_altertable.html
section 7): writable_schema, the new text, the schema version one up, a check of the table.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from advanced_alchemy.types import DateTimeUTC
from alembic import op

revision: str = "0013"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_SOURCES = "source IN ('kiosk', 'staff', 'api')"
NEW_SOURCES = "source IN ('kiosk', 'staff', 'api', 'round')"


def upgrade() -> None:
    op.create_table(
        "night_round",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("started_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("ended_at", DateTimeUTC(timezone=True), nullable=True),
        sa.Column("walked_by_id", sa.Integer(), nullable=True),
        sa.Column("walked_by", sa.String(length=300), nullable=False),
        sa.ForeignKeyConstraint(
            ["site_id"],
            ["site.id"],
            name=op.f("fk_night_round_site_id_site"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["walked_by_id"],
            ["app_user.id"],
            name=op.f("fk_night_round_walked_by_id_app_user"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_night_round")),
    )
    with op.batch_alter_table("night_round", schema=None) as batch_op:
        batch_op.create_index("ix_night_round_site_started", ["site_id", "started_at"])

    op.create_table(
        "round_mark",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("round_id", sa.Integer(), nullable=False),
        sa.Column("visit_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("found", sa.Boolean(), nullable=False),
        sa.Column("marked_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("received_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("idempotency_key", sa.String(length=64), nullable=False),
        sa.CheckConstraint("status IN ('seen', 'missing')", name=op.f("ck_round_mark_status")),
        sa.ForeignKeyConstraint(
            ["round_id"],
            ["night_round.id"],
            name=op.f("fk_round_mark_round_id_night_round"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["visit_id"],
            ["visit.id"],
            name=op.f("fk_round_mark_visit_id_visit"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_round_mark")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_round_mark_idempotency_key")),
    )
    with op.batch_alter_table("round_mark", schema=None) as batch_op:
        batch_op.create_index("ix_round_mark_round", ["round_id", "visit_id"])
        batch_op.create_index("ix_round_mark_visit", ["visit_id"])

    _visit_sources(OLD_SOURCES, NEW_SOURCES)


def downgrade() -> None:
    # The narrower constraint again: a boat found on a round reads as entered by staff.
    op.execute("UPDATE visit SET source = 'staff' WHERE source = 'round'")
    _visit_sources(NEW_SOURCES, OLD_SOURCES)

    with op.batch_alter_table("round_mark", schema=None) as batch_op:
        batch_op.drop_index("ix_round_mark_visit")
        batch_op.drop_index("ix_round_mark_round")
    op.drop_table("round_mark")
    with op.batch_alter_table("night_round", schema=None) as batch_op:
        batch_op.drop_index("ix_night_round_site_started")
    op.drop_table("night_round")


def _visit_sources(old: str, new: str) -> None:
    """Replace the visit table's CHECK on `source` (see the module's docstring for SQLite)."""
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        op.drop_constraint(op.f("ck_visit_source"), "visit", type_="check")
        op.create_check_constraint(op.f("ck_visit_source"), "visit", new)
        return
    stored = bind.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'visit'"
    ).scalar_one()
    if old not in stored:
        raise RuntimeError(f"the visit table's CHECK on source is not {old!r}")
    version = bind.exec_driver_sql("PRAGMA schema_version").scalar_one()
    bind.exec_driver_sql("PRAGMA writable_schema=ON")
    try:
        bind.exec_driver_sql(
            "UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = 'visit'",
            (stored.replace(old, new),),
        )
        bind.exec_driver_sql(f"PRAGMA schema_version={int(version) + 1}")
    finally:
        bind.exec_driver_sql("PRAGMA writable_schema=OFF")
    # The table's own check (the whole database's would read every table of a large register).
    problems = bind.exec_driver_sql("PRAGMA quick_check(visit)").scalars().all()
    if problems != ["ok"]:
        raise RuntimeError(f"the visit table after widening its CHECK: {problems}")
