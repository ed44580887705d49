"""Cross-sector interest in the return (issue 15, point 5; DESIGN §4.4, §5.6-5.7): the
`second_sector` band and each maison's `other_sector_spend` aggregate.

Expectations are written here by hand: which sector is second for a given split of spend,
and which cells a maison may see.
"""

from __future__ import annotations

import sys
from pathlib import Path

import polars as pl
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from test_generalize import SECTOR_COLUMNS, SECTORS

from crossgroup.config import load_taxonomy
from crossgroup.engine import DuckDBEngine
from crossgroup.group.bands import band_frame, return_hierarchies
from crossgroup.group.cells import maison_aggregates, other_sector_cells, scope_cells
from crossgroup.group.release import (
    ReleaseTables,
    other_sector_by_maison,
    spend_shares,
)
from crossgroup.privacy.policy import ReleasePolicy

COLUMNS = SECTOR_COLUMNS
NONE = "No other sector"
# The demo's batch: Watches & Jewelry 3 maisons, Fashion 2, the four others one each.
DEMO = dict(zip(SECTORS, [3, 2, 1, 1, 1, 1], strict=True))
BEAUTY, WINES_HOSPITALITY = "Beauty & Retail", "Wines, Hospitality & Other"
TAXONOMY = load_taxonomy()


def features(splits: list[list[float]], **columns) -> pl.DataFrame:
    """One person per split of spend (shares by sector, taxonomy order)."""
    n = len(splits)
    frame = {
        "person_id": pl.Series(range(n), dtype=pl.Int64),
        "segment": pl.Series([1] * n, dtype=pl.Int32),
        "total_spend_eur": [100.0] * n,
        "n_maisons": pl.Series([2] * n, dtype=pl.Int32),
        "recency_months": pl.Series([1] * n, dtype=pl.Int32),
        "orders": pl.Series([2] * n, dtype=pl.Int64),
        "boutique_share": [1.0] * n,
        "online_share": [0.0] * n,
        **columns,
    }
    for i in range(len(SECTORS)):
        frame[f"share_{i}"] = [float(s[i]) if i < len(s) else 0.0 for s in splits]
    return pl.DataFrame(frame)


def second(splits: list[list[float]], released: dict[str, str] | None = None) -> list[tuple]:
    bands = band_frame(
        features(splits), cuts=[0.0, 1.0, 2.0], sector_columns=COLUMNS, released_sectors=released
    )
    return list(bands.select("lead_sector", "second_sector").iter_rows())


def test_second_sector_is_the_next_largest_positive_share_first_in_order_on_ties():
    got = second(
        [
            [0.5, 0.3, 0.2],  # plain order
            [0.1, 0.0, 0.0, 0.0, 0.0, 0.9],  # the second before the lead in taxonomy order
            [0.4, 0.3, 0.3],  # tie for second: the first in taxonomy order
            [0.35, 0.35, 0.3],  # tie for the lead: the lead is the first, the second the other
            [0.0, 0.0, 1.0],  # one sector only
            [],  # no positive spend at all (every share 0)
        ]
    )
    assert got == [
        (SECTORS[0], SECTORS[1]),
        (SECTORS[5], SECTORS[0]),
        (SECTORS[0], SECTORS[1]),
        (SECTORS[0], SECTORS[1]),
        (SECTORS[2], NONE),
        (SECTORS[0], NONE),
    ]


def test_second_sector_skips_the_sectors_released_under_the_leads_own_name():
    # Perfumes and Selective Retailing (one maison each) are both released as Beauty &
    # Retail: "Beauty & Retail" twice would name both maisons, so the second is the next name
    released = ReleasePolicy(TAXONOMY, sector_maisons=DEMO).released_sectors
    got = second(
        [
            [0.1, 0.0, 0.6, 0.0, 0.3],  # Perfumes, then Retail (same name), then Jewelry
            [0.0, 0.0, 0.7, 0.0, 0.3],  # Perfumes and Retail only
            [0.5, 0.0, 0.0, 0.3, 0.0, 0.2],  # Jewelry, then Wines (pooled with Hospitality)
            [0.2, 0.0, 0.0, 0.3, 0.0, 0.5],  # Hospitality, Wines (same name), then Jewelry
        ],
        released,
    )
    assert got == [
        (BEAUTY, SECTORS[0]),
        (BEAUTY, NONE),
        (SECTORS[0], WINES_HOSPITALITY),
        (WINES_HOSPITALITY, SECTORS[0]),
    ]


def test_second_sector_coarsens_to_its_family_and_no_other_sector_to_suppressed():
    policy = ReleasePolicy(TAXONOMY, sector_maisons=DEMO)
    hierarchies = return_hierarchies(range(1, 4), SECTORS, policy)
    (h,) = [h for h in hierarchies if h.name == "second_sector"]
    labels, step = h.codes()
    code = {v: i for i, v in enumerate(labels)}
    # only sectors released under their own name are default values, with "No other sector"
    assert h.values == (SECTORS[0], SECTORS[1], NONE)
    assert labels[step[code[SECTORS[0]]]] == labels[step[code[SECTORS[1]]]] == "Jewelry & Fashion"
    assert step[code[NONE]] == 0  # no coarser band: straight to suppressed
    # pooled names are where their rows start, and go to suppressed from there
    assert step[code[BEAUTY]] == step[code[WINES_HOSPITALITY]] == 0


# -- other_sector_spend -----------------------------------------------------------------------


def spend(rows: list[tuple[str, int, float]], base: int) -> pl.DataFrame:
    """(released sector name, persons with spend there, their shares added up)."""
    return pl.DataFrame(
        rows,
        orient="row",
        schema={"sector": pl.String, "persons": pl.Int64, "share_sum": pl.Float64},
    ).with_columns(base=pl.lit(base, dtype=pl.Int64))


def aggregates(other_sector: pl.DataFrame) -> pl.DataFrame:
    """A maison's aggregates (300 returned customers, 500 in the group) with these cells."""
    persons = pl.DataFrame(
        {
            "person_id": range(500),
            "segment_label": "A",
            "value_tier": "Core",
            "breadth": "2 maisons",
            "channel_preference": "Boutique",
            SECTORS[0]: True,
        }
    )
    return maison_aggregates(
        persons.head(300),
        scope_cells(persons, "group", SECTORS[:1]),
        SECTORS[:1],
        k=10,
        k_aggregate=50,
        withheld=0,
        other_sector=other_sector,
    )


def cells_of(aggs: pl.DataFrame) -> dict[str, dict]:
    mine = aggs.filter(pl.col("table") == "other_sector_spend")
    assert set(mine.get_column("scope")) == {"maison"}
    return {r["row_key"]: r for r in mine.iter_rows(named=True)}


def test_other_sector_spend_leaves_out_the_own_sector_and_withholds_what_would_disclose():
    frame = spend(
        [
            ("Watches & Jewelry", 300, 180.0),  # the maison's own sector: never a cell
            ("Fashion & Leather Goods", 120, 30.0),  # published: 120 of 300, 10 % of spend
            (BEAUTY, 40, 4.0),  # fewer than 50 persons
            (WINES_HOSPITALITY, 0, 0.0),  # nobody: a cell of 0, withheld as small
            ("Other sectors", 280, 60.0),  # 20 without it: recoverable from the base
        ],
        base=300,
    )
    cells = other_sector_cells(frame, "Watches & Jewelry")
    assert "Watches & Jewelry" not in set(cells.get_column("row_key"))
    aggs = aggregates(cells)
    got = cells_of(aggs)
    assert set(got) == {"Fashion & Leather Goods", BEAUTY, WINES_HOSPITALITY, "Other sectors"}
    fashion = got["Fashion & Leather Goods"]
    assert not fashion["suppressed"] and fashion["persons"] == 120
    assert fashion["share"] == pytest.approx(0.10)
    for key, why in [(BEAUTY, "fewer than 50"), (WINES_HOSPITALITY, "fewer than 50"),
                     ("Other sectors", "without this attribute")]:  # fmt: skip
        assert got[key]["suppressed"] and got[key]["persons"] is None, key
        assert got[key]["share"] is None and why in got[key]["note"], key
    said = aggs.filter(
        (pl.col("table") == "suppression") & (pl.col("row_key") == "other_sector_spend")
    )
    assert said.height == 1 and "3 cell(s)" in said.get_column("note").item()
    # everyone spending in a sector is withheld too: it would tell it of each customer
    full = other_sector_cells(spend([("Fashion & Leather Goods", 300, 90.0)], 300), "x")
    assert cells_of(aggregates(full))["Fashion & Leather Goods"]["suppressed"]
    # a maison the registry gives no sector gets no table (its own sector cannot be left out)
    assert other_sector_cells(frame, None).is_empty()


def test_other_sector_spend_counts_each_maisons_multi_maison_customers_in_the_engine():
    """Shares by released name, pooled sectors added up; only customers whose returned breadth
    says 2+ maisons; each customer's split counts once whatever they spend; exact sums."""
    policy = ReleasePolicy(TAXONOMY, sector_maisons=DEMO)
    splits = [
        [0.5, 0.0, 0.2, 0.0, 0.3],  # Jewelry, Beauty & Retail 0.5
        [0.6, 0.1, 0.0, 0.3],  # Jewelry, Fashion, Wines & hospitality
        [1.0],  # Jewelry only
        [0.0, 0.0, 0.0, 0.0, 0.0, 1.0],  # one maison only (breadth 1): not counted
    ]
    people = features(splits)
    released = pl.DataFrame(
        {
            "person_id": pl.Series(range(4), dtype=pl.Int64),
            "breadth": ["2 maisons", "3+ maisons", "2+ maisons", "1 maison"],
        }
    )
    nodes = pl.DataFrame(
        {
            "maison": ["aurelle", "aurelle", "aurelle", "aurelle", "harrow"],
            "maison_ref": [bytes([i]) * 16 for i in range(5)],
            "person_id": pl.Series([0, 1, 2, 3, 1], dtype=pl.Int64),
        }
    )
    shares = spend_shares(people, COLUMNS, policy.released_sectors)
    # four released names: Jewelry, Fashion, Beauty & Retail, Wines, Hospitality & Other
    assert shares.columns == ["person_id", *(f"spend_{i}" for i in range(4))]
    assert shares.row(0) == (0, 500_000_000, 0, 500_000_000, 0)
    with DuckDBEngine() as engine:
        tables = ReleaseTables(
            engine.register("released", released),
            "unused",
            engine.register("nodes", nodes),
            engine.register("spend", shares),
        )
        got = other_sector_by_maison(
            engine, tables, policy, ["aurelle", "harrow", "orval"],
            SECTORS, None,
            {"aurelle": "Watches & Jewelry", "harrow": "Fashion & Leather Goods", "orval": None},
            None,
        )  # fmt: skip
    aurelle = {r["row_key"]: r for r in got["aurelle"].iter_rows(named=True)}
    assert set(aurelle) == {"Fashion & Leather Goods", BEAUTY, WINES_HOSPITALITY}
    assert {k: r["persons"] for k, r in aurelle.items()} == {
        "Fashion & Leather Goods": 1,
        BEAUTY: 1,
        WINES_HOSPITALITY: 1,
    }
    assert {r["base"] for r in aurelle.values()} == {3}
    assert aurelle[BEAUTY]["share"] == pytest.approx(0.5 / 3)
    assert aurelle[WINES_HOSPITALITY]["share"] == pytest.approx(0.1)
    harrow = {r["row_key"]: r for r in got["harrow"].iter_rows(named=True)}
    assert "Fashion & Leather Goods" not in harrow and harrow["Watches & Jewelry"]["base"] == 1
    assert got["orval"].is_empty()


def test_the_suppression_row_never_gives_a_small_sum_of_withheld_persons():
    # a sector where nobody spends next to one where 30 do: "2 cells, 30 persons" would give
    # the 30 away (and a cell of 0 is likely in this table)
    frame = spend([("Fashion & Leather Goods", 30, 3.0), (BEAUTY, 0, 0.0)], base=300)
    aggs = aggregates(other_sector_cells(frame, "Watches & Jewelry"))
    said = aggs.filter(
        (pl.col("table") == "suppression") & (pl.col("row_key") == "other_sector_spend")
    )
    assert "2 cell(s)" in said.get_column("note").item()
    assert said.get_column("persons").item() is None
