"""A sector that fewer than two participating maisons occupy is never released by name.

The public registry lists each maison's sector: a lead sector, segment label or glossary text
naming a one-maison sector tells maison A "this customer of yours spends most at maison B"
(DESIGN §1, §4.4). Such sectors are released under their family or "Other sectors", group-wide,
and the release checks refuse a release that still names one.
"""

from __future__ import annotations

import re

import numpy as np
import polars as pl
import pytest

from crossgroup.config import load_taxonomy
from crossgroup.contracts import CELLS, RETURNED_ATTRIBUTES
from crossgroup.group.features import sector_slug
from crossgroup.group.generalize import generalize
from crossgroup.group.segment import SegmentModel
from crossgroup.privacy.policy import ReleasePolicy
from crossgroup.privacy.policy import released_sector_names as policy_names
from crossgroup.privacy.release_checks import MaisonRelease, release_problems

TAXONOMY = load_taxonomy()
OTHER_SECTORS = TAXONOMY.pooled.name


def released_sector_names(sectors, sector_maisons=None):
    return policy_names(sectors, sector_maisons, taxonomy=TAXONOMY, min_maisons=2)


def policy(sector_maisons=None, **thresholds) -> ReleasePolicy:
    return ReleasePolicy(TAXONOMY, sector_maisons=sector_maisons, **thresholds)


SECTORS = [
    "Watches & Jewelry",
    "Fashion & Leather Goods",
    "Perfumes & Cosmetics",
    "Wines & Spirits",
    "Selective Retailing",
    "Hospitality & Other",
]
COLUMNS = {s: f"share_{sector_slug(s)}" for s in SECTORS}
# The demo's batch: four sectors have one maison each (Céleste, Orval, Lumen, Belvoir).
DEMO = {
    "Watches & Jewelry": 3,
    "Fashion & Leather Goods": 2,
    "Perfumes & Cosmetics": 1,
    "Wines & Spirits": 1,
    "Selective Retailing": 1,
    "Hospitality & Other": 1,
}
LONELY = [s for s, n in DEMO.items() if n < 2]
# Every way a label or description could name a sector: display name and label word.
WORDS = {
    "Watches & Jewelry": ["Watches & Jewelry", "Jewelry"],
    "Fashion & Leather Goods": ["Fashion & Leather Goods", "Fashion"],
    "Perfumes & Cosmetics": ["Perfumes & Cosmetics", "Beauty"],
    "Wines & Spirits": ["Wines & Spirits", "Wine & spirits"],
    "Selective Retailing": ["Selective Retailing", "Retail"],
    "Hospitality & Other": ["Hospitality & Other", "Hospitality"],
}
COARSER = ["Jewelry & Fashion", "Beauty & Retail", "Wines, Hospitality & Other", OTHER_SECTORS]
COARSER_WORDS = ["Jewelry-fashion", "Beauty-retail", "Wine-hospitality", "Other-sectors"]


def names_sector(text: str, sector: str) -> bool:
    """Whether `text` names `sector`, once the coarser released names are taken out."""
    for name in COARSER:
        text = text.replace(name, " ")
    for word in COARSER_WORDS:
        text = re.sub(re.escape(word), " ", text, flags=re.IGNORECASE)
    return any(re.search(rf"(?i)\b{re.escape(w)}\b", text) is not None for w in WORDS[sector])


def person_features(n: int = 6_000, seed: int = 4) -> pl.DataFrame:
    """Person features with one archetype per sector, each clearly led by its sector."""
    rng = np.random.default_rng(seed)
    lead = rng.integers(0, 6, n)
    shares = rng.dirichlet(np.full(6, 0.3), n) * 0.15
    shares[np.arange(n), lead] += 0.85
    online = np.clip(rng.beta(0.6, 1.5, n), 0, 1)
    orders = 1 + rng.poisson(1.0 + lead * 0.4, n)
    cols = {
        "person_id": np.arange(n, dtype=np.int64),
        "n_maisons": np.minimum(1 + rng.poisson(0.4, n), 6).astype(np.int32),
        "total_spend_eur": rng.lognormal(6 + lead * 0.5, 0.4, n) * orders,
        "orders": orders.astype(np.int64),
        "active_months": np.minimum(orders, 12).astype(np.int32),
        "recency_months": rng.integers(0, 36, n).astype(np.int32),
        "tenure_months": rng.integers(12, 36, n).astype(np.int32),
        "online_share": online,
        "boutique_share": 1 - online,
        "q4_share": rng.uniform(0.1, 0.4, n),
    }
    for j, s in enumerate(SECTORS):
        cols[COLUMNS[s]] = shares[:, j]
    return pl.DataFrame(cols)


@pytest.fixture(scope="module")
def features() -> pl.DataFrame:
    return person_features()


def fitted(features: pl.DataFrame, sector_maisons: dict[str, int] | None) -> SegmentModel:
    released = released_sector_names(SECTORS, sector_maisons) if sector_maisons else None
    return SegmentModel(n_segments=6, random_state=1, released_sectors=released).fit(features)


def test_released_names_pool_one_maison_sectors_under_their_family():
    names = released_sector_names(SECTORS, DEMO)
    assert names == {
        "Watches & Jewelry": "Watches & Jewelry",
        "Fashion & Leather Goods": "Fashion & Leather Goods",
        "Perfumes & Cosmetics": "Beauty & Retail",
        "Wines & Spirits": "Wines, Hospitality & Other",
        "Selective Retailing": "Beauty & Retail",
        "Hospitality & Other": "Wines, Hospitality & Other",
    }
    # without the mapping, or with two maisons everywhere, every sector keeps its name
    assert released_sector_names(SECTORS) == {s: s for s in SECTORS}
    assert released_sector_names(SECTORS, dict.fromkeys(SECTORS, 2)) == {s: s for s in SECTORS}


def test_a_lonely_sector_is_not_exposed_by_exclusion_from_its_named_family():
    # Hospitality alone in its family: pooling it under the family while Wines keeps its name
    # would make the family value mean "Hospitality", so Wines gives up its name too.
    counts = {**dict.fromkeys(SECTORS, 2), "Hospitality & Other": 1}
    names = released_sector_names(SECTORS, counts)
    assert names["Hospitality & Other"] == names["Wines & Spirits"] == "Wines, Hospitality & Other"
    assert all(names[s] == s for s in [*SECTORS[:3], "Selective Retailing"])
    # a family that has one maison in all goes to "Other sectors", with another lonely one
    counts = {**dict.fromkeys(SECTORS, 2), "Wines & Spirits": 0, "Hospitality & Other": 1}
    counts["Selective Retailing"] = 1
    counts["Perfumes & Cosmetics"] = 0
    names = released_sector_names(SECTORS, counts)
    assert names["Hospitality & Other"] == names["Selective Retailing"] == OTHER_SECTORS
    # every released name other than a sector's own stands for 0 or >= 2 maisons
    for released in set(names.values()) - set(SECTORS):
        total = sum(counts[s] for s in SECTORS if names[s] == released)
        assert total == 0 or total >= 2


def test_generalize_releases_no_row_naming_a_one_maison_sector(features):
    segments = np.asarray(features.get_column("person_id") % 6 + 1, dtype=np.int32)
    labels = {i: f"Segment {i}" for i in range(1, 7)}
    gen = generalize(features, segments, policy=policy(DEMO), labels=labels, sector_columns=COLUMNS)
    values = set(gen.released.get_column("lead_sector").drop_nulls())
    assert not values & set(LONELY)
    assert {"Beauty & Retail", "Wines, Hospitality & Other", "Watches & Jewelry"} <= values
    # the second sector too, and never the lead's pooled name again (it would name both
    # one-maison sectors of the family)
    seconds = set(gen.released.get_column("second_sector").drop_nulls())
    assert not seconds & set(LONELY)
    assert {"Beauty & Retail", "Wines, Hospitality & Other", "Fashion & Leather Goods"} <= seconds
    as_released = gen.released.filter(~pl.col("generalized").str.contains("sector"))
    assert as_released.filter(pl.col("lead_sector") == pl.col("second_sector")).is_empty()
    # k-anonymity keeps its meaning over the released values
    combo = ["segment", "segment_label", *RETURNED_ATTRIBUTES, "generalized"]
    assert "second_sector" in combo
    assert gen.released.group_by(combo).len().get_column("len").min() >= 10
    # a pooled name is where those rows start (release policy), not a k-anonymity step: it
    # must not inflate the information-loss figures the utility target is read on
    pooled = gen.released.filter(
        pl.col("lead_sector").is_in(["Beauty & Retail", "Wines, Hospitality & Other"])
    )
    assert pooled.height > 0
    assert not pooled.get_column("generalized").str.contains("lead_sector").any()
    pooled = gen.released.filter(
        pl.col("second_sector").is_in(["Beauty & Retail", "Wines, Hospitality & Other"])
    )
    assert pooled.height > 0
    assert not pooled.get_column("generalized").str.contains("second_sector").any()


def test_generalize_names_a_sector_with_two_maisons(features):
    segments = np.asarray(features.get_column("person_id") % 6 + 1, dtype=np.int32)
    labels = {i: f"Segment {i}" for i in range(1, 7)}
    two = dict.fromkeys(SECTORS, 2)
    gen = generalize(features, segments, policy=policy(two), labels=labels, sector_columns=COLUMNS)
    assert set(gen.released.get_column("lead_sector").drop_nulls()) >= set(SECTORS)


def test_labels_and_glossary_never_name_a_one_maison_sector(features):
    model = fitted(features, DEMO)
    texts = [*model.labels_.values(), *model.descriptions_.values()]
    for sector in LONELY:
        assert not [t for t in texts if names_sector(t, sector)], sector
    assert len(set(model.labels_.values())) == len(model.labels_)
    # the pooled names are what the labels speak of instead
    assert any("Beauty-retail" in t or "Wine-hospitality" in t for t in model.labels_.values())
    assert any("Beauty & Retail" in t for t in model.descriptions_.values())


def test_labels_name_sectors_with_two_maisons(features):
    model = fitted(features, dict.fromkeys(SECTORS, 2))
    texts = [*model.labels_.values(), *model.descriptions_.values()]
    for sector in LONELY:
        assert [t for t in texts if names_sector(t, sector)], sector
    # and the default (no mapping) is unchanged: labels from sector words
    assert fitted(features, None).labels_ == model.labels_


def _release(features: pl.DataFrame, sector_maisons: dict[str, int] | None):
    """A one-maison release built by the real code: generalize + SegmentModel labels."""
    model = fitted(features, sector_maisons)
    segments = model.predict(features)
    gen = generalize(
        features,
        segments,
        policy=policy(sector_maisons),
        labels=model.labels_,
        sector_columns=COLUMNS,
    )
    rows = gen.released
    nodes = pl.DataFrame(
        {
            "maison": ["aurelle"] * rows.height,
            "maison_ref": [int(p).to_bytes(16, "big") for p in rows.get_column("person_id")],
            "person_id": rows.get_column("person_id"),
        }
    )
    segs = rows.join(nodes, on="person_id").select(
        "maison_ref", "segment", "segment_label", *RETURNED_ATTRIBUTES, "generalized"
    )
    glossary = pl.DataFrame(
        {
            "segment": pl.Series(sorted(model.labels_), dtype=pl.Int32),
            "segment_label": [model.labels_[s] for s in sorted(model.labels_)],
            "description": [model.descriptions_[s] for s in sorted(model.labels_)],
        }
    )
    # the other_sector_spend cells of a maison of Watches & Jewelry, as released names
    aggregates = pl.DataFrame(
        {
            "table": "other_sector_spend",
            "scope": "maison",
            "row_key": ["Fashion & Leather Goods", "Beauty & Retail", "Wines, Hospitality & Other"],
            "col_key": "",
            "persons": [400, 300, 200],
            "share": [0.1, 0.08, 0.05],
            "suppressed": False,
            "note": "",
            "margin": None,
        },
        schema=CELLS.schema,
    )
    release = MaisonRelease("aurelle", segs, aggregates, glossary)
    return release, nodes


def _problems(release: MaisonRelease, nodes: pl.DataFrame, sector_maisons) -> list[str]:
    names = {"aurelle": "Aurelle Joaillerie", "belvoir": "Belvoir Hotels"}
    return release_problems(
        {"aurelle": release},
        policy=policy(sector_maisons, k=10, k_aggregate=20, maison_names=names),
        exported_refs={"aurelle": nodes.get_column("maison_ref")},
        person_nodes=nodes,
    )


def test_release_check_passes_the_pooled_release_and_refuses_a_doctored_one(features):
    release, nodes = _release(features, DEMO)
    assert _problems(release, nodes, DEMO) == []
    segs, glossary = release.segments, release.glossary
    doctored = {
        "segments.lead_sector": MaisonRelease(
            "aurelle",
            segs.with_columns(
                lead_sector=pl.when(pl.col("lead_sector") == "Wines, Hospitality & Other")
                .then(pl.lit("Hospitality & Other"))
                .otherwise(pl.col("lead_sector"))
            ),
            release.aggregates,
            glossary,
        ),
        "segments.segment_label": MaisonRelease(
            "aurelle",
            segs.with_columns(
                segment_label=pl.col("segment_label")
                .str.replace("Wine-hospitality-led", "Hospitality-led", literal=True)
                .str.replace("Beauty-retail", "Beauty", literal=True)
            ),
            release.aggregates,
            glossary,
        ),
        "segments.second_sector": MaisonRelease(
            "aurelle",
            segs.with_columns(
                second_sector=pl.when(pl.col("second_sector") == "Beauty & Retail")
                .then(pl.lit("Perfumes & Cosmetics"))
                .otherwise(pl.col("second_sector"))
            ),
            release.aggregates,
            glossary,
        ),
        "aggregates.row_key": MaisonRelease(
            "aurelle",
            segs,
            release.aggregates.with_columns(
                row_key=pl.col("row_key").str.replace(
                    "Wines, Hospitality & Other", "Wines & Spirits"
                )
            ),
            glossary,
        ),
        "glossary.description": MaisonRelease(
            "aurelle",
            segs,
            release.aggregates,
            glossary.with_columns(
                description=pl.col("description") + pl.lit(" Then Selective Retailing (12%).")
            ),
        ),
    }
    for where, bad in doctored.items():
        found = _problems(bad, nodes, DEMO)
        assert any(where in p and "fewer than 2 participating maisons" in p for p in found), where
        assert not any("Hospitality" in p.split(":")[-1] for p in found)  # no value echoed
    # backward compatible: without the mapping, sector names are not checked
    assert _problems(doctored["segments.lead_sector"], nodes, None) == []


def test_release_check_refuses_an_unpooled_release(features):
    # labels and lead sectors built without the mapping name the one-maison sectors
    release, nodes = _release(features, None)
    found = _problems(release, nodes, DEMO)
    assert any("segments.lead_sector" in p for p in found)
    assert any("segments.second_sector" in p for p in found)
    assert any("glossary.segment_label" in p or "glossary.description" in p for p in found)
    # with two maisons in every sector the same release is fine
    assert _problems(release, nodes, dict.fromkeys(SECTORS, 2)) == []


# -- affinity tables ---------------------------------------------------------------------------

AFFINITY = ("sector_affinity", "segment_sector_affinity")


def affinity_keys(cells: pl.DataFrame) -> set[str]:
    """The sector names of the affinity cells: row_key of sector_affinity, col_key of
    segment_sector_affinity (its row_key is the segment label)."""
    keyed = cells.filter(pl.col("table").is_in(AFFINITY)).select(
        pl.when(pl.col("table") == "sector_affinity")
        .then(pl.col("row_key"))
        .otherwise(pl.col("col_key"))
    )
    return set(keyed.to_series())


def test_affinity_cells_are_keyed_by_released_names_only(features):
    """Built by the real code (person_tables, build_release) in the embedded engine: no cell
    names a one-maison sector, and a pooled name counts persons with an affinity for any
    sector released under it."""
    from crossgroup.engine import DuckDBEngine
    from crossgroup.group.release import ReleaseTables, build_release, person_tables

    pol = policy(DEMO, k=10, k_aggregate=20, maison_names={"aurelle": "Aurelle Joaillerie"})
    model = fitted(features, DEMO)
    gen = generalize(
        features, model.predict(features), policy=pol, labels=model.labels_, sector_columns=COLUMNS
    )
    columns = ["segment", "segment_label", *RETURNED_ATTRIBUTES, "generalized"]
    released = gen.released.select("person_id", *columns)
    nodes = pl.DataFrame(
        {
            "maison": "aurelle",
            "maison_ref": [int(p).to_bytes(16, "big") for p in released.get_column("person_id")],
            "person_id": released.get_column("person_id"),
        }
    )
    with DuckDBEngine() as engine:
        engine.register("features", features)
        affinity, spend = person_tables(engine, "features", sector_columns=COLUMNS, policy=pol)
        tables = ReleaseTables(
            engine.register("released", released), affinity, engine.register("nodes", nodes), spend
        )
        release = build_release(
            engine, pol, maisons=["aurelle"], generalization=gen, model=model, tables=tables,
            sectors=SECTORS, match_figures={}, maison_sectors={"aurelle": "Watches & Jewelry"},
        )  # fmt: skip
        returned = release.maison_return("aurelle", pol)
    names = set(pol.released_sectors.values())
    for cells in (release.group_raw, release.group_cells, returned.aggregates):
        keys = affinity_keys(cells)
        assert keys <= names and not keys & set(LONELY)
        assert {"Beauty & Retail", "Wines, Hospitality & Other"} <= keys
    # flags ORed over the sectors pooled under a name: a person counts once
    shares = features.join(released.select("person_id"), on="person_id")
    for name in ("Beauty & Retail", "Wines, Hospitality & Other"):
        members = [COLUMNS[s] for s in SECTORS if pol.released_sectors[s] == name]
        expected = shares.filter(pl.any_horizontal(pl.col(c) >= 0.10 for c in members)).height
        (got,) = release.group_raw.filter(
            (pl.col("table") == "sector_affinity") & (pl.col("row_key") == name)
        ).get_column("persons")
        assert got == expected
    # and the release built so passes the checks
    assert _problems(returned, nodes, DEMO) == []


def _with_affinity(release: MaisonRelease, *rows) -> MaisonRelease:
    cells = pl.DataFrame(
        [(t, "maison", r, c, 400, 0.4, False, "", None) for t, r, c in rows],
        orient="row",
        schema=CELLS.schema,
    )
    aggregates = pl.concat([release.aggregates, cells])
    return MaisonRelease(release.maison, release.segments, aggregates, release.glossary)


def test_release_check_refuses_an_affinity_cell_naming_a_pooled_sector(features):
    release, nodes = _release(features, DEMO)
    label = release.glossary.get_column("segment_label")[0]
    fine = _with_affinity(
        release,
        ("sector_affinity", "Beauty & Retail", ""),
        ("segment_sector_affinity", label, "Wines, Hospitality & Other"),
    )
    assert _problems(fine, nodes, DEMO) == []
    doctored = {
        "aggregates.row_key": ("sector_affinity", "Hospitality & Other", ""),
        "aggregates.col_key": ("segment_sector_affinity", label, "Perfumes & Cosmetics"),
    }
    for where, cell in doctored.items():
        found = _problems(_with_affinity(release, cell), nodes, DEMO)
        assert any(where in p and "fewer than 2 participating maisons" in p for p in found), where
        assert any(where in p and "under its own name" in p for p in found), where
        assert not any("Hospitality" in p.split(":")[-1] for p in found)  # no value echoed
    # a sector with two maisons pooled so that its family's name does not point at a lonely
    # one by exclusion: naming it is refused too, though it stands for two maisons
    counts = {**dict.fromkeys(SECTORS, 2), "Hospitality & Other": 1}
    assert released_sector_names(SECTORS, counts)["Wines & Spirits"] != "Wines & Spirits"
    release, nodes = _release(features, counts)
    label = release.glossary.get_column("segment_label")[0]
    for cell in [
        ("sector_affinity", "Wines & Spirits", ""),
        ("segment_sector_affinity", label, "Wines & Spirits"),
    ]:
        found = _problems(_with_affinity(release, cell), nodes, counts)
        assert any("under its own name" in p for p in found), cell
    assert _problems(_with_affinity(release, ("sector_affinity", "Watches & Jewelry", "")),
                     nodes, counts) == []  # fmt: skip
