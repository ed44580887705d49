"""Bands and k-anonymity over the full returned attribute combination (DESIGN §5.6)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from crossgroup.config import load_taxonomy
from crossgroup.contracts import RETURNED_ATTRIBUTES
from crossgroup.group.bands import assign_bands, return_hierarchies
from crossgroup.group.generalize import generalize
from crossgroup.group.kanonymity import k_anonymize
from crossgroup.privacy.policy import ReleasePolicy

SECTORS = [
    "Watches & Jewelry",
    "Fashion & Leather Goods",
    "Perfumes & Cosmetics",
    "Wines & Spirits",
    "Selective Retailing",
    "Hospitality & Other",
]
SECTOR_COLUMNS = {s: f"share_{i}" for i, s in enumerate(SECTORS)}
LABELS = {i: f"Segment {i} profile" for i in range(1, 9)}
POLICY = ReleasePolicy(load_taxonomy(), k=10)
COMBO = ["segment", "segment_label", *RETURNED_ATTRIBUTES, "generalized"]


def fake_features(n: int, seed: int = 0) -> tuple[pl.DataFrame, np.ndarray]:
    """Correlated person features shaped like features.person_features output. A person seen
    at one maison spends in one sector (a maison sells in its own), as in every synthetic
    world; others spread their spend over every sector."""
    rng = np.random.default_rng(seed)
    archetype = rng.integers(0, 6, n)
    lead = np.where(rng.random(n) < 0.8, archetype, rng.integers(0, 6, n))
    shares = rng.dirichlet(np.ones(6) * 0.3, n)
    shares[np.arange(n), lead] += 1.0
    shares /= shares.sum(1, keepdims=True)
    orders = 1 + rng.poisson(1.5 + archetype * 0.5, n)
    online = rng.beta(0.6, 1.5, n)
    n_maisons = np.minimum(1 + rng.poisson(0.4, n), 8)
    shares[n_maisons == 1] = np.eye(6)[shares[n_maisons == 1].argmax(1)]
    cols = {
        "person_id": np.arange(n, dtype=np.int64),
        "n_maisons": n_maisons.astype(np.int32),
        "total_spend_eur": rng.lognormal(7 + archetype * 0.2, 1.0, n) * orders,
        "orders": orders.astype(np.int64),
        "recency_months": rng.integers(0, 36, n).astype(np.int32),
        "online_share": online,
        "boutique_share": 1 - online,
    }
    for i in range(6):
        cols[f"share_{i}"] = shares[:, i]
    return pl.DataFrame(cols), (archetype + 1).astype(np.int32)


def bands(rows: list[dict]) -> pl.DataFrame:
    """Hand-made band rows; defaults fill what a row does not say."""
    base = {
        "segment": 1,
        "value_tier": "Core",
        "breadth": "1 maison",
        "recency_band": "0-3 months",
        "frequency_band": "2-4 orders",
        "channel_preference": "Boutique",
        "lead_sector": SECTORS[0],
        "second_sector": SECTORS[1],
    }
    full = [{**base, **r} for r in rows]
    frame = pl.DataFrame(full).with_columns(pl.col("segment").cast(pl.Int32))
    return frame.with_row_index("person_id").with_columns(pl.col("person_id").cast(pl.Int64))


def anonymize(frame: pl.DataFrame, k: int = 10):
    return k_anonymize(
        frame, k=k, labels=LABELS, hierarchies=return_hierarchies(range(1, 4), SECTORS, POLICY)
    )


def test_every_released_combination_covers_k_persons():
    features, segments = fake_features(20_000)
    gen = generalize(
        features, segments, policy=POLICY, labels=LABELS, sector_columns=SECTOR_COLUMNS
    )
    sizes = gen.released.group_by(COMBO).len()
    assert sizes.get_column("len").min() >= 10
    assert gen.persons == 20_000
    assert gen.released.height + gen.persons_suppressed == 20_000
    # the run did have to generalize something, so the property is not vacuous
    assert gen.persons_generalized > 0


def test_values_stay_in_the_published_vocabulary():
    features, segments = fake_features(5_000, seed=3)
    gen = generalize(
        features, segments, policy=POLICY, labels=LABELS, sector_columns=SECTOR_COLUMNS
    )
    for h in return_hierarchies(range(1, 7), SECTORS, POLICY):
        if h.name == "segment":
            continue
        allowed = set(h.values) | set(h.coarse.values())
        assert set(gen.released.get_column(h.name).drop_nulls()) <= allowed


def test_generalized_names_exactly_the_coarsened_or_blank_attributes():
    features, segments = fake_features(5_000, seed=4)
    gen = generalize(
        features, segments, policy=POLICY, labels=LABELS, sector_columns=SECTOR_COLUMNS
    )
    defaults = {h.name: set(h.values) for h in return_hierarchies(range(1, 7), SECTORS, POLICY)}
    for row in gen.released.sample(500, seed=1).iter_rows(named=True):
        named = set(filter(None, row["generalized"].split(",")))
        expected = {
            a
            for a in ["segment", *RETURNED_ATTRIBUTES]
            if row[a] is None or (a != "segment" and row[a] not in defaults[a])
        }
        assert named == expected
        assert (row["segment"] is None) == (row["segment_label"] is None)


def test_already_anonymous_data_is_released_untouched():
    frame = bands([{}] * 12 + [{"breadth": "2 maisons"}] * 10)
    gen = anonymize(frame)
    assert gen.persons_generalized == 0
    assert gen.persons_suppressed == 0
    assert set(gen.released.get_column("breadth")) == {"1 maison", "2 maisons"}


def test_small_classes_take_the_cheapest_coarser_band():
    # two classes of 6, differing only in breadth: coarsening breadth (cheapest) lifts both
    frame = bands([{}] * 20 + [{"breadth": "2 maisons"}] * 6 + [{"breadth": "3+ maisons"}] * 6)
    gen = anonymize(frame)
    moved = gen.released.filter(pl.col("person_id") >= 20)
    assert set(moved.get_column("breadth")) == {"2+ maisons"}
    assert set(moved.get_column("generalized")) == {"breadth"}
    untouched = gen.released.filter(pl.col("person_id") < 20)
    assert set(untouched.get_column("generalized")) == {""}
    assert gen.persons_suppressed == 0
    loss = dict(gen.loss.select("attribute", "coarsened").iter_rows())
    assert loss["breadth"] == 12 and loss["value_tier"] == 0


def test_lone_profile_is_withheld_and_counted():
    frame = bands([{}] * 15 + [{"segment": 3, "value_tier": "Top", "lead_sector": SECTORS[5]}])
    gen = anonymize(frame)
    assert gen.persons_suppressed == 1
    assert 15 not in gen.released.get_column("person_id").to_list()
    assert gen.released.height == 15


def test_value_tiers_are_group_wide_quantiles():
    features, segments = fake_features(10_000, seed=5)
    b = assign_bands(features, segments, sector_columns=SECTOR_COLUMNS)
    shares = b.get_column("value_tier").value_counts(normalize=True)
    share = dict(shares.iter_rows())
    assert share["Entry"] == pytest.approx(0.40, abs=0.01)
    assert share["Top"] == pytest.approx(0.10, abs=0.01)
    top = b.join(features, on="person_id").filter(pl.col("value_tier") == "Top")
    entry = b.join(features, on="person_id").filter(pl.col("value_tier") == "Entry")
    assert top.get_column("total_spend_eur").min() > entry.get_column("total_spend_eur").max()


def test_reproducible():
    features, segments = fake_features(8_000, seed=6)
    a = generalize(features, segments, policy=POLICY, labels=LABELS, sector_columns=SECTOR_COLUMNS)
    b = generalize(features, segments, policy=POLICY, labels=LABELS, sector_columns=SECTOR_COLUMNS)
    assert a.released.equals(b.released)


def test_utility_target():
    """TARGET: at most 5% of rows carry a coarsened or suppressed attribute at 1M persons
    (4.2% on this data, 4 s; 1.4% before second_sector was returned). At 300k small cells are
    more common (9.7%): the target is checked at its own size. A real M batch: 1.7% of
    returned rows (docs/segmentation.md)."""
    persons = 1_000_000
    features, segments = fake_features(persons, seed=7)
    gen = generalize(
        features, segments, policy=POLICY, labels=LABELS, sector_columns=SECTOR_COLUMNS
    )
    assert gen.released.group_by(COMBO).len().get_column("len").min() >= 10
    assert (gen.persons_generalized + gen.persons_suppressed) / gen.persons <= 0.05
