"""The site the staff navigation opens on, remembered per account

Revision ID: 0012
Revises: 0009
Create Date: 2026-12-07 02:10:00

`app_user.chosen_site_id`: the site an account last chose in the site switcher; emptied when
the site is deleted.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("app_user", schema=None) as batch_op:
        batch_op.add_column(sa.Column("chosen_site_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_app_user_chosen_site_id_site"),
            "site",
            ["chosen_site_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("app_user", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_app_user_chosen_site_id_site"), type_="foreignkey")
        batch_op.drop_column("chosen_site_id")
