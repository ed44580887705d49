"""The one helper for append-only JSON-lines state (ledgers, audit logs): strict reads,
private appends, one writer at a time, atomic rewrites."""

from __future__ import annotations

import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from crossgroup import jsonl
from crossgroup.errors import SecurityError


def package_id(record: dict) -> str:
    return str(record["package_id"])


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    path = tmp_path / "ledger.jsonl"
    jsonl.append(path, [{"package_id": "a", "n": 1}, {"package_id": "b", "n": 2}])
    return path


def test_append_writes_sorted_json_lines_mode_0600_from_creation(ledger: Path):
    assert ledger.read_text() == '{"n": 1, "package_id": "a"}\n{"n": 2, "package_id": "b"}\n'
    assert stat.S_IMODE(ledger.stat().st_mode) == 0o600
    assert stat.S_IMODE(jsonl.lock_path(ledger).stat().st_mode) == 0o600
    assert jsonl.lock_path(ledger).read_bytes() == b""
    assert jsonl.read(ledger, "replay ledger", package_id) == ["a", "b"]


def test_missing_file_reads_as_empty(tmp_path: Path):
    assert jsonl.read(tmp_path / "none.jsonl", "replay ledger") == []


@pytest.mark.parametrize(
    ("line", "reason"),
    [("not json", "not valid JSON"), ("[1, 2]", "not a JSON object"), ('{"n": 3}', "")],
)
def test_damaged_line_is_refused_naming_file_and_line(ledger: Path, line: str, reason: str):
    with open(ledger, "a") as f:
        f.write(f"\n{line}\n")  # a blank line, then the damage on line 4
    with pytest.raises(SecurityError, match="is damaged at line 4") as refused:
        jsonl.read(ledger, "replay ledger", package_id)
    assert f"replay ledger {ledger}" in str(refused.value) and reason in str(refused.value)
    with pytest.raises(SecurityError, match="at line 4"):
        jsonl.kept_lines(ledger, lambda r: r["package_id"] == "a", "replay ledger")


def test_unreadable_file_is_refused_not_empty(ledger: Path):
    ledger.write_bytes(b'{"package_id": "\xff"}\n')
    with pytest.raises(SecurityError, match="cannot be read"):
        jsonl.read(ledger, "replay ledger")


def test_append_after_a_torn_last_line_keeps_the_new_record_whole(ledger: Path):
    with open(ledger, "a") as f:
        f.write('{"package_id": "c"')  # a crash mid-write
    jsonl.append(ledger, [{"package_id": "d"}])
    assert ledger.read_text().splitlines()[-1] == '{"package_id": "d"}'
    with pytest.raises(SecurityError, match="at line 3"):  # the torn line is still refused
        jsonl.read(ledger, "replay ledger")


def test_kept_lines_keeps_lines_byte_for_byte_and_counts_the_dropped(ledger: Path):
    ledger.write_text('{"package_id":"a"}\n\n{"package_id": "b", "x": [1,2]}\n')
    before = ledger.read_bytes()
    assert jsonl.kept_lines(ledger, lambda r: True, "replay ledger") == (
        0, ['{"package_id":"a"}', '{"package_id": "b", "x": [1,2]}'],
    )  # fmt: skip
    assert jsonl.kept_lines(ledger, lambda r: r["package_id"] == "b", "replay ledger") == (
        1, ['{"package_id": "b", "x": [1,2]}'],
    )  # fmt: skip
    assert jsonl.kept_lines(ledger, lambda r: False, "replay ledger") == (2, [])
    assert ledger.read_bytes() == before  # the caller writes, in its commit


def test_lock_serializes_two_writers_doing_read_check_append(tmp_path: Path):
    path = tmp_path / "counter.jsonl"

    def writer() -> None:
        for _ in range(20):
            with jsonl.locked(path):
                n = len(jsonl.read(path, "counter"))
                time.sleep(0.001)  # without the lock, the other writer reads the same n
                jsonl.append(path, [{"n": n}])

    threads = [threading.Thread(target=writer) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r["n"] for r in jsonl.read(path, "counter")] == list(range(40))


def test_lock_excludes_another_process_and_is_reentrant(ledger: Path):
    probe = (
        "import fcntl, os, sys\n"
        "fd = os.open(sys.argv[1], os.O_WRONLY)\n"
        "try:\n"
        "    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)\n"
        "except BlockingIOError:\n"
        "    sys.exit(7)\n"
    )
    lock = str(jsonl.lock_path(ledger))
    with jsonl.locked(ledger):
        assert jsonl.is_locked(ledger)
        with jsonl.locked(ledger):  # re-entrant within the thread: no self-deadlock
            jsonl.append(ledger, [{"package_id": "c"}])
        assert jsonl.is_locked(ledger)
        assert subprocess.run([sys.executable, "-c", probe, lock]).returncode == 7
    assert not jsonl.is_locked(ledger)
    assert subprocess.run([sys.executable, "-c", probe, lock]).returncode == 0
    assert jsonl.read(ledger, "replay ledger", package_id) == ["a", "b", "c"]
