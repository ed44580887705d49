"""k-anonymity over the full returned attribute combination (DESIGN §5.6).

Every combination of returned values (segment and segment label included) is made to cover
at least `k` persons by climbing each attribute's hierarchy (`group/bands.py`): default band
-> coarser band -> suppressed (null). Whole rows are suppressed only as a last resort. The
search is `group/kanonymity.py`; here it is applied to a frame of persons (`generalize`)
or to engine tables whose persons never leave the engine before the release
(`generalize_table`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from functools import partial

import numpy as np
import polars as pl

from crossgroup.engine import Engine, Step
from crossgroup.group.bands import (
    VALUE_TIER_QUANTILES,
    assign_bands,
    band_frame,
    return_hierarchies,
    value_cut_positions,
)
from crossgroup.group.kanonymity import (
    Generalization,
    anonymize_classes,
    class_key,
    class_specs,
    encode_codes,
    k_anonymize,
)
from crossgroup.group.order_statistics import order_statistics
from crossgroup.privacy.policy import ReleasePolicy


def generalize(
    features: pl.DataFrame,
    segments: np.ndarray | pl.Series,
    *,
    policy: ReleasePolicy,
    labels: Mapping[int, str],
    sector_columns: Mapping[str, str],
) -> Generalization:
    """Bands, then k-anonymity at `policy.k`: the one call the pipeline makes.

    A sector with too few participating maisons is released under its family or the pooled
    name (`policy.released_sectors`); `labels` must come from a `SegmentModel` given the same
    mapping.
    """
    seg = np.asarray(segments)
    sectors = list(sector_columns)
    released = policy.released_sectors
    bands = assign_bands(features, seg, sector_columns=sector_columns, released_sectors=released)
    hierarchies = return_hierarchies(sorted(labels), sectors, policy)
    return k_anonymize(bands, k=policy.k, labels=labels, hierarchies=hierarchies)


def _coded_bands(
    features: pl.DataFrame,
    *,
    cuts: list[float],
    sector_columns: Mapping[str, str],
    released_sectors: Mapping[str, str],
    specs: list,
) -> pl.DataFrame:
    """person_id, class_key and the attribute codes of each person: a frame function run where
    the features are. Signed types only (Spark has no unsigned ones); class keys fit 63 bits.
    """
    bands = band_frame(
        features, cuts=cuts, sector_columns=sector_columns, released_sectors=released_sectors
    )
    codes = encode_codes(bands, specs).with_columns(class_key(specs))
    return codes.select(
        "person_id",
        pl.col("class_key").cast(pl.Int64),
        *(pl.col(h.name).cast(pl.Int16) for h, *_ in specs),
    )


def generalize_table(
    engine: Engine,
    features: str,
    segments: str,
    *,
    policy: ReleasePolicy,
    labels: Mapping[int, str],
    sector_columns: Mapping[str, str],
    name: str = "released",
    keep_codes: bool = False,
    cuts: list[float] | None = None,
) -> Generalization:
    """`generalize` over engine tables (features; person_id and segment): the value-tier cuts
    are exact order statistics found from a histogram of spend (`order_statistics`), the
    bands and class keys are computed where the rows are, only the counts per combination
    come to the driver for `anonymize_classes`, and the engine table `name` gets each
    released person's values; the result's `released` is None: the persons stay in the
    engine. `keep_codes`: keep each person's band codes before k-anonymity (the result's
    `codes`, an engine table the caller drops). `cuts`: value-tier cuts to use instead of the
    batch's own (DP mode's, saved with the series' model); the result says which were used.
    """
    if cuts is None:
        cuts = order_statistics(engine, features, "total_spend_eur", value_cut_positions)
        cuts = [float(c) for c in cuts] or [0.0] * len(VALUE_TIER_QUANTILES)
    hierarchies = return_hierarchies(sorted(labels), list(sector_columns), policy)
    specs = class_specs(hierarchies, key_bits=63)  # Spark's integers are signed
    joined = engine.run(
        Step(
            "generalize_input",
            f"SELECT f.*, s.segment FROM {features} f JOIN {segments} s USING (person_id)",
        )
    )
    coded = engine.map_frames(
        "generalize_codes",
        joined,
        partial(
            _coded_bands,
            cuts=cuts,
            sector_columns=dict(sector_columns),
            released_sectors=dict(policy.released_sectors),
            specs=specs,
        ),
    )
    engine.drop(joined)
    names = [h.name for h in hierarchies]
    classes = engine.to_polars(
        f"SELECT class_key, {', '.join(names)}, count(*) AS persons FROM {coded} "
        f"GROUP BY class_key, {', '.join(names)}"
    ).select(
        pl.col("class_key").cast(pl.UInt64),
        *(pl.col(n).cast(pl.UInt8) for n in names),
        pl.col("persons").cast(pl.UInt32),
    )
    outcome = anonymize_classes(classes, specs, k=policy.k, labels=labels)
    values = [c for c in outcome.classes.columns if c != "class_key"]
    engine.register(
        "generalize_outcome", outcome.classes.with_columns(pl.col("class_key").cast(pl.Int64))
    )
    engine.run(
        Step(
            name,
            f"SELECT c.person_id, {', '.join(f'o.{v}' for v in values)} "
            f"FROM {coded} c JOIN generalize_outcome o USING (class_key)",
        )
    )
    engine.drop("generalize_outcome")
    if not keep_codes:
        engine.drop(coded)
    return dataclasses.replace(
        outcome, codes=coded if keep_codes else None, cuts=tuple(float(c) for c in cuts)
    )
