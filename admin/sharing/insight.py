"""Information pictures: four charts of counts (no personal data), each with its table and CSV."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal
from urllib.parse import urlencode

from babel.dates import format_date, get_day_names
from litestar import Controller, Request, get
from litestar.response import Response, Template
from litestar.status_codes import HTTP_400_BAD_REQUEST
from markupsafe import Markup

from admin.downloads import download
from admin.forms import error_messages, form_dates
from admin.web import ActorDep, ContextDep
from nightreg import charts, i18n
from nightreg.context import AppContext
from nightreg.i18n import N_
from nightreg.rules import RULES
from nightreg.services import insight
from nightreg.services.access import Actor
from nightreg.services.insight import Filters, FiltersInvalid, InsightSite

VIEW = {"permission": insight.PERMISSION}
# A stacked bar shows this many series in colour and the rest as one grey "other".
SERIES_SHOWN = 6
# With all sites chosen: heat maps of the busiest sites, and the sites sharing most subjects.
MAX_HEAT_MAPS = 6
MAX_MATRIX_SITES = 12
OTHER_KEY = ""  # the key of the "other" series: no rule code or site id is empty

TITLE_FLAGS = N_("Flags per rule per week")
TITLE_ARRIVALS = N_("Arrivals by weekday and hour")
TITLE_ARRIVALS_AT = N_("Arrivals at %(site)s by weekday and hour")
TITLE_SIGNALS = N_("Forwarded signals per site per week")
TITLE_SHARED = N_("Sites that share subjects (site hopping)")
LABEL_WEEK = N_("Week (starting Monday)")
LABEL_FLAGS = N_("Flags")
LABEL_SIGNALS = N_("Signals")
LABEL_ARRIVALS = N_("Arrivals")
LABEL_HOUR = N_("Hour of arrival (the site's local time)")
OTHER_RULES = N_("Other rules")
OTHER_SITES = N_("Other sites")


@dataclass
class Table:
    """A table of counts: a header row, then rows that start with their own header cell."""

    caption: str
    corner: str
    columns: list[str]
    rows: list[tuple[str, list[Any]]]


@dataclass
class Picture:
    """One chart as the page shows it: figure, caption, the numbers as a table, notes."""

    key: str
    title: str  # the chart's and the table's
    summary: str
    heading: str = ""  # the section's, when it is not the title
    table: Table | None = None
    svg: Markup | None = None
    notes: list[str] = field(default_factory=list)


# --- the form --------------------------------------------------------------------------------


def _form(params: Any) -> dict[str, str]:
    return {name: (params.get(name) or "").strip()[:64] for name in ("site", "from", "to")}


def _filters(
    form: dict[str, str], sites: Sequence[InsightSite], today: date
) -> tuple[Filters | None, dict[str, str]]:
    """The filters from the form (the last twelve weeks when the dates are empty), or errors."""
    days, errors = form_dates(form)
    if errors:
        return None, errors
    date_to = days["to"] or today
    date_from = days["from"] or insight.default_period(date_to)[0]
    try:
        return insight.choose(
            sites, slug=form["site"] or None, date_from=date_from, date_to=date_to
        ), {}
    except FiltersInvalid as exc:
        return None, error_messages(exc.errors)


def _today(ctx: AppContext) -> date:
    return ctx.clock.now().astimezone(ctx.settings.tz).date()


def _query(filters: Filters) -> str:
    return urlencode(
        {
            "site": filters.chosen.slug if filters.chosen else "",
            "from": filters.date_from.isoformat(),
            "to": filters.date_to.isoformat(),
        }
    )


# --- words and numbers -----------------------------------------------------------------------


def _rule_label(code: str | int) -> str:
    rule = RULES.get(str(code))
    return i18n.gettext(rule.title) if rule else str(code)


def _week_label(week: date, fmt: str = "d MMM") -> str:
    return format_date(week, fmt, locale=i18n.get_locale())


def _weekdays(width: Literal["abbreviated", "wide"]) -> list[str]:
    names = get_day_names(width, locale=i18n.get_locale())
    return [str(names[i]) for i in range(7)]


def _weekly_picture(
    key: str,
    title: str,
    ylabel: str,
    weeks: Sequence[date],
    series: list[insight.WeeklySeries],
    label: Callable[[str | int], str],
    other: str,
    summary: Callable[[int, int | str, str, int | str], str],
    empty: str,
) -> tuple[Picture, Callable[[], str] | None]:
    """A stacked weekly bar chart with its table (series by week) and a one-line summary."""
    total = sum(s.total for s in series)
    if not total:
        return Picture(key, title, empty), None
    top = series[0]
    # Primary and secondary suppression (insight.protect): the table's rows with their totals
    # and the period's total in the summary; the chart draws only what the table shows.
    protected, drawable = insight.protected_weekly(weeks, series)
    # The plural form follows the number shown: a hidden total ("<5") must not show, by a
    # singular, that it is 1.
    plural_of = total if str(protected.total).isdigit() else insight.SUPPRESS_BELOW
    picture = Picture(
        key, title, summary(plural_of, protected.total, label(top.key), protected.totals[0])
    )
    picture.notes.append(_suppression_note())
    week_labels = [_week_label(w) for w in weeks]
    picture.table = Table(
        caption=title,
        corner="",
        columns=[_week_label(w, "medium") for w in weeks] + [i18n.gettext("Total")],
        rows=[
            (label(s.key), [*cells, row_total])
            for s, cells, row_total in zip(series, protected.cells, protected.totals, strict=True)
        ],
    )
    shown = insight.top_and_rest(drawable, SERIES_SHOWN, OTHER_KEY)
    chart_series = [(other if s.key == OTHER_KEY else label(s.key), s.counts) for s in shown]
    has_other = len(shown) < len(series)

    def draw() -> str:
        return charts.weekly_bars(
            title=title,
            xlabel=i18n.gettext(LABEL_WEEK),
            ylabel=ylabel,
            weeks=week_labels,
            series=chart_series,
            other=other if has_other else None,
            chart_id=f"chart-{key}",
            labelledby=f"h-{key} caption-{key}",
        )

    # `draw` runs in a worker thread: every label it uses is translated here, beforehand.
    return picture, draw


def _flags_picture(
    filters: Filters, rows: list[insight.FlagCount]
) -> tuple[Picture, Callable[[], str] | None]:
    weeks = filters.weeks
    series = insight.weekly_series(weeks, ((r.week, r.rule, r.flags) for r in rows))
    return _weekly_picture(
        "flags",
        i18n.gettext(TITLE_FLAGS),
        i18n.gettext(LABEL_FLAGS),
        weeks,
        series,
        _rule_label,
        i18n.gettext(OTHER_RULES),
        lambda total, num, top, n: i18n.ngettext(
            "%(num)s flag in the period; most often: %(top)s (%(count)s).",
            "%(num)s flags in the period; most often: %(top)s (%(count)s).",
            total,
            num=num,
            top=top,
            count=n,
        ),
        i18n.gettext("No flags in this period."),
    )


def _signals_picture(
    filters: Filters, rows: list[insight.SignalCount]
) -> tuple[Picture, Callable[[], str] | None]:
    weeks = filters.weeks
    names = {s.id: s.name for s in filters.scope}
    series = insight.weekly_series(weeks, ((r.week, r.site_id, r.signals) for r in rows))
    return _weekly_picture(
        "signals",
        i18n.gettext(TITLE_SIGNALS),
        i18n.gettext(LABEL_SIGNALS),
        weeks,
        series,
        lambda key: names.get(int(key), str(key)),
        i18n.gettext(OTHER_SITES),
        lambda total, num, top, n: i18n.ngettext(
            "%(num)s signal forwarded in the period; most from %(top)s (%(count)s).",
            "%(num)s signals forwarded in the period; most from %(top)s (%(count)s).",
            total,
            num=num,
            top=top,
            count=n,
        ),
        i18n.gettext("No signals were forwarded in this period."),
    )


def _arrival_pictures(
    filters: Filters, rows: list[insight.ArrivalCount]
) -> tuple[list[Picture], list[Callable[[], str] | None], list[str]]:
    totals: dict[int, int] = {}
    for row in rows:
        totals[row.site_id] = totals.get(row.site_id, 0) + row.arrivals
    by_id = {s.id: s for s in filters.scope}
    busiest = sorted(totals, key=lambda site_id: (-totals[site_id], by_id[site_id].name))
    notes: list[str] = []
    if len(busiest) > MAX_HEAT_MAPS:
        notes.append(
            i18n.ngettext(
                "%(num)s more site had arrivals: choose it above to see its picture; "
                "the CSV holds every site.",
                "%(num)s more sites had arrivals: choose one above to see its picture; "
                "the CSV holds every site.",
                len(busiest) - MAX_HEAT_MAPS,
            )
        )
    short_days, long_days = _weekdays("abbreviated"), _weekdays("wide")
    hours = [f"{h:02d}" for h in range(24)]
    pictures: list[Picture] = []
    draws: list[Callable[[], str] | None] = []
    for n, site_id in enumerate(busiest[:MAX_HEAT_MAPS]):
        site = by_id[site_id]
        grid = insight.hour_grid(rows, site_id)
        protected = insight.protect(grid)

        day, hour = max(
            ((d, h) for d in range(7) for h in range(24)), key=lambda dh: grid[dh[0]][dh[1]]
        )
        title = i18n.gettext(TITLE_ARRIVALS_AT, site=site.name)
        key = f"arrivals-{n + 1}"
        summary = i18n.ngettext(
            "%(num)s arrival in the period (%(tz)s time); the busiest hour: %(day)s "
            "%(hour)s:00 to %(next)s:00 (%(count)s).",
            "%(num)s arrivals in the period (%(tz)s time); the busiest hour: %(day)s "
            "%(hour)s:00 to %(next)s:00 (%(count)s).",
            totals[site_id],
            num=protected.total,
            tz=site.timezone,
            day=long_days[day],
            hour=f"{hour:02d}",
            next=f"{(hour + 1) % 24:02d}",
            count=protected.cells[day][hour],
        )
        picture = Picture(key, title, summary, heading=site.name)
        picture.notes.append(_suppression_note())
        picture.table = Table(
            caption=title,
            corner="",
            columns=[*hours, i18n.gettext("Total")],
            rows=[(long_days[d], [*protected.cells[d], protected.totals[d]]) for d in range(7)],
        )
        pictures.append(picture)
        draws.append(
            _heat_draw(title, key, short_days, hours, protected.drawn(), i18n.gettext(LABEL_HOUR))
        )
    return pictures, draws, notes


def _suppression_note() -> str:
    return i18n.gettext(
        insight.SUPPRESSION_NOTE, most=insight.SUPPRESS_BELOW - 1, shown=insight.SUPPRESSED
    )


def _heat_draw(
    title: str,
    key: str,
    days: list[str],
    hours: list[str],
    grid: tuple[tuple[int, ...], ...],
    xlabel: str,
) -> Callable[[], str]:
    legend = i18n.gettext(LABEL_ARRIVALS)

    def draw() -> str:
        return charts.heat_map(
            title=title,
            xlabel=xlabel,
            ylabel="",
            legend_title=legend,
            rows=days,
            columns=hours,
            values=grid,
            column_step=3,
            chart_id=f"chart-{key}",
            labelledby=f"h-{key} caption-{key}",
        )

    return draw


def _shared_picture(
    filters: Filters, rows: list[insight.SharedSubjects]
) -> tuple[Picture, Callable[[], str] | None]:
    # Longer than most: one chart's context, field by field, as the template reads it.
    title = i18n.gettext(TITLE_SHARED)
    suppressed = insight.SUPPRESSED
    pairs = [r for r in rows if r.site_a != r.site_b]
    if not rows:
        return Picture("shared", title, i18n.gettext("No site-hopping flags in this period.")), None
    by_id = {s.id: s for s in filters.scope}
    weight: dict[int, int] = {}
    for row in rows:
        for site_id in {row.site_a, row.site_b}:
            weight[site_id] = weight.get(site_id, 0) + (row.subjects or 0)
    involved = sorted(weight, key=lambda site_id: (-weight[site_id], by_id[site_id].name))
    if filters.chosen is not None:
        chosen = filters.chosen.id
        columns = [chosen, *(s for s in involved if s != chosen)][:MAX_MATRIX_SITES]
        row_sites = [chosen]
    else:
        columns = involved[:MAX_MATRIX_SITES]
        row_sites = columns
    cells = insight.matrix_cells(rows, row_sites, columns)
    summary = i18n.ngettext(
        "%(num)s pair of sites shares subjects of site-hopping flags in this period.",
        "%(num)s pairs of sites share subjects of site-hopping flags in this period.",
        len(pairs),
    )
    picture = Picture("shared", title, summary)
    picture.notes.append(
        i18n.gettext(
            "Each cell counts the distinct boats, vehicles or people that one site-hopping flag "
            "found at both sites; the diagonal counts those found at the site. A count below "
            "%(n)s is shown as “%(shown)s”, so that no number points at a single boat or car.",
            n=insight.SUPPRESS_BELOW,
            shown=suppressed,
        )
    )
    if len(involved) > len(columns):
        picture.notes.append(
            i18n.ngettext(
                "%(num)s more site shares subjects; the CSV holds every site.",
                "%(num)s more sites share subjects; the CSV holds every site.",
                len(involved) - len(columns),
            )
        )
    names = [by_id[s].name for s in columns]
    row_names = [by_id[s].name for s in row_sites]
    picture.table = Table(
        caption=title,
        corner=i18n.gettext("Site"),
        columns=names,
        rows=[
            (row_names[i], [suppressed if v is None else v for v in cells[i]])
            for i in range(len(row_sites))
        ],
    )

    def draw() -> str:
        return charts.matrix(
            title=title,
            rows=row_names,
            columns=names,
            cells=cells,
            suppressed_text=suppressed,
            chart_id="chart-shared",
            labelledby="h-shared caption-shared",
        )

    return picture, draw


def _render_all(draws: list[Callable[[], str] | None]) -> list[str | None]:
    """Every chart's SVG (runs in a worker thread: matplotlib is CPU work)."""
    return [draw() if draw else None for draw in draws]


# --- pages -----------------------------------------------------------------------------------


def _page(
    sites: Sequence[InsightSite],
    form: dict[str, str],
    errors: dict[str, str],
    context: dict[str, Any] | None = None,
) -> Template:
    return Template(
        template_name="admin/insight.html",
        context={"sites": sites, "form": form, "errors": errors, **(context or {})},
        status_code=HTTP_400_BAD_REQUEST if errors else 200,
    )


class InsightController(Controller):
    path = "/insight"

    @get("/", name="admin:insight", opt=VIEW)
    async def pictures(
        self, request: Request[Any, Any, Any], ctx: ContextDep, actor: ActorDep
    ) -> Template:
        sites = await insight.visible_sites(ctx.db, actor)
        form = _form(request.query_params)
        filters, errors = _filters(form, sites, _today(ctx))
        if filters is None:
            return _page(sites, form, errors)
        await insight.record_view(ctx.db, actor, filters, now=ctx.clock.now())
        flags, flags_draw = _flags_picture(
            filters, await insight.flags_per_week(ctx.db, actor, filters)
        )
        arrivals, arrival_draws, arrival_notes = _arrival_pictures(
            filters, await insight.arrivals_by_hour(ctx.db, actor, filters)
        )
        signals, signals_draw = _signals_picture(
            filters, await insight.signals_per_week(ctx.db, actor, filters)
        )
        shared, shared_draw = _shared_picture(
            filters, await insight.shared_subjects(ctx.db, actor, filters)
        )
        every = [flags, *arrivals, signals, shared]
        svgs = await asyncio.to_thread(
            _render_all, [flags_draw, *arrival_draws, signals_draw, shared_draw]
        )
        for picture, svg in zip(every, svgs, strict=True):
            # matplotlib's SVG, re-serialised by charts._inline: every text in it is escaped.
            picture.svg = Markup(svg) if svg else None  # noqa: S704
        form = {
            "site": filters.chosen.slug if filters.chosen else "",
            "from": filters.date_from.isoformat(),
            "to": filters.date_to.isoformat(),
        }
        return _page(
            sites,
            form,
            {},
            {
                "filters": filters,
                "query": _query(filters),
                "flags": flags,
                "arrivals": arrivals,
                "arrival_notes": arrival_notes,
                "arrival_title": i18n.gettext(TITLE_ARRIVALS),
                "signals": signals,
                "shared": shared,
            },
        )

    async def _csv(
        self, chart: str, request: Request[Any, Any, Any], ctx: AppContext, actor: Actor
    ) -> Response[Any]:
        sites = await insight.visible_sites(ctx.db, actor)
        form = _form(request.query_params)
        filters, errors = _filters(form, sites, _today(ctx))
        if filters is None:
            return _page(sites, form, errors)
        data = await insight.export_csv(ctx.db, actor, chart, filters, now=ctx.clock.now())
        filename = insight.csv_filename(chart, filters)
        return download(data, filename)

    @get("/flags.csv", name="admin:insight-flags-csv", opt=VIEW)
    async def flags_csv(
        self, request: Request[Any, Any, Any], ctx: ContextDep, actor: ActorDep
    ) -> Response[Any]:
        return await self._csv("flags", request, ctx, actor)

    @get("/arrivals.csv", name="admin:insight-arrivals-csv", opt=VIEW)
    async def arrivals_csv(
        self, request: Request[Any, Any, Any], ctx: ContextDep, actor: ActorDep
    ) -> Response[Any]:
        return await self._csv("arrivals", request, ctx, actor)

    @get("/signals.csv", name="admin:insight-signals-csv", opt=VIEW)
    async def signals_csv(
        self, request: Request[Any, Any, Any], ctx: ContextDep, actor: ActorDep
    ) -> Response[Any]:
        return await self._csv("signals", request, ctx, actor)

    @get("/shared.csv", name="admin:insight-shared-csv", opt=VIEW)
    async def shared_csv(
        self, request: Request[Any, Any, Any], ctx: ContextDep, actor: ActorDep
    ) -> Response[Any]:
        return await self._csv("shared", request, ctx, actor)


ROUTES = [InsightController]
