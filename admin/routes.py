"""The staff side's routers: every page under /admin, and the JSON API under /api/v1.

Both sit behind admin.web's guard; the app mounts them through nightreg/routes.py.
"""

from __future__ import annotations

from typing import Any

from litestar import Router
from litestar.di import Provide

from admin.accounts import ais as ais_pages
from admin.accounts import auth as auth_pages
from admin.accounts import manage as manage_pages
from admin.api.v1 import api_router as v1
from admin.api.v1 import openapi_config
from admin.flags import export as flag_export_pages
from admin.flags import observations as observation_pages
from admin.flags import pages as flag_pages
from admin.operations import audit as audit_pages
from admin.operations import jobs as job_pages
from admin.privacy import holds as hold_pages
from admin.privacy import retention as retention_pages
from admin.privacy import subjects as subject_pages
from admin.register import pages as register_pages
from admin.register import tourist_tax as tourist_tax_pages
from admin.register import transfer as transfer_pages
from admin.round import pages as round_pages
from admin.sharing import agreements as agreement_pages
from admin.sharing import insight as insight_pages
from admin.sharing import signals as signal_pages
from admin.web import provide_actor, staff_guard

__all__ = ["api_router", "openapi_config", "staff_router"]


def _route_handlers() -> list[Any]:
    handlers: list[Any] = [
        *auth_pages.ROUTES,
        *audit_pages.ROUTES,
        *register_pages.ROUTES,
        *manage_pages.ROUTES,
        *ais_pages.ROUTES,
        *transfer_pages.ROUTES,
        *flag_pages.ROUTES,
        *flag_export_pages.ROUTES,
        *observation_pages.ROUTES,
        *job_pages.ROUTES,
        *agreement_pages.ROUTES,
        *signal_pages.ROUTES,
        *insight_pages.ROUTES,
        *retention_pages.ROUTES,
        *hold_pages.ROUTES,
        *subject_pages.ROUTES,
        *tourist_tax_pages.ROUTES,
        *round_pages.ROUTES,
    ]
    return handlers


def staff_router() -> Router:
    """Everything under /admin; kept out of the API schema (pages, not an interface)."""
    return Router(
        path="/admin",
        route_handlers=_route_handlers(),
        guards=[staff_guard],
        dependencies={"actor": Provide(provide_actor, sync_to_thread=False)},
        include_in_schema=False,
    )


def api_router() -> Router:
    """The JSON API under /api/v1, behind the same guard with bearer tokens."""
    return Router(
        path="/",
        route_handlers=[v1],
        guards=[staff_guard],
        dependencies={"actor": Provide(provide_actor, sync_to_thread=False)},
    )
