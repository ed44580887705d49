"""The scaling chart: time and peak memory against purchase lines, from every result JSON.

Uses the latest run of each size in benchmarks/results/*.json (so it works with S alone, S
and M, or all three), plots log-log, and labels each segment between sizes with its growth
exponent (the log-log slope: 1.0 is linear). `benchmarks/run.py` redraws it after each run.

    python benchmarks/chart.py            # redraw benchmarks/scaling.png
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GIB = 1024**3


def load_results(folder: Path) -> list[dict]:
    """Every flow result in `folder`, oldest first."""
    runs = []
    for path in sorted(folder.glob("*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and data.get("benchmark") == "flow":
            runs.append(data)
    return sorted(runs, key=lambda r: r["started_at"])


def latest_per_size(runs: list[dict]) -> list[dict]:
    """The newest run of each number of persons whose flow ran on DuckDB (the engine the
    curves describe; a Spark flow has its own figures), smallest size first."""
    by_size = {}
    for run in runs:
        if run["stages"]["process"].get("engine", "duckdb") == "duckdb":
            by_size[run["persons"]] = run
    return [by_size[p] for p in sorted(by_size)]


def series(runs: list[dict]) -> dict[str, list[tuple[int, float]]]:
    """(purchase lines, value) points per curve: seconds, and peak GiB."""
    out: dict[str, list[tuple[int, float]]] = {}

    def add(name: str, lines: int, value: float | None) -> None:
        if value is not None and value > 0:
            out.setdefault(name, []).append((lines, value))

    for r in latest_per_size(runs):
        n, s = r["data"]["purchase_lines"], r["stages"]
        add("end to end s", n, s["end_to_end"]["wall_s"])
        add("exports s", n, s["export"]["wall_s"])
        add("process s", n, s["process"]["wall_s"])
        add("imports s", n, s["import"]["wall_s"])
        add("pandas peer s", n, r.get("peer", {}).get("wall_s"))
        add("peak RSS GiB", n, s["end_to_end"]["peak_bytes"] / GIB)
        add("peer peak RSS GiB", n, r.get("peer", {}).get("peak_bytes", 0) / GIB)
    return out


def exponents(points: list[tuple[int, float]]) -> list[float]:
    """Log-log slope between each pair of consecutive sizes."""
    return [
        round(math.log(v2 / v1) / math.log(n2 / n1), 2)
        for (n1, v1), (n2, v2) in itertools.pairwise(points)
        if n2 != n1
    ]


def draw(runs: list[dict], path: Path) -> Path | None:
    """Write the two-panel chart to `path`; None when there is no run yet."""
    if not runs:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    curves = series(runs)
    fig, (time_ax, mem_ax) = plt.subplots(1, 2, figsize=(12, 4.8))
    for ax, names, unit in (
        (time_ax, [k for k in curves if k.endswith(" s")], "wall time (s)"),
        (mem_ax, [k for k in curves if k.endswith("GiB")], "peak RSS (GiB)"),
    ):
        for name in names:
            pts = curves[name]
            xs, ys = zip(*pts, strict=True)
            slopes = exponents(pts)
            label = name.rsplit(" ", 1)[0]
            if slopes:
                label += "  (slope " + ", ".join(f"{e:.2f}" for e in slopes) + ")"
            ax.plot(xs, ys, marker="o", label=label, linestyle="--" if "peer" in name else "-")
        ax.set_xscale("log")
        ax.set_yscale("log")
        plain = FuncFormatter(lambda v, _: f"{v:g}")
        ax.yaxis.set_major_formatter(plain)
        ax.yaxis.set_minor_formatter(plain)
        ax.set_xlabel("purchase lines (all maisons)")
        ax.set_ylabel(unit)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    sizes = ", ".join(f"{r['scale']} {r['persons']:,}" for r in latest_per_size(runs))
    last = runs[-1]
    cores = last["machine"]["cpus"]
    fig.suptitle(f"crossgroup scaling, {last['maisons']} maisons, {cores} cores ({sizes})")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, default=ROOT / "benchmarks/results")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/scaling.png")
    args = ap.parse_args()
    runs = load_results(args.results)
    print(draw(runs, args.out) or "no flow results yet")
    for name, pts in series(runs).items():
        print(f"{name}: exponents {exponents(pts)}")


if __name__ == "__main__":
    main()
