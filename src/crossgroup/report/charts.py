"""Charts for the analyst report, written directly as inline SVG strings from the report's data.

The page must open offline and stay one file, so every chart is vector markup inside the HTML:
no images to fetch, no JavaScript, no plotting library (whose import alone cost more than the
rest of an import's report). Each chart is a `<svg role="img">` with a `<title>` and a `<desc>`
(the plain-words alternative); every bar and cell carries its value as text and its own
`<title>`, and the two series differ by pattern as well as colour, so nothing is said by colour
alone. All text is escaped here; coordinates are rounded to fixed decimals, so the same data
always gives the same bytes; every element id is prefixed per chart, so several SVGs can share
one document.
"""

from __future__ import annotations

import html
import math
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
SERIES_COLORS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00")
INK = "#1f2328"
MUTED = "#57606a"
GRID = "#d0d7de"
SUPPRESSED_FILL = "#eef0f2"
# A single-hue sequential ramp (light to deep blue): order is readable without colour names.
HEAT_RAMP = ((0xF3, 0xF7, 0xFB), (0x9E, 0xCA, 0xE1), (0x08, 0x30, 0x6B))
SUPPRESSED = "suppressed"  # the report's word for a bar whose cell is below k_aggregate
NOT_AVAILABLE = "n/a"  # and for such a heat-map cell (both are explained in the suppression box)

FONT = 13.0  # user units; the viewBox scales with the panel, as the page's text does
SMALL = 11.5
CHAR_W = 0.58  # average glyph width in em, to size label margins without font metrics
LINE = 1.2


@dataclass(frozen=True)
class Chart:
    """One chart: its inline SVG markup and the plain-words text alternative."""

    chart_id: str
    title: str
    alt: str
    svg: str


def bar_chart(
    chart_id: str,
    categories: Sequence[str],
    series: dict[str, Sequence[float | None]],
    *,
    title: str,
    alt: str,
    value_label: str = "Share of customers",
    percent: bool = True,
    width: float = 6.0,
) -> Chart:
    """Horizontal grouped bars, one group per category; a None value is drawn as 'suppressed'.

    `width` is the chart's nominal width in inches (as before: 6 for a half panel, 8 for a wide
    one); at 80 units per inch it sets the viewBox, so text keeps its size relative to the bars.
    """
    n_cat, n_ser = len(categories), max(len(series), 1)
    total_w = round(width * 80)
    wrapped = [_wrap(c, 24) for c in categories]
    longest = max((len(line) for lines in wrapped for line in lines), default=0)
    left = min(total_w * 0.4, 12 + longest * CHAR_W * FONT)
    right = 16.0
    bar_h, bar_gap, group_gap = 16.0, 3.0, 14.0
    group_h = n_ser * bar_h + (n_ser - 1) * bar_gap
    group_h = max(group_h, max((len(w) for w in wrapped), default=1) * FONT * LINE)
    legend_h = 28.0 if len(series) > 1 else 6.0
    top = legend_h + 6
    plot_h = n_cat * (group_h + group_gap) + group_gap * 0.5
    axis_h = 48.0
    total_h = top + plot_h + axis_h
    plot_w = total_w - left - right

    finite = [v for vals in series.values() for v in vals if _is_number(v)]
    vmax = max(finite, default=0.0) or 1.0
    ticks, span = _ticks(vmax * 1.18)
    scale = plot_w / span

    out: list[str] = []
    defs = _patterns(chart_id, n_ser)
    if defs:
        out.append(f"<defs>{defs}</defs>")
    # grid and tick labels
    axis_y = top + plot_h
    for t in ticks:
        x = left + t * scale
        out.append(_line(x, top, x, axis_y, GRID, 0.8))
        out.append(
            _text(x, axis_y + 16, _fmt_tick(t, ticks, percent), anchor="middle", size=SMALL,
                  fill=MUTED)
        )  # fmt: skip
    out.append(_line(left, top, left, axis_y, MUTED, 1.0))
    out.append(_line(left, axis_y, left + plot_w, axis_y, MUTED, 1.0))
    out.append(_text(left + plot_w / 2, axis_y + 38, value_label, anchor="middle", size=FONT))
    # legend: swatch (colour and pattern) plus the series name, in bar order
    if len(series) > 1:
        x = left
        for s, name in enumerate(series):
            out.append(
                f'<rect x="{x:.1f}" y="6.0" width="22.0" height="12.0" '
                f'fill="{_fill(chart_id, s)}" stroke="{SERIES_COLORS[s % 6]}" stroke-width="1"/>'
            )
            out.append(_text(x + 28, 16.5, name, size=FONT))
            x += 28 + len(name) * CHAR_W * FONT + 22
    # bars, one group per category
    names = list(series)
    for i, lines in enumerate(wrapped):
        y0 = top + group_gap * 0.5 + i * (group_h + group_gap)
        inner = n_ser * bar_h + (n_ser - 1) * bar_gap
        yb = y0 + (group_h - inner) / 2
        out.append(_label(left - 8, y0 + group_h / 2, lines, anchor="end", size=FONT, fill=INK))
        for s, name in enumerate(names):
            v = series[name][i]
            y = yb + s * (bar_h + bar_gap)
            shown = _fmt(v, percent) if _is_number(v) else SUPPRESSED
            tip = f"{name}, {categories[i]}: {shown}"
            if _is_number(v):
                w = max(v, 0.0) * scale
                bar = (
                    f'<rect x="{left:.1f}" y="{y:.1f}" width="{w:.1f}" height="{bar_h:.1f}" '
                    f'fill="{_fill(chart_id, s)}" stroke="{SERIES_COLORS[s % 6]}" '
                    'stroke-width="1"/>'
                )
                tx = left + w + 5
            else:  # no bar: the word the suppression box explains, where the bar would start
                bar, tx = "", left + 5
            label = _text(tx, y + bar_h / 2, shown, size=SMALL, fill=MUTED, middle=True)
            out.append(f"<g><title>{_e(tip)}</title>{bar}{label}</g>")
    return Chart(chart_id, title, alt, _svg(chart_id, total_w, total_h, title, alt, out))


def heat_map(
    chart_id: str,
    rows: Sequence[str],
    cols: Sequence[str],
    values: Sequence[Sequence[float | None]],
    *,
    title: str,
    alt: str,
    percent: bool = True,
) -> Chart:
    """A rows × columns grid coloured by value and labelled in each cell; None = suppressed."""
    n_rows, n_cols = len(rows), len(cols)
    finite = [v for r in values for v in r if _is_number(v)]
    vmax = max(finite, default=1.0) or 1.0
    total_w = round(min(10.0, max(6.0, 0.9 * n_cols + 3.4)) * 80)
    row_lines = [_wrap(r, 30) for r in rows]
    longest = max((len(line) for lines in row_lines for line in lines), default=0)
    left = min(total_w * 0.45, 12 + longest * CHAR_W * FONT)
    cell_w = (total_w - left - 6) / max(n_cols, 1)
    # column heads wrap to what fits over their cell (13 characters at most, as before)
    col_lines = [_wrap(c, max(6, min(13, int((cell_w - 6) / (CHAR_W * FONT))))) for c in cols]
    head_h = max((len(c) for c in col_lines), default=1) * FONT * LINE + 10
    cell_h = max(34.0, max((len(r) for r in row_lines), default=1) * FONT * LINE + 10)
    total_h = head_h + n_rows * cell_h + 6

    out: list[str] = []
    for j, lines in enumerate(col_lines):
        x = left + (j + 0.5) * cell_w
        first = head_h - 8 - (len(lines) - 1) * FONT * LINE
        out.append(_label(x, first, lines, anchor="middle", size=FONT, fill=INK, top=True))
    for i, lines in enumerate(row_lines):
        y = head_h + i * cell_h
        out.append(_label(left - 8, y + cell_h / 2, lines, anchor="end", size=FONT, fill=INK))
        for j, v in enumerate(values[i]):
            x = left + j * cell_w
            if _is_number(v):
                frac = min(max(v / vmax, 0.0), 1.0)
                fill, shown = _ramp(frac), _fmt(v, percent)
                ink = "#ffffff" if frac > 0.55 else INK
            else:
                fill, shown, ink = SUPPRESSED_FILL, NOT_AVAILABLE, MUTED
            tip = f"{rows[i]} × {cols[j]}: {shown if _is_number(v) else SUPPRESSED}"
            out.append(
                f"<g><title>{_e(tip)}</title>"
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{cell_w:.1f}" height="{cell_h:.1f}" '
                f'fill="{fill}" stroke="#ffffff" stroke-width="1.5"/></g>'
            )
            size = FONT if _is_number(v) else SMALL
            out.append(
                _text(x + cell_w / 2, y + cell_h / 2, shown, anchor="middle", size=size,
                      fill=ink, middle=True)
            )  # fmt: skip
    return Chart(chart_id, title, alt, _svg(chart_id, total_w, total_h, title, alt, out))


def _svg(chart_id: str, w: float, h: float, title: str, alt: str, body: list[str]) -> str:
    """The accessible, responsive `<svg>` element: size from the viewBox and the page's CSS."""
    return (
        f'<svg role="img" aria-labelledby="{chart_id}-title {chart_id}-desc" class="chart" '
        f'data-chart="{chart_id}" xmlns="http://www.w3.org/2000/svg" '
        f'viewBox="0 0 {w:.1f} {h:.1f}" font-family="sans-serif" font-size="{FONT}" '
        f'fill="{INK}">'
        f'<title id="{chart_id}-title">{_e(title)}</title>'
        f'<desc id="{chart_id}-desc">{_e(alt)}</desc>' + "".join(body) + "</svg>"
    )


def _patterns(chart_id: str, n_ser: int) -> str:
    """Diagonal hatching for every series after the first: series differ by more than colour."""
    return "".join(
        f'<pattern id="{chart_id}-s{s}" width="6" height="6" patternUnits="userSpaceOnUse" '
        f'patternTransform="rotate(45)"><rect width="6" height="6" '
        f'fill="{SERIES_COLORS[s % 6]}"/><rect width="2" height="6" fill="#ffffff" '
        f'opacity="0.45"/></pattern>'
        for s in range(1, n_ser)
    )


def _fill(chart_id: str, s: int) -> str:
    return SERIES_COLORS[0] if s == 0 else f"url(#{chart_id}-s{s})"


def _text(x, y, text, *, anchor="start", size=FONT, fill=None, middle=False) -> str:
    attrs = f'x="{x:.1f}" y="{y:.1f}"'
    if anchor != "start":
        attrs += f' text-anchor="{anchor}"'
    if size != FONT:
        attrs += f' font-size="{size}"'
    if fill:
        attrs += f' fill="{fill}"'
    if middle:
        attrs += ' dominant-baseline="central"'
    return f"<text {attrs}>{_e(text)}</text>"


def _label(x, y, lines, *, anchor, size, fill, top=False) -> str:
    """Multi-line text: centred on `y`, or with its first line at `y` when `top`."""
    step = size * LINE
    first = y if top else y - (len(lines) - 1) * step / 2
    spans = "".join(
        f'<tspan x="{x:.1f}" y="{first + k * step:.1f}">{_e(line)}</tspan>'
        for k, line in enumerate(lines)
    )
    base = "" if top else ' dominant-baseline="central"'
    return f'<text text-anchor="{anchor}" font-size="{size}" fill="{fill}"{base}>{spans}</text>'


def _line(x1, y1, x2, y2, stroke, width) -> str:
    return (
        f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{stroke}" '
        f'stroke-width="{width}"/>'
    )


def _ticks(upper: float, nbins: int = 6) -> tuple[list[float], float]:
    """Round tick values from 0 (steps of 1, 2 or 5 × 10^n) and the axis end they fit in."""
    raw = upper / nbins
    mag = 10 ** math.floor(math.log10(raw))
    step = next(s * mag for s in (1, 2, 5, 10) if s * mag >= raw * (1 - 1e-9))
    count = math.floor(upper / step + 1e-9)
    return [round(k * step, 12) for k in range(count + 1)], upper


def _fmt_tick(t: float, ticks: list[float], percent: bool) -> str:
    if not percent:
        return f"{t:,.0f}" if len(ticks) < 2 or ticks[1] >= 1 else f"{t:g}"
    step = ticks[1] if len(ticks) > 1 else 1.0
    decimals = max(0, -math.floor(math.log10(step * 100) + 1e-9)) if step < 0.01 else 0
    return f"{t * 100:.{decimals}f}%"


def _ramp(frac: float) -> str:
    """The heat colour at `frac` in [0, 1] along the light-to-deep-blue ramp."""
    lo, hi, f = (HEAT_RAMP[0], HEAT_RAMP[1], frac * 2) if frac <= 0.5 else (
        HEAT_RAMP[1], HEAT_RAMP[2], frac * 2 - 1)  # fmt: skip
    return "#" + "".join(f"{round(a + (b - a) * f):02x}" for a, b in zip(lo, hi, strict=True))


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _is_number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _fmt(v: float, percent: bool) -> str:
    return f"{v:.0%}" if percent else f"{v:,.0f}"


def _wrap(label: str, width: int = 28) -> list[str]:
    return textwrap.wrap(str(label), width, break_long_words=False) or [str(label)]
