"""DP mode's accuracy at a benchmark scale (issue 16, deliverable 5): how far the noisy
group-wide figures are from the exact counts, and how many cells the noisy threshold
withholds, next to threshold mode's suppression of the same batch.

Builds an inbox from the scale's synthetic world (`run.py`'s data folder, generated if
missing): `keys init`, then `crossgroup export` per maison (not measured). Then runs the real
processor (`group.pipeline.process_batch`, in this process, so its release step can be
watched) over two untouched copies of the processor keys and inbox (a run consumes its inbox
and records its packages): once with `[privacy] group_figures = "dp"` at the pipeline's
epsilon_per_release and delta, once in threshold mode. The returns are opened with each
maison's keys, as the maison would (no ledger touched).

Capturing the exact counts, in this benchmark only (the product is not changed): the release
step calls `noisy_group_cells` (DP mode) and `suppress` (threshold mode) through the names
`crossgroup.group.release` imports. Both names are wrapped here to record their inputs and
return what the product's function returns: in DP mode, the exact persons per combination of
each person's own bands (`counted`, from `banded_counts`), the key `grid`, the released sector
`names` and the calibrated `noise`; in threshold mode, the batch's unsuppressed group cells.

The noise is then redrawn `--draws` times by the product's own `noisy_group_cells` on the
captured exact counts, each draw OpenDP's, as in a release. The noise handed to it delegates
to the calibrated one and keeps each raw draw, so the noisy values of withheld cells are known
too; every draw is checked against the cells `noisy_group_cells` returned (published values,
withheld cells). Relative error is |noisy - exact| / exact, the noisy count as published
(rounded, at least 0), over cells with exact > 0, pooled over cells and draws.

    python benchmarks/bench_dp_accuracy.py --scale S --data-root /work/benchdata
    python benchmarks/bench_dp_accuracy.py --scale M --data-root /work/benchdata --draws 200
    python benchmarks/bench_dp_accuracy.py --persons 2000 --maisons 3 --draws 5   # quick check
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).parent))

from _harness import ROOT, crossgroup_cmd, ensure_synth, measure, synth_maisons
from crossgroup.config import load_group
from crossgroup.contracts import AFFINITY_TABLES
from crossgroup.crypto.keys import load_party
from crossgroup.crypto.package import open_package
from crossgroup.group import release as release_step
from crossgroup.group.cells import PARTITION_TABLES, scope_cells
from crossgroup.group.noisy_cells import noisy_group_cells
from crossgroup.group.pipeline import process_batch
from run import AS_OF, SCALES, SEED, machine

GROUP_TABLES = (*PARTITION_TABLES, *AFFINITY_TABLES)
KEY = ["table", "row_key", "col_key"]
OVERALL = "(all group tables)"


# ---------------------------------------------------------------- the batch


def build_inbox(data: Path, work: Path) -> tuple[Path, Path, dict]:
    """keys init, then every maison's export into one inbox (not measured); the inbox, the key
    folder and the exported sizes."""
    maisons = synth_maisons(data)
    keys, inbox = work / "keys", work / "inbox"
    measure(crossgroup_cmd("keys", "init", "--dir", keys, "--maisons", ",".join(maisons)))
    inbox.mkdir(parents=True)
    exported = {"customers": 0, "activity_rows": 0}
    for m in maisons:
        out = work / "outbox" / m
        src = data / m
        measure(
            crossgroup_cmd("export", "--maison", m, "--customers", src / "customers.parquet",
                           "--purchases", src / "purchases.parquet", "--as-of", AS_OF.isoformat(),
                           "--keys", keys / m, "--out", out, "--config", src / "maison.toml"),
            label="export",
        )  # fmt: skip
        package = next(out.glob("*.cgpkg"))
        summary = json.loads(package.with_name(package.name + ".summary.json").read_text())
        exported["customers"] += summary["customers"]["exported"]
        exported["activity_rows"] += summary["activity_rows"]
        os.link(package, inbox / package.name)
    return inbox, keys, exported


def pipeline_in_mode(base: Path, mode: str, folder: Path) -> Path:
    """A copy of the pipeline TOML with `[privacy] group_figures = MODE` (loaded and
    validated as the product loads it)."""
    text = re.sub(r"(?m)^group_figures\s*=.*\n", "", base.read_text(encoding="utf-8"))
    text, n = re.subn(r"(?m)^\[privacy\]\n", f'[privacy]\ngroup_figures = "{mode}"\n', text)
    if n != 1:
        raise SystemExit(f"{base}: no [privacy] table to set group_figures in")
    path = folder / f"group-{mode}.toml"
    path.write_text(text, encoding="utf-8")
    return path


class Watch:
    """Wraps the release step's `noisy_group_cells` and `suppress` to keep their inputs."""

    def __init__(self) -> None:
        self.noisy_args: tuple | None = None
        self.group_raw: pl.DataFrame | None = None

    def __enter__(self) -> Watch:
        self._saved = release_step.noisy_group_cells, release_step.suppress
        noisy, suppress = self._saved

        def watched_noisy(counted, grid, names, noise, k_aggregate):
            self.noisy_args = (counted, grid, list(names), noise, k_aggregate)
            return noisy(counted, grid, names, noise, k_aggregate)

        def watched_suppress(cells, k_aggregate, **kwargs):
            if self.group_raw is None:  # build_release's one call: the batch's group cells
                self.group_raw = cells
            return suppress(cells, k_aggregate, **kwargs)

        release_step.noisy_group_cells, release_step.suppress = watched_noisy, watched_suppress
        return self

    def __exit__(self, *exc) -> None:
        release_step.noisy_group_cells, release_step.suppress = self._saved


def run_process(inbox: Path, keys: Path, work: Path, pipeline: Path, mode: str) -> dict:
    """The real processor in MODE over fresh copies of the processor keys and the inbox."""
    folder = work / mode
    shutil.copytree(keys / "processor", folder / "processor")
    (folder / "inbox").mkdir(parents=True)
    for package in inbox.glob("*.cgpkg"):
        os.link(package, folder / "inbox" / package.name)
    group = load_group(pipeline_in_mode(pipeline, mode, work))
    group = dataclasses.replace(group, allow_missing=True)  # as run.py: a world of N maisons
    (folder / "tmp").mkdir()
    started = time.perf_counter()
    with Watch() as watch:
        result = process_batch(
            folder / "inbox", load_party(folder / "processor"), folder / "out", group=group,
            work_parent=folder / "tmp",
        )  # fmt: skip
    return {
        "mode": mode,
        "group": group,
        "wall_s": round(time.perf_counter() - started, 2),
        "counts": {k: result.counts[k] for k in ("persons", "records") if k in result.counts},
        "stages_s": {k: round(v, 2) for k, v in result.timings.items()},
        "out": folder / "out",
        "watch": watch,
    }


def group_cells(frame: pl.DataFrame) -> pl.DataFrame:
    """The group-wide cells of an aggregates table (no suppression rows)."""
    return frame.filter((pl.col("scope") == "group") & pl.col("table").is_in(GROUP_TABLES))


def open_returns(out: Path, keys: Path) -> dict[str, pl.DataFrame]:
    """Each maison's returned group cells, opened with its own keys."""
    found = {}
    for folder in sorted((out / "returns").iterdir()):
        (package,) = folder.glob("*.cgpkg")
        with tempfile.TemporaryDirectory(prefix="dp-accuracy-") as tmp:
            opened = open_package(
                package, load_party(keys / folder.name), Path(tmp), kind="return",
                check_replay=False,
            )  # fmt: skip
            found[folder.name] = group_cells(pl.read_parquet(opened.tables["aggregates"]))
    return found


def report_cells(out: Path) -> pl.DataFrame:
    return group_cells(pl.read_parquet(out / "reports" / "aggregates.parquet"))


# ---------------------------------------------------------------- DP mode, redrawn


class KeptDraws:
    """The calibrated noise, keeping each raw draw `noisy_group_cells` makes with it."""

    def __init__(self, noise) -> None:
        self.noise = noise
        self.margin = noise.margin
        self.draws: list[tuple[list[float], np.ndarray]] = []

    def noisy(self, counts):
        raw = self.noise.noisy(counts)
        self.draws.append((list(counts), raw))
        return raw


def exact_grid(counted, grid, names) -> tuple[pl.DataFrame, int]:
    """The grid's exact counts in the order `noisy_group_cells` noises them (the same two
    steps), and the persons counted in a cell outside the grid (expected 0)."""
    exact = scope_cells(counted, "group", names).select(*KEY, "persons")
    cells = grid.join(exact, on=KEY, how="left").with_columns(pl.col("persons").fill_null(0))
    outside = exact.join(grid, on=KEY, how="anti").get_column("persons").sum()
    return cells, int(outside or 0)


def redraw(counted, grid, names, noise, k_aggregate: int, draws: int) -> dict:
    """`draws` releases of the same exact counts by the product's `noisy_group_cells`."""
    cells, outside = exact_grid(counted, grid, names)
    exact = cells.get_column("persons").to_numpy().astype(float)
    threshold = k_aggregate + noise.margin
    noisy_values, published, withheld_any = [], [], []
    for _ in range(draws):
        kept = KeptDraws(noise)
        out = noisy_group_cells(counted, grid, names, kept, k_aggregate)
        ((counts, raw),) = kept.draws
        if counts != exact.tolist():
            raise SystemExit("the grid's exact counts are not in the order the product noised")
        value = pl.Series(raw).round(0).clip(lower_bound=0.0)
        mine = cells.with_columns(value=value, published=pl.Series(raw) >= threshold)
        released = out.select(*KEY, pl.col("persons").alias("released"), "suppressed", "note")
        got = mine.join(released, on=KEY, how="left", maintain_order="left")
        noisy_rows = got.get_column("note").str.starts_with("noisy count")
        agree = (
            (got.get_column("published") == ~noisy_rows).all()
            and (got.filter(~pl.col("suppressed"))
                 .select((pl.col("released") == pl.col("value")).all()).item())
        )  # fmt: skip
        if not agree:
            raise SystemExit("a redraw disagrees with the cells noisy_group_cells returned")
        noisy_values.append(value.to_numpy())
        published.append(mine.get_column("published").to_numpy())
        withheld_any.append(got.get_column("suppressed").to_numpy())
    tables = cells.get_column("table").to_numpy()
    noisy_values, published = np.vstack(noisy_values), np.vstack(published)
    withheld_any = np.vstack(withheld_any)
    figures = {}
    for table in (*GROUP_TABLES, OVERALL):
        cols = np.ones(len(tables), bool) if table == OVERALL else tables == table
        figures[table] = table_figures(
            exact[cols], noisy_values[:, cols], published[:, cols], withheld_any[:, cols],
            k_aggregate,
        )  # fmt: skip
    return {
        "draws": draws,
        "noise": {**noise.audit(), "threshold": threshold, "k_aggregate": k_aggregate},
        "persons_counted": int(exact[tables == "segment_mix"].sum()),
        "exact_persons_outside_grid": outside,
        "tables": figures,
    }


def _median(values: np.ndarray) -> float | None:
    return round(float(np.median(values)), 4) if values.size else None


def _share(mask: np.ndarray) -> float | None:
    return round(float(mask.mean()), 4) if mask.size else None


def table_figures(exact, noisy, published, withheld, k_aggregate: int) -> dict:
    """One table's figures over `draws` rows of its cells (columns)."""
    positive, at_k = exact > 0, exact >= k_aggregate
    rel = np.abs(noisy - exact) / np.where(positive, exact, 1.0)
    return {
        "grid_cells": int(exact.size),
        "cells_exact_positive": int(positive.sum()),
        "cells_exact_at_least_k": int(at_k.sum()),
        "exact_median_persons": _median(exact[positive]),
        "median_relative_error": _median(rel[:, positive]),
        "p90_relative_error": (
            round(float(np.quantile(rel[:, positive], 0.9)), 4) if positive.any() else None
        ),
        "median_relative_error_published": _median(rel[published & positive]),
        "median_relative_error_exact_at_least_k": _median(rel[:, at_k]),
        "median_absolute_error": _median(np.abs(noisy - exact)),
        # shares of cells, averaged over draws (the denominators do not change between draws)
        "withheld_noisy_threshold": _share(~published),
        "withheld_any_reason": _share(withheld),
        "withheld_noisy_threshold_exact_positive": _share(~published[:, positive]),
        "withheld_any_reason_exact_positive": _share(withheld[:, positive]),
        "withheld_noisy_threshold_exact_at_least_k": _share(~published[:, at_k]),
        "withheld_any_reason_exact_at_least_k": _share(withheld[:, at_k]),
    }


# ---------------------------------------------------------------- suppression as released


def suppression(cells: pl.DataFrame, exact: pl.DataFrame | None, k_aggregate: int) -> dict:
    """Per table and overall: the group cells listed, the share suppressed, the suppressed cells
    by note (why), and (with the exact cells) the share suppressed among cells of at least
    k_aggregate persons."""
    if exact is not None:
        exact = exact.select(*KEY, pl.col("persons").alias("exact"))
        cells = cells.join(exact, on=KEY, how="left", nulls_equal=True)
    out = {}
    for table in (*GROUP_TABLES, OVERALL):
        part = cells if table == OVERALL else cells.filter(pl.col("table") == table)
        held = part.get_column("suppressed")
        share = round(float(held.mean()), 4) if part.height else None
        row = {"cells": part.height, "suppressed": int(held.sum()), "suppressed_share": share}
        notes = part.filter("suppressed").get_column("note").value_counts(sort=True)
        row["reasons"] = dict(notes.iter_rows())
        if exact is not None:
            big = part.filter(pl.col("exact") >= k_aggregate)
            row["cells_exact_at_least_k"] = big.height
            row["suppressed_share_exact_at_least_k"] = (
                round(float(big.get_column("suppressed").mean()), 4) if big.height else None
            )
        out[table] = row
    return out


def mean_over_maisons(per_maison: dict[str, dict]) -> dict:
    """Each table's figures averaged over the maisons' returns (and the range of the share)."""
    out = {}
    for table in (*GROUP_TABLES, OVERALL):
        rows = [m[table] for m in per_maison.values()]
        out[table] = {}
        for key in (k for k, v in rows[0].items() if not isinstance(v, dict)):
            values = [r[key] for r in rows if r[key] is not None]
            out[table][key] = round(float(np.mean(values)), 4) if values else None
        shares = [r["suppressed_share"] for r in rows if r["suppressed_share"] is not None]
        out[table]["suppressed_share_range"] = [min(shares), max(shares)] if shares else None
    return out


def threshold_figures(run: dict, keys: Path) -> dict:
    k_aggregate = run["group"].k_aggregate
    exact = group_cells(run["watch"].group_raw)
    opened = open_returns(run["out"], keys)
    returns = {m: suppression(cells, exact, k_aggregate) for m, cells in opened.items()}
    return {
        "report": suppression(report_cells(run["out"]), exact, k_aggregate),
        "returns_mean_over_maisons": mean_over_maisons(returns),
        "returns": returns,
    }


def dp_run_figures(run: dict, keys: Path) -> dict:
    """The DP run's own draw, as released: suppression in the report and whether every
    return's group cells are the report's (one draw for every recipient)."""
    report = report_cells(run["out"])
    returns = open_returns(run["out"], keys)
    cols = [*KEY, "persons", "suppressed"]
    released = report.select(cols).sort(KEY)
    same = all(r.select(cols).sort(KEY).equals(released) for r in returns.values())
    return {
        "report": suppression(report, None, run["group"].k_aggregate),
        "returns_identical_to_report": same,
    }


# ---------------------------------------------------------------- output


def print_table(result: dict) -> None:
    dp, thr = result["dp"]["redrawn"], result["threshold"]
    n = dp["noise"]
    print(
        f"\nDP noise: sigma {n['noise_scale']:.2f} (L2 sensitivity {n['sensitivity_l2']:.2f}, "
        f"epsilon {n['epsilon']}, delta {n['delta']:g}); 95 % margin +/-{n['margin_95']:.1f}; "
        f"published when noisy >= {n['threshold']:.1f}; {dp['draws']} draws"
    )
    head = (
        f"{'table':<24} {'grid':>5} {'>0':>4} {'>=k':>4} {'med rel err':>11} {'(publ.)':>8} "
        f"{'withheld':>9} {'of >0':>7} {'of >=k':>7} | {'thr rep':>7} {'thr ret':>7} "
        f"{'thr >=k':>7}"
    )
    print(head)
    print("-" * len(head))

    def pct(x, digits=1):
        return "-" if x is None else f"{x:.{digits}%}"

    for table in (*GROUP_TABLES, OVERALL):
        d = dp["tables"][table]
        rep, ret = thr["report"][table], thr["returns_mean_over_maisons"][table]
        print(
            f"{table:<24} {d['grid_cells']:>5} {d['cells_exact_positive']:>4} "
            f"{d['cells_exact_at_least_k']:>4} {pct(d['median_relative_error'], 2):>11} "
            f"{pct(d['median_relative_error_published'], 2):>8} "
            f"{pct(d['withheld_any_reason']):>9} {pct(d['withheld_any_reason_exact_positive']):>7} "
            f"{pct(d['withheld_any_reason_exact_at_least_k']):>7} | "
            f"{pct(rep['suppressed_share']):>7} {pct(ret['suppressed_share']):>7} "
            f"{pct(ret.get('suppressed_share_exact_at_least_k')):>7}"
        )
    print(
        "withheld: share of DP cells not published (noisy threshold, or the segment's size "
        "withheld), mean over draws; thr rep / thr ret: threshold mode's suppressed share in "
        "reports/aggregates.parquet / in the returns (mean over maisons); thr >=k: among "
        "cells of >= k_aggregate persons, in the returns"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=("S", "M"), default="S")
    parser.add_argument("--persons", type=int, help="a custom size instead of --scale")
    parser.add_argument("--maisons", type=int, default=8, help="with --persons")
    parser.add_argument("--data-root", type=Path, default=ROOT / "benchmarks/data")
    parser.add_argument("--work-root", type=Path, default=ROOT / "benchmarks/work")
    parser.add_argument("--pipeline", type=Path, default=ROOT / "pipelines/group.toml")
    parser.add_argument("--draws", type=int, default=200, help="redraws of the noise")
    parser.add_argument("--out", type=Path, help="result JSON (default: benchmarks/results/"
                        "<stamp>-dp-accuracy-<scale>.json)")  # fmt: skip
    parser.add_argument("--keep-work", action="store_true", help="keep keys, packages, outputs")
    args = parser.parse_args()
    started = datetime.now(UTC)
    stamp = started.strftime("%Y%m%dT%H%M%S")
    info = machine()
    scale = "custom" if args.persons else args.scale
    persons = args.persons or SCALES[args.scale]
    maisons = args.maisons if args.persons else 8
    data = args.data_root / f"{persons if args.persons else scale}-{SEED}"  # as run.py
    if maisons != 8:
        data = data.with_name(f"{data.name}-{maisons}m")
    synth = ensure_synth(data, persons, maisons, SEED, AS_OF)
    work = args.work_root / f"{stamp}-dp-accuracy"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        print(f"{scale}: {persons:,} persons, {synth['purchase_lines']:,} purchase lines")
        inbox, keys, exported = build_inbox(data, work)
        dp = run_process(inbox, keys, work, args.pipeline, "dp")
        thr = run_process(inbox, keys, work, args.pipeline, "threshold")
        counted, grid, names, noise, k_aggregate = dp["watch"].noisy_args
        result = {
            "benchmark": "dp-accuracy",
            "scale": scale,
            "maisons": maisons,
            "command": " ".join(["python", *sys.argv]),
            "started_at": started.isoformat(timespec="seconds"),
            "machine": info,
            "data": {
                "persons_synth": persons,
                "customers": synth["customers"],
                "purchase_lines": synth["purchase_lines"],
                "exported_customers": exported["customers"],
                "activity_rows": exported["activity_rows"],
                "persons_resolved": dp["counts"].get("persons"),
                "records": dp["counts"].get("records"),
            },
            "settings": {
                "epsilon_per_release": dp["group"].epsilon_per_release,
                "delta": dp["group"].delta,
                "k_aggregate": k_aggregate,
                "released_sector_names": names,
            },
            # in this process, DP mode first (it pays the imports and a cold file cache)
            "process_wall_s": {"dp": dp["wall_s"], "threshold": thr["wall_s"]},
            "process_stages_s": {"dp": dp["stages_s"], "threshold": thr["stages_s"]},
            "dp": {
                "redrawn": redraw(counted, grid, names, noise, k_aggregate, args.draws),
                "run": dp_run_figures(dp, keys),
            },
            "threshold": threshold_figures(thr, keys),
        }
    finally:
        if not args.keep_work:
            shutil.rmtree(work, ignore_errors=True)
    result["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    path = args.out or ROOT / "benchmarks/results" / f"{stamp}-dp-accuracy-{scale}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print_table(result)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
