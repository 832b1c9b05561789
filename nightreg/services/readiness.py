"""Whether this instance is ready for traffic: the database answers and its schema is this
code's (the migrations are at head). `/ready` asks; `/health` stays a cheap ping."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection

from nightreg import migrate
from nightreg.db import Database

# A database slower than this to answer counts as not answering (a load balancer asks often).
TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class Readiness:
    ready: bool
    reason: str = ""
    revision: str = ""  # the database's migration revision(s), comma-separated


def _database_heads(connection: Connection) -> frozenset[str]:
    return frozenset(MigrationContext.configure(connection).get_current_heads())


async def check(db: Database) -> Readiness:
    """Ready when the database answers within TIMEOUT_SECONDS and is at this code's head."""
    timeout = TIMEOUT_SECONDS
    try:
        async with asyncio.timeout(timeout):
            async with db.engine.connect() as connection:
                current = await connection.run_sync(_database_heads)
    except TimeoutError:
        return Readiness(False, f"the database did not answer within {timeout:.0f} s")
    except Exception as exc:  # any failure means "not reachable" to a readiness check
        return Readiness(False, f"the database is unreachable ({type(exc).__name__})")
    heads = migrate.code_heads()
    revision = ",".join(sorted(current))
    if current == heads:
        return Readiness(True, revision=revision)
    expected = ",".join(sorted(heads))
    if not current:
        reason = f"the database has no migrations applied; run `nightreg db upgrade` ({expected})"
    elif current - migrate.known_revisions():
        reason = (
            f"the database is at {revision}, newer than this release's {expected}: "
            "a newer release migrated it; replace this instance"
        )
    else:
        reason = (
            f"the database is at {revision}, behind this release's {expected}: "
            "run `nightreg db upgrade`"
        )
    return Readiness(False, reason, revision)
