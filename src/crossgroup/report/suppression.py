"""The report's "what was held back, and why" box: every coarsening and suppression, said openly.

DESIGN §5.6-5.7: a release never removes information silently. The box counts, per attribute,
the customer rows given a wider band or left blank (from the `generalized` column), the rows
left out entirely, and per aggregate table the suppressed cells (from the `suppression` rows).
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

import polars as pl

if TYPE_CHECKING:
    from crossgroup.maison.changes import Changes
    from crossgroup.report.maison_report import ReportContext

ATTRIBUTE_LABELS = {
    "segment_label": "segment",
    "value_tier": "value tier",
    "breadth": "breadth",
    "recency_band": "recency",
    "frequency_band": "frequency",
    "channel_preference": "channel preference",
    "lead_sector": "lead sector",
    "second_sector": "second sector",
}
TABLE_LABELS = {
    "segment_mix": "Segment mix",
    "value_tiers": "Value tiers",
    "channel_mix": "Channel mix",
    "breadth": "Breadth across maisons",
    "sector_affinity": "Sector affinity",
    "segment_sector_affinity": "Segment × sector affinity",
    "other_sector_spend": "Spend in other sectors",
}
WITHHELD_KEY = "withheld rows"  # col_key of the suppression row counting rows left out


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def suppression_box(
    segments: pl.DataFrame,
    aggs: pl.DataFrame,
    ctx: ReportContext,
    changes: Changes | None = None,
) -> str:
    """Say openly what was coarsened or withheld, per attribute and per aggregate table (and
    in what changed since the previous import, when the page shows it)."""
    n = segments.height
    k_text = f"at least {ctx.k} people" if ctx.k else "enough people"
    ka_text = f"at least {ctx.k_aggregate} people" if ctx.k_aggregate else "enough people"
    rows: list[str] = []
    if n and "generalized" in segments.columns:
        touched = segments.filter(pl.col("generalized").fill_null("") != "").height
        rows.append(
            f"<li><strong>{touched:,} of {n:,} customer rows ({touched / n:.1%})</strong> had at "
            "least one attribute made coarser or left blank.</li>"
        )
        for attr, coarsened, blank in _generalized_counts(segments):
            name = ATTRIBUTE_LABELS.get(attr, attr.replace("_", " "))
            rows.append(
                f"<li>{_e(name.capitalize())}: {coarsened:,} rows given a wider band, "
                f"{blank:,} rows left blank.</li>"
            )
    supp = aggs.filter(pl.col("table") == "suppression") if aggs.height else aggs
    withheld_rows = supp.filter(pl.col("col_key") == WITHHELD_KEY)
    if ctx.withheld is not None and not withheld_rows.height:
        rows.append(f"<li>{_withheld_sentence(ctx.withheld, None)}</li>")
    for row in withheld_rows.iter_rows(named=True):
        rows.append(f"<li>{_withheld_sentence(row['persons'], row['note'])}</li>")
    cells = [
        f"<li>{_suppression_sentence(row)}</li>"
        for row in supp.filter(pl.col("col_key") != WITHHELD_KEY)
        .sort("scope", "row_key", descending=[True, False])
        .iter_rows(named=True)
    ]
    if changes is not None and changes.suppressed_cells:
        cells.append(
            f"<li>What changed since last month: {changes.suppressed_cells:,} cell(s) "
            f"suppressed (fewer than {changes.k_aggregate:,} customers, or recoverable by "
            'subtraction); see <a href="#changes">that section</a>.</li>'
        )
    rows = rows or ["<li>No customer row was coarsened or withheld.</li>"]
    cells = cells or ["<li>No figure was suppressed.</li>"]
    return (
        '<aside class="suppression" role="note" aria-labelledby="suppression-title">'
        '<h2 id="suppression-title">What was held back, and why</h2>'
        f"<p>To protect customers' privacy, every combination of attributes on a customer row "
        f"is shared by {_e(k_text)} across the whole group; rarer combinations were given a "
        "wider band (for example “High-Top”) or left blank, never guessed. Every figure in the "
        f"charts covers {_e(ka_text)}; smaller cells are shown as “suppressed” or “n/a” and "
        "counted here.</p>"
        '<div class="split">'
        f"<div><h3>Customer rows (k = {_e(ctx.k or 'not stated')})</h3>"
        f"<ul>{''.join(rows)}</ul></div>"
        f"<div><h3>Figures in this report (k_aggregate = {_e(ctx.k_aggregate or 'not stated')})"
        f"</h3><ul>{''.join(cells)}</ul></div>"
        "</div></aside>"
    )


def _generalized_counts(segments: pl.DataFrame) -> list[tuple[str, int, int]]:
    """Per attribute named in `generalized`: rows coarsened (value kept) and rows blanked."""
    named = (
        segments.select(pl.col("generalized").fill_null("").str.split(",").alias("attr"))
        .with_row_index("row")
        .explode("attr")
        .filter(pl.col("attr").str.strip_chars() != "")
        .with_columns(pl.col("attr").str.strip_chars())
    )
    out = []
    for attr in sorted(named["attr"].unique().to_list()):
        rows = named.filter(pl.col("attr") == attr)["row"]
        if attr in segments.columns:
            blank = int(segments[attr].gather(rows).is_null().sum())
        else:
            blank = rows.len()
        out.append((attr, rows.len() - blank, blank))
    return out


def _withheld_sentence(persons: int | None, note: str | None) -> str:
    if not persons:
        return "No customer was left out of the return entirely."
    why = _e(note) if note else "too few people shared their profile even fully coarsened"
    return (
        f"<strong>{persons:,} of your customers were left out of the return entirely</strong>: "
        f"{why}."
    )


def _suppression_sentence(row: dict) -> str:
    """One aggregate table's suppression, in plain words (the note says how many cells)."""
    table = TABLE_LABELS.get(row["row_key"], str(row["row_key"]).replace("_", " ").capitalize())
    scope = "your customers" if row.get("scope") == "maison" else "whole group"
    note = row.get("note") or "cells suppressed"
    persons = row.get("persons")
    if persons is not None:
        tail = f"; {persons:,} persons in those cells"
    else:
        tail = "; the persons count is not given, so no single small cell can be inferred"
    return f"{_e(table)} ({_e(scope)}): {_e(note)}{_e(tail)}."
