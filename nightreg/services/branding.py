"""Per-site branding: a logo and an accent colour for the kiosk, the confirmation and the poster.

A logo is checked and drawn again by the server (Pillow): PNG or JPEG in, at most
MAX_LOGO_BYTES and MAX_INPUT_SIDE pixels a side, scaled to fit OUT_MAX_SIZE, written out as a
new PNG or JPEG without any metadata (EXIF, comments, colour profiles, text chunks). SVG is
refused: it is a document that may carry script and links, not a picture. The re-encoded
bytes live in the database (`site_logo`), so that every instance serves them and a backup
holds them; their hash is the logo's version, and its URL names the version, so a browser may
keep it for a year.

An accent colour is a hex colour dark enough for white text on it (WCAG AA, 4.5:1): buttons
and the kiosk's bar are white on the accent. A lighter one is refused, with a darker shade of
it offered.
"""

from __future__ import annotations

import colorsys
import hashlib
import io
import re
import warnings
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from PIL import Image, ImageOps, UnidentifiedImageError
from sqlalchemy import select

from nightreg.db import Database
from nightreg.i18n import N_
from nightreg.models import Site, SiteLogo
from nightreg.services.access import Actor, NotFound
from nightreg.services.sites import forget_cached_points, record_site_changes
from nightreg.validation import FieldError, Invalid

MANAGE = "sites.manage"

MAX_LOGO_BYTES = 2 * 1024 * 1024
MAX_INPUT_SIDE = 5000  # pixels a side of an upload; more is refused before it is decoded
MIN_INPUT_SIDE = 16
OUT_MAX_SIZE = (1200, 400)  # a logo is wide rather than tall; the poster draws it 240 high
JPEG_QUALITY = 88
MIN_CONTRAST = 4.5  # WCAG 2.x AA for normal text: white text on the accent
WHITE = "#ffffff"

# What a browser or the kiosk shows without branding (nightreg/static/app.css).
DEFAULT_ACCENT = "#0b3d5c"

MSG_NO_IMAGE = N_("This file is not a PNG or JPEG image. Please choose a PNG or JPEG file.")
MSG_SVG = N_(
    "SVG files cannot be used as a logo, because they can carry scripts and links. "
    "Please save the logo as PNG (or JPEG) and upload that."
)
MSG_TOO_BIG = N_("The logo may be at most %(mb)s MB. Please choose a smaller file.")
MSG_TOO_LARGE = N_(
    "The logo may be at most %(max)s pixels wide and high; this one is %(width)s × %(height)s."
)
MSG_TOO_MANY_PIXELS = N_("The logo may be at most %(max)s pixels wide and high.")
MSG_TOO_SMALL = N_("The logo must be at least %(min)s pixels wide and high.")
MSG_COLOUR = N_("Please enter a colour as # and six hexadecimal digits, like #1a5fb4.")
MSG_CONTRAST = N_(
    "White text on this colour is hard to read (contrast %(ratio)s:1, at least 4.5:1 is "
    "needed). A darker shade such as %(suggestion)s works."
)

_HEX = re.compile(r"^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")
_FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg"}


class BrandingInvalid(Invalid):
    """A logo or colour that cannot be used: errors by field name ("logo", "accent")."""


@dataclass(frozen=True)
class CleanLogo:
    """A logo as the server drew it again: the bytes to keep and serve."""

    data: bytes
    media_type: str
    width: int
    height: int

    @property
    def version(self) -> str:
        return hashlib.sha256(self.data).hexdigest()[:16]


# --- the logo ---------------------------------------------------------------------------------


def _looks_like_svg(data: bytes, filename: str, content_type: str) -> bool:
    head = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return (
        filename.lower().endswith((".svg", ".svgz"))
        or "svg" in content_type.lower()
        or head.startswith(b"<svg")
        or (head.startswith(b"<?xml") and b"<svg" in data[:4096].lower())
    )


def clean_logo(data: bytes, *, filename: str = "", content_type: str = "") -> CleanLogo:
    """The upload checked and drawn again, or BrandingInvalid on "logo" saying why not."""

    def refuse(message: str, **params: Any) -> BrandingInvalid:
        return BrandingInvalid({"logo": FieldError(message, params)})

    if len(data) > MAX_LOGO_BYTES:
        raise refuse(MSG_TOO_BIG, mb=MAX_LOGO_BYTES // (1024 * 1024))
    if _looks_like_svg(data, filename, content_type):
        raise refuse(MSG_SVG)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            source = Image.open(io.BytesIO(data), formats=tuple(_FORMATS))
            width, height = source.size
            if max(width, height) > MAX_INPUT_SIDE:
                raise refuse(MSG_TOO_LARGE, max=MAX_INPUT_SIDE, width=width, height=height)
            if min(width, height) < MIN_INPUT_SIDE:
                raise refuse(MSG_TOO_SMALL, min=MIN_INPUT_SIDE)
            fmt = str(source.format)
            source.load()
    except BrandingInvalid:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        # A header that claims more pixels than any logo has: not decoded at all.
        raise refuse(MSG_TOO_MANY_PIXELS, max=MAX_INPUT_SIDE) from None
    except (
        UnidentifiedImageError,
        OSError,
        SyntaxError,
        ValueError,
    ):
        raise refuse(MSG_NO_IMAGE) from None
    return _redraw(source, fmt)


def _redraw(source: Image.Image, fmt: str) -> CleanLogo:
    """A new image of the pixels alone: turned upright, scaled to fit, no metadata."""
    image = ImageOps.exif_transpose(source)
    keeps_alpha = fmt == "PNG" and (
        image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    )
    image = image.convert("RGBA" if keeps_alpha else "RGB")
    image.thumbnail(OUT_MAX_SIZE, Image.Resampling.LANCZOS)
    # A fresh image: nothing of the upload's info (EXIF, ICC, text, comments) comes along.
    clean = Image.new(image.mode, image.size)
    clean.paste(image)
    out = io.BytesIO()
    if fmt == "PNG":
        clean.save(out, "PNG", optimize=True)
    else:
        clean.save(out, "JPEG", quality=JPEG_QUALITY, optimize=True)
    return CleanLogo(out.getvalue(), _FORMATS[fmt], clean.width, clean.height)


# --- the accent colour ------------------------------------------------------------------------


def _rgb(colour: str) -> tuple[int, int, int]:
    digits = colour.lstrip("#")
    return int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16)


def _hex(rgb: tuple[float, float, float]) -> str:
    return "#" + "".join(f"{max(0, min(255, round(c))):02x}" for c in rgb)


def _luminance(colour: str) -> float:
    """WCAG 2.x relative luminance of an sRGB colour."""

    def linear(channel: int) -> float:
        c = channel / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(c) for c in _rgb(colour))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(first: str, second: str = WHITE) -> float:
    """WCAG contrast ratio of two "#rrggbb" colours, from 1 to 21."""
    lighter, darker = sorted((_luminance(first), _luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def darker_shade(colour: str, minimum: float = MIN_CONTRAST) -> str:
    """The same hue made just dark enough to carry white text."""
    h, lightness, s = colorsys.rgb_to_hls(*(c / 255 for c in _rgb(colour)))
    while lightness > 0:
        lightness = max(0.0, lightness - 0.01)
        r, g, b = colorsys.hls_to_rgb(h, lightness, s)
        candidate = _hex((r * 255, g * 255, b * 255))
        if contrast_ratio(candidate) >= minimum:
            return candidate
    return "#000000"


def normalise_accent(text: str) -> str | None:
    """ "#1A5FB4", "1a5fb4" or "#15b" as "#1a5fb4"; empty means none (the house colour).

    BrandingInvalid on "accent" for what is no colour, or too light for white text.
    """
    value = (text or "").strip()
    if not value:
        return None
    match = _HEX.fullmatch(value)
    if match is None:
        raise BrandingInvalid({"accent": FieldError(MSG_COLOUR)})
    digits = match.group(1).lower()
    if len(digits) == 3:
        digits = "".join(c * 2 for c in digits)
    colour = f"#{digits}"
    ratio = contrast_ratio(colour)
    if ratio < MIN_CONTRAST:
        raise BrandingInvalid(
            {
                "accent": FieldError(
                    MSG_CONTRAST,
                    {"ratio": f"{int(ratio * 10) / 10:.1f}", "suggestion": darker_shade(colour)},
                )
            }
        )
    return colour


def accent_css(colour: str) -> str:
    """The stylesheet a branded page links: the accent as custom properties."""
    hover = darker_shade(colour, min(21.0, contrast_ratio(colour) * 1.25))
    # html:root outranks the house stylesheet's own :root tokens, whichever comes last.
    return f"html:root{{--accent:{colour};--accent-strong:{hover};--on-accent:#ffffff}}\n"


# --- URLs -------------------------------------------------------------------------------------


def logo_url(site_id: int, version: str) -> str:
    """Where the logo is served; a new logo has a new URL (cached for a year)."""
    return f"/brand/logo/{site_id}/{version}"


def accent_url(colour: str) -> str:
    """The stylesheet that sets --accent; its name is the colour, so it never changes."""
    return f"/brand/accent/{colour.lstrip('#')}.css"


@dataclass(frozen=True)
class Brand:
    """What a page needs to carry a site's branding: its stylesheet and its logo, if any."""

    accent_href: str | None
    logo_src: str | None


def brand_of(holder: object) -> Brand | None:
    """The branding of a kiosk point (PointInfo) or a site (Site), for the templates."""
    if isinstance(holder, Site):
        site_id, accent, version = holder.id, holder.accent_colour, holder.logo_version
    elif hasattr(holder, "site_accent") and hasattr(holder, "site_id"):
        site_id = holder.site_id
        accent, version = holder.site_accent, getattr(holder, "site_logo_version", None)
    else:
        return None
    if not accent and not version:
        return None
    return Brand(
        accent_href=accent_url(accent) if accent else None,
        logo_src=logo_url(site_id, version) if version else None,
    )


# --- the site's settings ----------------------------------------------------------------------


async def change_branding(
    db: Database,
    actor: Actor,
    slug: str,
    *,
    accent: str,
    logo: CleanLogo | None = None,
    remove_logo: bool = False,
    now: datetime,
) -> dict[str, Any]:
    """Set a site's accent colour and logo (or remove the logo); audited as a site change.

    Returns the changes ({} when nothing changed). The colour is checked here as well, so
    that every caller gets the same refusal.
    """
    actor.require(MANAGE)
    colour = normalise_accent(accent)
    async with db.write() as session:
        site = await session.scalar(select(Site).where(Site.slug == slug))
        if site is None:
            raise NotFound(slug)
        changes: dict[str, Any] = {}
        if site.accent_colour != colour:
            changes["accent_colour"] = {"before": site.accent_colour, "after": colour}
            site.accent_colour = colour
        stored = await session.get(SiteLogo, site.id)
        if logo is not None and (stored is None or stored.version != logo.version):
            if stored is None:
                stored = SiteLogo(site_id=site.id)
                session.add(stored)
            stored.media_type, stored.data = logo.media_type, logo.data
            stored.width, stored.height = logo.width, logo.height
            stored.version, stored.updated_at = logo.version, now
            changes["logo"] = {"before": site.logo_version, "after": logo.version}
            site.logo_version = logo.version
        elif logo is None and remove_logo and stored is not None:
            await session.delete(stored)
            changes["logo"] = {"before": site.logo_version, "after": None}
            site.logo_version = None
        await record_site_changes(session, actor, site, changes, now=now)
    # The kiosk keeps points (with their site's branding) for a moment: show the change now.
    forget_cached_points()
    return changes


async def logo_of(db: Database, site_id: int) -> SiteLogo | None:
    """A site's logo (its bytes), or None."""
    async with db.read() as session:
        return await session.get(SiteLogo, site_id)
