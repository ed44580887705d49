"""The processor's batch as named stages: verify -> erase -> decrypt -> resolve -> features ->
segment -> generalize -> release, each timed (DESIGN §5, §7 `crossgroup process`).

Plaintext lives only in a private working directory (DuckDB spills there too) that is removed
whatever happens; outputs are staged and moved in only after the privacy checks passed and
everything was sealed; the replay ledger is updated last, then the input packages are deleted
or moved under retention. Erasure packages are applied first and commit on their own
(group/erasure.py), and the suppression ledger filters the batch right after decryption.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from crossgroup import audit
from crossgroup.config import GroupConfig, Taxonomy, load_taxonomy
from crossgroup.crypto.keys import require_processor_keys
from crossgroup.engine import Engine
from crossgroup.group import release as rel
from crossgroup.group.generalize import generalize, released_sector_names
from crossgroup.group.ingest import (
    Batch,
    build_views,
    decrypt_batch,
    verify_inbox,
)
from crossgroup.io import private_workdir, staged_output
from crossgroup.privacy.release_checks import MaisonRelease, check_release

STAGES = ("verify", "erase", "decrypt", "resolve", "features", "segment", "generalize", "release")


class StageTimer:
    """Times named stages and reports progress lines (to stderr in the CLI)."""

    def __init__(self, progress: Callable[[str], None] | None = None) -> None:
        self.timings: dict[str, float] = {}
        self._started: dict[str, float] = {}
        self._progress = progress or (lambda _line: None)

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        self._progress(f"{name} ...")
        start = self._started[name] = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = time.perf_counter() - start
        self._progress(f"{name} done in {self.timings[name]:.2f} s")

    def so_far(self) -> dict[str, float]:
        """Finished stages plus the time spent so far in the running one."""
        now = time.perf_counter()
        running = {n: now - t for n, t in self._started.items() if n not in self.timings}
        return {**self.timings, **running}


@dataclass
class ProcessResult:
    """What a run produced, for the CLI summary (counts only, no identifiers)."""

    returns: dict[str, Path]
    reports: list[Path]
    audit_log: Path
    audit_head: str
    timings: dict[str, float]
    counts: dict
    skipped: list[tuple[str, str]] = field(default_factory=list)


def process_batch(
    inbox: Path,
    keys_dir: Path,
    out_dir: Path,
    *,
    group: GroupConfig,
    skip_invalid: bool = False,
    taxonomy: Taxonomy | None = None,
    work_parent: Path | None = None,
    progress: Callable[[str], None] | None = None,
    now: dt.datetime | None = None,
) -> ProcessResult:
    """Run one batch end to end; raises InputError / SecurityError / PrivacyCheckError.

    An inbox holding only erasure packages updates the suppression ledger and the retained
    inputs and writes no return.
    """
    from crossgroup.crypto.keys import load_party
    from crossgroup.group.erasure import apply_erasures
    from crossgroup.group.retention import retained_packages, utc_now

    taxonomy = taxonomy or load_taxonomy()
    now = utc_now(now)
    keys = load_party(keys_dir)
    require_processor_keys(keys, keys_dir)
    timer = StageTimer(progress)
    with timer.stage("verify"):
        batch = verify_inbox(inbox, keys, group, skip_invalid=skip_invalid, now=now)
    erased = None
    if batch.erasures:
        with (
            timer.stage("erase"),
            private_workdir(work_parent, prefix="crossgroup-erase-") as work,
        ):
            erased = apply_erasures(
                batch.erasures, keys, out_dir, work, retained=retained_packages(out_dir), now=now
            )
    if not batch.packages:
        log = Path(out_dir) / "audit.jsonl"
        return ProcessResult(
            returns={}, reports=[], audit_log=log, audit_head=audit.head_digest(log),
            timings=dict(timer.timings), counts={"packages": 0, **_erasure_counts(erased)},
            skipped=[(s.path.name, s.reason) for s in batch.skipped],
        )  # fmt: skip
    with (
        private_workdir(work_parent, prefix="crossgroup-process-") as work,
        Engine(work, memory_limit=group.memory_limit, threads=group.threads) as engine,
    ):
        result = _run(batch, keys, engine, work, out_dir, group, taxonomy, timer, now)
    from crossgroup.crypto.package import accept_packages
    from crossgroup.group.retention import dispose_inputs

    accept_packages(keys, [p.manifest for p in batch.packages], now=now)
    dispose_inputs(batch.packages, out_dir, result.counts["inputs_after_run"])
    result.counts.update(_erasure_counts(erased))
    return result


def _erasure_counts(erased) -> dict:
    if erased is None:
        return {"erasure_packages": 0}
    return {
        "erasure_packages": len(erased.audit_entry["inputs"]),
        "erased_customers_listed": sum(erased.customers_listed.values()),
        "suppression_entries_added": erased.ledger_added,
        "retained_packages_deleted": len(erased.retained_deleted),
    }  # fmt: skip


def _run(batch: Batch, keys, engine: Engine, work: Path, out_dir: Path, group, taxonomy, timer,
         now):  # fmt: skip
    from crossgroup.group.erasure import suppress_decrypted
    from crossgroup.group.features import person_features, sector_slug
    from crossgroup.group.resolve import match_figures, resolve_persons
    from crossgroup.group.retention import plan_dispositions
    from crossgroup.group.segment import configured_model

    with timer.stage("decrypt"):
        tables = decrypt_batch(batch, keys, work)
        suppressed = suppress_decrypted(tables, keys)
        plan = plan_dispositions(batch.packages, group, now, suppressed)
        build_views(engine, tables)
    with timer.stage("resolve"):
        nodes_table = resolve_persons(
            engine, "identities", max_records_per_token=group.max_records_per_token
        )
        figures = match_figures(engine, nodes_table, k_aggregate=group.k_aggregate)
        person_nodes = engine.to_polars(f"SELECT maison, maison_ref, person_id FROM {nodes_table}")
    with timer.stage("features"):
        activity = pl.concat(
            [
                pl.scan_parquet(paths["activity"]).with_columns(maison=pl.lit(maison))
                for maison, paths in tables.items()
            ]
        )
        features = person_features(
            person_nodes.lazy(), activity, as_of=batch.as_of, taxonomy=taxonomy
        ).sort("person_id")
    sector_columns = {s: f"share_{sector_slug(s)}" for s in taxonomy.sector_names}
    # A sector with too few participating maisons would name a maison: pool it (DESIGN §4.4).
    sector_maisons = Counter(
        sector for p in batch.packages if (sector := keys.registry.party(p.maison).sector)
    )
    released_sectors = released_sector_names(
        taxonomy.sector_names, sector_maisons, min_maisons=group.min_maisons_per_sector
    )
    with timer.stage("segment"):
        model = configured_model(group, released_sectors).fit(features)
        segments = model.predict(features)
    with timer.stage("generalize"):
        gen = generalize(
            features,
            segments,
            k=group.k,
            labels=model.labels_,
            sector_columns=sector_columns,
            n_segments=model.n_segments_,
            sector_maisons=sector_maisons,
            min_maisons_per_sector=group.min_maisons_per_sector,
        )
    with (
        timer.stage("release"),
        contextlib.ExitStack() as audit_lock,  # taken by _release, let go once moved in
        staged_output(out_dir) as staging,
    ):
        outcome = _release(
            batch, keys, engine, work, staging, group, gen, model, features, figures,
            person_nodes, sector_columns, timer, suppressed=suppressed, plan=plan, now=now,
            sector_maisons=sector_maisons, audit_lock=audit_lock,
        )  # fmt: skip
    final = out_dir / "audit.jsonl"
    outcome["reports"] = [out_dir / "reports" / p.name for p in outcome["reports"]]
    return ProcessResult(
        returns={m: out_dir / "returns" / m / p.name for m, p in outcome["returns"].items()},
        reports=outcome["reports"],
        audit_log=final,
        audit_head=audit.head_digest(final),
        timings=dict(timer.timings),
        counts=outcome["counts"],
        skipped=[(s.path.name, s.reason) for s in batch.skipped],
    )


def _release(batch, keys, engine, work, staging, group, gen, model, features, figures,
             person_nodes, sector_columns, timer, *, suppressed, plan, now,
             sector_maisons, audit_lock) -> dict:  # fmt: skip
    """Build, check, seal and report; every file lands in `staging` (moved in on success)."""
    from crossgroup.crypto.package import seal_package

    sectors = list(sector_columns)
    released = gen.released.join(
        rel.affinity_flags(features, sector_columns), on="person_id", how="left"
    )
    group_raw = rel.scope_cells(released, "group", sectors)
    group_cells = rel.suppress(group_raw, group.k_aggregate)
    exported = engine.to_polars("SELECT maison, maison_ref FROM identities")
    glossary = rel.glossary(model.labels_, model.descriptions_)
    withheld_ids = person_nodes.join(gen.released.select("person_id"), on="person_id", how="anti")
    releases: dict[str, MaisonRelease] = {}
    paths: dict[str, dict[str, Path]] = {}
    for package in batch.packages:
        m = package.maison
        segments = rel.maison_segments(gen.released, person_nodes, m)
        own = person_nodes.filter(pl.col("maison") == m).join(released, on="person_id")
        withheld = withheld_ids.filter(pl.col("maison") == m).height
        tables = {
            "segments": segments,
            "aggregates": rel.maison_aggregates(
                own,
                group_raw,  # suppressed per recipient: it knows its own counts exactly
                sectors,
                k=group.k,
                k_aggregate=group.k_aggregate,
                withheld=withheld,
            ),
            "glossary": glossary,
        }
        folder = work / "returns" / m
        folder.mkdir(parents=True, exist_ok=True)
        paths[m] = {}
        for name, frame in tables.items():
            paths[m][name] = folder / f"{name}.parquet"
            frame.write_parquet(paths[m][name], compression="zstd", statistics=False)
        # the checks read back exactly the files about to be sealed
        releases[m] = MaisonRelease(m, *(pl.read_parquet(paths[m][t]) for t in tables))
    loss = rel.loss_table(gen.loss, gen.persons, gen.persons_generalized, gen.persons_suppressed)
    reports = {
        "aggregates": group_cells,
        "match_figures": rel.match_cells(figures, group.k_aggregate),
        "segment_quality": rel.quality_table(model.quality_, model.labels_, group.k_aggregate),
        "suppression": loss,
    }
    names = {m: _display_name(keys, m) for m in group.maisons}
    check_release(
        releases,
        exported_refs={
            m: exported.filter(pl.col("maison") == m).get_column("maison_ref") for m in releases
        },
        person_nodes=person_nodes,
        k=group.k,
        k_aggregate=group.k_aggregate,
        maison_names=names,
        reports=reports,
        sector_maisons=sector_maisons,
        min_maisons_per_sector=group.min_maisons_per_sector,
    )
    returns: dict[str, Path] = {}
    outputs = []
    for package in batch.packages:
        m = package.maison
        target = staging / "returns" / m
        target.mkdir(parents=True, exist_ok=True)
        path, manifest = seal_package(
            target,
            kind="return",
            sender=keys,
            recipient=m,
            tables=paths[m],
            batch_id=package.manifest.batch_id,
            as_of=batch.as_of,
            matching_key_id=batch.matching_key_id,
            summary={
                "rows": releases[m].segments.height,
                "k": group.k,
                "k_aggregate": group.k_aggregate,
            },
        )
        returns[m] = Path(path)
        outputs.append(_output(staging, Path(path), package_id=manifest.package_id))
    report_dir = staging / "reports"
    report_dir.mkdir(parents=True, exist_ok=True)
    report_paths = []
    for name, frame in reports.items():
        report_paths.append(report_dir / f"{name}.parquet")
        frame.write_parquet(report_paths[-1], compression="zstd", statistics=False)
    html_path = report_dir / "group_report.html"
    html_path.write_text(
        rel.group_report_html(
            batch_id=", ".join(sorted({str(p.manifest.batch_id) for p in batch.packages})),
            as_of=str(batch.as_of),
            cells=group_cells,
            loss=loss,
            quality=reports["segment_quality"],
            timings=timer.timings,
        ),
        encoding="utf-8",
    )
    report_paths.append(html_path)
    outputs += [_output(staging, p) for p in report_paths]
    counts = {
        "packages": len(batch.packages),
        "skipped": len(batch.skipped),
        "records": figures.get("records"),
        "persons": gen.persons,
        "persons_generalized": gen.persons_generalized,
        "persons_withheld": gen.persons_suppressed,
        "returned_rows": {m: r.segments.height for m, r in releases.items()},
        "generalized_by_attribute": gen.summary()["by_attribute"],
        "aggregate_cells_suppressed": int(group_cells.filter(pl.col("suppressed")).height),
        "segments": int(model.n_segments_),
        "records_suppressed": dict(suppressed),
        "ignored_tokens": figures.get("ignored_tokens", 0),
        "ignored_tokens_shared_across_maisons": figures.get(
            "ignored_tokens_shared_across_maisons", 0
        ),
        "split_components": figures.get("split_components", 0),
        "split_records": figures.get("split_records", 0),
    }
    timings = timer.so_far()  # the release stage up to this entry
    # the entry lands with the outputs it lists: the log stays locked until they are moved in
    log = staging.parent / "audit.jsonl"
    audit_lock.enter_context(audit.locked(log))
    audit.record(
        log,
        party=keys.party_id,
        command="process",
        inputs=[
            {
                "package_id": p.manifest.package_id,
                "sender": p.maison,
                "batch_id": str(p.manifest.batch_id),
                "file": p.path.name,
                "sha256": p.sha256,
                "after_run": plan[p.path.name],
            }
            for p in batch.packages
        ],
        counts={
            **counts,
            "skipped_packages": [{"file": s.path.name, "reason": s.reason} for s in batch.skipped],
        },
        settings={
            "k": group.k,
            "k_aggregate": group.k_aggregate,
            "max_records_per_token": group.max_records_per_token,
            "n_segments": group.n_segments or "auto",
            "random_state": group.random_state,
            "as_of": str(batch.as_of),
            "matching_key_id": batch.matching_key_id,
            "memory_limit": group.memory_limit,
            "threads": group.threads,
        },
        timings=timings,
        outputs=outputs,
        signer=keys.signing_key,
        now=now,
        staging=staging,
    )
    return {"returns": returns, "reports": report_paths,
            "counts": {**counts, "inputs_after_run": plan}}  # fmt: skip


def _output(staging: Path, path: Path, **extra) -> dict:
    return {"file": str(path.relative_to(staging)), "sha256": audit.file_digest(path), **extra}


def _display_name(keys, maison: str) -> str:
    """A maison's display name from the registry ('' when unknown)."""
    with contextlib.suppress(Exception):
        party = keys.registry.party(maison)
        return str(getattr(party, "name", "") or getattr(party, "display_name", "") or "")
    return ""
