"""Segment stability across two monthly batches of one synthetic world (issue 15).

Runs `crossgroup demo --months 2` twice over the same world: once with the shipped pipeline
(`[segmentation] refit = "auto"`, the model saved by the first batch is reused by the
second) and once with `refit = "always"` (every batch refitted from scratch, as before the
series model). For each, prints the share of customers whose returned segment id and label
are the same in both months: over customers whose purchases in the export window did not
change, and over every customer returned in both.

    .venv/bin/python benchmarks/bench_stability.py --persons 200000 --out /tmp/stability
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import time
from datetime import date
from pathlib import Path

from crossgroup.config import load_group
from crossgroup.demo import month_ends, run_demo
from crossgroup.group.stability import series_stability
from crossgroup.synth.world import DEFAULT_AS_OF


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--out", type=Path, default=Path("stability-output"))
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    ends = month_ends(DEFAULT_AS_OF, 2)
    figures = {}
    for refit in ("auto", "always"):
        folder = args.out / refit
        shutil.rmtree(folder, ignore_errors=True)
        group = dataclasses.replace(load_group(), refit=refit)
        start = time.perf_counter()
        result = run_demo(folder, persons=args.persons, seed=args.seed, months=2, group=group)
        stability = series_stability(folder, (ends[0], ends[1]))
        figures[refit] = {
            **stability,
            "models": [b.model for b in result.batches],
            "seconds": round(time.perf_counter() - start, 1),
        }
        unchanged, everyone = stability["unchanged"], stability["everyone"]
        print(
            f'refit = "{refit}": models {figures[refit]["models"]}; kept segment and label: '
            f"unchanged customers {unchanged['kept']:.2%} of {unchanged['customers']:,}, "
            f"everyone {everyone['kept']:.2%} of {everyone['customers']:,}"
        )
    record = {"persons": args.persons, "as_of": [d.isoformat() for d in ends],
              "date": date.today().isoformat(), "figures": figures}  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
