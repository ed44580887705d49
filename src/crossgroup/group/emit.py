"""Emit a checked release: the one place in the processor's tail that writes (DESIGN §8).

Everything is staged in the run's commit (crossgroup.commit) and reaches `out_dir` with the
replay ledger's lines when it commits: one sealed return package per maison taking part (an
absent one gets none; each manifest names the maisons that took part), the processor's
report tables and page, and the audit entry that lists the digest of each. Plaintext return
tables are written only to the private working directory, for sealing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from crossgroup import audit
from crossgroup.commit import Transaction
from crossgroup.crypto.package import seal_package
from crossgroup.errors import PrivacyCheckError
from crossgroup.group.ingest import Batch
from crossgroup.group.release import Release
from crossgroup.privacy.policy import ReleasePolicy
from crossgroup.privacy.release_checks import MaisonRelease

AUDIT_LOG = "audit.jsonl"


@dataclass(frozen=True)
class Emitted:
    """Final paths of what a run wrote, and the audit entry that records it."""

    returns: dict[str, Path]
    reports: list[Path]
    audit_log: Path
    audit_head: str


@dataclass(frozen=True)
class WrittenReturn:
    """One maison's checked return tables, written in the private working directory."""

    tables: dict[str, Path]
    rows: int  # rows of its segments table


def write_return(release: MaisonRelease, work: Path) -> WrittenReturn:
    """Write one maison's return tables in the private workdir, each read back: what is
    sealed must be exactly what the release checks passed."""
    folder = work / "returns" / release.maison
    folder.mkdir(parents=True, exist_ok=True)
    tables = {}
    for name, frame in release.tables().items():
        tables[name] = folder / f"{name}.parquet"
        frame.write_parquet(tables[name], compression="zstd", statistics=False)
        if not pl.read_parquet(tables[name]).equals(frame):
            raise PrivacyCheckError(f"return for {release.maison}: {name} changed when written")
    return WrittenReturn(tables, release.segments.height)


def emit_release(
    release: Release,
    written: dict[str, WrittenReturn],
    *,
    policy: ReleasePolicy,
    batch: Batch,
    keys,
    out_dir: Path,
    tx: Transaction,
    report_html: str,
    record: dict[str, Any],
    timings,
    now: dt.datetime | None = None,
) -> Emitted:
    """Seal the written returns, write the reports and add the run's audit entry to the
    commit.

    `record` holds the audit entry's inputs, counts and settings; `timings()` the stage
    times so far, read just before the entry is made. Nothing reaches `out_dir` before the
    caller's transaction commits.
    """
    out_dir = Path(out_dir)
    log = out_dir / AUDIT_LOG
    staging = tx.stage_output(out_dir)
    returns = {
        package.maison: _seal_return(
            written[package.maison],
            policy,
            batch,
            package,
            keys,
            staging,
            release.noise,
            release.definitions,
        )
        for package in batch.packages
    }
    reports = _write_reports(release, report_html, staging / "reports")
    outputs = [_output(staging, path, package_id=pid) for path, pid in returns.values()]
    outputs += [_output(staging, path) for path in reports]
    entry = tx.audit(
        log, party=keys.party_id, command="process", outputs=outputs, timings=timings(),
        signer=keys.signing_key, now=now, **record,
    )  # fmt: skip
    return Emitted(
        returns={m: out_dir / path.relative_to(staging) for m, (path, _) in returns.items()},
        reports=[out_dir / path.relative_to(staging) for path in reports],
        audit_log=log,
        audit_head=audit.entry_digest(entry),
    )


def _seal_return(
    written: WrittenReturn, policy, batch, package, keys, staging: Path, noise, definitions: str
):
    """Seal one maison's written tables for it; its signed summary says how the group-wide
    figures were made (threshold, or DP with the epsilon it spent and the noise's margin)."""
    dp = {} if noise is None else {
        "epsilon": noise.epsilon, "delta": noise.delta, "margin_95": noise.margin,
        "dp_definitions": definitions,
    }  # fmt: skip
    maison = package.maison
    target = staging / "returns" / maison
    target.mkdir(parents=True, exist_ok=True)
    path, manifest = seal_package(
        target,
        kind="return",
        sender=keys,
        recipient=maison,
        tables=written.tables,
        batch_id=package.manifest.batch_id,
        as_of=batch.as_of,
        matching_key_id=batch.matching_key_id,
        summary={
            "rows": written.rows,
            "k": policy.k,
            "k_aggregate": policy.k_aggregate,
            "group_figures": policy.group_figures,
            **dp,
            **batch.participation(),  # which maisons took part: ids only, no figure of theirs
        },
    )
    return Path(path), manifest.package_id


def _write_reports(release: Release, report_html: str, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, frame in release.reports.items():
        paths.append(folder / f"{name}.parquet")
        frame.write_parquet(paths[-1], compression="zstd", statistics=False)
    paths.append(folder / "group_report.html")
    paths[-1].write_text(report_html, encoding="utf-8")
    return paths


def _output(staging: Path, path: Path, **extra) -> dict:
    return {"file": str(path.relative_to(staging)), "sha256": audit.file_digest(path), **extra}
