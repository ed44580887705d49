"""Aggregate suppression (DESIGN §5.7) and the release checks that refuse a leaky release."""

from __future__ import annotations

import polars as pl
import pytest

from crossgroup.config import load_taxonomy
from crossgroup.engine import DuckDBEngine
from crossgroup.errors import PrivacyCheckError
from crossgroup.group.cells import scope_cells, suppress
from crossgroup.group.release import ReleaseTables, maison_segments
from crossgroup.privacy.policy import ReleasePolicy
from crossgroup.privacy.release_checks import MaisonRelease, check_release, release_problems

SECTORS = ["Watches & Jewelry", "Wines & Spirits"]
NAMES = {"aurelle": "Aurelle Joaillerie", "kessler": "Kessler Cognac"}


def ref(i: int) -> bytes:
    return i.to_bytes(16, "big")


def released(n: int, **overrides) -> pl.DataFrame:
    """n persons sharing one released combination (k-anonymous for k <= n)."""
    row = {
        "segment": 1,
        "segment_label": "Jewelry-led, high value",
        "value_tier": "High",
        "breadth": "2 maisons",
        "recency_band": "0-3 months",
        "frequency_band": "2-4 orders",
        "channel_preference": "Boutique",
        "lead_sector": "Watches & Jewelry",
        "second_sector": "Wines & Spirits",
        "generalized": "",
        **overrides,
    }
    frame = pl.DataFrame([row] * n).with_columns(pl.col("segment").cast(pl.Int32))
    return frame.with_row_index("person_id").with_columns(pl.col("person_id").cast(pl.Int64))


def nodes(persons: list[int], maison: str, offset: int) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "maison": [maison] * len(persons),
            "maison_ref": [ref(offset + p) for p in persons],
            "person_id": pl.Series(persons, dtype=pl.Int64),
        }
    )


def cell_frame(rows) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        orient="row",
        schema={
            "table": pl.String,
            "scope": pl.String,
            "row_key": pl.String,
            "col_key": pl.String,
            "persons": pl.Int64,
            "share": pl.Float64,
        },
    )


@pytest.fixture
def release_setup():
    people = released(30)
    person_nodes = pl.concat(
        [nodes(list(range(30)), "aurelle", 0), nodes([0, 1, 2], "kessler", 1000)]
    )
    glossary = pl.DataFrame(
        {"segment": pl.Series([1], dtype=pl.Int32), "segment_label": ["Jewelry-led, high value"],
         "description": ["Mostly jewelry."]}
    )  # fmt: skip
    aggregates = suppress(
        cell_frame([("segment_mix", "maison", "Jewelry-led, high value", "", 30, 1.0)]), 20
    )
    with DuckDBEngine() as engine:
        tables = ReleaseTables(
            engine.register("released", people), "unused", engine.register("nodes", person_nodes)
        )
        releases = {
            m: MaisonRelease(m, maison_segments(engine, tables, m), aggregates, glossary)
            for m in ("aurelle", "kessler")
        }
    exported = {
        m: person_nodes.filter(pl.col("maison") == m).get_column("maison_ref")
        for m in ("aurelle", "kessler")
    }
    return releases, exported, person_nodes


def problems(releases, exported, person_nodes, k=10):
    return release_problems(
        releases, policy=policy(k), exported_refs=exported, person_nodes=person_nodes
    )


def policy(k: int = 10) -> ReleasePolicy:
    return ReleasePolicy(load_taxonomy(), k=k, k_aggregate=20, maison_names=NAMES)


def test_cells_below_k_aggregate_are_suppressed_and_counted():
    cells = cell_frame(
        [
            ("value_tiers", "group", "Entry", "", 500, 0.5),
            ("value_tiers", "group", "Core", "", 300, 0.3),
            ("value_tiers", "group", "High", "", 190, 0.19),
            ("value_tiers", "group", "Top", "", 10, 0.01),
            ("sector_affinity", "group", "Wines & Spirits", "", 12, 0.012),
            ("sector_affinity", "group", "Watches & Jewelry", "", 800, 0.8),
        ]
    )
    out = suppress(cells, 50)
    top = out.filter(pl.col("row_key") == "Top").row(0, named=True)
    assert top["suppressed"] and top["persons"] is None and top["share"] is None
    assert "fewer than 50" in top["note"]
    # one suppressed cell of a partition could be recovered by subtraction: the next
    # smallest is suppressed with it
    high = out.filter(pl.col("row_key") == "High").row(0, named=True)
    assert high["suppressed"] and high["persons"] is None
    summary = {
        r["row_key"]: r for r in out.filter(pl.col("table") == "suppression").iter_rows(named=True)
    }
    assert (
        summary["value_tiers"]["persons"] == 200 and "2 cell(s)" in summary["value_tiers"]["note"]
    )
    # a single suppressed cell's size is never revealed through the summary
    assert summary["sector_affinity"]["persons"] is None
    assert "1 cell(s)" in summary["sector_affinity"]["note"]
    published = out.filter((pl.col("table") != "suppression") & ~pl.col("suppressed"))
    assert published.get_column("persons").min() >= 50


def test_cells_count_distinct_persons():
    people = released(60).with_columns(
        pl.lit(True).alias(SECTORS[0]), pl.lit(False).alias(SECTORS[1])
    )
    twice = pl.concat([people, people])  # a person with two refs at one maison
    cells = scope_cells(twice, "maison", SECTORS)
    mix = cells.filter(pl.col("table") == "segment_mix").row(0, named=True)
    assert mix["persons"] == 60 and mix["share"] == 1.0
    aff = cells.filter(pl.col("table") == "sector_affinity")
    assert aff.get_column("persons").to_list() == [60]


def test_a_clean_release_passes(release_setup):
    assert problems(*release_setup) == []


def test_foreign_customer_is_refused(release_setup):
    releases, exported, person_nodes = release_setup
    leaked = releases["aurelle"].segments.head(1)
    seg = pl.concat([releases["kessler"].segments, leaked])
    releases["kessler"] = MaisonRelease(
        "kessler", seg, *list(releases["kessler"].tables().values())[1:]
    )
    assert any(
        "not customers of its own export (5)" in p
        for p in problems(releases, exported, person_nodes)
    )


def test_rare_combination_is_refused(release_setup):
    releases, exported, person_nodes = release_setup
    seg = releases["aurelle"].segments.with_columns(
        pl.when(pl.int_range(pl.len()) < 3)
        .then(pl.lit("Top"))
        .otherwise("value_tier")
        .alias("value_tier")
    )
    releases["aurelle"] = MaisonRelease(
        "aurelle", seg, *list(releases["aurelle"].tables().values())[1:]
    )
    found = problems(releases, exported, person_nodes)
    assert any("fewer than 10 persons (6)" in p for p in found)


def test_unsuppressed_small_cell_is_refused(release_setup):
    releases, exported, person_nodes = release_setup
    r = releases["aurelle"]
    aggs = r.aggregates.with_columns(persons=pl.lit(5, dtype=pl.Int64), suppressed=pl.lit(False))
    releases["aurelle"] = MaisonRelease("aurelle", r.segments, aggs, r.glossary)
    assert any("below 20 persons" in p for p in problems(releases, exported, person_nodes))


def test_schema_leaks_are_refused(release_setup):
    releases, exported, person_nodes = release_setup
    r = releases["aurelle"]
    seg = r.segments.with_columns(email_token=pl.col("maison_ref"))
    releases["aurelle"] = MaisonRelease("aurelle", seg, r.aggregates, r.glossary)
    found = problems(releases, exported, person_nodes)
    assert any("outside the allow-list: email_token" in p for p in found)
    assert any("binary column 'email_token'" in p for p in found)
    short = r.segments.with_columns(pl.col("maison_ref").bin.slice(0, 15))
    releases["aurelle"] = MaisonRelease("aurelle", short, r.aggregates, r.glossary)
    assert any("16 bytes" in p for p in problems(releases, exported, person_nodes))


def test_another_maisons_name_is_refused(release_setup):
    releases, exported, person_nodes = release_setup
    r = releases["aurelle"]
    glossary = r.glossary.with_columns(description=pl.lit("Also buys cognac at Kessler"))
    releases["aurelle"] = MaisonRelease("aurelle", r.segments, r.aggregates, glossary)
    found = problems(releases, exported, person_nodes)
    assert found == ["return for aurelle: glossary.description: names another maison"]
    with pytest.raises(PrivacyCheckError, match="names another maison"):
        check_release(releases, policy=policy(), exported_refs=exported, person_nodes=person_nodes)
