"""Late or missing maisons (issue 15, point 4), end to end on real sealed packages.

A maison the pipeline lists whose package is not in the inbox refuses the batch (exit 2,
naming it, nothing written or consumed) unless missing maisons are allowed (`--allow-missing`
or `[batch] allow_missing = true`). Then the batch runs with the maisons present: every
output names those that took part and those absent, the absent maison gets nothing back, and
nothing of it reaches another maison's return.
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import polars as pl
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from process_batch import MAISONS, build_batch, digest, write_pipeline
from test_process_cli import copy_batch, files, process, work_dir

from crossgroup import audit
from crossgroup.crypto.keys import load_party
from crossgroup.crypto.package import open_package, verify_package

MISSING = "vautrin"
PRESENT = [m for m in MAISONS if m != MISSING]  # aurelle, kessler
ALLOWED = "allow_missing = true\n"


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    return build_batch(tmp_path_factory.mktemp("missing"), n_persons=400)


@pytest.fixture
def batch(template, tmp_path):
    """A private copy (keys, ledger, inbox) so every test starts from an unprocessed batch."""
    return copy_batch(template, tmp_path)


def package_of(batch, maison: str) -> Path:
    return batch.inbox / f"export-{maison}-to-processor-2026-06.cgpkg"


def allow_in_pipeline(batch) -> None:
    """`[batch] allow_missing = true` in the batch's pipeline file."""
    text = batch.pipeline.read_text(encoding="utf-8")
    batch.pipeline.write_text(text.replace("[privacy]", f"{ALLOWED}[privacy]", 1), "utf-8")


def processor_state(batch) -> dict[str, str]:
    """Every file of the processor's directory (ledger, state) by digest; its lock aside."""
    folder = batch.keys / "processor"
    return {
        str(p.relative_to(folder)): digest(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and ".lock" not in p.name
    }


def returned_to(out: Path) -> list[str]:
    return sorted(p.name for p in (out / "returns").iterdir())


def open_return(batch, out: Path, maison: str, tmp: Path):
    """(manifest, tables) of `maison`'s return in `out`, opened with its own keys."""
    (package,) = (out / "returns" / maison).glob("*.cgpkg")
    target = tmp / "opened" / out.name / maison
    target.mkdir(parents=True)
    opened = open_package(package, load_party(batch.keys / maison), target, kind="return")
    return opened.manifest, {n: pl.read_parquet(p) for n, p in opened.tables.items()}


def display_name(batch, maison: str) -> str:
    return load_party(batch.keys / "processor").registry.party(maison).name


# -- refused: a listed maison sent nothing --------------------------------------------------


@pytest.mark.parametrize("missing", [["vautrin"], ["kessler", "vautrin"]], ids=["one", "two"])
def test_a_missing_maison_refuses_the_batch_naming_it(run_cli, batch, tmp_path, missing):
    for maison in missing:
        package_of(batch, maison).unlink()
    inbox_before = {p.name: digest(p) for p in batch.inbox.iterdir()}
    state_before = processor_state(batch)
    result = process(run_cli, batch, tmp_path / "out")
    assert result.exit_code == 2, result.stderr
    *progress, line = result.stderr.strip().splitlines()
    maisons, it = ("maisons", "them") if len(missing) > 1 else ("maison", "it")
    assert line == (
        f"crossgroup: error: no export package from {maisons} {', '.join(missing)} in "
        f"{batch.inbox}, which the pipeline's [batch] maisons lists: wait for {it}, or "
        f"process the batch without {it} with --allow-missing ([batch] allow_missing = true)"
    )
    assert "Traceback" not in result.stderr and progress == ["verify ..."]
    # nothing written, nothing consumed: the inbox as it was, no ledger line, no work left
    assert files(tmp_path / "out") == []
    assert {p.name: digest(p) for p in batch.inbox.iterdir()} == inbox_before
    assert processor_state(batch) == state_before
    assert list(work_dir(batch).iterdir()) == []


def test_a_maison_whose_package_is_set_aside_is_absent_not_missing(
    run_cli, template, batch, tmp_path
):
    """`--skip-invalid` already goes on without the maison of a package it sets aside (it did
    send one): that maison is absent from the batch and named so, with no --allow-missing;
    a maison that sent nothing still refuses the batch, and only it is named."""
    victim = package_of(batch, MISSING)
    victim.write_bytes(victim.read_bytes()[:-50])  # truncated: set aside at verification
    kessler = package_of(batch, "kessler")
    kessler.unlink()
    refused = process(run_cli, batch, tmp_path / "refused", "--skip-invalid")
    assert refused.exit_code == 2, refused.stderr
    assert "no export package from maison kessler in" in refused.stderr
    assert MISSING not in refused.stderr.strip().splitlines()[-1]
    assert files(tmp_path / "refused") == []

    shutil.copy(template.inbox / kessler.name, kessler)
    result = process(run_cli, batch, tmp_path / "out", "--skip-invalid")
    assert result.exit_code == 0, result.stderr
    (entry,) = audit.read_entries(tmp_path / "out" / "audit.jsonl")
    assert entry["counts"]["participating_maisons"] == PRESENT
    assert entry["counts"]["absent_maisons"] == [MISSING]
    assert entry["settings"]["allow_missing"] is False
    assert [s["file"] for s in entry["counts"]["skipped_packages"]] == [victim.name]
    assert returned_to(tmp_path / "out") == PRESENT


# -- allowed: the batch runs with the maisons present ----------------------------------------


@pytest.mark.parametrize("allowed_by", ["flag", "pipeline"])
def test_allowed_missing_runs_with_the_maisons_present_and_every_output_names_them(
    run_cli, batch, tmp_path, allowed_by
):
    package_of(batch, MISSING).unlink()
    if allowed_by == "pipeline":
        allow_in_pipeline(batch)
    out = tmp_path / "out"
    result = process(run_cli, batch, out, *(["--allow-missing"] if allowed_by == "flag" else []))
    assert result.exit_code == 0, result.stderr

    # the run summary
    assert re.search(r"maisons taking part\W+aurelle, kessler\W", result.stdout), result.stdout
    assert re.search(rf"maisons absent\W+{MISSING}\W", result.stdout), result.stdout
    assert f"Absent {MISSING}: took no part, gets no return" in result.stdout
    # the audit entry
    (entry,) = audit.read_entries(out / "audit.jsonl")
    assert entry["counts"]["participating_maisons"] == PRESENT
    assert entry["counts"]["absent_maisons"] == [MISSING]
    assert entry["settings"]["allow_missing"] is True
    assert sorted(i["sender"] for i in entry["inputs"]) == PRESENT
    # the group report
    page = (out / "reports" / "group_report.html").read_text(encoding="utf-8")
    assert "Maisons taking part: aurelle, kessler." in page
    assert f"Absent (no return for this batch): {MISSING}." in page
    # the absent maison gets nothing back; each return's manifest names who took part
    assert returned_to(out) == PRESENT
    crm = tmp_path / "crm.parquet"
    pl.DataFrame({"customer_id": ["C-000001", "C-000002"]}).write_parquet(crm)
    names = ", ".join(display_name(batch, m) for m in PRESENT)
    for maison in PRESENT:
        (package,) = (out / "returns" / maison).glob("*.cgpkg")
        manifest = verify_package(package, load_party(batch.keys / maison), kind="return")
        assert manifest.summary["participating_maisons"] == PRESENT
        assert manifest.summary["absent_maisons"] == [MISSING]
        # the return's report, made at the maison by `crossgroup import`
        imported = run_cli("import", "--maison", maison, "--package", package,
                           "--customers", crm, "--keys", batch.keys / maison,
                           "--out", tmp_path / "analyst" / maison)  # fmt: skip
        assert imported.exit_code == 0, imported.stderr
        report = (tmp_path / "analyst" / maison / "report.html").read_text(encoding="utf-8")
        assert f"Maisons in this batch: {names}" in report
        assert f"not in this batch: {display_name(batch, MISSING)}" in report


def test_an_absent_maisons_customers_reach_no_other_return(run_cli, batch, tmp_path):
    """Invariant 5 with a maison absent: its customers who also shop at a present maison are
    resolved from the present maisons' exports only. The returns are exactly those of a batch
    whose pipeline never listed the absent maison; every returned ref is the recipient's own;
    no table of any return names the absent maison; breadth counts present maisons only; and
    a manifest adds the participation list to its counts and thresholds, nothing else."""
    package_of(batch, MISSING).unlink()
    never = copy_batch(batch, tmp_path / "never")  # same keys and inbox ...
    write_pipeline(never.pipeline, PRESENT)  # ... and a pipeline that never listed it
    allowed = process(run_cli, batch, tmp_path / "allowed", "--allow-missing")
    assert allowed.exit_code == 0, allowed.stderr
    unlisted = process(run_cli, never, tmp_path / "unlisted")
    assert unlisted.exit_code == 0, unlisted.stderr
    assert returned_to(tmp_path / "allowed") == returned_to(tmp_path / "unlisted") == PRESENT

    truth = pl.concat(
        pl.read_parquet(batch.tables[m]["identities"]).select(
            pl.lit(m).alias("maison"), "maison_ref", pl.col("email_token").alias("person")
        )
        for m in MAISONS
    )
    at_present = (
        truth.filter(pl.col("maison").is_in(PRESENT))
        .group_by("person")
        .agg(pl.len().alias("present"))
    )
    also_absent = truth.filter(pl.col("maison") == MISSING).get_column("person")
    forbidden = re.compile(f"(?i){re.escape(MISSING)}|{re.escape(display_name(batch, MISSING))}")
    for maison in PRESENT:
        manifest, tables = open_return(batch, tmp_path / "allowed", maison, tmp_path)
        _, reference = open_return(never, tmp_path / "unlisted", maison, tmp_path)
        for name, frame in tables.items():
            assert frame.equals(reference[name]), (maison, name)
        segments = tables["segments"]
        own = truth.filter(pl.col("maison") == maison)
        assert segments.get_column("maison_ref").is_in(own["maison_ref"].implode()).all()
        for name, frame in tables.items():
            for column in frame.select(pl.col(pl.String)).columns:
                values = frame.get_column(column).drop_nulls()
                assert not values.str.contains(forbidden.pattern).any(), (maison, name, column)
        rows = segments.join(own, on="maison_ref").join(at_present, on="person")
        shared = rows.filter(pl.col("person").is_in(also_absent.implode()))
        assert shared.height > 20  # the absent maison's customers are among this return's
        bands = {1: {"1 maison"}, 2: {"2 maisons", "2+ maisons"}}
        for present, breadth in rows.select("present", "breadth").unique().iter_rows():
            assert breadth is None or breadth in bands[present], (maison, present, breadth)
        assert manifest.summary == {
            "rows": segments.height,
            "k": 5,
            "k_aggregate": 20,
            "group_figures": "threshold",
            "participating_maisons": PRESENT,
            "absent_maisons": [MISSING],
        }
        assert manifest.to_json().count(MISSING) == 1  # in the participation list alone


def test_a_sector_left_with_one_maison_present_is_not_named(run_cli, tmp_path):
    """The sector rule (DESIGN §4.4) counts the maisons that take part, not those the pipeline
    lists: of aurelle and kessler, the Watches & Jewelry pair of this pipeline, kessler is
    missing, so that sector would stand for aurelle alone, and no return names it (it is
    named when both take part)."""
    from crossgroup.config import load_group, load_taxonomy
    from crossgroup.group.pipeline import release_policy

    listed = ["aurelle", "kessler", "harrow", "vautrin"]  # two jewelers, two fashion houses
    present = [m for m in listed if m != "kessler"]
    four = build_batch(tmp_path / "four", listed, n_persons=300)
    group, taxonomy = load_group(four.pipeline), load_taxonomy()
    registry = load_party(four.keys / "processor").registry
    released = release_policy(group, taxonomy, registry, present).released_sectors
    assert released["Watches & Jewelry"] == "Jewelry & Fashion"
    everyone = release_policy(group, taxonomy, registry, listed).released_sectors
    assert everyone["Watches & Jewelry"] == "Watches & Jewelry"

    without = copy_batch(four, tmp_path / "without")
    package_of(without, "kessler").unlink()
    result = process(run_cli, without, tmp_path / "out", "--allow-missing")
    assert result.exit_code == 0, result.stderr
    assert returned_to(tmp_path / "out") == sorted(present)
    # the family's name and label word may appear; the sector's name and word may not
    lonely = re.compile(r"(?i:watches|jewelry)(?!(?i:-fashion)| & Fashion)")
    for maison in present:
        _, tables = open_return(without, tmp_path / "out", maison, tmp_path)
        leads = set(tables["segments"].get_column("lead_sector").drop_nulls())
        assert "Jewelry & Fashion" in leads and "Watches & Jewelry" not in leads
        for name in ("segments", "glossary"):
            for column in tables[name].select(pl.col(pl.String)).columns:
                for value in tables[name].get_column(column).drop_nulls().unique():
                    assert not lonely.search(value), (maison, name, column, value)
    # the same batch with kessler's package: the pair takes part and the sector is named
    everyone_sent = copy_batch(four, tmp_path / "everyone")
    full = process(run_cli, everyone_sent, tmp_path / "full")
    assert full.exit_code == 0, full.stderr
    _, tables = open_return(everyone_sent, tmp_path / "full", "aurelle", tmp_path)
    assert "Watches & Jewelry" in set(tables["segments"].get_column("lead_sector"))


def test_one_maison_alone_is_a_batch_of_its_own_customers(run_cli, batch, tmp_path):
    """With every other maison missing and --allow-missing, the one maison present gets a
    return about its own customers, none of whom is seen at another maison."""
    for maison in ("kessler", "vautrin"):
        package_of(batch, maison).unlink()
    result = process(run_cli, batch, tmp_path / "out", "--allow-missing")
    assert result.exit_code == 0, result.stderr
    assert returned_to(tmp_path / "out") == ["aurelle"]
    (entry,) = audit.read_entries(tmp_path / "out" / "audit.jsonl")
    assert entry["counts"]["participating_maisons"] == ["aurelle"]
    assert entry["counts"]["absent_maisons"] == ["kessler", "vautrin"]
    manifest, tables = open_return(batch, tmp_path / "out", "aurelle", tmp_path)
    assert manifest.summary["participating_maisons"] == ["aurelle"]
    assert set(tables["segments"].get_column("breadth").drop_nulls()) <= {"1 maison"}


def test_no_package_at_all_is_still_refused_with_allow_missing(run_cli, batch, tmp_path):
    for package in batch.inbox.iterdir():
        package.unlink()
    result = process(run_cli, batch, tmp_path / "out", "--allow-missing")
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"crossgroup: error: inbox {batch.inbox} holds no .cgpkg packages"
    )
    assert files(tmp_path / "out") == []
