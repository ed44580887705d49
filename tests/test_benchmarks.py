"""The benchmark harness and the pandas peer at a tiny size, so neither rots unnoticed.

Runs `benchmarks/run.py` end to end (synth, every export, process, every import as measured
child processes, then the peer) on 1,000 persons of 2 maisons, into a temporary folder.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

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
