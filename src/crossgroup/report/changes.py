"""The report's "What changed since last month" section: the change cells as a from/to table.

Rows are the segments of the previous import, columns the segments now; the diagonal is the
customers who stayed, the last column those no longer returned and the last row those new to
the return. Suppressed cells read "n/a" and are counted under the table, with why (DESIGN
§5.7); a segment number whose label differs between the two files is named above it, since
customers are compared by number. Every string is escaped.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

import polars as pl

if TYPE_CHECKING:
    from crossgroup.maison.changes import Changes

NOT_RELEASED = "Not released"  # a segment withheld for k-anonymity on that customer's row
LEAD = (
    "Your customers compared one by one, by customer_id, with the segments file of your "
    "previous import{since}. Each row is a segment then, each column a segment now: the shaded "
    "diagonal counts customers who stayed in their segment, the last column those no longer "
    "returned (consent withdrawn, no purchase left in the window, no longer in your CRM, or "
    "left out of this batch) and the last row those new to the return. Counted at import from "
    "your own two files; nothing of this comparison is sent to the group. – means none; n/a, "
    "suppressed."
)


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def changes_section(changes: Changes) -> str:
    """The section for `report.html`, from the change table import writes as changes.parquet."""
    cells = {
        (r["kind"], r["from_segment"], r["to_segment"]): r
        for r in changes.table.iter_rows(named=True)
    }
    rows = _segments(changes.table, "from", ("transition", "no_longer_returned"))
    cols = _segments(changes.table, "to", ("transition", "new"))
    head = "".join(
        f'<th scope="col" class="num">{_e(_number(seg))}<span class="seg">{_e(_name(label))}'
        "</span></th>"
        for seg, label in cols
    )
    body = []
    for seg, label in rows:
        tds = [_cell(cells.get(("transition", seg, to)), stay=seg == to and seg is not None)
               for to, _ in cols]  # fmt: skip
        tds.append(_cell(cells.get(("no_longer_returned", seg, None))))
        body.append(
            f'<tr><th scope="row">{_e(_number(seg))} · {_e(_name(label))}</th>{"".join(tds)}</tr>'
        )
    new = [_cell(cells.get(("new", None, to))) for to, _ in cols]
    body.append(
        f'<tr class="new"><th scope="row">New to the return</th>{"".join(new)}<td></td></tr>'
    )
    since = f" (batch {changes.previous_batch})" if changes.previous_batch else ""
    return (
        '<section class="panel wide" id="changes" aria-labelledby="changes-h">'
        '<h2 id="changes-h">What changed since last month</h2>'
        f'<p class="lead">{_e(LEAD.format(since=since))}</p>'
        f"{_relabelled(changes)}"
        '<div class="scroll"><table class="changes">'
        "<caption>Customers by segment in the previous import (rows) and now (columns)</caption>"
        f'<thead><tr><th scope="col">Previous segment</th>{head}'
        '<th scope="col" class="num">No longer returned</th></tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
        f'<p class="note">{_accounting(changes)}</p></section>'
    )


def _segments(table: pl.DataFrame, side: str, kinds: tuple[str, ...]) -> list[tuple]:
    """(segment, label) on one side of the table, by number, a not-released segment last."""
    found = (
        table.filter(pl.col("kind").is_in(kinds))
        .select(pl.col(f"{side}_segment").alias("segment"), pl.col(f"{side}_label").alias("label"))
        .unique("segment", keep="first", maintain_order=True)
        .sort("segment", nulls_last=True)
    )
    return list(found.iter_rows())


def _number(segment: int | None) -> str:
    return "–" if segment is None else str(segment)


def _name(label: str | None) -> str:
    return NOT_RELEASED if label is None else label


def _cell(row: dict | None, *, stay: bool = False) -> str:
    classes = "num stay" if stay else "num"
    if row is None:
        return f'<td class="{classes} none">–</td>'
    if row["suppressed"]:
        return f'<td class="{classes} sup" title="{_e(row["note"])}">n/a</td>'
    return f'<td class="{classes}">{row["customers"]:,}</td>'


def _relabelled(changes: Changes) -> str:
    if not changes.relabelled:
        return ""
    named = "; ".join(
        f"segment {_e(seg)} was “{_e(before)}” and is now “{_e(now)}”"
        for seg, before, now in changes.relabelled
    )
    return (
        '<p class="relabel" role="note"><strong>Segment names changed since the previous '
        f"file</strong>: {named}. Customers are compared by segment number, so a number whose "
        "name changed may stand for a different profile: a customer counted as staying there "
        "may have been regrouped, not kept. Read those rows and columns with care.</p>"
    )


def _accounting(changes: Changes) -> str:
    """How many cells and customers were suppressed, and why; never silent."""
    k = changes.k_aggregate
    total = changes.table.height
    if not changes.suppressed_cells:
        return (
            f"Every figure covers at least {k:,} customers (k_aggregate = {k:,}): none was "
            "suppressed."
        )
    reasons = changes.suppressed_by_reason().items()
    why = "; ".join(f"{n:,} cell(s): {_e(note)}" for note, n in reasons)
    customers = changes.suppressed_customers
    tail = (
        f"{customers:,} customers in those cells"
        if customers is not None
        else "the number of customers in them is not given, so a single cell cannot be inferred"
    )
    return (
        f"Suppressed (k_aggregate = {k:,}): {changes.suppressed_cells:,} of {total:,} cells, "
        f"shown as n/a. {why}. {_e(tail)}."
    )
