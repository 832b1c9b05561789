"""The night round's page: start a round, mark boats seen or not there, add a boat found, finish.

Every action is a plain form post (303 back to the page), so the page works without
JavaScript. The round's script (static/round.js) sends the same forms itself, asking for JSON,
and keeps them on the phone while there is no signal; each mark's idempotency key makes a
repeat harmless.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Response, Template
from litestar.status_codes import HTTP_409_CONFLICT, HTTP_422_UNPROCESSABLE_ENTITY

from admin.forms import error_messages
from admin.register.pages import TIME_FORMAT
from admin.web import ActorDep, ContextDep, Slug
from nightreg.context import AppContext
from nightreg.i18n import N_
from nightreg.models import Site
from nightreg.security import new_idempotency_key
from nightreg.services import rounds
from nightreg.services.access import Actor, NotFound
from nightreg.services.rounds import RoundInvalid
from nightreg.services.sites import site_for
from nightreg.validation import FieldError
from nightreg.vocabulary import ROUND_MARK_LABELS
from nightreg.web import form_int, form_text, see_other

FormBody = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]

WALK = {"permission": rounds.WALK}

NOTICES = {
    "finished": N_("The round is finished and saved."),
    "added": N_("The boat has been added to the register; complete it at the desk."),
}


async def _marina(ctx: AppContext, actor: Actor, slug: str) -> Site:
    """The site, if the actor walks rounds there and it is a marina (a park has no piers)."""
    site = await site_for(ctx.db, actor, slug, rounds.WALK)
    if site.kind != "marina":
        raise NotFound(slug)
    return site


def _wants_json(request: Request[Any, Any, Any]) -> bool:
    """The round's script asks for JSON; a plain form post gets the page."""
    return request.headers.get("accept", "").startswith("application/json")


def _answer_url(site: Site, anchor: str = "", **flags: str) -> str:
    query = "&".join(f"{k}={v}" for k, v in flags.items())
    return f"/admin/sites/{site.slug}/round" + (f"?{query}" if query else "") + anchor


async def _page(
    ctx: AppContext,
    actor: Actor,
    site: Site,
    *,
    notice: str | None = None,
    errors: Mapping[str, FieldError] | None = None,
    found: Mapping[str, str] | None = None,
    status_code: int = 200,
) -> Template:
    """The round being walked (or the start button), and the site's last rounds."""
    now = ctx.clock.now()
    going = await rounds.open_round(ctx.db, actor, site.id, now=now)
    board = await rounds.board(ctx.db, actor, site.id, going.id, now=now) if going else None
    keys = (
        {boat.visit.id: new_idempotency_key() for pier in board.piers for boat in pier.boats}
        if board
        else {}
    )
    context = {
        "site": site,
        "tz": site.timezone,
        "time_format": TIME_FORMAT,
        "board": board,
        "keys": keys,
        "found_key": new_idempotency_key(),
        "found": {name: (found or {}).get(name, "") for name in rounds.FOUND_FIELDS},
        "errors": error_messages(errors or {}),
        "notice": notice,
        "mark_labels": ROUND_MARK_LABELS,
        "recent": await rounds.recent_rounds(ctx.db, actor, site.id),
    }
    return Template(template_name="admin/round.html", context=context, status_code=status_code)


def _refused(invalid: RoundInvalid) -> int:
    """409 when the round or the key no longer fit (the page is stale), else 422."""
    stale = {"round", "idempotency_key"} & invalid.errors.keys()
    return HTTP_409_CONFLICT if stale else HTTP_422_UNPROCESSABLE_ENTITY


def _json(content: dict[str, Any], status_code: int = 200) -> Response[dict[str, Any]]:
    return Response(content=content, status_code=status_code, media_type="application/json")


class RoundController(Controller):
    """One page a marina, under its site: /admin/sites/<slug>/round."""

    path = "/sites/{slug:str}/round"

    @get("/", name="admin:round", opt=WALK)
    async def show(
        self, request: HTMXRequest, ctx: ContextDep, actor: ActorDep, slug: Slug
    ) -> Template:
        site = await _marina(ctx, actor, slug)
        flags = request.query_params
        notice = next((text for flag, text in NOTICES.items() if flags.get(flag) == "1"), None)
        return await _page(ctx, actor, site, notice=notice)

    @post("/start", name="admin:round-start", opt=WALK)
    async def start(
        self, request: HTMXRequest, ctx: ContextDep, actor: ActorDep, slug: Slug
    ) -> Response[Any]:
        """Begin a round (or go on with one's unfinished round)."""
        site = await _marina(ctx, actor, slug)
        try:
            await rounds.start_round(ctx.db, actor, site.id, now=ctx.clock.now())
        except RoundInvalid as invalid:
            return await _page(
                ctx, actor, site, errors=invalid.errors, status_code=_refused(invalid)
            )
        return see_other(request, _answer_url(site))

    @post("/marks", name="admin:round-mark", opt=WALK)
    async def add_mark(
        self, request: HTMXRequest, ctx: ContextDep, actor: ActorDep, slug: Slug, data: FormBody
    ) -> Response[Any]:
        """One tap: seen or not there. JSON for the script, the page again for a form."""
        site = await _marina(ctx, actor, slug)
        visit_id = form_int(form_text(data, "visit", 12))
        try:
            marked = await rounds.mark(
                ctx.db, actor, site.id,
                round_id=form_int(form_text(data, "round", 12)),
                visit_id=visit_id,
                status=form_text(data, "status", 20),
                key=form_text(data, "idempotency_key", 100),
                marked_at=form_text(data, "marked_at", 40),
                now=ctx.clock.now(),
            )  # fmt: skip
        except RoundInvalid as invalid:
            if _wants_json(request):
                return _json({"errors": error_messages(invalid.errors)}, _refused(invalid))
            return await _page(
                ctx, actor, site, errors=invalid.errors, status_code=_refused(invalid)
            )
        if _wants_json(request):
            return _json(_mark_json(marked))
        return see_other(request, _answer_url(site, f"#boat-{marked.mark.visit_id}"))

    @post("/found", name="admin:round-found", opt=WALK)
    async def add_found(
        self, request: HTMXRequest, ctx: ContextDep, actor: ActorDep, slug: Slug, data: FormBody
    ) -> Response[Any]:
        """A boat not in the register: added as a walk-in of source `round`, marked seen."""
        site = await _marina(ctx, actor, slug)
        found = {name: form_text(data, name, 200) for name in rounds.FOUND_FIELDS}
        try:
            marked = await rounds.add_found(
                ctx.db, actor, site.id,
                round_id=form_int(form_text(data, "round", 12)),
                form=found,
                key=form_text(data, "idempotency_key", 100),
                marked_at=form_text(data, "marked_at", 40),
                now=ctx.clock.now(),
                watchlist_key=ctx.settings.watchlist_key,
            )  # fmt: skip
        except RoundInvalid as invalid:
            if _wants_json(request):
                return _json({"errors": error_messages(invalid.errors)}, _refused(invalid))
            return await _page(
                ctx, actor, site, errors=invalid.errors, found=found, status_code=_refused(invalid)
            )
        if _wants_json(request):
            return _json(_mark_json(marked))
        return see_other(request, _answer_url(site, f"#boat-{marked.mark.visit_id}", added="1"))

    @post("/finish", name="admin:round-finish", opt=WALK)
    async def finish(
        self, request: HTMXRequest, ctx: ContextDep, actor: ActorDep, slug: Slug, data: FormBody
    ) -> Response[Any]:
        """End the round; the page then offers the next one and lists this one."""
        site = await _marina(ctx, actor, slug)
        try:
            await rounds.finish_round(
                ctx.db, actor, site.id, form_int(form_text(data, "round", 12)),
                now=ctx.clock.now(), ended_at=form_text(data, "marked_at", 40),
            )  # fmt: skip
        except RoundInvalid as invalid:
            if _wants_json(request):
                return _json({"errors": error_messages(invalid.errors)}, _refused(invalid))
            return await _page(
                ctx, actor, site, errors=invalid.errors, status_code=_refused(invalid)
            )
        url = _answer_url(site, finished="1")
        if _wants_json(request):
            return _json({"finished": True, "url": url})
        return see_other(request, url)


def _mark_json(marked: rounds.Marked) -> dict[str, Any]:
    mark = marked.mark
    return {
        "mark": mark.id,
        "visit": mark.visit_id,
        "status": mark.status,
        "found": mark.found,
        "replayed": marked.replayed,
    }


ROUTES = [RoundController]
