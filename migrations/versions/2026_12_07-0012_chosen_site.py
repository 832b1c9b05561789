"""The site the staff navigation opens on, remembered per account

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 02:10:00

`app_user.chosen_site_id`: the site an account last chose in the site switcher; emptied when
the site is deleted.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


FK_NAME = "fk_app_user_chosen_site_id_site"
INLINE = f"chosen_site_id INTEGER CONSTRAINT {FK_NAME} REFERENCES site (id) ON DELETE SET NULL"
TABLE_LEVEL = (
    f"CONSTRAINT {FK_NAME} FOREIGN KEY(chosen_site_id) REFERENCES site (id) ON DELETE SET NULL"
)


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        op.add_column("app_user", sa.Column("chosen_site_id", sa.Integer(), nullable=True))
        op.create_foreign_key(
            op.f(FK_NAME), "app_user", "site", ["chosen_site_id"], ["id"], ondelete="SET NULL"
        )
        return
    # In place: a batch copy of `app_user` would drop the table, and with foreign keys on,
    # SQLite's DROP TABLE deletes the rows that point at it (an account's sites, its sessions).
    # ADD COLUMN takes the key inline; the stored definition then says it as a table constraint,
    # the form the models (and `alembic check`) read, as migration 0013 does (SQLite's ALTER
    # TABLE documentation, section 7: writable_schema, the new text, the schema version one up).
    op.execute(f"ALTER TABLE app_user ADD COLUMN {INLINE}")
    stored = bind.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'app_user'"
    ).scalar_one()
    if INLINE not in stored or not stored.rstrip().endswith(")"):
        raise RuntimeError("app_user's definition after ADD COLUMN is not as expected")
    new = stored.replace(INLINE, "chosen_site_id INTEGER").rstrip()[:-1] + f", {TABLE_LEVEL})"
    version = bind.exec_driver_sql("PRAGMA schema_version").scalar_one()
    bind.exec_driver_sql("PRAGMA writable_schema=ON")
    try:
        bind.exec_driver_sql(
            "UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = 'app_user'", (new,)
        )
        bind.exec_driver_sql(f"PRAGMA schema_version={int(version) + 1}")
    finally:
        bind.exec_driver_sql("PRAGMA writable_schema=OFF")
    problems = bind.exec_driver_sql("PRAGMA quick_check(app_user)").scalars().all()
    if problems != ["ok"]:
        raise RuntimeError(f"app_user after adding chosen_site_id: {problems}")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        op.drop_constraint(op.f(FK_NAME), "app_user", type_="foreignkey")
        op.drop_column("app_user", "chosen_site_id")
        return
    # SQLite's DROP COLUMN refuses a column that a foreign key names: take the key out of the
    # stored definition first (as above), then drop the column in place.
    stored = bind.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'app_user'"
    ).scalar_one()
    new = stored.replace(f", {TABLE_LEVEL}", "")
    version = bind.exec_driver_sql("PRAGMA schema_version").scalar_one()
    bind.exec_driver_sql("PRAGMA writable_schema=ON")
    try:
        bind.exec_driver_sql(
            "UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = 'app_user'", (new,)
        )
        bind.exec_driver_sql(f"PRAGMA schema_version={int(version) + 1}")
    finally:
        bind.exec_driver_sql("PRAGMA writable_schema=OFF")
    op.execute("ALTER TABLE app_user DROP COLUMN chosen_site_id")
