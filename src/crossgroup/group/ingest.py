"""The processor's intake: verify every package, then decrypt (DESIGN §3).

Nothing is decrypted until every package in the inbox has been verified and the batch is
coherent (one matching-key epoch, one as-of date, senders of this pipeline, one package per
maison, and, unless missing maisons are allowed, a package from every maison it lists).
Plaintext goes only into the caller's private working directory. A package that fails later,
at decryption or against the export contract, is refused or set aside exactly like one that
failed verification.
"""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl

from crossgroup.audit import file_digest
from crossgroup.config import PARTY_ID, GroupConfig
from crossgroup.contracts import AMOUNT_LIMIT_EUR, EXPORT, REF_BYTES
from crossgroup.engine import Engine
from crossgroup.errors import CrossgroupError, InputError, SecurityError
from crossgroup.group.retention import check_package_age

PACKAGE_SUFFIX = ".cgpkg"


@dataclass(frozen=True)
class InboxPackage:
    """A verified export package: where it is, what its manifest says, its file digest."""

    path: Path
    manifest: object  # crossgroup.crypto.package.Manifest
    sha256: str

    @property
    def maison(self) -> str:
        return self.manifest.sender


@dataclass(frozen=True)
class SkippedPackage:
    path: Path
    reason: str
    # the listed maison it comes from, or claims to (unverified); None if unreadable or unlisted
    sender: str | None = None


@dataclass
class Batch:
    """Verified exports (the batch proper) and erasure packages (applied before anything else).

    An inbox of erasures only is a valid batch with no exports: as_of and matching_key_id
    are then None. `skip_invalid` is how the run treats a bad package: refuse the batch, or
    set the package aside (`set_aside`), at verification and at decryption alike.
    """

    packages: tuple[InboxPackage, ...]
    skipped: tuple[SkippedPackage, ...]
    as_of: date | None
    matching_key_id: str | None
    erasures: tuple[InboxPackage, ...] = ()
    skip_invalid: bool = False
    listed: tuple[str, ...] = ()  # the pipeline's `[batch] maisons`

    @property
    def maisons(self) -> tuple[str, ...]:
        """The maisons taking part: those whose export is in the batch."""
        return tuple(p.maison for p in self.packages)

    @property
    def batch_id(self) -> str:
        """The batch id the exports carry (several, comma-separated, if they disagree)."""
        return ", ".join(sorted({str(p.manifest.batch_id) for p in self.packages}))

    @property
    def absent(self) -> tuple[str, ...]:
        """Listed maisons not taking part: no package, or theirs set aside."""
        return tuple(sorted(set(self.listed) - set(self.maisons)))

    @property
    def unsent(self) -> tuple[str, ...]:
        """Listed maisons with no package in the inbox at all, valid or set aside."""
        sent = {*self.maisons, *(s.sender for s in self.skipped)}
        return tuple(sorted(set(self.listed) - sent))

    def participation(self) -> dict[str, list[str]]:
        """Which maisons took part and which were absent: ids only, the same words in the
        audit entry, the reports and every return's manifest (DESIGN §4.4)."""
        return {"participating_maisons": list(self.maisons), "absent_maisons": list(self.absent)}

    def set_aside(self, package: InboxPackage, reason: str) -> None:
        """Move a package that failed after verification from `packages` to `skipped`.

        The one change a verified batch allows, so that everything downstream (counts, the
        audit entry, the replay ledger, disposal of the inputs) reads `packages` and never
        sees it: like a package skipped at verification, it stays in the inbox, unaccepted.
        """
        self.packages = tuple(p for p in self.packages if p is not package)
        self.skipped = (*self.skipped, SkippedPackage(package.path, reason, package.maison))


def inbox_packages(inbox: Path) -> list[Path]:
    if not inbox.is_dir():
        raise InputError(f"inbox folder not found: {inbox}")
    found = sorted(p for p in inbox.iterdir() if p.is_file() and p.suffix == PACKAGE_SUFFIX)
    if not found:
        raise InputError(f"inbox {inbox} holds no {PACKAGE_SUFFIX} packages")
    return found


def verify_inbox(
    inbox: Path,
    keys,
    group: GroupConfig,
    *,
    skip_invalid: bool,
    now: dt.datetime | None = None,
    check_replay: bool = True,
) -> Batch:
    """Verify every package before any decryption; refuse or (with skip_invalid) set aside.

    A package that fails verification, comes from a maison outside the pipeline, or is older
    than the replay ledger keeps ids for, or an export made under a matching key other than
    the registry's current epoch (retired or compromised), is invalid; a batch-level
    incoherence (two exports from one maison, mixed key epochs or as-of dates) always refuses
    the batch, since no single package is to blame. Erasure packages ride along and are
    returned apart.
    `check_replay=False` is for evaluation, which reads a batch without acting on it.
    """
    from crossgroup.crypto.package import claimed_sender, require_one_matching_key, verify_package

    accepted: list[InboxPackage] = []
    erasures: list[InboxPackage] = []
    skipped: list[SkippedPackage] = []
    current_key_id = keys.registry.matching_key_id
    for path in inbox_packages(inbox):
        try:
            manifest = verify_package(path, keys, check_replay=check_replay)
            if manifest.kind not in ("export", "erasure"):
                raise SecurityError(f"wrong kind: expected export or erasure, got {manifest.kind}")
            if manifest.sender not in group.maisons:
                raise SecurityError(f"sender {manifest.sender!r} is not a maison of this pipeline")
            if manifest.kind == "export" and manifest.matching_key_id != current_key_id:
                raise SecurityError(
                    f"matching-key mismatch: the export uses {manifest.matching_key_id}, which "
                    f"is not the registry's current epoch ({current_key_id})"
                )
            check_package_age(manifest, group, now=now)
        except SecurityError as e:
            if not skip_invalid:
                raise SecurityError(f"package {path.name} refused: {e}") from None
            sender = claimed_sender(path)
            skipped.append(
                SkippedPackage(path, str(e), sender if sender in group.maisons else None)
            )
            continue
        found = InboxPackage(path, manifest, file_digest(path))
        (erasures if manifest.kind == "erasure" else accepted).append(found)
    if not accepted and erasures:
        return Batch((), tuple(skipped), None, None, tuple(erasures), skip_invalid, group.maisons)
    if not accepted:
        raise SecurityError(f"no valid export package in {inbox}: nothing to process")
    senders = [p.maison for p in accepted]
    twice = sorted({s for s in senders if senders.count(s) > 1})
    if twice:
        raise SecurityError(f"more than one package from maison(s) {', '.join(twice)} in one batch")
    key_id = require_one_matching_key([p.manifest for p in accepted])
    dates = sorted({str(p.manifest.as_of) for p in accepted})
    if len(dates) > 1:
        raise InputError(f"packages carry different as-of dates ({', '.join(dates)}): one batch")
    as_of = accepted[0].manifest.as_of
    if isinstance(as_of, str):
        as_of = date.fromisoformat(as_of)
    return Batch(
        tuple(sorted(accepted, key=lambda p: p.maison)), tuple(skipped), as_of, key_id,
        tuple(erasures), skip_invalid, group.maisons,
    )  # fmt: skip


def refuse_missing_maisons(batch: Batch, inbox: Path, *, allow_missing: bool) -> None:
    """Refuse (exit 2) a batch of exports whose pipeline lists a maison that sent no package,
    unless missing maisons are allowed: a late maison is never left out silently. A maison
    whose package was set aside (`--skip-invalid`) sent one: it is absent, not missing."""
    missing = batch.unsent
    if batch.packages and missing and not allow_missing:
        maisons, it = ("maisons", "them") if len(missing) > 1 else ("maison", "it")
        raise InputError(
            f"no export package from {maisons} {', '.join(missing)} in {inbox}, which the "
            f"pipeline's [batch] maisons lists: wait for {it}, or process the batch without "
            f"{it} with --allow-missing ([batch] allow_missing = true)"
        )


def decrypt_batch(
    batch: Batch, keys, workdir: Path, *, check_replay: bool = True
) -> dict[str, dict[str, Path]]:
    """Open every verified package into `workdir/packages/<maison>/`; tables by maison.

    Verification cannot see damage inside the payload, nor a signed table that breaks the
    export contract: such a package refuses the batch, or with `batch.skip_invalid` is set
    aside (its plaintext removed at once) and the others carry on.
    """
    tables: dict[str, dict[str, Path]] = {}
    for package in batch.packages:
        target = workdir / "packages" / package.maison
        try:
            tables[package.maison] = _open_export(package, keys, target, check_replay)
        except (SecurityError, InputError) as e:
            if target.exists():
                shutil.rmtree(target)
            if not batch.skip_invalid:
                raise
            batch.set_aside(package, str(e))
    if not batch.packages:
        reasons = "; ".join(s.reason for s in batch.skipped)
        raise SecurityError(f"no valid export package left to process ({reasons})")
    return tables


def _open_export(package: InboxPackage, keys, target: Path, check_replay: bool) -> dict:
    from crossgroup.crypto.package import open_package

    target.mkdir(parents=True, exist_ok=True)
    opened = open_package(package.path, keys, target, kind="export", check_replay=check_replay)
    missing = [t for t in EXPORT if t not in opened.tables]
    if missing:
        raise InputError(f"package {package.path.name} lacks table(s): {', '.join(missing)}")
    paths = {t: Path(opened.tables[t]) for t in EXPORT}
    check_export_tables(paths, package.path.name)
    return paths


def check_export_tables(paths: dict[str, Path], package_name: str) -> None:
    """Refuse decrypted export tables that break the contract (contracts.EXPORT): exactly its
    columns and types, no null where none is allowed, every maison_ref REF_BYTES long.

    Checked per package, so the package to blame is known (and can be set aside) before any
    table is read with the others.
    """
    for name, contract in EXPORT.items():
        where = f"package {package_name}: export table {name}"
        try:
            schema = dict(pl.read_parquet_schema(paths[name]))
            if schema != contract.schema:
                raise InputError(
                    f"{where} does not match the contract: expected exactly the columns "
                    f"{', '.join(f'{c} {t.__name__}' for c, t in contract.schema.items())}"
                )
            problems = (
                pl.scan_parquet(paths[name])
                .select(
                    *(pl.col(c).null_count().alias(f"{c} is null") for c in contract.not_null),
                    (pl.col("maison_ref").bin.size() != REF_BYTES)
                    .sum()
                    .alias(f"maison_ref is not {REF_BYTES} bytes"),
                    *_amount_problems(contract.schema),
                )
                .collect()
                .row(0, named=True)
            )
        except InputError:
            raise
        except Exception:  # polars raises several types for a file that is not Parquet
            raise InputError(f"{where} is not a readable Parquet file") from None
        broken = [f"{problem} on {rows} row(s)" for problem, rows in problems.items() if rows]
        if broken:
            raise InputError(f"{where} does not match the contract: {'; '.join(broken)}")


def _amount_problems(schema: dict) -> list[pl.Expr]:
    """Rows whose amount is not a finite EUR figure below AMOUNT_LIMIT_EUR in magnitude."""
    if "amount_eur" not in schema:
        return []
    amount = pl.col("amount_eur")
    out_of_range = ~amount.is_finite() | (amount.abs() >= AMOUNT_LIMIT_EUR)
    return [
        out_of_range.sum().alias(f"amount_eur is not finite or not below {AMOUNT_LIMIT_EUR:.0e}")
    ]


def build_views(engine: Engine, tables: dict[str, dict[str, Path]]) -> None:
    """`identities` and `activity` views over the decrypted Parquet, each with `maison`.

    The tables come from `decrypt_batch`, already checked against the contract per package.
    """
    for table, contract in EXPORT.items():
        parts = []
        for maison, paths in sorted(tables.items()):
            if not PARTY_ID.match(maison):  # ids are inlined as SQL literals: never trust them
                raise InputError(f"maison id {maison!r} is not a valid party id")
            source = engine.view_parquet(f"{table}_{maison.replace('-', '_')}", paths[table])
            parts.append(f"SELECT '{maison}' AS maison, {contract.sql_list()} FROM {source}")
        try:
            engine.execute(table, f"CREATE OR REPLACE VIEW {table} AS {' UNION ALL '.join(parts)}")
            engine.scalar(f"SELECT count(*) FROM (SELECT * FROM {table} LIMIT 1)")
        except CrossgroupError as e:
            raise InputError(f"export table {table} does not match the contract ({e})") from None
