"""The export on `synth` output against an independent computation in plain Polars."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import polars as pl
import pytest

from crossgroup.config import load_fx, load_maison, load_taxonomy

AS_OF = date(2026, 9, 30)


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory):
    from crossgroup.config import demo_maisons
    from crossgroup.synth.writer import write_world

    out = tmp_path_factory.mktemp("synth")
    write_world(out, demo_maisons()[:3], persons=3000, seed=11, as_of=AS_OF)
    return out


def expected_activity(synth_dir, config, taxonomy, fx) -> tuple[pl.DataFrame, int]:
    """Written separately from the export: eligibility, window, mapping and FX in Polars."""
    customers = pl.read_parquet(synth_dir / config.id / "customers.parquet")
    purchases = pl.read_parquet(synth_dir / config.id / "purchases.parquet")
    end_of_as_of = datetime(AS_OF.year, AS_OF.month, AS_OF.day) + timedelta(days=1)
    eligible = customers.filter(
        pl.col("cross_group_consent").fill_null(False)
        & ~pl.col("restricted").fill_null(False)
        & (pl.col("consent_updated_at") < end_of_as_of)
    ).select("customer_id")
    start = date(AS_OF.year - 3, AS_OF.month, AS_OF.day)
    day = pl.col("purchased_at").dt.date()
    rates = pl.DataFrame(
        {"currency": list(fx.eur_per_unit), "rate": list(fx.eur_per_unit.values())}
    )
    catch_all = taxonomy.sector(config.sector).catch_all
    lines = (
        purchases.filter((day > start) & (day <= AS_OF))
        .join(eligible, on="customer_id", how="semi")
        .join(rates, on="currency", how="left")
        .with_columns(
            month=day.dt.truncate("1mo"),
            group_category=pl.col("category").replace_strict(
                config.categories, default=catch_all, return_dtype=pl.String
            ),
            eur=pl.col("amount").cast(pl.Float64) * pl.col("rate"),
        )
    )
    cells = lines.group_by("customer_id", "month", "group_category", "channel").agg(
        orders=pl.col("order_id").n_unique(), amount_eur=pl.col("eur").sum()
    )
    return cells, lines.height


def test_export_matches_independent_polars(synth_dir, export_world_paths, ref_of):
    taxonomy = load_taxonomy()
    config = load_maison(synth_dir / "aurelle" / "maison.toml", taxonomy)
    fx = load_fx()
    cells, lines = expected_activity(synth_dir, config, taxonomy, fx)
    out = export_world_paths(
        synth_dir / "aurelle" / "customers.parquet",
        synth_dir / "aurelle" / "purchases.parquet",
        AS_OF,
        config=config,
    )
    summary = out.result.summary
    exported = cells["customer_id"].unique()
    assert summary["customers"]["exported"] == exported.len() > 100
    assert summary["purchases"]["exported"] == lines
    assert summary["activity_rows"] == cells.height == out.activity.height
    assert out.identities.height == exported.len()
    assert summary["amount_eur_total"] == pytest.approx(
        cells["amount_eur"].sum(), abs=0.01 * cells.height
    )

    expected = cells.with_columns(maison_ref=ref_of(cells["customer_id"])).drop("customer_id")
    key = ["maison_ref", "month", "group_category", "channel"]
    joined = expected.join(out.activity, on=key, how="full", suffix="_export")
    assert joined["orders"].null_count() == 0 and joined["orders_export"].null_count() == 0
    assert (joined["orders"] == joined["orders_export"]).all()
    assert (joined["amount_eur"] - joined["amount_eur_export"]).abs().max() <= 0.0051
    assert set(out.identities["maison_ref"]) == set(ref_of(exported))
