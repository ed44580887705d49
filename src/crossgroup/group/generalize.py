"""k-anonymity over the full returned attribute combination (DESIGN §5.6).

Every combination of returned values (segment and segment label included) is made to cover
at least `k` persons by climbing each attribute's hierarchy (`group/bands.py`): default band
-> coarser band -> suppressed (null). Whole rows are suppressed only as a last resort.
Everything is vectorized Polars: attribute values are small integer codes packed into one
UInt64 class key, so an equivalence-class count is one `group_by` on one column.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import polars as pl

from crossgroup.group.bands import Hierarchy, assign_bands, return_hierarchies
from crossgroup.privacy.policy import ReleasePolicy


@dataclass(frozen=True)
class Generalization:
    """The released person table and what privacy cost: rows and attributes given up."""

    released: pl.DataFrame  # person_id, segment, segment_label, attributes, generalized
    loss: pl.DataFrame  # attribute, coarsened, suppressed (persons)
    persons: int
    persons_generalized: int  # rows carrying any coarsened or suppressed attribute
    persons_suppressed: int  # whole rows withheld
    k: int
    iterations: int

    def summary(self) -> dict:
        return {
            "k": self.k,
            "persons": self.persons,
            "persons_generalized": self.persons_generalized,
            "persons_suppressed": self.persons_suppressed,
            "iterations": self.iterations,
            "by_attribute": {
                r["attribute"]: {"coarsened": r["coarsened"], "suppressed": r["suppressed"]}
                for r in self.loss.iter_rows(named=True)
            },
        }


def _encode(bands: pl.DataFrame, hierarchies: list[Hierarchy]) -> tuple[pl.DataFrame, list]:
    specs = []
    shift = 0
    cols = [pl.col("person_id")]
    for h in hierarchies:
        labels, step = h.codes()
        bits = max(1, math.ceil(math.log2(len(labels))))
        specs.append((h, labels, step, shift))
        shift += bits
        mapping = {v: i for i, v in enumerate(labels) if v is not None}
        source = pl.col(h.name).cast(pl.String)
        cols.append(source.replace_strict(mapping, return_dtype=pl.UInt8).alias(h.name))
    if shift > 64:
        raise ValueError("too many returned attribute values to pack into one class key")
    return bands.select(cols), specs


def _class_key(specs: list) -> pl.Expr:
    parts = [
        pl.col(h.name).cast(pl.UInt64) * pl.lit(1 << s, dtype=pl.UInt64) for h, _, _, s in specs
    ]
    return pl.sum_horizontal(parts).alias("class_key")


def _candidate_steps(small: pl.DataFrame, specs: list) -> pl.DataFrame:
    """For each small class and each attribute it can still give up: the new key and cost."""
    frames = []
    for i, (h, _labels, step, shift) in enumerate(specs):
        n_default = len(h.values)
        code = pl.col(h.name)
        new_code = code.replace_strict(dict(enumerate(step.tolist())), return_dtype=pl.UInt8)
        cost = (
            pl.when((code >= 1) & (code <= n_default) & pl.lit(bool(h.coarse)))
            .then(pl.lit(h.coarsen_cost))
            .otherwise(pl.lit(h.suppress_cost))
        )
        unit = pl.lit(1 << shift, dtype=pl.UInt64)
        frames.append(
            small.filter(code != 0).select(
                "class_key",
                "class_size",
                pl.lit(i, dtype=pl.UInt8).alias("attr"),
                (
                    pl.col("class_key")
                    - code.cast(pl.UInt64) * unit
                    + new_code.cast(pl.UInt64) * unit
                ).alias("new_key"),
                cost.alias("cost"),
            )
        )
    return pl.concat(frames)


def k_anonymize(
    bands: pl.DataFrame,
    *,
    k: int,
    labels: Mapping[int, str],
    hierarchies: list[Hierarchy],
) -> Generalization:
    """Generalize until every released combination covers at least `k` persons.

    Greedy, all small classes at once: each class takes the cheapest step that lifts it to
    `k` persons (estimated with every small class moving), or else the step with the best
    gain per cost. A class rises one level per round, so at most (sum of levels) rounds run.
    Rows still below `k` once fully suppressed are withheld and counted.
    """
    codes, specs = _encode(bands, hierarchies)
    persons = codes.height
    # Settled classes (>= k) only ever grow, since moved rows land on coarser codes; so each
    # round works on the still-small rows only, against the settled counts per key.
    active = codes.with_columns(_class_key(specs))
    settled_parts: list[pl.DataFrame] = []
    settled = pl.DataFrame(
        schema={"class_key": pl.UInt64, "settled": pl.UInt32}
    )  # persons per settled class key
    max_rounds = 1 + sum(2 if h.coarse else 1 for h in hierarchies)
    rounds = 0
    while True:
        active = (
            active.drop("class_size", strict=False)
            .join(settled, on="class_key", how="left")
            .with_columns(class_size=pl.len().over("class_key") + pl.col("settled").fill_null(0))
            .drop("settled")
        )
        lifted = active.filter(pl.col("class_size") >= k)
        if not lifted.is_empty():
            settled_parts.append(lifted)
            settled = (
                pl.concat([settled, lifted.group_by("class_key").agg(pl.len().alias("settled"))])
                .group_by("class_key")
                .agg(pl.col("settled").sum())
            )
            active = active.filter(pl.col("class_size") < k)
        if active.is_empty() or rounds >= max_rounds:
            break
        rounds += 1
        classes = active.unique("class_key").select(
            "class_key", "class_size", *(h.name for h, *_ in specs)
        )
        steps = _candidate_steps(classes, specs)
        if steps.is_empty():
            break  # only fully suppressed small classes remain
        # Size each candidate class would reach: settled persons already on that key plus
        # every small class that would land on it.
        arriving = steps.group_by("attr", "new_key").agg(pl.col("class_size").sum().alias("arr"))
        steps = (
            steps.join(arriving, on=["attr", "new_key"], how="left")
            .join(settled, left_on="new_key", right_on="class_key", how="left")
            .with_columns(reach=pl.col("arr") + pl.col("settled").fill_null(0))
            .with_columns(
                lifts=pl.col("reach") >= k,
                score=pl.col("reach").cast(pl.Float64) / pl.col("cost"),
            )
        )
        # a class takes the cheapest step that lifts it to k, else the best reach per cost
        choice = (
            steps.with_columns(
                order=pl.when("lifts").then(pl.col("cost")).otherwise(-pl.col("score"))
            )
            .sort(["class_key", "lifts", "order", "attr"], descending=[False, True, False, False])
            .group_by("class_key", maintain_order=True)
            .first()
            .select("class_key", pl.col("attr").alias("chosen"))
        )
        active = active.join(choice, on="class_key", how="left")
        updates = []
        for i, (h, _labels, step, _shift) in enumerate(specs):
            stepped = pl.col(h.name).replace_strict(
                dict(enumerate(step.tolist())), return_dtype=pl.UInt8
            )
            updates.append(
                pl.when(pl.col("chosen") == i).then(stepped).otherwise(pl.col(h.name)).alias(h.name)
            )
        active = active.with_columns(updates).drop("chosen").with_columns(_class_key(specs))
    kept = pl.concat(settled_parts) if settled_parts else active.clear()
    return _decode(kept, specs, persons, k, rounds, labels)


def _decode(
    kept: pl.DataFrame,
    specs: list,
    persons: int,
    k: int,
    rounds: int,
    segment_labels: Mapping[int, str],
) -> Generalization:
    cols: list[pl.Expr] = [pl.col("person_id")]
    given_up: list[pl.Expr] = []
    loss_rows = []
    for h, labels, _step, _shift in specs:
        code = pl.col(h.name)
        n_default = len(h.values)
        decode = {i: v for i, v in enumerate(labels) if v is not None}
        if h.name == "segment":
            cols.append(
                code.replace_strict({i: int(v) for i, v in decode.items()}, default=None)
                .cast(pl.Int32)
                .alias("segment")
            )
            cols.append(
                code.replace_strict(
                    {i: segment_labels.get(int(v), f"Segment {v}") for i, v in decode.items()},
                    default=None,
                    return_dtype=pl.String,
                ).alias("segment_label")
            )
        else:
            cols.append(
                code.replace_strict(decode, default=None, return_dtype=pl.String).alias(h.name)
            )
        # A pooled sector name is where its rows start (release policy, not k-anonymity):
        # only a step beyond a row's starting level counts as information given up.
        starts = [i for i, v in enumerate(labels) if v in h.extra_coarse and i > n_default]
        coarsened = (code > n_default) & ~code.is_in(starts)
        given_up.append(
            pl.when(code == 0).then(pl.lit(h.name)).when(coarsened).then(pl.lit(h.name))
        )
        loss_rows.append(
            kept.select(
                pl.lit(h.name).alias("attribute"),
                coarsened.sum().cast(pl.Int64).alias("coarsened"),
                (code == 0).sum().cast(pl.Int64).alias("suppressed"),
            )
        )
    cols.append(pl.concat_list(given_up).list.drop_nulls().list.join(",").alias("generalized"))
    released = kept.select(cols).sort("person_id")
    loss = pl.concat(loss_rows)
    generalized = int((released.get_column("generalized") != "").sum())
    return Generalization(
        released=released,
        loss=loss,
        persons=persons,
        persons_generalized=generalized,
        persons_suppressed=persons - kept.height,
        k=k,
        iterations=rounds,
    )


def generalize(
    features: pl.DataFrame,
    segments: np.ndarray | pl.Series,
    *,
    policy: ReleasePolicy,
    labels: Mapping[int, str],
    sector_columns: Mapping[str, str],
    n_segments: int | None = None,
) -> Generalization:
    """Bands, then k-anonymity at `policy.k`: the one call the pipeline makes.

    A sector with too few participating maisons is released under its family or the pooled
    name (`policy.released_sectors`); `labels` must come from a `SegmentModel` given the same
    mapping.
    """
    seg = np.asarray(segments)
    n_segments = n_segments or int(seg.max(initial=1))
    sectors = list(sector_columns)
    released = policy.released_sectors
    bands = assign_bands(features, seg, sector_columns=sector_columns, released_sectors=released)
    hierarchies = return_hierarchies(n_segments, sectors, policy)
    return k_anonymize(bands, k=policy.k, labels=labels, hierarchies=hierarchies)
