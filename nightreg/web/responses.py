"""The answers a page gives when it is done: the page or its htmx part, or a redirect."""

from __future__ import annotations

from typing import Any

from litestar.plugins.htmx import ClientRedirect, HTMXRequest
from litestar.response import Redirect, Response, Template


def page_or_part(
    request: HTMXRequest,
    page: str,
    part: str,
    context: dict[str, Any],
    *,
    status: int = 200,
    more: tuple[str, str] | None = None,
) -> Template:
    """The whole page, or for htmx only the part it swaps in.

    `more` is (the target id of a "more" row, the template of the rows alone) for lists
    that page on; a history restore asks for the whole page again.
    """
    htmx = request.htmx
    if htmx and not htmx.history_restore_request:
        name = more[1] if more and htmx.target == more[0] else part
        return Template(template_name=name, context=context, status_code=status)
    return Template(template_name=page, context=context, status_code=status)


def see_other(request: HTMXRequest, path: str) -> Response[Any]:
    """After a form is done: a 303 to `path`, or htmx's own redirect for an htmx request."""
    if request.htmx:
        return ClientRedirect(redirect_to=path)
    return Redirect(path=path, status_code=303)
