"""A release with a missing or unexpected returned column is refused, never checked on fewer
columns (DESIGN §4.4, §5.6); the processor's segment sizes follow the cell rule with
complementary suppression (§5.7). Expectations are written here by hand."""

from __future__ import annotations

import polars as pl
import pytest

from crossgroup.config import load_taxonomy
from crossgroup.engine import DuckDBEngine
from crossgroup.errors import PrivacyCheckError
from crossgroup.group.release import ReleaseTables, maison_segments
from crossgroup.group.report_tables import match_cells, quality_table
from crossgroup.privacy.policy import ReleasePolicy
from crossgroup.privacy.release_checks import MaisonRelease, check_release, release_problems

# the segments columns of DESIGN §4.4 as this test reads them (not the product's constant)
ATTRIBUTES = [
    "segment", "segment_label", "value_tier", "breadth", "recency_band", "frequency_band",
    "channel_preference", "lead_sector", "second_sector", "generalized",
]  # fmt: skip


def ref(i: int) -> bytes:
    return i.to_bytes(16, "big")


@pytest.fixture
def release():
    """12 persons of one maison with one k-anonymous profile (k = 10)."""
    people = pl.DataFrame(
        {
            "person_id": pl.Series(range(12), dtype=pl.Int64),
            "segment": pl.Series([1] * 12, dtype=pl.Int32),
            "segment_label": "Jewelry-led, high value, single-maison",
            "value_tier": "High",
            "breadth": "1 maison",
            "recency_band": "0-3 months",
            "frequency_band": "2-4 orders",
            "channel_preference": "Boutique",
            "lead_sector": "Watches & Jewelry",
            "second_sector": "No other sector",
            "generalized": "",
        }
    )
    nodes = pl.DataFrame(
        {
            "maison": ["aurelle"] * 12,
            "maison_ref": [ref(i) for i in range(12)],
            "person_id": pl.Series(range(12), dtype=pl.Int64),
        }
    )
    glossary = pl.DataFrame(
        {
            "segment": pl.Series([1], dtype=pl.Int32),
            "segment_label": ["Jewelry-led, high value, single-maison"],
            "description": ["Mostly jewelry."],
        }
    )
    aggregates = pl.DataFrame(
        schema={"table": pl.String, "scope": pl.String, "row_key": pl.String,
                "col_key": pl.String, "persons": pl.Int64, "share": pl.Float64,
                "suppressed": pl.Boolean, "note": pl.String, "margin": pl.Float64}
    )  # fmt: skip
    with DuckDBEngine() as engine:
        tables = ReleaseTables(
            engine.register("released", people), "unused", engine.register("nodes", nodes)
        )
        segments = maison_segments(engine, tables, "aurelle")
    assert segments.columns == ["maison_ref", *ATTRIBUTES]
    return MaisonRelease("aurelle", segments, aggregates, glossary), nodes


def refused(release: MaisonRelease, nodes: pl.DataFrame) -> list[str]:
    policy = ReleasePolicy(load_taxonomy(), k=10, k_aggregate=20, maison_names={})
    exported = {"aurelle": nodes.get_column("maison_ref")}
    found = release_problems(
        {"aurelle": release}, policy=policy, exported_refs=exported, person_nodes=nodes
    )
    with pytest.raises(PrivacyCheckError):
        check_release(
            {"aurelle": release}, policy=policy, exported_refs=exported, person_nodes=nodes
        )
    return found


def test_the_untouched_release_passes(release):
    r, nodes = release
    policy = ReleasePolicy(load_taxonomy(), k=10, k_aggregate=20, maison_names={})
    exported = {"aurelle": nodes.get_column("maison_ref")}
    assert release_problems({"aurelle": r}, policy=policy, exported_refs=exported,
                            person_nodes=nodes) == []  # fmt: skip


@pytest.mark.parametrize("column", ATTRIBUTES)
def test_a_missing_returned_column_is_refused(release, column):
    r, nodes = release
    # with the column gone, the other columns are still shared by 12 >= k persons: a check on
    # fewer columns would pass; the release must be refused instead
    thin = MaisonRelease("aurelle", r.segments.drop(column), r.aggregates, r.glossary)
    found = refused(thin, nodes)
    assert any("missing" in p and column in p for p in found), found


@pytest.mark.parametrize("table", ["aggregates", "glossary"])
def test_a_missing_column_in_another_returned_table_is_refused(release, table):
    r, nodes = release
    tables = r.tables()
    tables[table] = tables[table].drop(tables[table].columns[-1])
    found = refused(MaisonRelease("aurelle", *tables.values()), nodes)
    assert any("missing" in p for p in found), found


def test_an_unexpected_returned_column_is_refused(release):
    r, nodes = release
    # a plain text column that would widen the returned combination beyond what was checked
    extra = r.segments.with_columns(
        third_sector=pl.when(pl.int_range(pl.len()) == 0).then(pl.lit("Wines & Spirits"))
    )
    found = refused(MaisonRelease("aurelle", extra, r.aggregates, r.glossary), nodes)
    assert any("third_sector" in p for p in found), found


def test_segment_sizes_take_a_complementary_cell_with_a_small_one():
    # sizes 300, 100, 30 of 430 persons at k_aggregate 50: 30 is small; alone it would be
    # 430 - 300 - 100, so 100 (the next smallest) is withheld with it
    out = quality_table(
        {"silhouette": 0.2, "sizes": {1: 300, 2: 100, 3: 30}}, {1: "a", 2: "b", 3: "c"}, 50
    )
    sizes = {r["key"]: r for r in out.filter(metric="segment_size").iter_rows(named=True)}
    assert sizes["a"]["value"] == 300 and not sizes["a"]["suppressed"]
    assert sizes["b"]["value"] is None and sizes["b"]["suppressed"]
    assert sizes["c"]["value"] is None and sizes["c"]["suppressed"]
    assert out.filter(metric="silhouette").get_column("value").to_list() == [0.2]


def test_segment_sizes_withheld_together_cover_k_aggregate():
    # 20 + 20 withheld is still under 50: a third (60) goes with them
    out = quality_table({"sizes": {1: 500, 2: 60, 3: 20, 4: 20}}, {}, 50)
    shown = out.filter(~pl.col("suppressed")).get_column("value").to_list()
    assert shown == [500]


def test_segment_sizes_all_above_k_aggregate_are_published():
    out = quality_table({"sizes": {1: 300, 2: 100, 3: 70}}, {}, 50)
    assert not out.get_column("suppressed").any()
    assert sorted(out.get_column("value").to_list()) == [70, 100, 300]


def test_a_lone_small_pairwise_overlap_takes_another_with_it():
    # overlaps sum to sum_n C(n, 2) * breadth_n = 90 + 3 * 50 = 240 once breadth is published
    figures = {
        "records": 700,
        "persons": 400,
        "persons_by_maisons": {"1": 260, "2": 90, "3": 50},
        "pairwise_overlap": {"a|b": 150, "a|c": 80, "b|c": 10},
    }
    cells = match_cells(figures, 50)
    overlap = cells.filter(pl.col("table") == "pairwise_overlap")
    hidden = overlap.filter("suppressed").get_column("row_key").to_list()
    assert sorted(hidden) == ["a", "b"]  # b|c (10) and a|c (80)
    assert overlap.filter(~pl.col("suppressed")).get_column("persons").to_list() == [150]
