"""The group-wide cells in DP mode: exact counts per person's own bands, OpenDP noise, then a
threshold on the noisy counts (DESIGN §5.10, `[privacy] group_figures = "dp"`).

Threshold mode (`group/cells.py`) counts the *released* values and withholds, per recipient,
what its own counts would let it subtract. A count over released values cannot be given a
per-person bound, since k-anonymity coarsens a row according to who else is in the batch.
So DP mode counts each person's own bands before k-anonymity (segment, value tier, channel,
breadth and affinity flags: each depends only on that person, given the segment model and
value-tier cuts, which a batch reusing the series' model takes from an earlier batch), every
cell of a fixed grid of public keys (a key with nobody is a zero to add noise to, never an
absent row). One person moves one cell of each partition table and at most
`flags_per_person` cells of each affinity table, plus, in a maison's view, its
other_sector_spend: that is the sensitivity the noise is calibrated on. A noisy cell is
published when it reaches k_aggregate plus its 95 % margin, so a published cell covers
k_aggregate persons with 95 % confidence; every recipient gets the same noisy draw of the
group cells, so comparing returns cannot average the noise away.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import polars as pl

from crossgroup.engine import Engine
from crossgroup.group.bands import MULTI_MAISON_BREADTH, return_hierarchies
from crossgroup.group.cells import CELL_SCHEMA, PARTITION_TABLES, scope_cells
from crossgroup.privacy.noise import (
    GaussianNoise,
    calibrate,
    cells_sensitivity,
    noisy_threshold,
)
from crossgroup.privacy.policy import ReleasePolicy

# The banded attributes the partition tables count, by the hierarchy that bands them.
_BANDED = {"segment_label": "segment", "value_tier": "value_tier",
           "channel_preference": "channel_preference", "breadth": "breadth"}  # fmt: skip
_KEY = ["table", "row_key", "col_key"]


def group_noise(
    policy: ReleasePolicy, names: Sequence[str], affinity_share: float, *, other_sector: bool
) -> tuple[GaussianNoise, float] | None:
    """The release's noise and the epsilon the processor's reports spend (None in threshold
    mode). The noise is calibrated on a maison's figures, the largest view: the group cells
    and, with `other_sector`, its other_sector_spend table (every released name but its own);
    the reports hold the group cells only. One person has an affinity for at most
    1 / affinity_share sectors, and for at most every released sector name."""
    if policy.group_figures != "dp":
        return None
    flags = min(len(names), math.floor(1 / affinity_share))
    others = max(len(names) - 1, 0) if other_sector else 0
    noise = calibrate(
        policy.epsilon_per_release, policy.delta,
        cells_sensitivity(len(PARTITION_TABLES), flags, others),
    )  # fmt: skip
    return noise, noise.spent(cells_sensitivity(len(PARTITION_TABLES), flags))


def multi_maison_codes(policy: ReleasePolicy) -> list[int]:
    """The band codes (`generalize_table(keep_codes=True)`) of buying at two maisons or more."""
    values, _ = {h.name: h for h in return_hierarchies([], [], policy)}["breadth"].codes()
    return [i for i, v in enumerate(values) if v in MULTI_MAISON_BREADTH]


def banded_counts(
    engine: Engine,
    codes: str,
    affinity: str,
    *,
    labels: Mapping[int, str],
    names: Sequence[str],
    policy: ReleasePolicy,
    sectors: Sequence[str],
) -> pl.DataFrame:
    """Persons per combination of their own bands (before k-anonymity) and affinity flags, in
    `counted_persons`' shape: only these counts come to the driver.

    `codes`: each person's band codes (`generalize_table(keep_codes=True)`); `affinity`: their
    flags (`release.affinity_flags`), one per released name in `names` order.
    """
    flags = [f"affinity_{i}" for i in range(len(names))]
    bands = list(_BANDED.values())
    keys = [*(f"c.{b}" for b in bands), *(f"a.{f}" for f in flags)]
    counted = engine.to_polars(
        f"SELECT {', '.join(keys)}, count(*) AS weight FROM {codes} c "
        f"JOIN {affinity} a ON a.person_id = c.person_id GROUP BY {', '.join(keys)}"
    )
    by_name = {h.name: h for h in return_hierarchies(sorted(labels), list(sectors), policy)}
    decoded = []
    for column, band in _BANDED.items():
        values, _ = by_name[band].codes()
        if band == "segment":
            values = [None if v is None else labels[int(v)] for v in values]
        lookup = pl.Series(values, dtype=pl.String)
        decoded.append(
            lookup.gather(pl.Series(counted.get_column(band).cast(pl.UInt32))).alias(column)
        )
    return counted.select(
        *decoded,
        *(pl.col(f).alias(n) for f, n in zip(flags, names, strict=True)),
        pl.col("weight").cast(pl.Int64),
    )


def key_grid(
    labels: Mapping[int, str], names: Sequence[str], policy: ReleasePolicy, sectors: Sequence[str]
) -> pl.DataFrame:
    """Every cell DP mode publishes or withholds: the public values of each table (segment
    labels, default bands, released sector names), whether anyone has them or not."""
    by_name = {h.name: h for h in return_hierarchies(sorted(labels), list(sectors), policy)}
    segments = list(dict.fromkeys(labels[s] for s in sorted(labels)))
    rows = []
    for table, column in PARTITION_TABLES.items():
        values = segments if column == "segment_label" else by_name[_BANDED[column]].values
        rows += [(table, v, "") for v in values]
    rows += [("sector_affinity", n, "") for n in names]
    rows += [("segment_sector_affinity", s, n) for s in segments for n in names]
    return pl.DataFrame(rows, schema=_KEY, orient="row")


def noisy_group_cells(
    counted: pl.DataFrame,
    grid: pl.DataFrame,
    names: Sequence[str],
    noise: GaussianNoise,
    k_aggregate: int,
) -> pl.DataFrame:
    """The group cells every recipient gets in DP mode: each cell of `grid` noised once (one
    OpenDP draw for the release), published when it reaches k_aggregate plus the 95 % margin,
    then the `suppression` rows. Shares are of noisy totals: a partition's published and
    withheld cells together, the noisy segment size for segment_sector_affinity."""
    exact = pl.DataFrame(schema={**dict.fromkeys(_KEY, pl.String), "persons": pl.Int64})
    if counted.height:
        exact = scope_cells(counted, "group", list(names)).select(*_KEY, "persons")
    cells = grid.join(exact, on=_KEY, how="left").with_columns(pl.col("persons").fill_null(0))
    noisy = noise.noisy(cells.get_column("persons").to_list())
    margin = noise.margin
    threshold = noisy_threshold(k_aggregate, margin)
    # shares divide by noisy totals summed unrounded and unclipped, so they stay unbiased
    cells = cells.with_columns(
        noisy=pl.Series(noisy).round(0).clip(lower_bound=0.0),
        raw=pl.Series(noisy),
        published=pl.Series(noisy) >= threshold,
    )
    totals = (
        cells.filter(pl.col("table").is_in(list(PARTITION_TABLES)))
        .group_by("table")
        .agg(pl.col("raw").sum().alias("total"))
    )
    mix = cells.filter(pl.col("table") == "segment_mix")
    sizes = mix.select(pl.col("row_key"), pl.col("raw").alias("size"),
                       pl.col("published").alias("size_published"))  # fmt: skip
    mix_total = float(mix.get_column("raw").sum())
    cells = (
        cells.join(totals, on="table", how="left")
        .join(sizes, on="row_key", how="left")
        .with_columns(
            base=pl.when(pl.col("table") == "sector_affinity")
            .then(pl.lit(mix_total))
            .when(pl.col("table") == "segment_sector_affinity")
            .then(pl.col("size"))
            .otherwise(pl.col("total")),
            reason=pl.when(~pl.col("published"))
            .then(pl.lit("noisy"))
            .when((pl.col("table") == "segment_sector_affinity") & ~pl.col("size_published"))
            .then(pl.lit("size"))
            .otherwise(pl.lit(None)),
        )
    )
    held = pl.col("reason").is_not_null()
    share = pl.when(pl.col("base") > 0).then((pl.col("noisy") / pl.col("base")).clip(0.0, 1.0))
    notes = {"noisy": f"noisy count under {threshold:.0f} persons (k_aggregate plus the 95 % "
             "margin)", "size": "the segment's size is withheld"}  # fmt: skip
    published = cells.select(
        "table",
        pl.lit("group").alias("scope"),
        "row_key",
        "col_key",
        pl.when(held).then(None).otherwise(pl.col("noisy")).cast(pl.Int64).alias("persons"),
        pl.when(held).then(None).otherwise(share).alias("share"),
        held.alias("suppressed"),
        pl.col("reason").replace_strict(notes, default="").alias("note"),
        pl.lit(margin).alias("margin"),
    )
    summary = (
        cells.filter(held)
        .group_by("table")
        .agg(pl.len().alias("cells"), pl.col("noisy").sum().alias("held"))
        .sort("table")
        .select(
            pl.lit("suppression").alias("table"),
            pl.lit("group").alias("scope"),
            pl.col("table").alias("row_key"),
            pl.lit("").alias("col_key"),
            pl.when((pl.col("cells") >= 2) & (pl.col("held") >= k_aggregate))
            .then(pl.col("held"))
            .cast(pl.Int64)
            .alias("persons"),
            pl.lit(None, dtype=pl.Float64).alias("share"),
            pl.lit(False).alias("suppressed"),
            pl.format(
                "{} cell(s) withheld: noisy count under {} persons, or the segment's size is",
                pl.col("cells"),
                pl.lit(round(threshold)),
            ).alias("note"),
            pl.lit(margin).alias("margin"),
        )
    )
    return pl.concat([published.cast(CELL_SCHEMA), summary.cast(CELL_SCHEMA)]).sort(_KEY)


def noisy_match_cells(cells: pl.DataFrame, noise: GaussianNoise) -> pl.DataFrame:
    """DP mode's match figures from the noisy group cells (`noisy_group_cells`; no new noise,
    so no new cost): the persons in the batch, as the sum of the noisy breadth cells, with the
    margin of that sum. Records are withheld (no bound holds for one person's records), and so
    are persons by exact number of maisons and pairwise overlaps (a person at n maisons is in
    n(n-1)/2 overlaps): the noisy breadth cells say as much."""
    breadth = cells.filter(pl.col("table") == "breadth")
    held = cells.filter((pl.col("table") == "suppression") & (pl.col("row_key") == "breadth"))
    known = held.height == 0 or held.get_column("persons").is_not_null().all()
    total = int(breadth.get_column("persons").fill_null(0).sum()) + int(
        held.get_column("persons").fill_null(0).sum()
    )
    margin = noise.margin * math.sqrt(breadth.height)
    rows = [
        ("match_totals", "group", "persons", "", total if known else None, None, not known,
         "" if known else "withheld with a breadth cell", margin),
        ("match_totals", "group", "records", "", None, None, True,
         "withheld in DP mode: one person's records have no bound", None),
    ]  # fmt: skip
    return pl.DataFrame(rows, schema=CELL_SCHEMA, orient="row")


def noisy_other_sector(cells: pl.DataFrame, noise: GaussianNoise, k_aggregate: int) -> pl.DataFrame:
    """One maison's other_sector_spend in DP mode, final: its customers spend at other maisons,
    so the counts per sector, the shares of spend summed (each customer's add up to at most
    1) and the base are noised (one draw per maison); a sector is published when its noisy
    count reaches k_aggregate plus the margin, its share being the noisy sum over the noisy
    base. `cells`: `cells.other_sector_cells` (unsuppressed)."""
    if cells.is_empty():
        return pl.DataFrame(schema=CELL_SCHEMA)
    base = int(cells.get_column("base").max() or 0)
    counts = [*cells.get_column("persons"), *(cells["share"] * cells["base"]), base]
    noisy = noise.noisy(counts)
    n = cells.height
    persons, share_sum, noisy_base = noisy[:n], noisy[n : 2 * n], max(noisy[-1], 1.0)
    threshold = noisy_threshold(k_aggregate, noise.margin)
    # a share is of the noisy base: published only when that base passes the threshold too
    published = pl.Series((persons >= threshold) & (noisy_base >= threshold))
    withheld = f"noisy count under {threshold:.0f} persons (k_aggregate plus the 95 % margin)"
    out = cells.select(
        "table", "scope", "row_key", "col_key",
        pl.when(published).then(pl.Series(persons).round(0)).cast(pl.Int64).alias("persons"),
        pl.when(published).then(pl.Series(share_sum / noisy_base).clip(0.0, 1.0)).alias("share"),
        (~published).alias("suppressed"),
        pl.when(published).then(pl.lit("")).otherwise(pl.lit(withheld)).alias("note"),
        pl.lit(noise.margin).alias("margin"),
    )  # fmt: skip
    held = int((~published).sum())
    summary = pl.DataFrame(
        [("suppression", "maison", cells["table"][0], "", None, None, False,
          f"{held} cell(s) withheld: noisy count under {round(threshold)} persons",
          noise.margin)],
        schema=CELL_SCHEMA, orient="row",
    )  # fmt: skip
    return pl.concat([out.cast(CELL_SCHEMA), *([summary] if held else [])])
