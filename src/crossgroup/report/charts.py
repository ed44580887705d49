"""Charts for the analyst report, drawn with matplotlib and returned as inline SVG strings.

The page must open offline and stay one file, so every chart is vector markup inside the HTML:
no images to fetch, no JavaScript. Figures are built with `matplotlib.figure.Figure` (no pyplot
global state), text stays text (`svg.fonttype = none`) so it is legible and searchable, and
element ids are prefixed per chart so several SVGs can share one document.
"""

from __future__ import annotations

import html
import io
import math
import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib as mpl
import numpy as np
from matplotlib.colors import LinearSegmentedColormap
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter

# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
SERIES_COLORS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00")
INK = "#1f2328"
MUTED = "#57606a"
GRID = "#d0d7de"
SUPPRESSED_FILL = "#eef0f2"
# A single-hue sequential ramp (light to deep blue): order is readable without colour names.
HEAT_CMAP = LinearSegmentedColormap.from_list("crossgroup_heat", ["#f3f7fb", "#9ecae1", "#08306b"])

_RC = {
    "svg.fonttype": "none",
    "font.family": "sans-serif",
    "font.size": 10.5,
    "axes.edgecolor": GRID,
    "axes.labelcolor": INK,
    "text.color": INK,
    "xtick.color": MUTED,
    "ytick.color": MUTED,
}


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
    """Horizontal grouped bars, one group per category; a None value is drawn as 'suppressed'."""
    n_cat, n_ser = len(categories), max(len(series), 1)
    height = max(1.8, 0.3 * n_cat * n_ser + 0.25 * n_cat + 1.0)
    with mpl.rc_context({**_RC, "svg.hashsalt": chart_id}):
        fig = Figure(figsize=(width, height), layout="constrained")
        ax = fig.add_subplot()
        bar_h = 0.8 / n_ser
        finite = [v for vals in series.values() for v in vals if _is_number(v)]
        top = max(finite, default=0.0) or 1.0
        for s, (name, values) in enumerate(series.items()):
            ys = [i + (s - (n_ser - 1) / 2) * bar_h for i in range(n_cat)]
            xs = [v if _is_number(v) else 0.0 for v in values]
            ax.barh(ys, xs, height=bar_h * 0.92, color=SERIES_COLORS[s % 6], label=name)
            for y, v in zip(ys, values, strict=True):
                text = _fmt(v, percent) if _is_number(v) else "suppressed"
                x = v if _is_number(v) else 0.0
                ax.text(x + top * 0.01, y, text, va="center", fontsize=9, color=MUTED)
        ax.set_yticks(range(n_cat), [_wrap(c, 24) for c in categories], fontsize=10)
        ax.invert_yaxis()
        ax.set_xlim(0, top * 1.18)
        ax.set_xlabel(value_label)
        if percent:
            ax.xaxis.set_major_locator(MaxNLocator(nbins=6, steps=[1, 2, 5, 10]))
            ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax.grid(axis="x", color=GRID, linewidth=0.6)
        ax.set_axisbelow(True)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        if len(series) > 1:
            ax.legend(
                loc="lower left",
                bbox_to_anchor=(0.0, 1.0),
                ncols=n_ser,
                frameon=False,
                fontsize=9.5,
                borderaxespad=0.2,
            )
        return Chart(chart_id, title, alt, figure_svg(fig, chart_id, title=title, alt=alt))


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
    width = min(10.0, max(6.0, 0.9 * n_cols + 3.4))
    height = max(2.0, 0.42 * n_rows + 1.0)
    with mpl.rc_context({**_RC, "svg.hashsalt": chart_id}):
        fig = Figure(figsize=(width, height), layout="constrained")
        ax = fig.add_subplot()
        grid = np.array([[v if _is_number(v) else np.nan for v in r] for r in values], float)
        # pcolormesh stays vector in SVG (imshow would embed a PNG); the cells carry the numbers
        cmap = HEAT_CMAP.with_extremes(bad=SUPPRESSED_FILL)
        ax.pcolormesh(
            np.ma.masked_invalid(grid),
            cmap=cmap,
            vmin=0.0,
            vmax=vmax,
            edgecolors="#ffffff",
            linewidth=1.5,
        )
        for i, r in enumerate(values):
            for j, v in enumerate(r):
                if _is_number(v):
                    dark = v / vmax > 0.55
                    ax.text(
                        j + 0.5,
                        i + 0.5,
                        _fmt(v, percent),
                        ha="center",
                        va="center",
                        fontsize=10.5,
                        color="#ffffff" if dark else INK,
                    )
                else:
                    ax.text(
                        j + 0.5, i + 0.5, "n/a", ha="center", va="center", fontsize=9.5, color=MUTED
                    )
        ax.set_xticks([j + 0.5 for j in range(n_cols)], [_wrap(c, 13) for c in cols], fontsize=10)
        ax.set_yticks([i + 0.5 for i in range(n_rows)], [_wrap(r, 30) for r in rows], fontsize=10)
        ax.set_xlim(0, n_cols)
        ax.set_ylim(n_rows, 0)
        ax.tick_params(length=0)
        ax.xaxis.tick_top()
        for spine in ax.spines.values():
            spine.set_visible(False)
        return Chart(chart_id, title, alt, figure_svg(fig, chart_id, title=title, alt=alt))


def figure_svg(fig: Figure, chart_id: str, *, title: str, alt: str) -> str:
    """Render a figure as an inline, responsive, accessible `<svg>` element."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None})
    svg = buf.getvalue()
    svg = svg[svg.index("<svg") :]
    svg = re.sub(r"\s*<metadata>.*?</metadata>", "", svg, count=1, flags=re.DOTALL)
    svg = _prefix_ids(svg, chart_id)
    # Size comes from the viewBox and the page's CSS, so the chart follows the layout width.
    svg = re.sub(r'<svg ([^>]*?)width="[^"]*" height="[^"]*"', r"<svg \1", svg, count=1)
    label = (
        f'<svg role="img" aria-labelledby="{chart_id}-title {chart_id}-desc" '
        f'class="chart" data-chart="{chart_id}" '
    )
    svg = svg.replace("<svg ", label, 1)
    head = (
        f'<title id="{chart_id}-title">{html.escape(title)}</title>'
        f'<desc id="{chart_id}-desc">{html.escape(alt)}</desc>'
    )
    return re.sub(r"(<svg[^>]*>)", lambda m: m.group(1) + head, svg, count=1).strip()


def _prefix_ids(svg: str, prefix: str) -> str:
    svg = re.sub(r'\bid="([^"]+)"', rf'id="{prefix}-\1"', svg)
    svg = re.sub(r"url\(#([^)]+)\)", rf"url(#{prefix}-\1)", svg)
    return re.sub(r'href="#([^"]+)"', rf'href="#{prefix}-\1"', svg)


def _is_number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _fmt(v: float, percent: bool) -> str:
    return f"{v:.0%}" if percent else f"{v:,.0f}"


def _wrap(label: str, width: int = 28) -> str:
    return "\n".join(textwrap.wrap(str(label), width)) or str(label)
