"""k-anonymity over the full returned attribute combination (DESIGN §5.6): the search.

Attribute values are small integer codes packed into one class key, so a combination is
one integer and its count one `group_by`; the greedy search works on the counts per
combination only (`anonymize_classes`), which is all an engine needs to send the driver.
`group/generalize.py` applies it to person frames and engine tables.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass

import polars as pl

from crossgroup.group.bands import Hierarchy


@dataclass(frozen=True)
class Generalization:
    """The released person table and what privacy cost: rows and attributes given up."""

    # person_id, segment, segment_label, attributes, generalized; None when the persons stay
    # in an engine table (`generalize.generalize_table`)
    released: pl.DataFrame | None
    loss: pl.DataFrame  # attribute, coarsened, suppressed (persons)
    persons: int
    persons_generalized: int  # rows carrying any coarsened or suppressed attribute
    persons_suppressed: int  # whole rows withheld
    k: int
    iterations: int
    # class key -> released values (segment, segment_label, bands, generalized) of every
    # released combination; persons are joined to it by their class key
    classes: pl.DataFrame | None = None
    # the engine table of each person's band codes before k-anonymity, when asked to keep it
    # (`generalize_table(keep_codes=True)`; DP mode counts them, group/noisy_cells.py)
    codes: str | None = None
    # the value-tier cuts the bands were drawn with (`generalize_table`)
    cuts: tuple[float, ...] = ()

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


def _bits(h: Hierarchy) -> int:
    return max(1, math.ceil(math.log2(len(h.codes()[0]))))


def class_specs(hierarchies: list[Hierarchy], *, key_bits: int = 64) -> list:
    """(hierarchy, labels by code, next-level code, bit offset in the class key) each;
    `key_bits` is what the class key may use (63 for a signed engine column)."""
    specs, shift = [], 0
    for h in hierarchies:
        labels, step = h.codes()
        specs.append((h, labels, step, shift))
        shift += _bits(h)
    if shift > key_bits:
        raise ValueError("too many returned attribute values to pack into one class key")
    return specs


def encode_codes(bands: pl.DataFrame, specs: list) -> pl.DataFrame:
    """person_id and each attribute as its code (UInt8, 0 = suppressed)."""
    cols = [pl.col("person_id")]
    for h, labels, _step, _shift in specs:
        mapping = {v: i for i, v in enumerate(labels) if v is not None}
        source = pl.col(h.name).cast(pl.String)
        cols.append(source.replace_strict(mapping, return_dtype=pl.UInt8).alias(h.name))
    return bands.select(cols)


def class_key(specs: list) -> pl.Expr:
    parts = [
        pl.col(h.name).cast(pl.UInt64) * pl.lit(1 << s, dtype=pl.UInt64) for h, _, _, s in specs
    ]
    return pl.sum_horizontal(parts).alias("class_key")


def _candidate_steps(small: pl.DataFrame, specs: list) -> pl.DataFrame:
    """For each small class and each attribute it can still give up: the new key and cost."""
    frames = []
    for i, (h, _labels, step, shift) in enumerate(specs):
        code = pl.col(h.name)
        new_code = code.replace_strict(dict(enumerate(step.tolist())), return_dtype=pl.UInt8)
        # a step to a coarser band costs coarsen_cost; a step to suppressed (from a coarse
        # band, or from a default value without one, as "No other sector") suppress_cost
        cost = (
            pl.when(new_code != 0).then(pl.lit(h.coarsen_cost)).otherwise(pl.lit(h.suppress_cost))
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

    The persons' combinations are counted (`encode_bands`), the counts generalized
    (`anonymize_classes`) and each person given their class's outcome: every step is
    decided per combination, so only the counts need to be in one place.
    """
    specs = class_specs(hierarchies)
    coded = encode_codes(bands, specs).with_columns(class_key(specs))
    classes = coded.group_by("class_key", *(h.name for h, *_ in specs)).agg(
        pl.len().alias("persons")
    )
    outcome = anonymize_classes(classes, specs, k=k, labels=labels)
    released = (
        coded.select("person_id", "class_key")
        .join(outcome.classes, on="class_key")
        .drop("class_key")
        .sort("person_id")
    )
    return dataclasses.replace(outcome, released=released)


def anonymize_classes(
    classes: pl.DataFrame, specs: list, *, k: int, labels: Mapping[int, str]
) -> Generalization:
    """k-anonymity on the combination counts: `classes` holds one row per class key with its
    attribute codes and `persons`; the result's `classes` maps each key that is released to
    its generalized values (a key absent from it is withheld). `released` is None: the caller
    joins its persons to `classes`.

    Greedy, all small classes at once: each class takes the cheapest step that lifts it to
    `k` persons (estimated with every small class moving), or else the step with the best
    gain per cost. A class rises one level per round, so at most (sum of levels) rounds run.
    Classes still below `k` once fully suppressed are withheld and counted.
    """
    hierarchies = [h for h, *_ in specs]
    persons = int(classes.get_column("persons").sum())
    # Settled classes (>= k) only ever grow, since moved classes land on coarser codes; so
    # each round works on the still-small classes only, against the settled counts per key.
    active = classes.with_columns(pl.col("class_key").alias("origin"))
    settled_parts: list[pl.DataFrame] = []
    settled = pl.DataFrame(schema={"class_key": pl.UInt64, "settled": pl.UInt32})
    max_rounds = 1 + sum(2 if h.coarse else 1 for h in hierarchies)
    rounds = 0
    while True:
        active = (
            active.drop("class_size", strict=False)
            .join(settled, on="class_key", how="left")
            .with_columns(
                class_size=pl.col("persons").sum().over("class_key").cast(pl.UInt32)
                + pl.col("settled").fill_null(0)
            )
            .drop("settled")
        )
        lifted = active.filter(pl.col("class_size") >= k)
        if not lifted.is_empty():
            settled_parts.append(lifted)
            arrived = lifted.group_by("class_key").agg(
                pl.col("persons").sum().cast(pl.UInt32).alias("settled")
            )
            settled = (
                pl.concat([settled, arrived]).group_by("class_key").agg(pl.col("settled").sum())
            )
            active = active.filter(pl.col("class_size") < k)
        if active.is_empty() or rounds >= max_rounds:
            break
        rounds += 1
        small = active.unique("class_key").select(
            "class_key", "class_size", *(h.name for h in hierarchies)
        )
        steps = _candidate_steps(small, specs)
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
        active = active.with_columns(updates).drop("chosen").with_columns(class_key(specs))
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
    """Each kept class's released values, and what was given up, weighted by its persons."""
    cols: list[pl.Expr] = [pl.col("origin").alias("class_key")]
    given_up: list[pl.Expr] = []
    loss_rows = []
    weight = pl.col("persons").cast(pl.Int64)
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
                (weight * coarsened).sum().cast(pl.Int64).alias("coarsened"),
                (weight * (code == 0)).sum().cast(pl.Int64).alias("suppressed"),
            )
        )
    cols.append(pl.concat_list(given_up).list.drop_nulls().list.join(",").alias("generalized"))
    classes = kept.select(*cols, "persons")
    generalized = int(classes.filter(pl.col("generalized") != "").get_column("persons").sum())
    return Generalization(
        released=None,
        loss=pl.concat(loss_rows),
        persons=persons,
        persons_generalized=generalized,
        persons_suppressed=persons - int(classes.get_column("persons").sum()),
        k=k,
        iterations=rounds,
        classes=classes.drop("persons"),
    )
