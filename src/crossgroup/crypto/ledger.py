"""The replay ledger: package ids a party has accepted, in its own directory (DESIGN §3).

Append-only JSON lines (`ledger.jsonl`, mode 0600, crossgroup.jsonl), one per accepted
package, holding ids, parties, kind, batch, the package's signed created_at and the accept
time: no tokens, refs or counts about people. The processor's `purge` drops a line only once
the package's age alone refuses it (group/retention.py, `replay_entry_expiry`); a maison's
ledger is never purged, since `import` has no age check and the line is its only guard.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

from crossgroup import jsonl
from crossgroup.errors import SecurityError

if TYPE_CHECKING:
    from crossgroup.crypto._envelope import Manifest

LEDGER = "ledger.jsonl"
WHAT = "replay ledger"


def accepted_ids(party_dir: Path) -> set[str]:
    """Every package id this party accepted; an unreadable ledger is a refusal, not empty."""
    return set(jsonl.read(Path(party_dir) / LEDGER, WHAT, lambda r: str(r["package_id"])))


def accepted_records(
    party_dir: Path, manifests: list[Manifest], *, now: dt.datetime | None = None
) -> list[dict]:
    """The ledger lines that accept these packages, refusing any id already in the ledger or
    given twice. The caller holds the party's lock (crossgroup.commit) until they are written,
    so two runs cannot both accept one package."""
    at = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).isoformat(timespec="seconds")
    ids = [m.package_id for m in manifests]
    if len(set(ids)) != len(ids) or accepted_ids(party_dir).intersection(ids):
        raise SecurityError("replayed package: a package id was already accepted")
    return [
        {"package_id": m.package_id, "kind": m.kind, "sender": m.sender,
         "batch_id": m.batch_id, "accepted_at": at,
         "created_at": m.created_at.astimezone(dt.UTC).isoformat()}
        for m in manifests
    ]  # fmt: skip
