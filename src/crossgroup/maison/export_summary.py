"""The export's two summaries: counts for the cleartext manifest, and the local one.

The package's manifest is readable by anyone holding the file, so its `summary` carries only
counts of what is inside the package (`manifest_summary`). The full summary (drop reasons,
placeholder and CRM-level counts, unmapped labels, EUR total) stays at the maison, on the
console and in `<package>.summary.json`. Unmapped labels are free text from the CRM, so even
the local summary names one only when more than `placeholder_max_customers` exported
customers share it, it does not look like an email or phone number, and it equals no input
customer_id or order_id (`unmapped_summary`); every other label is only counted. A named
label is shown through `text.printable` (no control, zero-width or bidi character reaches the
console or the JSON), and is judged as a reader would see it: "06\u200b12..." is a phone.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from crossgroup.engine import Engine
from crossgroup.privacy.export_checks import looks_identifying
from crossgroup.text import printable_expr, visible

DROP_REASONS = (
    "no_consent",
    "restricted",
    "consent_time_unknown",
    "consent_after_as_of",
    "no_purchase_in_window",
)
# What the cleartext manifest summary may hold: counts of what is in the package, nothing
# else (section -> keys, None for a plain count). See `manifest_summary`.
MANIFEST_SUMMARY_KEYS: dict[str, tuple[str, ...] | None] = {
    "customers": ("exported",),
    "identities": ("with_email_token", "with_phone_token", "without_token"),
    "activity_rows": None,
    "unmapped_categories": ("rows",),
}
MISSING_CATEGORY = "(missing)"


def labels_equal_to_ids(engine: Engine, labels: list[str]) -> set[str]:
    """The labels equal to an input customer_id or order_id (trimmed): a small probe table
    joined to one scan of each identifier column, as in the payload's identifier check."""
    if not labels:
        return set()
    probe = pl.DataFrame({"label": labels}, schema={"label": pl.String})
    engine.register("_unmapped_labels", probe)
    hits = engine.to_polars(
        "SELECT DISTINCT u.label FROM _unmapped_labels u JOIN ("
        "SELECT trim(customer_id) AS id FROM customers "
        "UNION ALL SELECT trim(order_id) FROM purchases) s ON u.label = s.id"
    )
    return set(hits["label"])


def customer_counts(engine: Engine) -> dict[str, int]:
    rows = engine.to_polars("SELECT status, count(*) AS n FROM customer_status GROUP BY 1")
    return dict(rows.iter_rows())


_EXPORTED = (pl.col("window") == "in_window") & (pl.col("customer") == "eligible")


def purchase_summary(counts: pl.DataFrame) -> dict[str, int]:
    """Purchase rows read, by window, and exported, from `export_rules.purchase_counts_sql`.

    Exported rows are the in-window rows of eligible customers: the rows the activity sums.
    """

    def total(expr: pl.Expr) -> int:
        return int(counts.filter(expr)["rows"].sum())

    in_window = pl.col("window") == "in_window"
    return {
        "read": total(pl.lit(True)),
        "in_window": total(in_window),
        "before_window": total(pl.col("window") == "before_window"),
        "future_dated": total(pl.col("window") == "future_dated"),
        "in_window_not_eligible": total(in_window & (pl.col("customer") != "eligible")),
        "unknown_customer": total(pl.col("customer") == "unknown_customer"),
        "exported": total(_EXPORTED),
    }


def unmapped_labels(counts: pl.DataFrame) -> pl.DataFrame:
    """Exported rows per unmapped (normalized) label, with their distinct customers; a NULL
    category is a missing label. Most rows first, then by label (missing last)."""
    return (
        counts.filter(_EXPORTED & pl.col("unmapped"))
        .group_by("category")
        .agg(pl.col("rows").sum(), pl.col("customer_id").n_unique().alias("customers"))
        .sort(["rows", "category"], descending=[True, False], nulls_last=True)
    )


def unmapped_summary(
    unmapped: pl.DataFrame, *, min_customers: int, id_labels: set[str]
) -> dict[str, Any]:
    """Unmapped rows, the labels safe to name (see the module rules), the rest counted."""
    labels, withheld = [], {"labels": 0, "rows": 0}
    with_shown = unmapped.select(
        "category", printable_expr(pl.col("category")).alias("shown"), "rows", "customers"
    )
    for category, shown, rows, customers in with_shown.iter_rows():
        if category is None:
            labels.append({"category": MISSING_CATEGORY, "rows": int(rows)})
        elif _nameable(category, customers, min_customers, id_labels):
            labels.append({"category": shown, "rows": int(rows)})
        else:
            withheld["labels"] += 1
            withheld["rows"] += int(rows)
    total = int(unmapped["rows"].sum()) if unmapped.height else 0
    return {"rows": total, "labels": labels, "withheld": withheld}


def _nameable(category: str, customers: int, min_customers: int, id_labels: set[str]) -> bool:
    return (
        customers >= min_customers
        and not looks_identifying(category)
        and not looks_identifying(visible(category))  # as read, zero-width characters gone
        and category not in id_labels
    )


def manifest_summary(summary: dict[str, Any]) -> dict[str, Any]:
    """The part of the export summary that goes into the cleartext manifest.

    Only counts of what the package holds (`MANIFEST_SUMMARY_KEYS`): no drop reasons, no
    count of non-consenting or CRM-wide customers, no label, no amount.
    """
    out: dict[str, Any] = {}
    for section, keys in MANIFEST_SUMMARY_KEYS.items():
        value = summary[section]
        out[section] = int(value) if keys is None else {k: int(value[k]) for k in keys}
    return out


def customers_summary(read: int, status: dict[str, int], exported: int) -> dict[str, Any]:
    eligible = status.get("eligible", 0)
    dropped = {reason: status.get(reason, 0) for reason in DROP_REASONS}
    dropped["no_purchase_in_window"] = eligible - exported
    return {"read": read, "eligible": eligible, "exported": exported, "dropped": dropped}
