"""`crossgroup audit verify` names each tampered entry and the kind of tampering, exit 3."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from crossgroup import audit, commit
from crossgroup.crypto.keys import init_keys, load_party
from crossgroup.errors import SecurityError

N = 5


def write_entry(log: Path, **fields) -> dict:
    """One audit entry written the way every command writes it: a commit under the lock."""
    with (
        commit.party_session(log.parent, party=str(fields["party"]), command="test"),
        commit.transaction(log.parent) as tx,
    ):
        return tx.audit(log, **fields)


@pytest.fixture(scope="module")
def keydir(tmp_path_factory) -> Path:
    keydir = tmp_path_factory.mktemp("audit-keys") / "keys"
    init_keys(keydir, ["aurelle", "kessler"])
    return keydir


def record(log: Path, keys, n: int) -> dict:
    return write_entry(
        log,
        party=keys.party_id,
        command="export",
        counts={"customers_exported": 100 + n},
        inputs=[{"file": "customers.parquet", "sha256": "ab" * 32}],
        outputs=[{"file": f"export-{n}.cgpkg", "sha256": "cd" * 32}],
        settings={"as_of": "2026-09-30"},
        timings={"seal": 0.1 * n},
        signer=keys.signing_key,
        now=datetime(2026, 10, 1, 12, n, tzinfo=UTC),
    )


@pytest.fixture
def log(keydir, tmp_path) -> Path:
    keys = load_party(keydir / "aurelle")
    path = tmp_path / "audit.jsonl"
    for n in range(1, N + 1):
        record(path, keys, n)
    return path


def rows(path: Path) -> list[str]:
    return path.read_text().splitlines()


def rewrite(path: Path, lines: list[str]) -> None:
    path.write_text("".join(f"{line}\n" for line in lines))


def verify(run_cli, log: Path, *extra):
    result = run_cli("audit", "verify", "--log", log, *extra)
    return result, result.stderr.strip().splitlines()


def assert_tampered(run_cli, log, needle: str, *extra) -> list[str]:
    result, lines = verify(run_cli, log, *extra)
    assert result.exit_code == 3, result.stdout + result.stderr
    assert "NOT intact" in lines[0] and f"{len(lines) - 1} problem(s)" in lines[0]
    assert any(needle in line for line in lines[1:]), lines
    assert "Traceback" not in result.stderr
    return lines


def test_intact_log_verifies_with_its_signed_head(run_cli, log, keydir):
    result, _ = verify(run_cli, log, "--registry", keydir / "registry.toml")
    assert result.exit_code == 0, result.stderr
    assert f"intact: {N} entries" in result.stdout and "head signature" in result.stdout
    head = json.loads(audit.head_path(log).read_text())
    assert head["entries"] == N and head["head"] == audit.head_digest(log)


def test_edited_field_names_the_entry(run_cli, log):
    lines = rows(log)
    entry = json.loads(lines[1])
    entry["counts"]["customers_exported"] = 7
    lines[1] = json.dumps(entry)
    rewrite(log, lines)
    problems = assert_tampered(run_cli, log, "entry 2: edited")
    assert len(problems) == 2  # the summary and one problem: the broken link is not repeated


def test_edited_and_rehashed_entry_is_still_named(run_cli, log):
    entries = audit.read_entries(log)
    body = {k: v for k, v in entries[1].items() if k != "entry_hash"}
    body["counts"] = {"customers_exported": 7}
    body["entry_hash"] = audit.entry_digest(body)
    lines = rows(log)
    lines[1] = audit.canonical_json(body).decode()
    rewrite(log, lines)
    assert_tampered(run_cli, log, "entry 2: edited: re-hashed")


def test_deleted_entry_is_named(run_cli, log):
    lines = rows(log)
    del lines[2]
    rewrite(log, lines)
    assert_tampered(run_cli, log, "entry 3: deleted: entry seq 3 is missing")


def test_deleted_first_entry_is_named(run_cli, log):
    rewrite(log, rows(log)[1:])
    assert_tampered(run_cli, log, "entry 1: deleted")


def test_inserted_forged_entry_is_named(run_cli, log):
    entries = audit.read_entries(log)
    forged = audit.chain_entry(
        entries[:2], audit.new_entry(party="aurelle", command="access", inputs=[], counts={},
                                     settings={}, timings={}, outputs=[])
    )  # fmt: skip
    lines = rows(log)
    lines.insert(2, audit.canonical_json(forged).decode())
    rewrite(log, lines)
    assert_tampered(run_cli, log, "entry 3: inserted")


def test_swapped_entries_are_reordered(run_cli, log):
    lines = rows(log)
    lines[1], lines[2] = lines[2], lines[1]
    rewrite(log, lines)
    problems = assert_tampered(run_cli, log, "entry 2: reordered")
    assert [p.split(":")[0].strip() for p in problems[1:]] == ["entry 2", "entry 3"]
    assert all("reordered" in p for p in problems[1:])


def test_truncated_last_entry_is_named(run_cli, log):
    rewrite(log, rows(log)[:-1])
    assert audit.verify_chain(log) == []  # the chain alone cannot see it
    assert_tampered(run_cli, log, f"entry {N}: truncated")


def test_truncation_with_a_rewritten_head_needs_the_signature(run_cli, log, keydir):
    rewrite(log, rows(log)[:-1])
    forged = audit.make_head("aurelle", audit.read_entries(log))  # unsigned: no key
    audit.head_path(log).write_text(json.dumps(forged))
    assert verify(run_cli, log)[0].exit_code == 0  # consistent, but unsigned
    assert_tampered(run_cli, log, "head: not signed", "--registry", keydir / "registry.toml")
    other = load_party(keydir / "kessler").signing_key  # another party's key
    audit.head_path(log).write_text(
        json.dumps(audit.make_head("aurelle", audit.read_entries(log), other))
    )
    assert_tampered(run_cli, log, "head: signature is not valid",
                    "--registry", keydir / "registry.toml")  # fmt: skip


def test_anchored_head_catches_truncation_without_a_head_file(run_cli, log):
    anchor = audit.head_digest(log)
    assert verify(run_cli, log, "--expect-head", anchor)[0].exit_code == 0
    rewrite(log, rows(log)[:-1])
    audit.head_path(log).unlink()
    assert_tampered(run_cli, log, "anchored digest matches no entry", "--expect-head", anchor)


def test_record_refuses_to_extend_a_tampered_log(log, keydir):
    rewrite(log, rows(log)[:-1])
    before = log.read_bytes()
    with pytest.raises(SecurityError, match="not intact"):
        record(log, load_party(keydir / "aurelle"), 9)
    assert log.read_bytes() == before


def test_missing_log_is_bad_input(run_cli, tmp_path):
    result, lines = verify(run_cli, tmp_path / "nope.jsonl")
    assert result.exit_code == 2 and len(lines) == 1 and "not found" in lines[0]


def test_processor_log_without_head_still_verifies(run_cli, tmp_path):
    path = tmp_path / "audit.jsonl"
    for n in range(3):
        write_entry(path, party="processor", command="process", counts={"n": n})
    audit.head_path(path).unlink()  # a log written before the processor kept a head
    result, _ = verify(run_cli, path, "--expect-head", audit.head_digest(path))
    assert result.exit_code == 0, result.stderr
