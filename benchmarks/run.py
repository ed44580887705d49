"""The benchmark harness: the whole crossgroup flow at one scale, a pandas peer, and ceilings.

Generates the synthetic group once (cached under benchmarks/data/<scale>-<seed>/, not timed),
then runs every stage of the real flow as a child process and measures it from outside (wall,
CPU, peak RSS): `crossgroup export` per maison, `crossgroup process`, `crossgroup import` per
maison. In the same run: the plain pandas peer (benchmarks/peers/pandas_flow.py) on the same
files, and the ceilings (benchmarks/_ceilings.py). Writes benchmarks/results/<stamp>-<scale>.json,
appends a row to benchmarks/results/results.md and redraws benchmarks/scaling.png.

`--engine spark` runs the flow's process step on Spark (local mode, from the pipeline);
`--engine both` runs the flow on DuckDB, then the process step again on Spark over an untouched
copy of the same inbox, and records both, their time ratio and whether the returns are the same
(benchmarks/_engines.py).

    python benchmarks/run.py --scale S              # 50k persons, a few minutes
    python benchmarks/run.py --scale M              # 1M persons, ~10M purchase lines
    python benchmarks/run.py --scale S --engine both   # Spark against DuckDB in one run
    python benchmarks/run.py --persons 5000 --maisons 2 --no-ceilings   # a quick check
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import _ceilings
import _engines
import chart
from _harness import GIB, ROOT, crossgroup_cmd, ensure_synth, measure, synth_maisons
from _results import report, write_results

SCALES = {"S": 50_000, "M": 1_000_000, "L": 10_000_000}
AS_OF = date(2026, 9, 30)
SEED = 20260930
RESULTS = ROOT / "benchmarks/results"
# the targets on the 2-core reference machine (issue 13, speed; issue 5, utility)
TARGET_M_END_TO_END_S = 35.0
TARGET_PEER_RATIO_M = 2.5  # peer ÷ (exports + process + imports)
TARGET_PEER_RATIO_S = 1.0  # ahead of the peer at S too
TARGET_L_END_TO_END_S = 300.0
TARGET_L_PEAK_GIB = 8.0
TARGET_GENERALIZED_SHARE_M = 0.05  # rows carrying a coarsened or blank attribute


def step_times(stdout: str) -> dict[str, float]:
    """The export's own step timings, from the `Step times:` line it prints."""
    line = next((ln for ln in stdout.splitlines() if ln.startswith("Step times:")), "")
    return {k: float(v) for k, v in re.findall(r"(\w+) ([0-9.]+) s", line)}


def _total(runs: list[dict]) -> dict:
    return {
        "wall_s": round(sum(r["wall_s"] for r in runs), 3),
        "cpu_s": round(sum(r["cpu_s"] for r in runs), 3),
        "peak_bytes": max(r["peak_bytes"] for r in runs),
        "slowest_maison_wall_s": max(r["wall_s"] for r in runs),
    }


def _record(run) -> dict:
    return {**run.record(), "peak_bytes": run.peak_bytes}


def run_flow(
    data: Path, work: Path, as_of: date, engine: str = "duckdb", spare: Path | None = None
) -> dict:
    """keys init (not timed), then every export, the process run (on `engine`) and every import,
    measured; with `spare`, an untouched copy of the processor keys and inbox is kept there."""
    maisons = synth_maisons(data)
    keys = work / "keys"
    measure(crossgroup_cmd("keys", "init", "--dir", keys, "--maisons", ",".join(maisons)))
    inbox = work / "inbox"
    inbox.mkdir(parents=True)
    exports = {}
    for m in maisons:
        out = work / "outbox" / m
        run = measure(
            crossgroup_cmd(
                "export",
                "--maison",
                m,
                "--customers",
                data / m / "customers.parquet",
                "--purchases",
                data / m / "purchases.parquet",
                "--as-of",
                as_of.isoformat(),
                "--keys",
                keys / m,
                "--out",
                out,
                "--config",
                data / m / "maison.toml",
            ),
            label="export",
        )
        package = next(out.glob("*.cgpkg"))
        summary = json.loads(package.with_name(package.name + ".summary.json").read_text())
        os.link(package, inbox / package.name)
        exports[m] = {
            **_record(run),
            "steps_s": step_times(run.stdout),
            "exported_customers": summary["customers"]["exported"],
            "activity_rows": summary["activity_rows"],
            "package_bytes": package.stat().st_size,
        }
    if spare is not None:
        _engines.keep_untouched(keys / "processor", inbox, spare)
    processed = work / "processed"
    process = _engines.process_step(inbox, keys / "processor", processed, work / "tmp", engine)
    imports = {}
    for m in maisons:
        package = next((processed / "returns" / m).glob("*.cgpkg"))
        run = measure(
            crossgroup_cmd(
                "import",
                "--maison",
                m,
                "--package",
                package,
                "--customers",
                data / m / "customers.parquet",
                "--keys",
                keys / m,
                "--out",
                work / "analyst" / m,
            ),
            label="import",
        )
        imports[m] = _record(run)
    stages = {
        "export": {"per_maison": exports, **_total(list(exports.values()))},
        "process": process,
        "import": {"per_maison": imports, **_total(list(imports.values()))},
    }
    stages["utility"] = returned_utility(work / "analyst")
    parts = [stages["export"], process, stages["import"]]
    stages["end_to_end"] = {
        "wall_s": round(sum(p["wall_s"] for p in parts), 3),
        "cpu_s": round(sum(p["cpu_s"] for p in parts), 3),
        "peak_bytes": max(p["peak_bytes"] for p in parts),
    }
    return stages


def returned_utility(analyst: Path) -> dict:
    """What k-anonymity cost: the share of returned rows with an attribute coarsened or blank."""
    import polars as pl

    rows = pl.scan_parquet(sorted(analyst.glob("*/segments.parquet"))).select(
        pl.len().alias("rows"), (pl.col("generalized") != "").sum().alias("generalized")
    )
    counts = rows.collect().row(0, named=True)
    share = counts["generalized"] / counts["rows"] if counts["rows"] else 0.0
    return {**counts, "generalized_share": round(share, 4)}


def run_peer(data: Path, work: Path, as_of: date) -> dict:
    """The pandas peer as a child, measured the same way; its own JSON beside the figures."""
    out = work / "peer.json"
    run = measure(
        [
            sys.executable,
            str(ROOT / "benchmarks/peers/pandas_flow.py"),
            "--data",
            str(data),
            "--as-of",
            as_of.isoformat(),
            "--json",
            str(out),
        ],
        label="pandas peer",
    )
    return {**_record(run), **json.loads(out.read_text())}


def compare(flow: dict, peer: dict) -> dict:
    """Speed ratios, and the checks that both sides computed the same thing."""
    exports = flow["export"]["per_maison"]
    ours = sum(e["exported_customers"] for e in exports.values())
    theirs = sum(peer["exported_customers"].values())
    persons = flow["process"]["persons"]
    core = flow["export"]["wall_s"] + flow["process"]["wall_s"]
    checks = {
        "exported_customers": {"crossgroup": ours, "peer": theirs},
        "activity_rows": {
            "crossgroup": sum(e["activity_rows"] for e in exports.values()),
            "peer": sum(peer["activity_rows"].values()),
        },
        "persons": {"crossgroup": persons, "peer": peer["persons"]},
    }
    for figures in checks.values():
        a, b = figures["crossgroup"], figures["peer"]
        figures["relative_gap"] = round(abs(a - b) / max(a, 1), 4)
    return {
        # exports + process: the same computation, plus crossgroup's sealing, verification,
        # generalization and release, which the peer does not do
        "peer_over_export_process": round(peer["wall_s"] / core, 2),
        "peer_over_end_to_end": round(peer["wall_s"] / flow["end_to_end"]["wall_s"], 2),
        "checks": checks,
        "comparable": all(f["relative_gap"] <= 0.02 for f in checks.values()),
    }


def ceiling_ratios(flow: dict, ceilings: dict) -> dict:
    """Where each stage stands against its ceiling."""
    mib = sum(e["package_bytes"] for e in flow["export"]["per_maison"].values()) / 2**20
    seal = sum(e["steps_s"].get("seal", 0.0) for e in flow["export"]["per_maison"].values())
    stages = flow["process"]["stages_s"]
    scan = ceilings["duckdb_scan"]
    tokens = ceilings["tokenization"]
    openssl = tokens.get("openssl_hmac_per_s_one_core")
    return {
        "package_mib": round(mib, 2),
        "seal_mib_per_s": round(mib / seal, 1) if seal else None,
        "verify_decrypt_mib_per_s": round(mib / (stages["verify"] + stages["decrypt"]), 1),
        "aes_gcm_mib_per_s": ceilings["aes_gcm"]["encrypt_mib_per_s"],
        "resolve_s": stages["resolve"],
        "identities_scan_s": scan["identities_scan_s"],
        "resolve_over_scan": round(stages["resolve"] / max(scan["identities_scan_s"], 1e-9), 1),
        "features_s": stages["features"],
        "activity_scan_s": scan["activity_scan_s"],
        "tokens_vs_hmac_loop": tokens["ratio_tokens_vs_loop"],
        "kernel_vs_openssl_one_core": (
            round(tokens["kernel_only_per_s"] / openssl, 2) if openssl else None
        ),
    }


def targets(result: dict) -> dict:
    """The targets this run can judge (absent: not applicable at this scale)."""
    scale, e2e = result["scale"], result["stages"]["end_to_end"]
    peer = (result.get("comparison") or {}).get("peer_over_end_to_end")
    out: dict = {}
    if result["stages"]["process"]["engine"] != "duckdb":
        return out  # issue 13's targets are the embedded engine's
    if scale == "S" and peer is not None:
        out["s_ahead_of_peer"] = peer > TARGET_PEER_RATIO_S
    if scale == "M":
        out["m_end_to_end_le_35_s"] = e2e["wall_s"] <= TARGET_M_END_TO_END_S
        if peer is not None:
            out["m_peer_over_end_to_end_ge_2_5"] = peer >= TARGET_PEER_RATIO_M
        share = result["stages"]["utility"]["generalized_share"]
        out["m_generalized_rows_le_5_percent"] = share <= TARGET_GENERALIZED_SHARE_M
    if scale == "L":
        out["l_end_to_end_le_300_s"] = e2e["wall_s"] <= TARGET_L_END_TO_END_S
        out["l_peak_rss_le_8_gib"] = e2e["peak_bytes"] <= TARGET_L_PEAK_GIB * GIB
    return out


def machine(engine: str = "duckdb") -> dict:
    mem = next(ln for ln in Path("/proc/meminfo").read_text().splitlines() if "MemTotal" in ln)
    import duckdb
    import polars

    info = {
        "cpus": os.cpu_count(),
        "memory_gib": round(int(mem.split()[1]) / 2**20, 1),
        "python": platform.python_version(),
        "polars": polars.__version__,
        "duckdb": duckdb.__version__,
    }
    if engine != "duckdb":
        from importlib.metadata import version

        java = subprocess.run(["java", "-version"], capture_output=True, text=True, check=False)
        info["pyspark"] = version("pyspark")
        info["java"] = (java.stderr.splitlines() or [""])[0]
    return {**info, "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", choices=sorted(SCALES), default="S")
    ap.add_argument("--persons", type=int, help="a custom size instead of --scale")
    ap.add_argument("--maisons", type=int, default=8)
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument(
        "--engine",
        choices=(*_engines.ENGINES, "both"),
        default="duckdb",
        help="the engine of the process step; both: the flow on duckdb, then the process step "
        "on spark over the same inbox, with their time ratio and a check of the returns",
    )
    ap.add_argument("--data-root", type=Path, default=ROOT / "benchmarks/data")
    ap.add_argument("--work-root", type=Path, default=ROOT / "benchmarks/work")
    ap.add_argument("--results", type=Path, default=RESULTS)
    ap.add_argument("--chart", type=Path, default=ROOT / "benchmarks/scaling.png")
    ap.add_argument(
        "--peer",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="run the pandas peer (default: at S, M and custom sizes, not at L)",
    )
    ap.add_argument("--ceilings", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--keep-work", action="store_true", help="keep keys, packages and outputs")
    args = ap.parse_args()
    scale = "custom" if args.persons else args.scale
    persons = args.persons or SCALES[args.scale]
    peer_on = args.peer if args.peer is not None else scale != "L"
    data = args.data_root / f"{scale if scale != 'custom' else persons}-{args.seed}"
    if args.maisons != 8:
        data = data.with_name(f"{data.name}-{args.maisons}m")
    started = datetime.now(UTC)
    info = machine(args.engine)
    synth = ensure_synth(data, persons, args.maisons, args.seed, AS_OF)
    work = args.work_root / started.strftime("%Y%m%dT%H%M%S")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        flow_engine = "duckdb" if args.engine == "both" else args.engine
        spare = work / "spare" if args.engine == "both" else None
        print(
            f"flow: {scale} ({persons:,} persons, {synth['purchase_lines']:,} lines), "
            f"process on {flow_engine}"
        )
        result: dict = {
            "benchmark": "flow",
            "engine": args.engine,
            "scale": scale,
            "persons": persons,
            "maisons": args.maisons,
            "seed": args.seed,
            "as_of": AS_OF.isoformat(),
            "started_at": started.isoformat(timespec="seconds"),
            "machine": info,
            "data": {k: synth[k] for k in ("customers", "purchase_lines")},
            "stages": run_flow(data, work, AS_OF, flow_engine, spare),
        }
        if spare is not None:
            print("engines: the process step again on spark, over the same inbox")
            result["engine_comparison"] = _engines.compare_engines(
                work, spare, result["stages"]["process"]
            )
        if peer_on:
            print("peer: pandas flow")
            result["peer"] = run_peer(data, work, AS_OF)
            result["comparison"] = compare(result["stages"], result["peer"])
        if args.ceilings:
            print("ceilings: tokens, AES-GCM, DuckDB scan")
            outbox = work / "outbox"
            packages = {m.name: next(m.glob("*.cgpkg")) for m in sorted(outbox.iterdir())}
            result["ceilings"] = _ceilings.measure_all(
                packages,
                work / "keys" / "processor",
                work,
                token_values=1_000_000 if persons >= SCALES["S"] else 20_000,
                token_phones=20_000 if persons >= SCALES["S"] else 2_000,
            )
            result["against_ceilings"] = ceiling_ratios(result["stages"], result["ceilings"])
    finally:
        if not args.keep_work:
            shutil.rmtree(work, ignore_errors=True)
    result["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    result["targets"] = targets(result)
    path = write_results(result, args.results)
    chart.draw(chart.load_results(args.results), args.chart)
    print(report(result))
    print(f"wrote {path}, {args.results / 'results.md'} and {args.chart}")


if __name__ == "__main__":
    main()
