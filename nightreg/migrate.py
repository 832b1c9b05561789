"""Run the Alembic migrations shipped in the package (`nightreg db …`, `nightreg serve`)."""

from __future__ import annotations

import functools
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

import migrations


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    command.downgrade(alembic_config(database_url), revision)


def script_directory(database_url: str) -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config(database_url))


def current_heads(database_url: str) -> tuple[str, ...]:
    return tuple(ScriptDirectory.from_config(alembic_config(database_url)).get_heads())


@functools.cache
def _scripts() -> ScriptDirectory:
    """The migrations shipped with this code, read once: they do not change while the process
    runs, and reading every script costs tens of milliseconds."""
    config = Config()
    config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    return ScriptDirectory.from_config(config)


@functools.cache
def code_heads() -> frozenset[str]:
    """The head revision(s) of this code's migrations."""
    return frozenset(_scripts().get_heads())


@functools.cache
def known_revisions() -> frozenset[str]:
    """Every revision this code's migrations know (a database at another one was migrated by
    a newer release)."""
    return frozenset(script.revision for script in _scripts().walk_revisions())
