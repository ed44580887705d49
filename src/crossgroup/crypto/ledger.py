"""The replay ledger: package ids a party has accepted, in its own directory (DESIGN §3).

Append-only JSON lines (`ledger.jsonl`, mode 0600), one per accepted package, holding ids,
parties, kind, batch and time: no tokens, refs or counts about people.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from crossgroup.errors import SecurityError

if TYPE_CHECKING:
    from crossgroup.crypto._envelope import Manifest

LEDGER = "ledger.jsonl"


def accepted_ids(party_dir: Path) -> set[str]:
    """Every package id this party accepted; an unreadable ledger is a refusal, not empty."""
    path = Path(party_dir) / LEDGER
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return set()
    except OSError as e:
        raise SecurityError(f"replay ledger {path} cannot be read: {e.strerror}") from None
    ids = set()
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            ids.add(str(json.loads(line)["package_id"]))
        except (ValueError, KeyError, TypeError):
            raise SecurityError(f"replay ledger {path} is damaged at line {n}") from None
    return ids


def append_accepted(
    party_dir: Path, manifests: list[Manifest], *, now: dt.datetime | None = None
) -> None:
    """Append one line per package and fsync, so an accepted id survives a crash."""
    at = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).isoformat(timespec="seconds")
    lines = "".join(
        json.dumps(
            {"package_id": m.package_id, "kind": m.kind, "sender": m.sender,
             "batch_id": m.batch_id, "accepted_at": at},
            sort_keys=True,
        ) + "\n"
        for m in manifests
    )  # fmt: skip
    fd = os.open(Path(party_dir) / LEDGER, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, lines.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
