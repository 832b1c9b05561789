"""The import's bulk insert on SQLite leaves out the columns no row of a batch fills."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table
from sqlalchemy.dialects import sqlite

from nightreg.models import Visit
from nightreg.services.visits import BulkRows

VISIT = cast(Table, Visit.__table__)


def test_every_column_a_row_may_leave_empty_defaults_to_null_so_leaving_it_out_changes_nothing():
    for column in VISIT.columns:
        if column.nullable and column.name != "id":
            assert column.server_default is None, column.name
            assert column.default is None, column.name


def rows_with(bulk: BulkRows, **filled: Any) -> list[list[Any]]:
    row = [filled.get(name) for name in bulk.names]
    return [list(row), list(row)]


def test_a_sqlite_batch_gets_an_insert_of_only_the_columns_some_row_fills():
    bulk = BulkRows(sqlite.dialect())
    rows = rows_with(bulk, reference="ABC", site_id=1, kind="stay", search_key="JAN")

    sql, records = bulk._without_empty_columns(rows)

    assert sql == "INSERT INTO visit (reference, site_id, kind, search_key) VALUES (?, ?, ?, ?)"
    assert [list(r) for r in records] == [["ABC", 1, "stay", "JAN"]] * 2


def test_a_sqlite_batch_without_a_column_that_has_a_default_of_its_own_keeps_the_full_insert():
    bulk = BulkRows(sqlite.dialect())
    rows = rows_with(bulk, reference="ABC", site_id=1, kind="stay")  # no search key

    sql, records = bulk._without_empty_columns(rows)

    assert (sql, records) == (bulk.sql, rows)
