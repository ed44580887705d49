"""Disclosure by subtraction in aggregates: complements of yes/no tables, a recipient's own
counts against the group's, and affinity rows of a withheld segment (DESIGN §5.7)."""

from __future__ import annotations

import polars as pl

from crossgroup.group.cells import maison_aggregates, scope_cells, suppress
from crossgroup.group.report_tables import match_cells

SECTORS = ["Watches & Jewelry", "Wines & Spirits"]
K_AGG = 50


def people(spec: list[tuple[int, dict]], start: int = 0) -> pl.DataFrame:
    """Persons with released attributes: [(count, overrides), ...], ids from `start`."""
    rows = []
    for n, over in spec:
        for _ in range(n):
            rows.append(
                {
                    "person_id": start + len(rows),
                    "segment_label": "A",
                    "value_tier": "Core",
                    "breadth": "1 maison",
                    "channel_preference": "Boutique",
                    SECTORS[0]: True,
                    SECTORS[1]: False,
                    **over,
                }
            )
    return pl.DataFrame(rows)


def cell(frame: pl.DataFrame, table: str, scope: str, row: str, col: str = "") -> dict:
    got = frame.filter(
        (pl.col("table") == table)
        & (pl.col("scope") == scope)
        & (pl.col("row_key") == row)
        & (pl.col("col_key") == col)
    )
    assert got.height == 1, (table, scope, row, col)
    return got.row(0, named=True)


def test_group_cells_are_suppressed_per_recipient_when_the_difference_is_small():
    # group: A 337 (327 of them at this maison), B 400 (100 here), C 263 (none here)
    own_a = people([(327, {"segment_label": "A"})])
    own_b = people([(100, {"segment_label": "B", "value_tier": "High"})], start=327)
    others = people(
        [
            (10, {"segment_label": "A"}),
            (300, {"segment_label": "B"}),
            (263, {"segment_label": "C"}),
        ],
        start=1000,
    )
    own = pl.concat([own_a, own_b])
    group = pl.concat([own, others])
    group_raw = scope_cells(group, "group", SECTORS)
    aggs = maison_aggregates(own, group_raw, SECTORS, k=10, k_aggregate=K_AGG, withheld=0)

    a = cell(aggs, "segment_mix", "group", "A")
    assert a["suppressed"] and a["persons"] is None and a["share"] is None
    assert "outside your maison" in a["note"]
    # with A withheld, the total would give it back: the next smallest (C) goes too
    c = cell(aggs, "segment_mix", "group", "C")
    assert c["suppressed"] and "subtraction" in c["note"]
    assert cell(aggs, "segment_mix", "group", "B")["persons"] == 400
    # a group cell made only of this maison's persons (difference 0) says "nobody else"
    high = cell(aggs, "value_tiers", "group", "High")
    assert high["suppressed"] and "outside your maison" in high["note"]
    # counted in the recipient's suppression rows
    summary = cell(aggs, "suppression", "group", "segment_mix")
    assert "2 cell(s)" in summary["note"]
    # the property: no published group cell differs from this maison's own count by < k
    own_counts = scope_cells(own, "maison", SECTORS).select(
        "table", "row_key", "col_key", pl.col("persons").alias("own")
    )
    published = aggs.filter(
        (pl.col("scope") == "group") & ~pl.col("suppressed") & (pl.col("table") != "suppression")
    ).join(own_counts, on=["table", "row_key", "col_key"], how="left")
    diff = published.get_column("persons") - published.get_column("own").fill_null(0)
    assert published.height > 0 and diff.min() >= K_AGG
    # the processor's own report (no recipient) still publishes A
    report = suppress(group_raw, K_AGG)
    assert cell(report, "segment_mix", "group", "A")["persons"] == 337


def test_difference_applies_even_when_the_own_cell_is_suppressed():
    own = people([(30, {"segment_label": "A"}), (200, {"segment_label": "B"})])
    others = people([(20, {"segment_label": "A"}), (300, {"segment_label": "B"})], start=1000)
    group_raw = scope_cells(pl.concat([own, others]), "group", SECTORS)
    aggs = maison_aggregates(own, group_raw, SECTORS, k=10, k_aggregate=K_AGG, withheld=0)
    assert cell(aggs, "segment_mix", "maison", "A")["suppressed"]  # 30 < 50 in its own scope
    a = cell(aggs, "segment_mix", "group", "A")  # 50 in the group, 20 outside
    assert a["suppressed"] and "outside your maison" in a["note"]


def test_affinity_complement_below_k_is_suppressed_and_a_full_share_too():
    # 337 persons: 325 with a wine affinity (12 without), all with a jewelry affinity
    persons = people([(325, {SECTORS[1]: True}), (12, {})])
    out = suppress(scope_cells(persons, "group", SECTORS), K_AGG)
    wine = cell(out, "sector_affinity", "group", SECTORS[1])
    assert wine["suppressed"] and wine["persons"] is None and wine["share"] is None
    assert "without this attribute" in wine["note"]
    jewel = cell(out, "sector_affinity", "group", SECTORS[0])
    assert jewel["suppressed"]  # share 1.0 discloses the attribute for everyone
    seg = cell(out, "segment_sector_affinity", "group", "A", SECTORS[1])
    assert seg["suppressed"] and "without this attribute" in seg["note"]
    summary = cell(out, "suppression", "group", "sector_affinity")
    assert "2 cell(s)" in summary["note"] and summary["persons"] is None
    # a complement of k or more is published
    wide = people([(200, {SECTORS[1]: True}), (137, {})])
    out = suppress(scope_cells(wide, "group", SECTORS), K_AGG)
    assert cell(out, "sector_affinity", "group", SECTORS[1])["persons"] == 200


def test_affinity_row_of_a_withheld_segment_is_suppressed():
    # segment A is small, B is withheld with it; B's affinity share would give B's size back
    persons = people(
        [
            (30, {"segment_label": "A"}),
            (200, {"segment_label": "B", SECTORS[1]: True}),
            (200, {"segment_label": "B"}),
            (570, {"segment_label": "C"}),
        ]
    )
    out = suppress(scope_cells(persons, "group", SECTORS), K_AGG)
    assert cell(out, "segment_mix", "group", "B")["suppressed"]
    b_wine = cell(out, "segment_sector_affinity", "group", "B", SECTORS[1])
    assert b_wine["suppressed"] and b_wine["share"] is None
    assert "size is withheld" in b_wine["note"]
    published = out.filter(~pl.col("suppressed") & (pl.col("table") != "suppression"))
    assert (published.get_column("persons") >= K_AGG).all()


def test_match_breadth_complement_against_match_totals_is_suppressed():
    figures = {
        "records": 1200,
        "persons": 1000,
        "persons_by_maisons": {"1": 970, "2": 20, "3": 10},
        "pairwise_overlap": {},
    }
    out = match_cells(figures, K_AGG)
    one = cell(out, "match_breadth", "group", "1 maison(s)")
    assert one["suppressed"] and one["persons"] is None  # 1000 - 970 = 30 < 50
    assert cell(out, "match_totals", "group", "persons")["persons"] == 1000
    figures["persons_by_maisons"] = {"1": 900, "2": 60, "3": 40}
    out = match_cells(figures, K_AGG)
    # 3 is small; 2 is withheld with it (else 1000 - 900 - 60 gives it back); 1 stays
    assert cell(out, "match_breadth", "group", "1 maison(s)")["persons"] == 900
    assert cell(out, "match_breadth", "group", "2 maison(s)")["suppressed"]


def test_withheld_cells_of_a_partition_cover_k_together():
    cells = pl.DataFrame(
        {
            "table": ["breadth"] * 4,
            "scope": ["group"] * 4,
            "row_key": ["1", "2", "3", "4"],
            "col_key": [""] * 4,
            "persons": [900, 300, 20, 10],
            "share": [900 / 1230, 300 / 1230, 20 / 1230, 10 / 1230],
        }
    )
    out = suppress(cells, K_AGG)
    # 20 + 10 = 30 < 50 would be recoverable from the total: a third cell is withheld
    assert cell(out, "breadth", "group", "2")["suppressed"]
    assert cell(out, "breadth", "group", "1")["persons"] == 900
    assert cell(out, "suppression", "group", "breadth")["persons"] == 330
