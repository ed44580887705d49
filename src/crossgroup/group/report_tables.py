"""The processor's own report tables besides the group cells: match figures, segment model
quality and what k-anonymity cost (`reports/`, DESIGN §5.6-5.7). Counts of persons go through
the cell rule (`cells.suppress`); model scores and the cost of k-anonymity are not cells."""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from crossgroup.group.cells import CELL_SCHEMA, suppress


def match_cells(figures: Mapping, k_aggregate: int) -> pl.DataFrame:
    """Match figures as cells: breadth of persons and pairwise maison overlap, thresholded."""
    rows = [("match_totals", "group", "records", "", int(figures.get("records", 0)))]
    rows.append(("match_totals", "group", "persons", "", int(figures.get("persons", 0))))
    for n, persons in figures.get("persons_by_maisons", {}).items():
        rows.append(("match_breadth", "group", f"{n} maison(s)", "", persons))
    for pair, persons in figures.get("pairwise_overlap", {}).items():
        a, _, b = pair.partition("|")
        rows.append(("pairwise_overlap", "group", a, b, persons))
    frame = pl.DataFrame(
        rows,
        orient="row",
        schema={k: CELL_SCHEMA[k] for k in ("table", "scope", "row_key", "col_key", "persons")},
    )
    total = max(int(figures.get("persons", 0)), 1)
    share = pl.when(pl.col("table") == "match_totals").then(None)
    frame = frame.with_columns(share=share.otherwise(pl.col("persons") / total))
    # an overlap already withheld upstream (None) stays suppressed
    frame = frame.with_columns(pl.col("persons").fill_null(0))
    return suppress(frame, k_aggregate)


def quality_table(
    quality: Mapping, labels: Mapping[int, str], k_aggregate: int, *, sizes: bool = True
) -> pl.DataFrame:
    """Segment model quality: scores by name, then (`sizes`) segment sizes under the cell rule.

    The sizes partition the fit sample, whose total is published (match figures, segment
    mix), so they go through `suppress` as a subtractable partition: below k_aggregate
    withheld, and further sizes (smallest first) with them until no withheld size can be
    recovered by subtraction. Scores (silhouette, ARI) are not counts of persons.
    """
    scores: list[tuple[str, str, float]] = [
        (name, "", float(quality[name]))
        for name in ("silhouette", "stability_ari")
        if name in quality
    ]
    scores += [
        ("silhouette_by_k", str(k), float(v)) for k, v in quality.get("silhouette_by_k", {}).items()
    ]
    schema = {"metric": pl.String, "key": pl.String, "value": pl.Float64, "suppressed": pl.Boolean}
    score_schema = {"metric": pl.String, "key": pl.String, "value": pl.Float64}
    frame = pl.DataFrame(scores, orient="row", schema=score_schema).with_columns(
        suppressed=pl.lit(False)
    )
    sizes = quality.get("sizes", {}) if sizes else {}
    if sizes:
        total = max(sum(int(v) for v in sizes.values()), 1)
        cells = pl.DataFrame(
            {
                "table": "segment_sizes",
                "scope": "group",
                "row_key": [labels.get(int(s), str(s)) for s in sizes],
                "col_key": "",
                "persons": [int(v) for v in sizes.values()],
            },
            schema_overrides={"persons": pl.Int64},
        ).with_columns(share=pl.col("persons") / total, base=pl.lit(total, dtype=pl.Int64))
        held = suppress(cells, k_aggregate).filter(pl.col("table") == "segment_sizes")
        frame = pl.concat(
            [
                frame.cast(schema),
                held.select(
                    pl.lit("segment_size").alias("metric"),
                    pl.col("row_key").alias("key"),
                    pl.col("persons").cast(pl.Float64).alias("value"),
                    "suppressed",
                ),
            ]
        )
    return frame.cast(schema)


def loss_table(loss: pl.DataFrame, persons: int, generalized: int, withheld: int) -> pl.DataFrame:
    """What k-anonymity cost, per attribute, plus rows generalized and withheld (counts only)."""
    totals = pl.DataFrame(
        {
            "attribute": ["(any attribute)", "(whole row withheld)"],
            "coarsened": [generalized, 0],
            "suppressed": [0, withheld],
        }
    )
    return pl.concat([loss, totals.cast(loss.schema)]).with_columns(
        share_of_persons=(pl.col("coarsened") + pl.col("suppressed")) / max(persons, 1)
    )
