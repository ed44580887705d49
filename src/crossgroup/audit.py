"""Each party's hash-chained log: one JSON line per command run (DESIGN §5.9, docs/rights.md).

Each entry carries `prev`, the SHA-256 of the previous entry's canonical JSON, and `seq`, so
an edited, deleted, inserted or reordered entry breaks the chain; `entry_hash` covers the
entry itself, so an edit of the newest entry is caught too. A head file beside the log
(`audit.jsonl.head`: entry count and newest digest, signed by the party's Ed25519 key)
catches a truncated log and, checked against the registry, a log rewritten whole. Every
party writes its log through a commit (crossgroup.commit), together with the outputs the
entry lists: under the party's lock, chained, head rewritten and signed. The log holds
counts, settings, timings and digests only: callers pass package ids and file digests, never
tokens, refs or customer values. The processor's log
(`crossgroup process`) can also be anchored by the head digest that command prints.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from crossgroup import jsonl
from crossgroup.errors import SecurityError
from crossgroup.io import require_readable_file

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
    """Parse the log ([] when absent); an unreadable line is a SecurityError naming it."""
    return jsonl.read(Path(path), "audit log")


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


def _problem(n: int, kind: str, detail: str) -> str:
    return f"entry {n}: {kind}: {detail}"


def _seq(entry: Mapping[str, Any]) -> int | None:
    seq = entry.get("seq")
    return seq if isinstance(seq, int) and not isinstance(seq, bool) else None


def chain_problems(entries: list[dict]) -> list[str]:
    """Every break in a list of entries, each naming the entry (1-based line) and its kind.

    Kinds: edited (content or re-hashed content), deleted, inserted, reordered, sequence.
    An entry that breaks the link of the next one is reported once, at the cause.
    """
    digests = [entry_digest(e) for e in entries]
    position = {d: i for i, d in enumerate(digests)}
    linked = {e.get("prev") for e in entries}
    if entries:  # the newest entry (highest seq) is the chain's natural end: nothing links it
        linked.add(digests[max(range(len(entries)), key=lambda j: _seq(entries[j]) or 0)])
    edited = [
        e.get("entry_hash") != entry_digest({k: v for k, v in e.items() if k != "entry_hash"})
        for e in entries
    ]
    problems: list[str] = []
    reordered: set[int] = set()
    for i, entry in enumerate(entries):
        n = i + 1
        if digests[i] in digests[:i]:
            problems.append(
                _problem(n, "inserted", f"a copy of entry {digests.index(digests[i]) + 1}")
            )
            continue
        if edited[i]:
            problems.append(_problem(n, "edited", "its content does not match its entry_hash"))
        expected = digests[i - 1] if i else GENESIS
        prior_seq = (_seq(entries[i - 1]) or i) if i else 0
        seq, prev = _seq(entry), entry.get("prev")
        if prev == expected:
            if seq != prior_seq + 1 and not edited[i]:
                problems.append(
                    _problem(n, "sequence", f"sequence number {seq!r}, expected {prior_seq + 1}")
                )
            continue
        if i and edited[i - 1]:
            continue  # the edit of the entry before explains the broken link
        target = -1 if prev == GENESIS else position.get(prev)
        if target is None:
            if seq is not None and seq > prior_seq + 1:
                gap = (
                    f"entry seq {prior_seq + 1} is"
                    if seq - 1 == prior_seq + 1
                    else f"entries seq {prior_seq + 1}-{seq - 1} are"
                )
                problems.append(_problem(n, "deleted", f"{gap} missing before this entry"))
            elif i:
                problems.append(
                    _problem(i, "edited", f"re-hashed or replaced: entry {n} no longer links to it")
                )
            else:
                problems.append(_problem(n, "edited", "prev is not the genesis value"))
        elif target < i - 1:
            unlinked = [j for j in range(target + 1, i) if digests[j] not in linked]
            for j in unlinked:
                problems.append(_problem(j + 1, "inserted", "no entry of the chain links to it"))
            if not unlinked and target not in reordered:  # else: that entry's move explains it
                reordered.add(i)
                where = "it claims to be the first entry" if target < 0 else (
                    f"it follows entry {target + 1} in the chain"
                )  # fmt: skip
                problems.append(_problem(n, "reordered", where))
        else:
            reordered.add(i)
            problems.append(
                _problem(n, "reordered", f"it follows entry {target + 1}, which comes after it")
            )
    return list(dict.fromkeys(problems))


def verify_chain(path: Path) -> list[str]:
    """Every problem found in the log's chain, in order ([] when intact)."""
    try:
        entries = read_entries(path)
    except SecurityError as e:
        return [str(e)]
    return chain_problems(entries)


# ---------------------------------------------------------------- the head: against truncation

HEAD_SUFFIX = ".head"
_HEAD_LABEL = b"crossgroup/v1/audit-head\x00"


def head_path(log_path: Path) -> Path:
    """Where a log's head lives: beside it, `audit.jsonl.head`."""
    return Path(log_path).with_name(Path(log_path).name + HEAD_SUFFIX)


def _head_claim(party: str, entries: int, head: str) -> bytes:
    return _HEAD_LABEL + canonical_json({"entries": entries, "head": head, "party": party})


def make_head(party: str, entries: list[dict], signer: Any | None = None) -> dict:
    """The head record: entry count and newest digest, signed by the party when it can."""
    head = entry_digest(entries[-1]) if entries else GENESIS
    record_ = {"version": AUDIT_VERSION, "party": party, "entries": len(entries), "head": head}
    if signer is not None:
        record_["signature"] = signer.sign(_head_claim(party, len(entries), head)).hex()
    return record_


def head_problems(entries: list[dict], head: Mapping[str, Any], registry: Any | None) -> list[str]:
    """Truncation, an edited newest entry, or entries appended outside crossgroup."""
    problems = []
    count, digest = head.get("entries"), head.get("head")
    if not isinstance(count, int) or not isinstance(digest, str):
        return ["head: unreadable head record (edited)"]
    seqs = [_seq(e) or 0 for e in entries]
    newest = max(seqs, default=0)
    if count > newest:
        first = newest + 1
        span = f"{first}" + (f"-{count}" if count > first else "")
        problems.append(
            _problem(len(entries) + 1, "truncated", f"entry seq {span} missing at the end "
                     f"(the head records {count} entries, the log ends at seq {newest})")
        )  # fmt: skip
    elif count and count in seqs and entry_digest(entries[seqs.index(count)]) != digest:
        n = seqs.index(count) + 1
        problems.append(_problem(n, "edited", "it does not match the digest in the head"))
    if count < newest:
        problems.append(
            _problem(seqs.index(newest) + 1, "inserted",
                     f"entries after seq {count} were appended without updating the head")
        )  # fmt: skip
    if registry is not None:
        party = str(head.get("party"))
        signature = head.get("signature")
        if not isinstance(signature, str):
            problems.append(f"head: not signed by {party} (expected with --registry)")
        else:
            try:
                registry.party(party).verify_key().verify(
                    bytes.fromhex(signature), _head_claim(party, count, digest)
                )
            except Exception:
                problems.append(f"head: signature is not valid for the registered key of {party}")
    return problems


def verify_log(
    path: Path, *, registry: Any | None = None, expect_head: str | None = None
) -> list[str]:
    """Chain, head file (when present) and an externally anchored head digest, all at once."""
    path = require_readable_file(path, "audit log")
    try:
        entries = read_entries(path)
    except SecurityError as e:
        return [str(e)]
    problems = chain_problems(entries)
    hp = head_path(path)
    if hp.is_file():
        try:
            head = json.loads(hp.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            head = {}
        problems += head_problems(entries, head if isinstance(head, dict) else {}, registry)
    elif registry is not None:
        problems.append(f"head: {hp.name} is missing (deleted?)")
    if expect_head is not None:
        anchored = expect_head.strip().lower()
        digests = [entry_digest(e) for e in entries]
        if anchored not in digests:
            problems.append(
                "head: the anchored digest matches no entry (truncated, edited or rewritten)"
            )
        elif digests.index(anchored) != len(digests) - 1:
            problems.append(
                _problem(digests.index(anchored) + 2, "inserted",
                         "entries after the anchored head were added since it was taken")
            )  # fmt: skip
    return list(dict.fromkeys(problems))


def require_intact(path: Path) -> None:
    """Refuse (SecurityError) to run a command whose party log was tampered with."""
    if Path(path).is_file() and (problems := verify_log(path)):
        raise SecurityError(
            f"{path}: audit log is not intact ({problems[0]}); run crossgroup audit verify"
        )


def prepare(
    log_path: Path,
    pending: Sequence[dict] = (),
    *,
    party: str,
    command: str,
    counts: Mapping[str, Any],
    inputs: list[dict] | None = None,
    outputs: list[dict] | None = None,
    settings: Mapping[str, Any] | None = None,
    timings: Mapping[str, float] | None = None,
    signer: Any | None = None,
    now: datetime | None = None,
) -> tuple[dict, bytes]:
    """The next entry of a log (after `pending`, entries not yet written) and the head that
    goes with it, as written; `commit.Transaction.audit` writes them with the outputs they
    list. Pass counts, settings, file names and digests only: never a token, ref or customer
    value. `signer` (the party's Ed25519 key) signs the head, so truncating the log or
    rewriting it whole is caught by `crossgroup audit verify --registry`."""
    body = new_entry(
        party=party, command=command, inputs=list(inputs or []), counts=counts,
        settings=settings or {}, timings=timings or {}, outputs=list(outputs or []), now=now,
    )  # fmt: skip
    entries = [*read_entries(log_path), *pending]
    entry = json.loads(canonical_json(chain_entry(entries, body)))  # as it reads back
    head = json.dumps(make_head(party, [*entries, entry], signer), indent=2).encode() + b"\n"
    return entry, head


def head_digest(path: Path) -> str:
    """Digest of the newest entry: the value to anchor elsewhere."""
    entries = read_entries(path)
    return entry_digest(entries[-1]) if entries else GENESIS
