"""Charts as SVG for the staff pages: drawn by matplotlib, made fit to sit inside an HTML page.

Pure functions: labels and numbers in, an `<svg>` element as text out. Callers translate every
label first; nothing here reads a request, a clock or the database.

How the SVG is made:

- matplotlib's object-oriented `Figure` API, never pyplot (pyplot keeps global state and is
  not safe in a web server's threads). matplotlib is imported on the first chart, not with
  the app (it costs some 0.6 s). One lock serialises the drawing: matplotlib's font and text
  caches are not made for threads, and the callers run this in a worker thread anyway.
- Text stays text (`svg.fonttype: none`) in DejaVu Sans (it ships with matplotlib, so the
  layout is measured with the font the SVG names), with `sans-serif` as the browser's
  fallback. `text.parse_math` is off: a `$` in a site name is a dollar, not TeX.
- A fixed `svg.hashsalt` and no date in the metadata: the same numbers give the same bytes.
- The page's Content-Security-Policy has `style-src 'self'`, which also blocks the `style`
  attributes and the `<style>` element matplotlib writes: `_inline` turns each style
  declaration into the SVG presentation attribute of the same name (fill, stroke, font-size,
  ...), which CSP does not govern and which draw the same.
- Several charts share one page, so ids get the chart's prefix (and ids nothing refers to are
  dropped); `width`/`height` go, the `viewBox` stays, so CSS scales the chart to its column.
- matplotlib escapes text it writes into SVG, and `_inline` parses and re-serialises the SVG
  with ElementTree, which escapes again on the way out: a site named `<script>` is text.

Colours: the Okabe–Ito palette (distinguishable with every common colour-vision deficiency),
with a hatch per series so that a black-and-white print still tells series apart; counts on
a grid use matplotlib's "Blues" (one hue, lightness rising with the count: readable in
greyscale) in a few discrete steps drawn as vector shapes.
"""

from __future__ import annotations

import io
import math
import re
import textwrap
import threading
import unicodedata
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"

FONT_FAMILY = "DejaVu Sans"
RC: dict[str, Any] = {
    "svg.fonttype": "none",
    "svg.hashsalt": "nightreg",
    "svg.id": None,
    "font.family": [FONT_FAMILY],
    "font.size": 11,
    "axes.titlesize": 12,
    "axes.titleweight": "bold",
    "axes.labelsize": 11,
    "xtick.labelsize": 10,
    "ytick.labelsize": 10,
    "legend.fontsize": 10,
    "legend.title_fontsize": 10,
    "text.color": "#1a1a1a",
    "axes.labelcolor": "#1a1a1a",
    "axes.edgecolor": "#444444",
    "xtick.color": "#333333",
    "ytick.color": "#333333",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": False,
    "hatch.linewidth": 0.6,
    "text.parse_math": False,
    "text.usetex": False,
}

# Okabe & Ito (2008), yellow left out (too light on white); "other" in neutral grey.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000")
HATCHES = ("", "//", "\\\\", "xx", "--", "||", "++")
OTHER_COLOUR = "#9a9a9a"
OUTLINE = "#262626"
SUPPRESSED_COLOUR = "#d9d9d9"
EMPTY_COLOUR = "#ffffff"
GRID_LINE = "#bfbfbf"
# Longer labels are cut in the chart (the table beside it has them whole).
LABEL_CHARS = 28
MATRIX_LABEL_CHARS = 18
# A title wraps after this many characters (a chart's width holds some 46 at 12 pt bold).
TITLE_CHARS = 42
# Size of a chart in inches: narrow enough that a phone shows its text at a readable size
# when the chart is scaled to the screen's width, wide enough for twelve weekly bars.
WIDTH = 4.4

# The SVG presentation attributes matplotlib's style declarations may turn into.
PRESENTATION = frozenset(
    {
        "clip-path", "clip-rule", "color", "fill", "fill-opacity", "fill-rule", "font-family",
        "font-size", "font-style", "font-variant", "font-weight", "letter-spacing", "opacity",
        "stroke", "stroke-dasharray", "stroke-dashoffset", "stroke-linecap", "stroke-linejoin",
        "stroke-miterlimit", "stroke-opacity", "stroke-width", "text-anchor",
        "dominant-baseline", "alignment-baseline", "baseline-shift", "visibility", "display",
        "white-space", "text-decoration",
    }
)  # fmt: skip
_URL_REF = re.compile(r"url\(#([^)]+)\)")
_SPACES = re.compile(r"\s+")
_ID_SAFE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")

_LOCK = threading.Lock()


class ChartError(ValueError):
    """matplotlib wrote something this module does not know how to make CSP-safe."""


def clean(text: str) -> str:
    """Text fit for a chart: no control characters or lone surrogates (XML and the font
    renderer refuse them; a site's name could carry one), whitespace as single spaces."""
    kept = "".join(c if unicodedata.category(c)[0] != "C" else " " for c in text)
    return " ".join(kept.split())


def _cleaned(labels: Sequence[str]) -> tuple[str, ...]:
    return tuple(clean(label) for label in labels)


def short(label: str, limit: int = LABEL_CHARS) -> str:
    """A label cut to `limit` characters with an ellipsis."""
    label = " ".join(label.split())
    return label if len(label) <= limit else label[: limit - 1].rstrip() + "…"


def _new_figure(height: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(WIDTH, height), layout="constrained")


def _title(figure: Figure, title: str) -> None:
    """The chart's title above everything, from the left edge, wrapped to the width."""
    lines = textwrap.wrap(" ".join(title.split()), TITLE_CHARS) or [""]
    figure.suptitle("\n".join(lines), x=0.01, ha="left", fontsize=12, fontweight="bold")


def _svg(figure: Figure, chart_id: str, labelledby: str | None) -> str:
    buffer = io.StringIO()
    figure.savefig(
        buffer,
        format="svg",
        metadata={"Date": None, "Creator": None, "Format": None, "Type": None},
    )
    return _inline(buffer.getvalue(), chart_id, labelledby)


def _draw(draw: Any, *args: Any) -> str:
    """Run a drawing function under the lock with this module's matplotlib settings."""
    import matplotlib

    with _LOCK, matplotlib.rc_context(cast(Any, RC)):
        result: str = draw(*args)
        return result


# --- making matplotlib's SVG fit for a page ------------------------------------------------


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _style_to_attributes(element: ET.Element) -> None:
    style = element.attrib.pop("style", None)
    if not style:
        return
    for declaration in style.split(";"):
        name, colon, value = declaration.partition(":")
        name, value = name.strip(), value.strip()
        if not colon or not name:
            continue
        if name not in PRESENTATION:
            raise ChartError(f"no presentation attribute for style {name!r}")
        if name == "font-family":
            value = f"{value}, sans-serif"
        element.set(name, value)


def _inline(svg: str, chart_id: str, labelledby: str | None) -> str:
    """matplotlib's SVG document as an `<svg>` element for an HTML page (see the docstring)."""
    if not _ID_SAFE.match(chart_id):
        raise ChartError(f"chart id {chart_id!r} is not a plain name")
    root = ET.fromstring(svg)  # noqa: S314 - our own matplotlib output, not user input
    href = f"{{{XLINK_NS}}}href"
    # matplotlib's one stylesheet rule (`*{stroke-linejoin: round; stroke-linecap: butt}`)
    # becomes attributes of the root, which every shape inherits.
    for parent in root.iter():
        for child in list(parent):
            if _local(child.tag) in ("metadata", "style", "title"):
                parent.remove(child)
    referenced: set[str] = set()
    for element in root.iter():
        _style_to_attributes(element)
        for name, value in list(element.attrib.items()):
            referenced.update(_URL_REF.findall(value))
            if name in (href, "href") and value.startswith("#"):
                referenced.add(value[1:])
    for element in root.iter():
        old = element.attrib.pop("id", None)
        if old is not None and old in referenced:
            element.set("id", f"{chart_id}-{old}")
        for name, value in list(element.attrib.items()):
            if "url(#" in value:
                element.set(name, _URL_REF.sub(lambda m: f"url(#{chart_id}-{m.group(1)})", value))
            if name == href:
                del element.attrib[name]
                name = "href"
            if name == "href" and value.startswith("#"):
                element.set("href", f"#{chart_id}-{value[1:]}")
            if name == "d":
                element.set("d", _SPACES.sub(" ", value).strip())
    for name in ("width", "height", "version"):
        root.attrib.pop(name, None)
    kept = dict(root.attrib)
    root.attrib.clear()
    root.set("xmlns", SVG_NS)
    root.attrib.update(kept)
    root.set("id", chart_id)
    root.set("class", "chart")
    root.set("stroke-linejoin", "round")
    root.set("stroke-linecap", "butt")
    root.set("font-family", f"'{FONT_FAMILY}', sans-serif")
    root.set("role", "img")
    if labelledby:
        root.set("aria-labelledby", labelledby)
    # Tags lose their namespace and the root names it as a plain attribute: ElementTree's
    # prefix registry is global, and qrcode registers "svg" in it (<svg:path ...> in a page).
    for element in root.iter():
        element.tag = _local(element.tag)
    text = ET.tostring(root, encoding="unicode")
    # Drop the whitespace between tags that matplotlib indents with (text is in <text>).
    return re.sub(r">\s+<", "><", text)


# --- the charts ----------------------------------------------------------------------------


def _tick_step(count: int, most: int) -> int:
    """Every how-many-th label to write so that at most `most` are written."""
    return max(1, math.ceil(count / most))


def _bounds(largest: int, steps: int = 6) -> list[int]:
    """Class limits for counts 1..largest: at most `steps` classes of whole numbers."""
    from matplotlib.ticker import MaxNLocator

    if largest <= steps:
        return list(range(1, largest + 2))
    ticks = [int(t) for t in MaxNLocator(nbins=steps, integer=True).tick_values(1, largest)]
    bounds = sorted({1, *(t for t in ticks if t > 1)})
    if bounds[-1] <= largest:
        bounds.append(largest + 1)
    return bounds


# Where the classes of "Blues" are taken from: the middle of the scale is left out, since
# neither black nor white figures on it reach a contrast of 4.5:1.
_LIGHT_BLUES = (0.15, 0.62)
_DARK_BLUES = (0.74, 1.0)


def _colours(count: int) -> list[Any]:
    """`count` blues from light to dark, evenly spread over the readable parts of the scale."""
    from matplotlib import colormaps

    blues = colormaps["Blues"]
    light = _LIGHT_BLUES[1] - _LIGHT_BLUES[0]
    span = light + _DARK_BLUES[1] - _DARK_BLUES[0]
    colours = []
    for i in range(count):
        x = span * (i / (count - 1) if count > 1 else 0.5)
        position = _LIGHT_BLUES[0] + x if x <= light else _DARK_BLUES[0] + x - light
        colours.append(blues(position))
    return colours


def contrast(first: Any, second: Any) -> float:
    """The WCAG contrast ratio of two colours (1 to 21)."""
    from matplotlib.colors import to_rgb

    def luminance(colour: Any) -> float:
        r, g, b = (
            c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in to_rgb(colour)
        )
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    light, dark = sorted((luminance(first), luminance(second)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def ink_on(colour: Any) -> str:
    """Black or white, whichever stands out more from `colour`."""
    return max(("#1a1a1a", "#ffffff"), key=lambda ink: contrast(colour, ink))


def _class_of(value: int, bounds: Sequence[int]) -> int:
    for i in range(len(bounds) - 1):
        if value < bounds[i + 1]:
            return i
    return len(bounds) - 2


def _class_legend(
    figure: Figure, ax: Axes, bounds: Sequence[int], colours: Sequence[Any], title: str
) -> None:
    """A legend of the count classes: "0", "1–4", "5–9", ... with their colours."""
    from matplotlib.patches import Patch

    handles = [Patch(facecolor=EMPTY_COLOUR, edgecolor=GRID_LINE, label="0")]
    for i, colour in enumerate(colours):
        low, high = bounds[i], bounds[i + 1] - 1
        label = str(low) if low == high else f"{low}–{high}"
        handles.append(Patch(facecolor=colour, edgecolor=GRID_LINE, label=label))
    figure.legend(
        handles=handles,
        title=title,
        loc="outside lower center",
        ncols=min(len(handles), 4),
        frameon=False,
        handlelength=1.2,
        columnspacing=1.0,
    )


def _draw_weekly_bars(
    title: str,
    xlabel: str,
    ylabel: str,
    weeks: tuple[str, ...],
    series: tuple[tuple[str, tuple[int, ...]], ...],
    other: str | None,
    chart_id: str,
    labelledby: str | None,
) -> str:
    from matplotlib.collections import PolyCollection
    from matplotlib.patches import Patch
    from matplotlib.ticker import MaxNLocator

    rows = 1 + math.ceil(len(series) / 2) * 0.25
    figure = _new_figure(3.4 + rows * 0.3)
    ax = figure.add_subplot()
    positions = list(range(len(weeks)))
    bottom = [0] * len(weeks)
    handles = []
    for i, (label, counts) in enumerate(series):
        is_other = other is not None and i == len(series) - 1
        colour = OTHER_COLOUR if is_other else PALETTE[i % len(PALETTE)]
        hatch = "" if is_other else HATCHES[i % len(HATCHES)]
        # A series' bars as one collection of rectangles: ax.bar makes (and measures) a
        # patch per bar, which cost most of the time of a year of weekly bars.
        bars = [
            [(x - 0.4, b), (x + 0.4, b), (x + 0.4, b + c), (x - 0.4, b + c)]
            for x, b, c in zip(positions, bottom, counts, strict=True)
            if c > 0
        ]
        # A dark outline: light colours (orange, sky blue) stand out from the white ground by
        # more than 3:1, and the hatch (drawn in the outline's colour) survives a grey print.
        style: dict[str, Any] = {"facecolor": colour, "edgecolor": OUTLINE, "hatch": hatch}
        ax.add_collection(PolyCollection(bars, linewidths=0.5, **style), autolim=False)
        handles.append(Patch(label=short(label), linewidth=0.5, **style))
        bottom = [b + c for b, c in zip(bottom, counts, strict=True)]
    step = _tick_step(len(weeks), 8)
    ax.set_xticks(positions[::step], [weeks[p] for p in positions[::step]])
    ax.tick_params(axis="x", labelrotation=0)
    ax.set_xlim(-0.6, len(weeks) - 0.4)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True, nbins=5))
    ax.set_ylim(0, max(1, *bottom) * 1.08)
    ax.grid(axis="y", color="#e0e0e0", linewidth=0.6)
    ax.set_axisbelow(True)
    _title(figure, title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if handles:
        figure.legend(
            handles=handles, loc="outside lower center", ncols=2, frameon=False, handlelength=1.6
        )
    return _svg(figure, chart_id, labelledby)


@lru_cache(maxsize=64)
def _weekly_bars_cached(*args: Any) -> str:
    return _draw(_draw_weekly_bars, *args)


def weekly_bars(
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    weeks: Sequence[str],
    series: Sequence[tuple[str, Sequence[int]]],
    other: str | None = None,
    chart_id: str,
    labelledby: str | None = None,
) -> str:
    """Stacked bars: one bar per week, one coloured (and hatched) part per series.

    `series` is (label, a count per week), largest first; when `other` is set, the last
    series is "everything else" and is drawn in grey.
    """
    frozen = tuple((clean(label), tuple(counts)) for label, counts in series)
    for _label, counts in frozen:
        if len(counts) != len(weeks):
            raise ValueError("each series needs one count per week")
    title, xlabel, ylabel = _cleaned((title, xlabel, ylabel))
    other = clean(other) if other is not None else None
    args = (title, xlabel, ylabel, _cleaned(weeks), frozen, other)
    return str(_weekly_bars_cached(*args, chart_id, labelledby))


def _draw_heat_map(
    title: str,
    xlabel: str,
    ylabel: str,
    legend_title: str,
    rows: tuple[str, ...],
    columns: tuple[str, ...],
    values: tuple[tuple[int, ...], ...],
    column_step: int,
    chart_id: str,
    labelledby: str | None,
) -> str:
    import numpy as np
    from matplotlib.colors import to_rgba

    largest = max((v for row in values for v in row), default=0)
    bounds = _bounds(max(largest, 1))
    colours = _colours(len(bounds) - 1)
    figure = _new_figure(1.2 + 0.3 * len(rows) + 0.6)
    ax = figure.add_subplot()
    rgba = [
        [to_rgba(EMPTY_COLOUR if v <= 0 else colours[_class_of(v, bounds)]) for v in row]
        for row in values
    ]
    # One mesh of cells: a shape per cell would cost a patch (and its bookkeeping) each.
    ax.pcolormesh(np.asarray(rgba), edgecolors=GRID_LINE, linewidth=0.4)
    ax.set_xlim(0, len(columns))
    ax.set_ylim(len(rows), 0)
    ax.set_xticks(
        [c + 0.5 for c in range(0, len(columns), column_step)], list(columns[::column_step])
    )
    ax.set_yticks([r + 0.5 for r in range(len(rows))], [short(r, 16) for r in rows])
    ax.tick_params(length=0)
    for side in ("left", "bottom"):
        ax.spines[side].set_visible(False)
    _title(figure, title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    _class_legend(figure, ax, bounds, colours, legend_title)
    return _svg(figure, chart_id, labelledby)


@lru_cache(maxsize=64)
def _heat_map_cached(*args: Any) -> str:
    return _draw(_draw_heat_map, *args)


def heat_map(
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    legend_title: str,
    rows: Sequence[str],
    columns: Sequence[str],
    values: Sequence[Sequence[int]],
    column_step: int = 1,
    chart_id: str,
    labelledby: str | None = None,
) -> str:
    """A grid of counts (rows × columns) coloured by class of count, with a legend of classes."""
    frozen = tuple(tuple(row) for row in values)
    if len(frozen) != len(rows) or any(len(row) != len(columns) for row in frozen):
        raise ValueError("values must have one row per row label and one value per column")
    words = _cleaned((title, xlabel, ylabel, legend_title))
    args = (*words, _cleaned(rows), _cleaned(columns), frozen)
    return str(_heat_map_cached(*args, column_step, chart_id, labelledby))


def _draw_matrix(
    title: str,
    rows: tuple[str, ...],
    columns: tuple[str, ...],
    cells: tuple[tuple[int | None, ...], ...],
    suppressed_text: str,
    chart_id: str,
    labelledby: str | None,
) -> str:
    import numpy as np
    from matplotlib.colors import to_rgba

    largest = max((v for row in cells for v in row if v is not None), default=0)
    bounds = _bounds(max(largest, 1))
    colours = _colours(len(bounds) - 1)
    label = max((len(short(c, MATRIX_LABEL_CHARS)) for c in columns), default=0)
    figure = _new_figure(max(2.4, 0.8 + 0.4 * len(rows) + 0.07 * label))
    ax = figure.add_subplot()
    rgba: list[list[tuple[float, float, float, float]]] = []
    for r, row in enumerate(cells):
        rgba.append([])
        for c, value in enumerate(row):
            if value is None:
                colour, text, ink = SUPPRESSED_COLOUR, suppressed_text, "#1a1a1a"
            elif value <= 0:
                colour, text, ink = EMPTY_COLOUR, "0", "#595959"
            else:
                colour, text = colours[_class_of(value, bounds)], str(value)
                ink = ink_on(colour)
            rgba[-1].append(to_rgba(colour))
            ax.text(c + 0.5, r + 0.5, text, ha="center", va="center", color=ink, fontsize=10)
    ax.pcolormesh(np.asarray(rgba), edgecolors=GRID_LINE, linewidth=0.6)
    ax.set_xlim(0, len(columns))
    ax.set_ylim(len(rows), 0)
    ax.set_xticks(
        [c + 0.5 for c in range(len(columns))],
        [short(c, MATRIX_LABEL_CHARS) for c in columns],
        rotation=35,
        ha="right",
        rotation_mode="anchor",
    )
    ax.set_yticks([r + 0.5 for r in range(len(rows))], [short(r, MATRIX_LABEL_CHARS) for r in rows])
    ax.tick_params(length=0)
    for side in ("left", "bottom"):
        ax.spines[side].set_visible(False)
    _title(figure, title)
    return _svg(figure, chart_id, labelledby)


@lru_cache(maxsize=64)
def _matrix_cached(*args: Any) -> str:
    return _draw(_draw_matrix, *args)


def matrix(
    *,
    title: str,
    rows: Sequence[str],
    columns: Sequence[str],
    cells: Sequence[Sequence[int | None]],
    suppressed_text: str,
    chart_id: str,
    labelledby: str | None = None,
) -> str:
    """A table of counts as coloured, labelled cells; None is a count too small to show."""
    frozen = tuple(tuple(row) for row in cells)
    if len(frozen) != len(rows) or any(len(row) != len(columns) for row in frozen):
        raise ValueError("cells must have one row per row label and one cell per column")
    args = (clean(title), _cleaned(rows), _cleaned(columns), frozen, clean(suppressed_text))
    return str(_matrix_cached(*args, chart_id, labelledby))
