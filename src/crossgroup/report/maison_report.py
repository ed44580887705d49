"""The analyst's `report.html`: one maison's returned segments, explained on one offline page.

A pure function from the returned tables (segments, aggregates, glossary) to an HTML string.
Only generalized values reach the page: the segment frame's identifier columns are dropped on
entry, so no maison_ref, token or customer_id can be rendered. Every string is escaped.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING

import polars as pl

from crossgroup.report import charts
from crossgroup.report.changes import changes_section
from crossgroup.report.noise_panel import EPSILON_TERM, noise_panel, noise_sentence
from crossgroup.report.suppression import suppression_box
from crossgroup.report.template import page

if TYPE_CHECKING:
    from crossgroup.maison.changes import Changes

IDENTIFIER_COLUMNS = ("maison_ref", "customer_id", "email_token", "phone_token")
LEADS = {
    "segment-sizes": "Share of your returned customers in each segment, next to the share in "
    "the whole group. Segment names are explained in the glossary below.",
    "value-tiers": "Spend bands set group-wide: the same thresholds apply to every maison's "
    "customers, so a Top customer is in the group's top band.",
    "channel-mix": "Where customers prefer to buy, across all the group's maisons.",
    "breadth": "How many of the group's maisons each customer buys from.",
    "sector-affinity": "Share of customers with an affinity for each group sector (a sector "
    "shared by too few of the batch's maisons is shown under its family or 'Other sectors').",
    "segment-sector-affinity": "For each segment, the share of its persons with an affinity "
    "for each group sector (at least 10% of their spend there); darker is stronger, n/a marks "
    "a cell too small to show. The whole group's map gives context where yours is sparse.",
    "other-sector-spend": "Your customers who also buy at another maison: the average share of "
    "their spend that goes to each other group sector (each customer's split counts once, "
    "whatever they spend). Your own sector is left out: the rest of their spend is there, or in "
    "a sector shown as suppressed.",
}
# The terms of the return the glossary explains besides the segments.
TERMS = (
    (
        "Lead sector",
        "The group sector that takes the largest share of the customer's spend (net of "
        "returns) across every participating maison.",
    ),
    (
        "Second sector",
        "The sector with the next largest share of their spend after the lead sector; “No "
        "other sector” when they spend in no other sector. A sector that a single maison of the "
        "batch occupies is never named, since that would name the maison: it is given under its "
        "family (for example “Beauty & Retail”), and the second sector then skips the sectors "
        "given under the lead sector's name. Like every attribute, it may be widened to its "
        "family or left blank so that each combination of values is shared by enough people.",
    ),
    (
        "Spend in other sectors",
        "For your customers who also buy at another maison: the average share of their spend "
        "in each group sector other than yours, and how many of them spend there at all. "
        "Figures covering too few people are suppressed.",
    ),
)
MULTI_MAISON = ("2 maisons", "3+ maisons", "2+ maisons")
NOT_RELEASED = "Not released"  # row_key of the aggregate cell for a suppressed value
# Band orders as published in the return contract; coarsened or unknown labels follow.
ORDERS = {
    "value_tiers": ("Entry", "Core", "High", "Top"),
    "breadth": ("1 maison", "2 maisons", "3+ maisons"),
    "channel_mix": ("Boutique", "Online", "Omnichannel"),
}


@dataclass(frozen=True)
class ReportContext:
    """What the page says about where the data came from; nothing here is per-customer."""

    maison_name: str
    batch_id: str
    as_of: date | str
    k: int | None = None
    k_aggregate: int | None = None
    returned: int | None = None
    relinked: int | None = None
    dropped: int | None = None
    withheld: int | None = None  # persons left out of the release entirely, as the processor says
    participating_maisons: tuple[str, ...] = ()  # as the return says; () when it does not
    absent_maisons: tuple[str, ...] = ()
    # DP mode (the return's signed summary): the epsilon and delta of its group-wide figures
    epsilon: float | None = None
    delta: float | None = None
    refitted: bool = False  # the definitions the noisy cells count under were fitted this batch
    generated_on: date = field(default_factory=date.today)


def render_maison_report(
    segments: pl.DataFrame,
    aggregates: pl.DataFrame,
    glossary: pl.DataFrame,
    context: ReportContext,
    changes: Changes | None = None,
) -> str:
    """Build the self-contained report page for one maison; with `changes` (import
    --previous), a section on what changed since the previous import."""
    segments = segments.drop([c for c in IDENTIFIER_COLUMNS if c in segments.columns])
    labels = _segment_names(glossary)
    small = [
        _distribution_chart(aggregates, segments, "value_tiers", "value_tier", "Value tiers"),
        _distribution_chart(
            aggregates, segments, "channel_mix", "channel_preference", "Channel mix"
        ),
        _distribution_chart(
            aggregates, segments, "breadth", "breadth", "Breadth: number of maisons per customer"
        ),
        _sector_chart(aggregates),
        _other_sector_chart(aggregates),
    ]
    parts = [
        _header(context),
        _cards(segments, context),
        suppression_box(segments, aggregates, context, changes),
        _chart_panel(_segment_chart(segments, aggregates, labels), wide=True),
        changes_section(changes) if changes is not None else "",
        '<div class="grid">' + "".join(_chart_panel(c) for c in small if c) + "</div>",
        _heat_panel(aggregates, labels),
    ]
    margins = aggregates.get_column("margin").drop_nulls() if "margin" in aggregates else None
    noisy = context.epsilon is not None and margins is not None and margins.len() > 0
    if noisy:
        sentence = noise_sentence(
            context.epsilon, context.delta or 0.0, float(margins.max()), context.k_aggregate,
            refitted=context.refitted,
        )  # fmt: skip
        parts.insert(3, noise_panel(aggregates, sentence))
    parts.append(_glossary(glossary, segments, (*TERMS, EPSILON_TERM) if noisy else TERMS))
    parts.append(
        "<footer><p>This page holds only generalized figures. Customer-level rows are in "
        "<code>segments.parquet</code> next to it, keyed by your own <code>customer_id</code>. "
        f"Generated on {_e(context.generated_on)} by crossgroup.</p></footer>"
    )
    title = f"{context.maison_name}: cross-group segments, batch {context.batch_id}"
    return page(title, "\n".join(p for p in parts if p))


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _header(ctx: ReportContext) -> str:
    return (
        '<header class="page">'
        f"<h1>{_e(ctx.maison_name)}: cross-group customer segments</h1>"
        f"<p>Batch <strong>{_e(ctx.batch_id)}</strong> · purchases up to "
        f"<strong>{_e(ctx.as_of)}</strong> · prepared by the group processor from consenting "
        "customers' pseudonymized histories</p>"
        f"{_participation(ctx)}</header>"
    )


def _participation(ctx: ReportContext) -> str:
    """The maisons that took part in the batch, as the return names them (DESIGN §4.4)."""
    if not ctx.participating_maisons:
        return ""
    line = f"Maisons in this batch: {_e(', '.join(ctx.participating_maisons))}"
    if ctx.absent_maisons:
        line += (
            f" · not in this batch: {_e(', '.join(ctx.absent_maisons))} (purchases there are "
            "not counted in this batch's breadth, sectors or segments)"
        )
    return f'<p class="participation">{line}</p>'


def _cards(segments: pl.DataFrame, ctx: ReportContext) -> str:
    n = segments.height
    items = [
        (f"{ctx.returned:,}" if ctx.returned is not None else f"{n:,}", "customers returned"),
        (f"{ctx.relinked:,}" if ctx.relinked is not None else "–", "relinked to your CRM"),
        (f"{ctx.dropped:,}" if ctx.dropped is not None else "–", "no longer in your CRM"),
        (f"{segments['segment'].drop_nulls().n_unique()}", "segments among your customers"),
    ]
    if "breadth" in segments.columns and n:
        multi = segments.filter(pl.col("breadth").is_in(MULTI_MAISON)).height
        items.append((f"{multi / n:.0%}", "also buy at another maison"))
    cards = "".join(
        f'<div class="card"><span class="value">{_e(v)}</span>'
        f'<span class="label">{_e(label)}</span></div>'
        for v, label in items
    )
    return f'<div class="cards">{cards}</div>'


def _segment_names(glossary: pl.DataFrame) -> dict[str, str]:
    """Map both a segment's number and its label to the display name "3 · label"."""
    names: dict[str, str] = {}
    for seg, label in glossary.select("segment", "segment_label").iter_rows():
        shown = f"{seg} · {label}"
        names[str(seg)] = shown
        names[str(label)] = shown
    return names


def _shares(aggs: pl.DataFrame, table: str, scope: str) -> dict[str, float | None]:
    if not aggs.height:
        return {}
    rows = aggs.filter((pl.col("table") == table) & (pl.col("scope") == scope))
    return {
        r["row_key"]: (None if r["suppressed"] or r["share"] is None else float(r["share"]))
        for r in rows.iter_rows(named=True)
    }


def _ordered(keys: list[str], order: tuple[str, ...] = ()) -> list[str]:
    known = [k for k in order if k in keys]
    rest = sorted(k for k in keys if k not in order and k != NOT_RELEASED)
    return known + rest + ([NOT_RELEASED] if NOT_RELEASED in keys else [])


def _own_shares(segments: pl.DataFrame, column: str) -> dict[str, float]:
    if column not in segments.columns or not segments.height:
        return {}
    counts = segments.group_by(column).len().drop_nulls(column)
    return {str(k): v / segments.height for k, v in counts.iter_rows()}


def _segment_chart(segments, aggs, labels) -> charts.Chart:
    own = _shares(aggs, "segment_mix", "maison") or _own_shares(segments, "segment")
    group = _shares(aggs, "segment_mix", "group")
    keys = sorted(set(own) | set(group), key=lambda k: (_as_int(labels.get(k, k)), k))
    shown = [labels.get(k, k) for k in keys]
    series = {"Your customers": [own.get(k) for k in keys]}
    if group:
        series["Whole group"] = [group.get(k) for k in keys]
    return charts.bar_chart(
        "segment-sizes",
        shown,
        series,
        title="Segment sizes",
        width=8.0,
        alt="Share of your returned customers in each segment"
        + (", compared with the whole group: " if group else ": ")
        + _describe(shown, series["Your customers"]),
    )


def _distribution_chart(aggs, segments, table, column, title) -> charts.Chart | None:
    own = _shares(aggs, table, "maison") or _own_shares(segments, column)
    group = _shares(aggs, table, "group")
    if not own and not group:
        return None
    keys = _ordered(list(set(own) | set(group)), ORDERS.get(table, ()))
    series = {"Your customers": [own.get(k) for k in keys]}
    if group:
        series["Whole group"] = [group.get(k) for k in keys]
    alt = f"{title} of your customers: {_describe(keys, series['Your customers'])}"
    return charts.bar_chart(table.replace("_", "-"), keys, series, title=title, alt=alt)


def _sector_chart(aggs) -> charts.Chart | None:
    own, group = (
        _shares(aggs, "sector_affinity", "maison"),
        _shares(aggs, "sector_affinity", "group"),
    )
    if not own and not group:
        return None
    keys = sorted(set(own) | set(group))
    series = {"Your customers": [own.get(k) for k in keys]}
    if group:
        series["Whole group"] = [group.get(k) for k in keys]
    return charts.bar_chart(
        "sector-affinity",
        keys,
        series,
        title="Sector affinity",
        alt="Share of customers with an affinity for each group sector: "
        + _describe(keys, series["Your customers"]),
    )


def _other_sector_chart(aggs) -> charts.Chart | None:
    """Where the maison's multi-maison customers spend outside its sector (its own cells)."""
    shares = _shares(aggs, "other_sector_spend", "maison")
    if not shares:
        return None
    keys = sorted(shares, key=lambda k: (-(shares[k] or -1.0), k))
    values = [shares[k] for k in keys]
    return charts.bar_chart(
        "other-sector-spend",
        keys,
        {"Your multi-maison customers": values},
        title="Spend in other sectors",
        value_label="Average share of spend",
        alt="Average share of your multi-maison customers' spend in each other group sector: "
        + _describe(keys, values),
    )


def _affinity_heat_map(aggs, labels, scope: str) -> charts.Chart | None:
    """Segments × sectors for one scope: your customers, or the whole group for context."""
    if not aggs.height:
        return None
    cells = aggs.filter((pl.col("table") == "segment_sector_affinity") & (pl.col("scope") == scope))
    if not cells.height:
        return None
    rows = sorted(cells["row_key"].unique().to_list(), key=lambda k: (_as_int(labels.get(k, k)), k))
    cols = sorted(cells["col_key"].unique().to_list())
    lookup = {
        (r["row_key"], r["col_key"]): None if r["suppressed"] or r["share"] is None else r["share"]
        for r in cells.iter_rows(named=True)
    }
    values = [[lookup.get((r, c)) for c in cols] for r in rows]
    who = "Your customers" if scope == "maison" else "Whole group"
    return charts.heat_map(
        "segment-sector-affinity" + ("" if scope == "maison" else "-group"),
        [labels.get(r, r) for r in rows],
        cols,
        values,
        title=who,
        alt=f"Heat map, {who.lower()}: for each segment (rows) the share of persons with an "
        "affinity for each group sector (columns); cells below the aggregate threshold are "
        "marked n/a.",
    )


def _heat_panel(aggs, labels) -> str:
    maps = [m for m in (_affinity_heat_map(aggs, labels, s) for s in ("maison", "group")) if m]
    if not maps:
        return ""
    body = "".join(f"<h3>{_e(m.title)}</h3>{m.svg}" for m in maps)
    return (
        '<section class="panel wide heat" aria-labelledby="affinity-h">'
        '<h2 id="affinity-h">Affinity by segment and sector</h2>'
        f'<p class="lead">{_e(LEADS["segment-sector-affinity"])}</p>{body}</section>'
    )


def _chart_panel(chart: charts.Chart | None, *, wide: bool = False) -> str:
    if chart is None:
        return ""
    lead = LEADS.get(chart.chart_id, "")
    return (
        f'<section class="panel{" wide" if wide else ""}" aria-labelledby="{chart.chart_id}-h">'
        f'<h2 id="{chart.chart_id}-h">{_e(chart.title)}</h2>'
        f'<p class="lead">{_e(lead)}</p>{chart.svg}</section>'
    )


def _glossary(glossary: pl.DataFrame, segments: pl.DataFrame, terms=TERMS) -> str:
    counts = dict(segments.group_by("segment").len().iter_rows()) if segments.height else {}
    rows = "".join(
        f"<tr><td class=num>{_e(seg)}</td><td><strong>{_e(label)}</strong></td>"
        f"<td>{_e(desc)}</td><td class=num>{counts.get(seg, 0):,}</td></tr>"
        for seg, label, desc in glossary.sort("segment")
        .select("segment", "segment_label", "description")
        .iter_rows()
    )
    body = rows or '<tr><td colspan="4" class="empty">No glossary was returned.</td></tr>'
    terms = "".join(f"<dt>{_e(term)}</dt><dd>{_e(text)}</dd>" for term, text in terms)
    return (
        '<section class="panel" id="glossary" aria-labelledby="glossary-h">'
        '<h2 id="glossary-h">Glossary: what each segment means</h2>'
        '<p class="lead">Segments are computed by the group across all participating maisons; '
        "the descriptions say what the people in each segment have in common.</p>"
        '<table><thead><tr><th class="num">#</th><th>Segment</th><th>In plain words</th>'
        f'<th class="num">Your customers</th></tr></thead><tbody>{body}</tbody></table>'
        f"<h3>Other terms</h3><dl>{terms}</dl></section>"
    )


def _describe(keys: list[str], values: list[float | None]) -> str:
    return "; ".join(
        f"{k} {'suppressed' if v is None else f'{v:.0%}'}"
        for k, v in zip(keys, values, strict=True)
    )


def _as_int(name: str) -> int:
    head = str(name).split(" ", 1)[0]
    return int(head) if head.isdigit() else 10**9
