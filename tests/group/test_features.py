"""Person features on tiny, hand-computed inputs."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest

from crossgroup.config import load_taxonomy
from crossgroup.engine import DuckDBEngine
from crossgroup.errors import InputError
from crossgroup.group.features import person_features, sector_columns, sector_slug

AS_OF = date(2026, 6, 30)


@pytest.fixture(scope="module")
def taxonomy():
    return load_taxonomy(Path(__file__).resolve().parents[2] / "pipelines" / "taxonomy.toml")


def features(person_nodes: pl.DataFrame, acts: pl.DataFrame, taxonomy) -> pl.DataFrame:
    """person_features on frames registered in an in-memory engine."""
    with DuckDBEngine() as engine:
        engine.register("nodes", person_nodes)
        engine.register("acts", acts)
        return person_features(engine, "nodes", "acts", as_of=AS_OF, taxonomy=taxonomy)


def nodes(rows):
    return pl.DataFrame(
        {
            "maison": [r[0] for r in rows],
            "maison_ref": [r[1].encode() for r in rows],
            "person_id": [r[2] for r in rows],
        },
        schema={"maison": pl.String, "maison_ref": pl.Binary, "person_id": pl.Int64},
    )


def activity(rows):
    """(maison, ref, month, category, channel, orders, amount)."""
    return pl.DataFrame(
        {
            "maison_ref": [r[1].encode() for r in rows],
            "month": [r[2] for r in rows],
            "group_category": [r[3] for r in rows],
            "channel": [r[4] for r in rows],
            "orders": [r[5] for r in rows],
            "amount_eur": [r[6] for r in rows],
            "maison": [r[0] for r in rows],
        },
        schema={
            "maison_ref": pl.Binary,
            "month": pl.Date,
            "group_category": pl.String,
            "channel": pl.String,
            "orders": pl.Int32,
            "amount_eur": pl.Float64,
            "maison": pl.String,
        },
    )


def test_sector_slug():
    assert sector_slug("Watches & Jewelry") == "watches_jewelry"
    assert sector_slug("Ready-to-Wear") == "ready_to_wear"
    assert sector_slug("  Cognac & Spirits ") == "cognac_spirits"
    with pytest.raises(InputError):
        sector_slug("&&")


def test_hand_computed_person(taxonomy):
    person_nodes = nodes([("aurelle", "a1", 1), ("kessler", "k1", 1), ("vautrin", "v1", 2)])
    acts = activity(
        [
            # person 1 at aurelle: jewelry in boutique, Dec 2025 and Mar 2026
            ("aurelle", "a1", date(2025, 12, 1), "Fine Jewelry", "boutique", 1, 3000.0),
            ("aurelle", "a1", date(2026, 3, 1), "Watches", "boutique", 1, 1000.0),
            # person 1 at kessler: leather online in Mar 2026, with a partial refund elsewhere
            ("kessler", "k1", date(2026, 3, 1), "Leather Goods", "online", 2, 1200.0),
            ("kessler", "k1", date(2026, 4, 1), "Leather Goods", "online", 0, -200.0),
        ]
    )
    f = features(person_nodes, acts, taxonomy)
    assert f["person_id"].to_list() == [1, 2]
    p = f.row(0, named=True)
    assert p["n_maisons"] == 2
    assert p["total_spend_eur"] == pytest.approx(5000.0)
    assert p["orders"] == 4
    assert p["active_months"] == 3  # Dec, Mar, Apr
    assert p["recency_months"] == 2  # Apr -> Jun
    assert p["tenure_months"] == 6  # Dec -> Jun
    assert p["boutique_share"] == pytest.approx(4000 / 5000)
    assert p["online_share"] == pytest.approx(1000 / 5000)
    assert p["q4_share"] == pytest.approx(3000 / 5000)
    assert p["share_watches_jewelry"] == pytest.approx(0.8)
    assert p["share_fashion_leather_goods"] == pytest.approx(0.2)
    assert p["share_perfumes_cosmetics"] == 0.0
    assert p["n_sectors"] == 2

    # person 2 has a record but no activity: zeros, and no recency to speak of
    q = f.row(1, named=True)
    assert q["n_maisons"] == 1
    assert (q["total_spend_eur"], q["orders"], q["active_months"]) == (0.0, 0, 0)
    assert q["recency_months"] is None and q["tenure_months"] is None
    assert q["share_watches_jewelry"] == 0.0 and q["online_share"] == 0.0


def test_net_negative_groups_count_as_zero_and_shares_stay_in_range(taxonomy):
    person_nodes = nodes([("aurelle", "a1", 7)])
    acts = activity(
        [
            ("aurelle", "a1", date(2026, 1, 1), "Fragrance", "online", 1, 100.0),
            ("aurelle", "a1", date(2026, 2, 1), "Champagne", "online", 1, 50.0),
            ("aurelle", "a1", date(2026, 2, 1), "Champagne", "boutique", 0, -80.0),
        ]
    )
    f = features(person_nodes, acts, taxonomy)
    p = f.row(0, named=True)
    assert p["total_spend_eur"] == pytest.approx(70.0)
    assert p["share_perfumes_cosmetics"] == pytest.approx(1.0)  # wines nets to -30 -> 0
    assert p["share_wines_spirits"] == 0.0
    assert p["online_share"] == pytest.approx(1.0)  # boutique nets to -80 -> 0
    assert p["n_sectors"] == 1
    shares = f.select(sector_columns(taxonomy)).to_numpy()
    assert ((shares >= 0) & (shares <= 1)).all()


def test_all_negative_person_has_zero_shares(taxonomy):
    person_nodes = nodes([("aurelle", "a1", 1)])
    acts = activity([("aurelle", "a1", date(2026, 6, 1), "Watches", "boutique", 0, -500.0)])
    p = features(person_nodes, acts, taxonomy).row(0, named=True)
    assert p["total_spend_eur"] == -500.0
    assert p["share_watches_jewelry"] == 0.0 and p["boutique_share"] == 0.0
    assert p["recency_months"] == 0


def test_columns_cover_every_sector(taxonomy):
    person_nodes = nodes([("aurelle", "a1", 1)])
    acts = activity([("aurelle", "a1", date(2026, 6, 1), "Stays", "other", 1, 10.0)])
    f = features(person_nodes, acts, taxonomy)
    assert len(sector_columns(taxonomy)) == 6
    assert set(sector_columns(taxonomy)) <= set(f.columns)
    assert f["share_hospitality_other"].to_list() == [1.0]
    assert f["online_share"].to_list() == [0.0] and f["boutique_share"].to_list() == [0.0]


def test_activity_of_another_maisons_same_ref_bytes_is_not_mixed(taxonomy):
    person_nodes = nodes([("aurelle", "x", 1), ("kessler", "x", 2)])
    acts = activity([("kessler", "x", date(2026, 6, 1), "Wine", "online", 1, 10.0)])
    f = features(person_nodes, acts, taxonomy)
    assert f.filter(pl.col("person_id") == 1)["orders"].item() == 0
    assert f.filter(pl.col("person_id") == 2)["orders"].item() == 1


def test_unknown_category_is_refused_without_echoing_it(taxonomy):
    person_nodes = nodes([("aurelle", "a1", 1)])
    acts = activity([("aurelle", "a1", date(2026, 6, 1), "Secret Stuff", "online", 1, 10.0)])
    with pytest.raises(InputError, match="group_category") as err:
        features(person_nodes, acts, taxonomy)
    assert "Secret Stuff" not in str(err.value)


def test_a_refund_cancels_within_its_category_before_the_sector_is_netted(taxonomy):
    # summed line by line, 0.1 + 0.2 - 0.1 - 0.2 leaves 2.8e-17 of jewelry spend: a sector
    # share and a second sector out of nothing; netted per category first, exactly zero
    person_nodes = nodes([("aurelle", "a1", 1)])
    acts = activity(
        [
            ("aurelle", "a1", date(2026, 1, 1), "Fine Jewelry", "boutique", 1, 0.1),
            ("aurelle", "a1", date(2026, 1, 1), "Watches", "boutique", 1, 0.2),
            ("aurelle", "a1", date(2026, 2, 1), "Fine Jewelry", "boutique", 0, -0.1),
            ("aurelle", "a1", date(2026, 2, 1), "Watches", "boutique", 0, -0.2),
            ("aurelle", "a1", date(2026, 3, 1), "Fragrance", "online", 1, 10.0),
        ]
    )
    p = features(person_nodes, acts, taxonomy).row(0, named=True)
    assert p["share_watches_jewelry"] == 0.0
    assert p["share_perfumes_cosmetics"] == 1.0
    assert p["n_sectors"] == 1


def test_features_do_not_depend_on_the_order_the_lines_are_added_in(taxonomy):
    """Cents that floating-point addition would round differently in each order (1e9 + 0.01
    - 1e9 is not 0.01): every order of the lines, on one thread or two, gives the same
    features to the last bit, as two runs or two engines must (issue 14)."""
    import random

    amounts = [1e9 + 0.01, 0.01, -1e9, 0.07, 123.45, -0.03, 2e8 + 0.05, -2e8, 0.1, 0.2]
    categories = ["Fine Jewelry", "Watches", "Fragrance", "Skincare", "Wine"]
    rows = [
        ("aurelle", "a1", date(2026, 1 + i % 6, 1), categories[i % 5],
         ("online", "boutique")[i % 2], 1, amount)
        for i, amount in enumerate(amounts * 3)
    ]  # fmt: skip
    person_nodes = nodes([("aurelle", "a1", 1)])
    expected = features(person_nodes, activity(rows), taxonomy)
    rng = random.Random(7)
    for threads in (1, 2):
        for _ in range(6):
            rng.shuffle(rows)
            with DuckDBEngine(threads=threads) as engine:
                engine.register("nodes", person_nodes)
                engine.register("acts", activity(rows))
                got = person_features(engine, "nodes", "acts", as_of=AS_OF, taxonomy=taxonomy)
            assert got.equals(expected)
    assert expected["total_spend_eur"][0] == 371.58  # the exact sum of the cents
