"""Per-site branding through HTTP: an admin uploads a logo (PNG or JPEG, checked and
re-encoded; SVG, oversize and non-images refused next to the field) and picks an accent colour
dark enough for white text; the kiosk, the confirmation and the poster carry them."""

from __future__ import annotations

import io
import json
import re

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from PIL import Image
from sqlalchemy import select

from nightreg.db import Database
from nightreg.models import AuditEvent, CheckinPoint, Site
from nightreg.services import branding
from tests.factories import PointRef, make_point
from tests.pages import open_form, signed_in, yacht

Client = AsyncTestClient[Litestar]

SVG = (
    b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
)


def picture(fmt: str = "PNG", size: tuple[int, int] = (300, 100), **save: object) -> bytes:
    image = Image.new("RGB", size, (200, 40, 40))
    out = io.BytesIO()
    image.save(out, fmt, **save)
    return out.getvalue()


async def site_of(db: Database, point: PointRef) -> Site:
    async with db.read() as session:
        site = await session.scalar(select(Site).where(Site.slug == point.site_slug))
    assert site is not None
    return site


async def admin_of(client: Client, db: Database, point: PointRef) -> str:
    site = await site_of(db, point)
    return await signed_in(client, db, "admin", site)


async def upload(
    client: Client,
    csrf: str,
    point: PointRef,
    *,
    logo: tuple[str, bytes, str] | None = None,
    accent: str = "",
    **fields: str,
):  # type: ignore[no-untyped-def]
    files = {"logo": logo} if logo else {"logo": ("", b"", "application/octet-stream")}
    return await client.post(
        f"/admin/sites/{point.site_slug}/branding",
        data={"_csrf_token": csrf, "accent": accent, **fields},
        files=files,
        follow_redirects=False,
    )


def error_of(html: str) -> str:
    match = re.search(r'<p class="error" id="branding-(\w+)-error">([^<]*)</p>', html)
    assert match, "no error next to a field"
    return f"{match.group(1)}: {match.group(2)}"


# --- the logo ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("fmt", "media_type"), [("PNG", "image/png"), ("JPEG", "image/jpeg")])
async def test_a_png_or_jpeg_logo_is_re_encoded_and_served_with_a_long_cache(
    client: Client, db: Database, fmt: str, media_type: str
):
    marina = await make_point(db)
    csrf = await admin_of(client, db, marina)
    sent = picture(fmt, (2400, 800), comment=b"secret camera note") if fmt == "JPEG" else picture()

    answer = await upload(client, csrf, marina, logo=(f"logo.{fmt.lower()}", sent, media_type))

    assert answer.status_code == 303
    assert answer.headers["location"] == f"/admin/sites/{marina.site_slug}?saved=branding#branding"
    site = await site_of(db, marina)
    assert site.logo_version
    served = await client.get(branding.logo_url(site.id, site.logo_version))
    assert served.status_code == 200
    assert served.headers["content-type"] == media_type
    assert served.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert b"secret camera note" not in served.content
    with Image.open(io.BytesIO(served.content)) as kept:
        assert max(kept.size) <= 1200
        assert "comment" not in kept.info
    page = await client.get(answer.headers["location"])
    assert "The branding has been saved." in page.text
    assert f'src="{branding.logo_url(site.id, site.logo_version)}"' in page.text


async def test_an_svg_logo_is_refused_with_a_message_next_to_the_field(
    client: Client, db: Database
):
    marina = await make_point(db)
    csrf = await admin_of(client, db, marina)

    as_svg = await upload(client, csrf, marina, logo=("logo.svg", SVG, "image/svg+xml"))
    disguised = await upload(client, csrf, marina, logo=("logo.png", SVG, "image/png"))

    for answer in (as_svg, disguised):
        assert answer.status_code == 422
        assert error_of(answer.text).startswith("logo: SVG files cannot be used as a logo")
        assert 'aria-invalid="true"' in answer.text
    assert (await site_of(db, marina)).logo_version is None


async def test_a_file_that_is_no_image_is_refused(client: Client, db: Database):
    marina = await make_point(db)
    csrf = await admin_of(client, db, marina)

    answer = await upload(
        client, csrf, marina, logo=("logo.png", b"%PDF-1.4 not a png", "image/png")
    )
    gif = await upload(client, csrf, marina, logo=("logo.gif", picture("GIF"), "image/gif"))

    assert answer.status_code == 422
    assert error_of(answer.text) == (
        "logo: This file is not a PNG or JPEG image. Please choose a PNG or JPEG file."
    )
    assert gif.status_code == 422
    assert (await site_of(db, marina)).logo_version is None


async def test_a_logo_over_two_megabytes_or_too_many_pixels_is_refused(
    client: Client, db: Database
):
    marina = await make_point(db)
    csrf = await admin_of(client, db, marina)
    heavy = picture() + b"\0" * (branding.MAX_LOGO_BYTES)
    huge = picture("PNG", (6000, 10))

    too_big = await upload(client, csrf, marina, logo=("logo.png", heavy, "image/png"))
    too_large = await upload(client, csrf, marina, logo=("logo.png", huge, "image/png"))

    assert too_big.status_code == 422
    assert (
        error_of(too_big.text)
        == "logo: The logo may be at most 2 MB. Please choose a smaller file."
    )
    assert too_large.status_code == 422
    assert "at most 5000 pixels wide and high; this one is 6000 × 10" in too_large.text


async def test_a_logo_can_be_removed_and_its_old_url_is_gone(client: Client, db: Database):
    marina = await make_point(db)
    csrf = await admin_of(client, db, marina)
    await upload(client, csrf, marina, logo=("logo.png", picture(), "image/png"))
    site = await site_of(db, marina)
    old_url = branding.logo_url(site.id, site.logo_version or "")

    answer = await upload(client, csrf, marina, remove_logo="1")

    assert answer.status_code == 303
    assert (await site_of(db, marina)).logo_version is None
    assert (await client.get(old_url)).status_code == 404


# --- the accent colour ------------------------------------------------------------------------


async def test_an_accent_colour_is_saved_normalised_and_audited(client: Client, db: Database):
    marina = await make_point(db)
    csrf = await admin_of(client, db, marina)

    answer = await upload(client, csrf, marina, accent="#1A5FB4")

    assert answer.status_code == 303
    site = await site_of(db, marina)
    assert site.accent_colour == "#1a5fb4"
    async with db.read() as session:
        changed = (
            await session.scalars(
                select(AuditEvent).where(
                    AuditEvent.action == "site_changed", AuditEvent.site_id == site.id
                )
            )
        ).all()
    assert [json.loads(e.details)["changes"] for e in changed] == [
        {"accent_colour": {"before": None, "after": "#1a5fb4"}}
    ]
    css = await client.get(branding.accent_url("#1a5fb4"))
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")
    assert "--accent:#1a5fb4" in css.text
    assert css.headers["cache-control"] == "public, max-age=31536000, immutable"


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("blue", "Please enter a colour as # and six hexadecimal digits, like #1a5fb4."),
        ("#12345g", "Please enter a colour as # and six hexadecimal digits, like #1a5fb4."),
        ("#ffcc00", "White text on this colour is hard to read (contrast 1.5:1"),
    ],
)
async def test_an_accent_that_is_no_colour_or_too_light_is_refused_with_the_input_kept(
    client: Client, db: Database, typed: str, message: str
):
    marina = await make_point(db)
    csrf = await admin_of(client, db, marina)

    answer = await upload(client, csrf, marina, accent=typed)

    assert answer.status_code == 422
    assert error_of(answer.text).startswith(f"accent: {message}")
    assert f'value="{typed}"' in answer.text
    assert (await site_of(db, marina)).accent_colour is None


async def test_a_light_accent_is_offered_a_darker_shade_that_passes(client: Client, db: Database):
    marina = await make_point(db)
    csrf = await admin_of(client, db, marina)

    answer = await upload(client, csrf, marina, accent="#ffcc00")

    suggestion = re.search(r"such as (#[0-9a-f]{6}) works", answer.text)
    assert suggestion
    assert branding.contrast_ratio(suggestion.group(1)) >= 4.5
    assert (await upload(client, csrf, marina, accent=suggestion.group(1))).status_code == 303


async def test_the_accent_stylesheet_is_only_served_for_colours_that_pass(client: Client):
    assert (await client.get("/brand/accent/ffcc00.css")).status_code == 404
    assert (await client.get("/brand/accent/nonsense.css")).status_code == 404


# --- who may ----------------------------------------------------------------------------------


async def test_a_harbour_master_may_not_change_the_branding(client: Client, db: Database):
    marina = await make_point(db)
    csrf = await signed_in(client, db, "harbour_master", await site_of(db, marina))

    answer = await upload(client, csrf, marina, accent="#1a5fb4")
    page = await client.get(f"/admin/sites/{marina.site_slug}")

    assert answer.status_code == 403
    assert "Branding: logo and colour" not in page.text
    assert (await site_of(db, marina)).accent_colour is None


async def test_branding_without_the_csrf_token_is_refused(client: Client, db: Database):
    marina = await make_point(db)
    await admin_of(client, db, marina)

    answer = await client.post(
        f"/admin/sites/{marina.site_slug}/branding",
        data={"accent": "#1a5fb4"},
        files={"logo": ("logo.png", picture(), "image/png")},
        follow_redirects=False,
    )

    assert answer.status_code == 403
    assert (await site_of(db, marina)).accent_colour is None


# --- where it shows ---------------------------------------------------------------------------


async def test_the_kiosk_and_the_confirmation_carry_the_logo_and_the_accent(
    client: Client, db: Database
):
    marina = await make_point(db)
    csrf = await admin_of(client, db, marina)
    await upload(client, csrf, marina, logo=("logo.png", picture(), "image/png"), accent="#1a5fb4")
    site = await site_of(db, marina)
    logo = f'<img class="brand-logo" src="{branding.logo_url(site.id, site.logo_version or "")}"'
    client.cookies.clear()

    start = await client.get(marina.url)
    form = await open_form(client, marina)
    done = await client.post(marina.url, data={**form, **yacht()}, follow_redirects=True)

    for page in (start, done):
        assert page.status_code == 200
        assert logo in page.text
        assert '<link rel="stylesheet" href="/brand/accent/1a5fb4.css">' in page.text
    assert "/k/v/" in str(done.url)


async def test_an_unbranded_kiosk_has_no_logo_and_no_accent_sheet(client: Client, db: Database):
    marina = await make_point(db)

    start = await client.get(marina.url)

    assert "brand-logo" not in start.text
    assert "/brand/accent/" not in start.text


@pytest.mark.parametrize("fmt", ["svg", "png", "pdf"])
async def test_the_poster_carries_the_logo_and_the_accent(client: Client, db: Database, fmt: str):
    marina = await make_point(db)
    csrf = await admin_of(client, db, marina)
    async with db.read() as session:
        point_id = await session.scalar(
            select(CheckinPoint.id).where(CheckinPoint.token == marina.token)
        )
    plain = await client.get(f"/admin/points/{point_id}/poster/{fmt}")
    await upload(client, csrf, marina, logo=("logo.png", picture(), "image/png"), accent="#1a5fb4")

    branded = await client.get(f"/admin/points/{point_id}/poster/{fmt}")

    assert branded.status_code == 200
    assert branded.content != plain.content
    if fmt == "svg":
        assert b'<image class="logo"' in branded.content
        assert b"data:image/png;base64," in branded.content
        assert b'fill="#1a5fb4"' in branded.content
    if fmt == "png":
        with Image.open(io.BytesIO(branded.content)) as image:
            rgb = image.convert("RGB")
            assert rgb.getpixel((10, 10)) == (0x1A, 0x5F, 0xB4)  # the accent band
            # The logo's red, under the band, in the middle of the page.
            assert rgb.getpixel((620, 150))[0] > 150
