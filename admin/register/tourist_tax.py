"""The tourist-tax return of one site: a month's figures as a page and as a CSV."""

from __future__ import annotations

from datetime import date
from typing import Any

from babel.dates import format_date
from babel.numbers import format_decimal
from litestar import Controller, Request, get
from litestar.response import Response, Template
from litestar.status_codes import HTTP_400_BAD_REQUEST

from admin.downloads import download
from admin.forms import error_message
from admin.web import ActorDep, ContextDep, Slug
from nightreg import i18n
from nightreg.context import AppContext
from nightreg.models import Site
from nightreg.services import tourist_tax
from nightreg.services.tourist_tax import Month, MonthInvalid, TaxReturn
from nightreg.vocabulary import KIND_LABELS

VIEW = {"permission": tourist_tax.PERMISSION}


def _typed(request: Request[Any, Any, Any]) -> str:
    return (request.query_params.get("month") or "").strip()[:20]


def _month(ctx: AppContext, site: Site, typed: str) -> Month:
    """The month typed, or the last full one when none was; MonthInvalid for a bad one."""
    if not typed:
        return tourist_tax.default_month(site, ctx.clock.now())
    return Month.parse(typed)


def _number(value: int) -> str:
    return format_decimal(value, locale=i18n.get_locale())


def _day(day: date) -> str:
    return format_date(day, "EEE d MMM", locale=i18n.get_locale())


def _page(
    ctx: AppContext,
    site: Site,
    typed: str,
    *,
    result: TaxReturn | None = None,
    error: str | None = None,
) -> Template:
    context: dict[str, Any] = {
        "site": site,
        "form": {"month": typed},
        "errors": {"month": error} if error else {},
        "kind_labels": KIND_LABELS,
        "number": _number,
        "day_label": _day,
        "result": result,
    }
    if result is not None:
        context.update(
            month_label=format_date(result.month.first, "LLLL yyyy", locale=i18n.get_locale()),
            complete=tourist_tax.is_complete(result.month, site, ctx.clock.now()),
            query=f"month={result.month}",
        )
    return Template(
        template_name="admin/tourist_tax.html",
        context=context,
        status_code=HTTP_400_BAD_REQUEST if error else 200,
    )


class TouristTaxController(Controller):
    path = "/sites/{slug:str}"

    @get("/tourist-tax", name="admin:tourist-tax", opt=VIEW)
    async def figures(
        self, request: Request[Any, Any, Any], ctx: ContextDep, actor: ActorDep, slug: Slug
    ) -> Template:
        """The month's figures (the last full month unless one is chosen); audited."""
        site = await tourist_tax.site_for(ctx.db, actor, slug)
        typed = _typed(request)
        try:
            month = _month(ctx, site, typed)
        except MonthInvalid as invalid:
            return _page(ctx, site, typed, error=error_message(invalid.message))
        result = await tourist_tax.tax_return(ctx.db, actor, site.id, month, now=ctx.clock.now())
        return _page(ctx, site, str(month), result=result)

    @get("/tourist-tax.csv", name="admin:tourist-tax-csv", opt=VIEW)
    async def download(
        self, request: Request[Any, Any, Any], ctx: ContextDep, actor: ActorDep, slug: Slug
    ) -> Response[Any]:
        """Per day and in total, as CSV; a bad month comes back as the page with its message."""
        site = await tourist_tax.site_for(ctx.db, actor, slug)
        typed = _typed(request)
        try:
            month = _month(ctx, site, typed)
        except MonthInvalid as invalid:
            return _page(ctx, site, typed, error=error_message(invalid.message))
        result = await tourist_tax.tax_return(
            ctx.db, actor, site.id, month, now=ctx.clock.now(), exported=True
        )
        filename = tourist_tax.csv_filename(site.slug, month)
        return download(tourist_tax.to_csv(result), filename)


ROUTES = [TouristTaxController]
