"""Benchmark `crossgroup export` for one maison on synthetic data.

Generates (once, cached in --data) a synthetic group with the `synth` generator, creates demo
keys, then runs the export of one maison in a child process and reports the per-step
breakdown (read, filter, normalize, tokenize, aggregate, check, seal), the input sizes and
the peak RSS of the child (its own peak, and the sampled peak of the child with its
phone-parsing workers). Target: 1 million customers and ~10 million purchase lines of one
maison in at most 60 s with peak RSS at most 4 GiB.

Examples:
    python benchmarks/bench_export.py --persons 20000              # quick check
    python benchmarks/bench_export.py --persons 3000000 --data /tmp/bench-3m --json out.json
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from _harness import ensure_synth
from _harness import measure as measure_child

ROOT = Path(__file__).resolve().parents[1]
TARGET_SECONDS = 60.0
TARGET_RSS_BYTES = 4 * 1024**3


def run_child(args: argparse.Namespace) -> dict:
    """Export in this process (the child) and return timings, sizes and own peak RSS."""
    import polars as pl

    from crossgroup.config import load_fx, load_maison, load_taxonomy, pipelines_dir
    from crossgroup.crypto.keys import init_keys, load_party
    from crossgroup.maison.export import export_maison

    data = Path(args.data) / args.maison
    customers, purchases = data / "customers.parquet", data / "purchases.parquet"
    taxonomy = load_taxonomy()
    config_path = data / "maison.toml"
    if not config_path.is_file():
        config_path = pipelines_dir() / "maisons" / f"{args.maison}.toml"
    config = load_maison(config_path, taxonomy)
    with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
        init_keys(Path(tmp) / "keys", [args.maison])
        keys = load_party(Path(tmp) / "keys" / args.maison)
        started = time.perf_counter()
        result = export_maison(
            customers,
            purchases,
            as_of=date.fromisoformat(args.as_of),
            keys=keys,
            config=config,
            taxonomy=taxonomy,
            fx=load_fx(),
            out_dir=Path(tmp) / "out",
        )
        total = time.perf_counter() - started
        package_bytes = result.package_path.stat().st_size
    return {
        "maison": args.maison,
        "customers": pl.scan_parquet(customers).select(pl.len()).collect().item(),
        "purchase_lines": pl.scan_parquet(purchases).select(pl.len()).collect().item(),
        "exported_customers": result.summary["customers"]["exported"],
        "exported_purchase_lines": result.summary["purchases"]["exported"],
        "activity_rows": result.summary["activity_rows"],
        "package_bytes": package_bytes,
        "seconds_total": round(total, 3),
        "timings": {k: round(v, 3) for k, v in result.timings.items()},
        "child_peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }


def measure(args: argparse.Namespace) -> dict:
    """Run the child, measured from outside (its own and its workers' peak RSS)."""
    cmd = [sys.executable, __file__, "--child", "--data", str(args.data),
           "--maison", args.maison, "--as-of", args.as_of]  # fmt: skip
    run = measure_child(cmd, label="export child", env={"PYTHONUNBUFFERED": "1"})
    report = json.loads(run.stdout.strip().splitlines()[-1])
    report["tree_peak_pss_bytes_sampled"] = run.tree_pss_bytes
    peak = max(report["child_peak_rss_bytes"], run.tree_pss_bytes)
    report["within_targets"] = (
        report["seconds_total"] <= TARGET_SECONDS and peak <= TARGET_RSS_BYTES
    )
    return report


def print_report(r: dict) -> None:
    gib = 1024**3
    print(f"maison {r['maison']}: {r['customers']:,} customers, "
          f"{r['purchase_lines']:,} purchase lines")  # fmt: skip
    print(f"exported {r['exported_customers']:,} customers, "
          f"{r['exported_purchase_lines']:,} lines -> {r['activity_rows']:,} activity rows, "
          f"package {r['package_bytes'] / 1024**2:.1f} MiB")  # fmt: skip
    for step, seconds in r["timings"].items():  # pipeline order (export.STEPS)
        print(f"  {step:<10} {seconds:8.2f} s")
    print(f"  {'total':<10} {r['seconds_total']:8.2f} s   (target <= {TARGET_SECONDS:.0f} s)")
    print(f"peak memory: child RSS {r['child_peak_rss_bytes'] / gib:.2f} GiB, child + workers PSS "
          f"{r['tree_peak_pss_bytes_sampled'] / gib:.2f} GiB (target <= 4 GiB)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=20_000, help="synth persons (group-wide)")
    parser.add_argument("--maisons", type=int, default=8, help="maisons in the synth group")
    parser.add_argument("--maison", default="aurelle", help="the maison whose export is timed")
    parser.add_argument("--seed", type=int, default=20260930)
    parser.add_argument("--as-of", default="2026-09-30")
    parser.add_argument("--data", type=Path, default=None, help="synth cache folder")
    parser.add_argument("--json", type=Path, default=None, help="also write the report here")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_child(args)))
        return
    default = f"crossgroup-bench-{args.persons}-{args.maisons}"
    args.data = args.data or Path(tempfile.gettempdir()) / default
    ensure_synth(args.data, args.persons, args.maisons, args.seed, date.fromisoformat(args.as_of))
    report = measure(args)
    print_report(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
