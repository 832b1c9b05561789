"""Branding's pure parts: the logo checked and drawn again, the accent colour's contrast, the
subject a flag's signal shared, and the poster with a logo and an accent."""

from __future__ import annotations

import io
import json
import struct
import zlib

import pytest
from PIL import Image

from nightreg.qr import poster
from nightreg.services import branding
from nightreg.services.branding import BrandingInvalid, clean_logo, normalise_accent
from nightreg.services.flags import _shared_subject


def picture(
    fmt: str = "PNG", size: tuple[int, int] = (300, 100), mode: str = "RGB", **save: object
) -> bytes:
    image = Image.new(mode, size, (200, 40, 40, 128)[: len(mode)] if mode != "L" else 100)
    out = io.BytesIO()
    image.save(out, fmt, **save)
    return out.getvalue()


def refusal(data: bytes, **kwargs: str) -> str:
    with pytest.raises(BrandingInvalid) as refused:
        clean_logo(data, **kwargs)
    return refused.value.errors["logo"].message


def test_a_png_stays_a_png_with_its_transparency_and_without_its_text_chunks():
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "someone private")
    logo = clean_logo(picture("PNG", (300, 100), "RGBA", pnginfo=info))

    assert logo.media_type == "image/png"
    assert b"someone private" not in logo.data
    with Image.open(io.BytesIO(logo.data)) as image:
        assert image.mode == "RGBA"
        assert "Author" not in image.info


def test_a_jpeg_stays_a_jpeg_without_its_exif_and_turned_upright():
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: turned 90 degrees
    exif[0x010F] = "Camera Maker"
    logo = clean_logo(picture("JPEG", (300, 100), exif=exif.tobytes()))

    assert logo.media_type == "image/jpeg"
    assert b"Camera Maker" not in logo.data
    with Image.open(io.BytesIO(logo.data)) as image:
        assert image.size == (100, 300)
        assert not image.getexif()


def test_a_large_logo_is_scaled_to_fit_and_its_version_is_its_hash():
    logo = clean_logo(picture("PNG", (4000, 1000)))

    assert (logo.width, logo.height) == (1200, 300)
    assert logo.version == clean_logo(picture("PNG", (4000, 1000))).version
    assert len(logo.version) == 16


@pytest.mark.parametrize(
    ("data", "kwargs", "message"),
    [
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", {}, branding.MSG_SVG),
        (b"\xef\xbb\xbf  <?xml version='1.0'?>\n<svg/>", {}, branding.MSG_SVG),
        (picture(), {"filename": "logo.SVG"}, branding.MSG_SVG),
        (picture(), {"content_type": "image/svg+xml"}, branding.MSG_SVG),
        (b"GIF89a....", {}, branding.MSG_NO_IMAGE),
        (picture("GIF"), {}, branding.MSG_NO_IMAGE),
        (picture("BMP"), {}, branding.MSG_NO_IMAGE),
        (picture()[:60], {}, branding.MSG_NO_IMAGE),  # cut off halfway
        (b"", {}, branding.MSG_NO_IMAGE),
        (picture("PNG", (8, 8)), {}, branding.MSG_TOO_SMALL),
        (picture("PNG", (5001, 20)), {}, branding.MSG_TOO_LARGE),
        (b"\x89PNG" + b"\0" * branding.MAX_LOGO_BYTES, {}, branding.MSG_TOO_BIG),
    ],
)
def test_what_is_no_usable_png_or_jpeg_is_refused_with_its_reason(
    data: bytes, kwargs: dict[str, str], message: str
):
    assert refusal(data, **kwargs) == message


def test_a_decompression_bomb_is_refused_by_its_header_before_it_is_decoded():
    # A small PNG whose header claims 50000 x 50000 pixels (2.5 gigapixels).
    small = picture("PNG", (20, 20), "L")
    ihdr = struct.pack(">IIBBBBB", 50000, 50000, 8, 0, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    bomb = small[:8] + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk))
    bomb += small[33:]

    assert refusal(bomb) == branding.MSG_TOO_MANY_PIXELS


@pytest.mark.parametrize(
    ("typed", "kept"),
    [("#1A5FB4", "#1a5fb4"), ("1a5fb4", "#1a5fb4"), ("#15b", "#1155bb"), ("  ", None), ("", None)],
)
def test_an_accent_is_normalised(typed: str, kept: str | None):
    assert normalise_accent(typed) == kept


@pytest.mark.parametrize("typed", ["blue", "#12345", "#1234567", "#ggg", "rgb(0,0,0)"])
def test_what_is_no_hex_colour_is_refused(typed: str):
    with pytest.raises(BrandingInvalid) as refused:
        normalise_accent(typed)
    assert refused.value.errors["accent"].message == branding.MSG_COLOUR


def test_a_colour_too_light_for_white_text_is_refused_with_a_darker_shade_that_passes():
    with pytest.raises(BrandingInvalid) as refused:
        normalise_accent("#77aadd")
    params = refused.value.errors["accent"].params
    assert float(params["ratio"]) < 4.5
    assert branding.contrast_ratio(params["suggestion"]) >= 4.5
    assert normalise_accent(params["suggestion"]) == params["suggestion"]


def test_the_contrast_ratio_is_wcags():
    assert branding.contrast_ratio("#000000") == pytest.approx(21.0)
    assert branding.contrast_ratio("#ffffff") == pytest.approx(1.0)
    assert branding.contrast_ratio("#767676") == pytest.approx(4.54, abs=0.01)
    assert branding.contrast_ratio(branding.DEFAULT_ACCENT) >= 4.5


def test_the_accent_stylesheet_outranks_the_house_tokens():
    assert branding.accent_css("#1a5fb4").startswith("html:root{--accent:#1a5fb4;")


def test_a_signal_names_only_the_shared_identifiers_of_its_latest_visit():
    body = json.dumps(
        {
            "visits": [
                {"arrived_at": "2026-07-01T10:00:00Z", "vessel_name": "Oud"},
                {"arrived_at": "2026-07-10T10:00:00Z", "vessel_name": "Nieuw", "mmsi": "244123456"},
            ]
        }
    )
    subject = _shared_subject(body)
    assert (subject.name, subject.identifier) == ("Nieuw", "244123456")
    assert _shared_subject(json.dumps({"visits": [{"plate": "12-ABC-3"}]})).identifier == "12-ABC-3"
    assert not _shared_subject(json.dumps({"visits": [{"persons": 2}]})).known
    assert not _shared_subject("{not json").known
    assert not _shared_subject(json.dumps({"rule": "x"})).known


def test_an_unbranded_poster_is_what_it_always_was():
    plain = poster("https://x.test/k/abc", "Haven", "Steiger", "png")
    assert plain == poster("https://x.test/k/abc", "Haven", "Steiger", "png", logo=None)
    with Image.open(io.BytesIO(plain)) as image:
        assert image.mode == "L"


def test_a_branded_poster_draws_the_band_the_logo_and_a_coloured_heading():
    logo = clean_logo(picture("PNG", (600, 200))).data
    png = poster("https://x.test/k/abc", "Haven", "Steiger", "png", logo=logo, accent="#1a5fb4")
    svg = poster("https://x.test/k/abc", "Haven", "Steiger", "svg", logo=logo, accent="#1a5fb4")

    with Image.open(io.BytesIO(png)) as image:
        assert image.getpixel((5, 5)) == (0x1A, 0x5F, 0xB4)
        assert image.getpixel((620, 200))[0] == 200  # the logo's red
    assert b'<image class="logo"' in svg
    assert b'font-weight="bold" fill="#1a5fb4"' in svg


def test_a_poster_ignores_a_logo_that_is_no_image_and_an_accent_that_is_no_colour():
    plain = poster("https://x.test/k/abc", "Haven", "Steiger", "svg")
    odd = poster("https://x.test/k/abc", "Haven", "Steiger", "svg", logo=b"junk", accent="red")
    assert odd == plain
