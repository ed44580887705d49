"""How stable segments are from one monthly batch to the next, on a synthetic series.

Evaluation only (it reads the synthetic world's purchases and truth, which no party has in
real life): on a folder of `crossgroup demo --months N`, the share of customers whose
returned segment id and label are the same in two consecutive batches, over the customers
whose purchases in the export window did not change (the figure a reused model must keep at
98 % or more, docs/segmentation.md) and over every customer returned in both.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl

from crossgroup.maison.export_rules import window_start


def changed_persons(root: Path, maisons: list[str], before: date, after: date) -> pl.Series:
    """Persons (truth ids) with a purchase entering the window between the two as-of dates,
    or one leaving it, in any of their maisons."""
    entering = (before, after)
    leaving = (window_start(before), window_start(after))
    moved = []
    for maison in maisons:
        day = pl.col("purchased_at").cast(pl.Date)
        moved.append(
            pl.scan_parquet(root / "maisons" / maison / "purchases.parquet")
            .filter(
                ((day > entering[0]) & (day <= entering[1]))
                | ((day > leaving[0]) & (day <= leaving[1]))
            )
            .select("customer_id", pl.lit(maison).alias("maison"))
        )
    truth = pl.scan_parquet(root / "truth.parquet")
    return (
        pl.concat(moved)
        .join(truth, on=["maison", "customer_id"])
        .select("person_id")
        .unique()
        .collect()
        .get_column("person_id")
    )


def series_stability(root: Path, as_of: tuple[date, date]) -> dict:
    """Kept segment id and label between the batches of two month ends of a demo folder
    (analyst/<YYYY-MM>/), per maison and overall, for unchanged customers and for everyone
    returned in both."""
    batches = tuple(d.strftime("%Y-%m") for d in as_of)
    maisons = sorted(p.name for p in (root / "maisons").iterdir() if p.is_dir())
    changed = changed_persons(root, maisons, *as_of)
    truth = pl.read_parquet(root / "truth.parquet").select("maison", "customer_id", "person_id")
    rows = []
    for maison in maisons:
        analyst = root / "maisons" / maison / "analyst"
        first, second = (
            pl.read_parquet(analyst / b / "segments.parquet").select(
                "customer_id", "segment", "segment_label"
            )
            for b in batches
        )
        both = first.join(second, on="customer_id", suffix="_next").join(
            truth.filter(pl.col("maison") == maison), on="customer_id", how="left"
        )
        rows.append(
            both.select(
                pl.lit(maison).alias("maison"),
                (
                    (pl.col("segment") == pl.col("segment_next"))
                    & (pl.col("segment_label") == pl.col("segment_label_next"))
                ).alias("kept"),
                pl.col("person_id").is_in(changed.implode()).not_().alias("unchanged"),
            )
        )
    table = pl.concat(rows)

    def share(frame: pl.DataFrame) -> dict:
        return {"customers": frame.height, "kept": round(float(frame["kept"].mean() or 0.0), 4)}

    return {
        "batches": list(batches),
        "unchanged": share(table.filter("unchanged")),
        "everyone": share(table),
        "by_maison": {
            m: {"unchanged": share(g.filter("unchanged")), "everyone": share(g)}
            for (m,), g in table.group_by("maison", maintain_order=True)
        },
    }
