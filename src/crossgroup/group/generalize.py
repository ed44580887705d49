"""Generalized bands and k-anonymity over the full returned attribute combination (DESIGN §5.6).

Person features become the bands of the return contract (value tier, breadth, recency,
frequency, channel preference, lead sector) computed group-wide; then every combination of
returned values (segment and segment label included) is made to cover at least `k` persons
by a documented hierarchy per attribute: default band -> coarser band -> suppressed (null).
Whole rows are suppressed only as a last resort. Everything is vectorized Polars: attribute
values are small integer codes packed into one UInt64 class key, so an equivalence-class
count is one `group_by` on one column.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import polars as pl

# Group-wide spend quantiles separating Entry | Core | High | Top.
VALUE_TIER_QUANTILES = (0.40, 0.75, 0.90)
# A channel holding at least this share of a person's activity is that person's preference.
CHANNEL_DOMINANCE = 0.75

# Sector families: the coarser level of `lead_sector`. A sector missing here coarsens to
# "Other sectors", so a custom taxonomy still works.
SECTOR_FAMILIES = {
    "Watches & Jewelry": "Jewelry & Fashion",
    "Fashion & Leather Goods": "Jewelry & Fashion",
    "Perfumes & Cosmetics": "Beauty & Retail",
    "Selective Retailing": "Beauty & Retail",
    "Wines & Spirits": "Wines, Hospitality & Other",
    "Hospitality & Other": "Wines, Hospitality & Other",
}
OTHER_SECTORS = "Other sectors"
# A sector represented by fewer participating maisons than this in a batch is never released
# under its own name (in lead_sector, segment labels or the glossary): with the public
# registry listing each maison's sector, a one-maison sector names that maison (DESIGN §1,
# §4.4). `GroupConfig` may override it; this is the default.
MIN_MAISONS_PER_SECTOR = 2
# Short label words ("<word>-led") for sectors (by slug) and for the coarser released names.
# The coarser words are hyphenated on purpose: "Beauty-retail" (the family) can never be read
# as the two-sector label "Beauty & retail", so the release checks can tell them apart.
SECTOR_WORDS = {
    "watches_jewelry": ("Jewelry", "Watches & Jewelry"),
    "fashion_leather_goods": ("Fashion", "Fashion & Leather Goods"),
    "perfumes_cosmetics": ("Beauty", "Perfumes & Cosmetics"),
    "wines_spirits": ("Wine & spirits", "Wines & Spirits"),
    "selective_retailing": ("Retail", "Selective Retailing"),
    "hospitality_other": ("Hospitality", "Hospitality & Other"),
}
GROUP_WORDS = {
    "Jewelry & Fashion": "Jewelry-fashion",
    "Beauty & Retail": "Beauty-retail",
    "Wines, Hospitality & Other": "Wine-hospitality",
    OTHER_SECTORS: "Other-sectors",
}


def sector_words(slug: str) -> tuple[str, str]:
    """(short label word, display name) of a sector slug; unknown slugs fall back to words."""
    words = slug.replace("_", " ")
    return SECTOR_WORDS.get(slug, (words.split(" ")[0].capitalize(), words.title()))


def group_word(name: str) -> str:
    """Short label word of a coarser released name (a family or "Other sectors")."""
    return GROUP_WORDS.get(name, name.replace(" ", "-"))


def released_sector_names(
    sectors: Sequence[str],
    sector_maisons: Mapping[str, int] | None = None,
    *,
    min_maisons: int = MIN_MAISONS_PER_SECTOR,
) -> dict[str, str]:
    """The name each sector is released under, given the participating maisons per sector.

    A sector with at least `min_maisons` maisons keeps its name. The others are pooled under
    their family, or under "Other sectors" when the family's unnamed sectors together still
    have fewer than `min_maisons` maisons. Every released name thus stands for at least
    `min_maisons` maisons (or none): if "Other sectors" would stand for too few, the named
    sectors of its members' families give up their names and join the family (else a
    family name would, by exclusion, still point at the lonely sector), and as a last resort
    every sector is released as "Other sectors". `sector_maisons=None` names every sector
    (backward compatible: every sector is taken to have enough maisons).
    """
    sectors = list(dict.fromkeys(sectors))
    if sector_maisons is None:
        return {s: s for s in sectors}
    count = {s: max(0, int(sector_maisons.get(s, 0) or 0)) for s in sectors}
    family = {s: SECTOR_FAMILIES.get(s, OTHER_SECTORS) for s in sectors}
    name = {s: s if count[s] >= min_maisons else family[s] for s in sectors}

    def short(released: str) -> bool:
        total = sum(count[s] for s in sectors if name[s] == released and s != released)
        return 0 < total < min_maisons

    for fam in sorted({family[s] for s in sectors if name[s] != s} - {OTHER_SECTORS}):
        if short(fam):
            for s in sectors:
                if name[s] == fam:
                    name[s] = OTHER_SECTORS
    if short(OTHER_SECTORS):
        pooled = {family[s] for s in sectors if name[s] == OTHER_SECTORS}
        for fam in sorted(pooled - {OTHER_SECTORS}):
            members = [s for s in sectors if family[s] == fam]
            if sum(count[s] for s in members) >= min_maisons:
                for s in members:
                    name[s] = fam
        if short(OTHER_SECTORS):
            for s in sectors:
                if family[s] == OTHER_SECTORS:
                    name[s] = OTHER_SECTORS
    if short(OTHER_SECTORS):
        name = dict.fromkeys(sectors, OTHER_SECTORS)
    return name


@dataclass(frozen=True)
class Hierarchy:
    """One returned attribute: its default bands, their coarser bands, and the utility cost
    of coarsening or suppressing it on one row (cheapest first in the greedy search)."""

    name: str
    values: tuple[str, ...]
    coarse: Mapping[str, str] = field(default_factory=dict)
    coarsen_cost: float = 1.0
    suppress_cost: float = 2.0
    # Coarse-level values no default value coarsens to but rows may start at (lead_sector of
    # a sector released under its family or "Other sectors"); they coarsen to suppressed.
    extra_coarse: tuple[str, ...] = ()

    def codes(self) -> tuple[list[str | None], np.ndarray]:
        """Labels by code (0 = suppressed) and the next-level code of each code (255: none)."""
        coarse_values = list(
            dict.fromkeys(
                [*(self.coarse[v] for v in self.values if v in self.coarse), *self.extra_coarse]
            )
        )
        labels: list[str | None] = [None, *self.values, *coarse_values]
        index = {v: i for i, v in enumerate(labels) if v is not None}
        step = np.zeros(len(labels), dtype=np.uint8)
        step[0] = 255
        for v in self.values:
            step[index[v]] = index[self.coarse[v]] if v in self.coarse else 0
        return labels, step


def return_hierarchies(
    n_segments: int,
    sectors: Sequence[str],
    released_sectors: Mapping[str, str] | None = None,
) -> list[Hierarchy]:
    """The returned attributes and their generalization hierarchy, in contract order.

    Costs encode what analysts value most: the segment (and its label) and lead sector are
    the last things given up; channel and breadth bands the first. `released_sectors` (from
    `released_sector_names`): sectors released under a coarser name start at that coarse
    level; only the sectors released under their own name are default-level values.
    """
    released = dict(released_sectors or {})
    named = tuple(s for s in sectors if released.get(s, s) == s)
    pooled = tuple(dict.fromkeys(released[s] for s in sectors if released.get(s, s) != s))
    return [
        Hierarchy(
            "segment",
            tuple(str(s) for s in range(1, n_segments + 1)),
            coarsen_cost=6.0,
            suppress_cost=6.0,
        ),
        Hierarchy(
            "value_tier",
            ("Entry", "Core", "High", "Top"),
            {"Entry": "Entry-Core", "Core": "Entry-Core", "High": "High-Top", "Top": "High-Top"},
            1.5,
            3.0,
        ),
        Hierarchy(
            "breadth",
            ("1 maison", "2 maisons", "3+ maisons"),
            {"2 maisons": "2+ maisons", "3+ maisons": "2+ maisons"},
            1.0,
            2.5,
        ),
        Hierarchy(
            "recency_band",
            ("0-3 months", "3-12 months", "1-3 years"),
            {"0-3 months": "0-12 months", "3-12 months": "0-12 months"},
            1.0,
            2.0,
        ),
        Hierarchy(
            "frequency_band",
            ("1 order", "2-4 orders", "5+ orders"),
            {"2-4 orders": "2+ orders", "5+ orders": "2+ orders"},
            1.0,
            2.0,
        ),
        Hierarchy(
            "channel_preference",
            ("Boutique", "Online", "Omnichannel"),
            {"Online": "Online or omnichannel", "Omnichannel": "Online or omnichannel"},
            0.8,
            1.6,
        ),
        Hierarchy(
            "lead_sector",
            named,
            {s: SECTOR_FAMILIES.get(s, OTHER_SECTORS) for s in named},
            2.0,
            4.0,
            extra_coarse=pooled,
        ),
    ]


RETURNED_ATTRIBUTES = (
    "value_tier",
    "breadth",
    "recency_band",
    "frequency_band",
    "channel_preference",
    "lead_sector",
)


def assign_bands(
    features: pl.DataFrame,
    segments: np.ndarray | pl.Series,
    *,
    sector_columns: Mapping[str, str],
    released_sectors: Mapping[str, str] | None = None,
) -> pl.DataFrame:
    """Default bands per person, group-wide: person_id, segment and the six band columns.

    `sector_columns` maps each group sector (taxonomy order) to its spend-share feature column;
    ties for the lead sector go to the first sector in that order. `released_sectors` maps a
    sector to the name it may be released under (`released_sector_names`); the lead sector
    is given under that name.
    """
    if len(segments) != features.height:
        raise ValueError("one segment per person is required")
    spend = pl.col("total_spend_eur")
    cuts = [features.get_column("total_spend_eur").quantile(q) for q in VALUE_TIER_QUANTILES]
    cuts = [0.0 if c is None else float(c) for c in cuts]
    sectors = list(sector_columns)
    shares = [pl.col(sector_columns[s]).fill_null(0.0) for s in sectors]
    released = dict(released_sectors or {})
    sector_of = {i: released.get(s, s) for i, s in enumerate(sectors)}
    return features.select(
        "person_id",
        pl.Series("segment", np.asarray(segments), dtype=pl.Int32),
        value_tier=pl.when(spend >= cuts[2])
        .then(pl.lit("Top"))
        .when(spend >= cuts[1])
        .then(pl.lit("High"))
        .when(spend >= cuts[0])
        .then(pl.lit("Core"))
        .otherwise(pl.lit("Entry")),
        breadth=pl.when(pl.col("n_maisons") >= 3)
        .then(pl.lit("3+ maisons"))
        .when(pl.col("n_maisons") == 2)
        .then(pl.lit("2 maisons"))
        .otherwise(pl.lit("1 maison")),
        recency_band=pl.when(pl.col("recency_months") < 3)
        .then(pl.lit("0-3 months"))
        .when(pl.col("recency_months") < 12)
        .then(pl.lit("3-12 months"))
        .otherwise(pl.lit("1-3 years")),
        frequency_band=pl.when(pl.col("orders") >= 5)
        .then(pl.lit("5+ orders"))
        .when(pl.col("orders") >= 2)
        .then(pl.lit("2-4 orders"))
        .otherwise(pl.lit("1 order")),
        channel_preference=pl.when(pl.col("boutique_share") >= CHANNEL_DOMINANCE)
        .then(pl.lit("Boutique"))
        .when(pl.col("online_share") >= CHANNEL_DOMINANCE)
        .then(pl.lit("Online"))
        .otherwise(pl.lit("Omnichannel")),
        lead_sector=pl.concat_list(shares)
        .list.arg_max()
        .replace_strict(sector_of, return_dtype=pl.String),
    )


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
    n_segments: int,
    sectors: Sequence[str],
    labels: Mapping[int, str],
    hierarchies: list[Hierarchy] | None = None,
    released_sectors: Mapping[str, str] | None = None,
) -> Generalization:
    """Generalize until every released combination covers at least `k` persons.

    Greedy, all small classes at once: each class takes the cheapest step that lifts it to
    `k` persons (estimated with every small class moving), or else the step with the best
    gain per cost. A class rises one level per round, so at most (sum of levels) rounds run.
    Rows still below `k` once fully suppressed are withheld and counted.
    """
    hierarchies = hierarchies or return_hierarchies(n_segments, sectors, released_sectors)
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
    k: int,
    labels: Mapping[int, str],
    sector_columns: Mapping[str, str],
    n_segments: int | None = None,
    sector_maisons: Mapping[str, int] | None = None,
    min_maisons_per_sector: int = MIN_MAISONS_PER_SECTOR,
) -> Generalization:
    """Bands, then k-anonymity: the one call the pipeline makes.

    `sector_maisons`: participating maisons of the batch per sector. A sector with fewer than
    `min_maisons_per_sector` of them is released under its family or "Other sectors"
    (`released_sector_names`); `labels` must come from a `SegmentModel` given the same
    mapping. None (the default) names every sector, as before.
    """
    seg = np.asarray(segments)
    n_segments = n_segments or int(seg.max(initial=1))
    sectors = list(sector_columns)
    released = released_sector_names(sectors, sector_maisons, min_maisons=min_maisons_per_sector)
    bands = assign_bands(features, seg, sector_columns=sector_columns, released_sectors=released)
    return k_anonymize(
        bands,
        k=k,
        n_segments=n_segments,
        sectors=sectors,
        labels=labels,
        released_sectors=released,
    )
