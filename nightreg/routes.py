"""The one place where nightreg mounts the two sides: their routers, templates and API schema.

Nothing else in nightreg/ imports kiosk/ or admin/ (the import-linter contracts in
pyproject.toml hold this); the sides import nightreg, never each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from litestar.openapi import OpenAPIConfig

import admin
import kiosk
from admin.routes import api_router, openapi_config, staff_router


def route_handlers() -> list[Any]:
    """The visitor's pages, the staff pages under /admin and the JSON API."""
    return [kiosk.router, staff_router(), api_router()]


def template_dirs() -> Sequence[Path]:
    """The sides' template folders; nightreg's own (layout, macros) comes after them."""
    return [kiosk.TEMPLATE_DIR, *admin.TEMPLATE_DIRS]


def api_schema(version: str) -> OpenAPIConfig:
    """The JSON API's schema (served under /schema)."""
    return openapi_config(version)
