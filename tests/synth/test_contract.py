"""The files synth writes follow the DESIGN §4.1 data contract and the §4.2 config shape."""

from __future__ import annotations

import polars as pl

from crossgroup.config import CHANNELS, load_fx, load_maison, load_taxonomy
from crossgroup.synth import world

CUSTOMERS = {
    "customer_id": pl.String,
    "email": pl.String,
    "phone": pl.String,
    "country": pl.String,
    "cross_group_consent": pl.Boolean,
    "consent_updated_at": pl.Datetime("us"),
    "restricted": pl.Boolean,
    "first_name": pl.String,
    "last_name": pl.String,
    "birth_date": pl.Date,
    "address": pl.String,
}
PURCHASES = {
    "customer_id": pl.String,
    "order_id": pl.String,
    "purchased_at": pl.Datetime("us"),
    "category": pl.String,
    "amount": pl.Decimal(12, 2),
    "currency": pl.String,
    "channel": pl.String,
}


def test_every_maison_has_its_three_files(synth_world):
    for m in synth_world.maisons:
        for name in ("customers.parquet", "purchases.parquet", "maison.toml"):
            assert (synth_world.root / m.id / name).is_file(), f"{m.id}/{name}"
    assert (synth_world.root / "truth.parquet").is_file()


def test_customer_and_purchase_schemas_are_exact(synth_world):
    for m in synth_world.maisons:
        customers = pl.read_parquet_schema(synth_world.root / m.id / "customers.parquet")
        purchases = pl.read_parquet_schema(synth_world.root / m.id / "purchases.parquet")
        assert dict(customers) == CUSTOMERS, m.id
        assert dict(purchases) == PURCHASES, m.id


def test_truth_has_exactly_four_columns(synth_world):
    assert synth_world.truth.columns == ["maison", "customer_id", "person_id", "archetype"]
    assert set(synth_world.truth["archetype"].unique()) == set(world.ARCHETYPE_NAMES)


def test_maison_toml_is_the_maison_config(synth_world):
    taxonomy = load_taxonomy()
    for m in synth_world.maisons:
        assert load_maison(synth_world.root / m.id / "maison.toml", taxonomy) == m


def test_customer_ids_unique_and_required(synth_world):
    c = synth_world.customers
    assert c["customer_id"].null_count() == 0
    assert c.group_by("maison", "customer_id").len()["len"].max() == 1


def test_truth_maps_every_customer_exactly_once(synth_world):
    keys = ["maison", "customer_id"]
    truth, customers = synth_world.truth, synth_world.customers.select(keys)
    assert truth.height == customers.height == synth_world.summary.customers
    assert truth.select(keys).is_duplicated().sum() == 0
    assert customers.join(truth, on=keys, how="anti").height == 0
    # A person is at most one customer of a maison.
    assert truth.group_by("maison", "person_id").len()["len"].max() == 1


def test_purchases_belong_to_customers_of_the_same_maison(synth_world):
    keys = ["maison", "customer_id"]
    orphans = synth_world.purchases.join(synth_world.customers, on=keys, how="anti")
    assert orphans.height == 0


def test_channels_currencies_and_countries_are_valid_codes(synth_world):
    p, c = synth_world.purchases, synth_world.customers
    assert set(p["channel"].unique()) == set(CHANNELS)
    assert set(p["currency"].unique()) <= set(load_fx().eur_per_unit)
    countries = set(c["country"].drop_nulls().unique())
    assert countries <= {x.code for x in world.COUNTRIES}
    assert {"FR", "US", "JP", "CN", "AE", "BR"} <= countries  # four continents


def test_categories_are_the_maison_vocabulary_plus_a_few_unmapped(synth_world):
    for m in synth_world.maisons:
        lines = synth_world.purchases.filter(pl.col("maison") == m.id)
        labels = lines["category"]
        unmapped = ~labels.is_in(list(m.categories))
        assert set(labels.filter(unmapped).unique()) <= set(world.UNMAPPED_LABELS), m.id
        assert 0 < unmapped.mean() < 0.05, m.id
        assert labels.filter(~unmapped).n_unique() >= len(m.categories) - 1, m.id
