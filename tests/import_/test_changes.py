"""`crossgroup import --previous`: what changed since the previous import, counted exactly,
suppressed under k_aggregate with open accounting, refused cleanly on a wrong file."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date

import polars as pl
import pytest
from import_world import MAISON, N_CUSTOMERS, N_RETURNED, OTHER

from crossgroup.contracts import ANALYST_CHANGES
from crossgroup.maison.changes import (
    META_BATCH,
    count_changes,
    file_metadata,
    relabelled_segments,
    suppress_changes,
)

SECTION = "What changed since last month"
K_AGGREGATE = 50  # what the test world's return states (its aggregate notes)


def _import(run_cli, world, package, out, *extra):
    return run_cli(
        "import", "--maison", MAISON, "--package", package, "--customers", world.customers,
        "--keys", world.keydir / MAISON, "--out", out, *extra,
    )  # fmt: skip


def _frame(rows: list[tuple[str, int | None, str | None]]) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        orient="row",
        schema={"customer_id": pl.String, "segment": pl.Int32, "segment_label": pl.String},
    )


# -- the counts, on a crafted pair of files ---------------------------------------------------

BEFORE = _frame(
    [("a", 1, "Jewelry"), ("b", 1, "Jewelry"), ("c", 1, "Jewelry"), ("d", 2, "Beauty"),
     ("e", 2, "Beauty"), ("f", 3, "Gifts"), ("g", None, None), ("h", 3, "Gifts")]
)  # fmt: skip
AFTER = _frame(
    [("a", 1, "Jewelry"), ("b", 1, "Jewelry"), ("c", 2, "Beauty"), ("d", 2, "Beauty"),
     ("e", 1, "Jewelry"), ("g", 2, "Beauty"), ("x", 2, "Beauty"), ("y", 3, "Gifts"),
     ("z", 3, "Gifts")]
)  # fmt: skip


def test_transitions_new_and_no_longer_returned_are_counted_exactly():
    cells = count_changes(BEFORE, AFTER)
    assert cells.rows() == [
        ("transition", 1, "Jewelry", 1, "Jewelry", 2),  # a, b stayed
        ("transition", 1, "Jewelry", 2, "Beauty", 1),  # c
        ("transition", 2, "Beauty", 1, "Jewelry", 1),  # e
        ("transition", 2, "Beauty", 2, "Beauty", 1),  # d stayed
        ("transition", None, None, 2, "Beauty", 1),  # g: its segment was not released before
        ("new", None, None, 2, "Beauty", 1),  # x
        ("new", None, None, 3, "Gifts", 2),  # y, z
        ("no_longer_returned", 3, "Gifts", None, None, 2),  # f, h
    ]


def test_the_change_table_follows_the_contract():
    table, _ = suppress_changes(count_changes(BEFORE, AFTER), 1)
    assert table.schema == pl.Schema(ANALYST_CHANGES.schema)
    assert not table["suppressed"].any() and table["note"].null_count() == table.height


def test_cells_below_k_aggregate_are_suppressed_with_a_partner_and_counted():
    table, held = suppress_changes(count_changes(BEFORE, AFTER), 2)
    got = {(r["kind"], r["from_segment"], r["to_segment"]): r for r in table.iter_rows(named=True)}
    # the four cells of 1 customer are below k; each lone one in its row or column takes
    # the next smallest with it, so no withheld count is recoverable by subtraction
    for key in [("transition", 1, 2), ("transition", 2, 1), ("transition", 2, 2),
                ("transition", None, 2), ("new", None, 2)]:  # fmt: skip
        assert got[key]["suppressed"] and got[key]["customers"] is None, key
        assert got[key]["note"] == "fewer than 2 customers"
    assert got[("transition", 1, 1)]["suppressed"]  # row 1 held 1 alone: its partner
    assert got[("transition", 1, 1)]["note"] == (
        "suppressed so a smaller cell cannot be recovered by subtraction"
    )
    for key in [("new", None, 3), ("no_longer_returned", 3, None)]:
        assert got[key] == {**got[key], "customers": 2, "suppressed": False, "note": None}
    assert held == 2 + 1 + 1 + 1 + 1 + 1


@pytest.mark.parametrize("k", [2, 3, 5, 50])
def test_every_row_and_column_with_a_withheld_cell_is_safe_together(k):
    """Recomputed on the test's side: released cells >= k; in every previous segment (row)
    and new segment (column), withheld cells are none, or >= 2 covering >= k, or all there is."""
    before = _frame([(f"c{i}", i % 4 + 1, f"S{i % 4 + 1}") for i in range(60)])
    after = _frame([(f"c{i}", (i * 7) % 5 + 1, f"S{(i * 7) % 5 + 1}") for i in range(15, 80)])
    cells = count_changes(before, after)
    table, held = suppress_changes(cells, k)
    exact = cells["customers"].to_list()
    released = table.filter(~pl.col("suppressed"))
    assert (released["customers"] >= k).all()
    assert held == sum(c for c, s in zip(exact, table["suppressed"], strict=True) if s)
    rows = table.with_columns(exact=pl.Series(exact)).to_dicts()
    lines: dict = {}
    for r in rows:
        if r["kind"] != "new":
            lines.setdefault(("from", r["from_segment"]), []).append(r)
        if r["kind"] != "no_longer_returned":
            lines.setdefault(("to", r["to_segment"]), []).append(r)
    for line, members in lines.items():
        withheld = [r["exact"] for r in members if r["suppressed"]]
        safe = len(withheld) >= 2 and sum(withheld) >= k
        assert not withheld or safe or len(withheld) == len(members), line


def test_a_segment_whose_label_changed_is_named():
    after = AFTER.with_columns(
        segment_label=pl.when(pl.col("segment") == 2)
        .then(pl.lit("Fashion"))
        .otherwise("segment_label")
    )
    assert relabelled_segments(BEFORE, after) == ((2, "Beauty", "Fashion"),)
    assert relabelled_segments(BEFORE, AFTER) == ()


# -- through the command ----------------------------------------------------------------------


def _previous_file(world, tmp_path) -> tuple[pl.DataFrame, object]:
    """A previous segments file crafted against the world's return: segment 3's customers
    were in segment 1, 20 of segment 2's are new, and 40 customers still in the CRM were in
    segment 2 and are no longer returned."""
    world.seal_return(name="peek")  # sets world.expected to the segments the return holds
    now = world.expected.select("customer_id", "segment")
    new = now.filter(pl.col("segment") == 2).head(20)["customer_id"]
    kept = now.filter(~pl.col("customer_id").is_in(new.implode())).with_columns(
        segment=pl.when(pl.col("segment") == 3).then(1).otherwise("segment").cast(pl.Int32)
    )
    gone = pl.DataFrame(
        {
            "customer_id": [f"AU-{i:06d}" for i in range(N_RETURNED, N_CUSTOMERS)],
            "segment": pl.Series([2] * (N_CUSTOMERS - N_RETURNED), dtype=pl.Int32),
        }
    )
    previous = pl.concat([kept, gone]).with_columns(segment_label=pl.format("Label {}", "segment"))
    path = tmp_path / "previous" / "segments.parquet"
    path.parent.mkdir()
    previous.write_parquet(path)
    return previous, path


def test_import_with_previous_writes_exact_changes_and_the_report_section(run_cli, world, tmp_path):
    previous, path = _previous_file(world, tmp_path)
    out = tmp_path / "analyst"
    result = _import(run_cli, world, world.seal_return(), out, "--previous", path)
    assert result.exit_code == 0, result.stderr
    changes = pl.read_parquet(out / "changes.parquet")
    assert changes.schema == pl.Schema(ANALYST_CHANGES.schema)

    # recomputed on the test's side, customer by customer
    then = dict(previous.select("customer_id", "segment").iter_rows())
    now = dict(world.expected.select("customer_id", "segment").iter_rows())
    expected = Counter()
    for cid in then.keys() | now.keys():
        if cid in then and cid in now:
            expected[("transition", then[cid], now[cid])] += 1
        elif cid in now:
            expected[("new", None, now[cid])] += 1
        else:
            expected[("no_longer_returned", then[cid], None)] += 1
    got = {
        (r["kind"], r["from_segment"], r["to_segment"]): r for r in changes.iter_rows(named=True)
    }
    assert got.keys() == expected.keys()
    assert sum(expected[key] for key in expected if key[0] == "no_longer_returned") == 40
    for key, row in got.items():
        if row["suppressed"]:
            assert row["customers"] is None and row["note"]
        else:
            assert row["customers"] == expected[key] >= K_AGGREGATE, key
        assert (expected[key] < K_AGGREGATE) <= row["suppressed"], key
        if key[0] != "new":
            assert row["from_label"] == f"Label {key[1]}"
    # 40 and 20 customers: suppressed; segment 2's stayers with them (its row and column)
    for key in [("no_longer_returned", 2, None), ("new", None, 2), ("transition", 2, 2)]:
        assert got[key]["suppressed"], key
    assert got[("transition", 2, 2)]["note"].startswith("suppressed so a smaller cell")
    for key in [("transition", 1, 1), ("transition", 1, 3)]:  # released, exact (above)
        assert not got[key]["suppressed"], key

    page = (out / "report.html").read_text()
    assert SECTION in page and 'id="changes"' in page and ">n/a<" in page
    n_suppressed = int(changes["suppressed"].sum())
    assert f"Suppressed (k_aggregate = 50): {n_suppressed:,} of {changes.height:,} cells" in page
    # labels differ between the crafted file and the return: the page says so by number
    assert "Segment names changed since the previous file" in page
    assert "Change cells suppressed (k_aggregate = 50)" in result.stdout
    assert "changes.parquet" in result.stdout.replace("\n", "")

    entry = json.loads((world.keydir / MAISON / "audit.jsonl").read_text().splitlines()[-1])
    assert entry["command"] == "import"
    assert {"file": "segments.parquet", "role": "previous_segments"}.items() <= next(
        i for i in entry["inputs"] if i["role"] == "previous_segments"
    ).items()
    assert "changes.parquet" in [o["file"] for o in entry["outputs"]]
    assert entry["counts"]["change_cells_suppressed"] == n_suppressed


def test_without_previous_nothing_changes(run_cli, world, tmp_path):
    out = tmp_path / "analyst"
    assert _import(run_cli, world, world.seal_return(), out).exit_code == 0
    assert not (out / "changes.parquet").exists()
    assert SECTION not in (out / "report.html").read_text()


def test_consecutive_imports_compare_batches_in_place(run_cli, world, tmp_path):
    """Month 2 is imported into the folder of month 1, with its segments file as --previous."""
    out = tmp_path / "analyst"
    september = world.seal_return(name="sep", batch_id="2026-09", as_of=date(2026, 9, 30))
    assert _import(run_cli, world, september, out).exit_code == 0
    assert pl.read_parquet_metadata(out / "segments.parquet")[META_BATCH] == "2026-09"
    october = world.seal_return(name="oct")
    result = _import(run_cli, world, october, out, "--previous", out / "segments.parquet")
    assert result.exit_code == 0, result.stderr
    changes = pl.read_parquet(out / "changes.parquet")
    # the same customers in the same segments: the diagonal only, every segment's size
    sizes = world.expected.group_by("segment").len().sort("segment")
    assert changes.select("kind", "from_segment", "to_segment", "customers").rows() == [
        ("transition", s, s, n) for s, n in sizes.iter_rows()
    ]
    assert pl.read_parquet_metadata(out / "changes.parquet")["crossgroup.previous_batch_id"] == (
        "2026-09"
    )
    page = (out / "report.html").read_text()
    assert "previous import (batch 2026-09)" in page
    assert "Segment names changed" not in page
    assert "Every figure covers at least 50 customers (k_aggregate = 50)" in page


def _refused(run_cli, world, tmp_path, previous, *, message: str) -> None:
    package = world.seal_return(name="refused")
    out = tmp_path / f"refused-{previous.stem}"
    result = _import(run_cli, world, package, out, "--previous", previous)
    assert result.exit_code == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines
    assert not out.exists() or not any(out.iterdir())  # nothing written
    # nor the package spent: the same import without the bad file succeeds
    assert _import(run_cli, world, package, out).exit_code == 0


def test_a_file_that_is_not_a_segments_file_is_refused(run_cli, world, tmp_path):
    _refused(
        run_cli, world, tmp_path, world.customers,
        message="is not an imported segments file: no column segment, segment_label",
    )  # fmt: skip
    bad = tmp_path / "mistyped.csv"
    bad.write_text("customer_id,segment,segment_label\nAU-000001,three,Gifts\n")
    _refused(run_cli, world, tmp_path, bad, message="is not an imported segments file")


def test_a_segments_file_of_another_maison_is_refused(run_cli, world, tmp_path):
    other = _frame([("KE-1", 1, "Gifts"), ("KE-2", 2, "Beauty")])
    marked = tmp_path / "kessler.parquet"
    other.write_parquet(marked, metadata=file_metadata(OTHER, "2026-09", "2026-09-30"))
    _refused(run_cli, world, tmp_path, marked, message="was imported by 'kessler', not 'aurelle'")
    unmarked = tmp_path / "unmarked.parquet"
    other.write_parquet(unmarked)  # no metadata: none of its customers is in this CRM
    _refused(run_cli, world, tmp_path, unmarked, message="shares no customer_id with the customers")


def test_the_segments_file_of_the_same_or_a_later_batch_is_refused(run_cli, world, tmp_path):
    first = tmp_path / "first"
    assert _import(run_cli, world, world.seal_return(name="first"), first).exit_code == 0
    _refused(
        run_cli, world, tmp_path, first / "segments.parquet",
        message="is the segments file of batch 2026-10, the batch being imported",
    )  # fmt: skip
    later = tmp_path / "later.parquet"
    pl.read_parquet(first / "segments.parquet").write_parquet(
        later, metadata=file_metadata(MAISON, "2026-11", "2026-11-30")
    )
    _refused(run_cli, world, tmp_path, later, message="later than batch 2026-10")


def test_a_return_that_states_no_k_aggregate_cannot_be_compared(tmp_path):
    from crossgroup.errors import InputError
    from crossgroup.maison.changes import PreviousSegments
    from crossgroup.maison.import_ import _changes

    before = PreviousSegments(tmp_path / "s.parquet", BEFORE, None, None, None, "")
    with pytest.raises(InputError, match="states no k_aggregate"):
        _changes(before, AFTER, None, tmp_path / "r.cgpkg")
