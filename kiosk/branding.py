"""A site's logo and accent stylesheet, for the kiosk, the confirmation and staff previews.

Both are public (a poster on a pier shows the logo anyway) and named by their version: a
new logo or colour has a new URL, so each answer may be cached for a year.
"""

from __future__ import annotations

import re

from litestar import Controller, Response, get
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath

from nightreg.context import AppContext
from nightreg.services import branding

# A year, and never revalidated: the URL changes when the content does.
CACHE_FOREVER = {"Cache-Control": "public, max-age=31536000, immutable"}
_ACCENT_FILE = re.compile(r"^([0-9a-f]{6})\.css$")
_VERSION = re.compile(r"^[0-9a-f]{16}$")


class BrandingController(Controller):
    path = "/brand"

    @get("/logo/{site_id:int}/{version:str}", name="brand:logo")
    async def logo(
        self, ctx: NamedDependency[AppContext], site_id: FromPath[int], version: FromPath[str]
    ) -> Response[bytes]:
        """The logo as the server re-encoded it; an old version is gone (404)."""
        if not _VERSION.fullmatch(version) or not 0 < site_id < 2**31:
            raise NotFoundException()
        logo = await branding.logo_of(ctx.db, site_id)
        if logo is None or logo.version != version:
            raise NotFoundException()
        return Response(content=logo.data, media_type=logo.media_type, headers=CACHE_FOREVER)

    @get("/accent/{name:str}", name="brand:accent")
    async def accent(self, name: FromPath[str]) -> Response[str]:
        """`:root{--accent:…}` for a colour dark enough for white text, else 404."""
        match = _ACCENT_FILE.fullmatch(name)
        if match is None:
            raise NotFoundException()
        colour = f"#{match.group(1)}"
        try:
            branding.normalise_accent(colour)
        except branding.BrandingInvalid:
            raise NotFoundException() from None
        return Response(
            content=branding.accent_css(colour), media_type="text/css", headers=CACHE_FOREVER
        )
