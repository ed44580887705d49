"""Segment labels and descriptions in plain words, from each segment's profile on the fit
sample (docs/segmentation.md): "Jewelry-led, top value, multi-maison". Labels are unique;
sectors the release policy pools are spoken of only under the pooled name.
"""

from __future__ import annotations

import numpy as np
import polars as pl

# Recency of a person with no activity in the export window: the whole window, in months.
NO_ACTIVITY_RECENCY = 36


def profiles(sample: pl.DataFrame, segments: np.ndarray, sectors: list[str]) -> pl.DataFrame:
    """Per-segment profile on the fit sample: what labels and descriptions are made of."""
    median_spend = float(sample["total_spend_eur"].median() or 0.0)
    frame = sample.with_columns(pl.Series("segment", segments))
    prof = frame.group_by("segment").agg(
        pl.len().alias("persons"),
        pl.col("total_spend_eur").median().alias("median_spend"),
        (pl.col("n_maisons") >= 2).mean().alias("multi_maison"),
        pl.col("online_share").mean(),
        pl.col("boutique_share").mean(),
        pl.col("q4_share").mean(),
        pl.col("recency_months").fill_null(NO_ACTIVITY_RECENCY).mean().alias("recency"),
        *[pl.col(s).mean() for s in sectors],
    )
    return prof.with_columns(
        (pl.col("persons") / frame.height).alias("size_share"),
        (pl.col("median_spend") / median_spend if median_spend > 0 else pl.lit(1.0)).alias(
            "value_ratio"
        ),
    ).sort("segment")


def _facets(
    p: dict, sectors: list[str], names: dict[str, tuple[str, str, str]]
) -> tuple[list[str], str]:
    """Ordered label facets (most telling first) and the description for one profile.

    `names`: share column -> (pooling key, word, display name) from `_sector_names`; shares of
    sectors released under one coarser name are pooled under it, so nothing names them.
    """
    pooled: dict[str, float] = {}
    words: dict[str, tuple[str, str]] = {}
    for s in sectors:
        key, word, display = names[s]
        pooled[key] = pooled.get(key, 0.0) + float(p[s] or 0.0)
        words[key] = (word, display)
    words[""] = ("", "")
    shares = sorted(((v, key) for key, v in pooled.items()), reverse=True)
    shares += [(0.0, "")] * max(0, 2 - len(shares))
    total = sum(v for v, _ in shares) or 1.0
    (v1, s1), (v2, s2) = [(v / total, s) for v, s in shares[:2]]
    if v1 >= 0.55:
        lead = f"{words[s1][0]}-led"
    elif v1 + v2 >= 0.6 and v2 >= 0.2:
        lead = f"{words[s1][0]} & {words[s2][0].lower()}"
    else:
        lead = "Cross-sector"
    r = p["value_ratio"]
    value = (
        "top value"
        if r >= 3
        else "high value"
        if r >= 1.5
        else "core value"
        if r >= 0.67
        else "entry value"
    )
    breadth = "multi-maison" if p["multi_maison"] >= 0.5 else "single-maison"
    channel = (
        "online"
        if p["online_share"] >= 0.6
        else "boutique"
        if p["boutique_share"] >= 0.6
        else "omnichannel"
    )
    recency = "lapsed" if p["recency"] >= 18 else "recently active" if p["recency"] <= 4 else None
    season = "year-end buyers" if p["q4_share"] >= 0.5 else None
    facets = [f for f in (lead, value, breadth, channel, recency, season) if f]

    lead_text = f"Spend is led by {words[s1][1]} ({v1:.0%} of spend)"
    if v2 >= 0.1:
        lead_text += f", then {words[s2][1]} ({v2:.0%})"
    description = (
        f"About {p['size_share']:.0%} of persons. {lead_text}. Typical spend is "
        f"{r:.1f}x the group median; {p['multi_maison']:.0%} buy from two or more maisons; "
        f"{p['online_share']:.0%} of spend is online and {p['boutique_share']:.0%} in boutique; "
        f"{p['q4_share']:.0%} falls in October-December; last active about "
        f"{p['recency']:.0f} months before the as-of date on average."
    )
    return facets, description


def describe(
    profiles: pl.DataFrame, sectors: list[str], names: dict[str, tuple[str, str, str]]
) -> tuple[dict, dict]:
    """Unique plain-words labels: add facets to colliding labels, then number what remains."""
    facets, descriptions = {}, {}
    for p in profiles.iter_rows(named=True):
        facets[p["segment"]], descriptions[p["segment"]] = _facets(p, sectors, names)
    used = dict.fromkeys(facets, 3)

    def label(s: int) -> str:
        return ", ".join(facets[s][: used[s]])

    while True:
        groups: dict[str, list[int]] = {}
        for s in facets:
            groups.setdefault(label(s), []).append(s)
        progress = False
        for members in groups.values():
            if len(members) > 1:
                for s in members:
                    if used[s] < len(facets[s]):
                        used[s] += 1
                        progress = True
        if not progress:
            break
    labels, seen = {}, {}
    for s in sorted(facets):
        text = label(s)
        seen[text] = seen.get(text, 0) + 1
        labels[int(s)] = text if seen[text] == 1 else f"{text} ({seen[text]})"
    return labels, {int(s): d for s, d in descriptions.items()}
