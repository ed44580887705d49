"""Build what a batch would release, as frames: nothing is checked or written here.

The first of the processor's three closing steps (DESIGN §8): **build** (this module: pure
frames per recipient and for the processor's own reports), **check** (`privacy.
release_checks`), **emit** (`group.emit`: the one place that writes, seals, reports and
audits). A maison's return holds its `segments` (only its own refs), `aggregates` (cells of
`group.cells`, its own exact next to the whole batch's, suppressed for it) and `glossary`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import polars as pl

from crossgroup.group.cells import maison_aggregates, match_cells, scope_cells, suppress
from crossgroup.group.generalize import Generalization
from crossgroup.privacy.policy import ReleasePolicy
from crossgroup.privacy.release_checks import MaisonRelease

# A person has an affinity for a sector when it holds at least this share of their spend.
AFFINITY_SHARE = 0.10


@dataclass(frozen=True)
class Release:
    """Every table a batch would release: one return per maison and the processor's reports."""

    returns: dict[str, MaisonRelease]
    reports: dict[str, pl.DataFrame]  # aggregates, match_figures, segment_quality, suppression

    @property
    def group_cells(self) -> pl.DataFrame:
        return self.reports["aggregates"]


def build_release(
    policy: ReleasePolicy,
    *,
    maisons: list[str],
    generalization: Generalization,
    model,
    affinity: pl.DataFrame,
    sector_columns: Mapping[str, str],
    person_nodes: pl.DataFrame,
    match_figures: Mapping,
) -> Release:
    """The return of each maison in `maisons` and the processor's reports, all as frames.

    `model` is the fitted `SegmentModel` (labels, descriptions, quality); `affinity` the
    persons' sector flags (`affinity_flags`); `person_nodes`
    (maison, maison_ref, person_id) links each maison's refs to resolved persons.
    """
    gen, k_aggregate = generalization, policy.k_aggregate
    sectors = list(sector_columns)
    released = gen.released.join(affinity, on="person_id", how="left")
    group_raw = scope_cells(released, "group", sectors)
    terms = glossary(model.labels_, model.descriptions_)
    withheld_ids = person_nodes.join(gen.released.select("person_id"), on="person_id", how="anti")
    returns = {}
    for maison in maisons:
        own = person_nodes.filter(pl.col("maison") == maison).join(released, on="person_id")
        aggregates = maison_aggregates(
            own,
            group_raw,  # suppressed per recipient: it knows its own counts exactly
            sectors,
            k=policy.k,
            k_aggregate=k_aggregate,
            withheld=withheld_ids.filter(pl.col("maison") == maison).height,
        )
        segments = maison_segments(gen.released, person_nodes, maison)
        returns[maison] = MaisonRelease(maison, segments, aggregates, terms)
    reports = {
        "aggregates": suppress(group_raw, k_aggregate),
        "match_figures": match_cells(match_figures, k_aggregate),
        "segment_quality": quality_table(model.quality_, model.labels_, k_aggregate),
        "suppression": loss_table(
            gen.loss, gen.persons, gen.persons_generalized, gen.persons_suppressed
        ),
    }
    return Release(returns, reports)


def maison_segments(
    released: pl.DataFrame, person_nodes: pl.DataFrame, maison: str
) -> pl.DataFrame:
    """The `segments` table for one maison: its own nodes joined to their person's release.

    Sorted by maison_ref so the same inputs give byte-identical files.
    """
    nodes = person_nodes.filter(pl.col("maison") == maison).select("maison_ref", "person_id")
    return nodes.join(released, on="person_id", how="inner").drop("person_id").sort("maison_ref")


def affinity_flags(features: pl.DataFrame, sector_columns: Mapping[str, str]) -> pl.DataFrame:
    """person_id plus one boolean per sector (named by the sector) for the affinity tables."""
    return features.select(
        "person_id",
        *[(pl.col(c).fill_null(0.0) >= AFFINITY_SHARE).alias(s) for s, c in sector_columns.items()],
    )


def glossary(labels: Mapping[int, str], descriptions: Mapping[int, str]) -> pl.DataFrame:
    segments = sorted(labels)
    return pl.DataFrame(
        {
            "segment": pl.Series(segments, dtype=pl.Int32),
            "segment_label": [labels[s] for s in segments],
            "description": [descriptions.get(s, "") for s in segments],
        }
    )


def quality_table(quality: Mapping, labels: Mapping[int, str], k_aggregate: int) -> pl.DataFrame:
    """Segment model quality: scores by name, then segment sizes under the cell rule.

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
    sizes = quality.get("sizes", {})
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
