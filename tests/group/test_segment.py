"""The segment estimator: contract, reproducibility, planted clusters, labels."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.metrics import adjusted_rand_score

from crossgroup.errors import InputError
from crossgroup.group.segment import SegmentModel

SECTORS = [
    "share_watches_jewelry",
    "share_fashion_leather_goods",
    "share_perfumes_cosmetics",
    "share_wines_spirits",
    "share_selective_retailing",
    "share_hospitality_other",
]

# (lead sector index, median spend, maisons, online share)
ARCHETYPES = [
    (0, 20_000.0, 3, 0.05),  # jewelry collectors: top value, multi-maison, boutique
    (2, 150.0, 1, 0.85),  # beauty regulars: entry, single, online
    (3, 1_500.0, 1, 0.3),  # wine lovers
    (1, 4_000.0, 2, 0.5),  # fashion
]


def planted(n_per: int = 400, seed: int = 1) -> tuple[pl.DataFrame, np.ndarray]:
    """Clearly separated planted archetypes as a person-features frame."""
    rng = np.random.default_rng(seed)
    cols: dict[str, list] = {
        c: []
        for c in (
            "n_maisons",
            "total_spend_eur",
            "orders",
            "active_months",
            "recency_months",
            "tenure_months",
            "online_share",
            "boutique_share",
            "q4_share",
            *SECTORS,
        )
    }
    truth = []
    for a, (lead, spend, maisons, online) in enumerate(ARCHETYPES):
        for _ in range(n_per):
            shares = rng.dirichlet(np.full(6, 0.3)) * 0.1
            shares[lead] += 0.9
            o = float(np.clip(online + rng.normal(0, 0.05), 0, 1))
            cols["n_maisons"].append(maisons)
            cols["total_spend_eur"].append(float(spend * rng.lognormal(0, 0.2)))
            cols["orders"].append(int(rng.integers(1, 4)) * maisons)
            cols["active_months"].append(int(rng.integers(1, 6)))
            cols["recency_months"].append(int(rng.integers(0, 12)))
            cols["tenure_months"].append(int(rng.integers(12, 30)))
            cols["online_share"].append(o)
            cols["boutique_share"].append(1 - o)
            cols["q4_share"].append(float(rng.uniform(0.2, 0.4)))
            for j, s in enumerate(SECTORS):
                cols[s].append(float(shares[j]))
            truth.append(a)
    frame = pl.DataFrame(cols).with_row_index("person_id", offset=1)
    return frame, np.array(truth)


@pytest.fixture(scope="module")
def data():
    return planted()


@pytest.fixture(scope="module")
def fitted(data):
    return SegmentModel(min_segments=3, max_segments=6, random_state=3).fit(data[0])


def test_init_only_stores_params():
    model = SegmentModel(n_segments=5, random_state=9)
    assert model.get_params()["n_segments"] == 5
    assert not [k for k in vars(model) if k.endswith("_")]


def test_predict_before_fit_raises_not_fitted(data):
    with pytest.raises(NotFittedError):
        SegmentModel().predict(data[0])


def test_recovers_planted_clusters_and_chooses_their_number(data, fitted):
    frame, truth = data
    assert fitted.n_segments_ == 4
    assert fitted.quality_["chosen_by"] == "silhouette"
    assert set(fitted.quality_["silhouette_by_k"]) == {3, 4, 5, 6}
    assert adjusted_rand_score(truth, fitted.predict(frame)) > 0.95
    assert fitted.quality_["stability_ari"] > 0.95
    assert fitted.quality_["silhouette"] == max(fitted.quality_["silhouette_by_k"].values())


def test_segments_are_numbered_one_to_k_largest_first(data, fitted):
    segments = fitted.predict(data[0])
    assert set(np.unique(segments)) == set(range(1, fitted.n_segments_ + 1))
    sizes = [fitted.quality_["sizes"][s] for s in range(1, fitted.n_segments_ + 1)]
    assert sizes == sorted(sizes, reverse=True)
    assert sum(sizes) == data[0].height


def test_same_input_and_seed_give_identical_segments(data):
    frame, _ = data
    a = SegmentModel(min_segments=3, max_segments=5, random_state=11, sample_size=900)
    b = SegmentModel(min_segments=3, max_segments=5, random_state=11, sample_size=900)
    pa, pb = a.fit(frame).predict(frame), b.fit(frame).predict(frame)
    assert np.array_equal(pa, pb)
    assert a.labels_ == b.labels_ and a.quality_ == b.quality_


def test_fits_on_a_sample_and_predicts_for_everyone(data):
    frame, truth = data
    model = SegmentModel(n_segments=4, sample_size=300, random_state=5).fit(frame)
    assert model.quality_["fit_sample"] == 300 and model.quality_["chosen_by"] == "fixed"
    segments = model.predict(frame)
    assert len(segments) == frame.height
    assert adjusted_rand_score(truth, segments) > 0.9


def test_a_fit_on_the_drawn_rows_is_the_fit_on_everyone_and_draws_nothing(data, monkeypatch):
    """`segment_table`'s path: the sample is drawn once, its rows fetched, and the fit goes
    on from the draw (twice alike); it never draws again, and refuses rows not drawn."""
    frame, _ = data
    config = {"min_segments": 3, "max_segments": 5, "sample_size": 500, "random_state": 8}
    expected = SegmentModel(**config).fit(frame)
    draw = SegmentModel(**config).draw_sample(frame.height)
    assert draw.size == 500 and np.all(np.diff(draw.rows) > 0)

    def no_second_draw(self, persons):
        raise AssertionError("the fit drew its sample again")

    monkeypatch.setattr(SegmentModel, "draw_sample", no_second_draw)
    for _ in range(2):
        model = SegmentModel(**config).fit(frame[draw.rows], draw=draw)
        assert model.labels_ == expected.labels_ and model.quality_ == expected.quality_
        assert np.array_equal(model.kmeans_.cluster_centers_, expected.kmeans_.cluster_centers_)
    with pytest.raises(InputError, match="not the drawn ones"):
        SegmentModel(**config).fit(frame.head(499), draw=draw)


def test_labels_are_unique_plain_words_from_the_profile(data, fitted):
    labels = fitted.labels_
    assert sorted(labels) == list(range(1, fitted.n_segments_ + 1))
    assert all(text.strip() for text in labels.values())
    assert len(set(labels.values())) == len(labels)
    assert all(fitted.descriptions_[s] for s in labels)
    # The jewelry archetype's segment is named after its lead sector, value and breadth.
    seg = int(np.bincount(fitted.predict(data[0])[data[1] == 0]).argmax())
    assert labels[seg].startswith("Jewelry-led, top value, multi-maison")
    beauty = int(np.bincount(fitted.predict(data[0])[data[1] == 1]).argmax())
    assert labels[beauty].startswith("Beauty-led, entry value, single-maison")


def test_labels_stay_unique_when_profiles_coincide():
    # Two planted groups differ only in channel: labels must still differ.
    frame, _ = planted(n_per=200)
    twin = frame.filter(pl.col("share_perfumes_cosmetics") > 0.85).with_columns(
        pl.col("online_share").map_batches(lambda s: 1 - s),
        pl.col("boutique_share").map_batches(lambda s: 1 - s),
    )
    both = pl.concat([frame, twin.with_columns(pl.col("person_id") + 10_000)])
    model = SegmentModel(n_segments=6, random_state=2).fit(both)
    assert len(set(model.labels_.values())) == 6


def test_missing_columns_are_named():
    with pytest.raises(InputError, match="recency_months"):
        SegmentModel().fit(pl.DataFrame({"person_id": [1], "n_maisons": [1]}))


def test_too_few_distinct_profiles_is_a_clear_error(data):
    one = pl.concat([data[0].head(1)] * 20)
    with pytest.raises(InputError, match="distinct person profiles"):
        SegmentModel().fit(one)
