"""The processor's batch as named stages: verify -> erase -> decrypt -> resolve -> features ->
segment -> generalize -> release, each timed (DESIGN §5, §7 `crossgroup process`). The
release is three steps: build (group/release.py, frames from the engine, one maison at a
time), check (privacy/release_checks.py) and emit (group/emit.py, the only writes);
docs/architecture.md.

The whole run holds the processor's lock (crossgroup.commit), from the replay check until its
commit. Plaintext lives only in a private working directory (DuckDB spills there too) that
is removed whatever happens, or by the next run after a crash. The outputs, the audit entry,
the replay ledger's lines and the inputs' deletion (or retention) form one commit, made only
after the privacy checks passed and everything was sealed. Erasure packages are applied first
and commit on their own (group/erasure.py); the suppression ledger filters the batch right
after decryption.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from crossgroup import audit
from crossgroup.commit import Transaction, party_session, transaction
from crossgroup.config import GroupConfig, Taxonomy, load_taxonomy
from crossgroup.crypto.keys import PartyKeys, require_processor_keys
from crossgroup.engine import DuckDBEngine, Engine
from crossgroup.group.emit import AUDIT_LOG, WrittenReturn, emit_release, write_return
from crossgroup.group.generalize import generalize_table
from crossgroup.group.ingest import (
    Batch,
    build_views,
    decrypt_batch,
    refuse_missing_maisons,
    verify_inbox,
)
from crossgroup.group.release import Release, ReleaseTables, build_release, person_tables
from crossgroup.group.run_record import audit_record, run_counts, stage_budget
from crossgroup.io import private_workdir
from crossgroup.privacy import budget
from crossgroup.privacy import release_checks as checks
from crossgroup.privacy.policy import ReleasePolicy
from crossgroup.report.group_report import group_report_html


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
    privacy_budget: dict | None = None  # what a DP release spent (`run_record.stage_budget`)


def open_engine(work: Path, group: GroupConfig) -> Engine:
    """The engine the pipeline names (`[engine] kind`, which `--engine` may replace), its
    scratch space inside `work`; `process` and `evaluate` both open theirs here. Spark that
    cannot start (no pyspark, no Java) is an InputError, exit code 2."""
    if group.engine == "spark":
        from crossgroup.engine_spark import SparkEngine

        return SparkEngine(work, master=group.spark_master, spark_settings=group.spark_settings)
    return DuckDBEngine(work, memory_limit=group.memory_limit, threads=group.threads)


def process_batch(
    inbox: Path,
    keys: PartyKeys,
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
    inputs and writes no return. A maison of the pipeline with no package in the inbox
    refuses the batch unless `group.allow_missing`; then only the maisons present take part.
    """
    from crossgroup.group.retention import utc_now

    require_processor_keys(keys, keys.directory)
    with party_session(keys.directory, party=keys.party_id, command="process"):
        return _process(
            Path(inbox), keys, Path(out_dir), group=group, skip_invalid=skip_invalid,
            taxonomy=taxonomy or load_taxonomy(), work_parent=work_parent,
            timer=StageTimer(progress), now=utc_now(now),
        )  # fmt: skip


def _process(inbox, keys, out_dir, *, group, skip_invalid, taxonomy, work_parent, timer, now):
    """The batch under the processor's lock: the replay check, the erasures' commit, the
    batch's commit (outputs, audit entry, ledger lines and inputs disposed together)."""
    from crossgroup.crypto.package import accept_packages
    from crossgroup.group.erasure import apply_erasures
    from crossgroup.group.retention import dispose_inputs, retained_packages

    audit.require_intact(out_dir / AUDIT_LOG)  # refuse before working, not after
    with timer.stage("verify"):
        batch = verify_inbox(inbox, keys, group, skip_invalid=skip_invalid, now=now)
        refuse_missing_maisons(batch, inbox, allow_missing=group.allow_missing)
    erased = None
    if batch.erasures:
        with (
            timer.stage("erase"),
            private_workdir(work_parent, prefix="crossgroup-erase-", party=keys.party_id) as work,
        ):
            erased = apply_erasures(
                batch.erasures, keys, out_dir, work, retained=retained_packages(out_dir), now=now
            )
    log = out_dir / AUDIT_LOG
    if not batch.packages:
        return ProcessResult(
            returns={}, reports=[], audit_log=log, audit_head=audit.head_digest(log),
            timings=dict(timer.timings), counts={"packages": 0, **_erasure_counts(erased)},
            skipped=[(s.path.name, s.reason) for s in batch.skipped],
        )  # fmt: skip
    # after the erasures, which a refused release must not hold back; the audit log, checked
    # intact above, records the spend of every release too
    audited = audit.read_entries(log) if log.exists() else []
    spent_before = budget.refuse_release(keys.directory, batch, group, now, audited)
    with (
        private_workdir(work_parent, prefix="crossgroup-process-", party=keys.party_id) as work,
        open_engine(work, group) as engine,
        transaction(keys.directory) as tx,
    ):
        result = _run(batch, keys, engine, work, out_dir, group, taxonomy, timer, now, tx,
                      spent_before)  # fmt: skip
        accept_packages(tx, keys, [p.manifest for p in batch.packages], now=now)
        dispose_inputs(tx, batch.packages, out_dir, result.counts["inputs_after_run"])
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


_SEGMENT = "crossgroup.group.model_state"  # and segment.py, scikit-learn


def _import_ahead(module: str) -> None:
    """Import on a helper thread; a failure surfaces where the module is used, not here."""
    with contextlib.suppress(Exception):
        importlib.import_module(module)


def _run(batch: Batch, keys, engine: Engine, work: Path, out_dir: Path, group: GroupConfig,
         taxonomy: Taxonomy, timer: StageTimer, now: dt.datetime, tx: Transaction,
         spent_before: dict[str, float]) -> ProcessResult:  # fmt: skip
    from crossgroup.group.erasure import suppress_decrypted
    from crossgroup.group.features import features_table, sector_slug
    from crossgroup.group.resolve import drop_evaluation_tables, match_figures, resolve_persons
    from crossgroup.group.retention import plan_dispositions

    # scikit-learn takes about a second to import: do it on another thread while DuckDB and
    # Polars (which release the GIL) decrypt, resolve and compute features
    sklearn_import = threading.Thread(target=_import_ahead, args=(_SEGMENT,))
    sklearn_import.start()
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
        drop_evaluation_tables(engine)
    with timer.stage("features"):
        features = features_table(
            engine, nodes_table, "activity", as_of=batch.as_of, taxonomy=taxonomy
        )
    sector_columns = {s: f"share_{sector_slug(s)}" for s in taxonomy.sector_names}
    policy = release_policy(group, taxonomy, keys.registry, batch.maisons)
    with timer.stage("segment"):
        sklearn_import.join()
        series = importlib.import_module(_SEGMENT).segment_series(
            engine, features, group=group, policy=policy, taxonomy=taxonomy,
            party_dir=keys.directory, as_of=batch.as_of,
        )  # fmt: skip
        model, segments = series.model, series.segments
    dp = policy.group_figures == "dp"
    # DP mode counts under definitions from an earlier batch when the model is reused: its
    # centres and the value-tier cuts saved with it (docs/privacy-invariants.md, 10)
    saved = dp and series.decision.reuse and series.saved_cuts is not None
    with timer.stage("generalize"):
        gen = generalize_table(
            engine,
            features,
            segments,
            policy=policy,
            labels=model.labels_,
            sector_columns=sector_columns,
            name="released",
            keep_codes=dp,  # DP mode counts the bands themselves
            cuts=series.saved_cuts if saved else None,
        )
        series.stage(tx, keys.directory, gen.cuts)  # committed with the batch, or not at all
        affinity, spend = person_tables(
            engine, features, sector_columns=sector_columns, policy=policy
        )
        engine.drop(features, segments)
    with timer.stage("release"):
        # build (frames, one maison at a time) -> check (privacy/) -> emit (the only writes);
        # the refs come to Python only now, one maison's at a time
        release = build_release(
            engine,
            policy,
            maisons=list(batch.maisons),
            generalization=gen,
            model=model,
            tables=ReleaseTables("released", affinity, nodes_table, spend),
            sectors=list(sector_columns),
            match_figures=figures,
            maison_sectors={m: keys.registry.party(m).sector for m in batch.maisons},
            definitions="saved" if saved else "batch",
        )
        if gen.codes:
            engine.drop(gen.codes)
        written = _checked_returns(release, engine, policy, work)
        counts = run_counts(batch, release, written, gen, model, figures, suppressed)
        spent = stage_budget(tx, keys.directory, release, batch, group, now, spent_before)
        emitted = emit_release(
            release,
            written,
            policy=policy,
            batch=batch,
            keys=keys,
            out_dir=out_dir,
            tx=tx,
            report_html=group_report_html(
                batch_id=batch.batch_id,
                as_of=str(batch.as_of),
                cells=release.group_cells,
                loss=release.reports["suppression"],
                quality=release.reports["segment_quality"],
                timings=timer.timings,
                model=series.audit(),
                labels=model.labels_,
                privacy_budget=spent,
                **batch.participation(),
            ),
            record=audit_record(batch, plan, counts, group, series.audit(), spent),
            timings=timer.so_far,  # the release stage up to the audit entry
            now=now,
        )
    return ProcessResult(
        returns=emitted.returns,
        reports=emitted.reports,
        audit_log=emitted.audit_log,
        audit_head=emitted.audit_head,
        timings=dict(timer.timings),
        counts={**counts, "inputs_after_run": plan},
        skipped=[(s.path.name, s.reason) for s in batch.skipped],
        privacy_budget=spent,
    )


def release_policy(group: GroupConfig, taxonomy: Taxonomy, registry, maisons) -> ReleasePolicy:
    """The batch's policy: the pipeline's thresholds, and sector and maison names from the
    public registry (a sector with too few participating maisons would name one)."""
    sector_maisons = Counter(s for m in maisons if (s := registry.party(m).sector))
    return ReleasePolicy.for_batch(
        group,
        taxonomy,
        sector_maisons=sector_maisons,
        maison_names={m: _display_name(registry, m) for m in group.maisons},
    )


def _checked_returns(
    release: Release, engine: Engine, policy: ReleasePolicy, work: Path
) -> dict[str, WrittenReturn]:
    """Each maison's return built, checked and written in turn (the driver holds one at a
    time), then (6) checked across the batch on the files written and the processor's reports
    checked; any problem refuses the whole release (PrivacyCheckError, exit 3), and nothing
    written so far leaves the private working directory."""
    problems: list[str] = []
    written: dict[str, WrittenReturn] = {}
    complete: dict[str, str] = {}
    for i, maison in enumerate(release.maisons):
        built = release.maison_return(maison, policy)
        # read back from each export, not from the nodes: the check trusts no stage
        exported = engine.to_polars("SELECT maison_ref FROM identities WHERE maison = ?", [maison])
        problems += checks.maison_problems(
            built, policy=policy, exported_refs=exported.get_column("maison_ref")
        )
        written[maison] = write_return(built, work)
        if checks.has_full_combination(built.segments):
            complete[maison] = engine.view_parquet(
                f"checked_segments_{i}", written[maison].tables["segments"]
            )
        del built, exported
    problems += checks.combination_problems(engine, complete, release.tables.nodes, policy=policy)
    problems += checks.report_problems(
        release.reports, k_aggregate=policy.k_aggregate, group_figures=policy.group_figures
    )
    checks.refuse_if_any(problems)
    return written


def _display_name(registry, maison: str) -> str:
    """A maison's display name from the registry ('' when unknown)."""
    with contextlib.suppress(Exception):
        party = registry.party(maison)
        return str(getattr(party, "name", "") or getattr(party, "display_name", "") or "")
    return ""
