"""What changed since the previous import: the maison's own month-to-month view (issue 15).

The processor keeps no ref or token between batches, so the per-customer comparison is the
maison's, made at import from the analyst file of its previous import (`--previous`): per
`customer_id`, the previous and the new segment. Only counts leave this module, as cells
(`contracts.ANALYST_CHANGES`) under the group's aggregate rule (DESIGN §5.7, as
`group/cells.py` applies it to the return's partitions): a cell below k_aggregate customers is
suppressed, and since the size of each previous and each new segment is known (the previous
file, the glossary), every row (previous segment) and column (new segment) holding a
suppressed cell gets more, smallest first, until its withheld cells are at least two and
together cover k_aggregate customers, so no withheld count is recovered by subtraction.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl

from crossgroup import audit
from crossgroup.contracts import ANALYST_CHANGES, CHANGE_KINDS
from crossgroup.errors import InputError
from crossgroup.group.cells import withhold_one
from crossgroup.io import scan_table, table_columns

LABEL = "previous segments"
# Parquet key-value metadata import writes into segments.parquet and changes.parquet, so a
# later import can tell which maison and batch a file it is given as --previous came from.
META_MAISON = "crossgroup.maison"
META_BATCH = "crossgroup.batch_id"
META_AS_OF = "crossgroup.as_of"
META_PREVIOUS_BATCH = "crossgroup.previous_batch_id"
META_K_AGGREGATE = "crossgroup.k_aggregate"
REASONS = {
    "small": "fewer than {k} customers",
    "secondary": "suppressed so a smaller cell cannot be recovered by subtraction",
}
COMPARED = ("customer_id", "segment", "segment_label")  # all a previous file needs


@dataclass(frozen=True)
class PreviousSegments:
    """The analyst file of an earlier import: who was in which segment, and from which batch
    (None for a file that does not say: a CSV, or one imported before files said it)."""

    path: Path
    rows: pl.DataFrame  # COMPARED
    maison: str | None
    batch_id: str | None
    as_of: str | None
    sha256: str


@dataclass(frozen=True)
class Changes:
    """The change cells (contracts.ANALYST_CHANGES) and what the report says beside them."""

    table: pl.DataFrame
    k_aggregate: int
    held: int  # customers in the suppressed cells; stated only via `suppressed_customers`
    relabelled: tuple[tuple[int, str, str], ...]  # (segment, previous label, new label)
    previous_batch: str | None

    @property
    def suppressed_cells(self) -> int:
        return int(self.table["suppressed"].sum())

    @property
    def suppressed_customers(self) -> int | None:
        """Customers in the suppressed cells, stated only when at least two were suppressed
        (as the return's `suppression` rows do), so one withheld cell is never revealed."""
        return self.held if self.suppressed_cells >= 2 else None

    def suppressed_by_reason(self) -> dict[str, int]:
        """Suppressed cells per note (why), for the open accounting."""
        notes = self.table.filter("suppressed")["note"]
        return {note: int((notes == note).sum()) for note in sorted(notes.unique().to_list())}


def file_metadata(maison: str, batch_id: str, as_of: str, **extra: str) -> dict[str, str]:
    """The Parquet metadata import writes into the analyst's files."""
    meta = {META_MAISON: maison, META_BATCH: batch_id, META_AS_OF: as_of}
    return meta | {f"crossgroup.{k}": v for k, v in extra.items()}


def read_previous_segments(
    path: Path, *, maison_id: str, customer_ids: pl.Series
) -> PreviousSegments:
    """Read and check the `--previous` file: an imported segments file of this maison.

    Only `customer_id`, `segment` and `segment_label` are read (a file from before a column
    was added to the contract still compares). A file another maison imported is refused by
    its metadata, or, when it carries none, because none of its customer_ids is in the
    maison's CRM extract (`customer_ids`).
    """
    path = Path(path)
    lf = scan_table(path, label=LABEL)
    schema = table_columns(lf, path, label=LABEL)
    missing = [c for c in COMPARED if c not in schema]
    if missing:
        raise InputError(
            f"{LABEL} file {path} is not an imported segments file: no column {', '.join(missing)}"
        )
    try:
        rows = lf.select(
            pl.col("customer_id").cast(pl.String),
            pl.col("segment").cast(pl.Int32, strict=True),
            pl.col("segment_label").cast(pl.String),
        ).collect()
    except Exception as e:  # polars raises several types for unreadable or mistyped files
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise InputError(f"{LABEL} file {path} is not an imported segments file: {first}") from None
    ids = rows["customer_id"]
    if ids.null_count() or ids.len() != ids.n_unique():
        raise InputError(
            f"{LABEL} file {path} is not an imported segments file: customer_id is missing "
            "or repeated"
        )
    meta = _parquet_metadata(path)
    maison = meta.get(META_MAISON)
    if maison is not None and maison != maison_id:
        raise InputError(f"{LABEL} file {path} was imported by {maison!r}, not {maison_id!r}")
    if maison is None and rows.height and not ids.is_in(customer_ids.implode()).any():
        raise InputError(
            f"{LABEL} file {path} shares no customer_id with the customers file: not "
            f"{maison_id!r}'s segments file"
        )
    return PreviousSegments(
        path=path,
        rows=rows,
        maison=maison,
        batch_id=meta.get(META_BATCH),
        as_of=meta.get(META_AS_OF),
        sha256=audit.file_digest(path),
    )


def _parquet_metadata(path: Path) -> dict[str, str]:
    if path.suffix.lower() != ".parquet":
        return {}
    try:
        return dict(pl.read_parquet_metadata(path))
    except Exception:  # already read as a table above; unreadable metadata says nothing
        return {}


def check_previous_batch(previous: PreviousSegments, *, batch_id: str, as_of: str) -> None:
    """Refuse a previous file of the batch being imported, or of a later one (when it says)."""
    if previous.batch_id is not None and previous.batch_id == batch_id:
        raise InputError(
            f"{LABEL} file {previous.path} is the segments file of batch {batch_id}, the batch "
            "being imported: give the file of an earlier batch"
        )
    before, now = _date(previous.as_of), _date(as_of)
    if before is not None and now is not None and before > now:
        raise InputError(
            f"{LABEL} file {previous.path} is of batch {previous.batch_id} (as of {before}), "
            f"later than batch {batch_id} being imported (as of {now})"
        )


def _date(value: str | None) -> date | None:
    try:
        return date.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def compare_segments(
    previous: PreviousSegments, current: pl.DataFrame, *, k_aggregate: int
) -> Changes:
    """The change cells between the previous file and the new relinked segments, suppressed."""
    cells = count_changes(previous.rows, current.select(COMPARED))
    table, held = suppress_changes(cells, k_aggregate)
    return Changes(
        table=table,
        k_aggregate=int(k_aggregate),
        held=held,
        relabelled=relabelled_segments(previous.rows, current),
        previous_batch=previous.batch_id,
    )


def count_changes(previous: pl.DataFrame, current: pl.DataFrame) -> pl.DataFrame:
    """Customers per (kind, from_segment, to_segment), unsuppressed, labels from each file.

    Both frames have `customer_id`, `segment`, `segment_label`. Only cells with a customer are
    listed (no zero cells), sorted by kind, then segments (a not-released segment last).
    """
    before = previous.select("customer_id", pl.col("segment").cast(pl.Int32).alias("from_segment"),
                             pl.lit(True).alias("_before"))  # fmt: skip
    after = current.select("customer_id", pl.col("segment").cast(pl.Int32).alias("to_segment"),
                           pl.lit(True).alias("_after"))  # fmt: skip
    both = before.join(after, on="customer_id", how="full", coalesce=True).with_columns(
        pl.col("_before", "_after").fill_null(False)
    )
    kind = (
        pl.when(pl.col("_before") & pl.col("_after"))
        .then(pl.lit(CHANGE_KINDS[0]))
        .when(pl.col("_after"))
        .then(pl.lit(CHANGE_KINDS[1]))
        .otherwise(pl.lit(CHANGE_KINDS[2]))
    )
    counts = both.group_by(kind.alias("kind"), "from_segment", "to_segment").agg(
        pl.len().cast(pl.Int64).alias("customers")
    )
    counts = counts.join(_labels(previous, "from"), on="from_segment", how="left").join(
        _labels(current, "to"), on="to_segment", how="left"
    )
    order = {k: i for i, k in enumerate(CHANGE_KINDS)}
    return counts.sort(
        pl.col("kind").replace_strict(order, return_dtype=pl.Int8),
        "from_segment",
        "to_segment",
        nulls_last=True,
    ).select("kind", "from_segment", "from_label", "to_segment", "to_label", "customers")


def _labels(frame: pl.DataFrame, side: str) -> pl.DataFrame:
    """Each segment's label as the file gives it (one per segment; the first by name if a
    malformed file gives several)."""
    return (
        frame.drop_nulls("segment")
        .group_by(pl.col("segment").cast(pl.Int32))
        .agg(pl.col("segment_label").drop_nulls().sort().first())
        .rename({"segment": f"{side}_segment", "segment_label": f"{side}_label"})
    )


def suppress_changes(cells: pl.DataFrame, k_aggregate: int) -> tuple[pl.DataFrame, int]:
    """The change table (contracts.ANALYST_CHANGES) and the customers its suppressed cells hold.

    A cell below k_aggregate is suppressed; then, in each line whose total is known (the
    cells leaving one previous segment, the cells arriving in one new segment), cells are
    suppressed smallest first until the line's withheld cells are at least two and cover
    k_aggregate customers together (a line with no other cell left keeps its one).
    """
    k = int(k_aggregate)
    rows = cells.to_dicts()
    for r in rows:
        r["reason"] = "small" if r["customers"] < k else None
    lines: dict[tuple, list[dict]] = {}
    for r in rows:
        if r["kind"] != "new":
            lines.setdefault(("from", _key(r["from_segment"])), []).append(r)
        if r["kind"] != "no_longer_returned":
            lines.setdefault(("to", _key(r["to_segment"])), []).append(r)
    ordered = [lines[key] for key in sorted(lines)]
    while _complete_one(ordered, k):
        pass
    table = pl.DataFrame(
        [
            {
                **{c: r[c] for c in ANALYST_CHANGES.names[:5]},
                "customers": None if r["reason"] else r["customers"],
                "suppressed": r["reason"] is not None,
                "note": REASONS[r["reason"]].format(k=k) if r["reason"] else None,
            }
            for r in rows
        ],
        schema=ANALYST_CHANGES.schema,
    )
    return table, sum(r["customers"] for r in rows if r["reason"])


def _key(segment: int | None) -> tuple[bool, int]:
    return (segment is None, segment or 0)


def _complete_one(lines: Iterable[list[dict]], k: int) -> bool:
    """Suppress one more cell in the first line whose withheld cells are not yet safe."""
    kinds = {kind: i for i, kind in enumerate(CHANGE_KINDS)}

    def order(r: dict) -> tuple:
        return (r["customers"], kinds[r["kind"]], _key(r["from_segment"]), _key(r["to_segment"]))

    return any(withhold_one(members, k, count="customers", order=order) for members in lines)


def relabelled_segments(
    previous: pl.DataFrame, current: pl.DataFrame
) -> tuple[tuple[int, str, str], ...]:
    """Segment ids whose label differs between the two files (e.g. a refit renamed them):
    transitions are counted by id, so the report must say the id no longer means the same."""
    joined = _labels(previous, "from").join(
        _labels(current, "to"), left_on="from_segment", right_on="to_segment"
    )
    differ = joined.filter(
        pl.col("from_label").is_not_null()
        & pl.col("to_label").is_not_null()
        & (pl.col("from_label") != pl.col("to_label"))
    ).sort("from_segment")
    return tuple(differ.select("from_segment", "from_label", "to_label").iter_rows())
