"""Evaluation maths on crafted frames: pairwise links, recoverability, segment agreement."""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import adjusted_rand_score

from crossgroup.config import GroupConfig, load_taxonomy
from crossgroup.engine import DuckDBEngine
from crossgroup.group.evaluate import evaluate_batch, link_metrics, segment_agreement

PIPELINES = Path(__file__).resolve().parents[2] / "pipelines"


def tok(label: str | None) -> bytes | None:
    return None if label is None else hashlib.sha256(label.encode()).digest()[:16]


def test_link_metrics_hand_computed():
    # records 0..5; record 2 is the true person 1 but shares no identifier (unrecoverable);
    # record 5 (person 3) was wrongly merged with records 3 and 4 (person 2).
    truth = np.array([1, 1, 1, 2, 2, 3])
    recoverable = np.array([10, 10, 11, 20, 20, 30])
    predicted = np.array([1, 1, 2, 3, 3, 3])
    m = link_metrics(predicted, truth, recoverable)
    assert m["predicted_links"] == 4  # (0,1) (3,4) (3,5) (4,5)
    assert m["correct_links"] == 2
    assert m["precision"] == pytest.approx(0.5)
    assert m["true_links"] == 4  # (0,1) (0,2) (1,2) (3,4)
    assert m["recoverable_links"] == 2
    assert m["recall_recoverable"] == pytest.approx(1.0)
    assert m["recall_all_true_links"] == pytest.approx(0.5)
    assert m["meets_targets"] is False


def test_link_metrics_perfect_and_empty():
    labels = np.array([1, 1, 2, 3, 3, 3])
    m = link_metrics(labels, labels, labels)
    assert (m["precision"], m["recall_recoverable"], m["meets_targets"]) == (1.0, 1.0, True)
    singletons = np.arange(4)
    m = link_metrics(singletons, singletons, singletons)
    assert m["predicted_links"] == 0 and m["precision"] == 1.0


def test_missed_links_lower_recall():
    truth = np.array([1, 1, 1, 1])
    m = link_metrics(np.array([1, 1, 2, 2]), truth, truth)
    assert m["recall_recoverable"] == pytest.approx(2 / 6)
    assert m["precision"] == 1.0


def test_segment_agreement():
    segs = pl.DataFrame(
        {"person_id": [1, 2, 3, 4], "segment": [1, 1, 2, 2], "segment_label": ["A", "A", "B", "B"]}
    )
    same = pl.DataFrame({"person_id": [1, 2, 3, 4], "archetype": ["x", "x", "y", "y"]})
    got = segment_agreement(segs, same)
    assert got["adjusted_rand_index"] == pytest.approx(1.0)
    assert got["archetypes"]["x"] == {"main_segment": "A", "share": 1.0}
    mixed = pl.DataFrame({"person_id": [1, 2, 3, 4], "archetype": ["x", "y", "x", "y"]})
    assert segment_agreement(segs, mixed)["adjusted_rand_index"] < 0.01


LEADS = {
    "jeweler": ("Fine Jewelry", 8000.0, "boutique"),
    "beauty": ("Fragrance", 120.0, "online"),
    "wine": ("Champagne", 900.0, "boutique"),
    "fashion": ("Leather Goods", 3000.0, "online"),
}


def crafted_batch(n_persons: int = 240, seed: int = 4):
    """Persons with planted archetypes, spread over maisons, some unrecoverable, one placeholder."""
    rng = np.random.default_rng(seed)
    maisons = ["aurelle", "kessler", "vautrin"]
    ident, acts, truth = [], [], []
    archetypes = list(LEADS)
    for p in range(n_persons):
        arche = archetypes[p % len(archetypes)]
        category, spend, channel = LEADS[arche]
        at = rng.choice(maisons, size=int(rng.integers(1, 4)), replace=False)
        unrecoverable = p % 40 == 0  # a different email at every maison, no phone
        for j, m in enumerate(at):
            ref = tok(f"{m}:{p}")
            email = f"p{p}@{m}" if unrecoverable else f"p{p}@mail"
            # alternate email-only and phone-only records to force transitive links
            phone = f"+33{p}" if j > 0 and not unrecoverable else None
            if j == 2:
                email = None
            if p % 17 == 0 and m == "vautrin":
                phone = "+33-boutique"  # placeholder shared by many vautrin records
            ident.append(
                (m, ref, tok("e:" + email) if email else None, tok("p:" + phone) if phone else None)
            )
            truth.append((m, ref, p, arche))
            for month in (1, 4, 11):
                acts.append(
                    (
                        m,
                        ref,
                        date(2025, month, 1),
                        category,
                        channel,
                        1,
                        float(spend * rng.lognormal(0, 0.1)),
                    )
                )
    identities = pl.DataFrame(
        ident,
        schema={
            "maison": pl.String,
            "maison_ref": pl.Binary,
            "email_token": pl.Binary,
            "phone_token": pl.Binary,
        },
        orient="row",
    )
    activity = pl.DataFrame(
        acts,
        schema={
            "maison": pl.String,
            "maison_ref": pl.Binary,
            "month": pl.Date,
            "group_category": pl.String,
            "channel": pl.String,
            "orders": pl.Int32,
            "amount_eur": pl.Float64,
        },
        orient="row",
    )
    ref_truth = pl.DataFrame(
        truth,
        schema={
            "maison": pl.String,
            "maison_ref": pl.Binary,
            "true_person": pl.Int64,
            "archetype": pl.String,
        },
        orient="row",
    )
    return identities, activity, ref_truth


def test_evaluate_batch_end_to_end_on_crafted_truth():
    identities, activity, ref_truth = crafted_batch()
    group = GroupConfig(
        maisons=("aurelle", "kessler", "vautrin"), k_aggregate=5, n_segments=4, random_state=1
    )
    with DuckDBEngine() as engine:
        engine.register("identities", identities)
        engine.register("activity", activity)
        report = evaluate_batch(
            engine,
            "identities",
            "activity",
            ref_truth,
            group=group,
            taxonomy=load_taxonomy(PIPELINES / "taxonomy.toml"),
            as_of=date(2026, 6, 30),
        )
    links = report["links"]
    assert links["records"] == identities.height
    assert links["unmapped_records"] == 0
    assert links["precision"] == 1.0  # the placeholder linked nobody
    assert links["recall_recoverable"] == 1.0
    assert links["recall_all_true_links"] < 1.0  # the unrecoverable persons stay apart
    assert links["recoverable_links"] < links["true_links"]
    assert report["match"]["ignored_tokens"] == 1
    seg = report["segments"]
    assert seg["adjusted_rand_index"] > 0.9
    assert set(seg["archetypes"]) == set(LEADS)
    assert seg["archetypes"]["jeweler"]["main_segment"].startswith("Jewelry-led")


def test_untraceable_records_count_against_nothing_but_are_reported():
    identities, activity, ref_truth = crafted_batch(n_persons=80)
    group = GroupConfig(maisons=("aurelle",), k_aggregate=5, n_segments=4)
    with DuckDBEngine() as engine:
        engine.register("identities", identities)
        engine.register("activity", activity)
        report = evaluate_batch(
            engine,
            "identities",
            "activity",
            ref_truth.slice(5),
            group=group,
            taxonomy=load_taxonomy(PIPELINES / "taxonomy.toml"),
            as_of=date(2026, 6, 30),
        )
    assert report["links"]["unmapped_records"] == 5


def synthetic_world(root: Path, persons: int) -> Path:
    """keys, synth and exports for three maisons under `root`, through the real commands."""
    import sys

    from crossgroup.cli.app import main

    def cli(*args: str) -> None:
        sys.argv = ["crossgroup", *map(str, args)]
        try:
            main()
        except SystemExit as e:
            assert e.code in (0, None), f"crossgroup {args[0]} failed"

    argv = sys.argv
    try:
        cli("synth", "--out", root / "synth", "--maisons", "3", "--persons", persons,
            "--seed", "3", "--as-of", "2026-06-30")  # fmt: skip
        maisons = sorted(p.name for p in (root / "synth").iterdir() if p.is_dir())
        cli("keys", "init", "--dir", root / "keys", "--maisons", ",".join(maisons))
        for m in maisons:
            cli(
                "export",
                "--maison", m,
                "--customers", root / "synth" / m / "customers.parquet",
                "--purchases", root / "synth" / m / "purchases.parquet",
                "--as-of", "2026-06-30",
                "--keys", root / "keys" / m,
                "--out", root / "inbox",
            )  # fmt: skip
    finally:
        sys.argv = argv
    return root


def evaluate_args(root: Path, *extra: object) -> list[object]:
    return ["evaluate", "--synth", root / "synth", "--exports", root / "inbox",
            "--keys", root / "keys", *extra]  # fmt: skip


@pytest.fixture(scope="module")
def synthetic_batch(tmp_path_factory):
    """A world large enough for the link-quality targets to mean something (built once)."""
    return synthetic_world(tmp_path_factory.mktemp("eval"), persons=2500)


@pytest.fixture(scope="module")
def small_world(tmp_path_factory):
    """A world small enough for Spark's per-step cost (built once)."""
    return synthetic_world(tmp_path_factory.mktemp("eval-small"), persons=300)


def test_evaluate_command_scores_real_packages(run_cli, synthetic_batch):
    import json

    root = synthetic_batch
    out = root / "report" / "eval.json"
    r = run_cli(*evaluate_args(root, "--out", out))
    assert r.exit_code == 0, r.stderr
    assert "link precision" in r.stdout and "archetype ARI" in r.stdout
    figures = json.loads(out.read_text())
    links = figures["links"]
    assert links["unmapped_records"] == 0  # every exported ref traced back to the truth
    assert links["recall_recoverable"] >= 0.99
    assert links["precision"] >= 0.99
    assert links["recoverable_links"] <= links["true_links"]
    exported = sum(
        json.loads(p.read_text())["customers"]["exported"]
        for p in (root / "inbox").glob("*.summary.json")
    )
    assert links["records"] == exported
    assert figures["segments"]["n_segments"] >= 4
    # the segments carry signal about the planted archetypes: the ARI clears the best of 200
    # random labelings of the same persons into as many archetypes and segments by a margin
    # (this data gives about 0.05; random labels stay within a few thousandths of 0)
    seg = figures["segments"]
    rng = np.random.default_rng(0)
    n, k_truth = seg["persons"], len(seg["archetypes"])
    chance = max(
        adjusted_rand_score(rng.integers(0, k_truth, n), rng.integers(0, seg["n_segments"], n))
        for _ in range(200)
    )
    assert chance < 0.02
    assert seg["adjusted_rand_index"] > chance + 0.02
    # and the archetype with the most distinct sector lands in a segment led by that sector
    assert seg["archetypes"]["jewelry collector"]["main_segment"].startswith("Jewelry-led")
    assert not list((root / "report").glob(".staging-*"))


def test_evaluate_command_refuses_a_synth_dir_without_truth(run_cli, synthetic_batch, tmp_path):
    root = synthetic_batch
    r = run_cli(
        "evaluate",
        "--synth",
        tmp_path,
        "--exports",
        root / "inbox",
        "--keys",
        root / "keys",
        "--out",
        tmp_path / "eval.json",
    )
    assert r.exit_code == 2
    assert "truth" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "eval.json").exists()


@pytest.mark.spark
def test_evaluate_gives_the_same_figures_on_both_engines(run_cli, small_world, tmp_path):
    """`--engine spark` scores what a Spark run computes: persons, links, features and
    segments (so every figure but the timings) are those of the embedded engine."""
    import json

    pytest.importorskip("pyspark")
    pytest.importorskip("sqlglot")
    figures = {}
    for engine in ("duckdb", "spark"):
        out = tmp_path / f"{engine}.json"
        r = run_cli(*evaluate_args(small_world, "--engine", engine, "--out", out))
        assert r.exit_code == 0, r.stderr
        figures[engine] = json.loads(out.read_text())
        assert set(figures[engine].pop("seconds")) == {"resolve", "features", "segment"}
    assert figures["duckdb"] == figures["spark"]
    assert figures["spark"]["links"]["predicted_links"] > 0
    assert figures["spark"]["segments"]["persons"] > 0


def test_evaluate_on_spark_that_cannot_start_is_one_line_and_exit_2(small_world, tmp_path):
    """As for `process`: no Java (here a JAVA_HOME without one) stops the command with
    exit code 2 and one line saying so; nothing is written, the private workdir is gone."""
    import os
    import subprocess
    import sys

    pytest.importorskip("pyspark")
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {**os.environ, "JAVA_HOME": str(tmp_path / "no-java"), "TMPDIR": str(temp),
           "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}  # fmt: skip
    env.pop("CROSSGROUP_DEBUG", None)
    out = tmp_path / "eval.json"
    args = evaluate_args(small_world, "--engine", "spark", "--out", out)
    child = subprocess.run(
        [sys.executable, "-m", "crossgroup", *map(str, args)],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert child.returncode == 2, child.stderr
    # any lines before it are Spark's launcher script's, failing to find java
    *launcher, error = child.stderr.strip().splitlines()
    assert error.startswith("crossgroup: error: the Spark engine could not start: ")
    assert not [line for line in launcher if line.startswith("crossgroup:") or "Traceback" in line]
    assert not out.exists() and list(temp.iterdir()) == []
