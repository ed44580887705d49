"""`crossgroup process` end to end on real sealed packages: the privacy invariants are checked
on what leaves the processor (decrypted returns, reports, audit log, disk), not on internals.

The invariant tests run on both engines (DESIGN §5.11): `engine` is duckdb or spark, the
Spark runs marked `spark`. Tests that only read what a run left share one Spark run, made in
a child process so that its whole console and every folder it could write to are inspected.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
import sys
from pathlib import Path
from types import SimpleNamespace

import polars as pl
import pytest

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1]))  # leak_scan

from child_run import foreign_lines, run_process
from process_batch import (
    AS_OF,
    MAISONS,
    BatchFiles,
    build_batch,
    open_returns,
    seal_exports,
    secret_needles,
)

from crossgroup import audit
from crossgroup.contracts import AFFINITY_TABLES, RETURN
from crossgroup.crypto.keys import load_party
from crossgroup.group import model_state
from leak_scan import forms_found, scan

K, K_AGGREGATE = 5, 20

SPARK_READY = all(importlib.util.find_spec(m) for m in ("pyspark", "sqlglot"))
ENGINES = [
    "duckdb",
    pytest.param(
        "spark",
        marks=[
            pytest.mark.spark,
            pytest.mark.skipif(not SPARK_READY, reason="needs pip install 'crossgroup[spark]'"),
        ],
    ),
]


@pytest.fixture(params=ENGINES)
def engine(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    return build_batch(tmp_path_factory.mktemp("process"), n_persons=400)


def copy_batch(source: BatchFiles, root: Path) -> BatchFiles:
    """root/batch: a copy of source's keys, ledger and inbox (its plaintext tables stay where
    they are); root/work: an empty parent for the working directory (`process` puts it there)."""
    shutil.copytree(source.keys.parent, root / "batch", ignore=shutil.ignore_patterns("plain"))
    (root / "work").mkdir(exist_ok=True)
    base = root / "batch"
    return BatchFiles(base / "keys", base / "inbox", base / "group.toml", source.tables)


def work_dir(batch: BatchFiles) -> Path:
    return batch.keys.parent.parent / "work"


@pytest.fixture
def batch(template, tmp_path):
    """A private copy (keys, ledger, inbox) so every test starts from an unprocessed batch."""
    return copy_batch(template, tmp_path)


def process_args(batch, out: Path, *extra: str, keys: Path | None = None, engine: str = "duckdb"):
    return [
        "process",
        "--inbox", batch.inbox,
        "--keys", keys or batch.keys / "processor",
        "--out", out,
        "--pipeline", batch.pipeline,
        "--work-dir", work_dir(batch),
        *(["--engine", engine] if engine != "duckdb" else []),  # duckdb: the default
        *extra,
    ]  # fmt: skip


def process(run_cli, batch, out: Path, *extra: str, keys: Path | None = None, engine="duckdb"):
    return run_cli(*process_args(batch, out, *extra, keys=keys, engine=engine))


def files(folder: Path) -> list[str]:
    if not folder.exists():
        return []
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def person_of_ref(batch) -> pl.DataFrame:
    """Test-side truth: the crafted email token is the person."""
    return pl.concat(
        pl.read_parquet(paths["identities"]).select(
            pl.lit(m).alias("maison"), "maison_ref", pl.col("email_token").alias("person")
        )
        for m, paths in batch.tables.items()
    )


@pytest.fixture(scope="module")
def spark_run(template, tmp_path_factory):
    """One `crossgroup process --engine spark` in a child process, TMPDIR and current folder
    its own, /tmp read-only where possible: the batch, out, the console, the run's folder, and
    what /tmp gained meanwhile (or None when the child could not write there)."""
    root = tmp_path_factory.mktemp("spark-run")
    batch = copy_batch(template, root)
    before = tmp_entries()
    child, readonly_tmp = run_process(process_args(batch, root / "out", engine="spark"), root)
    assert child.returncode == 0, child.stderr
    console = SimpleNamespace(exit_code=0, stdout=child.stdout, stderr=child.stderr)
    new_in_tmp = None if readonly_tmp else tmp_entries() - before
    return SimpleNamespace(batch=batch, out=root / "out", console=console, root=root,
                           new_in_tmp=new_in_tmp)  # fmt: skip


def tmp_entries() -> set[str]:
    return {p.name for p in Path("/tmp").iterdir()}


@pytest.fixture
def processed(request, engine, run_cli, tmp_path):
    """(batch, out, console, decrypted returns) of one clean run on `engine`."""
    if engine == "spark":
        run = request.getfixturevalue("spark_run")
        batch, out, result = run.batch, run.out, run.console
    else:
        batch, out = request.getfixturevalue("batch"), tmp_path / "out"
        result = process(run_cli, batch, out)
        assert result.exit_code == 0, result.stderr
    return batch, out, result, open_returns(batch, out, tmp_path)


def test_only_encrypted_returns_reports_and_audit_remain(processed):
    batch, out, result, _ = processed
    names = files(out)
    assert "audit.jsonl" in names and "audit.jsonl.head" in names
    assert (out / ".audit.jsonl.lock").read_bytes() == b""  # the writers' lock holds nothing
    for name in names:
        assert (
            name in ("audit.jsonl", "audit.jsonl.head", ".audit.jsonl.lock")
            or (name.startswith("returns/") and name.endswith(".cgpkg"))
            or name.startswith("reports/")
        ), name
    assert {n.split("/")[1] for n in names if n.startswith("returns/")} == set(MAISONS)
    assert files(work_dir(batch)) == [] and list(work_dir(batch).iterdir()) == []
    for stage in ("verify", "decrypt", "resolve", "features", "segment", "generalize", "release"):
        assert f"time: {stage}" in result.stdout
    assert audit.verify_chain(out / "audit.jsonl") == []


def test_each_return_holds_only_its_own_customers(processed):
    batch, _, _, opened = processed
    for maison, tables in opened.items():
        own = pl.read_parquet(batch.tables[maison]["identities"]).get_column("maison_ref")
        refs = tables["segments"].get_column("maison_ref")
        assert refs.is_in(own.implode()).all()
        assert refs.n_unique() == refs.len()
        assert tuple(tables["segments"].columns) == RETURN["segments"].names


def test_every_returned_combination_covers_k_persons(processed):
    batch, _, _, opened = processed
    everyone = pl.concat(
        t["segments"].with_columns(maison=pl.lit(m)) for m, t in opened.items()
    ).join(person_of_ref(batch), on=["maison", "maison_ref"])
    attrs = [c for c in RETURN["segments"].names if c != "maison_ref"]
    per_person = everyone.select("person", *attrs).unique()
    assert per_person.get_column("person").is_unique().all()  # one profile per person
    sizes = per_person.group_by(attrs).agg(pl.col("person").n_unique().alias("n"))
    assert sizes.get_column("n").min() >= K


def test_aggregates_are_thresholded_and_suppression_is_said(processed):
    _, out, _, opened = processed
    for tables in opened.values():
        aggs = tables["aggregates"]
        cells = aggs.filter(pl.col("table") != "suppression")
        assert cells.filter(~pl.col("suppressed")).get_column("persons").min() >= K_AGGREGATE
        hidden = cells.filter(pl.col("suppressed"))
        assert hidden.height > 0  # the small batch does produce small cells
        assert hidden.get_column("persons").null_count() == hidden.height
        said = aggs.filter(pl.col("table") == "suppression")
        assert set(hidden.get_column("table")) <= set(said.get_column("row_key"))
    report = pl.read_parquet(out / "reports" / "aggregates.parquet")
    shown = report.filter((pl.col("table") != "suppression") & ~pl.col("suppressed"))
    assert shown.get_column("persons").min() >= K_AGGREGATE


def test_other_sector_spend_is_published_only_where_the_cell_rule_allows(processed):
    """Each maison's multi-maison customers' spend in other sectors: a published cell counts
    at least K_AGGREGATE of them spending there and K_AGGREGATE not (the maison counts them
    from its own rows); the batch is large enough for some cells to be published."""
    _, _, _, opened = processed
    published = 0
    for maison, tables in opened.items():
        seg = tables["segments"]
        base = seg.filter(pl.col("breadth").is_in(["2 maisons", "3+ maisons", "2+ maisons"]))
        cells = tables["aggregates"].filter(pl.col("table") == "other_sector_spend")
        assert cells.height > 0, maison
        shown = cells.filter(~pl.col("suppressed"))
        for persons, share in shown.select("persons", "share").rows():
            assert persons >= K_AGGREGATE and base.height - persons >= K_AGGREGATE, maison
            assert 0 < share < 1, maison
        published += shown.height
    assert published > 0


def test_affinity_cells_name_no_sector_released_under_a_coarser_name(processed):
    """Aurelle and Kessler are Watches & Jewelry, Vautrin alone Fashion & Leather Goods: the
    affinity tables, returned or reported, are keyed by released sector names only (DESIGN
    §4.4), never by a sector that would stand for Vautrin (nor, by exclusion, its family's)."""
    from collections import Counter

    from crossgroup import config
    from crossgroup.privacy.policy import ReleasePolicy

    sectors = Counter(config.load_maison(config.maison_config_path(m)).sector for m in MAISONS)
    released = ReleasePolicy(config.load_taxonomy(), sector_maisons=sectors).released_sectors
    assert released["Fashion & Leather Goods"] != "Fashion & Leather Goods"
    _, out, _, opened = processed
    report = pl.read_parquet(out / "reports" / "aggregates.parquet")
    for cells in [report, *(tables["aggregates"] for tables in opened.values())]:
        affinity = cells.filter(pl.col("table").is_in(AFFINITY_TABLES))
        keys = set(
            affinity.select(
                pl.when(pl.col("table") == "sector_affinity")
                .then(pl.col("row_key"))
                .otherwise(pl.col("col_key"))
            ).to_series()
        )
        assert keys and keys <= set(released.values())
        assert "Fashion & Leather Goods" not in keys


def test_no_token_or_ref_in_audit_log_or_reports(processed):
    """Invariant 9: every file the processor keeps (out: returns' readable headers, reports,
    audit log; its key dir's state and ledgers) decoded and searched for every input token and
    ref, raw, hex and base64."""
    batch, out, _, _ = processed
    needles = secret_needles(batch.tables)
    assert len(needles) > 400
    found = scan([out, batch.keys / "processor", work_dir(batch)], needles)
    assert found.hits == []
    assert {"parquet", "json", "package", "bytes"} <= set(found.files.values())
    assert any(p.endswith("group_report.html") for p in found.files)
    assert found.values > 1000


def test_audit_entry_records_packages_counts_timings_and_digests(processed):
    _, out, _, _ = processed
    (entry,) = audit.read_entries(out / "audit.jsonl")
    assert entry["command"] == "process" and entry["party"] == "processor"
    assert len(entry["inputs"]) == len(MAISONS)
    assert all(len(i["sha256"]) == 64 for i in entry["inputs"])
    assert set(entry["timings"]) >= {"verify", "decrypt", "resolve", "segment", "generalize"}
    assert {o["file"] for o in entry["outputs"]} >= {"reports/group_report.html"}


def test_the_segment_model_is_saved_with_the_batch_and_its_digest_audited(processed):
    """The series' model is processor state: committed with the batch, private, named by its
    digest in the audit entry and in the group report."""
    batch, out, _, _ = processed
    saved = batch.keys / "processor" / model_state.STATE_FILE
    assert saved.stat().st_mode & 0o777 == 0o600
    (entry,) = audit.read_entries(out / "audit.jsonl")
    used = entry["settings"]["segment_model"]
    assert used["digest"] == hashlib.sha256(saved.read_bytes()).hexdigest()
    assert used["reused"] is False and used["reason"] == "no saved model" and used["saved"]
    report = (out / "reports" / "group_report.html").read_text()
    assert "Segment model across batches" in report and used["digest"][:16] in report


def test_processor_audit_head_is_signed_and_verifies_with_the_registry(run_cli, processed):
    batch, out, _, _ = processed
    head = json.loads(audit.head_path(out / "audit.jsonl").read_text())
    assert head["party"] == "processor" and head["entries"] == 1 and head["signature"]
    assert head["head"] == audit.head_digest(out / "audit.jsonl")
    result = run_cli("audit", "verify", "--log", out / "audit.jsonl",
                     "--registry", batch.keys / "registry.toml")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert "head signature" in result.stdout


def test_replayed_batch_is_refused_and_writes_nothing(
    run_cli, template, processed, engine, tmp_path
):
    batch = copy_batch(processed[0], tmp_path / "replay")  # the processor's state after the run
    assert not list(batch.inbox.glob("*.cgpkg"))  # inputs are deleted after a successful run
    for package in template.inbox.glob("*.cgpkg"):  # the same packages delivered again
        shutil.copy(package, batch.inbox / package.name)
    again = process(run_cli, batch, tmp_path / "again", engine=engine)
    assert again.exit_code == 3
    assert "replayed package" in again.stderr
    assert files(tmp_path / "again") == []


@pytest.mark.parametrize("engine", ["duckdb"])
def test_reproducible_returns(run_cli, template, processed, tmp_path):
    """DuckDB only: the parity test (test_engine_parity.py) compares every table a batch returns
    on Spark with DuckDB's, and a second Spark run would cost some twenty seconds."""
    _, _, _, first = processed
    second_batch = copy_batch(template, tmp_path / "second")
    result = process(run_cli, second_batch, tmp_path / "out2")
    assert result.exit_code == 0, result.stderr
    second = open_returns(second_batch, tmp_path / "out2", tmp_path / "o2")
    for maison in MAISONS:
        for name, frame in first[maison].items():
            assert frame.equals(second[maison][name]), (maison, name)


def test_maison_key_dir_is_refused(run_cli, batch, engine, tmp_path):
    result = process(run_cli, batch, tmp_path / "out", keys=batch.keys / "aurelle", engine=engine)
    assert result.exit_code == 3
    assert "not the processor" in result.stderr
    assert files(tmp_path / "out") == []


def test_tampered_package_refuses_the_batch(run_cli, batch, engine, tmp_path):
    victim = sorted(batch.inbox.iterdir())[1]
    data = bytearray(victim.read_bytes())
    data[-100] ^= 0x01
    victim.write_bytes(bytes(data))
    result = process(run_cli, batch, tmp_path / "out", engine=engine)
    assert result.exit_code == 3
    assert victim.name in result.stderr
    assert files(tmp_path / "out") == []
    assert list((tmp_path / "work").iterdir()) == []


def test_skip_invalid_proceeds_and_reports(run_cli, batch, tmp_path):
    victim = sorted(batch.inbox.iterdir())[1]
    victim.write_bytes(victim.read_bytes()[:-50])  # truncated
    result = process(run_cli, batch, tmp_path / "out", "--skip-invalid")
    assert result.exit_code == 0, result.stderr
    assert "Skipped" in result.stdout and victim.name in result.stdout
    (entry,) = audit.read_entries(tmp_path / "out" / "audit.jsonl")
    assert [s["file"] for s in entry["counts"]["skipped_packages"]] == [victim.name]
    assert len(list((tmp_path / "out" / "returns").iterdir())) == len(MAISONS) - 1


def test_skip_invalid_sets_aside_a_package_damaged_in_its_payload(run_cli, batch, tmp_path):
    """Damage verification cannot see (inside an encrypted chunk) is set aside like any other."""
    from crossgroup.crypto.ledger import accepted_ids
    from crossgroup.crypto.package import verify_package

    victim = sorted(batch.inbox.iterdir())[1]
    data = bytearray(victim.read_bytes())
    data[-100] ^= 0x01
    victim.write_bytes(bytes(data))
    processor = load_party(batch.keys / "processor")
    victim_id = verify_package(victim, processor).package_id  # passes verification
    result = process(run_cli, batch, tmp_path / "out", "--skip-invalid")
    assert result.exit_code == 0, result.stderr
    assert "Skipped" in result.stdout and victim.name in result.stdout
    (entry,) = audit.read_entries(tmp_path / "out" / "audit.jsonl")
    assert [s["file"] for s in entry["counts"]["skipped_packages"]] == [victim.name]
    assert entry["counts"]["packages"] == len(MAISONS) - 1 and entry["counts"]["skipped"] == 1
    assert victim.name not in {i["file"] for i in entry["inputs"]}
    assert len(list((tmp_path / "out" / "returns").iterdir())) == len(MAISONS) - 1
    # like a package skipped at verification: left in the inbox as it was, never accepted
    assert [p.name for p in batch.inbox.iterdir()] == [victim.name]
    assert victim.read_bytes() == bytes(data)
    accepted = accepted_ids(processor.directory)
    assert len(accepted) == len(MAISONS) - 1 and victim_id not in accepted
    assert list((tmp_path / "work").iterdir()) == []


def test_skip_invalid_with_every_payload_damaged_refuses_clearly(run_cli, batch, tmp_path):
    for package in batch.inbox.iterdir():
        data = bytearray(package.read_bytes())
        data[-100] ^= 0x01
        package.write_bytes(bytes(data))
    result = process(run_cli, batch, tmp_path / "out", "--skip-invalid")
    assert result.exit_code == 3
    (line,) = result.stderr.strip().splitlines()[-1:]
    assert line.startswith("crossgroup: error: no valid export package left")
    assert files(tmp_path / "out") == []
    assert len(list(batch.inbox.iterdir())) == len(MAISONS)
    assert list((tmp_path / "work").iterdir()) == []


def test_sender_outside_the_pipeline_is_refused(run_cli, batch, tmp_path):
    batch.pipeline.write_text(
        batch.pipeline.read_text().replace('"vautrin"', '"orval"'), encoding="utf-8"
    )
    result = process(run_cli, batch, tmp_path / "out")
    assert result.exit_code == 3
    assert "not a maison of this pipeline" in result.stderr


def test_mixed_as_of_dates_are_refused(run_cli, batch, tmp_path):
    (batch.inbox / "export-vautrin-to-processor-2026-06.cgpkg").unlink()
    seal_exports(
        batch.keys,
        batch.inbox,
        {"vautrin": batch.tables["vautrin"]},
        as_of=AS_OF.replace(day=29),
    )
    result = process(run_cli, batch, tmp_path / "out")
    assert result.exit_code == 2
    assert "different as-of dates" in result.stderr
    assert files(tmp_path / "out") == []


def test_mixed_matching_key_epochs_are_refused(run_cli, batch, tmp_path):
    from crossgroup.crypto.package import seal_package

    (batch.inbox / "export-vautrin-to-processor-2026-06.cgpkg").unlink()
    seal_package(
        batch.inbox,
        kind="export",
        sender=load_party(batch.keys / "vautrin"),
        recipient="processor",
        tables=batch.tables["vautrin"],
        batch_id="2026-06",
        as_of=AS_OF,
        matching_key_id="mk-another-epoch",
    )
    result = process(run_cli, batch, tmp_path / "out")
    assert result.exit_code == 3
    assert "matching-key mismatch" in result.stderr
    assert files(tmp_path / "out") == []


def test_work_dir_is_removed_after_an_injected_failure(run_cli, batch, tmp_path, monkeypatch):
    """DuckDB only: on Spark, a failure later in the run (test_failed_privacy_check_writes_nothing)
    and one raised inside Spark (test_a_step_failing_on_a_value_logs_none_of_it) stand for it."""
    import crossgroup.group.pipeline as pipeline

    def broken(*args, **kwargs):
        raise RuntimeError("injected failure")

    monkeypatch.setattr(pipeline, "generalize_table", broken)
    result = process(run_cli, batch, tmp_path / "out")
    assert result.exit_code == 1
    assert list((tmp_path / "work").iterdir()) == []
    assert files(tmp_path / "out") == []
    # nothing was accepted: the same packages process fine afterwards
    monkeypatch.undo()
    assert process(run_cli, batch, tmp_path / "out").exit_code == 0


def test_failed_privacy_check_writes_nothing(run_cli, batch, engine, tmp_path, monkeypatch):
    """Refused after every return was written to the working directory (and, on Spark, read
    back by the engine for the batch-wide check): nothing leaves it, and it is removed."""
    import crossgroup.privacy.release_checks as checks

    monkeypatch.setattr(checks, "combination_problems", lambda *a, **kw: ["forced problem (6)"])
    result = process(run_cli, batch, tmp_path / "out", engine=engine)
    assert result.exit_code == 3
    assert "release refused by the privacy checks" in result.stderr
    assert files(tmp_path / "out") == []
    assert list((tmp_path / "work").iterdir()) == []


def test_an_unknown_engine_is_refused_before_anything_is_read(run_cli, batch, tmp_path):
    out = tmp_path / "out"
    result = process(run_cli, batch, out, "--engine", "sparky")
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "crossgroup: error: --engine 'sparky': expected one of duckdb, spark"
    )
    assert not out.exists() and sorted(batch.inbox.iterdir())  # nothing written or consumed


# -- what a Spark run shows on its console and leaves around it ---------------------------------

# what Spark and its JVM make by default: warehouse, Derby metastore, event log, block manager
# and scratch folders, native libraries unpacked, JVM counters
SPARK_NAMES = ("spark-", "blockmgr-", "artifacts-", "metastore_db", "derby.log", "hsperfdata_")
SPARK_NAMES += ("liblz4", "libzstd", "snappy", "libnetty", "eventlog")


@pytest.mark.spark
@pytest.mark.skipif(not SPARK_READY, reason="needs pip install 'crossgroup[spark]'")
def test_a_spark_run_logs_nothing_and_writes_only_inside_its_working_directory(spark_run):
    """Invariant 9 on Spark: the driver logs nothing (no log line, banner or progress bar
    reaches the console: a log line can quote a row), and Spark's scratch (local dirs,
    warehouse, the JVM's temporary files) stays in the working directory, removed at the end:
    nothing in the child's TMPDIR or current folder, nothing Spark-made anywhere in the run's
    folder, and nothing written to /tmp (read-only for the child where this machine allows
    it, so that any write fails the run; else nothing new there under Spark's or the JVM's
    names)."""
    run = spark_run
    needles = frozenset(secret_needles(run.batch.tables))
    assert foreign_lines(run.console.stderr) == []
    assert forms_found(run.console.stdout, needles) == []
    assert forms_found(run.console.stderr, needles) == []
    assert list((run.root / "tmp").iterdir()) == [] and list((run.root / "cwd").iterdir()) == []
    assert list(work_dir(run.batch).iterdir()) == []
    assert [p for p in run.root.rglob("*") if p.name.startswith(SPARK_NAMES)] == []
    found = scan([run.root], needles)
    assert found.hits == [] and len(found.files) > 10
    if run.new_in_tmp is not None:
        assert sorted(n for n in run.new_in_tmp if n.startswith(SPARK_NAMES)) == []


@pytest.fixture
def run_cli_fd(capfd, monkeypatch):
    """conftest's `run_cli`, capturing the file descriptors: a Spark JVM writes there."""
    from crossgroup.cli.app import main

    def run(*args: str) -> SimpleNamespace:
        monkeypatch.setattr(sys, "argv", ["crossgroup", *map(str, args)])
        capfd.readouterr()
        try:
            main()
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        out, err = capfd.readouterr()
        return SimpleNamespace(exit_code=code, stdout=out, stderr=err)

    return run


def test_a_step_failing_on_a_value_logs_none_of_it(
    run_cli_fd, batch, engine, tmp_path, monkeypatch
):
    """A step that fails on a row's value (a ref read as a number) ends the run with nothing
    written and the working directory removed, and nothing shows the value: not the error
    line, not Spark's driver log, not PySpark's query log (which prints a failing query's
    whole message)."""
    import crossgroup.group.resolve as resolve
    from crossgroup.engine import Step

    def failing(engine_, *args, **kwargs):
        sql = "SELECT CAST(hex(maison_ref) AS INTEGER) AS n FROM identities"
        engine_.run(Step("ref_as_number", sql))

    monkeypatch.setattr(resolve, "resolve_persons", failing)
    result = process(run_cli_fd, batch, tmp_path / "out", engine=engine)
    assert result.exit_code == 2, result.stderr
    *logged, error = result.stderr.strip().splitlines()
    assert error.startswith("crossgroup: error: step 'ref_as_number' failed in ")
    assert foreign_lines("\n".join(logged)) == []
    needles = frozenset(secret_needles(batch.tables))
    assert forms_found(result.stdout, needles) == []
    assert forms_found(result.stderr, needles) == []
    assert files(tmp_path / "out") == [] and list(work_dir(batch).iterdir()) == []
