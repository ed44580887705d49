"""Package seal/open throughput and peak memory on a generated payload of configurable size.

Writes a Parquet table of random bytes (in row groups, so generation stays small), then
seals and opens it in child processes that report wall time and peak RSS. Peak memory must
stay flat as the payload grows (well under 300 MiB); throughput target is >= 300 MiB/s.

    .venv/bin/python benchmarks/bench_package.py --mib 200       # validation size
    .venv/bin/python benchmarks/bench_package.py --mib 4096      # the lead's large run
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

README = Path(__file__).with_name("README.md")


def _make_table(path: Path, mib: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    row = 64 * 1024
    rows_per_group = 128  # 8 MiB per row group
    schema = pa.schema([("blob", pa.binary())])
    left = mib * 1024 * 1024 // row
    with pq.ParquetWriter(path, schema, compression="none") as writer:
        while left:
            n = min(rows_per_group, left)
            writer.write_table(pa.table({"blob": [os.urandom(row) for _ in range(n)]}, schema))
            left -= n


def _child(action: str, work: Path) -> dict:
    from crossgroup.crypto.keys import load_party
    from crossgroup.crypto.package import open_package, seal_package

    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    if action == "seal":
        sender = load_party(work / "keys" / "aurelle")
        seal_package(
            work / "out", kind="export", sender=sender, recipient="processor",
            tables={"payload": work / "payload.parquet"}, batch_id="bench",
            as_of=dt.date(2026, 9, 30), matching_key_id=sender.matching.key_id,
        )  # fmt: skip
    else:
        keys = load_party(work / "keys" / "processor")
        (work / "opened").mkdir(mode=0o700, exist_ok=True)
        pkg = next((work / "out").glob("*.cgpkg"))
        open_package(pkg, keys, work / "opened")
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"seconds": seconds, "peak_rss_mib": peak / 1024, "base_rss_mib": base_rss / 1024}


def run(mib: int, work: Path) -> dict:
    from crossgroup.crypto.keys import init_keys

    init_keys(work / "keys", ["aurelle"])
    _make_table(work / "payload.parquet", mib)
    size = (work / "payload.parquet").stat().st_size / 2**20
    result: dict = {"benchmark": "package", "date": dt.date.today().isoformat(),
                    "payload_mib": round(size, 1), "cpu_count": os.cpu_count()}  # fmt: skip
    # The disk ceiling in the same run: a plain copy reads and writes the same bytes once.
    start = time.perf_counter()
    shutil.copyfile(work / "payload.parquet", work / "copy.parquet")
    result["file_copy_mib_per_s"] = round(size / (time.perf_counter() - start), 1)
    (work / "copy.parquet").unlink()
    for action in ("seal", "open"):
        out = subprocess.run(
            [sys.executable, __file__, "--child", action, "--work", str(work)],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        child = json.loads(out.strip().splitlines()[-1])
        result[f"{action}_mib_per_s"] = round(size / child["seconds"], 1)
        result[f"{action}_peak_rss_mib"] = round(child["peak_rss_mib"], 1)
        result[f"{action}_rss_before_mib"] = round(child["base_rss_mib"], 1)
    opened = work / "opened" / "payload.parquet"
    result["round_trip_identical"] = opened.read_bytes() == (work / "payload.parquet").read_bytes()
    return result


def table(r: dict) -> str:
    lines = ["| step | MiB/s | peak RSS (MiB) | RSS after imports (MiB) |", "|---|---:|---:|---:|"]
    for a in ("seal", "open"):
        lines.append(
            f"| {a} {r['payload_mib']} MiB | {r[f'{a}_mib_per_s']} | {r[f'{a}_peak_rss_mib']} "
            f"| {r[f'{a}_rss_before_mib']} |"
        )
    lines.append(f"| plain file copy (disk ceiling) | {r['file_copy_mib_per_s']} | | |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mib", type=int, default=200, help="payload size in MiB")
    ap.add_argument("--readme", action="store_true", help="append to benchmarks/README.md")
    ap.add_argument("--child", choices=["seal", "open"], help=argparse.SUPPRESS)
    ap.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(_child(args.child, args.work)))
        return
    with tempfile.TemporaryDirectory(prefix="bench-package-") as tmp:
        result = run(args.mib, Path(tmp))
    text = table(result)
    print(text)
    print(json.dumps(result))
    if args.readme:
        with open(README, "a", encoding="utf-8") as f:
            if "## Packages" not in (README.read_text() if README.exists() else ""):
                f.write("\n## Packages\n\n`benchmarks/bench_package.py`: see its docstring.\n")
            f.write(f"\n{result['date']}, {result['payload_mib']} MiB payload\n\n")
            f.write(text + "\n\n```json\n" + json.dumps(result) + "\n```\n")


if __name__ == "__main__":
    main()
