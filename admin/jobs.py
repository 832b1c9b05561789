"""Placeholder: filled in by the issue-4 work."""

from typing import Any

ROUTES: list[Any] = []
