"""Cross-sector interest in a batch's returns (issue 15, point 5), measured on the returns.

Opens every maison's return package of a processed batch with that maison's own keys (as the
maison would, into a private temporary folder; nothing is recorded in any ledger) and prints,
per maison and for the batch:

- of its multi-maison customers (rows whose breadth says 2 maisons or more), the share whose
  row names a sector other than the maison's own: by the lead sector alone, and by the lead
  or the second sector;
- the share of returned rows with an attribute coarsened or left blank by k-anonymity
  (`generalized` not empty), and of rows whose lead or second sector was.

"The maison's own sector" is the name its sector is released under in that batch, or the
family it coarsens to (those do not point outside the maison's sector). Returns made before
`second_sector` existed are read too (the lead alone), so a run of the older code gives the
"before" figures.

    python benchmarks/cross_sector.py --out RUN/out --keys RUN/keys [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections import Counter
from pathlib import Path

import polars as pl

from crossgroup.config import load_group, load_taxonomy
from crossgroup.crypto.keys import load_party
from crossgroup.crypto.package import open_package
from crossgroup.privacy.policy import released_sector_names

ROOT = Path(__file__).resolve().parents[1]
MULTI_MAISON = ("2 maisons", "3+ maisons", "2+ maisons")


def open_segments(out: Path, keys: Path) -> dict[str, pl.DataFrame]:
    """Each maison's returned `segments`, opened with its own keys."""
    segments = {}
    for folder in sorted((out / "returns").iterdir()):
        (package,) = folder.glob("*.cgpkg")
        party = load_party(keys / folder.name)
        with tempfile.TemporaryDirectory(prefix="cross-sector-") as work:
            opened = open_package(package, party, Path(work), kind="return", check_replay=False)
            segments[folder.name] = pl.read_parquet(opened.tables["segments"])
    return segments


def own_names(keys: Path, maisons: list[str], min_maisons: int) -> dict[str, set[str]]:
    """Each maison's own sector as its rows may name it: its released name and its family."""
    taxonomy = load_taxonomy()
    registry = load_party(keys / maisons[0]).registry
    sector = {m: registry.party(m).sector for m in maisons}
    released = released_sector_names(
        taxonomy.sector_names,
        Counter(s for s in sector.values() if s),
        taxonomy=taxonomy,
        min_maisons=min_maisons,
    )
    return {
        m: {released[s], taxonomy.family_of(s)} if s in released else set()
        for m, s in sector.items()
    }


def figures(seg: pl.DataFrame, own: set[str]) -> dict:
    """The figures of one maison's returned rows (or of several maisons' rows together)."""
    if "second_sector" not in seg.columns:
        seg = seg.with_columns(second_sector=pl.lit(None, dtype=pl.String))
    not_outside = [*own, "No other sector"]

    def outside(col: str) -> pl.Expr:
        return pl.col(col).is_not_null() & ~pl.col(col).is_in(not_outside)

    multi = seg.filter(pl.col("breadth").is_in(MULTI_MAISON))
    given_up = pl.col("generalized").fill_null("")
    n, m = seg.height, max(multi.height, 1)
    return {
        "rows": n,
        "multi_maison_rows": multi.height,
        "names_other_sector_by_lead": multi.filter(outside("lead_sector")).height / m,
        "names_other_sector_by_lead_or_second": multi.filter(
            outside("lead_sector") | outside("second_sector")
        ).height
        / m,
        "rows_coarsened_or_blank": seg.filter(given_up != "").height / max(n, 1),
        "rows_sector_coarsened_or_blank": seg.filter(given_up.str.contains("sector")).height
        / max(n, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="the processor's --out folder")
    parser.add_argument("--keys", type=Path, required=True, help="KEYDIR with every maison")
    parser.add_argument("--pipeline", type=Path, default=ROOT / "pipelines" / "group.toml")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    segments = open_segments(args.out, args.keys)
    own = own_names(args.keys, list(segments), load_group(args.pipeline).min_maisons_per_sector)
    result = {m: figures(seg, own[m]) for m, seg in segments.items()}
    tagged = [seg.with_columns(maison=pl.lit(m)) for m, seg in segments.items()]
    everyone = pl.concat(tagged, how="diagonal_relaxed")
    result["(batch)"] = figures(everyone, set())  # no maison's own: only the k-anonymity rates
    for key in ("names_other_sector_by_lead", "names_other_sector_by_lead_or_second"):
        rows = sum(r["multi_maison_rows"] for m, r in result.items() if m != "(batch)")
        hits = sum(r[key] * r["multi_maison_rows"] for m, r in result.items() if m != "(batch)")
        result["(batch)"][key] = hits / max(rows, 1)
    print(
        f"{'maison':<10} {'rows':>8} {'multi':>7} {'other by lead':>14} {'lead or 2nd':>12} "
        f"{'coarsened':>10} {'sector c.':>10}"
    )
    for maison, r in result.items():
        print(
            f"{maison:<10} {r['rows']:>8,} {r['multi_maison_rows']:>7,} "
            f"{r['names_other_sector_by_lead']:>14.1%} "
            f"{r['names_other_sector_by_lead_or_second']:>12.1%} "
            f"{r['rows_coarsened_or_blank']:>10.2%} {r['rows_sector_coarsened_or_blank']:>10.2%}"
        )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
