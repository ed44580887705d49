"""Benchmark `crossgroup synth`: wall time, throughput and peak memory per number of persons.

Each size runs `python -m crossgroup synth` in its own child process, measured from outside
(`benchmarks/_harness.py`: wait4 gives exactly that child's peak RSS). Purchase lines are
counted from the Parquet footers. Memory should stay flat as persons grow (chunked writing).

Examples:
    python benchmarks/bench_synth.py 100000                      # quick check
    python benchmarks/bench_synth.py 100000 1000000 --json benchmarks/results/synth.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

import pyarrow.parquet as pq

from _harness import measure

ROOT = Path(__file__).resolve().parents[1]


def _rows(path: Path) -> int:
    return pq.ParquetFile(path).metadata.num_rows


def run_size(persons: int, seed: int, workdir: Path) -> dict:
    """Generate `persons` persons into a fresh folder; return what was measured."""
    out = workdir / f"synth-{persons}"
    command = [
        sys.executable, "-m", "crossgroup", "synth",
        "--out", str(out), "--persons", str(persons), "--seed", str(seed),
    ]  # fmt: skip
    run = measure(command, label="synth")
    seconds, peak_kib = run.wall_s, run.peak_rss_bytes / 1024
    customers = sum(_rows(p) for p in out.glob("*/customers.parquet"))
    lines = sum(_rows(p) for p in out.glob("*/purchases.parquet"))
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    return {
        "persons": persons,
        "customers": customers,
        "purchase_lines": lines,
        "seconds": round(seconds, 2),
        "persons_per_s": round(persons / seconds),
        "lines_per_s": round(lines / seconds),
        "peak_rss_mib": round(peak_kib / 1024, 1),
        "output_mib": round(size / 2**20, 1),
    }


def print_table(results: list[dict]) -> None:
    head = f"{'persons':>11} {'lines':>12} {'seconds':>8} {'persons/s':>10} {'lines/s':>10}"
    print(head + f" {'peak RSS MiB':>12} {'output MiB':>10}")
    for r in results:
        print(
            f"{r['persons']:>11,} {r['purchase_lines']:>12,} {r['seconds']:>8.1f} "
            f"{r['persons_per_s']:>10,} {r['lines_per_s']:>10,} "
            f"{r['peak_rss_mib']:>12,.0f} {r['output_mib']:>10,.0f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("persons", nargs="*", type=int, default=[100_000, 1_000_000])
    parser.add_argument("--seed", type=int, default=20260930)
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks/results/synth.json")
    parser.add_argument("--workdir", type=Path, help="Keep outputs here (default: a temp dir).")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-synth-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        results = [run_size(n, args.seed, workdir) for n in args.persons]
    print_table(results)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "benchmark": "synth",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "results": results,
    }
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
