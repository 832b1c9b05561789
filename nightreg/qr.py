"""QR codes: inline SVG for a visitor's private link and printable A4 check-in point posters."""

from __future__ import annotations

import base64
import html
import io
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import qrcode
import qrcode.constants
import qrcode.image.svg
from PIL import Image, ImageDraw, ImageFont

__all__ = ["INSTRUCTIONS", "LEGAL_LINE", "POSTER_FORMATS", "poster", "qr_svg"]

POSTER_FORMATS = ("svg", "png", "pdf")

# Under the QR code, one line each in Dutch, English and German.
INSTRUCTIONS = (
    "Scan de code om in te checken in het nachtregister.",
    "Scan the code to check in to the night register.",
    "Scannen Sie den Code, um sich im Nachtregister anzumelden.",
)
LEGAL_LINE = "Art. 438 Sr — Nachtregister"

# The poster is laid out in pixels of A4 portrait at 150 dpi; the SVG uses the same numbers as its
# viewBox, so both renderers share one layout.
_DPI = 150
_WIDTH, _HEIGHT = 1240, 1754
_MARGIN = 80  # ~13.5 mm, well inside any printer's unprintable edge
_TEXT_WIDTH = _WIDTH - 2 * _MARGIN
_QR_MAX_WIDTH = _WIDTH - 2 * 40  # the quiet zone is white anyway, it may reach into the margin

# Pillow's load_default(size=...) is Aileron with (almost) only ASCII glyphs, so prefer a system
# font that covers accents and dashes; the Aileron and bitmap fallbacks get ASCII-folded text.
_FONT_FILES: dict[bool, tuple[str, ...]] = {
    False: ("DejaVuSans.ttf", "LiberationSans-Regular.ttf", "NotoSans-Regular.ttf", "arial.ttf"),
    True: ("DejaVuSans-Bold.ttf", "LiberationSans-Bold.ttf", "NotoSans-Bold.ttf", "arialbd.ttf"),
}
# (font size, lines) to try in turn: one line in a somewhat smaller size beats two huge lines.
_HEADING_ATTEMPTS = ((96, 1), (84, 1), (72, 1), (96, 2), (84, 2), (72, 2), (60, 2))
_POINT_ATTEMPTS = ((64, 1), (56, 1), (48, 1), (56, 2), (48, 2), (40, 2))
_LOGO_MAX_HEIGHT = 240
_ACCENT_BAND = 28  # the accent colour's band along the top edge, inside the margin
_ACCENT = re.compile(r"^#[0-9a-f]{6}$")
_SVG_FONT_FAMILY = "'DejaVu Sans', 'Liberation Sans', 'Noto Sans', Arial, Helvetica, sans-serif"

_ASCII_REPLACEMENTS = str.maketrans(
    {
        "—": "-",
        "–": "-",
        "‘": "'",
        "’": "'",
        "‚": ",",
        "“": '"',
        "”": '"',
        "„": '"',
        "…": "...",
        "ß": "ss",
        "æ": "ae",
        "Æ": "AE",
        "œ": "oe",
        "Œ": "OE",
        "ø": "o",
        "Ø": "O",
        "ł": "l",
        "Ł": "L",
        "đ": "d",
        "Đ": "D",
        "ı": "i",
        "€": "EUR",
    }
)


def qr_svg(url: str, label: str = "QR code") -> str:
    """Inline ``<svg>`` (no XML declaration) of the QR code for ``url``, scaled by CSS.

    The SVG keeps its viewBox but has no width/height, has a white background (so it still scans
    on a dark page), no element ids (several can share a page) and ``role="img"`` with
    ``aria-label``.
    """
    qr = qrcode.QRCode(
        error_correction=qrcode.constants.ERROR_CORRECT_M,
        border=4,
        image_factory=qrcode.image.svg.SvgPathFillImage,  # SvgPathImage + white background
    )
    qr.add_data(url)
    qr.make(fit=True)
    image = qr.make_image()
    root = image.get_image()
    for attribute in ("width", "height"):
        root.attrib.pop(attribute, None)
    root.set("shape-rendering", "crispEdges")  # no hairline seams between modules when scaled
    for element in root.iter():
        element.attrib.pop("id", None)
    svg: str = image.to_string(encoding="unicode")
    if not svg.startswith("<svg "):  # pragma: no cover - qrcode always writes a bare <svg> root
        raise RuntimeError(f"unexpected SVG from qrcode: {svg[:40]!r}")
    aria_label = html.escape(_clean(label), quote=True)
    return f'<svg role="img" aria-label="{aria_label}" {svg.removeprefix("<svg ")}'


def poster(
    url: str,
    site_name: str,
    point_name: str,
    fmt: str = "png",
    *,
    logo: bytes | None = None,
    accent: str | None = None,
) -> bytes:
    """A printable A4 portrait poster for a check-in point as ``svg``, ``png`` or ``pdf`` bytes.

    Site name as heading, the point name under it, a large QR code of ``url`` (error correction
    Q: posters hang outdoors), the instruction in Dutch, English and German, the URL for those
    who cannot scan and the legal line. PNG and PDF are 1240×1754 px at 150 dpi.

    A branded site's poster has its ``logo`` (PNG or JPEG bytes, as the server re-encoded
    them) above the heading, and its ``accent`` colour ("#1a5fb4") as a band along the top
    and on the heading; the QR code stays black on white, which every camera reads.
    """
    if fmt not in POSTER_FORMATS:
        raise ValueError(
            f"unsupported poster format {fmt!r}: expected one of {', '.join(POSTER_FORMATS)}"
        )
    brand = _Brand(_logo_image(logo), accent if accent and _ACCENT.fullmatch(accent) else None)
    layout = _layout(url, site_name, point_name, brand)
    if fmt == "svg":
        return _render_svg(layout, site_name, point_name, brand)
    image = _render_image(layout, brand)
    buffer = io.BytesIO()
    if fmt == "png":
        image.save(buffer, "PNG", dpi=(_DPI, _DPI))
    else:
        image.save(buffer, "PDF", resolution=_DPI)
    return buffer.getvalue()


# --- layout ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Line:
    text: str  # original text; the raster renderer folds it if its font needs that
    baseline: int
    size: int
    bold: bool = False


@dataclass(frozen=True)
class _Layout:
    lines: tuple[_Line, ...]
    matrix: tuple[tuple[bool, ...], ...]  # includes the 4-module quiet zone
    qr_x: int
    qr_y: int
    box: int  # pixels per module
    logo_box: tuple[int, int, int, int] | None = None  # x, y, width, height


@dataclass(frozen=True)
class _Brand:
    logo: Image.Image | None = None  # RGBA
    accent: str | None = None  # "#rrggbb"

    @property
    def colour(self) -> str:
        return self.accent or "#000000"


def _logo_image(data: bytes | None) -> Image.Image | None:
    """The logo's bytes as an image; None for none (or bytes that are no PNG or JPEG)."""
    if not data:
        return None
    try:
        with Image.open(io.BytesIO(data), formats=("PNG", "JPEG")) as image:
            return image.convert("RGBA")
    except (OSError, ValueError, Image.DecompressionBombError):
        return None


def _logo_box(logo: Image.Image) -> tuple[int, int]:
    """The logo's size on the poster: at most _LOGO_MAX_HEIGHT high and a line wide, and
    never enlarged more than twice (a tiny logo blown up looks worse than a small one)."""
    scale = min(_TEXT_WIDTH / logo.width, _LOGO_MAX_HEIGHT / logo.height, 2.0)
    return max(1, round(logo.width * scale)), max(1, round(logo.height * scale))


def _layout(url: str, site_name: str, point_name: str, brand: _Brand | None = None) -> _Layout:
    lines: list[_Line] = []

    # From the top down: the logo, heading, point name.
    y = _MARGIN
    logo_box = None
    if brand is not None and brand.logo is not None:
        width, height = _logo_box(brand.logo)
        logo_box = ((_WIDTH - width) // 2, y, width, height)
        y += height + 28
    for text, bold, attempts, overflow_lines in (
        (_clean(site_name), True, _HEADING_ATTEMPTS, 3),
        (_clean(point_name), False, _POINT_ATTEMPTS, 2),
    ):
        font, wrapped = _fit(text, bold, attempts, overflow_lines)
        line_height = round(font.size * 1.2)
        for i, line in enumerate(wrapped):
            lines.append(_Line(line, y + font.ascent + i * line_height, font.size, bold))
        y += len(wrapped) * line_height + 12
    qr_top = y + 10

    # From the bottom up: legal line, URL, instructions.
    bottom: list[_Line] = []
    legal = _font(24, bold=False)
    baseline = _HEIGHT - 64
    bottom.append(_Line(LEGAL_LINE, baseline, legal.size))
    baseline -= round(legal.size * 1.2) + 16
    url_font, url_lines = _fit(_clean(url), False, ((30, 1), (26, 1), (24, 1)), 4)
    for line in reversed(url_lines):
        bottom.append(_Line(line, baseline, url_font.size))
        baseline -= round(url_font.size * 1.25)
    baseline -= 24
    instruction_font = _font(30, bold=False)
    for size in (38, 34):  # the largest size at which every language fits on one line
        candidate = _font(size, bold=False)
        if all(candidate.width(text) <= _TEXT_WIDTH for text in INSTRUCTIONS):
            instruction_font = candidate
            break
    instruction_lines = [
        line for text in INSTRUCTIONS for line in _wrap(text, instruction_font, _TEXT_WIDTH)
    ]
    for line in reversed(instruction_lines):
        bottom.append(_Line(line, baseline, instruction_font.size))
        baseline -= round(instruction_font.size * 1.35)
    qr_bottom = baseline + round(instruction_font.size * 1.35) - instruction_font.ascent - 10
    lines.extend(reversed(bottom))

    # The QR code takes what is left in between, in whole pixels per module (crisp edges).
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_Q, border=4)
    qr.add_data(url)
    qr.make(fit=True)
    matrix = tuple(tuple(bool(module) for module in row) for row in qr.get_matrix())
    modules = len(matrix)
    box = max(1, min(_QR_MAX_WIDTH, qr_bottom - qr_top) // modules)
    size = modules * box
    return _Layout(
        lines=tuple(lines),
        matrix=matrix,
        qr_x=(_WIDTH - size) // 2,
        qr_y=qr_top + max(0, (qr_bottom - qr_top - size) // 2),
        box=box,
        logo_box=logo_box,
    )


def _fit(
    text: str, bold: bool, attempts: Sequence[tuple[int, int]], overflow_lines: int
) -> tuple[_Font, list[str]]:
    """The first (size, max lines) in which ``text`` fits; else the last size, clamped."""
    for size, max_lines in attempts:
        font = _font(size, bold)
        lines = _wrap(text, font, _TEXT_WIDTH)
        if len(lines) <= max_lines:
            return font, lines
    return font, _clamp(lines, font, overflow_lines)


def _wrap(text: str, font: _Font, max_width: int) -> list[str]:
    """Greedy word wrap; a word wider than a line (a URL) is broken between characters."""
    lines: list[str] = []
    current = ""
    for word in text.split(" "):
        candidate = f"{current} {word}" if current else word
        if font.width(candidate) <= max_width:
            current = candidate
            continue
        if current:
            lines.append(current)
        while len(word) > 1 and font.width(word) > max_width:
            cut = 1
            while cut < len(word) - 1 and font.width(word[: cut + 1]) <= max_width:
                cut += 1
            lines.append(word[:cut])
            word = word[cut:]
        current = word
    if current or not lines:
        lines.append(current)
    return lines


def _clamp(lines: list[str], font: _Font, max_lines: int) -> list[str]:
    if len(lines) <= max_lines:
        return lines
    ellipsis = "…" if font.unicode else "..."
    last = lines[max_lines - 1]
    while last and font.width(last + ellipsis) > _TEXT_WIDTH:
        last = last[:-1]
    return [*lines[: max_lines - 1], last.rstrip() + ellipsis]


def _clean(text: str) -> str:
    """One line of text that is valid in XML: whitespace collapsed, control characters gone."""
    kept = (
        char
        for char in text
        if char.isspace()
        or (unicodedata.category(char) not in ("Cc", "Cs") and char not in "\ufffe\uffff")
    )
    return " ".join("".join(kept).split())


def _fold(text: str) -> str:
    """ASCII for fonts without accents: 'Café — Hörn' -> 'Cafe - Horn'."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_ASCII_REPLACEMENTS))
    return "".join(
        char if char.isascii() else "?" for char in decomposed if not unicodedata.combining(char)
    )


# --- fonts ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Font:
    face: ImageFont.FreeTypeFont | ImageFont.ImageFont
    size: int
    unicode: bool = True  # False: the face only has ASCII, text is folded first
    scale: int = 1  # > 1: a small bitmap face, drawn small and enlarged

    def text(self, text: str) -> str:
        return text if self.unicode else _fold(text)

    def width(self, text: str) -> float:
        return self.face.getlength(self.text(text)) * self.scale

    @property
    def ascent(self) -> int:
        if isinstance(self.face, ImageFont.FreeTypeFont):
            return self.face.getmetrics()[0]
        return int(self.face.getbbox("A")[3]) * self.scale


@lru_cache(maxsize=2)
def _font_file(bold: bool) -> str | None:
    for name in _FONT_FILES[bold]:
        try:
            face = ImageFont.truetype(name, 12)
        except (OSError, ImportError):  # not installed, or Pillow built without FreeType
            continue
        return str(face.path)
    return None


@lru_cache(maxsize=64)
def _font(size: int, bold: bool) -> _Font:
    path = _font_file(bold)
    if path is not None:
        return _Font(ImageFont.truetype(path, size), size)
    try:
        return _Font(ImageFont.load_default(size=size), size, unicode=False)
    except (OSError, ImportError):  # no FreeType: Pillow's tiny bitmap font, enlarged
        face = ImageFont.load_default_imagefont()
        height = max(1, int(face.getbbox("Ag")[3]))
        return _Font(face, size, unicode=False, scale=max(1, round(size / height)))


# --- renderers ------------------------------------------------------------------------------------


def _render_image(layout: _Layout, brand: _Brand | None = None) -> Image.Image:
    branded = brand is not None and (brand.logo is not None or brand.accent is not None)
    # Grey unless branded: an unbranded poster stays the small file it always was.
    image = Image.new("RGB" if branded else "L", (_WIDTH, _HEIGHT), "white")
    draw = ImageDraw.Draw(image)
    if brand is not None and brand.accent:
        draw.rectangle((0, 0, _WIDTH, _ACCENT_BAND), fill=brand.accent)
    if brand is not None and brand.logo is not None and layout.logo_box is not None:
        x, y, width, height = layout.logo_box
        logo = brand.logo.resize((width, height), Image.Resampling.LANCZOS)
        image.paste(logo, (x, y), logo)
    for line in layout.lines:
        font = _font(line.size, line.bold)
        text = font.text(line.text)
        fill = brand.colour if brand is not None and line.bold and branded else "black"
        if font.scale == 1 and isinstance(font.face, ImageFont.FreeTypeFont):
            draw.text((_WIDTH // 2, line.baseline), text, fill=fill, font=font.face, anchor="ms")
            continue
        _, _, right, bottom = font.face.getbbox(text)
        small = Image.new("L", (max(1, int(right)), max(1, int(bottom))), 255)
        ImageDraw.Draw(small).text((0, 0), text, fill=0, font=font.face)
        big = small.resize((small.width * font.scale, small.height * font.scale))
        image.paste(
            big.convert(image.mode), ((_WIDTH - big.width) // 2, line.baseline - font.ascent)
        )
    modules = len(layout.matrix)
    qr_image = Image.new("L", (modules, modules), 255)
    qr_image.putdata([0 if dark else 255 for row in layout.matrix for dark in row])
    size = modules * layout.box
    qr_image = qr_image.resize((size, size), Image.Resampling.NEAREST)
    image.paste(qr_image.convert(image.mode), (layout.qr_x, layout.qr_y))
    return image


def _render_svg(
    layout: _Layout, site_name: str, point_name: str, brand: _Brand | None = None
) -> bytes:
    def escape(text: str) -> str:
        return html.escape(text, quote=True)

    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="210mm" height="297mm"'
        f' viewBox="0 0 {_WIDTH} {_HEIGHT}">',
        f"<title>{escape(_clean(site_name))} — {escape(_clean(point_name))}</title>",
        f'<rect x="0" y="0" width="{_WIDTH}" height="{_HEIGHT}" fill="#ffffff"/>',
    ]
    heading = "#000000"
    if brand is not None and brand.accent:
        heading = brand.accent
        parts.append(
            f'<rect x="0" y="0" width="{_WIDTH}" height="{_ACCENT_BAND}" fill="{heading}"/>'
        )
    if brand is not None and brand.logo is not None and layout.logo_box is not None:
        x, y, width, height = layout.logo_box
        png = io.BytesIO()
        brand.logo.save(png, "PNG", optimize=True)
        data = base64.b64encode(png.getvalue()).decode("ascii")
        parts.append(
            f'<image class="logo" x="{x}" y="{y}" width="{width}" height="{height}"'
            f' preserveAspectRatio="xMidYMid meet" href="data:image/png;base64,{data}"/>'
        )
    parts.append(
        f'<g fill="#000000" text-anchor="middle" font-family="{escape(_SVG_FONT_FAMILY)}">'
    )
    for line in layout.lines:
        weight = ' font-weight="bold"' if line.bold else ""
        if line.bold and heading != "#000000":
            weight += f' fill="{heading}"'
        parts.append(
            f'<text x="{_WIDTH // 2}" y="{line.baseline}" font-size="{line.size}"{weight}>'
            f"{escape(line.text)}</text>"
        )
    parts.append("</g>")
    box = layout.box
    runs: list[str] = []
    for row_index, row in enumerate(layout.matrix):
        column = 0
        while column < len(row):
            if not row[column]:
                column += 1
                continue
            start = column
            while column < len(row) and row[column]:
                column += 1
            x = layout.qr_x + start * box
            y = layout.qr_y + row_index * box
            width = (column - start) * box
            runs.append(f"M{x} {y}h{width}v{box}h-{width}z")
    parts.append(f'<path fill="#000000" shape-rendering="crispEdges" d="{"".join(runs)}"/>')
    parts.append("</svg>")
    return ("\n".join(parts) + "\n").encode("utf-8")
