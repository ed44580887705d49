"""The processor's hash-chained run log: one JSON line per run (DESIGN §5.9).

Each entry carries `prev`, the SHA-256 of the previous entry's canonical JSON, and `seq`, so
an edited, deleted, inserted or reordered entry breaks the chain; `entry_hash` covers the
entry itself, so an edit of the newest entry is caught too. The log holds counts, settings,
timings and digests only: callers pass package ids and file digests, never tokens or refs.
An unkeyed chain shows tampering, it cannot stop a rewrite of the whole file: keep the head
hash (printed by `crossgroup process`) somewhere else to anchor it.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from crossgroup.errors import InputError

GENESIS = "0" * 64
AUDIT_VERSION = 1


def canonical_json(entry: Mapping[str, Any]) -> bytes:
    """The exact bytes hashed: sorted keys, no spaces, ASCII only."""
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def entry_digest(entry: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_json(entry)).hexdigest()


def file_digest(path: Path) -> str:
    """SHA-256 of a file, streamed."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_entries(path: Path) -> list[dict]:
    """Parse the log; an unreadable line is an InputError naming its line number."""
    if not path.is_file():
        return []
    entries = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                raise InputError(f"{path}: line {n} is not valid JSON") from None
            if not isinstance(entry, dict):
                raise InputError(f"{path}: line {n} is not a JSON object")
            entries.append(entry)
    return entries


def new_entry(
    *,
    party: str,
    command: str,
    inputs: list[dict],
    counts: Mapping[str, Any],
    settings: Mapping[str, Any],
    timings: Mapping[str, float],
    outputs: list[dict],
    now: datetime | None = None,
) -> dict:
    """An entry body (no chain fields yet); `now` is a parameter so tests are exact."""
    now = now or datetime.now(UTC)
    return {
        "version": AUDIT_VERSION,
        "party": party,
        "command": command,
        "time": now.astimezone(UTC).isoformat(timespec="seconds"),
        "inputs": inputs,
        "counts": dict(counts),
        "settings": dict(settings),
        "timings": {k: round(float(v), 3) for k, v in timings.items()},
        "outputs": outputs,
    }


def chain_entry(previous: list[dict], body: Mapping[str, Any]) -> dict:
    """`body` linked after `previous`: seq, prev (digest of the last entry) and entry_hash."""
    entry = dict(body)
    entry["seq"] = len(previous) + 1
    entry["prev"] = entry_digest(previous[-1]) if previous else GENESIS
    entry.pop("entry_hash", None)
    entry["entry_hash"] = entry_digest(entry)
    return entry


def append_entry(source: Path, target: Path, body: Mapping[str, Any]) -> dict:
    """Write `source`'s entries plus the new one to `target` (a staged copy), return it.

    The caller moves `target` over `source` atomically once the whole run has succeeded; a
    broken chain in `source` refuses the run rather than extending a log already tampered.
    """
    problems = verify_chain(source)
    if problems:
        raise InputError(f"{source}: audit log is not intact ({problems[0]}); not appending")
    previous = read_entries(source)
    entry = chain_entry(previous, body)
    data = source.read_bytes() if source.is_file() else b""
    if data and not data.endswith(b"\n"):
        data += b"\n"
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "wb") as f:
        f.write(data + canonical_json(entry) + b"\n")
        f.flush()
        os.fsync(f.fileno())
    return entry


def verify_chain(path: Path) -> list[str]:
    """Every problem found in the log, in order ([] when intact)."""
    try:
        entries = read_entries(path)
    except InputError as e:
        return [str(e)]
    problems = []
    prev_digest = GENESIS
    for n, entry in enumerate(entries, start=1):
        claimed = entry.get("entry_hash")
        body = {k: v for k, v in entry.items() if k != "entry_hash"}
        if claimed != entry_digest(body):
            problems.append(f"entry {n}: content does not match its entry_hash (edited)")
        if entry.get("seq") != n:
            problems.append(f"entry {n}: sequence number {entry.get('seq')!r}, expected {n}")
        if entry.get("prev") != prev_digest:
            problems.append(
                f"entry {n}: prev does not match entry {n - 1} "
                "(an entry was edited, deleted, inserted or moved)"
                if n > 1
                else "entry 1: prev is not the genesis value"
            )
        prev_digest = entry_digest(entry)
    return problems


def head_digest(path: Path) -> str:
    """Digest of the newest entry: the value to anchor elsewhere."""
    entries = read_entries(path)
    return entry_digest(entries[-1]) if entries else GENESIS
