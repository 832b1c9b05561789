"""Audit events about restricted flags are marked when written; agreements may share checkpoints

Revision ID: 0015
Revises: 0012
Create Date: 2026-12-06 02:20:00

`audit_event.restricted`: an event about a restricted (watchlist) flag, or naming a restricted
rule, is for the auditor only. It used to be recognised by looking the flag up, which stopped
working once the purge had removed the flag. The events already written are marked here from
the flags still there and from the restricted rule their details name (`watchlist_hit`, the
only restricted rule). The column is not part of an event's hash: nothing is re-chained.

`sharing_agreement.share_audit_checkpoints`: signals sent under such an agreement carry the
newest signed checkpoint of the audit chain.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The restricted rules when this migration was written (nightreg.rules: `restricted=True`).
RESTRICTED_RULES = ("watchlist_hit",)


def upgrade() -> None:
    # Plain ADD COLUMN with a default: in place on SQLite and PostgreSQL, no batch copy.
    op.add_column(
        "audit_event",
        sa.Column("restricted", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.add_column(
        "sharing_agreement",
        sa.Column(
            "share_audit_checkpoints", sa.Boolean(), server_default=sa.false(), nullable=False
        ),
    )
    conn = op.get_bind()
    conn.execute(
        sa.text(
            "UPDATE audit_event SET restricted = :yes WHERE object_type = 'flag' AND object_id "
            "IN (SELECT id FROM flag WHERE restricted = :yes)"
        ),
        {"yes": True},
    )
    for rule in RESTRICTED_RULES:
        conn.execute(
            sa.text("UPDATE audit_event SET restricted = :yes WHERE details LIKE :pattern"),
            {"yes": True, "pattern": f'%"rule":"{rule}"%'},
        )


def downgrade() -> None:
    # SQLite ≥ 3.35 and PostgreSQL drop a plain column in place.
    op.execute("ALTER TABLE sharing_agreement DROP COLUMN share_audit_checkpoints")
    op.execute("ALTER TABLE audit_event DROP COLUMN restricted")
