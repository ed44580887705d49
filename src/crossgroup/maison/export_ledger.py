"""The maison's export ledger: which batches included which of its customers (docs/rights.md).

`crossgroup export` appends one line per sealed package to `exports.jsonl` in the maison's
party directory (its state, like the replay ledger): package id, batch, as-of, created-at,
counts and digests. Beside it, `exports/<package_id>.refs` holds the sorted 16-byte
maison_refs of the customers that package carried, and nothing else. The maison is the
controller and already holds the local secret those refs come from, so keeping them is no
new disclosure; unlike a keyed Bloom filter, the list answers "was I in batch X?" exactly,
which an access request needs. No activity, token or customer_id is kept.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from crossgroup import audit, jsonl
from crossgroup.contracts import REF_BYTES
from crossgroup.crypto.keys import PartyKeys
from crossgroup.errors import InputError, SecurityError

if TYPE_CHECKING:
    from crossgroup.commit import Transaction

LEDGER = "exports.jsonl"
REFS_DIR = "exports"
AUDIT_LOG = "audit.jsonl"
INPUT_ROLES = ("customers", "purchases")


def party_log(keys: PartyKeys) -> Path:
    """The party's own hash-chained audit log, in its party directory."""
    return Path(keys.directory) / AUDIT_LOG


def refs_bytes(refs: pl.Series) -> bytes:
    """Distinct refs, sorted, concatenated: a compact exact set with no order from the CRM.

    Vectorized: the sorted column's Arrow data buffer already is the concatenation. Only the
    export writes refs; the import reads this module without loading numpy and pyarrow.
    """
    import numpy as np
    import pyarrow as pa

    distinct = refs.drop_nulls().unique().sort()
    if (distinct.bin.size() != REF_BYTES).any():
        raise InputError("export ledger: a maison_ref has the wrong length")
    arr = distinct.to_arrow().cast(pa.large_binary())
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if len(arr) == 0:
        return b""
    _, offsets, data = arr.buffers()
    bounds = np.frombuffer(offsets, dtype=np.int64)[arr.offset : arr.offset + len(arr) + 1]
    return data.to_pybytes()[bounds[0] : bounds[-1]]


def _file_entry(path: Path, **extra: Any) -> dict:
    return {"file": Path(path).name, "bytes": Path(path).stat().st_size,
            "sha256": audit.file_digest(path), **extra}  # fmt: skip


def record_export(
    tx: Transaction,
    keys: PartyKeys,
    *,
    package_path: Path,
    manifest: Any,
    summary: dict,
    exported_refs: pl.Series,
    inputs: list[Path],
    timings: dict[str, float],
    now: datetime | None = None,
) -> dict:
    """Add the refs file, the ledger line and the audit entry to the export's commit; return
    the line. `package_path` is the sealed package as staged."""
    directory = Path(keys.directory)
    data = refs_bytes(exported_refs)
    refs_path = directory / REFS_DIR / f"{manifest.package_id}.refs"
    staged_refs = tx.put(refs_path, data)
    customers = summary["customers"]
    identities = summary.get("identities", {})
    counts = {
        "customers_read": customers["read"],
        "customers_eligible": customers["eligible"],
        "customers_exported": customers["exported"],
        "customers_dropped": customers["dropped"],
        "purchase_rows": summary["purchases"],
        "activity_rows": summary["activity_rows"],
        "with_email_token": identities.get("with_email_token"),
        "with_phone_token": identities.get("with_phone_token"),
    }
    package = _file_entry(package_path, package_id=manifest.package_id)
    line = {
        "package_id": manifest.package_id,
        "package_file": package["file"],
        "package_sha256": package["sha256"],
        "batch_id": str(manifest.batch_id),
        "as_of": manifest.as_of.isoformat(),
        "created_at": manifest.created_at.isoformat(),
        "recorded_at": (now or datetime.now(UTC)).isoformat(timespec="seconds"),
        "recipient": manifest.recipient,
        "matching_key_id": manifest.matching_key_id,
        "counts": {"customers_exported": customers["exported"],
                   "activity_rows": summary["activity_rows"]},
        "refs_file": f"{REFS_DIR}/{refs_path.name}",
        "refs_count": len(data) // REF_BYTES,
        "refs_sha256": audit.file_digest(staged_refs),
    }  # fmt: skip
    tx.append(directory / LEDGER, [line])
    tx.audit(
        party_log(keys),
        party=keys.party_id,
        command="export",
        counts=counts,
        inputs=[_file_entry(p, role=r) for p, r in zip(inputs, INPUT_ROLES, strict=True)],
        outputs=[package],
        settings={
            "as_of": line["as_of"],
            "batch_id": line["batch_id"],
            "window": summary.get("window"),
            "matching_key_id": line["matching_key_id"],
            "ledger": LEDGER,
            "refs_file": line["refs_file"],
        },
        timings=timings,
        signer=keys.signing_key,
        now=now,
    )
    return line


def _checked_line(line: dict) -> dict:
    line["package_id"], line["refs_file"], line["refs_sha256"]  # a KeyError: damaged line
    return line


def read_export_ledger(party_dir: Path) -> list[dict]:
    """Every export this maison recorded, oldest first; a damaged line is a refusal."""
    return jsonl.read(Path(party_dir) / LEDGER, "export ledger", _checked_line)


def included_in(party_dir: Path, line: dict, maison_ref: bytes) -> bool | None:
    """Whether the package of a ledger line carried `maison_ref` (refs file digest checked);
    None when its refs file was purged under the retention policy."""
    party_dir = Path(party_dir)
    refs_path = (party_dir / line["refs_file"]).resolve()
    if party_dir.resolve() not in refs_path.parents:
        raise SecurityError(f"export ledger: a refs file path points outside {party_dir}")
    try:
        data = refs_path.read_bytes()
    except FileNotFoundError:
        return None
    if audit.file_digest(refs_path) != line["refs_sha256"] or len(data) % REF_BYTES:
        raise SecurityError(f"export ledger: {line['refs_file']} does not match its digest")
    lo, hi = 0, len(data) // REF_BYTES
    while lo < hi:  # binary search over the sorted fixed-size refs
        mid = (lo + hi) // 2
        value = data[mid * REF_BYTES : (mid + 1) * REF_BYTES]
        if value == maison_ref:
            return True
        if value < maison_ref:
            lo = mid + 1
        else:
            hi = mid
    return False
