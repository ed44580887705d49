"""Evaluation of resolution and segmentation against synthetic ground truth (never in the pipeline).

Link quality is pairwise over exported records: a predicted link is two records resolved to
one person; it is correct when both belong to one true person. Recall is measured against the
links that are *recoverable*: two records of one true person connected through identifiers
that both maisons actually exported (after consent, window and the export's own placeholder
guard) and that survive the processor's guard, using only edges between that person's own
records. Segment agreement is the adjusted Rand index between segments and planted
archetypes over resolved persons.

Resolution, features and segments are the processor's own stages, on the engine the pipeline
names (DuckDB or Spark): evaluating on Spark scores what a Spark run computes.
"""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
from sklearn.metrics import adjusted_rand_score

from crossgroup.config import GroupConfig, Taxonomy
from crossgroup.engine import Engine, Step
from crossgroup.errors import InputError
from crossgroup.group.components import components_in_engine
from crossgroup.group.features import features_table
from crossgroup.group.resolve import (
    NODES,
    USABLE,
    edges_step,
    match_figures,
    resolve_persons,
)
from crossgroup.group.segment import configured_model, fit_on_sample, segment_table
from crossgroup.privacy.policy import ReleasePolicy

PRECISION_TARGET = 0.999
RECALL_TARGET = 0.99
NODE_TRUTH = "eval_node_truth"


def _links(*labels: np.ndarray) -> int:
    """Pairs of records sharing every given labelling: sum of C(n, 2) over joint groups."""
    frame = pl.DataFrame({f"l{i}": lab for i, lab in enumerate(labels)})
    sizes = frame.group_by(frame.columns).len()["len"].cast(pl.Int64)
    return int((sizes * (sizes - 1) // 2).sum())


def link_metrics(predicted: np.ndarray, truth: np.ndarray, recoverable: np.ndarray) -> dict:
    """Pairwise precision and recall from per-record labels, without listing the pairs.

    `recoverable` labels must refine `truth` (each recoverable group within one true person).
    """
    predicted_links = _links(predicted)
    true_links = _links(truth)
    recoverable_links = _links(recoverable)
    correct = _links(predicted, truth)
    recovered = _links(predicted, recoverable)
    precision = correct / predicted_links if predicted_links else 1.0
    recall = recovered / recoverable_links if recoverable_links else 1.0
    return {
        "records": len(predicted),
        "predicted_links": predicted_links,
        "correct_links": correct,
        "true_links": true_links,
        "recoverable_links": recoverable_links,
        "recovered_links": recovered,
        "precision": precision,
        "recall_recoverable": recall,
        "recall_all_true_links": correct / true_links if true_links else 1.0,
        "meets_targets": precision >= PRECISION_TARGET and recall >= RECALL_TARGET,
    }


def segment_agreement(person_segments: pl.DataFrame, person_archetypes: pl.DataFrame) -> dict:
    """ARI between segments and planted archetypes, plus where each archetype landed."""
    joined = person_segments.join(person_archetypes, on="person_id", how="inner")
    crosstab = (
        joined.group_by("archetype", "segment_label")
        .len()
        .sort(["archetype", "len", "segment_label"], descending=[False, True, False])
        .group_by("archetype", maintain_order=True)
        .agg(
            pl.col("segment_label").first().alias("main_segment"),
            (pl.col("len").first() / pl.col("len").sum()).alias("share_in_main_segment"),
        )
    )
    return {
        "persons": joined.height,
        "adjusted_rand_index": float(
            adjusted_rand_score(joined["archetype"].to_numpy(), joined["segment"].to_numpy())
        ),
        "archetypes": {
            r["archetype"]: {
                "main_segment": r["main_segment"],
                "share": round(r["share_in_main_segment"], 4),
            }
            for r in crosstab.iter_rows(named=True)
        },
    }


def node_truth_step(ref_truth: str) -> Step:
    """Each resolved record's true person (null when the record cannot be traced back)."""
    return Step(
        NODE_TRUTH,
        f"""
        SELECT n.node_id, t.true_person, t.archetype
        FROM {NODES} n LEFT JOIN {ref_truth} t
          ON t.maison = n.maison AND t.maison_ref = n.maison_ref
        """,
    )


def recoverable_step() -> Step:
    """Usable token memberships keyed also by true person: links that stay within a person."""
    return Step(
        "eval_usable_by_person",
        f"""
        SELECT u.node_id, u.token_type, u.token, t.true_person
        FROM {USABLE} u JOIN {NODE_TRUTH} t USING (node_id)
        WHERE t.true_person IS NOT NULL
        """,
    )


def evaluate_batch(
    engine: Engine,
    identities: str,
    activity: str,
    ref_truth: pl.DataFrame,
    *,
    group: GroupConfig,
    taxonomy: Taxonomy,
    as_of: date,
) -> dict:
    """Resolve, segment and score one batch already loaded in `engine` (either engine).

    `identities` is the processor's identities table (maison, maison_ref, email_token,
    phone_token); `activity` the export activity plus `maison` (also a table or view);
    `ref_truth` maps (maison, maison_ref) to `true_person` and `archetype`. The scores need
    per-record labels (resolved person, true person, recoverable group) and each person's
    segment on the driver, beyond what a processor run brings there (DESIGN §8): fine for
    evaluation, which runs on synthetic data only.
    """
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    person_nodes = resolve_persons(
        engine, identities, max_records_per_token=group.max_records_per_token
    )
    timings["resolve"] = time.perf_counter() - t0
    figures = match_figures(engine, person_nodes, k_aggregate=group.k_aggregate)

    engine.register(
        "eval_ref_truth",
        ref_truth.select("maison", "maison_ref", pl.col("true_person").cast(pl.Int64), "archetype"),
    )
    engine.run(node_truth_step("eval_ref_truth"))
    engine.run(recoverable_step())
    engine.run(
        edges_step(
            "eval_usable_by_person", partition=("true_person",), name="eval_recoverable_edges"
        )
    )
    recoverable = components_in_engine(engine, "eval_recoverable_edges", NODES, "eval_recoverable")
    nodes = engine.to_polars(
        f"""
        SELECT n.node_id, p.person_id, t.true_person, t.archetype, r.label AS recoverable
        FROM {NODES} n
        JOIN {person_nodes} p ON p.maison = n.maison AND p.maison_ref = n.maison_ref
        JOIN {NODE_TRUTH} t ON t.node_id = n.node_id
        JOIN {recoverable} r ON r.node_id = n.node_id
        ORDER BY n.node_id
        """
    )
    unmapped = nodes["true_person"].null_count()
    # An untraceable record is its own true person: it can only lower precision.
    truth = nodes["true_person"].fill_null(-1 - nodes["node_id"]).to_numpy()
    links = link_metrics(nodes["person_id"].to_numpy(), truth, nodes["recoverable"].to_numpy())
    links["unmapped_records"] = unmapped

    t0 = time.perf_counter()
    features = features_table(engine, person_nodes, activity, as_of=as_of, taxonomy=taxonomy)
    timings["features"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    # evaluation scores segments against the truth: every sector by its own name
    everyone_named = ReleasePolicy.for_batch(group, taxonomy, sector_maisons=None, maison_names={})
    model = configured_model(group, everyone_named)
    fit_on_sample(engine, features, model)
    segments = segment_table(engine, features, model, name="eval_segments")
    timings["segment"] = time.perf_counter() - t0

    person_segments = engine.to_polars(
        f"SELECT person_id, segment FROM {segments} ORDER BY person_id"
    ).with_columns(
        pl.col("segment")
        .replace_strict(model.labels_, return_dtype=pl.String)
        .alias("segment_label")
    )
    engine.drop(features, segments)
    person_archetypes = (
        nodes.drop_nulls("archetype")
        .group_by("person_id")
        .agg(pl.col("archetype").mode().sort().first())
    )
    return {
        "as_of": as_of.isoformat(),
        "links": links,
        "match": figures,
        "segments": {
            **segment_agreement(person_segments, person_archetypes),
            "n_segments": model.n_segments_,
            "labels": {str(k): v for k, v in model.labels_.items()},
            "quality": {
                **{
                    k: v for k, v in model.quality_.items() if k not in ("silhouette_by_k", "sizes")
                },
                "silhouette_by_k": {
                    str(k): v for k, v in model.quality_["silhouette_by_k"].items()
                },
                "sizes": {str(k): v for k, v in model.quality_["sizes"].items()},
            },
        },
        "seconds": {k: round(v, 3) for k, v in timings.items()},
    }


def evaluate_exports(
    synth_dir: Path,
    inbox: Path,
    keydir: Path,
    *,
    group: GroupConfig,
    taxonomy: Taxonomy,
    work_parent: Path | None = None,
) -> dict:
    """Open a batch of export packages as the processor would, then score it against truth.

    Uses the processor's intake (verify everything, then decrypt into a private workdir) and
    each maison's local secret only to recompute maison_refs of the synthetic truth: this is
    an evaluation harness on synthetic data, never part of a processor run.
    """
    from crossgroup.crypto.keys import load_party
    from crossgroup.crypto.tokens import maison_refs
    from crossgroup.group.ingest import build_views, decrypt_batch, verify_inbox
    from crossgroup.group.pipeline import open_engine
    from crossgroup.io import private_workdir, scan_table

    truth_path = Path(synth_dir) / "truth.parquet"
    truth = scan_table(truth_path, label="truth").collect()
    missing = {"maison", "customer_id", "person_id", "archetype"} - set(truth.columns)
    if missing:
        raise InputError(f"{truth_path}: missing column(s) {', '.join(sorted(missing))}")
    processor = load_party(Path(keydir) / "processor")
    batch = verify_inbox(Path(inbox), processor, group, skip_invalid=False, check_replay=False)

    ref_truth = []
    for maison in batch.maisons:
        secret = load_party(Path(keydir) / maison).local_secret
        if not secret:
            raise InputError(f"{Path(keydir) / maison}: no local secret to recompute maison_refs")
        mine = truth.filter(pl.col("maison") == maison)
        ref_truth.append(
            mine.select(
                "maison",
                maison_refs(secret, mine["customer_id"]).alias("maison_ref"),
                pl.col("person_id").alias("true_person"),
                "archetype",
            )
        )
    with private_workdir(work_parent) as work, open_engine(work, group) as engine:
        tables = decrypt_batch(batch, processor, work, check_replay=False)
        build_views(engine, tables)
        report = evaluate_batch(
            engine,
            "identities",
            "activity",
            pl.concat(ref_truth),
            group=group,
            taxonomy=taxonomy,
            as_of=batch.as_of,
        )
    return {"maisons": list(batch.maisons), **report}
