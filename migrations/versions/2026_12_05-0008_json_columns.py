"""JSON columns: thresholds, reason parameters, indicators, job counts and agreement codes

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 23:30:00

Nine columns that held JSON as Text become SQLAlchemy's JSON type. The audit event's
object_ids and details, a signal's body and an account's recovery codes stay Text (see
nightreg.models for why). On PostgreSQL the columns change type (`USING col::json`); the json
type keeps the stored text as it is. SQLite has no JSON type, only a declared column type, and
the stored text is already JSON: only the declaration changes, in place (below), because a
batch copy of `site`, `flag` or `sharing_agreement` would drop tables that other tables
reference, and with foreign keys on, SQLite's DROP TABLE deletes (cascades to) their rows.
"""

import re
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.engine import Connection

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Table -> column -> the empty value the services always read for a blank or unreadable one.
COLUMNS: dict[str, dict[str, str]] = {
    "site": {"rule_thresholds": "{}"},
    "flag": {"reason_params": "{}", "thresholds": "{}"},
    "observation": {"indicators": "[]"},
    "job_run": {"counts": "{}"},
    "sharing_agreement": {"rules": "[]", "fields": "[]", "auto_rules": "[]"},
}
# The one column with a server default (rows inserted by SQL that does not name it).
SERVER_DEFAULTS = {("site", "rule_thresholds"): "{}"}


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        for table, columns in COLUMNS.items():
            for column, empty in columns.items():
                # Before, a blank value read as empty; json refuses it.
                _set_empty(table, column, empty, lambda c: sa.func.btrim(c) == "")
                _postgresql_retype(table, column, "JSON", f"{column}::json")
    else:
        for table, columns in COLUMNS.items():
            for column, empty in columns.items():
                # Before, text that was not JSON read as empty; the JSON type would raise.
                _set_empty(table, column, empty, lambda c: sa.func.json_valid(c) == 0)
        _sqlite_declare(bind, "TEXT", "JSON")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        for table, columns in COLUMNS.items():
            for column in columns:
                _postgresql_retype(table, column, "TEXT", f"{column}::text")
    else:
        _sqlite_declare(bind, "JSON", "TEXT")


def _set_empty(
    table: str, column: str, empty: str, where: Callable[[sa.ColumnClause[Any]], Any]
) -> None:
    rows = sa.table(table, sa.column(column))
    op.execute(rows.update().where(where(rows.c[column])).values({column: empty}))


def _postgresql_retype(table: str, column: str, type_: str, using: str) -> None:
    # A default is not cast along with the column: drop it, change the type, set it again.
    default = SERVER_DEFAULTS.get((table, column))
    if default is not None:
        op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} DROP DEFAULT")
    op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} TYPE {type_} USING {using}")
    if default is not None:
        op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} SET DEFAULT '{default}'")


def _sqlite_declare(bind: Connection, old: str, new: str) -> None:
    """Change the declared type of COLUMNS from `old` to `new` in SQLite's schema table.

    SQLite's documented way for a change that leaves the stored rows as they are
    (https://sqlite.org/lang_altertable.html, "otheralter"): edit the CREATE TABLE text with
    writable_schema on and bump schema_version, in one transaction.
    """
    version = bind.exec_driver_sql("PRAGMA schema_version").scalar_one()
    bind.exec_driver_sql("PRAGMA writable_schema = ON")
    for table, columns in COLUMNS.items():
        sql = bind.exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
        ).scalar_one()
        for column in columns:
            sql, found = re.subn(rf'(?<![\w"]){column} {old}\b', f"{column} {new}", sql)
            if found != 1:
                raise RuntimeError(f"{table}.{column}: expected one {old} declaration")
        bind.exec_driver_sql(
            "UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = ?", (sql, table)
        )
    bind.exec_driver_sql(f"PRAGMA schema_version = {int(version) + 1}")
    bind.exec_driver_sql("PRAGMA writable_schema = OFF")
