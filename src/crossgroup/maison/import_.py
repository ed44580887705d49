"""`crossgroup import`: verify a return package, relink it to the CRM, write the analyst files.

The processor only ever knew `maison_ref = HMAC(local_secret, customer_id)`. The maison
recomputes that ref for every customer in its CRM extract and joins: an exact match or nothing.
A returned ref with no customer (deleted since export) is counted and dropped, never guessed.
Plaintext exists only in a private working directory; the analyst files, the replay ledger's
line and the audit entry are one commit (crossgroup.commit), under the maison's lock.
With `previous` (the segments file of an earlier import), import also writes changes.parquet,
what changed per customer since then, in counts under k_aggregate (maison/changes.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl

from crossgroup import audit
from crossgroup.commit import party_session, transaction
from crossgroup.config import PARTY_ID
from crossgroup.contracts import ANALYST_SEGMENTS, REF_BYTES, RETURN
from crossgroup.crypto.keys import PartyKeys
from crossgroup.crypto.package import accept_packages, open_package
from crossgroup.crypto.tokens import maison_refs
from crossgroup.errors import InputError, SecurityError
from crossgroup.io import private_workdir, require_readable_file, scan_table, table_columns
from crossgroup.maison.changes import (
    Changes,
    check_previous_batch,
    compare_segments,
    file_metadata,
    read_previous_segments,
)
from crossgroup.maison.export_ledger import party_log
from crossgroup.report.maison_report import ReportContext, render_maison_report

# How the processor words its thresholds in aggregate notes (group/release.py), used when the
# manifest summary does not state them.
K_NOTE = r"^profile shared by fewer than (\d+) persons"
K_AGG_NOTE = r"^fewer than (\d+) persons$"


@dataclass(frozen=True)
class ImportResult:
    """Counts and paths of one import; no customer-level value."""

    maison_id: str
    batch_id: str
    as_of: str
    returned: int
    relinked: int
    dropped: int
    segments: int
    segments_path: Path
    report_path: Path
    csv_path: Path | None
    changes: Changes | None = None  # with --previous
    changes_path: Path | None = None


def read_customer_ids(path: Path) -> pl.Series:
    """The CRM extract's customer_id column only (nothing else is read), checked unique."""
    path = Path(path)
    lf = scan_table(path, label="customers")
    schema = table_columns(lf, path, label="customers")
    if "customer_id" not in schema:
        raise InputError(f"customers file {path}: missing required column customer_id")
    dtype = schema["customer_id"]
    if dtype != pl.String and not isinstance(dtype, pl.Categorical | pl.Enum):
        raise InputError(f"customers file {path}: column customer_id is {dtype}, expected text")
    try:
        ids = lf.select(pl.col("customer_id").cast(pl.String)).collect()["customer_id"]
    except Exception as e:  # polars raises several types for unreadable files
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise InputError(f"customers file {path} cannot be read: {first}") from None
    if ids.null_count():
        raise InputError(f"customers file {path}: {ids.null_count()} row(s) have no customer_id")
    if dup := ids.len() - ids.n_unique():
        raise InputError(f"customers file {path}: {dup} duplicate customer_id value(s)")
    return ids


def relink_segments(segments: pl.DataFrame, crm_refs: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """Swap each returned maison_ref for its customer_id: the analyst file (contracts.
    ANALYST_SEGMENTS) and the number of returned rows dropped.

    `crm_refs` has `customer_id` and `maison_ref` recomputed from the maison's own CRM.
    """
    linked = crm_refs.join(segments, on="maison_ref", how="inner")
    linked = linked.select(ANALYST_SEGMENTS.names).sort("customer_id")
    return linked, segments.height - linked.height


def check_return_tables(tables: dict[str, pl.DataFrame], package: Path) -> None:
    """Refuse a return payload that does not follow the contract (contracts.RETURN)."""
    missing = [t for t in RETURN if t not in tables]
    if missing:
        raise InputError(f"return package {package}: missing table(s) {', '.join(missing)}")
    for name, contract in RETURN.items():
        columns = tables[name].columns
        lacking = [c for c in contract.names if c not in columns]
        if lacking:
            raise InputError(f"return package {package}: {name} lacks {', '.join(lacking)}")
        extra = [c for c in columns if c not in contract.names]
        if extra:
            raise InputError(
                f"return package {package}: {name} carries column(s) outside the contract: "
                f"{', '.join(extra)}"
            )
    refs = tables["segments"]["maison_ref"]
    if refs.dtype != pl.Binary:
        raise InputError(f"return package {package}: segments.maison_ref is not binary")
    if refs.len() and (refs.bin.size() != REF_BYTES).any():
        raise InputError(f"return package {package}: segments.maison_ref has a wrong length")
    if refs.len() != refs.n_unique():
        raise InputError(f"return package {package}: segments repeats a maison_ref")


def import_return(
    *,
    maison_id: str,
    package: Path,
    customers: Path,
    keys: PartyKeys,
    out_dir: Path,
    write_csv: bool = False,
    imported_on: date | None = None,
    mode: int = 0o600,
    previous: Path | None = None,
) -> ImportResult:
    """Verify, decrypt and relink one return package; write segments.parquet and report.html.

    The outputs hold customer ids with their segments: they get `mode` (owner only unless
    the maison shares them on purpose), in a folder no more open than that. With `previous`
    (segments.parquet of this maison's previous import), also changes.parquet and the
    report's section on what changed since then.
    """
    package, customers, out_dir = Path(package), Path(customers), Path(out_dir)
    if keys.party_id != maison_id:  # a key mismatch is a security refusal (DESIGN §7)
        raise SecurityError(
            f"--keys {keys.directory} holds the keys of {keys.party_id!r}, not {maison_id!r}"
        )
    if keys.local_secret is None:
        raise SecurityError(
            f"--keys {keys.directory} holds no local secret: not a maison key directory"
        )
    require_readable_file(package, "return package")
    if previous is not None:
        previous = require_readable_file(previous, "previous segments")
    with party_session(keys.directory, party=maison_id, command="import"):
        return _import(maison_id, package, customers, keys, out_dir, write_csv, imported_on,
                       mode, previous)  # fmt: skip


def _import(maison_id, package, customers, keys, out_dir, write_csv, imported_on, mode, previous):
    """The import under the maison's lock: replay check, then one commit of the analyst
    files, the replay ledger's line and the audit entry."""
    audit.require_intact(party_log(keys))  # refuse before working, not after
    customer_ids = read_customer_ids(customers)
    # read in full before anything is written: it may be the file this import replaces
    before = (
        read_previous_segments(previous, maison_id=maison_id, customer_ids=customer_ids)
        if previous is not None
        else None
    )

    with private_workdir(prefix="crossgroup-import-", party=maison_id) as work:
        opened = open_package(package, keys, work, kind="return")
        manifest = opened.manifest
        # open_package checks the recipient; these checks make the import's own promise explicit
        if manifest.recipient != maison_id:
            raise SecurityError(f"return package {package} is addressed to another party")
        if manifest.sender != keys.registry.processor_id:
            raise SecurityError(f"return package {package} was not sent by the group processor")
        tables = {name: pl.read_parquet(path) for name, path in opened.tables.items()}
    check_return_tables(tables, package)
    batch_id, as_of = str(manifest.batch_id), str(manifest.as_of)
    if before is not None:
        check_previous_batch(before, batch_id=batch_id, as_of=as_of)

    crm_refs = pl.DataFrame(
        {"customer_id": customer_ids, "maison_ref": maison_refs(keys.local_secret, customer_ids)}
    )
    segments, dropped = relink_segments(tables["segments"], crm_refs)
    counts = (tables["segments"].height, segments.height, dropped)
    context = _report_context(keys, manifest, tables["aggregates"], counts, imported_on)
    changes = _changes(before, segments, context.k_aggregate, package)
    page = render_maison_report(
        segments, tables["aggregates"], tables["glossary"], context, changes=changes
    )

    meta = file_metadata(maison_id, batch_id, as_of)
    with transaction(keys.directory) as tx:
        stage = tx.stage_output(out_dir, mode=mode)
        segments.write_parquet(stage / "segments.parquet", compression="zstd", metadata=meta)
        if write_csv:
            segments.write_csv(stage / "segments.csv")
        if changes is not None:
            changes.table.write_parquet(
                stage / "changes.parquet",
                compression="zstd",
                metadata=file_metadata(
                    maison_id, batch_id, as_of, previous_batch_id=before.batch_id or "",
                    k_aggregate=str(changes.k_aggregate),
                ),
            )  # fmt: skip
        (stage / "report.html").write_text(page, encoding="utf-8")
        accept_packages(tx, keys, [manifest])
        _record_import(tx, keys, package, customers, stage, manifest, counts, write_csv,
                       before, changes)  # fmt: skip
    return ImportResult(
        maison_id=maison_id,
        batch_id=str(manifest.batch_id),
        as_of=str(manifest.as_of),
        returned=tables["segments"].height,
        relinked=segments.height,
        dropped=dropped,
        segments=int(segments["segment"].n_unique()) if segments.height else 0,
        segments_path=out_dir / "segments.parquet",
        report_path=out_dir / "report.html",
        csv_path=out_dir / "segments.csv" if write_csv else None,
        changes=changes,
        changes_path=out_dir / "changes.parquet" if changes is not None else None,
    )


def _changes(before, segments, k_aggregate, package) -> Changes | None:
    """What changed since the previous import, under the threshold the return states."""
    if before is None:
        return None
    if k_aggregate is None:  # a return that states no threshold: nothing to suppress by
        raise InputError(
            f"return package {package} states no k_aggregate, so what changed since "
            f"{before.path} cannot be suppressed by the group's rule: import it without "
            "--previous"
        )
    return compare_segments(before, segments, k_aggregate=k_aggregate)


def _record_import(
    tx, keys, package, customers, stage, manifest, counts, write_csv, before, changes
) -> None:
    """The import's entry in the maison's audit log: digests of what was read and written,
    counts."""
    returned, relinked, dropped = counts
    written = ["segments.parquet", "report.html", *(["segments.csv"] if write_csv else [])]
    figures = {"returned": returned, "relinked": relinked, "dropped": dropped}
    read = []
    if before is not None:
        written.append("changes.parquet")
        figures |= {"change_cells": changes.table.height,
                    "change_cells_suppressed": changes.suppressed_cells}  # fmt: skip
        read.append({"file": before.path.name, "role": "previous_segments",
                     "batch_id": before.batch_id, "sha256": before.sha256})  # fmt: skip
    tx.audit(
        party_log(keys),
        party=keys.party_id,
        command="import",
        counts=figures,
        inputs=[
            {"file": package.name, "role": "return_package", "package_id": manifest.package_id,
             "sender": manifest.sender, "batch_id": str(manifest.batch_id),
             "sha256": audit.file_digest(package)},
            {"file": customers.name, "role": "customers", "sha256": audit.file_digest(customers)},
            *read,
        ],
        outputs=[{"file": n, "sha256": audit.file_digest(stage / n)} for n in written],
        settings={"as_of": str(manifest.as_of), "batch_id": str(manifest.batch_id)},
        signer=keys.signing_key,
    )  # fmt: skip


def _report_context(
    keys: PartyKeys,
    manifest: Any,
    aggregates: pl.DataFrame,
    counts: tuple[int, int, int],
    on: date | None,
) -> ReportContext:
    """Page header facts: the maison's display name and the processor's stated thresholds."""
    summary = getattr(manifest, "summary", None) or {}
    returned, relinked, dropped = counts
    notes = aggregates["note"].drop_nulls() if "note" in aggregates.columns else pl.Series([])
    return ReportContext(
        maison_name=keys.info.name,
        batch_id=str(manifest.batch_id),
        as_of=str(manifest.as_of),
        k=_int_or_none(summary.get("k")) or _threshold(notes, K_NOTE),
        k_aggregate=_int_or_none(summary.get("k_aggregate")) or _threshold(notes, K_AGG_NOTE),
        participating_maisons=_maison_names(keys, summary.get("participating_maisons")),
        absent_maisons=_maison_names(keys, summary.get("absent_maisons")),
        epsilon=_float_or_none(summary.get("epsilon")),
        delta=_float_or_none(summary.get("delta")),
        refitted=summary.get("dp_definitions") == "batch",
        returned=returned,
        relinked=relinked,
        dropped=dropped,
        generated_on=on or date.today(),
    )


def _maison_names(keys: PartyKeys, ids: object) -> tuple[str, ...]:
    """Display names, from the maison's own copy of the public registry, of the maisons a
    return says took part in (or were absent from) the batch; () when it does not say (a
    return sealed before it did) or says it in any other shape than a list of party ids."""
    if not isinstance(ids, list) or not all(isinstance(m, str) and PARTY_ID.match(m) for m in ids):
        return ()
    names = []
    for maison in ids:
        try:
            names.append(keys.registry.party(maison).name or maison)
        except SecurityError:  # not in this registry: shown by its id
            names.append(maison)
    return tuple(names)


def _threshold(notes: pl.Series, pattern: str) -> int | None:
    """A threshold the processor states in its aggregate notes (one value, or none)."""
    found = notes.str.extract(pattern).drop_nulls().unique()
    return int(found[0]) if found.len() == 1 else None


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _float_or_none(value: object) -> float | None:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    return float(value) if ok and value >= 0 else None
