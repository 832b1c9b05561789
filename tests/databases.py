"""Databases for the tests: one migrated template per test session (and per xdist worker),
and per test a database with that schema and no rows.

Migrating takes seconds; starting from the template takes milliseconds. Every test thus starts
from the empty, newest schema and sees no other test's rows, so tests cannot disturb each
other and a purge walks only what its own test made.

- SQLite: the template is a file; each test gets a plain copy of it (the template is left in
  rollback-journal mode with its WAL checkpointed, so the one file holds everything).
- PostgreSQL (NIGHTREG_TEST_DATABASE_URL): the named database is only the maintenance
  connection; the template, a working database and any copies are databases of their own
  beside it, named after it, the xdist worker and the process id, so that concurrent runs never
  collide. Each test gets the working database emptied (see PostgresTemplate for why).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol

from sqlalchemy.engine import make_url

from nightreg import migrate


class TemplateDatabase(Protocol):
    def fresh(self) -> str:
        """A database for the next test: the migrated schema and no rows; returns its URL."""

    def release(self, url: str) -> None:
        """The test that had `fresh`'s database has ended."""

    def copy(self) -> str:
        """A new database holding the migrated schema and no rows; returns its URL."""

    def empty(self) -> str:
        """A new database with nothing in it, not even the schema (a restore's target)."""

    def drop(self, url: str) -> None:
        """Remove a copy made by `copy` or `empty`."""

    def close(self) -> None:
        """Remove the template itself at the end of the session."""


def _run_id() -> str:
    """This process's part of every name: the xdist worker (or "main") and the pid."""
    return f"{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_{os.getpid()}"


class SqliteTemplate:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.template = directory / "template.db"
        self._numbers = itertools.count(1)
        migrate.upgrade(self._url(self.template))
        # The app opens every connection in WAL mode; leave everything in the main file and
        # switch the template back to a rollback journal so that copying the file is enough.
        with sqlite3.connect(self.template) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.execute("PRAGMA journal_mode=DELETE")
        conn.close()

    @staticmethod
    def _url(path: Path) -> str:
        return f"sqlite+aiosqlite:///{path}"

    def fresh(self) -> str:
        return self.copy()

    def release(self, url: str) -> None:
        self.drop(url)

    def copy(self) -> str:
        target = self.directory / f"test-{next(self._numbers)}.db"
        shutil.copyfile(self.template, target)
        return self._url(target)

    def empty(self) -> str:
        return self._url(self.directory / f"empty-{next(self._numbers)}.db")

    def drop(self, url: str) -> None:
        path = Path(make_url(url).database or "")
        for suffix in ("", "-wal", "-shm", "-journal"):
            path.with_name(path.name + suffix).unlink(missing_ok=True)

    def close(self) -> None:
        self.drop(self._url(self.template))


class PostgresTemplate:
    """The template, a working database per process emptied before each test, and copies.

    Copying a database on PostgreSQL (CREATE DATABASE ... TEMPLATE) and dropping it costs
    about 0.4 s on this machine (every copy is written through the WAL and synced), against
    milliseconds for a file copy. The tests therefore share one working database per process,
    and before each test every row of every table is deleted (20-50 ms): the schema is the
    template's, the tables are empty, only the sequences go on counting, which no test relies
    on. Tests that change the schema itself (migrations) take a copy of their own (`copy`).
    """

    def __init__(self, maintenance_url: str) -> None:
        if maintenance_url.startswith("postgresql://"):
            maintenance_url = "postgresql+asyncpg://" + maintenance_url.split("://", 1)[1]
        self.url = make_url(maintenance_url)
        self.prefix = f"{self.url.database}_{_run_id()}"
        self.template = f"{self.prefix}_tpl"
        self.work = f"{self.prefix}_work"
        self._numbers = itertools.count(1)
        self._execute(
            self.url.database,
            f'DROP DATABASE IF EXISTS "{self.work}" WITH (FORCE)',
            f'DROP DATABASE IF EXISTS "{self.template}" WITH (FORCE)',
            f'CREATE DATABASE "{self.template}"',
        )
        migrate.upgrade(self._url(self.template))
        self._execute(
            self.url.database, f'CREATE DATABASE "{self.work}" TEMPLATE "{self.template}"'
        )
        self._empty_work = self._emptying_statements()

    def _url(self, name: str) -> str:
        return self.url.set(database=name).render_as_string(hide_password=False)

    def _execute(self, database: str | None, *statements: str, transaction: bool = False) -> None:
        """Run statements on one database (CREATE DATABASE runs outside a transaction, which
        asyncpg's plain `execute` does)."""
        import asyncpg

        async def run() -> None:
            conn = await asyncpg.connect(
                host=self.url.host,
                port=self.url.port,
                user=self.url.username,
                password=self.url.password,
                database=database,
            )
            try:
                if transaction:
                    async with conn.transaction():
                        await conn.execute(";\n".join(statements))
                else:
                    for statement in statements:
                        await conn.execute(statement)
            finally:
                await conn.close()

        # In a thread of its own: asyncio.run would unset the event loop pytest-asyncio keeps.
        with ThreadPoolExecutor(max_workers=1) as pool:
            pool.submit(asyncio.run, run()).result()

    def _emptying_statements(self) -> list[str]:
        """DELETE from every table, children before parents (the models' foreign keys)."""
        import nightreg.models  # noqa: F401  (fills the metadata)
        from nightreg.db import Base

        return [f'DELETE FROM "{table.name}"' for table in reversed(Base.metadata.sorted_tables)]

    def fresh(self) -> str:
        # A connection a previous test left open (an engine not disposed, a server thread)
        # must neither see nor hold anything of the next test.
        self._execute(
            self.work,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            f" WHERE datname = '{self.work}' AND pid <> pg_backend_pid()",
            *self._empty_work,
            transaction=True,
        )
        return self._url(self.work)

    def release(self, url: str) -> None:
        """Nothing to do: the next test empties the working database before it starts."""

    def copy(self) -> str:
        name = f"{self.prefix}_{next(self._numbers)}"
        self._execute(self.url.database, f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        return self._url(name)

    def empty(self) -> str:
        name = f"{self.prefix}_{next(self._numbers)}"
        self._execute(self.url.database, f'CREATE DATABASE "{name}"')
        return self._url(name)

    def drop(self, url: str) -> None:
        # FORCE: a test may leave an engine undisposed; its connections must not keep the copy.
        name = make_url(url).database
        self._execute(self.url.database, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        self._execute(
            self.url.database,
            f'DROP DATABASE IF EXISTS "{self.work}" WITH (FORCE)',
            f'DROP DATABASE IF EXISTS "{self.template}" WITH (FORCE)',
        )


def template_database(directory: Path) -> TemplateDatabase:
    """The template for this session: PostgreSQL when NIGHTREG_TEST_DATABASE_URL is set."""
    url = os.environ.get("NIGHTREG_TEST_DATABASE_URL")
    if url:
        return PostgresTemplate(url)
    return SqliteTemplate(directory)
