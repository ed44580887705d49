"""The readable side of an access request: one self-contained HTML page from the JSON record.

Same shell as the analyst report (inline CSS, no script, nothing fetched), so it can be
mailed or printed for the customer. Every value is escaped; no pseudonym is ever on it.
"""

from __future__ import annotations

import html
from typing import Any

from crossgroup.report.template import page

ATTRIBUTE_WORDS = {
    "segment_label": "Preference segment",
    "value_tier": "Value tier",
    "breadth": "Number of the group's maisons (banded)",
    "recency_band": "Recency (banded)",
    "frequency_band": "Frequency (banded)",
    "channel_preference": "Channel preference",
    "lead_sector": "Leading sector",
    "second_sector": "Second sector",
    "generalized": "Attributes coarsened to protect privacy",
}


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _table(headers: list[str], rows: list[list[Any]], numeric: set[int] = frozenset()) -> str:
    if not rows:
        return '<p class="empty">None.</p>'
    head = "".join(f'<th{" class=num" if i in numeric else ""}>{_e(h)}</th>'
                   for i, h in enumerate(headers))  # fmt: skip
    body = "".join(
        "<tr>" + "".join(f'<td{" class=num" if i in numeric else ""}>{_e(v)}</td>'
                         for i, v in enumerate(row)) + "</tr>"
        for row in rows
    )  # fmt: skip
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _panel(title: str, lead: str, inner: str) -> str:
    lead_html = f'<p class="lead">{_e(lead)}</p>'
    return f'<section class="panel"><h2>{_e(title)}</h2>{lead_html}{inner}</section>'


def render_access_page(record: dict) -> str:
    """The access record as one HTML page (Example: render_access_page(json.load(f)))."""
    maison, exp = record["maison"], record["would_be_exported"]
    window = record["window"]
    verdict = "would be shared" if exp["exported"] else "would not be shared"
    header = (
        f'<header class="page"><h1>Your data in cross-group analytics</h1>'
        f"<p>{_e(maison['name'])}: customer {_e(record['customer_id'])}, as of "
        f"{_e(record['as_of'])} (generated {_e(record['generated_at'])})</p></header>"
    )
    eligibility = _panel(
        "Would your data be shared?",
        "Only customers with cross-group consent, not restricted, are included.",
        f"<p><strong>Your purchase history {verdict}</strong>: {_e(exp['reason'])}.</p>"
        + _table(
            ["Your purchase lines", "Count"],
            [["in the window " + f"({window['after']} excluded to {window['through']})",
              exp["purchase_rows"]["in_window"]],
             ["older than 3 years (never shared)", exp["purchase_rows"]["before_window"]],
             ["dated after the as-of date (never shared)", exp["purchase_rows"]["future_dated"]]],
            {1},
        ),
    )  # fmt: skip
    activity = _panel(
        "What would be shared",
        "Monthly totals per group category and channel, in euros: no product, order number, "
        "exact date, name or contact detail.",
        _table(
            ["Month", "Group category", "Channel", "Orders", "Amount (EUR)"],
            [[r["month"], r["group_category"], r["channel"], r["orders"],
              f"{r['amount_eur']:,.2f}"] for r in exp["activity"]],
            {3, 4},
        ),
    )  # fmt: skip
    ids = record["identifiers"]
    identifiers = _panel(
        "Your e-mail and phone",
        "They never leave the maison. A pseudonym (a keyed code the group can compare but "
        "not reverse) lets the group recognise you across its maisons; it is not shown here "
        "because it is a code shared by the whole group, not information about you.",
        _table(
            ["Identifier", "Pseudonym shared", "Why"],
            [[name, "yes" if v["pseudonym_shared"] else "no", v["reason"]]
             for name, v in (("E-mail", ids["email"]), ("Phone", ids["phone"]))],
        ),
    )  # fmt: skip
    batches = record["batches"]
    history = _panel(
        "Past exports that included you",
        f"{batches['exports_recorded']} export(s) recorded by the maison in total.",
        _table(
            ["Batch", "As of", "Sent", "Package"],
            [[b["batch_id"], b["as_of"], b["created_at"], b["package_id"]]
             for b in batches["including_customer"]],
        ),
    )  # fmt: skip
    returned = record["returned_attributes"]
    columns = [c for c in ATTRIBUTE_WORDS if any(c in r for r in returned)]
    attributes = _panel(
        "What the group sent back about you",
        "Only bands and segments, never amounts, dates, products or other maisons' names.",
        _table(
            ["Source", "Batch", *(ATTRIBUTE_WORDS[c] for c in columns)],
            [[r["source"], r.get("batch_id") or "", *(r.get(c) for c in columns)]
             for r in returned],
        ),
    )  # fmt: skip
    footer = (
        "<footer>The same information is in access.json (machine-readable, for portability). "
        "Segments are not used for decisions with legal or similarly significant effects "
        "(GDPR art. 22).</footer>"
    )
    body = header + eligibility + activity + identifiers + history + attributes + footer
    return page(f"Your data: {maison['name']}", body)
