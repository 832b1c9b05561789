"""QR codes: the visitor's inline SVG and the check-in point posters, decoded by a real reader."""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import pytest
from PIL import Image, ImageDraw, ImageFont

from nightreg import qr
from nightreg.qr import INSTRUCTIONS, LEGAL_LINE, poster, qr_svg

SVG = "{http://www.w3.org/2000/svg}"
POINT_URL = "https://register.example.org/k/" + "Zq3_x-8Jd0Kf" * 3 + "Ab_-9zQ"  # 43 chars
LONG_URL = POINT_URL + "?lang=nl&utm_source=poster&utm_medium=print&point=steiger-b"


def decoded_texts(image: Image.Image) -> list[str]:
    zxingcpp = pytest.importorskip("zxingcpp")
    return [result.text for result in zxingcpp.read_barcodes(image)]


def png(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def svg_texts(root: ET.Element) -> list[str]:
    return [element.text or "" for element in root.iter(f"{SVG}text")]


@pytest.fixture
def fresh_fonts() -> Iterator[None]:
    qr._font.cache_clear()
    qr._font_file.cache_clear()
    yield
    qr._font.cache_clear()
    qr._font_file.cache_clear()


# --- qr_svg ---------------------------------------------------------------------------------------


def test_qr_svg_is_an_inline_svg_that_scales_with_css() -> None:
    svg = qr_svg(POINT_URL)
    assert svg.startswith("<svg ")
    assert "<?xml" not in svg
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    assert root.get("viewBox")
    assert root.get("width") is None
    assert root.get("height") is None
    assert root.get("role") == "img"
    assert root.get("aria-label") == "QR code"


def test_qr_svg_escapes_the_aria_label() -> None:
    label = 'Uw link "<privé>" & meer'
    svg = qr_svg(POINT_URL, label=label)
    assert "&lt;privé&gt;" in svg
    assert "&amp;" in svg
    assert ET.fromstring(svg).get("aria-label") == label


def test_qr_svg_has_no_ids_so_several_can_share_a_page() -> None:
    assert " id=" not in qr_svg(POINT_URL)


def test_qr_svg_path_decodes_to_the_url() -> None:
    svg = qr_svg(POINT_URL)
    root = ET.fromstring(svg)
    _, _, width, _ = (float(part) for part in (root.get("viewBox") or "").split())
    modules = int(width)
    image = Image.new("L", (modules, modules), 255)
    path = root.find(f"{SVG}path")
    assert path is not None
    for x, y in re.findall(r"M([\d.]+),([\d.]+)H", path.get("d") or ""):
        image.putpixel((int(float(x)), int(float(y))), 0)
    big = image.resize((modules * 8, modules * 8), Image.Resampling.NEAREST)
    assert decoded_texts(big) == [POINT_URL]


# --- poster: PNG ----------------------------------------------------------------------------------


def test_png_poster_is_a4_at_150_dpi() -> None:
    image = png(poster(POINT_URL, "Jachthaven De Kaag", "Steiger B"))
    assert image.format == "PNG"
    assert image.size == (1240, 1754)
    assert tuple(round(value) for value in image.info["dpi"]) == (150, 150)


def test_png_poster_decodes_to_the_point_url() -> None:
    image = png(poster(POINT_URL, "Jachthaven De Kaag", "Steiger B"))
    assert decoded_texts(image) == [POINT_URL]


def test_png_poster_decodes_a_url_of_more_than_a_hundred_characters() -> None:
    assert len(LONG_URL) > 100
    image = png(poster(LONG_URL, "Jachthaven De Kaag", "Steiger B"))
    assert decoded_texts(image) == [LONG_URL]


@pytest.mark.parametrize("url", [POINT_URL, LONG_URL])
def test_png_poster_qr_code_is_at_least_twelve_centimetres_wide(url: str) -> None:
    zxingcpp = pytest.importorskip("zxingcpp")
    image = png(poster(url, "Jachthaven De Kaag", "Steiger B"))
    (result,) = zxingcpp.read_barcodes(image)
    width_px = result.position.top_right.x - result.position.top_left.x
    assert width_px / 150 * 2.54 >= 12


def test_png_poster_with_unicode_markup_and_a_very_long_site_name_still_decodes() -> None:
    site = "Stichting Watersportvereniging <De Zuidelijke & Noordelijke> Randmeren — Café 't Hörnje"
    image = png(poster(POINT_URL, site * 2, "Ζ港口 — Steiger ß & <B>\n\t\x00"))
    assert decoded_texts(image) == [POINT_URL]


def test_png_poster_without_system_fonts_uses_pillows_default_font(
    monkeypatch: pytest.MonkeyPatch, fresh_fonts: None
) -> None:
    monkeypatch.setattr(qr, "_FONT_FILES", {False: ("no-such-font.ttf",), True: ()})
    image = png(poster(POINT_URL, "Café 't Hörnje — Ærø", "Steiger ß"))
    assert decoded_texts(image) == [POINT_URL]


def test_png_poster_without_freetype_falls_back_to_the_bitmap_font(
    monkeypatch: pytest.MonkeyPatch, fresh_fonts: None
) -> None:
    def no_freetype(*args: object, **kwargs: object) -> ImageFont.FreeTypeFont:
        raise ImportError("The _imagingft C module is not installed")

    monkeypatch.setattr(ImageFont, "truetype", no_freetype)
    monkeypatch.setattr(ImageFont, "load_default", no_freetype)
    image = png(poster(POINT_URL, "Café 't Hörnje — Ærø", "Steiger ß <B>"))
    assert image.size == (1240, 1754)
    assert decoded_texts(image) == [POINT_URL]


# --- poster: PDF ----------------------------------------------------------------------------------


def test_pdf_poster_is_an_a4_pdf() -> None:
    data = poster(POINT_URL, "Jachthaven De Kaag", "Steiger B", fmt="pdf")
    assert data.startswith(b"%PDF")
    match = re.search(rb"/MediaBox \[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", data)
    assert match is not None
    width_pt, height_pt = float(match[1]), float(match[2])
    assert width_pt == pytest.approx(595.3, abs=1)  # 210 mm
    assert height_pt == pytest.approx(841.9, abs=1)  # 297 mm


# --- poster: SVG ----------------------------------------------------------------------------------


def test_svg_poster_is_an_a4_document_with_all_the_texts() -> None:
    data = poster(POINT_URL, "Jachthaven De Kaag", "Steiger B", fmt="svg")
    root = ET.fromstring(data)
    assert root.tag == f"{SVG}svg"
    assert (root.get("width"), root.get("height")) == ("210mm", "297mm")
    assert root.get("viewBox") == "0 0 1240 1754"
    texts = svg_texts(root)
    assert texts[:2] == ["Jachthaven De Kaag", "Steiger B"]
    for instruction in INSTRUCTIONS:
        assert instruction in texts
    assert LEGAL_LINE in texts
    assert POINT_URL in "".join(texts)


def test_svg_poster_escapes_markup_in_the_names() -> None:
    data = poster(POINT_URL, "Haven <&> Co", "Steiger \"B\" & 'C'", fmt="svg")
    assert b"Haven &lt;&amp;&gt; Co" in data
    texts = svg_texts(ET.fromstring(data))
    assert "Haven <&> Co" in texts
    assert "Steiger \"B\" & 'C'" in texts


def test_svg_poster_drops_characters_that_are_not_allowed_in_xml() -> None:
    data = poster(POINT_URL, "Haven\x00\x1b de\nKaag\ufffe", "Steiger\tB", fmt="svg")
    texts = svg_texts(ET.fromstring(data))
    assert texts[:2] == ["Haven de Kaag", "Steiger B"]


def test_svg_poster_qr_path_decodes_to_the_point_url() -> None:
    root = ET.fromstring(poster(LONG_URL, "Jachthaven De Kaag", "Steiger B", fmt="svg"))
    image = Image.new("L", (1240, 1754), 255)
    draw = ImageDraw.Draw(image)
    path = root.find(f"{SVG}path")
    assert path is not None
    runs = re.findall(r"M(\d+) (\d+)h(\d+)v(\d+)h-\d+z", path.get("d") or "")
    assert runs
    for x, y, width, height in ((int(value) for value in run) for run in runs):
        draw.rectangle((x, y, x + width - 1, y + height - 1), fill=0)
    assert decoded_texts(image) == [LONG_URL]


# --- poster: formats ------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["jpeg", "PNG", "", "svgz"])
def test_unknown_poster_format_raises_value_error(fmt: str) -> None:
    with pytest.raises(ValueError, match="unsupported poster format"):
        poster(POINT_URL, "Jachthaven De Kaag", "Steiger B", fmt=fmt)
