"""Placeholder: filled in by the issue-4 work."""

from typing import Any


def add_commands(sub: Any) -> None:
    """Register this module's subcommands."""
