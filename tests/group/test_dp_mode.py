"""DP mode for the group-wide figures (issue 16, DESIGN §5.10), end to end on sealed packages.

`[privacy] group_figures = "dp"`: every group-wide cell of every return and of the group
report is noisy (OpenDP), carries its 95 % margin, and is published only at k_aggregate plus
that margin; figures about a maison's own customers stay exact; each release's epsilon is
recorded per recipient in the privacy-budget ledger, the audit entry and the register; and
a release that would take a recipient past the rolling yearly budget is refused (exit 3)
with nothing written or consumed.
"""

from __future__ import annotations

import json
import math
import shutil
import sys
from datetime import date
from pathlib import Path

import polars as pl
import pytest

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1]))  # leak_scan

from process_batch import MAISONS, build_batch, digest, seal_exports, secret_needles
from test_missing_maisons import open_return, processor_state
from test_process_cli import copy_batch, files, process

from crossgroup import audit
from crossgroup.privacy.budget import GROUP, LEDGER
from leak_scan import scan

DP = 'group_figures = "dp"\nepsilon_per_release = 0.5\ndelta = 1e-9\n'


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    return build_batch(tmp_path_factory.mktemp("dp"), n_persons=3000)


def in_dp_mode(batch, budget: float = 6.0):
    text = batch.pipeline.read_text(encoding="utf-8")
    extra = f"{DP}epsilon_budget_per_year = {budget}\n"
    batch.pipeline.write_text(text.replace("[privacy]\n", f"[privacy]\n{extra}", 1), "utf-8")
    return batch


@pytest.fixture
def batch(template, tmp_path):
    return in_dp_mode(copy_batch(template, tmp_path))


def returns(batch, out: Path, tmp: Path) -> dict[str, tuple]:
    return {m: open_return(batch, out, m, tmp) for m in MAISONS}


# spend at other maisons: about the maison's own customers, but from other maisons' data
NOISY_OWN = pl.col("row_key").is_in(["other_sector_spend"]) | (
    pl.col("table") == "other_sector_spend"
)
EXACT_OWN = (pl.col("scope") == "maison") & ~NOISY_OWN


def group_rows(aggregates: pl.DataFrame) -> pl.DataFrame:
    return aggregates.filter(pl.col("scope") == "group").sort("table", "row_key", "col_key")


def ledger(batch) -> list[dict]:
    path = batch.keys / "processor" / LEDGER
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_every_group_wide_cell_is_noisy_the_same_for_all_and_own_cells_stay_exact(
    run_cli, batch, template, tmp_path
):
    result = process(run_cli, batch, tmp_path / "out")
    assert result.exit_code == 0, result.stderr
    opened = returns(batch, tmp_path / "out", tmp_path)
    group = {m: group_rows(t["aggregates"]) for m, (_, t) in opened.items()}
    first = group[MAISONS[0]]
    # one draw for the whole release: every recipient gets the very same noisy cells, so
    # comparing returns averages nothing away
    assert all(g.equals(first) for g in group.values())
    cells = first.filter(pl.col("table") != "suppression")
    margin = cells.get_column("margin").unique()
    assert margin.len() == 1 and margin.item() > 0
    published = cells.filter(~pl.col("suppressed"))
    assert published.height and (published["persons"] >= 20 + margin.item() - 0.5).all()
    assert cells.filter("suppressed").get_column("persons").is_null().all()
    # a fixed grid of public keys: every segment x released sector, nobody or not
    (manifest, tables) = opened[MAISONS[0]]
    segments = tables["glossary"].get_column("segment_label").unique().len()
    sectors = cells.filter(pl.col("table") == "sector_affinity").height
    assert cells.filter(pl.col("table") == "segment_sector_affinity").height == segments * sectors
    # the maison's own cells: exact, as in threshold mode; its customers' spend at the other
    # maisons (other_sector_spend) is noisy, with the same margin
    exact = copy_batch(template, tmp_path / "exact")
    assert process(run_cli, exact, tmp_path / "out-exact").exit_code == 0
    for maison, (_, t) in opened.items():
        mine = t["aggregates"].filter(EXACT_OWN)
        assert mine.height and mine.get_column("margin").is_null().all()
        _, t_exact = open_return(exact, tmp_path / "out-exact", maison, tmp_path / "x")
        assert mine.equals(t_exact["aggregates"].filter(EXACT_OWN))
        spend = t["aggregates"].filter(pl.col("table") == "other_sector_spend")
        assert spend.height and (spend["margin"] == margin.item()).all()
    # the signed summary says how the group figures were made
    summary = manifest.summary
    assert summary["group_figures"] == "dp" and 0 < summary["epsilon"] <= 0.5
    assert summary["delta"] == 1e-9 and summary["margin_95"] == pytest.approx(margin.item())
    assert summary["dp_definitions"] == "batch"  # the first batch fits its own model and cuts


def test_two_runs_of_one_batch_draw_fresh_noise(run_cli, template, tmp_path):
    """The noise is drawn at each release (OpenDP's secure generator): the same batch twice
    gives different group-wide counts, and the very same own counts."""
    group = []
    for name in ("a", "b"):
        batch = in_dp_mode(copy_batch(template, tmp_path / name))
        assert process(run_cli, batch, tmp_path / name / "out").exit_code == 0
        (_, tables) = open_return(batch, tmp_path / name / "out", MAISONS[0], tmp_path / name)
        group.append(tables["aggregates"])
    noisy = [g.filter(pl.col("scope") == "group")["persons"].fill_null(-1) for g in group]
    assert (noisy[0] != noisy[1]).sum() > noisy[0].len() // 2
    own = [g.filter(EXACT_OWN) for g in group]
    assert own[0].equals(own[1])


def test_the_spend_is_recorded_per_recipient_in_ledger_audit_report_and_register(
    run_cli, batch, tmp_path
):
    result = process(run_cli, batch, tmp_path / "out")
    assert result.exit_code == 0, result.stderr
    assert "group figures: differential privacy" in result.stdout
    assert "privacy budget used within a year" in result.stdout and "of 6" in result.stdout
    lines = ledger(batch)
    assert sorted(r["recipient"] for r in lines) == sorted([*MAISONS, GROUP])
    assert {r["as_of"] for r in lines} == {"2026-06-30"} and {r["delta"] for r in lines} == {1e-9}
    # a maison's view (group cells and its other_sector_spend) spends the release's epsilon;
    # the processor's reports hold the group cells only, and spend less
    spent = {r["recipient"]: r["epsilon"] for r in lines}
    assert all(spent[m] == pytest.approx(0.5, rel=1e-3) and spent[m] <= 0.5 for m in MAISONS)
    assert 0 < spent[GROUP] < spent[MAISONS[0]]
    # processor state (DESIGN §5.9): private, and nothing in it or the outputs about anyone
    assert (batch.keys / "processor" / LEDGER).stat().st_mode & 0o777 == 0o600
    found = scan([tmp_path / "out", batch.keys / "processor"], secret_needles(batch.tables))
    assert found.hits == [] and str(batch.keys / "processor" / LEDGER) in found.files
    entry = audit.read_entries(tmp_path / "out" / "audit.jsonl")[-1]
    recorded = entry["settings"]["privacy_budget"]
    assert entry["settings"]["group_figures"] == "dp"
    assert recorded["spent"] == spent
    assert recorded["epsilon_budget_per_year"] == 6.0 and "OpenDP" in recorded["mechanism"]
    # the first batch fits its model and cuts: the bound holds given them, and every output
    # says so
    assert (
        recorded["definitions"] == "batch" and "fitted on this batch" in recorded["definitions_are"]
    )
    page = (tmp_path / "out" / "reports" / "group_report.html").read_text("utf-8")
    assert "95 % interval" in page and "Privacy budget" in page and "epsilon 0.5" in page
    assert "fitted on the batch itself" in page
    register = run_cli("register", "--pipeline", batch.pipeline, "--keys", batch.keys / "processor")
    assert register.exit_code == 0, register.stderr
    assert "Gaussian mechanism (OpenDP)" in register.stdout
    (tmp_path / "no-release").mkdir()
    none = run_cli("register", "--pipeline", batch.pipeline, "--keys", tmp_path / "no-release")
    assert none.exit_code == 0 and "No DP release is recorded" in none.stdout
    missing = run_cli("register", "--pipeline", batch.pipeline, "--keys", tmp_path / "absent")
    assert missing.exit_code == 2 and "does not exist" in missing.stderr
    assert (
        f"| {MAISONS[0]} | 1 | 0.5 |" in register.stdout
        and f"| {GROUP} | 1 | 0." in register.stdout
    )


def test_a_release_over_the_yearly_budget_is_refused_and_leaves_everything_as_it_was(
    run_cli, template, tmp_path
):
    batch = in_dp_mode(copy_batch(template, tmp_path), budget=0.5)
    assert process(run_cli, batch, tmp_path / "june").exit_code == 0
    # the next month's exports, within a year of June's: one more release would spend 1.0
    seal_exports(batch.keys, batch.inbox, template.tables, as_of=date(2026, 7, 31),
                 batch_id="2026-07")  # fmt: skip
    inbox_before = {p.name: digest(p) for p in batch.inbox.iterdir()}
    state_before = processor_state(batch)
    audit_before = digest(tmp_path / "june" / "audit.jsonl")
    refused = process(run_cli, batch, tmp_path / "june")
    assert refused.exit_code == 3, refused.stderr
    line = refused.stderr.strip().splitlines()[-1]
    assert line.startswith("crossgroup: ") and "privacy budget" in line and "0.5" in line
    assert "epsilon_budget_per_year" in line and "Traceback" not in refused.stderr
    assert {p.name: digest(p) for p in batch.inbox.iterdir()} == inbox_before
    assert processor_state(batch) == state_before
    assert digest(tmp_path / "june" / "audit.jsonl") == audit_before
    assert not [f for f in files(tmp_path / "june") if "2026-07" in f]
    # the ledger deleted: the audit log's record of June's spend still refuses July
    kept = (batch.keys / "processor" / LEDGER).read_bytes()
    (batch.keys / "processor" / LEDGER).unlink()
    assert process(run_cli, batch, tmp_path / "june").exit_code == 3
    (batch.keys / "processor" / LEDGER).write_bytes(kept)
    # the pipeline raises the budget: the same batch is released, and its spend recorded
    text = batch.pipeline.read_text(encoding="utf-8")
    batch.pipeline.write_text(text.replace("per_year = 0.5", "per_year = 1.0"), "utf-8")
    assert process(run_cli, batch, tmp_path / "june").exit_code == 0
    assert sorted({r["as_of"] for r in ledger(batch)}) == ["2026-06-30", "2026-07-31"]


# -- the bound, checked on neighbouring batches -----------------------------------------------


def without_person(batch, person: bytes, root: Path) -> dict[str, dict[str, Path]]:
    """The batch's plaintext exports with every record of one person (one e-mail token) out."""
    tables = {}
    for maison, paths in batch.tables.items():
        ident = pl.read_parquet(paths["identities"])
        refs = ident.filter(pl.col("email_token") == person).get_column("maison_ref")
        folder = root / maison
        folder.mkdir(parents=True)
        tables[maison] = {"identities": folder / "identities.parquet",
                          "activity": folder / "activity.parquet"}  # fmt: skip
        ident.filter(pl.col("email_token") != person).write_parquet(tables[maison]["identities"])
        activity = pl.read_parquet(paths["activity"])
        activity.filter(~pl.col("maison_ref").is_in(refs.implode())).write_parquet(
            tables[maison]["activity"]
        )
    return tables


def test_one_person_moves_the_noisy_figures_no_more_than_the_noise_is_calibrated_for(
    run_cli, template, tmp_path, monkeypatch
):
    """The bound DP mode claims, checked through the real pipeline: with the segment model and
    value-tier cuts saved by an earlier batch, removing any one person (here three, each at
    several maisons) moves the exact counts the noise is added to, group cells and each
    maison's other_sector_spend, by no more than the L2 sensitivity the noise is calibrated
    on. The glossary then carries no figure, and every output says the definitions were
    saved."""
    from crossgroup.group import release
    from crossgroup.group.cells import scope_cells

    seen: list[dict] = []
    noisy_cells, noisy_other = release.noisy_group_cells, release.noisy_other_sector

    def group_cells(counted, grid, names, noise, k_aggregate):
        exact = scope_cells(counted, "group", list(names)).select("table", "row_key", "col_key",
                                                                   "persons")  # fmt: skip
        cells = grid.join(exact, on=["table", "row_key", "col_key"], how="left")
        seen.append({"group": cells.fill_null(0), "noise": noise, "other": {}})
        return noisy_cells(counted, grid, names, noise, k_aggregate)

    def other_sector(cells, noise, k_aggregate):
        vector = [*cells["persons"], *(cells["share"] * cells["base"]), cells["base"].max() or 0]
        seen[-1]["other"][len(seen[-1]["other"])] = vector
        return noisy_other(cells, noise, k_aggregate)

    monkeypatch.setattr(release, "noisy_group_cells", group_cells)
    monkeypatch.setattr(release, "noisy_other_sector", other_sector)
    june = in_dp_mode(copy_batch(template, tmp_path / "june"))
    assert process(run_cli, june, tmp_path / "june" / "out").exit_code == 0
    identities = pl.concat(pl.read_parquet(p["identities"]) for p in template.tables.values())
    shared = identities.group_by("email_token").len().filter(pl.col("len") >= 2)
    people = shared.sort("email_token").get_column("email_token").head(3).to_list()
    runs = {}
    for i, person in enumerate([None, *people]):
        batch = in_dp_mode(copy_batch(template, tmp_path / f"july-{i}"))
        for stale in batch.inbox.iterdir():
            stale.unlink()
        shutil.copytree(june.keys / "processor", batch.keys / "processor", dirs_exist_ok=True)
        tables = template.tables if person is None else without_person(
            template, person, tmp_path / f"plain-{i}"
        )  # fmt: skip
        seal_exports(batch.keys, batch.inbox, tables, as_of=date(2026, 7, 31), batch_id="2026-07")
        result = process(run_cli, batch, tmp_path / f"july-{i}" / "out")
        assert result.exit_code == 0, result.stderr
        runs[person] = seen[-1]
        entry = audit.read_entries(tmp_path / f"july-{i}" / "out" / "audit.jsonl")[-1]
        assert entry["settings"]["segment_model"]["reused"]
        assert entry["settings"]["privacy_budget"]["definitions"] == "saved"
        (_, tables_back) = open_return(
            batch, tmp_path / f"july-{i}" / "out", MAISONS[0], tmp_path / f"o{i}"
        )
        assert not tables_back["glossary"]["description"].str.contains(r"\d").any()
    full = runs[None]
    for person in people:
        one = runs[person]
        group = (full["group"]["persons"] - one["group"]["persons"]).cast(pl.Float64)
        assert (
            full["group"]
            .select("table", "row_key", "col_key")
            .equals(one["group"].select("table", "row_key", "col_key"))
        )
        moved = float((group**2).sum())
        assert moved > 0  # the person is in the group cells
        for maison, vector in full["other"].items():
            other = sum((a - b) ** 2 for a, b in zip(vector, one["other"][maison], strict=True))
            assert math.sqrt(moved + other) <= full["noise"].sensitivity + 1e-9, (maison, moved)
