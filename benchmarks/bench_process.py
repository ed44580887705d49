"""Benchmark `crossgroup process`: wall time, per-stage breakdown and peak RSS of the child.

Either point it at an existing inbox and processor key dir, or let it build one from
`crossgroup synth` + `keys init` + `export` at a given size (the build is not timed):

    python benchmarks/bench_process.py --persons 20000 --maisons 4 --workdir /tmp/bench-process
    python benchmarks/bench_process.py --inbox INBOX --keys KEYDIR/processor
    python benchmarks/bench_process.py --persons 20000 --maisons 4 --engine spark

Target (DESIGN §8, issue 5): 1M persons across 8 maisons (about 10M purchase lines before
export) in <= 60 s wall time with peak RSS <= 6 GiB. Each run uses a fresh copy of the
processor key directory, so its replay ledger does not refuse a second run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _harness import measure

AS_OF = "2026-06-30"


def crossgroup(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "crossgroup", *map(str, args)], check=True)


def build_inbox(workdir: Path, persons: int, maisons: int, seed: int) -> tuple[Path, Path]:
    """synth -> keys init -> export per maison; returns (inbox, processor key dir)."""
    synth, keys, inbox = workdir / "synth", workdir / "keys", workdir / "inbox"
    if inbox.is_dir() and any(inbox.glob("*.cgpkg")):
        return inbox, keys / "processor"
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    t = time.perf_counter()
    crossgroup("synth", "--out", synth, "--maisons", maisons, "--persons", persons,
               "--seed", seed, "--as-of", AS_OF)  # fmt: skip
    ids = sorted(p.name for p in synth.iterdir() if (p / "maison.toml").is_file())
    crossgroup("keys", "init", "--dir", keys, "--maisons", ",".join(ids))
    for m in ids:
        src = synth / m
        crossgroup("export", "--maison", m, "--customers", src / "customers.parquet",
                   "--purchases", src / "purchases.parquet", "--as-of", AS_OF,
                   "--keys", keys / m, "--out", inbox, "--config", src / "maison.toml")  # fmt: skip
    print(f"built inbox for {len(ids)} maisons in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    return inbox, keys / "processor"


def run_once(inbox: Path, processor_keys: Path, pipeline: Path | None, engine: str | None) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-process-") as tmp:
        keys = Path(tmp) / "processor"
        shutil.copytree(processor_keys, keys)
        (keys / "ledger.jsonl").unlink(missing_ok=True)  # a fresh replay ledger per run
        out = Path(tmp) / "out"
        # --allow-missing: a world of fewer than the pipeline's eight maisons (--maisons N)
        cmd = [sys.executable, "-m", "crossgroup", "process", "--inbox", str(inbox),
               "--keys", str(keys), "--out", str(out), "--work-dir", tmp,
               "--allow-missing"]  # fmt: skip
        if pipeline:
            cmd += ["--pipeline", str(pipeline)]
        if engine:
            cmd += ["--engine", engine]
        run = measure(cmd, label="process")
        wall, peak_kib = run.wall_s, run.peak_rss_bytes / 1024
        entry = json.loads((out / "audit.jsonl").read_text().splitlines()[-1])
    return {
        "engine": entry["settings"]["engine"],
        "wall_s": round(wall, 2),
        "peak_rss_mib": round(peak_kib / 1024, 1),
        "stages_s": entry["timings"],
        "persons": entry["counts"]["persons"],
        "records": entry["counts"]["records"],
        "persons_generalized_share": round(
            entry["counts"]["persons_generalized"] / max(entry["counts"]["persons"], 1), 4
        ),
        "persons_withheld": entry["counts"]["persons_withheld"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inbox", type=Path)
    parser.add_argument("--keys", type=Path, help="processor key directory (with --inbox)")
    parser.add_argument("--pipeline", type=Path)
    parser.add_argument(
        "--engine", choices=("duckdb", "spark"), help="default: the pipeline's [engine] kind"
    )
    parser.add_argument("--persons", type=int, default=20_000)
    parser.add_argument("--maisons", type=int, default=8)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workdir", type=Path, default=Path("bench-process-data"))
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    if args.inbox:
        if not args.keys:
            parser.error("--inbox needs --keys KEYDIR/processor")
        inbox, keys = args.inbox, args.keys
    else:
        inbox, keys = build_inbox(args.workdir, args.persons, args.maisons, args.seed)
    for _ in range(args.repeat):
        print(json.dumps(run_once(inbox, keys, args.pipeline, args.engine), indent=2))


if __name__ == "__main__":
    main()
