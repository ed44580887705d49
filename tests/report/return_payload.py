"""A return payload built by hand following the contract (DESIGN §4.4), for report tests."""

from __future__ import annotations

import hashlib

import numpy as np
import polars as pl

from crossgroup.contracts import CELLS

SECTORS = [
    "Watches & Jewelry",
    "Fashion & Leather Goods",
    "Perfumes & Cosmetics",
    "Wines & Spirits",
]
GLOSSARY = pl.DataFrame(
    {
        "segment": pl.Series([1, 2, 3], dtype=pl.Int32),
        "segment_label": [
            "Jewelry-led, high value, multi-maison",
            "Beauty regulars",
            "Occasional <gift> buyers & co",
        ],
        "description": [
            "Buy mostly fine jewelry, spend in the top bands.",
            "Frequent fragrance and skincare orders, mostly online.",
            "One or two orders a year, often around the holidays.",
        ],
    }
)


def maison_ref(customer_id: str) -> bytes:
    return hashlib.sha256(b"test-local-secret" + customer_id.encode()).digest()[:16]


def make_segments(n: int = 600, seed: int = 7) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    seg = rng.integers(1, 4, n).astype(np.int32)
    labels = GLOSSARY["segment_label"].to_list()
    tiers = rng.choice(["Entry", "Core", "High", "Top", "High-Top", None], n)
    touched = (tiers == "High-Top") | pl.Series(tiers).is_null().to_numpy()
    generalized = np.where(touched, "value_tier", "")
    return pl.DataFrame(
        {
            "maison_ref": [maison_ref(f"C{i:05d}") for i in range(n)],
            "segment": pl.Series(seg, dtype=pl.Int32),
            "segment_label": [labels[s - 1] for s in seg],
            "value_tier": tiers,
            "breadth": rng.choice(["1 maison", "2 maisons", "3+ maisons"], n),
            "recency_band": rng.choice(["0-3 months", "3-12 months", "1-3 years"], n),
            "frequency_band": rng.choice(["1 order", "2-4 orders", "5+ orders"], n),
            "channel_preference": rng.choice(["Boutique", "Online", "Omnichannel"], n),
            "lead_sector": rng.choice(SECTORS, n),
            "second_sector": rng.choice([*SECTORS, "No other sector"], n),
            "generalized": generalized,
        }
    )


def make_aggregates(segments: pl.DataFrame, k_aggregate: int = 50) -> pl.DataFrame:
    rows = []

    def add(table, scope, row_key, col_key, persons, total):
        suppressed = persons < k_aggregate
        rows.append(
            (
                table,
                scope,
                row_key,
                col_key,
                None if suppressed else persons,
                None if suppressed else persons / total,
                suppressed,
                f"fewer than {k_aggregate} persons" if suppressed else "",
            )
        )

    n = segments.height
    for table, col in [
        ("segment_mix", "segment_label"),
        ("value_tiers", "value_tier"),
        ("channel_mix", "channel_preference"),
        ("breadth", "breadth"),
    ]:
        for key, count in segments.group_by(col).len().drop_nulls(col).iter_rows():
            add(table, "maison", str(key), "", count, n)
            add(table, "group", str(key), "", count * 9, n * 10)
    for i, sector in enumerate(SECTORS):
        add("sector_affinity", "maison", sector, "", n // (i + 2), n)
        add("sector_affinity", "group", sector, "", n * 10 // (i + 3), n * 10)
    # a maison of Watches & Jewelry: its multi-maison customers' spend in the other sectors
    multi = segments.filter(pl.col("breadth") != "1 maison").height
    for i, sector in enumerate(SECTORS[1:]):
        suppressed = i == 2  # too few of them spend there
        rows.append(
            (
                "other_sector_spend",
                "maison",
                sector,
                "",
                None if suppressed else multi // (i + 2),
                None if suppressed else 0.2 / (i + 1),
                suppressed,
                f"fewer than {k_aggregate} persons" if suppressed else "",
            )
        )
    for label, count in segments.group_by("segment_label").len().iter_rows():
        for i, sector in enumerate(SECTORS):
            add("segment_sector_affinity", "maison", label, sector, count // (i + 1), count)
            add("segment_sector_affinity", "group", label, sector, count * 9 // (i + 1), count * 9)
    exact = {c: t for c, t in CELLS.schema.items() if c != "margin"}  # threshold mode: exact
    frame = pl.DataFrame(rows, orient="row", schema=exact)
    supp = (
        frame.filter(pl.col("suppressed"))
        .group_by("table", "scope")
        .agg(pl.len().alias("cells"))
        .sort("table", "scope")
    )
    # as the processor writes them (group/release.py): persons only when >= 2 cells
    extra = pl.DataFrame(
        {
            "table": "suppression",
            "scope": [*supp["scope"], "maison"],
            "row_key": [*supp["table"], "segments"],
            "col_key": [""] * supp.height + ["withheld rows"],
            "persons": pl.Series(
                [(k_aggregate - 1) * c if c >= 2 else None for c in supp["cells"]] + [12],
                dtype=pl.Int64,
            ),
            "share": pl.Series([None] * (supp.height + 1), dtype=pl.Float64),
            "suppressed": False,
            "note": [
                f"{c} cell(s) suppressed: fewer than {k_aggregate} persons, or recoverable by "
                "subtraction"
                for c in supp["cells"]
            ]
            + ["profile shared by fewer than 10 persons even when fully generalized"],
        }
    )
    return pl.concat([frame, extra]).with_columns(margin=pl.lit(None, dtype=pl.Float64))
