"""Erasure and withdrawal on the processor side: the suppression ledger and its application.

An erasure package (maison -> processor) lists the `maison_ref`, `email_token` and
`phone_token` of customers who withdrew or asked to be forgotten. The processor keeps no
copy of them: it stores a keyed hash of each under its own suppression key, scoped to the
sending maison (HMAC key = HKDF(suppression key, 'crossgroup/v1/suppression/<kind>/<maison>')),
so the ledger cannot be joined to any export, return or other party's data, and an erasure
at maison A never touches the records maison B exported with consent. Every later batch
drops each record of A whose ref or any token is in the ledger, before anything else runs.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from crossgroup import audit, jsonl
from crossgroup.contracts import ERASURE, REF_BYTES
from crossgroup.crypto.tokens import hmac_tokens, suppression_ledger_key
from crossgroup.errors import InputError

(ERASURE_TABLE,) = ERASURE  # the one table of an erasure package (contracts.ERASURE)
# export column -> ledger kind: one HMAC key per kind and maison
LEDGER_KINDS = {"maison_ref": "ref", "email_token": "email", "phone_token": "phone"}
SUPPRESSION_LEDGER = "suppression-ledger.jsonl"


def identifier_digests(suppression_key: bytes, maison: str, frame: pl.DataFrame) -> pl.DataFrame:
    """One hex digest column per identifier column of `frame` (null stays null)."""
    return frame.select(
        [
            hmac_tokens(suppression_ledger_key(suppression_key, kind, maison), frame[column])
            .bin.encode("hex")
            .alias(column)
            for column, kind in LEDGER_KINDS.items()
            if column in frame.columns
        ]
    )


def erased_digests(suppression_key: bytes, maison: str, erased: pl.DataFrame) -> pl.Series:
    """The distinct ledger digests of an erasure table (refs and every token it names)."""
    digests = identifier_digests(suppression_key, maison, erased)
    values = pl.concat([digests[c] for c in digests.columns]).drop_nulls().unique().sort()
    return values.alias("digest")


def suppressed_refs(
    suppression_key: bytes, maison: str, identities: pl.DataFrame, ledger: pl.Series
) -> pl.Series:
    """The maison_refs of `maison`'s records whose ref or any token is in the ledger."""
    digests = identifier_digests(suppression_key, maison, identities)
    hit = pl.any_horizontal(pl.col(c).is_in(ledger.implode()) for c in digests.columns)
    return identities.filter(digests.select(hit.fill_null(False)).to_series())["maison_ref"]


def without_refs(frame: pl.DataFrame, refs: pl.Series) -> pl.DataFrame:
    """`frame` without the rows of the given maison_refs."""
    return frame.filter(~pl.col("maison_ref").is_in(refs.implode()))


# ---------------------------------------------------------------- the ledger file


def _ledger_row(entry: dict) -> dict:
    return {"digest": str(entry["digest"]), "added": dt.date.fromisoformat(entry["added"])}


def read_ledger(party_dir: Path) -> pl.DataFrame:
    """digest (hex) and added (date) per entry; a damaged ledger is a refusal, never empty."""
    rows = jsonl.read(Path(party_dir) / SUPPRESSION_LEDGER, "suppression ledger", _ledger_row)
    return pl.DataFrame(rows, schema={"digest": pl.String, "added": pl.Date})


def merge_ledger(ledger: pl.DataFrame, digests: pl.Series, added: dt.date) -> pl.DataFrame:
    """The ledger plus new digests; a repeated erasure restarts its retention period."""
    new = pl.DataFrame({"digest": digests, "added": [added] * digests.len()},
                       schema={"digest": pl.String, "added": pl.Date})  # fmt: skip
    return pl.concat([ledger, new]).group_by("digest").agg(pl.col("added").max()).sort("digest")


def write_ledger(tx, party_dir: Path, ledger: pl.DataFrame) -> Path:
    """Stage the whole ledger (mode 0600, digests and dates only) in the commit; returns the
    staged file, to digest."""
    lines = (
        jsonl.dumps({"digest": d, "added": a.isoformat()}) + "\n"
        for d, a in ledger.select("digest", "added").iter_rows()
    )
    return tx.put(Path(party_dir) / SUPPRESSION_LEDGER, "".join(lines).encode())


def require_suppression_key(keys) -> bytes:
    key = getattr(keys, "suppression_key", None)
    if not key:
        raise InputError(
            f"{keys.directory} has no suppression key (suppression.key): the processor needs "
            "one to apply erasures; key directories made by `crossgroup keys init` have it"
        )
    return key


def suppress_decrypted(tables: dict[str, dict[str, Path]], keys) -> dict[str, int]:
    """Drop every suppressed record from the decrypted export tables, in place.

    Runs before person resolution, so an erased customer never links, even from a stale
    export. Returns the records removed per maison (counts only).
    """
    ledger_path = Path(keys.directory) / SUPPRESSION_LEDGER
    if not ledger_path.is_file():
        return {m: 0 for m in tables}
    ledger = read_ledger(keys.directory)["digest"]
    key = require_suppression_key(keys)
    removed = {}
    for maison, paths in sorted(tables.items()):
        identities = pl.read_parquet(paths["identities"])
        refs = suppressed_refs(key, maison, identities, ledger)
        removed[maison] = refs.len()
        if refs.len():
            without_refs(identities, refs).write_parquet(paths["identities"])
            activity = pl.read_parquet(paths["activity"])
            without_refs(activity, refs).write_parquet(paths["activity"])
    return removed


# ---------------------------------------------------------------- applying erasure packages


@dataclass
class ErasureOutcome:
    """What an erasure run did, in counts and file digests only."""

    customers_listed: dict[str, int]
    ledger_added: int
    ledger_size: int
    retained_deleted: list[dict] = field(default_factory=list)
    audit_entry: dict | None = None


def read_erasure_table(path: Path, package_name: str) -> pl.DataFrame:
    """The `erased` table, checked against its contract (contracts.ERASURE)."""
    frame = pl.read_parquet(path)
    columns = ERASURE[ERASURE_TABLE].names
    if set(frame.columns) != set(columns) or any(frame[c].dtype != pl.Binary for c in columns):
        raise InputError(
            f"erasure package {package_name}: table {ERASURE_TABLE} must have exactly the "
            f"binary columns {', '.join(columns)}"
        )
    refs = frame["maison_ref"]
    if refs.null_count() or (refs.bin.size() != REF_BYTES).any():
        raise InputError(
            f"erasure package {package_name}: maison_ref must be {REF_BYTES} bytes on every row"
        )
    return frame


def open_retained(path: Path, keys, workdir: Path):
    """Verify and open a package this processor already accepted and kept under retention.

    The replay ledger refuses accepted ids, as it must for the inbox; here the package is
    the processor's own retained copy, so verification runs against an empty ledger folder.
    """
    from crossgroup.crypto.package import open_package

    empty = workdir / "no-ledger"
    empty.mkdir(parents=True, exist_ok=True)  # also creates workdir
    return open_package(path, dataclasses.replace(keys, directory=empty), workdir, kind="export")


def apply_erasures(
    erasures, keys, out_dir: Path, work: Path, *, retained: list[Path], now: dt.datetime
) -> ErasureOutcome:
    """Open each erasure package, add its digests to the ledger, delete retained inputs of
    the same maison that carry an erased record, and log it; then accept the packages.

    Commits on its own, before any export is decrypted: a later failure of the batch does
    not undo an erasure. The erasure packages themselves are deleted from the inbox.
    """
    from crossgroup.commit import party_session, transaction
    from crossgroup.crypto.package import accept_packages, open_package

    started = time.perf_counter()
    key = require_suppression_key(keys)
    with (
        party_session(keys.directory, party=keys.party_id, command="erasure"),
        transaction(keys.directory) as tx,
    ):
        ledger = read_ledger(keys.directory)
        before = ledger.height
        listed: dict[str, int] = {}
        for i, package in enumerate(erasures):
            target = work / "erasures" / str(i)
            target.mkdir(parents=True)
            opened = open_package(package.path, keys, target, kind="erasure")
            if ERASURE_TABLE not in opened.tables:
                raise InputError(f"erasure package {package.path.name} lacks table {ERASURE_TABLE}")
            erased = read_erasure_table(opened.tables[ERASURE_TABLE], package.path.name)
            listed[package.maison] = listed.get(package.maison, 0) + erased.height
            ledger = merge_ledger(ledger, erased_digests(key, package.maison, erased), now.date())
        digests = ledger["digest"]
        doomed = []
        for path in retained:
            opened = open_retained(path, keys, work / "retained" / path.parent.name / path.stem)
            if opened.manifest.sender not in listed:
                continue
            identities = pl.read_parquet(opened.tables["identities"])
            if suppressed_refs(key, opened.manifest.sender, identities, digests).len():
                doomed.append(path)
        ledger_staged = write_ledger(tx, keys.directory, ledger)
        deleted = []
        for path in doomed:
            deleted.append({"file": str(path.relative_to(out_dir)),
                            "sha256": audit.file_digest(path),
                            "action": "deleted: carries an erased record"})  # fmt: skip
            tx.remove(path)
        outcome = ErasureOutcome(listed, ledger.height - before, ledger.height, deleted)
        outcome.audit_entry = log_erasures(
            tx, out_dir, keys, erasures, outcome, ledger_staged, now,
            time.perf_counter() - started,
        )  # fmt: skip
        accept_packages(tx, keys, [p.manifest for p in erasures], now=now)
        for package in erasures:
            tx.remove(package.path)
    return outcome


def log_erasures(tx, out_dir, keys, erasures, outcome, ledger_path, now, seconds) -> dict:
    """The erasure step's audit entry in DIR/audit.jsonl, head signed by the processor:
    package ids, counts and digests only."""
    return tx.audit(
        Path(out_dir) / "audit.jsonl",
        party=keys.party_id,
        command="erasure",
        inputs=[
            {
                "package_id": p.manifest.package_id,
                "sender": p.maison,
                "file": p.path.name,
                "sha256": p.sha256,
                "after_run": "deleted",
            }
            for p in erasures
        ],
        counts={
            "customers_listed": outcome.customers_listed,
            "ledger_entries_added": outcome.ledger_added,
            "ledger_entries": outcome.ledger_size,
            "retained_packages_deleted": len(outcome.retained_deleted),
        },
        settings={"ledger": SUPPRESSION_LEDGER},
        timings={"erase": seconds},
        outputs=[
            {"file": SUPPRESSION_LEDGER, "sha256": audit.file_digest(ledger_path)},
            *outcome.retained_deleted,
        ],
        signer=keys.signing_key,
        now=now,
    )
