"""The process step on a chosen engine, and DuckDB against Spark on the same inbox in one run.

`run.py --engine both` runs the flow on DuckDB, then `crossgroup process --engine spark` on an
untouched copy of the processor keys and inbox taken before the flow's own process step (a
run consumes its inbox and records its packages in the replay ledger), measured the same way.
Both engines' returns are then opened with each maison's keys (not timed) and compared table
by table through digests of their content, as are the group reports and the audit counts.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from _harness import crossgroup_cmd, measure

ENGINES = ("duckdb", "spark")
PROCESS_STAGES = ("verify", "decrypt", "resolve", "features", "segment", "generalize", "release")


def audit_entry(processed: Path) -> dict:
    """The last audit-log entry of a process run: its timings, counts and settings."""
    return json.loads((processed / "audit.jsonl").read_text().splitlines()[-1])


def process_step(inbox: Path, processor_keys: Path, out: Path, tmp: Path, engine: str) -> dict:
    """`crossgroup process --engine ENGINE` as a measured child; stage times from its audit."""
    tmp.mkdir(parents=True, exist_ok=True)
    cmd = crossgroup_cmd("process", "--inbox", inbox, "--keys", processor_keys, "--out", out)
    # a world of fewer than the pipeline's eight maisons (--maisons N) is a batch without the rest
    cmd += ["--allow-missing"]
    run = measure([*cmd, "--work-dir", str(tmp), "--engine", engine], label="process")
    entry = audit_entry(out)
    stages = {k: round(entry["timings"][k], 3) for k in PROCESS_STAGES if k in entry["timings"]}
    return {
        **run.record(),
        "peak_bytes": run.peak_bytes,
        "engine": entry["settings"]["engine"],
        "stages_s": stages,
        # start-up and shut-down: imports, keys, and Spark's session (its JVM) when it runs
        "outside_stages_s": round(run.wall_s - sum(stages.values()), 3),
        "persons": entry["counts"]["persons"],
        "records": entry["counts"]["records"],
        "segments": entry["counts"]["segments"],
    }


def keep_untouched(processor_keys: Path, inbox: Path, spare: Path) -> None:
    """Copy the processor keys and hard-link the inbox into `spare`, before a run uses them."""
    shutil.copytree(processor_keys, spare / "processor")
    shutil.copytree(inbox, spare / "inbox", copy_function=os.link)


def _digest(path: Path) -> str:
    """The content of one Parquet table: its schema and its rows in order, as CSV text (bytes
    columns, such as maison_ref, in hex)."""
    import polars as pl

    frame = pl.read_parquet(path)
    text = frame.with_columns(pl.col(pl.Binary).bin.encode("hex")).write_csv()
    return hashlib.sha256(f"{frame.schema}\n{text}".encode()).hexdigest()


def return_digests(processed: Path, keys: Path, opened: Path) -> dict[str, str]:
    """`maison/table` -> digest of every table of every return, opened with the maison's keys."""
    digests = {}
    for package in sorted((processed / "returns").glob("*/*.cgpkg")):
        maison = package.parent.name
        folder = opened / maison
        cmd = crossgroup_cmd("open", "--package", package, "--keys", keys / maison, "--out", folder)
        measure(cmd, label="open")
        for table in sorted(folder.glob("*.parquet")):
            digests[f"{maison}/{table.stem}"] = _digest(table)
    return digests


def report_digests(processed: Path) -> dict[str, str]:
    return {p.stem: _digest(p) for p in sorted((processed / "reports").glob("*.parquet"))}


def _overall(digests: dict[str, str]) -> str:
    return hashlib.sha256(
        "".join(f"{k} {v}\n" for k, v in sorted(digests.items())).encode()
    ).hexdigest()


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 2) if b else None


def compare_engines(work: Path, spare: Path, duckdb: dict) -> dict:
    """Process the untouched copy on Spark, then compare with the flow's DuckDB run."""
    spark = process_step(
        spare / "inbox", spare / "processor", work / "processed-spark", work / "tmp-spark", "spark"
    )
    processed = {"duckdb": work / "processed", "spark": work / "processed-spark"}
    returns = {e: return_digests(processed[e], work / "keys", work / "opened" / e) for e in ENGINES}
    reports = {e: report_digests(processed[e]) for e in ENGINES}
    counts = {e: audit_entry(processed[e])["counts"] for e in ENGINES}
    differing = sorted(
        name
        for name in returns["duckdb"].keys() | returns["spark"].keys()
        if returns["duckdb"].get(name) != returns["spark"].get(name)
    )
    return {
        "duckdb": duckdb,
        "spark": spark,
        "spark_over_duckdb": {
            "wall_s": _ratio(spark["wall_s"], duckdb["wall_s"]),
            "cpu_s": _ratio(spark["cpu_s"], duckdb["cpu_s"]),
            "peak_bytes": _ratio(spark["peak_bytes"], duckdb["peak_bytes"]),
            "stages_s": {
                k: _ratio(v, duckdb["stages_s"].get(k, 0.0)) for k, v in spark["stages_s"].items()
            },
            "outside_stages_s": _ratio(spark["outside_stages_s"], duckdb["outside_stages_s"]),
        },
        "returns": {
            "tables": len(returns["duckdb"]),
            "identical": not differing and bool(returns["duckdb"]),
            "differing_tables": differing,
            "digest": {e: _overall(returns[e]) for e in ENGINES},
        },
        "reports_identical": reports["duckdb"] == reports["spark"],
        "counts_identical": counts["duckdb"] == counts["spark"],
    }
