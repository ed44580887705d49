"""How a flow result is written: its JSON file, its row of results.md, a terminal summary."""

from __future__ import annotations

import json
from pathlib import Path

from _harness import GIB


def scale_label(r: dict) -> str:
    """The scale, and the engine where it is not the default: "M", "M spark", "M both"."""
    engine = r.get("engine", "duckdb")
    return r["scale"] if engine == "duckdb" else f"{r['scale']} {engine}"


def results_row(r: dict) -> str:
    """One Markdown row of benchmarks/results/results.md (with --engine both, the DuckDB flow's
    figures and, beside the scale, Spark's process time as a multiple of DuckDB's)."""
    s, peer, comp = r["stages"], r.get("peer"), r.get("comparison")
    scale = scale_label(r)
    if "engine_comparison" in r:
        scale += f" (spark process {r['engine_comparison']['spark_over_duckdb']['wall_s']}×)"

    def secs(x: float) -> str:
        return f"{x:,.1f}"

    cells = [
        r["started_at"][:16].replace("T", " "),
        scale,
        f"{r['persons']:,}",
        f"{r['data']['purchase_lines']:,}",
        secs(s["export"]["wall_s"]),
        secs(s["process"]["wall_s"]),
        secs(s["import"]["wall_s"]),
        secs(s["end_to_end"]["wall_s"]),
        secs(s["end_to_end"]["cpu_s"]),
        f"{s['end_to_end']['peak_bytes'] / GIB:.2f}",
        secs(peer["wall_s"]) if peer else "-",
        f"{peer['peak_bytes'] / GIB:.2f}" if peer else "-",
        f"{comp['peer_over_export_process']:.2f}×" if comp else "-",
        " ".join(f"{x:.1f}" for x in r["machine"]["load_average_at_start"]),
    ]
    return "| " + " | ".join(cells) + " |"


RESULTS_HEAD = (
    "| run (UTC) | scale | persons | purchase lines | exports s | process s | imports s "
    "| end to end s | CPU s | peak RSS GiB | peer s | peer peak GiB | peer ÷ (exports+process) "
    "| load avg |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n"
)


def write_results(result: dict, results: Path) -> Path:
    results.mkdir(parents=True, exist_ok=True)
    stamp = result["started_at"].replace(":", "").replace("-", "")[:15]
    path = results / f"{stamp}-{scale_label(result).replace(' ', '-')}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    table = results / "results.md"
    if not table.is_file():
        table.write_text("# Benchmark runs (benchmarks/run.py)\n\n" + RESULTS_HEAD)
    with table.open("a", encoding="utf-8") as f:
        f.write(results_row(result) + "\n")
    return path


def report(r: dict) -> str:
    """A short plain-text summary for the terminal."""
    s = r["stages"]
    lines = [
        f"process engine: {s['process']['engine']}",
        f"{'stage':<12} {'wall s':>9} {'CPU s':>9} {'peak GiB':>9}",
    ]
    for name in ("export", "process", "import", "end_to_end"):
        x = s[name]
        lines.append(
            f"{name:<12} {x['wall_s']:>9.2f} {x['cpu_s']:>9.2f} {x['peak_bytes'] / GIB:>9.2f}"
        )
    lines.append(
        "process stages: " + ", ".join(f"{k} {v:.2f}" for k, v in s["process"]["stages_s"].items())
    )
    if "utility" in s:
        u = s["utility"]
        lines.append(
            f"returned rows: {u['rows']:,}, with an attribute coarsened or blank: "
            f"{u['generalized']:,} ({u['generalized_share']:.1%})"
        )
    if "peer" in r:
        p, c = r["peer"], r["comparison"]
        lines.append(
            f"{'pandas peer':<12} {p['wall_s']:>9.2f} {p['cpu_s']:>9.2f} "
            f"{p['peak_bytes'] / GIB:>9.2f}   peer ÷ (exports+process) "
            f"{c['peer_over_export_process']:.2f}×, ÷ end to end {c['peer_over_end_to_end']:.2f}×"
            f", comparable: {c['comparable']}"
        )
    if "engine_comparison" in r:
        c = r["engine_comparison"]
        for engine in ("duckdb", "spark"):
            x = c[engine]
            lines.append(
                f"process on {engine:<6} {x['wall_s']:>9.2f} s, CPU {x['cpu_s']:.2f} s, peak "
                f"{x['peak_bytes'] / GIB:.2f} GiB; "
                + ", ".join(f"{k} {v:.2f}" for k, v in x["stages_s"].items())
            )
        ratio, returns = c["spark_over_duckdb"], c["returns"]
        lines.append(
            f"spark ÷ duckdb: wall {ratio['wall_s']}×, CPU {ratio['cpu_s']}×, peak "
            f"{ratio['peak_bytes']}×; returns identical: {returns['identical']} "
            f"({returns['tables']} tables), reports identical: {c['reports_identical']}, "
            f"audit counts identical: {c['counts_identical']}"
        )
    if "against_ceilings" in r:
        lines.append("ceilings: " + json.dumps(r["against_ceilings"]))
    lines.append("targets: " + json.dumps(r["targets"]))
    return "\n".join(lines)
