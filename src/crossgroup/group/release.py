"""Build what a batch would release, as frames: nothing is checked or written here.

The first of the processor's three closing steps (DESIGN §8): **build** (this module:
frames per recipient, one maison at a time, and for the processor's own reports, from
counts the engine makes), **check** (`privacy.release_checks`), **emit** (`group.emit`: the
one place that writes, seals, reports and audits). A maison's return holds its `segments`
(only its own refs), `aggregates` (cells of `group.cells`, its own exact next to the whole
batch's, suppressed for it, and the spend its multi-maison customers put in other sectors) and
`glossary`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial

import polars as pl

from crossgroup.engine import Engine
from crossgroup.group.bands import MULTI_MAISON_BREADTH
from crossgroup.group.cells import (
    CELL_ATTRIBUTES,
    maison_aggregates,
    other_sector_cells,
    scope_cells,
    suppress,
)
from crossgroup.group.generalize import Generalization
from crossgroup.group.noisy_cells import (
    banded_counts,
    group_noise,
    key_grid,
    multi_maison_codes,
    noisy_group_cells,
    noisy_match_cells,
    noisy_other_sector,
)
from crossgroup.group.report_tables import loss_table, match_cells, quality_table
from crossgroup.privacy.noise import GaussianNoise
from crossgroup.privacy.policy import ReleasePolicy
from crossgroup.privacy.release_checks import MaisonRelease

# A person has an affinity for a sector when it holds at least this share of their spend, and
# for a released sector name when they have one for any sector released under it.
AFFINITY_SHARE = 0.10
# Spend shares are summed as whole billionths: exact, so the sums do not depend on the order
# an engine adds them in, and both engines give the same figures to the bit.
SHARE_UNITS = 10**9


@dataclass(frozen=True)
class ReleaseTables:
    """Where a batch's released values are, in the engine: `released` (person_id and the
    released values, one row per released person), `affinity` (person_id and one flag per
    released sector name, `affinity_flags`), `nodes` (maison, maison_ref, person_id) and
    `spend` (person_id and their share of spend per released sector name, `spend_shares`;
    None: no other_sector_spend table)."""

    released: str
    affinity: str
    nodes: str
    spend: str | None = None


@dataclass(frozen=True)
class Release:
    """What a batch would release: the processor's reports, and each maison's return, built
    from the engine one maison at a time (`maison_return`) so that the driver never holds
    every return at once."""

    maisons: list[str]
    reports: dict[str, pl.DataFrame]  # aggregates, match_figures, segment_quality, suppression
    engine: Engine
    tables: ReleaseTables
    sectors: list[str]  # the released sector names the affinity cells are keyed by
    # the batch's cells before suppression (suppressed per recipient), or, in DP mode
    # (`noise` set), its noisy cells, the same for every recipient
    group_raw: pl.DataFrame
    own_counts: dict[str, pl.DataFrame]  # each maison's persons per combination
    withheld: dict[str, int]  # each maison's refs whose person is withheld
    glossary: pl.DataFrame
    # each maison's other_sector_spend cells, unsuppressed (`other_sector_cells`)
    other_sector: dict[str, pl.DataFrame] = field(default_factory=dict)
    noise: GaussianNoise | None = None  # DP mode's noise (group/noisy_cells.py)
    group_epsilon: float | None = None  # what the processor's reports spend in DP mode
    # DP mode: where the segment model and value-tier cuts the cells count under come from:
    # "saved" (an earlier batch's) or "batch" (fitted on this one: the bound holds given them)
    definitions: str = "batch"

    @property
    def group_cells(self) -> pl.DataFrame:
        return self.reports["aggregates"]

    def maison_return(self, maison: str, policy: ReleasePolicy) -> MaisonRelease:
        """One maison's `segments` (its own refs only, sorted by ref so the same inputs give
        byte-identical files), `aggregates` and `glossary`."""
        segments = maison_segments(self.engine, self.tables, maison)
        aggregates = maison_aggregates(
            self.own_counts[maison],
            self.group_raw,  # suppressed per recipient: it knows its own counts exactly
            self.sectors,
            k=policy.k,
            k_aggregate=policy.k_aggregate,
            withheld=self.withheld.get(maison, 0),
            other_sector=self.other_sector.get(maison),
            noisy=self.noise is not None,
        )
        return MaisonRelease(maison, segments, aggregates, self.glossary)


def build_release(
    engine: Engine,
    policy: ReleasePolicy,
    *,
    maisons: list[str],
    generalization: Generalization,
    model,
    tables: ReleaseTables,
    sectors: list[str],
    match_figures: Mapping,
    maison_sectors: Mapping[str, str | None] | None = None,
    definitions: str = "batch",
) -> Release:
    """The processor's reports and what each maison's return is built from: counts per
    combination of released values come from the engine, never the persons themselves.

    `model` is the fitted `SegmentModel` (labels, descriptions, quality); `sectors`: the
    taxonomy sectors, in order; `tables.affinity` holds one flag per name they are released
    under (`affinity_flags` given `policy.released_sectors`), and the affinity cells are keyed
    by those names only (DESIGN §4.4). `maison_sectors`: each maison's sector (the public
    registry's), whose released name its other_sector_spend table leaves out. In DP mode
    (`policy.group_figures`) the group cells are counted over each person's own bands
    (`generalization.codes`) and noised once for every recipient (`noisy_cells`).
    """
    gen, k_aggregate = generalization, policy.k_aggregate
    names = released_names(sectors, policy.released_sectors)
    planned = group_noise(policy, names, AFFINITY_SHARE, other_sector=tables.spend is not None)
    noise, group_epsilon = planned or (None, None)
    if noise is None:
        group_raw = scope_cells(_counted(engine, tables, names), "group", names)
        group_cells = suppress(group_raw, k_aggregate)
        matched = match_cells(match_figures, k_aggregate)
    else:
        counted = banded_counts(
            engine, gen.codes, tables.affinity, labels=model.labels_, names=names,
            policy=policy, sectors=sectors,
        )  # fmt: skip
        grid = key_grid(model.labels_, names, policy, sectors)
        group_raw = group_cells = noisy_group_cells(counted, grid, names, noise, k_aggregate)
        matched = noisy_match_cells(group_cells, noise)
    own = _counted(engine, tables, names, per_maison=True)
    withheld = dict(
        engine.to_polars(
            f"SELECT n.maison, count(*) AS withheld FROM {tables.nodes} n "
            f"LEFT JOIN {tables.released} r ON r.person_id = n.person_id "
            "WHERE r.person_id IS NULL GROUP BY n.maison"
        ).iter_rows()
    )
    reports = {
        "aggregates": group_cells,
        "match_figures": matched,
        # DP mode: segment sizes are the noisy segment mix's, not the fit sample's exact ones
        "segment_quality": quality_table(
            model.quality_, model.labels_, k_aggregate, sizes=noise is None
        ),
        "suppression": loss_table(
            gen.loss, gen.persons, gen.persons_generalized, gen.persons_suppressed
        ),
    }
    return Release(
        maisons=list(maisons),
        reports=reports,
        engine=engine,
        tables=tables,
        sectors=names,
        group_raw=group_raw,
        own_counts={m: own.filter(pl.col("maison") == m).drop("maison") for m in maisons},
        withheld=withheld,
        # DP mode: a description's figures (shares of the fit sample) are exact, so not sent
        glossary=glossary(model.labels_, model.descriptions_ if noise is None else {}),
        other_sector=other_sector_by_maison(
            engine, tables, policy, maisons, sectors, gen, maison_sectors or {}, noise
        ),
        noise=noise,
        group_epsilon=group_epsilon,
        definitions=definitions,
    )


def other_sector_by_maison(
    engine: Engine,
    tables: ReleaseTables,
    policy: ReleasePolicy,
    maisons: list[str],
    sectors: list[str],
    gen: Generalization | None,
    maison_sectors: Mapping[str, str | None],
    noise: GaussianNoise | None,
) -> dict[str, pl.DataFrame]:
    """Each maison's other_sector_spend cells: unsuppressed (suppressed with its own cells),
    or, in DP mode, noisy and final (`noisy_cells.noisy_other_sector`). `sectors`: the
    taxonomy's, whose released names key the spend shares (`spend_shares`)."""
    if tables.spend is None:
        return {}
    names = released_names(sectors, policy.released_sectors)
    if noise is None:
        people, multi = tables.released, list(MULTI_MAISON_BREADTH)
    else:
        people, multi = gen.codes, multi_maison_codes(policy)
    spend = other_sector_spend(engine, tables, maisons, names, persons=people, multi=multi)
    released = policy.released_sectors
    out = {}
    for maison, frame in spend.items():
        own = maison_sectors.get(maison)
        cells = other_sector_cells(frame, released.get(own) if own else None)
        out[maison] = cells if noise is None else noisy_other_sector(
            cells, noise, policy.k_aggregate
        )  # fmt: skip
    return out


def other_sector_spend(
    engine: Engine,
    tables: ReleaseTables,
    maisons: list[str],
    names: list[str],
    *,
    persons: str,
    multi: list[str],
) -> dict[str, pl.DataFrame]:
    """Each maison's spend per released sector name (`other_sector_cells`' input) over its
    multi-maison customers: those of `persons` whose `breadth` is one of `multi` (the released
    breadth, as the maison's own rows say it; in DP mode each person's own band). Only the
    sums come to the driver."""
    sums = [
        f"CAST(sum(s.spend_{i}) AS BIGINT) AS spend_{i}, "
        f"count(CASE WHEN s.spend_{i} > 0 THEN 1 END) AS persons_{i}"
        for i in range(len(names))
    ]
    totals = engine.to_polars(
        f"SELECT n.maison, count(*) AS base, {', '.join(sums)} "
        f"FROM (SELECT DISTINCT maison, person_id FROM {tables.nodes}) n "
        f"JOIN {persons} r ON r.person_id = n.person_id "
        f"JOIN {tables.spend} s ON s.person_id = n.person_id "
        f"WHERE r.breadth IN ({', '.join('?' * len(multi))}) GROUP BY n.maison",
        list(multi),
    )
    rows = {r["maison"]: r for r in totals.iter_rows(named=True)}
    out = {}
    for maison in maisons:
        row = rows.get(maison, {})
        out[maison] = pl.DataFrame(
            {
                "sector": names,
                "persons": [int(row.get(f"persons_{i}") or 0) for i in range(len(names))],
                "share_sum": [
                    int(row.get(f"spend_{i}") or 0) / SHARE_UNITS for i in range(len(names))
                ],
                "base": [int(row.get("base") or 0)] * len(names),
            },
            schema={"sector": pl.String, "persons": pl.Int64, "share_sum": pl.Float64,
                    "base": pl.Int64},
        )  # fmt: skip
    return out


def _counted(engine: Engine, tables: ReleaseTables, names: list[str], *, per_maison=False):
    """Persons per combination of the cell attributes and affinity flags (`counted_persons`),
    for the whole batch or per maison (a person counted once in each maison they are in);
    `names`: the released sector names, in the order of the flags (`affinity_flags`)."""
    flags = [f"affinity_{i}" for i in range(len(names))]
    keys = [*(f"r.{c}" for c in CELL_ATTRIBUTES), *(f"a.{f}" for f in flags)]
    persons = f"{tables.released} r"
    if per_maison:
        keys.insert(0, "n.maison")
        persons = (
            f"(SELECT DISTINCT maison, person_id FROM {tables.nodes}) n "
            f"JOIN {tables.released} r ON r.person_id = n.person_id"
        )
    counted = engine.to_polars(
        f"SELECT {', '.join(keys)}, count(*) AS weight FROM {persons} "
        f"JOIN {tables.affinity} a ON a.person_id = r.person_id GROUP BY {', '.join(keys)}"
    )
    return counted.rename(dict(zip(flags, names, strict=True))).with_columns(
        pl.col("weight").cast(pl.Int64)
    )


def maison_segments(engine: Engine, tables: ReleaseTables, maison: str) -> pl.DataFrame:
    """The `segments` table for one maison: its own nodes joined to their person's release,
    sorted by maison_ref (here, not in the engine: byte order, whatever the engine)."""
    columns = engine.to_polars(f"SELECT * FROM {tables.released} LIMIT 0").columns
    values = [c for c in columns if c != "person_id"]
    return engine.to_polars(
        f"SELECT n.maison_ref, {', '.join(f'r.{c}' for c in values)} FROM {tables.nodes} n "
        f"JOIN {tables.released} r ON r.person_id = n.person_id WHERE n.maison = ?",
        [maison],
    ).sort("maison_ref")


def person_tables(
    engine: Engine, features: str, *, sector_columns: Mapping[str, str], policy: ReleasePolicy
) -> tuple[str, str]:
    """Each person's affinity flags and spend shares by released sector name, computed where
    the rows are: the engine tables the release's cells count over."""
    released = policy.released_sectors
    flags = partial(affinity_flags, sector_columns=sector_columns, released_sectors=released)
    shares = partial(spend_shares, sector_columns=sector_columns, released_sectors=released)
    return (
        engine.map_frames("affinity", features, flags),
        engine.map_frames("spend_shares", features, shares),
    )


def affinity_flags(
    features: pl.DataFrame, sector_columns: Mapping[str, str], released_sectors: Mapping[str, str]
) -> pl.DataFrame:
    """person_id plus `affinity_<i>` (column names any engine takes) per released sector name,
    in `released_names` order, for the affinity tables: whether the person has an affinity for
    any sector released under that name. A pooled sector is never a flag of its own, so no
    affinity cell can name it (DESIGN §4.4)."""
    columns = [
        pl.any_horizontal(pl.col(c).fill_null(0.0) >= AFFINITY_SHARE for c in members).alias(
            f"affinity_{i}"
        )
        for i, members in enumerate(released_columns(sector_columns, released_sectors).values())
    ]
    return features.select("person_id", *columns)


def released_names(sectors: list[str], released: Mapping[str, str]) -> list[str]:
    """The names sectors are released under, each once, in taxonomy order."""
    return list(dict.fromkeys(released.get(s, s) for s in sectors))


def released_columns(
    sector_columns: Mapping[str, str], released_sectors: Mapping[str, str]
) -> dict[str, list[str]]:
    """Each released sector name (`released_names` order) -> the feature columns of the
    sectors released under it."""
    names = released_names(list(sector_columns), released_sectors)
    return {
        name: [c for s, c in sector_columns.items() if released_sectors.get(s, s) == name]
        for name in names
    }


def spend_shares(
    features: pl.DataFrame, sector_columns: Mapping[str, str], released_sectors: Mapping[str, str]
) -> pl.DataFrame:
    """person_id plus `spend_<i>`: the person's share of positive spend under each released
    sector name (`released_names` order; pooled sectors added up), in whole billionths."""
    columns = []
    for i, members in enumerate(released_columns(sector_columns, released_sectors).values()):
        share = pl.sum_horizontal(pl.col(c).fill_null(0.0) for c in members)
        columns.append((share * SHARE_UNITS).round().cast(pl.Int64).alias(f"spend_{i}"))
    return features.select("person_id", *columns)


def _without_figures(label: str) -> str:
    return f"{label[:1].upper()}{label[1:]}: its size and sectors are in the group-wide figures."


def glossary(labels: Mapping[int, str], descriptions: Mapping[int, str]) -> pl.DataFrame:
    """Segment ids, labels and descriptions; a segment without a description (DP mode) is
    described by its label's words alone."""
    segments = sorted(labels)
    return pl.DataFrame(
        {
            "segment": pl.Series(segments, dtype=pl.Int32),
            "segment_label": [labels[s] for s in segments],
            "description": [descriptions.get(s) or _without_figures(labels[s]) for s in segments],
        }
    )
