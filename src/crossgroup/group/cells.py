"""Aggregate cells and their suppression (DESIGN §4.4, §5.7).

Every aggregate table, returned or kept as a processor report, is a list of cells in one
shape (`contracts.CELLS`): each covers at least k_aggregate distinct persons or is
suppressed, and `suppression` rows say per table how many cells and persons were withheld.
Cells are computed from the *released* (generalized) attributes, so they can never tell a
maison more about its customers than the k-anonymous rows already do.
"""

from __future__ import annotations

import polars as pl

from crossgroup.contracts import AFFINITY_TABLES, CELLS, OTHER_SECTOR_TABLE

NOT_RELEASED = "Not released"
# Tables whose cells partition their scope: one suppressed cell could be recovered by
# subtraction from the total, so a second (the next smallest) is suppressed with it.
PARTITION_TABLES = {
    "segment_mix": "segment_label",
    "value_tiers": "value_tier",
    "channel_mix": "channel_preference",
    "breadth": "breadth",
}
# Yes/no splits of a population the recipient knows (persons of base have the attribute): the
# implied "no" cell (base - persons) is as disclosive as the cell itself, and base == persons
# says everyone has the attribute. match_breadth splits the published match_totals persons the
# same way (there, everyone at one breadth says nothing about a person). OTHER_SECTOR_TABLE
# (`other_sector_cells`) counts, of a maison's multi-maison customers, those spending in a
# sector: a split of what its own rows show. AFFINITY_TABLES count persons with an affinity
# for a released sector name (`release.affinity_flags`).
EVERYONE_DISCLOSES = (*AFFINITY_TABLES, OTHER_SECTOR_TABLE)
COMPLEMENT_TABLES = (*EVERYONE_DISCLOSES, "match_breadth")
# Partitions whose total is published: one withheld cell is recoverable by subtraction.
# pairwise_overlap: the overlaps sum to sum_n C(n, 2) * (persons at n maisons), known from
# match_breadth; segment_sizes: the segment_quality report (sizes sum to the fit sample).
SUBTRACTABLE_TABLES = (*PARTITION_TABLES, "match_breadth", "pairwise_overlap", "segment_sizes")
REASONS = {
    "small": "fewer than {k} persons",
    "complement": "fewer than {k} persons without this attribute (recoverable from the total)",
    "difference": "fewer than {k} persons outside your maison (recoverable from your own counts)",
    "secondary": "suppressed so a smaller cell cannot be recovered by subtraction",
    "size": "the segment's size is withheld",
}
CELL_SCHEMA = CELLS.schema


# The released attributes the cells are counted over (besides one affinity flag per released
# sector name).
CELL_ATTRIBUTES = ("segment_label", *(c for c in PARTITION_TABLES.values() if c != "segment_label"))


def _cells(persons: pl.DataFrame, table: str, scope: str, row_key: str, total: int) -> pl.DataFrame:
    """One cell per value of `row_key`; `persons` holds counted combinations (`scope_cells`)."""
    out = persons.group_by(row_key).agg(pl.col("weight").sum().cast(pl.Int64).alias("persons"))
    return out.select(
        pl.lit(table).alias("table"),
        pl.lit(scope).alias("scope"),
        pl.col(row_key).cast(pl.String).fill_null(NOT_RELEASED).alias("row_key"),
        pl.lit("").alias("col_key"),
        "persons",
        (pl.col("persons") / max(total, 1)).alias("share"),
        pl.lit(total, dtype=pl.Int64).alias("base"),
    )


def counted_persons(persons: pl.DataFrame, sectors: list[str]) -> pl.DataFrame:
    """Persons (person_id, released attributes, one affinity flag per name in `sectors`: the
    released sector names; a person may be on several rows) as counted combinations: the
    cell attributes, the flags and `weight`, the number of distinct persons sharing them."""
    return (
        persons.unique("person_id")
        .group_by(*CELL_ATTRIBUTES, *sectors)
        .agg(pl.len().cast(pl.Int64).alias("weight"))
    )


def scope_cells(persons: pl.DataFrame, scope: str, sectors: list[str]) -> pl.DataFrame:
    """Unsuppressed cells of every aggregate table for one scope.

    `persons`: counted combinations (`counted_persons`, or the same counts from an engine),
    or persons as `counted_persons` takes them; `sectors`: the released sector names the
    flags are under, which key the affinity cells. `base` is the population a cell is a share
    of (the scope, or the segment for segment_sector_affinity); `suppress` drops it.
    """
    if "weight" not in persons.columns:
        persons = counted_persons(persons, sectors)
    total = int(persons.get_column("weight").sum())
    parts = [_cells(persons, t, scope, col, total) for t, col in PARTITION_TABLES.items()]
    # Affinity counts summed per segment, then made long: a long frame of every person x
    # sector would be (persons x sectors) rows. A (segment, sector) without a person is no cell.
    weight = pl.col("weight")
    per_segment = (
        persons.group_by("segment_label")
        .agg(
            weight.sum().alias("size"),
            *((pl.col(s).cast(pl.Int64) * weight).sum() for s in sectors),
        )
        .unpivot(
            index=["segment_label", "size"], on=sectors, variable_name="sector", value_name="n"
        )
        .filter(pl.col("n") > 0)
        .with_columns(persons=pl.col("n").cast(pl.Int64))
    )
    parts.append(
        per_segment.group_by("sector")
        .agg(pl.col("persons").sum())
        .select(
            pl.lit("sector_affinity").alias("table"),
            pl.lit(scope).alias("scope"),
            pl.col("sector").alias("row_key"),
            pl.lit("").alias("col_key"),
            "persons",
            (pl.col("persons") / max(total, 1)).alias("share"),
            pl.lit(total, dtype=pl.Int64).alias("base"),
        )
    )
    parts.append(
        per_segment.select(
            pl.lit("segment_sector_affinity").alias("table"),
            pl.lit(scope).alias("scope"),
            pl.col("segment_label").fill_null(NOT_RELEASED).alias("row_key"),
            pl.col("sector").alias("col_key"),
            "persons",
            (pl.col("persons") / pl.col("size")).alias("share"),
            pl.col("size").cast(pl.Int64).alias("base"),
        )
    )
    return pl.concat(parts).sort("table", "row_key", "col_key")


def other_sector_cells(spend: pl.DataFrame, own_sector: str | None) -> pl.DataFrame:
    """One maison's `other_sector_spend` cells (unsuppressed): for each released sector name
    but its own, the mean share of spend its multi-maison customers put there.

    `spend` holds one row per released sector name: `sector`, `persons` (multi-maison
    customers with positive spend there), `share_sum` (their shares of spend added up) and
    `base` (all its multi-maison customers). Each customer's split counts once, whatever they
    spend, so no big spender can make a cell their own. The maison's own released sector is
    left out: with it the shares would add up to one, and a withheld cell would be the
    remainder; without it, the maison cannot compute that remainder (it does not know what
    its customers spend at the other maisons of its own sector). A sector without such a
    customer is a cell of 0 persons, withheld as any small cell. No cells without
    `own_sector` (a maison the registry gives no sector).
    """
    if own_sector is None:
        return pl.DataFrame(schema={**CELL_SCHEMA, "base": pl.Int64}).drop(
            "suppressed", "note", "margin"
        )
    base = pl.col("base").cast(pl.Int64)
    return spend.filter(pl.col("sector") != own_sector).select(
        pl.lit(OTHER_SECTOR_TABLE).alias("table"),
        pl.lit("maison").alias("scope"),
        pl.col("sector").alias("row_key"),
        pl.lit("").alias("col_key"),
        pl.col("persons").cast(pl.Int64),
        pl.when(base > 0).then(pl.col("share_sum") / base).otherwise(0.0).alias("share"),
        base.alias("base"),
    )


def suppress(
    cells: pl.DataFrame, k_aggregate: int, *, own: pl.DataFrame | None = None
) -> pl.DataFrame:
    """Suppress what could reveal fewer than k_aggregate persons, then append `suppression`
    rows saying per table how many cells and persons were withheld.

    A cell is withheld when it covers fewer than k_aggregate persons; when it is a yes/no
    split (COMPLEMENT_TABLES) whose "no" side (base - persons) is below k_aggregate, or, for
    affinity, empty (everyone has it); and, when `own` (the recipient's exact cells, from
    `scope_cells`) is given, when fewer than k_aggregate of its persons are outside the
    recipient (0 included: "nobody else"). In a partition with a published total, further
    cells (smallest first) are withheld until at least two are and the withheld cells together
    cover k_aggregate persons (and k_aggregate outside the recipient), so no withheld count is
    recoverable by subtraction. An affinity row is withheld when its segment's size is.

    The persons count of a table is given only when at least two cells were withheld for size
    alone and together they cover k_aggregate persons, so the summary never reveals a single
    withheld cell (nor one next to an empty cell), a small sum or a small complement.
    """
    k = int(k_aggregate)
    rows = _with_own(_with_base(cells), own).to_dicts()
    for r in rows:
        r["reason"] = _primary_reason(r, k, own is not None)
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        groups.setdefault((r["table"], r["scope"]), []).append(r)
    for (table, _scope), members in groups.items():
        if table in SUBTRACTABLE_TABLES:
            _complete_partition(members, k, own is not None)
    for (table, scope), members in groups.items():
        if table != "segment_sector_affinity":
            continue
        mix = {r["row_key"]: r for r in groups.get(("segment_mix", scope), [])}
        for r in members:
            if r["reason"] is None and mix.get(r["row_key"], {}).get("reason") is not None:
                r["reason"] = "size"
    frame = pl.DataFrame(
        [
            {
                "table": r["table"],
                "scope": r["scope"],
                "row_key": r["row_key"],
                "col_key": r["col_key"],
                "persons": None if r["reason"] else r["persons"],
                "share": None if r["reason"] else r["share"],
                "suppressed": r["reason"] is not None,
                "note": REASONS[r["reason"]].format(k=k) if r["reason"] else "",
                "margin": None,
                "held": r["persons"] if r["reason"] else 0,
                "reason": r["reason"] or "",
            }
            for r in rows
        ],
        schema={**CELL_SCHEMA, "held": pl.Int64, "reason": pl.String},
    )
    summary = (
        frame.filter("suppressed")
        .group_by("table", "scope")
        .agg(
            pl.len().alias("cells"),
            pl.col("held").sum().alias("held"),
            pl.col("reason").is_in(["small", "secondary"]).all().alias("plain"),
        )
        .sort("table", "scope")
        .select(
            pl.lit("suppression").alias("table"),
            "scope",
            pl.col("table").alias("row_key"),
            pl.lit("").alias("col_key"),
            pl.when((pl.col("cells") >= 2) & pl.col("plain") & (pl.col("held") >= k))
            .then(pl.col("held"))
            .otherwise(None)
            .alias("persons"),
            pl.lit(None, dtype=pl.Float64).alias("share"),
            pl.lit(False).alias("suppressed"),
            pl.format(
                "{} cell(s) suppressed: fewer than {} persons, or recoverable by subtraction "
                "(from the total, the complement or the recipient's own counts)",
                pl.col("cells"),
                pl.lit(k),
            ).alias("note"),
            pl.lit(None, dtype=pl.Float64).alias("margin"),
        )
    )
    published = frame.select(list(CELL_SCHEMA))
    return pl.concat([published.cast(CELL_SCHEMA), summary.cast(CELL_SCHEMA)])


def _with_base(cells: pl.DataFrame) -> pl.DataFrame:
    """Cells with `base` (what the share is of); derived from the share when not given."""
    if "base" in cells.columns:
        return cells
    share = pl.col("share")
    derived = pl.when(share > 0).then((pl.col("persons") / share).round(0)).otherwise(None)
    return cells.with_columns(base=derived.cast(pl.Int64))


def _with_own(cells: pl.DataFrame, own: pl.DataFrame | None) -> pl.DataFrame:
    """Add the recipient's exact count (own_persons) and, for affinity, its own base."""
    if own is None:
        return cells.with_columns(
            own_persons=pl.lit(None, dtype=pl.Int64), own_base=pl.lit(None, dtype=pl.Int64)
        )
    own = _with_base(own)
    key = ["table", "row_key", "col_key"]
    counts = own.select(*key, pl.col("persons").cast(pl.Int64).alias("own_persons"))
    total = own.filter(pl.col("table").is_in(list(PARTITION_TABLES))).get_column("base").max()
    sizes = own.filter(pl.col("table") == "segment_mix").select(
        "row_key", pl.col("persons").cast(pl.Int64).alias("own_segment")
    )
    out = (
        cells.join(counts, on=key, how="left", nulls_equal=True)
        .join(sizes, on="row_key", how="left", nulls_equal=True)
        .with_columns(pl.col("own_persons").fill_null(0))
    )
    own_base = (
        pl.when(pl.col("table") == "sector_affinity")
        .then(pl.lit(int(total or 0), dtype=pl.Int64))
        .when(pl.col("table") == "segment_sector_affinity")
        .then(pl.col("own_segment").fill_null(0))
        .otherwise(None)
    )
    return out.with_columns(own_base=own_base).drop("own_segment")


def _primary_reason(r: dict, k: int, with_own: bool) -> str | None:
    persons, base = r["persons"], r["base"]
    if persons is None or persons < k:
        return "small"
    if r["table"] in COMPLEMENT_TABLES and base is not None:
        rest = base - persons
        if 0 < rest < k or (rest <= 0 and r["table"] in EVERYONE_DISCLOSES):
            return "complement"
    if with_own:
        if persons - r["own_persons"] < k:
            return "difference"
        if r["table"] in AFFINITY_TABLES and base is not None and r["own_base"] is not None:
            others_without = (base - persons) - (r["own_base"] - r["own_persons"])
            if others_without < k:
                return "difference"
    return None


def _complete_partition(members: list[dict], k: int, with_own: bool) -> None:
    """Withhold further cells (smallest first) until the withheld ones are safe together; with
    the recipient's own counts, the persons outside its maison must cover k too."""

    def others_cover_k(held: list[dict]) -> bool:
        return not with_own or sum((r["persons"] or 0) - (r["own_persons"] or 0) for r in held) >= k

    def order(r: dict) -> tuple:
        return (r["persons"], r["row_key"] or "", r["col_key"] or "")

    while withhold_one(members, k, count="persons", order=order, also_safe=others_cover_k):
        pass


def withhold_one(
    members: list[dict], k: int, *, count: str, order, also_safe=lambda held: True
) -> bool:
    """Withhold one more cell of a line whose total is known (the first by `order`), unless
    the line's withheld cells are already safe: none, or at least two covering `k` together
    (and `also_safe`), or no cell left to withhold. Cells are dicts whose `reason` is set
    when withheld; returns whether one was. The return's partitions and the maison's change
    table (`maison/changes.py`) both complete their lines with it."""
    held = [r for r in members if r["reason"]]
    if not held or (len(held) >= 2 and sum(r[count] or 0 for r in held) >= k and also_safe(held)):
        return False
    open_ = [r for r in members if not r["reason"]]
    if not open_:
        return False
    min(open_, key=order)["reason"] = "secondary"
    return True


def withheld_row(scope: str, withheld: int, k: int) -> pl.DataFrame:
    """The suppression row saying how many persons were left out of `segments` entirely."""
    return pl.DataFrame(
        {
            "table": ["suppression"],
            "scope": [scope],
            "row_key": ["segments"],
            "col_key": ["withheld rows"],
            "persons": [withheld],
            "share": [None],
            "suppressed": [False],
            "note": [f"profile shared by fewer than {k} persons even when fully generalized"],
            "margin": [None],
        },
        schema=CELL_SCHEMA,
    )


def maison_aggregates(
    own: pl.DataFrame,
    group_cells: pl.DataFrame,
    sectors: list[str],
    *,
    k: int,
    k_aggregate: int,
    withheld: int,
    other_sector: pl.DataFrame | None = None,
    noisy: bool = False,
) -> pl.DataFrame:
    """A maison's `aggregates`: its own returned persons next to the whole batch's cells.

    `group_cells` are the batch's unsuppressed cells (`scope_cells(..., "group", ...)`); they
    are suppressed here for this recipient, which knows its own counts exactly: a group cell
    is withheld when fewer than k_aggregate of its persons are outside this maison, even when
    the maison's own cell is itself suppressed. `noisy`: they are DP mode's noisy cells
    (`noisy_cells.noisy_group_cells`), the same for every recipient and final as they are.
    `other_sector`: the maison's `other_sector_cells`, suppressed with its own cells (in DP
    mode, noisy and final: `noisy_cells.noisy_other_sector`).
    """
    own_cells = scope_cells(own, "maison", sectors)
    spend = [] if other_sector is None else [other_sector]
    if noisy:  # DP mode: the group cells and other_sector_spend come noisy and final
        cells, group = pl.concat([suppress(own_cells, k_aggregate), *spend]), group_cells
    else:
        cells = suppress(pl.concat([own_cells, *spend]), k_aggregate)
        group = suppress(group_cells, k_aggregate, own=own_cells)
    return pl.concat([cells, group, withheld_row("maison", withheld, k)]).sort(
        "table", "scope", "row_key", "col_key"
    )
