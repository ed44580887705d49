"""The hash-chained audit log: edits, deletions, insertions and reorders are all detected."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from crossgroup import audit, commit
from crossgroup.errors import SecurityError


def write_entry(log: Path, **fields) -> dict:
    """One audit entry written the way every command writes it: a commit under the lock."""
    with (
        commit.party_session(log.parent, party=str(fields["party"]), command="test"),
        commit.transaction(log.parent) as tx,
    ):
        return tx.audit(log, **fields)


def fields(n: int) -> dict:
    return {
        "party": "processor",
        "command": "process",
        "inputs": [{"package_id": f"pkg-{n}", "sha256": "ab" * 32}],
        "counts": {"persons": 100 + n},
        "settings": {"k": 10},
        "timings": {"verify": 0.1 * n},
        "outputs": [{"file": "returns/aurelle/x.cgpkg", "sha256": "cd" * 32}],
        "now": datetime(2026, 6, 30, 12, n, tzinfo=UTC),
    }


def body(n: int) -> dict:
    return audit.new_entry(**fields(n))


@pytest.fixture
def log(tmp_path: Path) -> Path:
    path = tmp_path / "audit.jsonl"
    for n in range(1, 5):
        write_entry(path, **fields(n))
    return path


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def rewrite(path: Path, new_lines: list[str]) -> None:
    path.write_text("\n".join(new_lines) + "\n")


def test_intact_chain_verifies(log: Path):
    assert audit.verify_chain(log) == []
    entries = audit.read_entries(log)
    assert [e["seq"] for e in entries] == [1, 2, 3, 4]
    assert entries[0]["prev"] == audit.GENESIS
    assert entries[2]["prev"] == audit.entry_digest(entries[1])


def test_edited_entry_is_detected(log: Path):
    rows = lines(log)
    entry = json.loads(rows[1])
    entry["counts"]["persons"] = 5
    rows[1] = json.dumps(entry)
    rewrite(log, rows)
    assert any("entry 2" in p for p in audit.verify_chain(log))


def test_edited_newest_entry_is_detected(log: Path):
    rows = lines(log)
    rows[-1] = rows[-1].replace('"persons":104', '"persons":7')
    rewrite(log, rows)
    assert any("entry 4" in p and "edited" in p for p in audit.verify_chain(log))


def test_deleted_entry_is_detected(log: Path):
    rows = lines(log)
    del rows[1]
    rewrite(log, rows)
    assert audit.verify_chain(log)


def test_inserted_entry_is_detected(log: Path):
    rows = lines(log)
    forged = audit.chain_entry(audit.read_entries(log)[:2], body(9))
    rows.insert(2, audit.canonical_json(forged).decode())
    rewrite(log, rows)
    assert audit.verify_chain(log)


def test_reordered_entries_are_detected(log: Path):
    rows = lines(log)
    rows[1], rows[2] = rows[2], rows[1]
    rewrite(log, rows)
    assert audit.verify_chain(log)


def test_record_refuses_a_broken_chain_as_a_security_refusal(log: Path):
    rows = lines(log)
    del rows[0]
    rewrite(log, rows)
    before = log.read_bytes()
    with pytest.raises(SecurityError, match="not intact"):
        write_entry(log, **fields(5))
    assert log.read_bytes() == before


def test_garbage_line_is_a_problem_not_a_crash(log: Path):
    with open(log, "a") as f:
        f.write("not json\n")
    assert any("not valid JSON" in p for p in audit.verify_chain(log))


def test_unreadable_line_refuses_record_with_a_security_error(log: Path):
    with open(log, "a") as f:
        f.write("not json\n")
    with pytest.raises(SecurityError, match="line 5"):
        write_entry(log, **fields(5))
