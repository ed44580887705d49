"""The generalized bands of the return contract and their coarser levels (DESIGN §4.4, §5.6).

Person features become bands computed group-wide (value tier, breadth, recency, frequency,
channel preference, lead and second sector); each attribute has a documented hierarchy,
default band -> coarser band -> suppressed, that k-anonymity (`group/generalize.py`) climbs
when a combination is too rare.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from crossgroup.privacy.policy import ReleasePolicy

# Group-wide spend quantiles separating Entry | Core | High | Top.
VALUE_TIER_QUANTILES = (0.40, 0.75, 0.90)
# A channel holding at least this share of a person's activity is that person's preference.
CHANNEL_DOMINANCE = 0.75
# second_sector of a person with no positive spend outside the lead sector's released name: a
# value of its own, since null means "suppressed" in the return (and "None" reads as missing
# in most CSV readers).
NO_OTHER_SECTOR = "No other sector"
# The breadth bands (default and coarser) of a person who buys at two maisons or more.
MULTI_MAISON_BREADTH = ("2 maisons", "3+ maisons", "2+ maisons")
_LEAD, _SECOND = "__lead_index", "__second_sector"


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
    segment_ids: Sequence[int], sectors: Sequence[str], policy: ReleasePolicy
) -> list[Hierarchy]:
    """The returned attributes and their generalization hierarchy, in contract order.
    `segment_ids`: every id the model gives (a series keeps ids across refits, so they need
    not run from 1 without gaps).

    Costs encode what analysts value most: the segment (and its label) and lead sector are
    the last things given up; channel and breadth bands the first; the second sector sits
    between the bands of activity and the value tier. Sectors the policy releases under a
    coarser name start at that coarse level; only the sectors released under their own name
    are default-level values, and they coarsen to their family (or the pooled name).
    `second_sector`'s "No other sector" has no coarser band: it goes straight to suppressed.
    """
    released = policy.released_sectors
    named = tuple(s for s in sectors if released.get(s, s) == s)
    pooled = tuple(dict.fromkeys(released[s] for s in sectors if released.get(s, s) != s))
    return [
        Hierarchy(
            "segment",
            tuple(str(s) for s in segment_ids),
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
            {s: policy.family_of(s) for s in named},
            2.0,
            4.0,
            extra_coarse=pooled,
        ),
        Hierarchy(
            "second_sector",
            (*named, NO_OTHER_SECTOR),
            {s: policy.family_of(s) for s in named},
            1.2,
            2.4,
            extra_coarse=pooled,
        ),
    ]


def value_cut_positions(persons: int) -> list[int]:
    """0-based positions, in ascending spend, of the value-tier cuts among `persons`: the
    'nearest' order statistic of each quantile (what Polars' `quantile` returns), so an
    engine can find them (`order_statistics`) instead of sending the spend column."""
    return [math.floor((persons - 1) * q + 0.5) for q in VALUE_TIER_QUANTILES]


def assign_bands(
    features: pl.DataFrame,
    segments: np.ndarray | pl.Series,
    *,
    sector_columns: Mapping[str, str],
    released_sectors: Mapping[str, str] | None = None,
) -> pl.DataFrame:
    """Default bands per person, group-wide: person_id, segment and the seven band columns.

    `sector_columns` maps each group sector (taxonomy order) to its spend-share feature column;
    ties for the lead (and second) sector go to the first sector in that order.
    `released_sectors` maps a sector to the name it may be released under
    (`ReleasePolicy.released_sectors`); the lead and second sectors are given under that name.
    """
    if len(segments) != features.height:
        raise ValueError("one segment per person is required")
    cuts = [features.get_column("total_spend_eur").quantile(q) for q in VALUE_TIER_QUANTILES]
    return band_frame(
        features.with_columns(pl.Series("segment", np.asarray(segments), dtype=pl.Int32)),
        cuts=[0.0 if c is None else float(c) for c in cuts],
        sector_columns=sector_columns,
        released_sectors=released_sectors,
    )


def band_frame(
    features: pl.DataFrame,
    *,
    cuts: Sequence[float],
    sector_columns: Mapping[str, str],
    released_sectors: Mapping[str, str] | None = None,
) -> pl.DataFrame:
    """`assign_bands` row by row, for features that carry their `segment` and the group's
    value-tier `cuts`: a frame function an engine can apply piece by piece."""
    spend = pl.col("total_spend_eur")
    sectors = list(sector_columns)
    shares = [pl.col(sector_columns[s]).fill_null(0.0) for s in sectors]
    released = dict(released_sectors or {})
    sector_of = {i: released.get(s, s) for i, s in enumerate(sectors)}
    features = _with_sector_ranks(features, shares, sector_of)
    lead = pl.col(_LEAD)
    return features.select(
        "person_id",
        pl.col("segment").cast(pl.Int32),
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
        lead_sector=lead.replace_strict(sector_of, return_dtype=pl.String),
        second_sector=_SECOND,
    )


def _with_sector_ranks(
    features: pl.DataFrame, shares: list[pl.Expr], sector_of: Mapping[int, str]
) -> pl.DataFrame:
    """`features` plus the lead sector's index (_LEAD) and the second sector's released name
    (_SECOND): the released name of the first-largest positive share among the sectors
    released under another name than the lead's, else NO_OTHER_SECTOR.

    With every sector named this is the sector of the second-largest positive share (ties to
    the first in taxonomy order, as for the lead). Sectors pooled under the lead's own name are
    skipped: "Beauty & Retail" twice would say nothing new, and where a family holds two
    one-maison sectors it would name both maisons. Built column by column: an eager select
    shares no subexpression, and each step refers to the one before several times.
    """
    lead = pl.col(_LEAD)
    others = []  # each share, or 0 where the sector goes by the lead's released name
    for i, share in enumerate(shares):
        same_name = [j for j, name in sector_of.items() if name == sector_of[i]]
        other_name = pl.all_horizontal(*(lead != j for j in same_name))
        others.append(pl.when(other_name).then(share).otherwise(0.0).alias(f"__other_{i}"))
    masked = [pl.col(f"__other_{i}") for i in range(len(shares))]
    second = _first_largest(masked).replace_strict(dict(sector_of), return_dtype=pl.String)
    named = pl.when(pl.max_horizontal(masked) > 0).then(second).otherwise(pl.lit(NO_OTHER_SECTOR))
    return (
        features.with_columns(_first_largest(shares).alias(_LEAD))
        .with_columns(others)
        .with_columns(named.alias(_SECOND))
    )


def _first_largest(values: list[pl.Expr]) -> pl.Expr:
    """The index of the largest value, the first one on ties: list.arg_max without building
    a list per row (a column-wise fold, a tenth of the time on a million persons)."""
    best, index = values[0], pl.lit(0, dtype=pl.UInt32)
    for i, value in enumerate(values[1:], start=1):
        larger = value > best
        index = pl.when(larger).then(pl.lit(i, dtype=pl.UInt32)).otherwise(index)
        best = pl.when(larger).then(value).otherwise(best)
    return index
