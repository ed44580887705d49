"""Time the processor's analytics core: person resolution, features, segments.

Generates identities and activity of a given size directly (numpy + DuckDB, no full synth),
then times `resolve_persons`, `person_features` and `SegmentModel.fit/predict` separately and
reports peak RSS. The issue target for the whole process is 1M persons / ~10M purchase lines
in <= 60 s and <= 6 GiB on 2 cores; this core should take a fraction of that.

    .venv/bin/python benchmarks/bench_process_core.py --persons 100000
    .venv/bin/python benchmarks/bench_process_core.py --persons 1000000 --out bench.json
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from datetime import date

import numpy as np
import polars as pl

from crossgroup.config import load_taxonomy
from crossgroup.engine import DuckDBEngine, Engine
from crossgroup.group.features import person_features
from crossgroup.group.resolve import match_figures, resolve_persons
from crossgroup.group.segment import SegmentModel

MAISONS = ["aurelle", "kessler", "vautrin", "harrow", "celeste", "orval", "lumen", "belvoir"]
AS_OF = date(2026, 6, 30)


def generate(engine: Engine, persons: int, lines_per_person: float, seed: int) -> pl.DataFrame:
    """Create `identities` in the engine and return the activity frame (with `maison`)."""
    rng = np.random.default_rng(seed)
    taxonomy = load_taxonomy()
    categories = np.array(list(taxonomy.category_sector()))
    # Records: each person is a customer of 1..4 maisons (most of one).
    per_person = rng.choice([1, 2, 3, 4], size=persons, p=[0.6, 0.25, 0.1, 0.05])
    person = np.repeat(np.arange(persons), per_person)
    n = len(person)
    maison = rng.integers(0, len(MAISONS), size=n)
    # Same person at one maison twice is folded: keep unique (person, maison).
    key = np.unique(person.astype(np.int64) * 16 + maison)
    person, maison = key // 16, key % 16
    n = len(person)
    has_email = rng.random(n) < 0.85
    own_email = rng.random(n) < 0.1  # a different address at this maison
    has_phone = rng.random(n) < 0.6
    email_id = np.where(own_email, persons + np.arange(n), person)
    placeholder = rng.random(n) < 0.002  # a boutique phone used as a placeholder
    phone_id = np.where(placeholder, -1 - maison, person)
    engine.register(
        "bench_records",
        pl.DataFrame(
            {
                "node": np.arange(n),
                "maison": np.array(MAISONS)[maison],
                "email_id": np.where(has_email, email_id, -1),
                "phone_id": np.where(has_phone | placeholder, phone_id, -(1 << 40)),
            }
        ),
    )
    engine.execute(
        "bench identities",
        """
        CREATE OR REPLACE TABLE identities AS
        SELECT maison, unhex(md5('r' || node)) AS maison_ref,
               CASE WHEN email_id >= 0 THEN unhex(md5('e' || email_id)) END AS email_token,
               CASE WHEN phone_id > -(1::BIGINT << 40) THEN unhex(md5('p' || phone_id)) END
                 AS phone_token
        FROM bench_records
        """,
    )
    # Activity: cells spread over records, a lead sector per person (planted preference).
    lines = int(persons * lines_per_person)
    rec = rng.integers(0, n, size=lines)
    lead = (person[rec] % 6) * 5
    cat = np.where(
        rng.random(lines) < 0.7,
        lead + rng.integers(0, 5, size=lines),
        rng.integers(0, len(categories), size=lines),
    )
    cat = np.clip(cat, 0, len(categories) - 1)
    month = rng.integers(0, 36, size=lines)  # months after the window's first month
    amount = np.round(rng.lognormal(6 + (person[rec] % 4), 1.0, size=lines), 2)
    amount[rng.random(lines) < 0.03] *= -0.5
    engine.register(
        "bench_lines",
        pl.DataFrame(
            {
                "node": rec,
                "month": month,
                "group_category": categories[cat],
                "channel": np.array(["boutique", "online", "other"])[
                    rng.choice(3, size=lines, p=[0.6, 0.35, 0.05])
                ],
                "orders": rng.integers(1, 3, size=lines).astype(np.int32),
                "amount_eur": amount,
            }
        ),
    )
    return engine.to_polars(
        """
        SELECT r.maison, unhex(md5('r' || l.node)) AS maison_ref,
               (DATE '2023-07-01' + to_months(l.month::INTEGER))::DATE AS month, l.group_category,
               l.channel, sum(l.orders)::INTEGER AS orders,
               round(sum(l.amount_eur), 2) AS amount_eur
        FROM bench_lines l JOIN bench_records r USING (node)
        GROUP BY ALL
        """
    )


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=100_000)
    parser.add_argument("--lines-per-person", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sample-size", type=int, default=200_000)
    parser.add_argument("--out", help="also write the figures as JSON here")
    args = parser.parse_args()

    taxonomy = load_taxonomy()
    with DuckDBEngine(memory_limit="4GB", threads=2) as engine:
        t = time.perf_counter()
        activity = generate(engine, args.persons, args.lines_per_person, args.seed)
        setup = time.perf_counter() - t
        records = engine.count("identities")

        t = time.perf_counter()
        table = resolve_persons(engine, "identities", max_records_per_token=3)
        person_nodes = engine.to_polars(table)
        resolve_s = time.perf_counter() - t
        figures = match_figures(engine, table, k_aggregate=50)

    t = time.perf_counter()
    features = person_features(person_nodes.lazy(), activity.lazy(), as_of=AS_OF, taxonomy=taxonomy)
    features_s = time.perf_counter() - t

    t = time.perf_counter()
    model = SegmentModel(sample_size=args.sample_size, random_state=args.seed).fit(features)
    fit_s = time.perf_counter() - t
    t = time.perf_counter()
    segments = model.predict(features)
    predict_s = time.perf_counter() - t

    result = {
        "persons_generated": args.persons,
        "records": records,
        "activity_rows": activity.height,
        "resolved_persons": figures["persons"],
        "seconds": {
            "setup_not_timed": round(setup, 2),
            "resolve": round(resolve_s, 2),
            "features": round(features_s, 2),
            "segment_fit": round(fit_s, 2),
            "segment_predict": round(predict_s, 2),
            "core_total": round(resolve_s + features_s + fit_s + predict_s, 2),
        },
        "n_segments": model.n_segments_,
        "silhouette": round(model.quality_["silhouette"], 4),
        "stability_ari": round(model.quality_["stability_ari"], 4),
        "segments_predicted": len(segments),
        "peak_rss_mib": round(peak_rss_mib(), 1),
    }
    print(json.dumps(result, indent=2))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
