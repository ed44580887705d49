"""The benchmark harness and the pandas peer at a tiny size, so neither rots unnoticed.

Runs `benchmarks/run.py` end to end (synth, every export, process, every import as measured
child processes, then the peer) on 1,000 persons of 2 maisons, into a temporary folder; with
`--engine both` (slow, Spark) the process step again on Spark, compared with DuckDB's.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))


def test_harness_and_peer_at_a_tiny_size(tmp_path, monkeypatch, capsys):
    import run

    results, chart = tmp_path / "results", tmp_path / "scaling.png"
    argv = [
        "run.py",
        "--persons",
        "1000",
        "--maisons",
        "2",
        "--no-ceilings",
        "--data-root",
        str(tmp_path / "data"),
        "--work-root",
        str(tmp_path / "work"),
        "--results",
        str(results),
        "--chart",
        str(chart),
    ]
    monkeypatch.setattr(sys, "argv", argv)
    run.main()

    (path,) = results.glob("*-custom.json")
    result = json.loads(path.read_text())
    stages = result["stages"]
    assert set(stages["export"]["per_maison"]) == {"aurelle", "kessler"}
    for measured in (
        *stages["export"]["per_maison"].values(),
        stages["process"],
        *stages["import"]["per_maison"].values(),
    ):
        # measured from outside: a real child's wall, CPU and resident memory
        assert measured["returncode"] == 0
        assert measured["wall_s"] > 0 and measured["cpu_s"] > 0
        assert measured["peak_rss_bytes"] > 50 * 2**20
    export = stages["export"]["per_maison"]["aurelle"]
    assert set(export["steps_s"]) >= {"read", "filter", "tokenize", "seal"}
    assert set(stages["process"]["stages_s"]) >= {"verify", "resolve", "segment", "release"}
    parts = stages["export"]["wall_s"] + stages["process"]["wall_s"] + stages["import"]["wall_s"]
    assert abs(stages["end_to_end"]["wall_s"] - parts) < 0.01

    # the peer computed the same thing: same customers, same activity cells, same persons
    checks = result["comparison"]["checks"]
    assert checks["exported_customers"]["relative_gap"] == 0
    assert checks["activity_rows"]["relative_gap"] == 0
    assert checks["persons"]["relative_gap"] <= 0.02
    assert result["comparison"]["comparable"] is True
    assert result["peer"]["segmented"] == result["peer"]["persons"] > 0

    table = (results / "results.md").read_text().splitlines()
    assert table[-1].startswith("| ") and "| custom | 1,000 |" in table[-1]
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not any((tmp_path / "work").iterdir())  # keys, packages and outputs cleaned up


def _flow_args(tmp_path: Path, *extra: str) -> list[str]:
    return [
        "run.py", "--persons", "1000", "--maisons", "2", "--no-ceilings", "--no-peer",
        "--data-root", str(tmp_path / "data"), "--work-root", str(tmp_path / "work"),
        "--results", str(tmp_path / "results"), "--chart", str(tmp_path / "scaling.png"), *extra,
    ]  # fmt: skip


@pytest.mark.slow
@pytest.mark.spark
def test_engine_both_times_spark_against_duckdb_on_the_same_inbox(tmp_path, monkeypatch):
    """`--engine both`: the flow on DuckDB, the process step again on Spark over an untouched
    copy of its inbox, both measured, and their decrypted returns the same."""
    pytest.importorskip("pyspark")
    import run

    monkeypatch.setattr(sys, "argv", _flow_args(tmp_path, "--engine", "both"))
    run.main()

    (path,) = (tmp_path / "results").glob("*-custom-both.json")
    result = json.loads(path.read_text())
    assert result["engine"] == "both" and result["stages"]["process"]["engine"] == "duckdb"
    compared = result["engine_comparison"]
    assert (compared["duckdb"]["engine"], compared["spark"]["engine"]) == ("duckdb", "spark")
    assert compared["duckdb"] == result["stages"]["process"]
    # the JVM outlives the measured child: adopted and reaped, its CPU is counted
    assert compared["spark"]["cpu_s"] > 2 * compared["duckdb"]["cpu_s"]
    assert compared["spark_over_duckdb"]["wall_s"] > 0
    assert set(compared["spark_over_duckdb"]["stages_s"]) >= {"resolve", "features", "release"}
    returns = compared["returns"]
    assert returns["identical"] and returns["tables"] >= 2 * 3  # segments, aggregates, ...
    assert returns["digest"]["duckdb"] == returns["digest"]["spark"]
    assert compared["reports_identical"] and compared["counts_identical"]
    assert "custom both (spark process " in (tmp_path / "results" / "results.md").read_text()
    assert not any((tmp_path / "work").iterdir())


def test_a_spark_flow_is_labelled_and_kept_off_the_duckdb_curves():
    """Results name the engine (file, results.md row) and the chart's curves stay DuckDB's."""
    import chart
    from _results import results_row, scale_label

    def flow(engine: str, process_engine: str, persons: int, started: str) -> dict:
        stage = {"wall_s": 1.0, "cpu_s": 1.0, "peak_bytes": 2**30}
        return {
            "benchmark": "flow", "engine": engine, "scale": "S", "persons": persons,
            "started_at": started, "data": {"purchase_lines": 10 * persons},
            "machine": {"load_average_at_start": [1.0, 1.0, 1.0], "cpus": 2},
            "stages": {"export": stage, "import": stage, "end_to_end": stage,
                       "process": {**stage, "engine": process_engine}},
        }  # fmt: skip

    older = {**flow("duckdb", "duckdb", 50_000, "2026-12-01T10:00:00+00:00")}
    del older["engine"], older["stages"]["process"]["engine"]  # a result from before engines
    spark = flow("spark", "spark", 50_000, "2026-12-01T11:00:00+00:00")
    both = flow("both", "duckdb", 1_000, "2026-12-01T12:00:00+00:00")
    both["engine_comparison"] = {"spark_over_duckdb": {"wall_s": 3.25}}
    assert [scale_label(r) for r in (older, spark, both)] == ["S", "S spark", "S both"]
    assert "| S spark | 50,000 |" in results_row(spark)
    assert "| S both (spark process 3.25×) | 1,000 |" in results_row(both)
    assert chart.latest_per_size([older, spark, both]) == [both, older]


def test_dp_accuracy_at_a_tiny_size(tmp_path, monkeypatch, capsys):
    """bench_dp_accuracy.py end to end on 2,000 persons of 3 maisons: its redraws agree with
    the cells `noisy_group_cells` returned (it exits otherwise), and every figure is a share."""
    import bench_dp_accuracy

    out = tmp_path / "dp.json"
    argv = ["bench_dp_accuracy.py", "--persons", "2000", "--maisons", "3", "--draws", "3",
            "--data-root", str(tmp_path / "data"), "--work-root", str(tmp_path / "work"),
            "--out", str(out)]  # fmt: skip
    monkeypatch.setattr(sys, "argv", argv)
    bench_dp_accuracy.main()
    result = json.loads(out.read_text())
    redrawn = result["dp"]["redrawn"]
    assert redrawn["draws"] == 3 and redrawn["exact_persons_outside_grid"] == 0
    assert redrawn["persons_counted"] == result["data"]["persons_resolved"]
    assert redrawn["noise"]["threshold"] == pytest.approx(50 + redrawn["noise"]["margin_95"])
    assert result["dp"]["run"]["returns_identical_to_report"]
    overall = redrawn["tables"]["(all group tables)"]
    assert 0 <= overall["withheld_noisy_threshold"] <= overall["withheld_any_reason"] <= 1
    threshold = result["threshold"]
    assert len(threshold["returns"]) == 3
    assert 0 <= threshold["report"]["(all group tables)"]["suppressed_share"] <= 1
    assert not list((tmp_path / "work").iterdir())  # keys, packages and outputs removed
    assert "med rel err" in capsys.readouterr().out
