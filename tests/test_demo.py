"""`crossgroup demo` end to end at a small size: layout, exact relinking, reports, re-runs."""

from __future__ import annotations

import hashlib
import sys
from datetime import date
from pathlib import Path

import polars as pl
import pytest

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent / "report"))

from crossgroup import audit
from crossgroup.demo import MARKER, month_ends, prepare_out_dir, run_demo
from crossgroup.errors import InputError
from demo_support import DEMO_PERSONS, demo_output, demo_summary


@pytest.fixture(scope="module")
def chromium() -> str:
    from browser import require_chromium

    return require_chromium()


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    return demo_output(tmp_path_factory)


def test_each_party_has_its_own_folder(demo):
    summary = demo_summary(demo)
    maisons = [m["maison"] for m in summary["maisons"]]
    assert len(maisons) == 8 and summary["persons"] == DEMO_PERSONS
    assert (demo / "keys" / "registry.toml").is_file()
    assert (demo / "keys" / "processor").is_dir()
    group = demo / "group"
    # the processor deletes its input packages after a successful run (no retention set)
    assert not list((group / "inbox").glob("*.cgpkg"))
    (entry,) = [e for e in audit.read_entries(group / "audit.jsonl") if e["command"] == "process"]
    assert [i["after_run"] for i in entry["inputs"]] == ["deleted"] * 8
    assert (group / "audit.jsonl").is_file() and any((group / "reports").iterdir())
    for maison in maisons:
        folder = demo / "maisons" / maison
        assert (folder / "customers.parquet").is_file()
        assert len(list((folder / "outbox").glob("export-*.cgpkg"))) == 1
        assert len(list((folder / "inbox").glob("return-*.cgpkg"))) == 1
        for name in ("segments.parquet", "segments.csv", "report.html"):
            assert (folder / "analyst" / name).is_file()
    # the ground truth belongs to no party: it stays outside the maisons' folders
    assert (demo / "truth.parquet").is_file()
    assert not (demo / "maisons" / "truth.parquet").exists()


def test_summary_counts_add_up(demo):
    for m in demo_summary(demo)["maisons"]:
        assert 0 < m["exported"] <= m["customers"]
        assert m["returned"] <= m["exported"]
        # nobody was deleted from the CRM between export and import in the demo
        assert m["relinked"] == m["returned"] and m["dropped"] == 0
        assert m["segments"] >= 2


def test_relinked_customers_are_the_right_people(demo):
    """Records of one synthetic person at two maisons get the same segment after relinking.

    A wrong relink would pair segments at random; the processor only links people it can
    match, so the agreement is high but not perfect.
    """
    truth = pl.read_parquet(demo / "truth.parquet").select("maison", "customer_id", "person_id")
    frames = []
    for m in demo_summary(demo)["maisons"]:
        seg = pl.read_parquet(demo / "maisons" / m["maison"] / "analyst" / "segments.parquet")
        customers = pl.read_parquet(demo / "maisons" / m["maison"] / "customers.parquet")
        assert seg["customer_id"].is_in(customers["customer_id"].implode()).all()
        assert "maison_ref" not in seg.columns
        frames.append(seg.select("customer_id", "segment").with_columns(maison=pl.lit(m["maison"])))
    returned = pl.concat(frames).join(truth, on=["maison", "customer_id"], how="inner")
    assert returned.height == sum(f.height for f in frames)  # every row is a real customer
    pairs = (
        returned.filter(pl.col("segment").is_not_null())
        .join(returned, on="person_id", suffix="_b")
        .filter(pl.col("maison") < pl.col("maison_b"))
    )
    assert pairs.height >= 20
    agreement = (pairs["segment"] == pairs["segment_b"]).mean()
    assert agreement > 0.8


def test_demo_report_renders_in_browser(demo, chromium):
    from browser import render

    rendered = render(chromium, demo / "maisons" / "aurelle" / "analyst" / "report.html")
    assert rendered.dom.count('class="chart"') >= 5
    assert "What was held back, and why" in rendered.dom
    assert rendered.console == []


def test_rerun_starts_clean_and_keeps_foreign_files(tmp_path):
    out = tmp_path / "demo"
    prepare_out_dir(out)
    for name in ("keys", "maisons", "group"):
        (out / name / "x").mkdir(parents=True)
    (out / "truth.parquet").write_bytes(b"old")
    (out / "notes.txt").write_text("mine")
    prepare_out_dir(out)
    assert sorted(p.name for p in out.iterdir()) == sorted([MARKER, "notes.txt"])


def test_foreign_folder_is_refused(tmp_path, run_cli):
    (tmp_path / "thesis.docx").write_text("not a demo")
    with pytest.raises(InputError, match="not created by crossgroup demo"):
        prepare_out_dir(tmp_path)
    result = run_cli("demo", "--out", tmp_path, "--persons", "500")
    assert result.exit_code == 2
    assert "not created by crossgroup demo" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["thesis.docx"]


def test_two_months_share_one_model_and_unchanged_customers_keep_their_segment(tmp_path):
    """`demo --months 2`: the second batch reuses the first's model (same digest, nothing
    saved again), every maison gets each month's files, and at least 98 % of the customers
    whose purchases did not change keep their segment id and label (issue 15)."""
    from crossgroup.group.model_state import STATE_FILE
    from crossgroup.group.stability import series_stability

    result = run_demo(tmp_path, persons=3000, seed=11, months=2)
    assert [b.batch_id for b in result.batches] == ["2026-08", "2026-09"]
    assert result.batches[0].model == "refitted: no saved model"
    assert result.batches[1].model == "reused"
    first, second = audit.read_entries(tmp_path / "group" / "audit.jsonl")
    used = [e["settings"]["segment_model"] for e in (first, second)]
    assert used[0]["digest"] == used[1]["digest"] and not used[1]["saved"]
    saved = (tmp_path / "keys" / "processor" / STATE_FILE).read_bytes()
    assert hashlib.sha256(saved).hexdigest() == used[0]["digest"]
    for m in result.maisons:
        for batch in ("2026-08", "2026-09"):
            assert (tmp_path / "maisons" / m.maison / "analyst" / batch / "report.html").is_file()
        # the second month's import compared with the first's segments file
        first_month, second_month = (tmp_path / "maisons" / m.maison / "analyst" / b
                                     for b in ("2026-08", "2026-09"))  # fmt: skip
        assert not (first_month / "changes.parquet").exists()
        changes = pl.read_parquet(second_month / "changes.parquet")
        assert changes.height and "What changed since last month" in (
            second_month / "report.html"
        ).read_text(encoding="utf-8")
        assert "previous import (batch 2026-08)" in (second_month / "report.html").read_text()
    figures = series_stability(tmp_path, (date(2026, 8, 31), date(2026, 9, 30)))
    assert figures["unchanged"]["customers"] > 500
    assert figures["unchanged"]["kept"] >= 0.98
    assert figures["everyone"]["customers"] > figures["unchanged"]["customers"]


def test_month_ends_run_back_from_the_as_of_month():
    assert month_ends(date(2026, 9, 30), 3) == [date(2026, 7, 31), date(2026, 8, 31),
                                                 date(2026, 9, 30)]  # fmt: skip
    assert month_ends(date(2026, 2, 14), 2) == [date(2026, 1, 31), date(2026, 2, 28)]


def test_the_demo_in_dp_mode_releases_noisy_group_figures_and_spends_the_budget(tmp_path, run_cli):
    """`demo --group-figures dp --months 2`: every analyst page says its group figures are
    noisy, and the processor's ledger holds one release per month and recipient."""
    result = run_cli("demo", "--out", tmp_path, "--persons", "2000", "--months", "2",
                     "--group-figures", "dp")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    ledger = (tmp_path / "keys" / "processor" / "privacy-budget.jsonl").read_text().splitlines()
    assert len(ledger) == 2 * 9  # eight maisons and the group, twice
    page = next((tmp_path / "maisons").glob("*/analyst/2026-09/report.html")).read_text("utf-8")
    assert "Group-wide figures carry random noise" in page and "Epsilon (ε)" in page
    refused = run_cli("demo", "--out", tmp_path / "x", "--group-figures", "noise")
    assert refused.exit_code == 2 and "--group-figures must be one of" in refused.stderr
