"""What a processor run records about itself: the counts of its summary and audit entry, and
the audit entry's inputs and settings (ids, digests and figures only, never an identifier)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import polars as pl

from crossgroup.commit import Transaction
from crossgroup.config import GroupConfig
from crossgroup.group.ingest import Batch
from crossgroup.group.release import Release
from crossgroup.privacy import budget
from crossgroup.privacy.budget import GROUP


def run_counts(batch: Batch, release: Release, written, gen, model, figures, suppressed) -> dict:
    """The run's figures for the summary and the audit log: counts only, no identifier."""
    cells = release.group_cells
    return {
        "packages": len(batch.packages),
        "skipped": len(batch.skipped),
        "records": figures.get("records"),
        "persons": gen.persons,
        "persons_generalized": gen.persons_generalized,
        "persons_withheld": gen.persons_suppressed,
        **batch.participation(),
        "returned_rows": {m: w.rows for m, w in written.items()},
        "generalized_by_attribute": gen.summary()["by_attribute"],
        "aggregate_cells_suppressed": int(cells.filter(pl.col("suppressed")).height),
        "segments": int(model.n_segments_),
        "records_suppressed": dict(suppressed),
        "ignored_tokens": figures.get("ignored_tokens", 0),
        "ignored_tokens_shared_across_maisons": figures.get(
            "ignored_tokens_shared_across_maisons", 0
        ),
        "split_components": figures.get("split_components", 0),
        "split_records": figures.get("split_records", 0),
    }


def audit_record(
    batch: Batch,
    plan: dict[str, str],
    counts: dict,
    group: GroupConfig,
    model: dict,
    privacy_budget: dict | None,
) -> dict:
    """The audit entry's inputs, counts and settings: ids, digests and figures only; `model`
    says which segment model the batch used and why (`SeriesOutcome.audit`),
    `privacy_budget` what a DP release spent (`stage_budget`)."""
    inputs = [
        {
            "package_id": p.manifest.package_id,
            "sender": p.maison,
            "batch_id": str(p.manifest.batch_id),
            "file": p.path.name,
            "sha256": p.sha256,
            "after_run": plan[p.path.name],
        }
        for p in batch.packages
    ]
    skipped = [{"file": s.path.name, "reason": s.reason} for s in batch.skipped]
    settings = {
        "k": group.k,
        "k_aggregate": group.k_aggregate,
        "max_records_per_token": group.max_records_per_token,
        "n_segments": group.n_segments or "auto",
        "random_state": group.random_state,
        "as_of": str(batch.as_of),
        "matching_key_id": batch.matching_key_id,
        "allow_missing": group.allow_missing,
        "engine": group.engine,
        "memory_limit": group.memory_limit,
        "threads": group.threads,
        "refit": group.refit,
        "segment_model": model,
        "group_figures": group.group_figures,
    }
    if privacy_budget is not None:
        settings["privacy_budget"] = privacy_budget
    return {"inputs": inputs, "counts": {**counts, "skipped_packages": skipped},
            "settings": settings}  # fmt: skip


# What the DP bound is conditional on, as the audit entry and the reports say it.
DEFINITIONS = {
    "saved": "segment model and value-tier cuts saved by an earlier batch",
    "batch": "segment model or value-tier cuts fitted on this batch: the bound holds given them",
}


def stage_budget(
    tx: Transaction,
    party_dir: Path,
    release: Release,
    batch: Batch,
    group: GroupConfig,
    now,
    before: Mapping[str, float],
) -> dict | None:
    """Stage a DP release's lines in the privacy-budget ledger (committed with the batch or
    not at all) and return what the audit entry, the group report and the register say of
    it: the mechanism, epsilon, delta, the epsilon each recipient spent and its total within
    the rolling year (`before`: the spend `budget.refuse_release` found). None in threshold
    mode."""
    if release.noise is None:
        return None
    noise = release.noise.audit()
    recipients = [*batch.maisons, GROUP]
    spends = {**dict.fromkeys(batch.maisons, release.noise.epsilon), GROUP: release.group_epsilon}
    tx.append(
        budget.ledger_path(party_dir),
        budget.records(batch_id=batch.batch_id, as_of=batch.as_of, spends=spends, noise=noise,
                       now=now),
    )  # fmt: skip
    return {
        **noise,
        "definitions": release.definitions,
        "definitions_are": DEFINITIONS[release.definitions],
        "epsilon_per_release": group.epsilon_per_release,
        "epsilon_budget_per_year": group.epsilon_budget_per_year,
        "spent": spends,
        "spent_within_a_year": {r: before[r] + spends[r] for r in recipients},
    }
