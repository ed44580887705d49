"""Phone normalization: the differential against the reference, and its speed against a loop.

Builds the hostile corpus of `tests/phone_corpus.py` (`--rows` rows), runs the plain
per-row reference of `tests/crypto/test_phone_differential.py` (`reference_e164`, through
`reference_outcome` which also says why a row is null: one
`phonenumbers` parse / is_valid_number / format per row, one process, no memo) and
`crossgroup.crypto.tokens.normalize_phones` over the same rows, and requires both to give
the same E.164 (or null) on every row: it prints the first differing rows and exits 1
otherwise. Prints rows, distinct values, seconds and the speed ratio (loop ÷ normalize_phones),
and writes them as JSON (default `benchmarks/results/phones.json`).

Both sides are warmed first (every region's metadata loaded) so neither pays for it, and
both run with phonenumbers' compiled-pattern cache on, as production does (`tokens.
_e164_chunk`): without it `re`'s 512-entry cache thrashes on a corpus spanning every region
and the loop is several times slower, so the baseline here is the loop at its best.
`--customers` runs on the phone and country columns of a CRM extract instead (e.g. a
`crossgroup synth` maison), the shape of data an export sees.

    .venv/bin/python benchmarks/bench_phones.py --rows 1000000   # the reference run
    .venv/bin/python benchmarks/bench_phones.py --rows 20000     # quick check
    .venv/bin/python benchmarks/bench_phones.py --customers <synth world>/<maison>/customers.parquet
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
from pathlib import Path

import phonenumbers
import phonenumbers.re_util
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "crypto"))

from test_phone_differential import differences, reference_e164, reference_outcome

from crossgroup.crypto.tokens import normalize_phones
from phone_corpus import phone_corpus

ROOT = Path(__file__).resolve().parents[1]


def _warm() -> None:
    """Load every region's metadata in this process (forked workers inherit it)."""
    warm = phone_corpus(4_000, 0)
    for phone, country in warm.iter_rows():
        reference_e164(phone, country)
    normalize_phones(warm["phone"], warm["country"], workers=1)


def run(rows: int, seed: int, workers: int | None, customers: Path | None) -> tuple[dict, str]:
    phonenumbers.re_util.enable_pattern_cache()
    load_at_start = os.getloadavg()
    started = time.perf_counter()
    if customers is None:
        corpus = phone_corpus(rows, seed)
    else:
        corpus = pl.read_parquet(customers, columns=["phone", "country"])
        rows = corpus.height
    generate_s = time.perf_counter() - started
    _warm()
    phones, countries = corpus["phone"], corpus["country"]
    pairs = list(zip(phones.to_list(), countries.to_list(), strict=True))

    started = time.perf_counter()
    # reference_e164 is reference_outcome's second item: the loop also keeps why
    outcomes = [reference_outcome(phone, country) for phone, country in pairs]
    loop_s = time.perf_counter() - started

    started = time.perf_counter()
    got = normalize_phones(phones, countries, workers=workers)
    fast_s = time.perf_counter() - started

    expected = [e164 for _, e164 in outcomes]
    got_list = got.to_list()
    report = differences(corpus, expected, got_list)
    valid = sum(e is not None for e in expected)
    by_outcome: dict[str, int] = {}
    for why, _ in outcomes:
        by_outcome[why] = by_outcome.get(why, 0) + 1
    result = {
        "benchmark": "phones",
        "date": dt.date.today().isoformat(),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "polars": pl.__version__,
            "phonenumbers": phonenumbers.__version__,
            "load_average_at_start": [round(x, 2) for x in load_at_start],
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        },
        "rows": rows,
        "input": str(customers) if customers else "tests/phone_corpus.py",
        "seed": seed,
        "distinct_phones": phones.n_unique(),
        "distinct_pairs": len(set(pairs)),
        "valid_rows": valid,
        "valid_share": round(valid / rows, 4) if rows else 0.0,
        "rows_by_outcome": dict(sorted(by_outcome.items())),
        "differences": sum(e != g for e, g in zip(expected, got_list, strict=True)),
        "workers": workers if workers is not None else os.cpu_count(),
        "generate_s": round(generate_s, 2),
        "reference_loop_s": round(loop_s, 2),
        "normalize_phones_s": round(fast_s, 2),
        "reference_loop_rows_per_s": round(rows / loop_s) if loop_s else None,
        "normalize_phones_rows_per_s": round(rows / fast_s) if fast_s else None,
        "speed_ratio": round(loop_s / fast_s, 2) if fast_s else None,
    }
    return result, report


def table(r: dict) -> str:
    lines = [
        f"rows {r['rows']:,}  distinct phones {r['distinct_phones']:,}  "
        f"distinct (phone, country) {r['distinct_pairs']:,}  valid {r['valid_share']:.1%}  "
        f"(corpus built in {r['generate_s']:.1f} s)",
        f"{'':<34} {'seconds':>9} {'rows/s':>10} {'× loop':>8}",
        f"{'reference loop (1 process)':<34} {r['reference_loop_s']:>9.2f} "
        f"{r['reference_loop_rows_per_s']:>10,} {1.0:>7.2f}×",
        f"{'normalize_phones':<34} {r['normalize_phones_s']:>9.2f} "
        f"{r['normalize_phones_rows_per_s']:>10,} {r['speed_ratio']:>7.2f}×",
        f"differences: {r['differences']:,}",
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=20261123)
    ap.add_argument("--workers", type=int, default=None, help="normalize_phones workers")
    ap.add_argument("--customers", type=Path, help="a CRM extract's phones instead of the corpus")
    ap.add_argument("--json", type=Path, default=ROOT / "benchmarks/results/phones.json")
    args = ap.parse_args()
    result, report = run(args.rows, args.seed, args.workers, args.customers)
    print(table(result))
    print(json.dumps(result))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.json}")
    if report:
        print(report, file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
